"""CUDA kernels for CuPy arrays: the tropical product with selected indices.

The CUDA C source lives beside this module (``tropical_product.cu``) and is
compiled at run time by :class:`cupy.RawModule` (NVRTC), once per dtype, for the
device in use. The kernel is a template; its tile sizes are chosen here, in
:data:`TILES`, and reach the source only as template arguments, so that the CPU
twin (:mod:`.gpu_twin`), the compile test and the kernel all read one table.

CuPy is imported lazily: importing this module never needs it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

#: Options handed to NVRTC (and to ``nvcc`` by the compile test).
NVRTC_OPTIONS = ("-std=c++17",)

#: Largest ``gridDim.y`` CUDA allows; taller products are launched in row slabs.
MAX_GRID_Y = 65535

#: Largest n, k or m: the kernel counts in int32 (with room for the last k tile).
MAX_DIMENSION = 2**31 - 1024


@dataclass(frozen=True)
class TileConfig:
    """Tile sizes of the tiled tropical product kernel.

    A block of ``threads`` threads computes a ``block_rows × block_cols`` tile of
    ``C``, reading ``A`` and ``B`` in slices of ``tile_k`` along ``k``; each thread
    accumulates a ``thread_rows × thread_cols`` block of values and indices in
    registers. ``pad_a`` pads the rows of the shared-memory copy of ``A`` against
    bank conflicts.
    """

    block_rows: int  # BM
    block_cols: int  # BN
    tile_k: int  # BK
    thread_rows: int  # TM
    thread_cols: int  # TN
    pad_a: int  # PAD_A

    @property
    def threads_x(self) -> int:
        return self.block_cols // self.thread_cols

    @property
    def threads_y(self) -> int:
        return self.block_rows // self.thread_rows

    @property
    def threads(self) -> int:
        return self.threads_x * self.threads_y

    def template_args(self) -> str:
        return (
            f"{self.block_rows}, {self.block_cols}, {self.tile_k}, "
            f"{self.thread_rows}, {self.thread_cols}, {self.pad_a}"
        )


#: One table for the kernel, its CPU twin and the compile test.
#: float32: 128×128 tiles, 8×8 outputs per thread (64 values + 64 indices in
#: registers), 256 threads. float64 values take two registers each: 64×64 tiles,
#: 4×4 per thread, 256 threads.
TILES = {
    np.dtype(np.float32): TileConfig(128, 128, 8, 8, 8, 4),
    np.dtype(np.float64): TileConfig(64, 64, 8, 4, 4, 2),
}

CUDA_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

TROPICAL_PRODUCT_SOURCE = "tropical_product.cu"


def tile_config(dtype) -> TileConfig:
    dtype = np.dtype(dtype)
    try:
        return TILES[dtype]
    except KeyError:
        raise TypeError(
            f"the GPU tropical product supports float32 and float64, got {dtype}"
        ) from None


def tropical_product_name(dtype, maximize: bool) -> str:
    """The template instance (NVRTC name expression) of the kernel for ``dtype``."""
    dtype = np.dtype(dtype)
    config = tile_config(dtype)
    flag = "true" if maximize else "false"
    return f"tropical_product<{CUDA_TYPES[dtype]}, {flag}, {config.template_args()}>"


def read_source(filename: str) -> str:
    """Text of a CUDA source shipped in this package."""
    return resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")


def cuda_programs() -> dict[str, list[str]]:
    """Every CUDA source of the package and the template instances compiled from it.

    The compile test builds exactly these with ``nvcc``; add new ``.cu`` files here.
    """
    return {
        TROPICAL_PRODUCT_SOURCE: [
            tropical_product_name(dtype, maximize) for dtype in TILES for maximize in (True, False)
        ]
    }


def source_path(filename: str):
    """Path of a CUDA source shipped in this package (for ``nvcc``, ``#include``)."""
    return resources.files(__package__).joinpath(filename)


def instantiation_source(filename: str) -> str:
    """A translation unit for ``nvcc`` that compiles the same template instances of
    ``filename`` as NVRTC does from :func:`cuda_programs`'s name expressions."""
    lines = [f'#include "{source_path(filename)}"']
    for number, name in enumerate(cuda_programs()[filename]):
        lines.append(f"void* instance_{number} = (void*)&{name};")
    return "\n".join(lines) + "\n"


@functools.cache
def _module(dtype_name: str):
    """The compiled RawModule holding the max and min kernels for one dtype."""
    from ..backend import require_cupy

    cp = require_cupy()
    names = [tropical_product_name(dtype_name, maximize) for maximize in (True, False)]
    return cp.RawModule(
        code=read_source(TROPICAL_PRODUCT_SOURCE), options=NVRTC_OPTIONS, name_expressions=names
    )


def tropical_product_kernel(dtype, maximize: bool):
    """The :class:`cupy.RawKernel` for ``dtype`` (compiled, then cached on disk by CuPy)."""
    dtype = np.dtype(dtype)
    return _module(dtype.name).get_function(tropical_product_name(dtype, maximize))


def _check_operands(A, B, C, I, cp) -> None:  # noqa: N803 - matrix names
    for name, M in (("A", A), ("B", B), ("C", C), ("I", I)):
        if not isinstance(M, cp.ndarray):
            raise TypeError(f"{name} must be a CuPy array, got {type(M).__name__}")
        if M.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {M.shape}")
        if not M.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
    tile_config(A.dtype)  # refuses dtypes without a kernel
    dtype = np.dtype(A.dtype)
    if B.dtype != dtype or C.dtype != dtype:
        raise TypeError(f"A, B and C must share one dtype, got {A.dtype}, {B.dtype}, {C.dtype}")
    if I.dtype != np.int32:
        raise TypeError(f"I must be int32, got {I.dtype}")
    n, k = A.shape
    if B.shape[0] != k:
        raise ValueError(f"inner dimensions differ: A has shape {A.shape}, B has shape {B.shape}")
    m = B.shape[1]
    if C.shape != (n, m) or I.shape != (n, m):
        raise ValueError(f"C and I must have shape {(n, m)}, got {C.shape} and {I.shape}")
    if max(n, k, m) > MAX_DIMENSION:
        raise ValueError(f"dimensions must be at most {MAX_DIMENSION}, got n={n}, k={k}, m={m}")


def tropical_product_gpu(A, B, C, I, maximize: bool) -> None:  # noqa: N803
    """Fill ``C`` (n×m) and ``I`` (n×m, int32) with the max-plus (or min-plus)
    product of C-contiguous CuPy arrays ``A`` (n×k) and ``B`` (k×m), on the
    current stream.

    ``C[i, j] = max_k A[i, k] + B[k, j]`` and ``I[i, j]`` the lowest ``k`` attaining
    it, 0 where every candidate is the semiring's zero (and, trivially, when
    k = 0, where ``C`` is the zero).
    """
    from ..backend import require_cupy

    cp = require_cupy()
    _check_operands(A, B, C, I, cp)
    n, k = A.shape
    m = B.shape[1]
    if n == 0 or m == 0:
        return
    config = tile_config(A.dtype)
    kernel = tropical_product_kernel(A.dtype, bool(maximize))
    for i0, i1, grid in launch_slabs(n, m, config):
        args = (A[i0:i1], B, C[i0:i1], I[i0:i1], np.int32(i1 - i0), np.int32(k), np.int32(m))
        kernel(grid, (config.threads, 1, 1), args)


def launch_slabs(n: int, m: int, config: TileConfig):
    """The launches of an n×m product: ``(row_start, row_stop, grid)`` for each slab
    of at most ``MAX_GRID_Y`` block rows, ``grid = (⌈m/BN⌉, ⌈rows/BM⌉, 1)``.

    The kernel's blocks are one-dimensional: ``block = (config.threads, 1, 1)``.
    """
    grid_x = -(-m // config.block_cols)
    slab = MAX_GRID_Y * config.block_rows
    for i0 in range(0, n, slab):
        i1 = min(n, i0 + slab)
        yield i0, i1, (grid_x, -(-(i1 - i0) // config.block_rows), 1)
