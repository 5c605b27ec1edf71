"""maxplus: max-plus neural networks and the exact sparse subgradient trainer.

A reproduction of *Exploiting Subgradient Sparsity in Max-Plus Neural Networks*
(Enaieh & Fercoq, arXiv:2603.04133).
"""

from .products import maxplus_matmul, minplus_matmul
from .semiring import MAX_PLUS, MIN_PLUS, Semiring, oplus, otimes, residual, tropical_polynomial

__version__ = "0.1.0"

__all__ = [
    "MAX_PLUS",
    "MIN_PLUS",
    "Semiring",
    "maxplus_matmul",
    "minplus_matmul",
    "oplus",
    "otimes",
    "residual",
    "tropical_polynomial",
]
