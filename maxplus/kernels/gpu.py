"""CUDA kernels for CuPy arrays: the tropical product, and the GPU trainers' kernels.

The CUDA C sources live beside this module and are compiled at run time by
:class:`cupy.RawModule` (NVRTC), then cached on disk by CuPy:

* ``tropical_product.cu``: the tiled tropical product with selected indices. Its
  tile sizes are chosen here, in :data:`TILES`, and reach the source only as
  template arguments, so that the CPU twin (:mod:`.gpu_twin`), the compile test
  and the kernel all read one table;
* ``linear.cu``: fixed-order arithmetic (the linear forward, any subset of its
  columns, the weight gradient, the cached column repair, parameter updates);
* ``tropical_training.cu``: the tropical layers' state with runner bounds, its
  repair after a sparse step, backpropagation through selections, losses.

:func:`cuda_programs` lists every source and the template instances compiled from
it (the compile test builds exactly these with ``nvcc``). :class:`CudaKernels`
bundles the trainers' launchers; :mod:`maxplus.gpu_training` drives them.

CuPy is imported lazily: importing this module never needs it.
"""

from __future__ import annotations

import functools
import re
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
LINEAR_SOURCE = "linear.cu"
TRAINING_SOURCE = "tropical_training.cu"


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


LOCAL_INCLUDE = re.compile(r'^#include "([\w.]+\.cuh)"$', re.MULTILINE)


def read_source(filename: str) -> str:
    """Text of a CUDA source shipped in this package, with its local ``#include
    "name.cuh"`` lines replaced by the header's text (NVRTC gets one self-contained
    program; ``nvcc`` and the host emulation find the header beside the file)."""
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    return LOCAL_INCLUDE.sub(lambda match: read_source(match.group(1)), text)


def cuda_programs() -> dict[str, list[str]]:
    """Every CUDA source of the package and the template instances compiled from it.

    The compile test builds exactly these with ``nvcc``; add new ``.cu`` files here.
    """
    return {
        TROPICAL_PRODUCT_SOURCE: [
            tropical_product_name(dtype, maximize) for dtype in TILES for maximize in (True, False)
        ],
        LINEAR_SOURCE: linear_names(),
        TRAINING_SOURCE: training_names(),
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


# ==================================================================== the trainers' kernels
#
# linear.cu (fixed-order arithmetic) and tropical_training.cu (selections, repair,
# losses), launched on the current CuPy stream. The GPU trainers
# (:mod:`maxplus.gpu_training`) call them through :class:`CudaKernels`; the CPU twins
# (:class:`maxplus.kernels.gpu_twin.TwinKernels`) have the same methods on NumPy arrays.

#: ordered_gemm's tile (GEMM_BM, GEMM_BN in linear.cu) and block size.
GEMM_TILE = 64
GEMM_THREADS = 256
GEMM_HAS_BIAS, GEMM_HAS_COLS, GEMM_HAS_OLD = 1, 2, 4

#: ``cudaMemcpyKind`` values of the CUDA runtime.
MEMCPY_HOST_TO_DEVICE, MEMCPY_DEVICE_TO_HOST = 1, 2

#: Threads per block of the element-wise kernels, and of repair_layer.
THREADS = 256
REPAIR_THREADS = 128


def _cuda_type(dtype) -> str:
    dtype = np.dtype(dtype)
    try:
        return CUDA_TYPES[dtype]
    except KeyError:
        raise TypeError(f"the GPU kernels support float32 and float64, got {dtype}") from None


def _flag(value: bool) -> str:
    return "true" if value else "false"


def gemm_name(dtype, a_kmajor: bool, b_kmajor: bool) -> str:
    return f"ordered_gemm<{_cuda_type(dtype)}, {_flag(a_kmajor)}, {_flag(b_kmajor)}>"


def linear_names() -> list[str]:
    """Template instances of ``linear.cu``: the forward layout (A and B with k
    contiguous) and the backward layout (both k-major) of ``ordered_gemm``, and the
    element-wise kernels, for float32 and float64."""
    names = []
    for dtype in CUDA_TYPES:
        t = CUDA_TYPES[dtype]
        names += [gemm_name(dtype, False, False), gemm_name(dtype, True, True)]
        names += [
            f"{kernel}<{t}>"
            for kernel in (
                "column_sums",
                "shift_columns",
                "scale_subtract",
                "update_rows",
                "update_entries",
            )
        ]
    return names


def training_names() -> list[str]:
    """Template instances of ``tropical_training.cu``."""
    names = []
    for dtype in CUDA_TYPES:
        t = CUDA_TYPES[dtype]
        for maximize in (True, False):
            names += [
                f"tropical_top2<{t}, {_flag(maximize)}>",
                f"repair_layer<{t}, {_flag(maximize)}>",
            ]
        names += [
            f"tropical_backward_weights<{t}>",
            f"tropical_backward_inputs<{t}>",
            f"row_losses<{t}>",
        ]
    return names + ["gather_rows<unsigned int>"]


@functools.cache
def _program(filename: str):
    """The compiled RawModule of one of the trainers' sources (all its instances)."""
    from ..backend import require_cupy

    cp = require_cupy()
    return cp.RawModule(
        code=read_source(filename),
        options=NVRTC_OPTIONS,
        name_expressions=cuda_programs()[filename],
    )


def cuda_function(filename: str, name: str):
    """The :class:`cupy.RawKernel` of instance ``name`` of ``filename``."""
    return _program(filename).get_function(name)


def _blocks(size: int, threads: int = THREADS) -> int:
    return max(1, -(-size // threads))


def ordered_gemm_gpu(
    A,  # noqa: N803
    B,  # noqa: N803
    C,  # noqa: N803
    *,
    n: int,
    m: int,
    k: int,
    lda: int,
    ldb: int,
    ldc: int,
    kmajor: bool,
    bias=None,
    cols=None,
    old=None,
    function=None,
) -> None:
    """Launch ``ordered_gemm`` (see ``linear.cu``): ``C[i, col(j)] = Σ_k A(i,k) B(k,j)
    (+ bias)``, k ascending, products and sums rounded one by one.

    ``kmajor=False``: ``A(i,k) = A[i·lda + k]``, ``B(k,j) = B[col(j)·ldb + k]`` (the
    forward ``X Wᵀ``); ``kmajor=True``: ``A(i,k) = A[k·lda + i]``, ``B(k,j) =
    B[k·ldb + col(j)]`` (the weight gradient ``Gᵀ X``). ``function(source, name)``
    looks the kernel up (default :func:`cuda_function`).
    """
    function = function or cuda_function
    if n == 0 or m == 0:
        return
    grid_x = -(-m // GEMM_TILE)
    grid_y = -(-n // GEMM_TILE)
    if grid_y > MAX_GRID_Y:
        if kmajor:
            raise ValueError(f"ordered_gemm: at most {MAX_GRID_Y * GEMM_TILE} rows, got {n}")
        slab = MAX_GRID_Y * GEMM_TILE
        for i0 in range(0, n, slab):
            i1 = min(n, i0 + slab)
            ordered_gemm_gpu(
                A[i0:i1],
                B,
                C[i0:i1],
                n=i1 - i0,
                m=m,
                k=k,
                lda=lda,
                ldb=ldb,
                ldc=ldc,
                kmajor=False,
                bias=bias,
                cols=cols,
                old=None if old is None else old[i0:i1],
                function=function,
            )
        return
    flags = (
        (GEMM_HAS_BIAS if bias is not None else 0)
        | (GEMM_HAS_COLS if cols is not None else 0)
        | (GEMM_HAS_OLD if old is not None else 0)
    )
    kernel = function(LINEAR_SOURCE, gemm_name(C.dtype, kmajor, kmajor))
    args = (
        A,
        np.int64(lda),
        B,
        np.int64(ldb),
        C if bias is None else bias,  # placeholders for absent pointers (never read)
        C if cols is None else cols,
        C,
        np.int64(ldc),
        C if old is None else old,
        np.int32(n),
        np.int32(m),
        np.int32(k),
        np.int32(flags),
    )
    kernel((grid_x, grid_y, 1), (GEMM_THREADS, 1, 1), args)


def linear_forward_gpu(H, W, b, Z) -> None:  # noqa: N803
    """``Z = H Wᵀ + b`` on CuPy arrays, each entry summed in increasing feature order
    with every product and sum rounded (no FMA): a column recomputed alone equals
    the same column of the full product bitwise (the contract of
    :mod:`maxplus.kernels.cpu_linear`). H (N×d), W (h×d), b (h,), Z (N×h), one
    float dtype, C-contiguous."""
    from ..backend import require_cupy

    cp = require_cupy()
    for name, M, ndim in (("H", H, 2), ("W", W, 2), ("b", b, 1), ("Z", Z, 2)):
        if not isinstance(M, cp.ndarray):
            raise TypeError(f"{name} must be a CuPy array, got {type(M).__name__}")
        if M.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D, got shape {M.shape}")
        if not M.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
        if M.dtype != W.dtype:
            raise TypeError(
                f"H, W, b and Z must share one dtype, got {name} {M.dtype}, W {W.dtype}"
            )
    _cuda_type(W.dtype)
    N, d = H.shape  # noqa: N806
    h = W.shape[0]
    if W.shape[1] != d or b.shape != (h,) or Z.shape != (N, h):
        raise ValueError(f"shapes do not chain: H {H.shape}, W {W.shape}, b {b.shape}, Z {Z.shape}")
    ordered_gemm_gpu(H, W, Z, n=N, m=h, k=d, lda=d, ldb=d, ldc=h, kmajor=False, bias=b)


@dataclass(frozen=True)
class Changes:
    """The changed inputs of a tropical layer, per sample: ``count[n·count_stride]``
    of them, indices ``idx[n·idx_stride + t]``, previous values
    ``old[n·old_stride + t]`` (stride 0: one list shared by every sample)."""

    count: object
    count_stride: int
    idx: object
    idx_stride: int
    old: object
    old_stride: int


def repair_group(n_out: int) -> int:
    """Lanes per sample in ``repair_layer``: the smallest power of two ≥ n_out, at most 32."""
    group = 1
    while group < min(n_out, 32):
        group *= 2
    return group


class Pending:
    """A device-to-host copy in flight; :meth:`result` waits for it."""

    def __init__(self, event, host):
        self.event, self.host = event, host

    def result(self) -> np.ndarray:
        self.event.synchronize()
        return self.host.copy()


class Staging:
    """Pinned host buffers and device buffers for the small per-step transfers, so
    that each direction costs one asynchronous copy on the current stream.

    The CUDA runtime is reached only through the hooks ``xp``, :meth:`address`,
    :meth:`pinned`, :meth:`copy`, :meth:`record` and :meth:`synchronize`, which the
    host emulation (:class:`maxplus.kernels.gpu_twin.HostStaging`) replaces.
    """

    ALIGN = 16

    def __init__(self, xp, function=None):
        self.xp = xp
        self.function = function or cuda_function
        self.up_host = self.up_device = self.up_done = None
        self.down_host = self.down_device = None
        self.fetch_host = {}
        self.plans = {}

    # ---- hooks: the CUDA runtime through CuPy
    @staticmethod
    def address(a) -> int:
        return a.data.ptr

    def pinned(self, nbytes: int) -> np.ndarray:
        import cupyx

        return cupyx.empty_pinned((max(nbytes, self.ALIGN),), dtype=np.uint8)

    def copy(self, dst: int, src: int, nbytes: int, kind: int) -> None:
        stream = self.xp.cuda.get_current_stream()
        self.xp.cuda.runtime.memcpyAsync(dst, src, nbytes, kind, stream.ptr)

    def record(self):
        return self.xp.cuda.get_current_stream().record()

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()

    # ---- transfers
    def upload(self, arrays: list) -> list:
        """Device copies of the NumPy ``arrays`` (views of one device buffer, valid
        until the next upload), with a single host-to-device copy."""
        arrays = [np.ascontiguousarray(a) for a in arrays]
        offsets, total = [], 0
        for a in arrays:
            offsets.append(total)
            total += -(-a.nbytes // self.ALIGN) * self.ALIGN
        if self.up_done is not None:
            self.up_done.synchronize()  # the previous copy has left the host buffer
        if self.up_host is None or self.up_host.size < total:
            self.up_host = self.pinned(2 * total)
            self.up_device = self.xp.empty(self.up_host.size, dtype=np.uint8)
        for a, offset in zip(arrays, offsets, strict=True):
            self.up_host[offset : offset + a.nbytes] = a.reshape(-1).view(np.uint8)
        if total:
            self.copy(
                self.address(self.up_device),
                self.up_host.ctypes.data,
                total,
                MEMCPY_HOST_TO_DEVICE,
            )
        self.up_done = self.record()
        return [
            self.up_device[offset : offset + a.nbytes].view(a.dtype).reshape(a.shape)
            for a, offset in zip(arrays, offsets, strict=True)
        ]

    def gather_plan(self, arrays: list, q: int):
        """For ``gather_rows``: the device table (address, 32-bit words per row, word
        offset) of ``arrays`` for ``q`` samples, the host table and the total words
        (cached by the arrays' addresses and q)."""
        key = (q, tuple((self.address(a), a.shape, a.dtype.str) for a in arrays))
        plan = self.plans.get(key)
        if plan is None:
            table = np.zeros((len(arrays), 3), dtype=np.uint64)
            offset = -(-2 * q // 4) * 4  # the int64 sample indices come first
            for r, a in enumerate(arrays):
                row_bytes = a.dtype.itemsize * (a.size // max(1, a.shape[0]))
                if row_bytes % 4:
                    raise ValueError("gather_rows needs rows of whole 32-bit words")
                table[r] = (self.address(a), row_bytes // 4, offset)
                offset += -(-(q * row_bytes // 4) // 4) * 4  # 16-byte aligned parts
            plan = (self.xp.asarray(table.reshape(-1)), table, offset)
            self.plans[key] = plan
        return plan

    def gather_rows(self, rows, arrays: list):
        """``(rows, [a[rows] for a in arrays])`` on the host, through one kernel and
        one device-to-host copy. ``rows``: a device integer array of sample indices."""
        rows = self.xp.ascontiguousarray(rows.reshape(-1), dtype=np.int64)
        q = int(rows.size)
        device_table, table, words_total = self.gather_plan(arrays, q)
        nbytes = 4 * words_total
        if self.down_host is None or self.down_host.size < nbytes:
            self.down_host = self.pinned(2 * nbytes)
            self.down_device = self.xp.empty(self.down_host.size // 4, dtype=np.uint32)
        kernel = self.function(TRAINING_SOURCE, "gather_rows<unsigned int>")
        longest = max([q] + [q * int(w) for w in table[:, 1]])
        kernel(
            (_blocks(longest), len(arrays) + 1, 1),
            (THREADS, 1, 1),
            (rows, np.int32(q), device_table, np.int32(len(arrays)), self.down_device),
        )
        self.copy(
            self.down_host.ctypes.data,
            self.address(self.down_device),
            nbytes,
            MEMCPY_DEVICE_TO_HOST,
        )
        self.synchronize()
        words = self.down_host[:nbytes].view(np.uint32)
        out_rows = words[: 2 * q].view(np.int64).copy()
        parts = []
        for a, (_, width, start) in zip(arrays, table.tolist(), strict=True):
            chunk = words[start : start + q * width].copy()
            parts.append(chunk.view(a.dtype).reshape((q, *a.shape[1:])))
        return out_rows, parts

    def fetch(self, array) -> Pending:
        """Start copying a small device array to the host; returns a :class:`Pending`."""
        key = (array.shape, array.dtype.str)
        host = self.fetch_host.get(key)
        if host is None:
            host = self.pinned(array.nbytes)[: array.nbytes].view(array.dtype).reshape(array.shape)
            self.fetch_host[key] = host
        array = self.xp.ascontiguousarray(array)
        self.copy(host.ctypes.data, self.address(array), array.nbytes, MEMCPY_DEVICE_TO_HOST)
        return Pending(self.record(), host)


class CudaKernels:
    """The kernels of the GPU trainers, on CuPy arrays (launches on the current stream).

    :class:`maxplus.kernels.gpu_twin.TwinKernels` has the same methods on NumPy
    arrays; :mod:`maxplus.gpu_training` runs on either. The kernels are looked up
    through ``self.function(source, name)`` and the arrays made by ``self.xp``, so
    that :class:`maxplus.kernels.gpu_twin.EmulatedKernels` runs these very launchers
    on the CUDA sources compiled for the CPU.
    """

    name = "cuda"
    counter_dtype = np.uint64

    def __init__(self):
        from ..backend import require_cupy

        self.xp = require_cupy()
        self.function = cuda_function
        self.staging = Staging(self.xp)

    def is_array(self, a) -> bool:
        return isinstance(a, self.xp.ndarray)

    # ---- linear.cu ---------------------------------------------------------------
    def linear(self, X, W, b, Z, cols=None, old=None) -> None:  # noqa: N803
        """``Z[:, c] = X W[c]ᵀ + b[c]`` for every column, or for ``cols`` only (the
        previous values of those columns to ``old``, N × |cols|). ``b`` may be None."""
        N, d = X.shape  # noqa: N806
        m = W.shape[0] if cols is None else int(cols.size)
        ordered_gemm_gpu(
            X, W, Z, n=N, m=m, k=d, lda=d, ldb=d, ldc=Z.shape[1], kmajor=False,
            bias=b, cols=cols, old=old, function=self.function,
        )  # fmt: skip

    def linear_backward(self, G, X, grad_W, grad_b) -> None:  # noqa: N803
        """``grad_W = Gᵀ X`` and ``grad_b = Gᵀ 1``, samples ascending."""
        N, h = G.shape  # noqa: N806
        d = X.shape[1]
        ordered_gemm_gpu(
            G, X, grad_W, n=h, m=d, k=N, lda=h, ldb=d, ldc=d, kmajor=True, function=self.function
        )
        kernel = self.function(LINEAR_SOURCE, f"column_sums<{_cuda_type(G.dtype)}>")
        kernel((_blocks(h, 128),), (128,), (G, np.int32(N), np.int32(h), grad_b))

    def shift_columns(self, Z, cols, coef, store, slots, old) -> None:  # noqa: N803
        """Cached linear repair: ``Z[n, cols[c]] -= Σ_s coef[s, c] (store[slots[s], n] + 1)``."""
        N, h = Z.shape  # noqa: N806
        n_cols, q = int(cols.size), int(slots.size)
        if N * n_cols == 0:
            return
        kernel = self.function(LINEAR_SOURCE, f"shift_columns<{_cuda_type(Z.dtype)}>")
        args = (Z, np.int32(N), np.int32(h), cols, np.int32(n_cols), coef, np.int32(q), store,
                slots, old)  # fmt: skip
        kernel((_blocks(N * n_cols),), (THREADS,), args)

    def scale_subtract(self, P, G, eta) -> None:  # noqa: N803
        """``P -= eta G`` (dense update)."""
        if P.size == 0:
            return
        kernel = self.function(LINEAR_SOURCE, f"scale_subtract<{_cuda_type(P.dtype)}>")
        kernel((_blocks(P.size),), (THREADS,), (P, G, P.dtype.type(eta), np.int64(P.size)))

    def update_rows(self, W, b, rows, GW, Gb, eta) -> None:  # noqa: N803
        """``W[rows] -= eta GW``, ``b[rows] -= eta Gb`` (rows distinct)."""
        n_rows, d = int(rows.size), W.shape[1]
        if n_rows == 0:
            return
        kernel = self.function(LINEAR_SOURCE, f"update_rows<{_cuda_type(W.dtype)}>")
        args = (W, b, np.int32(d), rows, np.int32(n_rows), GW, Gb, W.dtype.type(eta))
        kernel((_blocks(n_rows * (d + 1)),), (THREADS,), args)

    def update_entries(self, W, WT, rows, cols, vals, eta) -> None:  # noqa: N803
        """``W[rows, cols] -= eta vals`` and ``WT[cols, rows]`` the same (distinct entries)."""
        n_entries = int(rows.size)
        if n_entries == 0:
            return
        n_out, n_in = W.shape
        kernel = self.function(LINEAR_SOURCE, f"update_entries<{_cuda_type(W.dtype)}>")
        args = (W, WT, np.int32(n_in), np.int32(n_out), rows, cols, vals, np.int32(n_entries),
                W.dtype.type(eta))  # fmt: skip
        kernel((_blocks(n_entries),), (THREADS,), args)

    # ---- tropical_training.cu ----------------------------------------------------
    def tropical_product(self, Hin, WT, H, S, maximize: bool) -> None:  # noqa: N803
        """``H, S`` = the tropical product ``Hin ⊗ WT`` (the tiled kernel)."""
        tropical_product_gpu(Hin, WT, H, S, maximize)

    def tropical_top2(self, Hin, WT, H, S, R, maximize: bool) -> None:  # noqa: N803
        """``H, S`` and the runner-up ``R`` of ``Hin ⊗ WT``."""
        N, n_in = Hin.shape  # noqa: N806
        n_out = WT.shape[1]
        if N * n_out == 0:
            return
        t = _cuda_type(H.dtype)
        kernel = self.function(TRAINING_SOURCE, f"tropical_top2<{t}, {_flag(maximize)}>")
        args = (Hin, WT, H, S, R, np.int32(N), np.int32(n_in), np.int32(n_out))
        kernel((_blocks(N * n_out),), (THREADS,), args)

    def repair_layer(
        self, Hin, W, WT, H, S, R, maximize, changes, w_rows, w_cols, co_count, co_idx,  # noqa: N803
        co_old, counters,
    ) -> None:  # fmt: skip
        """Repair one tropical layer for every sample (see ``repair_layer`` in
        ``tropical_training.cu``)."""
        N, n_in = Hin.shape  # noqa: N806
        n_out = W.shape[0]
        if N == 0:
            return
        group = repair_group(n_out)
        warps = -(-N // (32 // group))
        t = _cuda_type(H.dtype)
        kernel = self.function(TRAINING_SOURCE, f"repair_layer<{t}, {_flag(maximize)}>")
        n_w = int(w_rows.size)
        args = (
            Hin, W, WT, H, S, R, np.int32(N), np.int32(n_in), np.int32(n_out),
            changes.count, np.int64(changes.count_stride),
            changes.idx if changes.idx.size else co_count, np.int64(changes.idx_stride),
            changes.old if changes.old.size else H, np.int64(changes.old_stride),
            w_rows if n_w else co_count, w_cols if n_w else co_count, np.int32(n_w),
            co_count, co_idx, co_old, counters, np.int32(group),
        )  # fmt: skip
        kernel((_blocks(32 * warps, REPAIR_THREADS),), (REPAIR_THREADS,), args)

    def tropical_backward_weights(self, G, S, grad_W) -> None:  # noqa: N803
        """``grad_W[j, i] = Σ_{n: S[n,j]=i} G[n, j]`` (samples ascending)."""
        N, n_out = G.shape  # noqa: N806
        n_in = grad_W.shape[1]
        name = f"tropical_backward_weights<{_cuda_type(G.dtype)}>"
        args = (G, S, np.int32(N), np.int32(n_out), np.int32(n_in), grad_W)
        self.function(TRAINING_SOURCE, name)((_blocks(n_out * n_in),), (THREADS,), args)

    def tropical_backward_inputs(self, G, S, G_in) -> None:  # noqa: N803
        """``G_in[n, i] = Σ_{j: S[n,j]=i} G[n, j]`` (units ascending)."""
        N, n_out = G.shape  # noqa: N806
        n_in = G_in.shape[1]
        if N * n_in == 0:
            return
        name = f"tropical_backward_inputs<{_cuda_type(G.dtype)}>"
        args = (G, S, np.int32(N), np.int32(n_out), np.int32(n_in), G_in)
        self.function(TRAINING_SOURCE, name)((_blocks(N * n_in),), (THREADS,), args)

    def row_losses(self, scores, y, code: int, L, changed=None) -> None:  # noqa: N803
        """``L[n]`` = the loss of sample n, for every n or where ``changed[n] > 0``."""
        N, K = scores.shape  # noqa: N806
        if N == 0:
            return
        kernel = self.function(TRAINING_SOURCE, f"row_losses<{_cuda_type(scores.dtype)}>")
        args = (scores, y, np.int32(N), np.int32(K), np.int32(code),
                L if changed is None else changed, np.int32(changed is not None), L)  # fmt: skip
        kernel((_blocks(N),), (THREADS,), args)

    # ---- transfers ---------------------------------------------------------------
    def upload(self, arrays: list) -> list:
        """Device copies of small host arrays (one copy), valid until the next upload."""
        return self.staging.upload(arrays)

    def gather_rows(self, rows, arrays: list):
        """Host ``rows`` and ``[a[rows] for a in arrays]`` (one kernel, one copy)."""
        return self.staging.gather_rows(rows, arrays)

    def fetch(self, array) -> Pending:
        """An asynchronous copy of a small device array to the host."""
        return self.staging.fetch(array)

    def to_host(self, a) -> np.ndarray:
        return a.get()
