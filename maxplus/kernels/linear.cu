// Linear algebra with a fixed summation order and explicit rounding.
//
// Every value is computed by one thread, in a fixed order, with each product and
// each sum rounded on its own (__fmul_rn / __fadd_rn and the double versions are
// never contracted into an FMA). The result of an entry therefore does not depend
// on which other entries are computed with it, nor on the tiling, and a CPU twin
// written with plain NumPy float32/float64 operations in the same order gets the
// same bits. This is what lets the sparse trainer recompute a few columns of the
// linear layer and obtain exactly the columns of a full forward pass, and lets
// the tree gradient (computed sample by sample) equal the dense backward pass.
//
//   ordered_gemm   C[i, col(j)] = (sum_{k ascending} A(i, k) * B(k, j)) [+ bias[col(j)]]
//                  (the linear forward Z = X W^T + b, a subset of its columns, X x_s,
//                  and the dense weight gradient G^T X)
//   column_sums    out[j] = sum_{i ascending} G[i, j]   (bias gradient; double accumulator)
//   shift_columns  cached repair Z[n, m] -= sum_s coef[s, c] (r_s[n] + 1)   (double)
//   scale_subtract P -= eta * G                         (dense parameter update)
//   update_rows    W[rows[c]] -= eta * GW[c], b[rows[c]] -= eta * Gb[c]  (sparse update)
//   update_entries W[r, c] -= eta * v and its transpose copy WT[c, r]    (sparse update)
//
// Twins: maxplus/kernels/gpu_twin.py. No header is included (NVRTC and nvcc).

template <typename T>
struct Rounded;

template <>
struct Rounded<float> {
    static __device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
    static __device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
    static __device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
};

template <>
struct Rounded<double> {
    static __device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
    static __device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
    static __device__ __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }
};

// Tile of ordered_gemm: a block of 16 x 16 threads computes a 64 x 64 tile of C; each
// thread owns rows ty + 16 r and columns tx + 16 c (r, c < 4), so that a warp reads
// shared memory without bank conflicts. k advances in slices of 16.
constexpr int GEMM_BM = 64;
constexpr int GEMM_BN = 64;
constexpr int GEMM_BK = 16;
constexpr int GEMM_T = 4;  // outputs per thread along each dimension
constexpr int GEMM_THREADS = (GEMM_BM / GEMM_T) * (GEMM_BN / GEMM_T);

// ordered_gemm flags
constexpr int GEMM_HAS_BIAS = 1;
constexpr int GEMM_HAS_COLS = 2;
constexpr int GEMM_HAS_OLD = 4;

// C[i, col(j)] = (sum_k A(i, k) B(k, j)) + bias[col(j)], k ascending, for i < n, j < m.
//   A(i, k) = A_KMAJOR ? A[k * lda + i] : A[i * lda + k]
//   B(k, j) = B_KMAJOR ? B[k * ldb + col(j)] : B[col(j) * ldb + k]
//   col(j)  = cols[j] with GEMM_HAS_COLS, else j;  bias only with GEMM_HAS_BIAS.
// With GEMM_HAS_OLD the previous C[i, col(j)] goes to old[i * m + j] first.
// Entries outside the matrices are loaded as 0: they add 0 * 0 = +0 to an
// accumulator that starts at +0 and, under round-to-nearest, is never -0, so they
// change no bit (and neither do the zeros of A, which the CPU kernel skips).
template <typename T, bool A_KMAJOR, bool B_KMAJOR>
__global__ void __launch_bounds__(GEMM_THREADS)
ordered_gemm(const T* __restrict__ A, long long lda, const T* __restrict__ B, long long ldb,
             const T* __restrict__ bias, const int* __restrict__ cols, T* __restrict__ C,
             long long ldc, T* __restrict__ old, int n, int m, int k, int flags) {
    __shared__ T As[GEMM_BK][GEMM_BM];
    __shared__ T Bs[GEMM_BK][GEMM_BN];
    const int t = threadIdx.x;
    const int tx = t % (GEMM_BN / GEMM_T);
    const int ty = t / (GEMM_BN / GEMM_T);
    const long long i0 = (long long)blockIdx.y * GEMM_BM;
    const long long j0 = (long long)blockIdx.x * GEMM_BN;
    const bool has_cols = (flags & GEMM_HAS_COLS) != 0;

    T acc[GEMM_T][GEMM_T];
#pragma unroll
    for (int r = 0; r < GEMM_T; ++r) {
#pragma unroll
        for (int c = 0; c < GEMM_T; ++c) acc[r][c] = T(0);
    }

    for (int k0 = 0; k0 < k; k0 += GEMM_BK) {
        // Each thread loads 4 consecutive entries of the A tile and of the B tile.
        if (A_KMAJOR) {
            const int kk = t / (GEMM_BM / 4);
            const int ii = (t % (GEMM_BM / 4)) * 4;
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const long long i = i0 + ii + q;
                As[kk][ii + q] = (i < n && k0 + kk < k) ? A[(long long)(k0 + kk) * lda + i] : T(0);
            }
        } else {
            const int ii = t / (GEMM_BK / 4);
            const int kk = (t % (GEMM_BK / 4)) * 4;
            const long long i = i0 + ii;
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                As[kk + q][ii] = (i < n && k0 + kk + q < k) ? A[i * lda + k0 + kk + q] : T(0);
            }
        }
        if (B_KMAJOR) {
            const int kk = t / (GEMM_BN / 4);
            const int jj = (t % (GEMM_BN / 4)) * 4;
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const long long j = j0 + jj + q;
                T v = T(0);
                if (j < m && k0 + kk < k) {
                    const long long col = has_cols ? cols[j] : j;
                    v = B[(long long)(k0 + kk) * ldb + col];
                }
                Bs[kk][jj + q] = v;
            }
        } else {
            const int jj = t / (GEMM_BK / 4);
            const int kk = (t % (GEMM_BK / 4)) * 4;
            const long long j = j0 + jj;
            const long long col = (j < m) ? (has_cols ? cols[j] : j) : 0;
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                Bs[kk + q][jj] = (j < m && k0 + kk + q < k) ? B[col * ldb + k0 + kk + q] : T(0);
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GEMM_BK; ++kk) {
            T a[GEMM_T];
            T b[GEMM_T];
#pragma unroll
            for (int r = 0; r < GEMM_T; ++r) a[r] = As[kk][ty + 16 * r];
#pragma unroll
            for (int c = 0; c < GEMM_T; ++c) b[c] = Bs[kk][tx + 16 * c];
#pragma unroll
            for (int r = 0; r < GEMM_T; ++r) {
#pragma unroll
                for (int c = 0; c < GEMM_T; ++c) {
                    acc[r][c] = Rounded<T>::add(acc[r][c], Rounded<T>::mul(a[r], b[c]));
                }
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < GEMM_T; ++r) {
        const long long i = i0 + ty + 16 * r;
        if (i >= n) continue;
#pragma unroll
        for (int c = 0; c < GEMM_T; ++c) {
            const long long j = j0 + tx + 16 * c;
            if (j >= m) continue;
            const long long col = has_cols ? cols[j] : j;
            T v = acc[r][c];
            if (flags & GEMM_HAS_BIAS) v = Rounded<T>::add(v, bias[col]);
            if (flags & GEMM_HAS_OLD) old[i * m + j] = C[i * ldc + col];
            C[i * ldc + col] = v;
        }
    }
}

// out[j] = sum_{i ascending} G[i * m + j], accumulated in double and rounded once
// (as the CPU kernels accumulate the bias gradient).
template <typename T>
__global__ void column_sums(const T* __restrict__ G, int n, int m, T* __restrict__ out) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= m) return;
    double acc = 0.0;
#pragma unroll 8
    for (int i = 0; i < n; ++i) acc = __dadd_rn(acc, (double)G[(long long)i * m + j]);
    out[j] = (T)acc;
}

// Cached repair of the linear columns after A[m] -= sum_s coef[s, c] x_s and
// b[m] -= sum_s coef[s, c] for m = cols[c]:
//     Z[n, m] -= sum_{s ascending} coef[s, c] (r_s[n] + 1),   r_s = store[slots[s]] = X x_s,
// in double, rounded once. The previous Z[n, m] goes to old[n * n_cols + c].
// One thread per (n, c).
template <typename T>
__global__ void shift_columns(T* __restrict__ Z, int N, int h, const int* __restrict__ cols,
                              int n_cols, const T* __restrict__ coef, int q,
                              const T* __restrict__ store, const int* __restrict__ slots,
                              T* __restrict__ old) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)N * n_cols) return;
    const long long n = t / n_cols;
    const int c = (int)(t - n * n_cols);
    const long long at = n * h + cols[c];
    const T z = Z[at];
    old[t] = z;
    double delta = 0.0;
    for (int s = 0; s < q; ++s) {
        const double r = (double)store[(long long)slots[s] * N + n];
        delta = __dadd_rn(delta, __dmul_rn((double)coef[s * n_cols + c], __dadd_rn(r, 1.0)));
    }
    Z[at] = (T)__dsub_rn((double)z, delta);
}

// P[i] -= eta * G[i] (the product rounded, then the difference).
template <typename T>
__global__ void scale_subtract(T* __restrict__ P, const T* __restrict__ G, T eta, long long size) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < size) P[i] = Rounded<T>::sub(P[i], Rounded<T>::mul(eta, G[i]));
}

// W[rows[c], :] -= eta * GW[c, :] and b[rows[c]] -= eta * Gb[c]; rows distinct.
// One thread per (c, i), i < d for the weights and i = d for the bias.
template <typename T>
__global__ void update_rows(T* __restrict__ W, T* __restrict__ b, int d,
                            const int* __restrict__ rows, int n_rows, const T* __restrict__ GW,
                            const T* __restrict__ Gb, T eta) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)n_rows * (d + 1)) return;
    const int c = (int)(t / (d + 1));
    const int i = (int)(t - (long long)c * (d + 1));
    const long long m = rows[c];
    if (i < d) {
        W[m * d + i] = Rounded<T>::sub(W[m * d + i], Rounded<T>::mul(eta, GW[(long long)c * d + i]));
    } else {
        b[m] = Rounded<T>::sub(b[m], Rounded<T>::mul(eta, Gb[c]));
    }
}

// W[r, c] -= eta * v for the distinct entries (rows[e], cols[e], vals[e]) of a weight
// W (n_out x n_in), and the transposed copy WT (n_in x n_out) follows.
template <typename T>
__global__ void update_entries(T* __restrict__ W, T* __restrict__ WT, int n_in, int n_out,
                               const int* __restrict__ rows, const int* __restrict__ cols,
                               const T* __restrict__ vals, int n_entries, T eta) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= n_entries) return;
    const long long r = rows[e];
    const long long c = cols[e];
    const T w = Rounded<T>::sub(W[r * n_in + c], Rounded<T>::mul(eta, vals[e]));
    W[r * n_in + c] = w;
    WT[c * n_out + r] = w;
}
