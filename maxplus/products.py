"""The tropical matrix products, the workhorse of max-plus networks.

.. math::

    (A \\otimes B)_{ij} = \\max_k \\; A_{ik} + B_{kj}, \\qquad
    (A \\otimes' B)_{ij} = \\min_k \\; A_{ik} + B_{kj}.

With ``return_indices=True`` the selected ``k`` comes back too, the **lowest** one
on ties, on every backend. Each product accepts its semiring's zero (``-inf`` for
max-plus, ``+inf`` for min-plus) and refuses NaN and the opposite infinity (which
would produce ``inf - inf``).
"""

from __future__ import annotations

import numpy as np

from . import backend
from ._validation import check_matrix, float_dtype

#: Index reported when the inner dimension is empty (no candidate to select).
NO_INDEX = -1


def maxplus_matmul(A, B, return_indices: bool = False):  # noqa: N803
    """Max-plus product ``C[i, j] = max_k A[i, k] + B[k, j]``.

    Parameters
    ----------
    A : array, shape (n, k)
    B : array, shape (k, m)
    return_indices : bool
        Also return the int32 array ``I`` of selected ``k`` (lowest on ties;
        ``-1`` when ``k == 0``).

    Returns
    -------
    C, or (C, I): arrays of the input's library (NumPy in, NumPy out; CuPy in,
    CuPy out), float32 or float64 by the usual promotion. An empty inner
    dimension gives the max-plus zero ``-inf``.
    """
    return tropical_matmul(A, B, maximize=True, return_indices=return_indices)


def minplus_matmul(A, B, return_indices: bool = False):  # noqa: N803
    """Min-plus product ``C[i, j] = min_k A[i, k] + B[k, j]``; see :func:`maxplus_matmul`.

    The min-plus zero is ``+inf``; ``-inf`` entries are refused.
    """
    return tropical_matmul(A, B, maximize=False, return_indices=return_indices)


def tropical_matmul(A, B, *, maximize: bool, return_indices: bool = False):  # noqa: N803
    """Shared implementation of :func:`maxplus_matmul` and :func:`minplus_matmul`."""
    xp = backend.array_namespace(A, B)
    A, B = prepare_operands(A, B, xp, maximize=maximize)
    C, I = xp_tropical_product(A, B, xp, maximize=maximize)
    return (C, I) if return_indices else C


def prepare_operands(A, B, xp, *, maximize: bool):  # noqa: N803
    """Validate ``A`` (n×k) and ``B`` (k×m) and return C-contiguous copies-or-views
    of the common float dtype, in namespace ``xp``. The inputs are never modified."""
    if not hasattr(A, "dtype"):
        A = xp.asarray(A)
    if not hasattr(B, "dtype"):
        B = xp.asarray(B)
    dtype = float_dtype(A, B, names=("A", "B"))
    forbidden = "+inf" if maximize else "-inf"
    for name, M in (("A", A), ("B", B)):
        check_matrix(name, M, xp, forbid=forbidden)
    if A.shape[1] != B.shape[0]:
        raise ValueError(
            f"inner dimensions differ: A has shape {A.shape} and B has shape {B.shape} "
            f"(A.shape[1] = {A.shape[1]} != B.shape[0] = {B.shape[0]})"
        )
    A = xp.ascontiguousarray(xp.asarray(A, dtype=dtype))
    B = xp.ascontiguousarray(xp.asarray(B, dtype=dtype))
    return A, B


def xp_tropical_product(A, B, xp, *, maximize: bool):  # noqa: N803
    """Product of validated, C-contiguous operands on the backend of ``xp``."""
    n, k = A.shape
    m = B.shape[1]
    C = xp.empty((n, m), dtype=A.dtype)
    I = xp.empty((n, m), dtype=xp.int32)
    if backend.is_numpy_namespace(xp):
        from .kernels.cpu_products import tropical_product

        tropical_product(A, B, C, I, maximize)
    else:
        from .kernels.gpu import tropical_product_gpu

        tropical_product_gpu(A, B, C, I, maximize)
    if k == 0:
        I[...] = NO_INDEX
    return C, I


def naive_tropical_matmul(A, B, *, maximize: bool):  # noqa: N803
    """Reference by broadcasting, for tests and chapters: O(n·k·m) memory.

    Ties resolve to the lowest index because ``argmax``/``argmin`` return the first.
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    cand = A[:, :, None] + B[None, :, :]
    if A.shape[1] == 0:
        zero = -np.inf if maximize else np.inf
        shape = (A.shape[0], B.shape[1])
        return np.full(shape, zero), np.full(shape, NO_INDEX, dtype=np.int32)
    I = cand.argmax(axis=1) if maximize else cand.argmin(axis=1)
    C = np.take_along_axis(cand, I[:, None, :], axis=1)[:, 0, :]
    return C, I.astype(np.int32)
