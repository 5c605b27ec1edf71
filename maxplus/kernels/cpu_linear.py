"""numba kernels for the linear layer ``Z = X Wᵀ + b`` with a fixed summation order.

Every entry is computed the same way, whether the whole matrix or a few columns
are wanted: ``z = ((x_0 w_0 + x_1 w_1) + ...) + b`` in increasing feature order,
skipping exact zeros of ``x`` (which changes no bit of the result). So a column
recomputed by the sparse trainer's exact mode is bitwise equal to the same column
of a full forward pass, which BLAS does not promise.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True)
def linear_forward(X, WT, b, Z):  # noqa: N803
    """``Z[n, :] = X[n] @ WT + b`` for C-contiguous X (N×d), WT (d×h), b (h,), Z (N×h)."""
    N, d = X.shape  # noqa: N806
    h = WT.shape[1]
    for n in nb.prange(N):
        z = Z[n]
        for m in range(h):
            z[m] = 0.0
        for i in range(d):
            xi = X[n, i]
            if xi != 0.0:
                w = WT[i]
                for m in range(h):
                    z[m] += xi * w[m]
        for m in range(h):
            z[m] += b[m]


@nb.njit(parallel=True, cache=True)
def linear_columns(X, W, b, columns, Z):  # noqa: N803
    """Recompute ``Z[:, m]`` for ``m`` in ``columns`` exactly as :func:`linear_forward` does."""
    N, d = X.shape  # noqa: N806
    for n in nb.prange(N):
        for c in range(columns.shape[0]):
            m = columns[c]
            acc = Z.dtype.type(0.0)
            w = W[m]
            for i in range(d):
                xi = X[n, i]
                if xi != 0.0:
                    acc += xi * w[i]
            Z[n, m] = acc + b[m]


def linear(X, W, b):  # noqa: N803
    """``X Wᵀ + b`` with the deterministic kernel (NumPy arrays)."""
    Z = np.empty((X.shape[0], W.shape[0]), dtype=W.dtype)
    linear_forward(np.ascontiguousarray(X, dtype=W.dtype), np.ascontiguousarray(W.T), b, Z)
    return Z


@nb.njit(parallel=True, cache=True)
def row_products(X, x, out):  # noqa: N803
    """``out[n] = X[n] · x`` accumulated in float64 (zeros of ``X`` skipped)."""
    for n in nb.prange(X.shape[0]):
        acc = 0.0
        for i in range(X.shape[1]):
            xi = X[n, i]
            if xi != 0.0:
                acc += np.float64(xi) * np.float64(x[i])
        out[n] = acc
