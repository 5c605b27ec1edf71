"""The tropical product with indices, ours and its peers, timed side by side.

Every implementation computes ``C[i, j] = max_k A[i, k] + B[k, j]`` (or ``min``) and
``I[i, j]`` = the selected ``k`` (the lowest on ties):

- ``maxplus``: ours, ``maxplus.maxplus_matmul(A, B, return_indices=True)`` (numba);
- ``tropical-gemm``: ``tropical_gemm.maxplus_matmul_with_argmax`` (Rust, SIMD), which
  returns flat arrays (reshaped here, a free view);
- ``numpy`` / ``torch``: broadcasting ``A[:, :, None] + B[None]`` and a reduction with
  its argument, by chunks of rows so that the ``rows×k×m`` temporary stays under
  :data:`CHUNK_BYTES`;
- ``maxplus-cupy`` / ``torch-cuda``: the same on an NVIDIA GPU.

An implementation is a :class:`Product`: ``prepare`` moves NumPy operands into the
implementation's own arrays (outside the timed region), ``run`` computes, and
``synchronize`` waits for a GPU. Looking one up imports its package; a missing
package (or GPU) raises :class:`PeerUnavailableError`, a ``NotImplementedError``, which
is how an asv benchmark's ``setup`` says "skip me".

Throughput is counted in *pairs*: an ``n×k`` by ``k×m`` product does ``n·k·m``
add-and-compare pairs (one ``A[i,k] + B[k,j]`` and one comparison with the running
best, plus an index update when it wins). :func:`compare_products` times ours, its
peers and the in-run compute roof (:class:`maxplus.roof.L1Roof`) in interleaved
rounds (:func:`interleaved_medians`); ``benchmarks/compare_products.py`` prints it,
the asv suite tracks it, chapter 7 of the book plots it.
"""

from __future__ import annotations

import importlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: Seed of :func:`random_operands`.
SEED = 20260304
#: Upper bound on the broadcast temporary of the numpy and torch baselines.
CHUNK_BYTES = 16 * 2**20
#: Seconds of rest before each sample of :func:`interleaved_medians`.
PAUSE = 0.01
#: Shortest sample of :func:`interleaved_medians`: quicker calls are repeated.
MIN_SAMPLE = 0.05

CPU_PRODUCTS = ("maxplus", "tropical-gemm", "numpy", "torch")
GPU_PRODUCTS = ("maxplus-cupy", "torch-cuda")
OURS = "maxplus"
ROOF = "L1 roof"


class PeerUnavailableError(NotImplementedError):
    """A peer's package (or the GPU it needs) is missing on this machine."""


def require_module(name: str):
    """Import ``name``, or raise :class:`PeerUnavailableError` when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PeerUnavailableError(f"{name} is not installed ({exc})") from None


def require_gpu() -> None:
    """Raise :class:`PeerUnavailableError` on a machine without a usable GPU."""
    from . import backend

    if not backend.gpu_available():
        raise PeerUnavailableError("no CUDA GPU with CuPy on this machine")


# ----------------------------------------------------------------------- operands, pairs


def random_operands(shape: tuple[int, int, int], dtype="float32", seed: int = SEED):
    """Seeded standard-normal ``A`` (n×k) and ``B`` (k×m), C-contiguous, of ``dtype``.

    Continuous random values make ties (and so index disagreements) vanishingly rare.
    """
    n, k, m = shape
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, k)).astype(dtype)
    B = rng.standard_normal((k, m)).astype(dtype)
    return A, B


def pairs(shape: tuple[int, int, int]) -> int:
    """Number of add-and-compare pairs ``n·k·m`` of the product of ``shape``."""
    n, k, m = shape
    return n * k * m


def gpairs_per_second(shape: tuple[int, int, int], seconds: float) -> float:
    """Throughput in billions of pairs per second."""
    return pairs(shape) / seconds / 1e9


# ------------------------------------------------------------------------------- timing


def interleaved_medians(
    calls: dict[str, Callable[[], object]],
    repeats: int = 7,
    warmup: int = 1,
    pause: float = PAUSE,
    min_sample: float = MIN_SAMPLE,
) -> dict[str, float]:
    """Median wall time (seconds per call) of each call, measured in interleaved rounds.

    Each round takes one sample of every call, in a rotated order, so that a slow
    patch of the machine (another process, frequency changes) hits all of them alike.
    ``warmup`` untimed rounds first compile numba kernels and fault in memory; the
    last one also sets, per call, how many back-to-back calls make one sample (enough
    to last ``min_sample`` seconds), so that a millisecond call is timed with its
    threads awake rather than dominated by waking them. An untimed ``pause`` before
    each sample lets the previous library's idle worker threads (OpenMP, rayon) stop
    spinning, so that they do not steal the next sample's cores.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = list(calls)
    number = dict.fromkeys(names, 1)
    for _ in range(warmup):
        for name in names:
            seconds = _sample(calls[name], 1)
            number[name] = max(1, math.ceil(min_sample / max(seconds, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(pause)
            samples[name].append(_sample(calls[name], number[name]) / number[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def _sample(call: Callable[[], object], number: int) -> float:
    """Wall time of ``number`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        call()
    return time.perf_counter() - start


# ------------------------------------------------------------------------ the products


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
    """The implementation called ``name`` (one of CPU_PRODUCTS or GPU_PRODUCTS).

    Raises :class:`PeerUnavailableError` when its package or GPU is missing.
    """
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


def available_products(names=CPU_PRODUCTS, *, maximize: bool = True) -> dict[str, str | None]:
    """``{name: None}`` for each implementation that can run here, ``{name: reason}``
    for the others."""
    found = {}
    for name in names:
        try:
            get_product(name, maximize=maximize)
            found[name] = None
        except PeerUnavailableError as exc:
            found[name] = str(exc)
    return found


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
    from .products import maxplus_matmul, minplus_matmul

    matmul = maxplus_matmul if maximize else minplus_matmul
    return Product("maxplus", maximize, _same, lambda A, B: matmul(A, B, return_indices=True))


def _ours_cupy(maximize: bool) -> Product:
    require_gpu()
    import cupy

    from .products import maxplus_matmul, minplus_matmul

    matmul = maxplus_matmul if maximize else minplus_matmul
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
        raise PeerUnavailableError("torch sees no CUDA device")
    return _torch_broadcast("torch-cuda", maximize, "cuda", torch.cuda.synchronize)


# ---------------------------------------------------------------------- the comparison


@dataclass
class ProductComparison:
    """Median seconds of each contender on one product, and whether results agree.

    Throughput is in G pairs/s, ``n·k·m / seconds / 1e9``; the speed-up over a peer is
    the ratio of throughputs, ``t_peer / t_ours``; the roof fraction is ``ours / roof``
    in G pairs/s.
    """

    shape: tuple[int, int, int]
    dtype: str
    maximize: bool
    repeats: int
    threads: int
    seconds: dict[str, float]
    roof_pairs: int = 0
    #: peer name -> (values identical, indices identical) against ours
    agreement: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    def gpairs(self, name: str) -> float:
        """Throughput of ``name`` in G pairs/s (the roof counts its own pairs)."""
        if name == ROOF:
            return self.roof_pairs / self.seconds[ROOF] / 1e9
        return gpairs_per_second(self.shape, self.seconds[name])

    def speedup_over(self, peer: str) -> float:
        """Throughput of ours divided by the throughput of ``peer``."""
        return self.seconds[peer] / self.seconds[OURS]

    @property
    def roof_fraction(self) -> float:
        """Throughput of ours as a fraction of the L1 roof."""
        return self.gpairs(OURS) / self.gpairs(ROOF)

    def all_agree(self) -> bool:
        return all(values and indices for values, indices in self.agreement.values())

    def report(self) -> str:
        """A plain-text table of the figures."""
        kind = "max-plus" if self.maximize else "min-plus"
        n, k, m = self.shape
        lines = [
            f"{kind} product with indices, {n}x{k} (x) {k}x{m}, {self.dtype}: "
            f"{pairs(self.shape) / 1e9:.3f} G pairs; median of {self.repeats} interleaved "
            f"rounds after warm-up; {self.threads} numba threads",
            f"{'implementation':<16}{'median ms':>12}{'G pairs/s':>12}{'ours / it':>12}",
        ]
        for name in self.seconds:
            ratio = self.gpairs(OURS) / self.gpairs(name)
            lines.append(
                f"{name:<16}{1e3 * self.seconds[name]:>12.2f}"
                f"{self.gpairs(name):>12.2f}{ratio:>12.2f}"
            )
        if ROOF in self.seconds:
            lines.append(f"fraction of the L1 roof reached by ours: {self.roof_fraction:.2f}")
        for peer, (values, indices) in self.agreement.items():
            verdict = "identical" if values and indices else "DIFFERENT"
            lines.append(
                f"{peer} vs ours: values {'identical' if values else 'DIFFERENT'}, "
                f"indices {'identical' if indices else 'DIFFERENT'} -> {verdict}"
            )
        return "\n".join(lines)


def compare_products(
    shape: tuple[int, int, int],
    dtype: str = "float32",
    *,
    maximize: bool = True,
    peers: tuple[str, ...] = ("tropical-gemm",),
    roof: bool = True,
    repeats: int = 7,
    warmup: int = 1,
    check: bool = True,
) -> ProductComparison:
    """Time ours, each of ``peers`` and (optionally) the L1 roof in interleaved rounds.

    With ``check``, also compare each peer's values and indices with ours (exact
    equality; indices as integers, whatever their dtype). A missing peer raises
    :class:`PeerUnavailableError` (see :func:`available_products`).
    """
    import numba

    from .roof import L1Roof

    A, B = random_operands(shape, dtype)
    contenders = {name: get_product(name, maximize=maximize) for name in (OURS, *peers)}
    operands = {name: product.prepare(A, B) for name, product in contenders.items()}
    calls = {
        name: (lambda p=product, ops=operands[name]: p(*ops))
        for name, product in contenders.items()
    }
    roof_pairs = 0
    if roof:
        l1_roof = L1Roof(pairs(shape), dtype=dtype, maximize=maximize)
        calls[ROOF] = l1_roof
        roof_pairs = l1_roof.pairs
    seconds = interleaved_medians(calls, repeats=repeats, warmup=warmup)
    agreement = {}
    if check:
        C, I = to_numpy_result(calls[OURS]())
        for peer in peers:
            c, i = to_numpy_result(calls[peer]())
            agreement[peer] = (bool(np.array_equal(C, c)), bool(np.array_equal(I, i)))
        if roof:
            l1_roof.check()
    return ProductComparison(
        shape=tuple(shape),
        dtype=str(np.dtype(dtype)),
        maximize=maximize,
        repeats=repeats,
        threads=numba.get_num_threads(),
        seconds=seconds,
        roof_pairs=roof_pairs,
        agreement=agreement,
    )
