"""maxplus: max-plus neural networks and the exact sparse subgradient trainer.

A reproduction of *Exploiting Subgradient Sparsity in Max-Plus Neural Networks*
(Enaieh & Fercoq, arXiv:2603.04133).
"""

from .data import (
    Standardizer,
    load_dataset,
    load_idx,
    load_iris,
    load_mnist5k,
    read_idx,
    train_test_split,
)
from .network import LMM, Linear, MaxPlus, MinPlus, Sequential, make_sequential
from .products import maxplus_matmul, minplus_matmul
from .semiring import MAX_PLUS, MIN_PLUS, Semiring, oplus, otimes, residual, tropical_polynomial
from .training import FitResult, fit

__version__ = "0.1.0"


def __getattr__(name: str):
    """``mp.MaxPlusClassifier`` is imported on first use: it needs scikit-learn (extra
    ``data``), which the algebra and the trainer do not (and so it is not in
    ``__all__``: ``from maxplus import *`` works without scikit-learn)."""
    if name == "MaxPlusClassifier":
        from .estimator import MaxPlusClassifier

        return MaxPlusClassifier
    raise AttributeError(f"module 'maxplus' has no attribute {name!r}")


__all__ = [
    "LMM",
    "MAX_PLUS",
    "MIN_PLUS",
    "FitResult",
    "Linear",
    "MaxPlus",
    "MinPlus",
    "Semiring",
    "Sequential",
    "Standardizer",
    "fit",
    "load_dataset",
    "load_idx",
    "load_iris",
    "load_mnist5k",
    "make_sequential",
    "maxplus_matmul",
    "minplus_matmul",
    "oplus",
    "otimes",
    "read_idx",
    "residual",
    "train_test_split",
    "tropical_polynomial",
]
