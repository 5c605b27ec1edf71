"""The tropical products with indices that the benchmarks compare.

Every implementation computes ``C[i, j] = max_k A[i, k] + B[k, j]`` (or ``min``) and
``I[i, j]`` = the selected ``k``:

- ``maxplus``: ours, ``maxplus.maxplus_matmul(A, B, return_indices=True)`` (numba);
- ``tropical-gemm``: ``tropical_gemm.maxplus_matmul_with_argmax`` (Rust, SIMD), which
  returns flat arrays (reshaped here, a free view);
- ``numpy`` / ``torch``: broadcasting ``A[:, :, None] + B[None]`` and a reduction with
  its argument, by chunks of rows so that the ``rows×k×m`` temporary stays under
  :data:`CHUNK_BYTES`;
- ``maxplus-cupy`` / ``torch-cuda``: the same on an NVIDIA GPU.

An implementation is a :class:`Product`: ``prepare`` moves NumPy operands into the
implementation's own arrays (outside the timed region), ``run`` computes, and
``synchronize`` waits for a GPU. Looking one up imports its package, so a missing
package skips the benchmark in ``setup`` (``NotImplementedError``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .common import require_gpu, require_module

#: Upper bound on the broadcast temporary of the numpy and torch baselines.
CHUNK_BYTES = 16 * 2**20

CPU_PRODUCTS = ("maxplus", "tropical-gemm", "numpy", "torch")
GPU_PRODUCTS = ("maxplus-cupy", "torch-cuda")


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Product:
    """One implementation of the tropical product with indices."""

    name: str
    maximize: bool
    prepare: Callable  # (A, B) NumPy -> operands for ``run``
    run: Callable  # (*operands) -> (C, I) of shape (n, m)
    synchronize: Callable[[], None] = _nothing

    def __call__(self, *operands):
        """Run and wait for the result (what a timer should measure)."""
        result = self.run(*operands)
        self.synchronize()
        return result


def get_product(name: str, *, maximize: bool = True) -> Product:
    """The implementation called ``name`` (one of CPU_PRODUCTS or GPU_PRODUCTS)."""
    makers = {
        "maxplus": _ours,
        "tropical-gemm": _tropical_gemm,
        "numpy": _numpy_broadcast,
        "torch": _torch_broadcast_cpu,
        "maxplus-cupy": _ours_cupy,
        "torch-cuda": _torch_broadcast_cuda,
    }
    if name not in makers:
        raise ValueError(f"product name must be one of {sorted(makers)}, got {name!r}")
    return makers[name](maximize)


def to_numpy_result(result) -> tuple[np.ndarray, np.ndarray]:
    """``(C, I)`` of any implementation as NumPy arrays (for checking agreement)."""
    return tuple(_to_numpy(x) for x in result)


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch
        return x.detach().cpu().numpy()
    if hasattr(x, "get"):  # cupy
        return x.get()
    return np.asarray(x)


def _same(A, B):  # noqa: N803 - matrix names
    return A, B


def _ours(maximize: bool) -> Product:
    import maxplus

    matmul = maxplus.maxplus_matmul if maximize else maxplus.minplus_matmul
    return Product("maxplus", maximize, _same, lambda A, B: matmul(A, B, return_indices=True))


def _ours_cupy(maximize: bool) -> Product:
    require_gpu()
    import cupy

    import maxplus

    matmul = maxplus.maxplus_matmul if maximize else maxplus.minplus_matmul
    return Product(
        "maxplus-cupy",
        maximize,
        lambda A, B: (cupy.asarray(A), cupy.asarray(B)),
        lambda A, B: matmul(A, B, return_indices=True),
        cupy.cuda.Device().synchronize,
    )


def _tropical_gemm(maximize: bool) -> Product:
    tg = require_module("tropical_gemm")
    stem = "maxplus" if maximize else "minplus"
    kernels = {
        np.dtype(np.float32): getattr(tg, f"{stem}_matmul_with_argmax"),
        np.dtype(np.float64): getattr(tg, f"{stem}_matmul_with_argmax_f64"),
    }

    def run(A, B):  # noqa: N803
        C, I = kernels[A.dtype](A, B)
        shape = (A.shape[0], B.shape[1])
        return C.reshape(shape), I.reshape(shape)

    return Product("tropical-gemm", maximize, _same, run)


def chunk_rows(k: int, m: int, itemsize: int, budget: int | None = None) -> int:
    """Rows of ``A`` per chunk so that the ``rows×k×m`` temporary fits ``budget`` bytes
    (default :data:`CHUNK_BYTES`); at least one row."""
    budget = CHUNK_BYTES if budget is None else budget
    return max(1, budget // max(1, k * m * itemsize))


def _numpy_broadcast(maximize: bool) -> Product:
    def run(A, B):  # noqa: N803
        n, k = A.shape
        m = B.shape[1]
        C = np.empty((n, m), dtype=A.dtype)
        I = np.empty((n, m), dtype=np.intp)
        rows = chunk_rows(k, m, A.itemsize)
        buffer = np.empty((rows, k, m), dtype=A.dtype)
        for i0 in range(0, n, rows):
            a = A[i0 : i0 + rows]
            cand = buffer[: len(a)]
            np.add(a[:, :, None], B[None], out=cand)
            idx = cand.argmax(axis=1) if maximize else cand.argmin(axis=1)
            I[i0 : i0 + rows] = idx
            C[i0 : i0 + rows] = np.take_along_axis(cand, idx[:, None, :], axis=1)[:, 0]
        return C, I

    return Product("numpy", maximize, _same, run)


def _torch_broadcast(name: str, maximize: bool, device: str, synchronize) -> Product:
    torch = require_module("torch")
    reduce = torch.max if maximize else torch.min

    def prepare(A, B):  # noqa: N803
        return torch.as_tensor(A, device=device), torch.as_tensor(B, device=device)

    def run(A, B):  # noqa: N803
        n, k = A.shape
        m = B.shape[1]
        C = torch.empty((n, m), dtype=A.dtype, device=A.device)
        I = torch.empty((n, m), dtype=torch.int64, device=A.device)
        rows = chunk_rows(k, m, A.element_size())
        for i0 in range(0, n, rows):
            cand = A[i0 : i0 + rows, :, None] + B[None]
            reduce(cand, dim=1, out=(C[i0 : i0 + rows], I[i0 : i0 + rows]))
        return C, I

    return Product(name, maximize, prepare, run, synchronize)


def _torch_broadcast_cpu(maximize: bool) -> Product:
    return _torch_broadcast("torch", maximize, "cpu", _nothing)


def _torch_broadcast_cuda(maximize: bool) -> Product:
    torch = require_module("torch")
    if not torch.cuda.is_available():
        raise NotImplementedError("torch sees no CUDA device")
    return _torch_broadcast("torch-cuda", maximize, "cuda", torch.cuda.synchronize)
