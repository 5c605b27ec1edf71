"""CPU twins of the CUDA tropical product (:mod:`.gpu`), so that its logic is
exercised on machines without a GPU.

Two twins, from two sides:

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

On a GPU, the tests compare the real kernel with :func:`tropical_product_twin`.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .gpu import cuda_programs, launch_slabs, source_path, tile_config

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
