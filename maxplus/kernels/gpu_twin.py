"""CPU twins of the CUDA kernels (:mod:`.gpu`), so that their logic is exercised on
machines without a GPU.

The tropical product, from two sides:

* :func:`tropical_product_twin`, in NumPy, runs the kernel's *algorithm* with the
  kernel's tile table (:data:`.gpu.TILES`): the same padded shared-memory tiles
  (the semiring's zero outside the matrices), the same map from (block, thread,
  register) to output, the same loop order (k tiles in increasing order, then k
  within the tile) and the same strict comparison. All the threads of all the
  blocks advance together, one k at a time, as whole arrays.
* :class:`HostEmulation` compiles the CUDA *source itself* (``tropical_product.cu``)
  with the host C++ compiler, behind a small shim that maps the CUDA built-ins to
  C++ (one ``std::thread`` per CUDA thread, ``__syncthreads`` a ``std::barrier``,
  ``__shared__`` a static array, blocks run one after another), and launches the
  very template instances that CuPy compiles, on the grid that :mod:`.gpu` launches.
  It checks the index arithmetic, the tile loads, the double buffering and the
  edges of the real source; only the few lines of inline PTX (the device branch of
  ``keep_first_best``) are replaced by their C++ branch.

The trainers' kernels (``linear.cu``, ``tropical_training.cu``), likewise:

* :class:`TwinKernels`: a twin of each kernel with the same arithmetic in the same
  order (NumPy) and the same per-output logic (numba loops), behind the methods of
  :class:`.gpu.CudaKernels`, so that :mod:`maxplus.gpu_training` runs unchanged on
  NumPy arrays;
* :class:`EmulatedKernels`: :class:`.gpu.CudaKernels` itself (its grids, arguments
  and staging) driving the CUDA sources compiled for the CPU by :class:`HostProgram`
  (the same shim, plus warp ballots and atomics).

On a GPU, the tests compare the real kernels with the twins.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

import numba as nb
import numpy as np

from .cpu_losses import loss_of_row
from .gpu import (
    LINEAR_SOURCE,
    TRAINING_SOURCE,
    CudaKernels,
    Staging,
    cuda_programs,
    launch_slabs,
    source_path,
    tile_config,
)

# --------------------------------------------------------------------------- NumPy twin


def thread_offsets(extent: int, threads: int, per_thread: int) -> np.ndarray:
    """``tile_offset<EXTENT, HALF>(t, r)`` of the kernel for every thread ``t`` and
    register ``r``: shape (threads, per_thread). Each thread owns two groups of
    ``per_thread / 2`` consecutive rows (or columns), at ``t·half`` and
    ``extent/2 + t·half``."""
    half = per_thread // 2
    t = np.arange(threads)[:, None]
    r = np.arange(per_thread)[None, :]
    return np.where(r < half, t * half + r, extent // 2 + t * half + (r - half))


def output_coordinates(n_blocks: int, extent: int, threads: int, per_thread: int) -> np.ndarray:
    """Global row (or column) of every (block, thread, register), flattened in that
    order. Covers ``n_blocks · extent`` rows, each exactly once."""
    local = thread_offsets(extent, threads, per_thread)
    return (np.arange(n_blocks)[:, None, None] * extent + local[None]).reshape(-1)


def tropical_product_twin(A, B, C, I, maximize: bool) -> None:  # noqa: N803 - matrix names
    """NumPy twin of :func:`.gpu.tropical_product_gpu`: same signature, on NumPy arrays.

    Fills ``C`` and ``I`` exactly as the CUDA kernel does: ``C[i, j] = max_k A[i, k] +
    B[k, j]`` (min for ``maximize=False``), ``I`` the lowest ``k`` attaining it.
    """
    config = tile_config(A.dtype)
    dtype = np.dtype(A.dtype)
    n, k = A.shape
    m = B.shape[1]
    if n == 0 or m == 0:
        return
    zero = dtype.type(-np.inf if maximize else np.inf)
    bm, bn, bk = config.block_rows, config.block_cols, config.tile_k
    grid_y, grid_x, n_tiles = -(-n // bm), -(-m // bn), -(-k // bk)

    # What the blocks load into shared memory: the zero outside the matrices.
    a_tiles = np.full((grid_y * bm, n_tiles * bk), zero, dtype)
    a_tiles[:n, :k] = A
    b_tiles = np.full((n_tiles * bk, grid_x * bn), zero, dtype)
    b_tiles[:k, :m] = B

    rows = output_coordinates(grid_y, bm, config.threads_y, config.thread_rows)
    cols = output_coordinates(grid_x, bn, config.threads_x, config.thread_cols)
    best = np.full((rows.size, cols.size), zero, dtype)  # every thread's registers
    arg = np.zeros((rows.size, cols.size), np.int32)
    better = np.empty(best.shape, bool)
    improves = np.greater if maximize else np.less
    for tile in range(n_tiles):
        for kk in range(bk):
            kg = tile * bk + kk
            candidate = a_tiles[rows, kg][:, None] + b_tiles[kg, cols][None, :]
            improves(candidate, best, out=better)
            np.copyto(best, candidate, where=better)
            arg[better] = kg

    keep_rows, keep_cols = rows < n, cols < m  # out-of-range outputs are not written
    out_rows, out_cols = np.ix_(rows[keep_rows], cols[keep_cols])
    C[out_rows, out_cols] = best[np.ix_(keep_rows, keep_cols)]
    I[out_rows, out_cols] = arg[np.ix_(keep_rows, keep_cols)]


# ------------------------------------------------------------- the CUDA source on the CPU

#: Maps the CUDA built-ins that the kernels use to standard C++20.
HOST_SHIM = r"""
#include <barrier>
#include <cstring>
#include <thread>
#include <vector>

struct dim3 { unsigned x = 0, y = 0, z = 0; };
static thread_local dim3 threadIdx;
static thread_local dim3 blockIdx;
static dim3 blockDim;
static dim3 gridDim;
static std::barrier<>* block_barrier = nullptr;

inline void __syncthreads() { block_barrier->arrive_and_wait(); }
inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, sizeof f); return f; }
inline double __longlong_as_double(long long x) {
    double d; std::memcpy(&d, &x, sizeof d); return d;
}

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
"""

#: Runs every block of a grid, one after the other, each with one thread per CUDA thread.
HOST_LAUNCHER = r"""
template <typename T>
static void launch(void (*kernel)(const T*, const T*, T*, int*, int, int, int),
                   const void* A, const void* B, void* C, int* I, int n, int k, int m,
                   unsigned grid_x, unsigned grid_y, unsigned threads) {
    blockDim = dim3{threads, 1, 1};
    gridDim = dim3{grid_x, grid_y, 1};
    for (unsigned by = 0; by < grid_y; ++by) {
        for (unsigned bx = 0; bx < grid_x; ++bx) {
            std::barrier<> barrier(threads);
            block_barrier = &barrier;
            std::vector<std::thread> pool;
            for (unsigned t = 0; t < threads; ++t) {
                pool.emplace_back([=] {
                    threadIdx = dim3{t, 0, 0};
                    blockIdx = dim3{bx, by, 0};
                    kernel(static_cast<const T*>(A), static_cast<const T*>(B),
                           static_cast<T*>(C), I, n, k, m);
                });
            }
            for (auto& thread : pool) thread.join();
        }
    }
}
"""


def host_emulation_source(filename: str) -> str:
    """C++ translation unit: the shim, the CUDA source, and one ``extern "C"`` entry
    point ``emulate_<number>`` per template instance of :func:`.gpu.cuda_programs`."""
    parts = [HOST_SHIM, f'#include "{source_path(filename)}"', HOST_LAUNCHER]
    for number, name in enumerate(cuda_programs()[filename]):
        parts.append(
            f'extern "C" void emulate_{number}(const void* A, const void* B, void* C, int* I,\n'
            "        int n, int k, int m, unsigned grid_x, unsigned grid_y, unsigned threads) {\n"
            f"    launch(&{name}, A, B, C, I, n, k, m, grid_x, grid_y, threads);\n"
            "}"
        )
    return "\n".join(parts) + "\n"


def host_compiler() -> str | None:
    """The C++ compiler used for the emulation (``g++`` or ``clang++``), if any."""
    return shutil.which("g++") or shutil.which("clang++")


class HostEmulation:
    """The CUDA tropical product source compiled for, and run on, the CPU.

    ``HostEmulation(workdir)`` compiles once (a few seconds); then
    ``emulation(A, B, C, I, maximize)`` has the signature of
    :func:`.gpu.tropical_product_gpu`, on NumPy arrays. Slow (one OS thread per
    CUDA thread): for small test matrices only.
    """

    FILENAME = "tropical_product.cu"

    def __init__(self, workdir: str | Path | None = None):
        compiler = host_compiler()
        if compiler is None:
            raise RuntimeError("no C++ compiler (g++ or clang++) found for the host emulation")
        workdir = Path(workdir or tempfile.mkdtemp(prefix="maxplus-emulation-"))
        workdir.mkdir(parents=True, exist_ok=True)
        source = workdir / "emulation.cpp"
        library = workdir / "emulation.so"
        source.write_text(host_emulation_source(self.FILENAME), encoding="utf-8")
        command = [
            compiler,
            "-std=c++20",
            "-O1",
            "-shared",
            "-fPIC",
            "-pthread",
            "-o",
            str(library),
            str(source),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"host compilation of {self.FILENAME} failed:\n{result.stderr}")
        self._library = ctypes.CDLL(str(library))
        self._names = cuda_programs()[self.FILENAME]

    def entry_point(self, dtype, maximize: bool):
        from .gpu import tropical_product_name

        number = self._names.index(tropical_product_name(dtype, maximize))
        function = getattr(self._library, f"emulate_{number}")
        function.restype = None
        function.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 3 + [ctypes.c_uint] * 3
        return function

    def __call__(self, A, B, C, I, maximize: bool) -> None:  # noqa: N803
        for name, M in (("A", A), ("B", B), ("C", C), ("I", I)):
            if not (isinstance(M, np.ndarray) and M.flags.c_contiguous):
                raise ValueError(f"{name} must be a C-contiguous NumPy array")
        if I.dtype != np.int32 or not (A.dtype == B.dtype == C.dtype):
            raise TypeError("A, B, C must share one float dtype and I must be int32")
        n, k = A.shape
        m = B.shape[1]
        if n == 0 or m == 0:
            return
        config = tile_config(A.dtype)
        function = self.entry_point(A.dtype, maximize)
        for i0, i1, (grid_x, grid_y, _) in launch_slabs(n, m, config):
            function(
                A[i0:].ctypes.data,
                B.ctypes.data,
                C[i0:].ctypes.data,
                I[i0:].ctypes.data,
                i1 - i0,
                k,
                m,
                grid_x,
                grid_y,
                config.threads,
            )


# ==================================================================== the trainers' kernels
#
# Twins of linear.cu and tropical_training.cu: the same arithmetic in the same order
# (NumPy's float32/float64 operations round each product and sum on their own, as the
# CUDA kernels' __fmul_rn/__fadd_rn do), and the same per-output logic (numba loops,
# one iteration per CUDA thread or lane, in the order that fixes the kernel's outputs).
# :class:`TwinKernels` bundles them behind the interface of :class:`.gpu.CudaKernels`.


def ordered_gemm_twin(A, B, bias=None):  # noqa: N803
    """``ordered_gemm``'s values: ``C[i, j] = (Σ_k A[i, k] B[k, j]) + bias[j]``, k
    ascending, every product and sum rounded in the dtype. A is n×k, B is k×m."""
    acc = np.zeros((A.shape[0], B.shape[1]), dtype=B.dtype)
    for k in range(A.shape[1]):
        acc = acc + A[:, k : k + 1] * B[k : k + 1, :]
    return acc if bias is None else acc + bias[None, :]


def linear_twin(X, W, b, Z, cols=None, old=None) -> None:  # noqa: N803
    """Twin of ``CudaKernels.linear``: ``Z[:, c] = X W[c]ᵀ + b[c]`` (all columns, or
    ``cols`` with their previous values to ``old``)."""
    columns = np.arange(W.shape[0]) if cols is None else np.asarray(cols, dtype=np.int64)
    values = ordered_gemm_twin(X, W[columns].T, None if b is None else b[columns])
    if old is not None:
        old[...] = Z[:, columns]
    Z[:, columns] = values


def linear_backward_twin(G, X, grad_W, grad_b) -> None:  # noqa: N803
    """Twin of ``CudaKernels.linear_backward``: ``grad_W = Gᵀ X`` (samples ascending,
    in the dtype) and ``grad_b = Gᵀ 1`` (in float64, rounded once)."""
    grad_W[...] = ordered_gemm_twin(G.T, X)
    acc = np.zeros(G.shape[1], dtype=np.float64)
    for n in range(G.shape[0]):
        acc = acc + G[n].astype(np.float64)
    grad_b[...] = acc.astype(grad_b.dtype)


def shift_columns_twin(Z, cols, coef, store, slots, old) -> None:  # noqa: N803
    """Twin of ``shift_columns``: ``Z[n, cols[c]] -= Σ_s coef[s, c] (store[slots[s], n] + 1)``
    in float64, rounded once; the previous values to ``old``."""
    cols = np.asarray(cols, dtype=np.int64)
    old[...] = Z[:, cols]
    delta = np.zeros(old.shape, dtype=np.float64)
    for s in range(slots.size):
        r = store[slots[s]].astype(np.float64)
        delta = delta + coef[s].astype(np.float64)[None, :] * (r[:, None] + 1.0)
    Z[:, cols] = (old.astype(np.float64) - delta).astype(Z.dtype)


def scale_subtract_twin(P, G, eta) -> None:  # noqa: N803
    P[...] = P - P.dtype.type(eta) * G


def update_rows_twin(W, b, rows, GW, Gb, eta) -> None:  # noqa: N803
    rows = np.asarray(rows, dtype=np.int64)
    W[rows] = W[rows] - W.dtype.type(eta) * GW
    b[rows] = b[rows] - b.dtype.type(eta) * Gb


def update_entries_twin(W, WT, rows, cols, vals, eta) -> None:  # noqa: N803
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    w = W[rows, cols] - W.dtype.type(eta) * vals
    W[rows, cols] = w
    WT[cols, rows] = w


@nb.njit(inline="always")
def _improves(a, b, maximize):
    return a > b if maximize else a < b


@nb.njit(inline="always")
def _better_of(a, b, maximize):
    return a if _improves(a, b, maximize) else b


@nb.njit(cache=True)
def _candidate(h, s, r, cand, i, maximize):
    """Candidate ``i`` of one output, now worth ``cand`` (``OutputState::candidate`` of
    tropical_training.cu): it takes over if it beats ``h`` (lowest index on ties), the
    old ``h`` then bounding the runners; if selected it keeps the selection, and
    ``lose`` says a rescan is due (it got worse without staying better than ``r``).
    Returns the new ``(h, s, r, lose)``."""
    is_sel = s == i
    take = (not is_sel) and (_improves(cand, h, maximize) or (cand == h and i < s))
    lose = is_sel and _improves(h, cand, maximize) and not _improves(cand, r, maximize)
    r_take = _better_of(r, h, maximize)
    r_other = r if is_sel else _better_of(r, cand, maximize)
    h = cand if (is_sel or take) else h
    s = i if take else s
    r = r_take if take else r_other
    return h, s, r, lose


@nb.njit(cache=True)
def _rescan(Hin, WT, n, j, maximize):  # noqa: N803
    zero = -np.inf if maximize else np.inf
    best, second, arg = zero, zero, 0
    for i in range(Hin.shape[1]):
        v = WT[i, j] + Hin[n, i]
        if _improves(v, best, maximize):
            second = best
            best = v
            arg = i
        elif not _improves(second, v, maximize):
            second = v
    return best, arg, second


@nb.njit(cache=True)
def tropical_top2_twin(Hin, WT, H, S, R, maximize):  # noqa: N803
    """Twin of ``tropical_top2``: one iteration of (n, j) per CUDA thread."""
    for n in range(Hin.shape[0]):
        for j in range(WT.shape[1]):
            H[n, j], S[n, j], R[n, j] = _rescan(Hin, WT, n, j, maximize)


@nb.njit(cache=True)
def repair_layer_twin(
    Hin,  # noqa: N803
    W,  # noqa: N803
    WT,  # noqa: N803
    H,  # noqa: N803
    S,  # noqa: N803
    R,  # noqa: N803
    maximize,
    ci_count,
    count_stride,
    ci_idx,
    idx_stride,
    ci_old,
    old_stride,
    w_rows,
    w_cols,
    co_count,
    co_idx,
    co_old,
    counters,
):
    """Twin of ``repair_layer``: per sample, per output (one lane each, outputs in
    increasing order, as the ballots compact them), the same sequence of candidates.
    ``ci_count``, ``ci_idx``, ``ci_old`` are flat with the kernel's strides."""
    N, n_in = Hin.shape  # noqa: N806
    n_out = W.shape[0]
    n_w = w_rows.shape[0]
    for n in range(N):
        count = ci_count[n * count_stride]
        if count == 0 and n_w == 0:
            co_count[n] = 0
            continue
        full = 4 * count >= n_in
        changed = 0
        rescans = 0
        for j in range(n_out):
            h, s, r = H[n, j], S[n, j], R[n, j]
            previous = h
            dirty = full
            if not full:
                for t in range(count):
                    i = ci_idx[n * idx_stride + t]
                    hi = Hin[n, i]
                    cand = WT[i, j] + hi
                    is_sel = s == i
                    if _improves(hi, ci_old[n * old_stride + t], maximize):
                        h, s, r, lose = _candidate(h, s, r, cand, i, maximize)
                        dirty = dirty or lose
                    else:
                        lose = is_sel and _improves(h, cand, maximize)
                        lose = lose and not _improves(cand, r, maximize)
                        h = cand if is_sel else h
                        dirty = dirty or lose
                for e in range(n_w):
                    if w_rows[e] == j:
                        i = w_cols[e]
                        h, s, r, lose = _candidate(h, s, r, W[j, i] + Hin[n, i], i, maximize)
                        dirty = dirty or lose
            if dirty:
                h, s, r = _rescan(Hin, WT, n, j, maximize)
                rescans += 1
            H[n, j], S[n, j], R[n, j] = h, s, r
            if h != previous:
                co_idx[n, changed] = j
                co_old[n, changed] = previous
                changed += 1
        co_count[n] = changed
        if not full:
            counters[0] += count * n_out + n_w
        counters[1] += rescans
        if changed:
            counters[2] += 1


def tropical_backward_weights_twin(G, S, grad_W) -> None:  # noqa: N803
    """``grad_W[j, i] = Σ_{n ascending: S[n,j]=i} G[n, j]`` in the dtype."""
    grad_W[...] = 0
    units = np.arange(G.shape[1])
    for n in range(G.shape[0]):
        grad_W[units, S[n]] += G[n]  # one entry per unit j: no repeated index


def tropical_backward_inputs_twin(G, S, G_in) -> None:  # noqa: N803
    """``G_in[n, i] = Σ_{j ascending: S[n,j]=i} G[n, j]`` in the dtype."""
    G_in[...] = 0
    samples = np.arange(G.shape[0])
    for j in range(G.shape[1]):
        G_in[samples, S[:, j]] += G[:, j]


@nb.njit(cache=True)
def row_losses_twin(scores, y, code, L, changed, only_changed):  # noqa: N803
    """Twin of ``row_losses``: one iteration per CUDA thread, the CPU kernel's
    operation order (:func:`maxplus.kernels.cpu_losses.loss_of_row`)."""
    for n in range(scores.shape[0]):
        if only_changed and changed[n] == 0:
            continue
        L[n] = loss_of_row(scores, n, y[n], code)


@nb.njit(cache=True)
def tropical_scan_twin(Hin, WT, H, S, maximize):  # noqa: N803
    """``H, S`` of ``Hin ⊗ WT`` by one scan per output, candidates in increasing order
    with strict improvement: the values and indices of the tiled product (whose own
    twin is :func:`tropical_product_twin`), serially and quickly."""
    for n in range(Hin.shape[0]):
        for j in range(WT.shape[1]):
            H[n, j], S[n, j], _ = _rescan(Hin, WT, n, j, maximize)


class Ready:
    """A finished copy (the twin of :class:`.gpu.Pending`)."""

    def __init__(self, host):
        self.host = host

    def result(self) -> np.ndarray:
        return self.host.copy()


class TwinKernels:
    """The CPU twins of :class:`.gpu.CudaKernels`, with the same methods, on NumPy
    arrays: the GPU trainers of :mod:`maxplus.gpu_training` run on them unchanged."""

    name = "twin"
    counter_dtype = np.int64
    xp = np

    def is_array(self, a) -> bool:
        return isinstance(a, np.ndarray)

    # ---- linear.cu
    linear = staticmethod(linear_twin)
    linear_backward = staticmethod(linear_backward_twin)
    shift_columns = staticmethod(shift_columns_twin)
    scale_subtract = staticmethod(scale_subtract_twin)
    update_rows = staticmethod(update_rows_twin)
    update_entries = staticmethod(update_entries_twin)

    # ---- tropical_training.cu
    @staticmethod
    def tropical_product(Hin, WT, H, S, maximize) -> None:  # noqa: N803
        tropical_scan_twin(Hin, WT, H, S, bool(maximize))

    @staticmethod
    def tropical_top2(Hin, WT, H, S, R, maximize) -> None:  # noqa: N803
        tropical_top2_twin(Hin, WT, H, S, R, bool(maximize))

    @staticmethod
    def repair_layer(
        Hin, W, WT, H, S, R, maximize, changes, w_rows, w_cols, co_count, co_idx, co_old,  # noqa: N803
        counters,
    ) -> None:  # fmt: skip
        repair_layer_twin(
            Hin, W, WT, H, S, R, bool(maximize),
            np.ascontiguousarray(changes.count).reshape(-1), changes.count_stride,
            np.ascontiguousarray(changes.idx).reshape(-1), changes.idx_stride,
            np.ascontiguousarray(changes.old).reshape(-1), changes.old_stride,
            np.asarray(w_rows, dtype=np.int32), np.asarray(w_cols, dtype=np.int32),
            co_count, co_idx, co_old, counters,
        )  # fmt: skip

    tropical_backward_weights = staticmethod(tropical_backward_weights_twin)
    tropical_backward_inputs = staticmethod(tropical_backward_inputs_twin)

    @staticmethod
    def row_losses(scores, y, code, L, changed=None) -> None:  # noqa: N803
        flags = np.zeros(0, np.int32) if changed is None else changed
        row_losses_twin(scores, y, code, L, flags, changed is not None)

    # ---- transfers (copies, as the device would make)
    @staticmethod
    def upload(arrays: list) -> list:
        return [np.array(a, copy=True) for a in arrays]

    @staticmethod
    def gather_rows(rows, arrays: list):
        rows = np.asarray(rows, dtype=np.int64).reshape(-1).copy()
        return rows, [a[rows].copy() for a in arrays]

    @staticmethod
    def fetch(array) -> Ready:
        return Ready(np.array(array, copy=True))

    @staticmethod
    def to_host(a) -> np.ndarray:
        return np.array(a, copy=True)


# ------------------------------------------- the trainers' CUDA sources on the CPU

#: Built-ins that the trainers' sources use beyond :data:`HOST_SHIM`: rounded
#: arithmetic (the file is compiled with -ffp-contract=off), bit casts, popcount,
#: the 64-bit atomicAdd and the warp ballot (a barrier per warp).
HOST_SHIM_TRAINING = r"""
#include <atomic>
#include <cmath>
#include <cstddef>
#include <memory>
#include <utility>

inline int __float_as_int(float f) { int x; std::memcpy(&x, &f, sizeof x); return x; }
inline long long __double_as_longlong(double d) {
    long long x; std::memcpy(&x, &d, sizeof x); return x;
}
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return std::atomic_ref<unsigned long long>(*p).fetch_add(v);
}

struct WarpSync {
    std::barrier<>* barrier = nullptr;
    std::atomic<unsigned> bits{0};
};
static WarpSync* warp_syncs = nullptr;

// Every lane of the warp arrives, sets its bit, reads the word, and lane 0 clears
// it before the next ballot can start.
inline unsigned __ballot_sync(unsigned, int predicate) {
    WarpSync& w = warp_syncs[threadIdx.x / 32];
    const unsigned lane = threadIdx.x % 32;
    w.barrier->arrive_and_wait();
    if (predicate) w.bits.fetch_or(1u << lane);
    w.barrier->arrive_and_wait();
    const unsigned bits = w.bits.load();
    w.barrier->arrive_and_wait();
    if (lane == 0) w.bits.store(0);
    return bits;
}
"""

#: Runs any kernel with arguments packed as CUDA's kernelParams (an array of
#: pointers to the values): blocks one after another, one thread per CUDA thread.
HOST_PACKED_LAUNCHER = r"""
template <typename... Args, std::size_t... I>
static void call_packed(void (*kernel)(Args...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<Args*>(args[I])...);
}

template <typename... Args>
static void launch_packed(void (*kernel)(Args...), void** args, unsigned grid_x,
                          unsigned grid_y, unsigned threads) {
    blockDim = dim3{threads, 1, 1};
    gridDim = dim3{grid_x, grid_y, 1};
    const unsigned n_warps = (threads + 31) / 32;
    for (unsigned by = 0; by < grid_y; ++by) {
        for (unsigned bx = 0; bx < grid_x; ++bx) {
            std::barrier<> barrier(threads);
            block_barrier = &barrier;
            std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
            std::unique_ptr<WarpSync[]> syncs(new WarpSync[n_warps]);
            for (unsigned w = 0; w < n_warps; ++w) {
                const unsigned lanes = threads - 32 * w < 32 ? threads - 32 * w : 32;
                warp_barriers.emplace_back(new std::barrier<>(lanes));
                syncs[w].barrier = warp_barriers.back().get();
            }
            warp_syncs = syncs.get();
            std::vector<std::thread> pool;
            for (unsigned t = 0; t < threads; ++t) {
                pool.emplace_back([=] {
                    threadIdx = dim3{t, 0, 0};
                    blockIdx = dim3{bx, by, 0};
                    call_packed(kernel, args, std::index_sequence_for<Args...>{});
                });
            }
            for (auto& thread : pool) thread.join();
        }
    }
}
"""

_CTYPES = {
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.uint64): ctypes.c_uint64,
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
}


def host_program_source(filename: str) -> str:
    """C++ translation unit: the shims, the CUDA source, and one ``extern "C"`` entry
    point ``run_<number>(args, grid_x, grid_y, threads)`` per template instance."""
    parts = [HOST_SHIM, HOST_SHIM_TRAINING, f'#include "{source_path(filename)}"']
    parts.append(HOST_PACKED_LAUNCHER)
    for number, name in enumerate(cuda_programs()[filename]):
        parts.append(
            f'extern "C" void run_{number}(void** args, unsigned grid_x, unsigned grid_y,\n'
            f"        unsigned threads) {{\n"
            f"    launch_packed(&{name}, args, grid_x, grid_y, threads);\n}}"
        )
    return "\n".join(parts) + "\n"


class HostFunction:
    """One kernel instance run on the CPU, called like a :class:`cupy.RawKernel`:
    ``f(grid, block, args)`` with NumPy arrays (passed as pointers) and NumPy scalars
    of the parameter types (int32, int64, uint64, float32, float64)."""

    def __init__(self, entry, name: str):
        self.entry, self.name = entry, name

    def __call__(self, grid, block, args) -> None:
        values = []
        for a in args:
            if isinstance(a, np.ndarray):
                values.append(ctypes.c_void_p(a.ctypes.data))
            elif isinstance(a, np.generic) and a.dtype in _CTYPES:
                values.append(_CTYPES[a.dtype](a.item()))
            else:
                raise TypeError(f"{self.name}: unsupported kernel argument {a!r}")
        packed = (ctypes.c_void_p * len(values))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values]
        )
        grid = tuple(grid) + (1, 1)
        self.entry(packed, int(grid[0]), int(grid[1]), int(tuple(block)[0]))


class HostProgram:
    """A CUDA source of the package compiled with the host C++ compiler behind the
    shims (as :class:`HostEmulation` does for the product), with every template
    instance of :func:`.gpu.cuda_programs` callable like a RawKernel. Slow (one OS
    thread per CUDA thread): for small test problems."""

    def __init__(self, filename: str, workdir: str | Path | None = None):
        compiler = host_compiler()
        if compiler is None:
            raise RuntimeError("no C++ compiler (g++ or clang++) found for the host emulation")
        workdir = Path(workdir or tempfile.mkdtemp(prefix="maxplus-emulation-"))
        workdir.mkdir(parents=True, exist_ok=True)
        stem = Path(filename).stem
        source, library = workdir / f"{stem}.cpp", workdir / f"{stem}.so"
        source.write_text(host_program_source(filename), encoding="utf-8")
        command = [compiler, "-std=c++20", "-O1", "-ffp-contract=off", "-shared", "-fPIC"]
        command += ["-pthread", "-o", str(library), str(source)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"host compilation of {filename} failed:\n{result.stderr}")
        self.filename = filename
        self._library = ctypes.CDLL(str(library))
        self._names = cuda_programs()[filename]
        self._functions = {}

    def function(self, name: str) -> HostFunction:
        if name not in self._functions:
            entry = getattr(self._library, f"run_{self._names.index(name)}")
            entry.restype = None
            entry.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
            self._functions[name] = HostFunction(entry, name)
        return self._functions[name]


class _Done:
    @staticmethod
    def synchronize() -> None:
        pass


class HostStaging(Staging):
    """:class:`.gpu.Staging` with host memory standing in for the device."""

    @staticmethod
    def address(a) -> int:
        return a.ctypes.data

    def pinned(self, nbytes: int) -> np.ndarray:
        return np.empty(max(nbytes, self.ALIGN), dtype=np.uint8)

    def copy(self, dst: int, src: int, nbytes: int, kind: int) -> None:
        ctypes.memmove(dst, src, nbytes)

    def record(self):
        return _Done()

    def synchronize(self) -> None:
        pass


class EmulatedKernels(CudaKernels):
    """:class:`.gpu.CudaKernels` itself (its launch code: grids, arguments, strides,
    staging) driving the CUDA sources compiled for the CPU, on NumPy arrays. The
    tiled tropical product, which has its own emulation (:class:`HostEmulation`),
    is replaced by its twin here."""

    name = "emulation"

    def __init__(self, workdir: str | Path | None = None):
        self.xp = np
        programs = {f: HostProgram(f, workdir) for f in (LINEAR_SOURCE, TRAINING_SOURCE)}
        self.function = lambda source, name: programs[source].function(name)
        self.staging = HostStaging(np, self.function)

    def tropical_product(self, Hin, WT, H, S, maximize: bool) -> None:  # noqa: N803
        tropical_scan_twin(Hin, WT, H, S, bool(maximize))

    def to_host(self, a) -> np.ndarray:
        return np.array(a, copy=True)
