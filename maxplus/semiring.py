"""The max-plus and min-plus semirings: elements, operations, matrices.

In the max-plus semiring :math:`\\mathbb{R}_{\\max} = \\mathbb{R} \\cup \\{-\\infty\\}`,

.. math::

    a \\oplus b = \\max(a, b), \\qquad a \\otimes b = a + b, \\qquad
    \\varepsilon = -\\infty \\ (\\text{zero}), \\qquad e = 0 \\ (\\text{one}).

Min-plus is the same with ``min`` and zero ``+inf``. Matrices multiply with
:func:`maxplus.maxplus_matmul`; the identity has ``e`` on the diagonal and
``ε`` elsewhere. The *residual* ``A \\ b`` is the greatest subsolution of
``A ⊗ x ≤ b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import backend
from ._validation import check_positive_int
from .products import tropical_matmul


@dataclass(frozen=True)
class Semiring:
    """A tropical semiring: ``maximize=True`` is max-plus, ``False`` is min-plus."""

    name: str
    maximize: bool

    @property
    def zero(self) -> float:
        """The additive identity ε (absorbing for ⊗): ``-inf`` or ``+inf``."""
        return -np.inf if self.maximize else np.inf

    @property
    def one(self) -> float:
        """The multiplicative identity e = 0."""
        return 0.0

    def add(self, a, b):
        """``a ⊕ b``: elementwise max (or min), broadcasting."""
        xp = backend.array_namespace(a, b)
        return xp.maximum(a, b) if self.maximize else xp.minimum(a, b)

    def mul(self, a, b):
        """``a ⊗ b``: elementwise sum, broadcasting; ε absorbs."""
        xp = backend.array_namespace(a, b)
        return xp.asarray(a) + xp.asarray(b)

    def matmul(self, A, B, return_indices: bool = False):  # noqa: N803
        """Matrix product ``A ⊗ B`` with optional selected indices."""
        return tropical_matmul(A, B, maximize=self.maximize, return_indices=return_indices)

    def zeros(self, shape, dtype=np.float64, xp=np):
        """Array filled with ε."""
        return xp.full(shape, self.zero, dtype=dtype)

    def identity(self, n: int, dtype=np.float64, xp=np):
        """Identity matrix: ``e = 0`` on the diagonal, ε elsewhere."""
        n = check_positive_int("n", n, minimum=0)
        eye = xp.full((n, n), self.zero, dtype=dtype)
        eye[xp.arange(n), xp.arange(n)] = 0.0
        return eye

    def power(self, A, k: int):  # noqa: N803
        """``A^{⊗k}`` of a square matrix by repeated squaring (``k = 0`` gives the identity)."""
        k = check_positive_int("k", k, minimum=0)
        xp = backend.array_namespace(A)
        A = xp.asarray(A)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be a square matrix, got shape {A.shape}")
        dtype = A.dtype if np.dtype(A.dtype).kind == "f" else np.float64
        result = self.identity(A.shape[0], dtype=dtype, xp=xp)
        base = A
        while k:
            if k & 1:
                result = self.matmul(result, base)
            k >>= 1
            if k:
                base = self.matmul(base, base)
        return result


MAX_PLUS = Semiring("max-plus", maximize=True)
MIN_PLUS = Semiring("min-plus", maximize=False)


def oplus(a, b):
    """Max-plus addition ``a ⊕ b = max(a, b)``."""
    return MAX_PLUS.add(a, b)


def otimes(a, b):
    """Max-plus multiplication ``a ⊗ b = a + b``."""
    return MAX_PLUS.mul(a, b)


def residual(A, b):  # noqa: N803
    """Greatest ``x`` with ``A ⊗ x ≤ b`` (max-plus), the residual ``A \\ b``.

    .. math:: x_j = \\min_i \\; (b_i - A_{ij}),

    with ``b_i - A_{ij} = +\\infty`` when ``A_{ij} = -\\infty`` (that row puts no
    constraint on ``x_j``). ``b`` may be a vector (shape (n,)) or a matrix (n, p).
    ``A ⊗ x = b`` has a solution exactly when ``A ⊗ (A \\ b) = b``.
    """
    xp = backend.array_namespace(A, b)
    A, b = xp.asarray(A), xp.asarray(b)
    vector = b.ndim == 1
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-D array, got shape {A.shape}")
    if b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(f"b must have shape ({A.shape[0]},) or ({A.shape[0]}, p), got {b.shape}")
    B = b[:, None] if vector else b
    for name, M in (("A", A), ("b", B)):
        if bool(xp.any(xp.isnan(M))) or bool(xp.any(M == xp.inf)):
            raise ValueError(f"{name} contains NaN or +inf; residuation is defined on R ∪ {{-inf}}")
    unconstrained = (A == -xp.inf)[:, :, None]
    diff = B[:, None, :] - xp.where(unconstrained, 0.0, A[:, :, None])  # (n, m, p): b_i - A_ij
    diff = xp.where(unconstrained, xp.inf, diff)
    x = xp.min(diff, axis=0) if A.shape[0] else xp.full((A.shape[1], B.shape[1]), xp.inf)
    return x[:, 0] if vector else x


def tropical_polynomial(coefficients, exponents, x):
    """Evaluate ``p(x) = max_i (c_i + a_i · x)`` (a convex piecewise-linear function).

    ``coefficients`` and ``exponents`` are sequences of the same length; ``x`` an
    array of points. Returns ``(values, selected_term)``.
    """
    c = np.asarray(coefficients, dtype=np.float64)
    a = np.asarray(exponents, dtype=np.float64)
    if c.shape != a.shape or c.ndim != 1 or c.size == 0:
        raise ValueError(
            f"coefficients and exponents must be non-empty 1-D of equal length, "
            f"got {c.shape} and {a.shape}"
        )
    x = np.asarray(x, dtype=np.float64)
    terms = c[:, None] + a[:, None] * x.ravel()[None, :]
    selected = terms.argmax(axis=0)
    return terms.max(axis=0).reshape(x.shape), selected.reshape(x.shape)
