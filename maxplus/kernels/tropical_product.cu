// Tropical matrix product with selected indices, tiled like an SGEMM.
//
//     C[i, j] = max_k A[i, k] + B[k, j]      (MAXIMIZE = true; min-plus: min)
//     I[i, j] = the lowest k attaining it     (0 when every candidate is the zero)
//
// A is n x k, B is k x m, C and I are n x m, all C-contiguous; I is int32.
//
// Design (the tile sizes are template arguments chosen in maxplus/kernels/gpu.py,
// which the CPU twin maxplus/kernels/gpu_twin.py reads too, so they cannot drift):
//   * a block of TY x TX threads computes a BM x BN tile of C, walking k in tiles
//     of BK; the tiles of A (BM x BK, stored k-major, rows padded by PAD_A) and of
//     B (BK x BN) sit in shared memory, double-buffered: the next tile is fetched
//     from global memory into registers while the current one is consumed;
//   * each thread keeps a TM x TN block of values and indices in registers. Its
//     rows are two groups of TM/2 consecutive rows, ty*TM/2 and BM/2 + ty*TM/2, and
//     its columns likewise, so that a warp's 16-byte shared-memory loads are
//     conflict-free;
//   * k increases monotonically for every output (k tiles in order, then k within
//     a tile) and a candidate replaces the running best only if strictly better:
//     the first, i.e. lowest, index wins on ties, exactly like the CPU kernel;
//   * out-of-range entries of a tile (past n, m or k) are loaded as the
//     semiring's zero (-inf for max, +inf for min). zero + anything is the zero,
//     which never strictly beats the running best, so padding is never selected;
//     out-of-range outputs are not written;
//   * the update of one (value, index) pair is keep_first_best below: 4 instructions
//     per candidate for float, 1 of them on the ALU pipe.
// The one header, semiring_zero.cuh (beside this file), is inlined by
// maxplus.kernels.gpu.read_source for NVRTC (CuPy's RawModule); nvcc finds it as is.

// A 16-byte pack of T, for vectorised shared-memory loads.
template <typename T>
struct alignas(16) Pack16 {
    static constexpr int width = 16 / sizeof(T);
    T v[width];
};

#include "semiring_zero.cuh"

// One step of the running (arg)max: if candidate = a + b is strictly better than
// best, then best = candidate and arg = k. Strictness keeps the earlier (lower) k
// on ties.
//
// On the GPU this is written in PTX to keep the ALU pipe (half the rate of the FMA
// pipe; comparisons and selects run there) from bounding the kernel. Written in
// C++, the update becomes FSETP + FSEL + SEL, three ALU instructions per candidate.
// Here, for float, only the comparison is an ALU instruction: the value is rewritten
// by a predicated fma(a, 1, b), which equals a + b exactly (a single rounding), and
// the index by a predicated integer multiply-add arg * opaque_zero + k, both on the
// FMA pipe. `opaque_zero` is 0 at run time but unknown to the compiler, so that the
// multiply-add is not folded into a select. For double the FP64 pipe is the slow
// one, so the value moves by select (two FSEL on the ALU) and only the index uses
// the multiply-add. The host branch (used by the CPU emulation of this file in
// maxplus/kernels/gpu_twin.py) does the same in C++.
template <bool MAXIMIZE>
__device__ __forceinline__ void keep_first_best(float& best, int& arg, float candidate, float a,
                                                float b, int k, int opaque_zero) {
#ifdef __CUDA_ARCH__
    if (MAXIMIZE) {
        asm("{\n\t.reg .pred p;\n\t"
            "setp.gt.f32 p, %2, %0;\n\t"
            "@p fma.rn.f32 %0, %3, 0f3F800000, %4;\n\t"
            "@p mad.lo.s32 %1, %1, %6, %5;\n\t}"
            : "+f"(best), "+r"(arg)
            : "f"(candidate), "f"(a), "f"(b), "r"(k), "r"(opaque_zero));
    } else {
        asm("{\n\t.reg .pred p;\n\t"
            "setp.lt.f32 p, %2, %0;\n\t"
            "@p fma.rn.f32 %0, %3, 0f3F800000, %4;\n\t"
            "@p mad.lo.s32 %1, %1, %6, %5;\n\t}"
            : "+f"(best), "+r"(arg)
            : "f"(candidate), "f"(a), "f"(b), "r"(k), "r"(opaque_zero));
    }
#else
    if (MAXIMIZE ? (candidate > best) : (candidate < best)) {
        best = candidate;
        arg = arg * opaque_zero + k;
    }
#endif
}

template <bool MAXIMIZE>
__device__ __forceinline__ void keep_first_best(double& best, int& arg, double candidate, double,
                                                double, int k, int opaque_zero) {
#ifdef __CUDA_ARCH__
    if (MAXIMIZE) {
        asm("{\n\t.reg .pred p;\n\t"
            "setp.gt.f64 p, %2, %0;\n\t"
            "@p mov.f64 %0, %2;\n\t"
            "@p mad.lo.s32 %1, %1, %4, %3;\n\t}"
            : "+d"(best), "+r"(arg)
            : "d"(candidate), "r"(k), "r"(opaque_zero));
    } else {
        asm("{\n\t.reg .pred p;\n\t"
            "setp.lt.f64 p, %2, %0;\n\t"
            "@p mov.f64 %0, %2;\n\t"
            "@p mad.lo.s32 %1, %1, %4, %3;\n\t}"
            : "+d"(best), "+r"(arg)
            : "d"(candidate), "r"(k), "r"(opaque_zero));
    }
#else
    if (MAXIMIZE ? (candidate > best) : (candidate < best)) {
        best = candidate;
        arg = arg * opaque_zero + k;
    }
#endif
}

// Row (or column) of a thread's register r inside the block tile: two groups of
// HALF consecutive rows, at t*HALF and at EXTENT/2 + t*HALF.
template <int EXTENT, int HALF>
__device__ __forceinline__ int tile_offset(int t, int r) {
    return (r < HALF) ? t * HALF + r : EXTENT / 2 + t * HALF + (r - HALF);
}

template <typename T, bool MAXIMIZE, int BM, int BN, int BK, int TM, int TN, int PAD_A>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 1)
tropical_product(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C,
                 int* __restrict__ I, int n, int k, int m) {
    constexpr int TX = BN / TN;  // threads along the columns of the tile
    constexpr int TY = BM / TM;  // threads along its rows
    constexpr int THREADS = TX * TY;
    constexpr int HM = TM / 2;
    constexpr int HN = TN / 2;
    constexpr int W = Pack16<T>::width;
    constexpr int A_PER_THREAD = BM * BK / THREADS;  // consecutive k of one row of A
    constexpr int B_PER_THREAD = BK * BN / THREADS;  // consecutive columns of one row of B
    constexpr int A_THREADS_PER_ROW = BK / A_PER_THREAD;
    constexpr int B_THREADS_PER_ROW = BN / B_PER_THREAD;
    static_assert(BM % TM == 0 && BN % TN == 0, "the thread block must tile the block tile");
    static_assert(TM % 2 == 0 && TN % 2 == 0, "each thread owns two groups of rows/columns");
    static_assert(HM % W == 0 && HN % W == 0, "register groups are loaded as 16-byte packs");
    static_assert((BM + PAD_A) % W == 0 && BN % W == 0, "16-byte aligned shared-memory rows");
    static_assert(BM * BK % THREADS == 0 && BK % A_PER_THREAD == 0, "A tile split");
    static_assert(A_THREADS_PER_ROW * BM == THREADS, "A tile split");
    static_assert(BK * BN % THREADS == 0 && BN % B_PER_THREAD == 0, "B tile split");
    static_assert(B_THREADS_PER_ROW * BK == THREADS, "B tile split");

    __shared__ __align__(16) T As[2][BK][BM + PAD_A];  // As[buf][kk][row]
    __shared__ __align__(16) T Bs[2][BK][BN];          // Bs[buf][kk][col]

    const T zero = semiring_zero<T, MAXIMIZE>();
    const int t = threadIdx.x;
    const int tx = t % TX;
    const int ty = t / TX;
    const long long row0 = (long long)blockIdx.y * BM;
    const long long col0 = (long long)blockIdx.x * BN;

    // Which entries of the tiles this thread fetches.
    const int a_row = t / A_THREADS_PER_ROW;
    const int a_k = (t % A_THREADS_PER_ROW) * A_PER_THREAD;
    const int b_k = t / B_THREADS_PER_ROW;
    const int b_col = (t % B_THREADS_PER_ROW) * B_PER_THREAD;
    const long long a_i = row0 + a_row;
    const bool a_row_ok = a_i < n;
    const T* a_src = A + (a_row_ok ? a_i : 0) * (long long)k;

    T a_next[A_PER_THREAD];
    T b_next[B_PER_THREAD];

    T acc[TM][TN];
    int idx[TM][TN];
#pragma unroll
    for (int r = 0; r < TM; ++r) {
#pragma unroll
        for (int c = 0; c < TN; ++c) {
            acc[r][c] = zero;
            idx[r][c] = 0;
        }
    }

    const int n_tiles = (k + BK - 1) / BK;
    // 0: the block is one-dimensional (see keep_first_best).
    const int opaque_zero = (int)threadIdx.z;

    // Fetch tile `tile` from global memory into a_next / b_next (zero outside).
    auto fetch = [&](int tile) {
        const int k0 = tile * BK;
#pragma unroll
        for (int q = 0; q < A_PER_THREAD; ++q) {
            const int kk = k0 + a_k + q;
            a_next[q] = (a_row_ok && kk < k) ? a_src[kk] : zero;
        }
        const int kb = k0 + b_k;
        const T* b_src = B + (long long)(kb < k ? kb : 0) * m;
#pragma unroll
        for (int q = 0; q < B_PER_THREAD; ++q) {
            const long long j = col0 + b_col + q;
            b_next[q] = (kb < k && j < m) ? b_src[j] : zero;
        }
    };
    // Store the fetched tile into shared-memory buffer `buf`.
    auto stash = [&](int buf) {
#pragma unroll
        for (int q = 0; q < A_PER_THREAD; ++q) As[buf][a_k + q][a_row] = a_next[q];
#pragma unroll
        for (int q = 0; q < B_PER_THREAD; ++q) Bs[buf][b_k][b_col + q] = b_next[q];
    };

    if (n_tiles > 0) {
        fetch(0);
        stash(0);
        __syncthreads();
    }
    for (int tile = 0; tile < n_tiles; ++tile) {
        const int buf = tile & 1;
        const bool has_next = tile + 1 < n_tiles;
        if (has_next) fetch(tile + 1);  // in flight while this tile is consumed
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T a[TM];
            T b[TN];
#pragma unroll
            for (int p = 0; p < HM; p += W) {
                const Pack16<T> lo = *reinterpret_cast<const Pack16<T>*>(&As[buf][kk][ty * HM + p]);
                const Pack16<T> hi =
                    *reinterpret_cast<const Pack16<T>*>(&As[buf][kk][BM / 2 + ty * HM + p]);
#pragma unroll
                for (int w = 0; w < W; ++w) {
                    a[p + w] = lo.v[w];
                    a[HM + p + w] = hi.v[w];
                }
            }
#pragma unroll
            for (int p = 0; p < HN; p += W) {
                const Pack16<T> lo = *reinterpret_cast<const Pack16<T>*>(&Bs[buf][kk][tx * HN + p]);
                const Pack16<T> hi =
                    *reinterpret_cast<const Pack16<T>*>(&Bs[buf][kk][BN / 2 + tx * HN + p]);
#pragma unroll
                for (int w = 0; w < W; ++w) {
                    b[p + w] = lo.v[w];
                    b[HN + p + w] = hi.v[w];
                }
            }
            const int kg = tile * BK + kk;
#pragma unroll
            for (int r = 0; r < TM; ++r) {
#pragma unroll
                for (int c = 0; c < TN; ++c) {
                    keep_first_best<MAXIMIZE>(acc[r][c], idx[r][c], a[r] + b[c], a[r], b[c], kg,
                                              opaque_zero);
                }
            }
        }
        if (has_next) stash(buf ^ 1);
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < TM; ++r) {
        const long long i = row0 + tile_offset<BM, HM>(ty, r);
        if (i >= n) continue;
#pragma unroll
        for (int c = 0; c < TN; ++c) {
            const long long j = col0 + tile_offset<BN, HN>(tx, c);
            if (j < m) {
                C[i * m + j] = acc[r][c];
                I[i * m + j] = idx[r][c];
            }
        }
    }
}
