// Kernels of the GPU trainers that follow selections: the tropical layers' state
// with runner bounds, its repair after a sparse step, backpropagation through
// selections, per-sample losses, and the gather of a few samples' rows.
//
//   tropical_top2              H, S and the runner-up R of a tropical layer (one thread
//                              per (sample, output)); the state of the sparse trainer
//   repair_layer               the repair of one tropical layer after a sparse step,
//                              mirroring maxplus.kernels.cpu_repair.repair_layer
//   tropical_backward_weights  dense weight gradient through selections
//   tropical_backward_inputs   dense input gradient through selections
//   row_losses                 cross-entropy or multiclass hinge per sample
//   gather_rows                rows of several arrays for a few samples, packed
//
// Sums follow the CPU kernels' order (samples ascending, units ascending), so the
// sparse and the dense GPU trainers agree bitwise. Only additions and comparisons
// appear (no product to contract), except in row_losses (exp and log).
// Twins: maxplus/kernels/gpu_twin.py. The one header, semiring_zero.cuh, is inlined
// by maxplus.kernels.gpu.read_source for NVRTC.

#include "semiring_zero.cuh"

// a strictly better than b (greater for max-plus, smaller for min-plus)
template <bool MAXIMIZE, typename T>
__device__ __forceinline__ bool improves(T a, T b) {
    return MAXIMIZE ? (a > b) : (a < b);
}

template <bool MAXIMIZE, typename T>
__device__ __forceinline__ T better_of(T a, T b) {
    return improves<MAXIMIZE>(a, b) ? a : b;
}

// Same bit pattern (so that a store can be skipped without changing any bit, -0 included).
__device__ __forceinline__ bool same_bits(float a, float b) {
    return __float_as_int(a) == __float_as_int(b);
}
__device__ __forceinline__ bool same_bits(double a, double b) {
    return __double_as_longlong(a) == __double_as_longlong(b);
}

// ------------------------------------------------------------------ the layer state

// Output j of one sample over all n_in inputs h_in: the best candidate h_in[i] + WT[i, j],
// its lowest index, and the best of the others (a tie with the best counts; the zero
// when there is none).
template <typename T, bool MAXIMIZE>
__device__ __forceinline__ void scan_top2(const T* __restrict__ h_in, const T* __restrict__ WT,
                                          int n_in, int n_out, int j, T& best, T& second,
                                          int& arg) {
    const T zero = semiring_zero<T, MAXIMIZE>();
    best = zero;
    second = zero;
    arg = 0;
    for (int i = 0; i < n_in; ++i) {
        const T v = h_in[i] + WT[(long long)i * n_out + j];
        if (improves<MAXIMIZE>(v, best)) {
            second = best;
            best = v;
            arg = i;
        } else if (!improves<MAXIMIZE>(second, v)) {
            second = v;
        }
    }
}

// H[n, j] = best_i (Hin[n, i] + WT[i, j]), S[n, j] its lowest i, R[n, j] the best of the
// other candidates (a tie with the best counts; the zero when there is none).
// One thread per (n, j), j fastest.
template <typename T, bool MAXIMIZE>
__global__ void tropical_top2(const T* __restrict__ Hin, const T* __restrict__ WT,
                              T* __restrict__ H, int* __restrict__ S, T* __restrict__ R, int N,
                              int n_in, int n_out) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)N * n_out) return;
    const long long n = t / n_out;
    const int j = (int)(t - n * n_out);
    T best, second;
    int arg;
    scan_top2<T, MAXIMIZE>(Hin + n * n_in, WT, n_in, n_out, j, best, second, arg);
    H[t] = best;
    S[t] = arg;
    R[t] = second;
}

// ------------------------------------------------------------------------ the repair

// One output (n, j) of a tropical layer held in registers while its changed
// candidates are processed one after the other: value h, selection s, runner bound r
// (for max-plus an upper bound on every other candidate), and whether a rescan is due.
template <typename T, bool MAXIMIZE>
struct OutputState {
    T h;
    T r;
    int s;
    bool dirty;

    // Candidate i, whose value is now `cand`, in either direction: it takes over if it
    // beats the output (lowest index on ties), the old value then bounding the runners;
    // if it was the selected one it keeps the selection, and a rescan is due when it
    // got worse without staying strictly better than the runner bound.
    __device__ __forceinline__ void candidate(T cand, int i) {
        const bool is_sel = s == i;
        const bool take = !is_sel && (improves<MAXIMIZE>(cand, h) || (cand == h && i < s));
        const bool lose = is_sel && improves<MAXIMIZE>(h, cand) && !improves<MAXIMIZE>(cand, r);
        const T r_take = better_of<MAXIMIZE>(r, h);
        const T r_other = is_sel ? r : better_of<MAXIMIZE>(r, cand);
        h = (is_sel || take) ? cand : h;
        s = take ? i : s;
        r = take ? r_take : r_other;
        dirty = dirty || lose;
    }

    // Candidate i when every candidate of input i got worse: only the output that
    // selects it changes (the others cannot take over and the bound stays valid).
    __device__ __forceinline__ void selected(T cand, int i) {
        const bool is_sel = s == i;
        const bool lose = is_sel && improves<MAXIMIZE>(h, cand) && !improves<MAXIMIZE>(cand, r);
        h = is_sel ? cand : h;
        dirty = dirty || lose;
    }

    // Exact best, lowest index and runner-up over all n_in inputs.
    __device__ __forceinline__ void rescan(const T* __restrict__ h_in,
                                           const T* __restrict__ WT, int n_in, int n_out,
                                           int j) {
        scan_top2<T, MAXIMIZE>(h_in, WT, n_in, n_out, j, h, r, s);
    }
};

// Repair one tropical layer for every sample after a sparse step.
//
// Hin holds the new inputs. Sample n changed ci_count[n * count_stride] of them,
// ci_idx[n * idx_stride + t], whose previous values are ci_old[n * old_stride + t]
// (stride 0: the same list for every sample, as for the linear layer's columns).
// The weights (w_rows[e], w_cols[e]) changed; W (n_out x n_in) and WT hold the new
// values. Per output, as in maxplus.kernels.cpu_repair.repair_layer: the changed
// inputs in list order (an improved input as a candidate everywhere, a worsened
// one only where selected), then the changed weights in order, then a rescan if
// due; when 4 * count >= n_in every output is rescanned instead.
//
// Writes the outputs whose value changed, ascending, into co_idx[n, :co_count[n]]
// with their previous values in co_old, and adds to counters[0..2] the candidates
// processed, the rescans and the number of samples with a changed output.
//
// A group of `group` lanes (a power of two, <= 32) handles one sample, lane
// `member` its outputs member, member + group, ...; a warp holds 32 / group samples.
// The changed outputs are compacted in order with a ballot per chunk of outputs.
template <typename T, bool MAXIMIZE>
__global__ void __launch_bounds__(128)
repair_layer(const T* __restrict__ Hin, const T* __restrict__ W, const T* __restrict__ WT,
             T* __restrict__ H, int* __restrict__ S, T* __restrict__ R, int N, int n_in,
             int n_out, const int* __restrict__ ci_count, long long count_stride,
             const int* __restrict__ ci_idx, long long idx_stride, const T* __restrict__ ci_old,
             long long old_stride, const int* __restrict__ w_rows, const int* __restrict__ w_cols,
             int n_w, int* __restrict__ co_count, int* __restrict__ co_idx,
             T* __restrict__ co_old, unsigned long long* __restrict__ counters, int group) {
    const int lane = threadIdx.x & 31;
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int g = lane / group;
    const int member = lane - g * group;
    const long long n = warp * (32 / group) + g;
    const bool active = n < N;
    const int count = active ? ci_count[n * count_stride] : 0;
    const bool busy = active && (count > 0 || n_w > 0);
    const bool full = busy && 4 * count >= n_in;
    const unsigned group_bits = (group == 32) ? 0xffffffffu : (((1u << group) - 1u) << (g * group));
    const unsigned lanes_below = (1u << lane) - 1u;
    const T* h_in = Hin + (active ? n : 0) * n_in;
    const int* idx = ci_idx + (active ? n : 0) * idx_stride;
    const T* idx_old = ci_old + (active ? n : 0) * old_stride;
    const long long row = (active ? n : 0) * n_out;

    int changed = 0;  // changed outputs of this sample so far (equal in all its lanes)
    int rescans = 0;
    // Every lane runs every chunk (the ballots need the whole warp).
    for (int j0 = 0; j0 < n_out; j0 += group) {
        const int j = j0 + member;
        const bool mine = busy && j < n_out;
        bool is_changed = false;
        bool dirty = false;
        T previous = T(0);
        if (mine) {
            OutputState<T, MAXIMIZE> o;
            o.h = H[row + j];
            o.s = S[row + j];
            o.r = R[row + j];
            o.dirty = full;
            previous = o.h;
            const int s0 = o.s;
            const T r0 = o.r;
            if (!full) {
                for (int t = 0; t < count; ++t) {
                    const int i = idx[t];
                    const T hi = h_in[i];
                    const T cand = WT[(long long)i * n_out + j] + hi;
                    if (improves<MAXIMIZE>(hi, idx_old[t])) {
                        o.candidate(cand, i);
                    } else {
                        o.selected(cand, i);
                    }
                }
                for (int e = 0; e < n_w; ++e) {
                    if (w_rows[e] == j) {
                        const int i = w_cols[e];
                        o.candidate(W[(long long)j * n_in + i] + h_in[i], i);
                    }
                }
            }
            dirty = o.dirty;
            if (dirty) o.rescan(h_in, WT, n_in, n_out, j);
            is_changed = o.h != previous;
            if (!same_bits(o.h, previous)) H[row + j] = o.h;
            if (o.s != s0) S[row + j] = o.s;
            if (!same_bits(o.r, r0)) R[row + j] = o.r;
        }
        const unsigned changed_bits = __ballot_sync(0xffffffffu, is_changed) & group_bits;
        const unsigned dirty_bits = __ballot_sync(0xffffffffu, dirty) & group_bits;
        if (is_changed) {
            const int slot = changed + __popc(changed_bits & lanes_below);
            co_idx[row + slot] = j;
            co_old[row + slot] = previous;
        }
        changed += __popc(changed_bits);
        rescans += __popc(dirty_bits);
    }
    if (active && member == 0) {
        co_count[n] = changed;
        if (busy) {
            if (!full) atomicAdd(&counters[0], (unsigned long long)count * n_out + n_w);
            if (rescans) atomicAdd(&counters[1], (unsigned long long)rescans);
            if (changed) atomicAdd(&counters[2], 1ull);
        }
    }
}

// ------------------------------------------------------------------- backpropagation

// grad_W[j, i] = sum_{n ascending, S[n, j] = i} G[n, j]: one thread per (j, i).
template <typename T>
__global__ void tropical_backward_weights(const T* __restrict__ G, const int* __restrict__ S,
                                          int N, int n_out, int n_in, T* __restrict__ grad_W) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)n_out * n_in) return;
    const int j = (int)(t / n_in);
    const int i = (int)(t - (long long)j * n_in);
    T acc = T(0);
#pragma unroll 8
    for (int n = 0; n < N; ++n) {
        const long long at = (long long)n * n_out + j;
        if (S[at] == i) acc = acc + G[at];
    }
    grad_W[t] = acc;
}

// G_in[n, i] = sum_{j ascending, S[n, j] = i} G[n, j]: one thread per (n, i).
template <typename T>
__global__ void tropical_backward_inputs(const T* __restrict__ G, const int* __restrict__ S,
                                         int N, int n_out, int n_in, T* __restrict__ G_in) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)N * n_in) return;
    const long long n = t / n_in;
    const int i = (int)(t - n * n_in);
    T acc = T(0);
    for (int j = 0; j < n_out; ++j) {
        if (S[n * n_out + j] == i) acc = acc + G[n * n_out + j];
    }
    G_in[t] = acc;
}

// ---------------------------------------------------------------------------- losses

__device__ __forceinline__ float exp_of(float x) { return expf(x); }
__device__ __forceinline__ double exp_of(double x) { return exp(x); }

// L[n] for every sample (only_changed = 0) or for those with changed[n] > 0, with the
// operation order of maxplus.kernels.cpu_losses.loss_of_row: cross-entropy (code 0)
// log(sum_k exp(s_k - max)) + max - s_y, the exponentials in T and the sum in double;
// multiclass hinge (code 1) max_k (s_k + [k != y]) - s_y in double.
template <typename T>
__global__ void row_losses(const T* __restrict__ scores, const long long* __restrict__ y, int N,
                           int K, int code, const int* __restrict__ changed, int only_changed,
                           double* __restrict__ L) {
    const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    if (only_changed && changed[n] == 0) return;
    const T* s = scores + n * K;
    const int label = (int)y[n];
    if (code == 0) {
        T top = s[0];
        for (int k = 1; k < K; ++k) {
            if (s[k] > top) top = s[k];
        }
        double acc = 0.0;
        for (int k = 0; k < K; ++k) acc += (double)exp_of(s[k] - top);
        L[n] = log(acc) + (double)top - (double)s[label];
    } else {
        double best = (double)s[0] + (label == 0 ? 0.0 : 1.0);
        for (int k = 1; k < K; ++k) {
            const double v = (double)s[k] + (label == k ? 0.0 : 1.0);
            if (v > best) best = v;
        }
        L[n] = best - (double)s[label];
    }
}

// ---------------------------------------------------------------------------- gather

// Packs rows of several arrays for q samples into one buffer of 32-bit words, for a
// single device-to-host copy. dst[0 : 2q] holds the sample indices (int64); array a
// is described by table[3a .. 3a+2] = (its address, words per row, word offset in
// dst) and its rows for the samples follow each other at that offset.
// blockIdx.y = a (a = n_arrays: the sample indices).
template <typename W>
__global__ void gather_rows(const long long* __restrict__ rows, int q,
                            const unsigned long long* __restrict__ table, int n_arrays,
                            W* __restrict__ dst) {
    const int a = blockIdx.y;
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (a == n_arrays) {
        if (t < q) reinterpret_cast<long long*>(dst)[t] = rows[t];
        return;
    }
    const W* src = reinterpret_cast<const W*>(table[3 * a]);
    const long long width = (long long)table[3 * a + 1];
    const long long offset = (long long)table[3 * a + 2];
    if (t >= q * width) return;
    const long long r = t / width;
    const long long w = t - r * width;
    dst[offset + t] = src[rows[r] * width + w];
}
