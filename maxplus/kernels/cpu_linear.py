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

from .prefetch import SAMPLES_AHEAD, prefetch

#: Rows per parallel block of :func:`linear_forward` (one scratch list each).
ROW_BLOCK = 64
#: Recomputed columns are padded with zero weights to a multiple of this width, so
#: that the vectorised loop over them has no scalar remainder.
COLUMN_MULTIPLE = 32


@nb.njit(cache=True, inline="always")
def nonzero_features(X, n, nz):  # noqa: N803
    """Write the features ``i`` (increasing) with ``X[n, i] != 0`` to ``nz``; return
    how many. Branch-free: the zero pattern of images is unpredictable."""
    count = 0
    for i in range(X.shape[1]):
        nz[count] = i
        count += X[n, i] != 0.0
    return count


@nb.njit(cache=True, inline="always")
def linear_row(X, n, WT, b, z, nz):  # noqa: N803
    """``z = X[n] @ WT + b``, summed in increasing feature order over the non-zero
    features (``nz``: scratch of length d)."""
    h = WT.shape[1]
    for m in range(h):
        z[m] = 0.0
    for k in range(nonzero_features(X, n, nz)):
        i = nz[k]
        xi = X[n, i]
        w = WT[i]
        for m in range(h):
            z[m] += xi * w[m]
    for m in range(h):
        z[m] += b[m]


@nb.njit(parallel=True, cache=True)
def linear_forward(X, WT, b, Z):  # noqa: N803
    """``Z[n, :] = X[n] @ WT + b`` for C-contiguous X (N×d), WT (d×h), b (h,), Z (N×h)."""
    N, d = X.shape  # noqa: N806
    for block in nb.prange((N + ROW_BLOCK - 1) // ROW_BLOCK):
        nz = np.empty(d, dtype=np.int64)
        for n in range(block * ROW_BLOCK, min(N, (block + 1) * ROW_BLOCK)):
            linear_row(X, n, WT, b, Z[n], nz)


@nb.njit(cache=True, inline="always")
def linear_entry(X, W, b, n, m):  # noqa: N803
    """``z[n, m]`` exactly as :func:`linear_forward` computes it."""
    acc = W.dtype.type(0.0)
    w = W[m]
    for i in range(X.shape[1]):
        xi = X[n, i]
        if xi != 0.0:
            acc += xi * w[i]
    return acc + b[m]


@nb.njit(parallel=True, cache=True)
def catch_up(
    Z,
    X,
    W,
    b,
    exact,
    batch,
    first,
    step_ptr,
    cols,
    coefs,
    step_rows,
    products,  # noqa: N803
    count,
    idx,
    old,
    visited,
    threads,
):
    """Bring the rows ``batch`` of ``Z`` up to date after the logged steps.

    Step ``k`` moved rows ``cols[step_ptr[k]:step_ptr[k + 1]]`` of ``W`` by
    ``-Σ_s coefs[e, s] x_{s}`` (and ``b`` likewise), ``products[step_rows[k, s]]``
    holding ``X x_s``; sample ``batch[j]`` has seen the steps before ``first[j]``.
    Cached: ``z −= Σ coef (X x_s + 1)`` summed in float64 then applied once; exact
    (``exact``): the entry is recomputed with :func:`linear_entry`. The columns of
    each sample whose value changed, and their previous values, go to ``count``,
    ``idx``, ``old`` (a move that rounds to nothing changes nothing downstream, so it
    is not listed); ``visited[j]`` counts the entries brought up to date.
    ``threads``: numba's thread count (one scratch each).
    """
    B = batch.shape[0]  # noqa: N806
    h = Z.shape[1]
    n_steps = step_ptr.shape[0] - 1
    n_chunks = min(threads, B)
    for c in nb.prange(n_chunks):
        acc = np.zeros(h)
        marked = np.zeros(h, dtype=np.bool_)
        stop = (c + 1) * B // n_chunks
        for j in range(c * B // n_chunks, stop):
            n = batch[j]
            ahead = j + SAMPLES_AHEAD
            if ahead < stop:  # a later sample's products (one row per step) and entries
                for k in range(first[ahead], n_steps):
                    if not exact:
                        for s in range(coefs.shape[1]):
                            prefetch(products, step_rows[k, s], batch[ahead])
                    for e in range(step_ptr[k], step_ptr[k + 1]):
                        prefetch(Z, batch[ahead], cols[e])
            cnt = 0
            for k in range(first[j], n_steps):
                for e in range(step_ptr[k], step_ptr[k + 1]):
                    m = cols[e]
                    if not marked[m]:
                        marked[m] = True
                        acc[m] = 0.0
                        idx[j, cnt] = m
                        cnt += 1
                    if not exact:  # exact mode recomputes the entry below instead
                        for s in range(coefs.shape[1]):
                            acc[m] += coefs[e, s] * (products[step_rows[k, s], n] + 1.0)
            kept = 0
            for t in range(cnt):
                m = idx[j, t]
                marked[m] = False
                z_old = Z[n, m]
                Z[n, m] = linear_entry(X, W, b, n, m) if exact else z_old - acc[m]
                if Z[n, m] != z_old:
                    idx[j, kept] = m
                    old[j, kept] = z_old
                    kept += 1
            count[j] = kept
            visited[j] = cnt


def padded_columns(W, b, cols):  # noqa: N803
    """``(WT, b)`` of the rows ``cols`` of ``W`` and ``b``, transposed and padded with
    zero columns to a multiple of :data:`COLUMN_MULTIPLE` (for :func:`refresh_columns`)."""
    width = -(-cols.size // COLUMN_MULTIPLE) * COLUMN_MULTIPLE
    WT = np.zeros((W.shape[1], width), dtype=W.dtype)  # noqa: N806
    WT[:, : cols.size] = W[cols].T
    bias = np.zeros(width, dtype=b.dtype)
    bias[: cols.size] = b[cols]
    return WT, bias


@nb.njit(parallel=True, cache=True)
def refresh_columns(X, WT, b, cols, Z, count, idx, old):  # noqa: N803
    """Recompute ``Z[:, cols]`` as :func:`linear_forward` does (``WT``, ``b`` from
    :func:`padded_columns`), listing per sample the columns that differed and their
    old values in ``count``, ``idx``, ``old``."""
    N, d = X.shape  # noqa: N806
    for block in nb.prange((N + ROW_BLOCK - 1) // ROW_BLOCK):
        nz = np.empty(d, dtype=np.int64)
        z = np.empty(WT.shape[1], dtype=Z.dtype)
        for n in range(block * ROW_BLOCK, min(N, (block + 1) * ROW_BLOCK)):
            linear_row(X, n, WT, b, z, nz)
            changed = 0
            for t in range(cols.shape[0]):
                m = cols[t]
                if z[t] != Z[n, m]:
                    idx[n, changed] = m
                    old[n, changed] = Z[n, m]
                    Z[n, m] = z[t]
                    changed += 1
            count[n] = changed


def linear(X, W, b):  # noqa: N803
    """``X Wᵀ + b`` with the deterministic kernel (NumPy arrays)."""
    Z = np.empty((X.shape[0], W.shape[0]), dtype=W.dtype)
    linear_forward(np.ascontiguousarray(X, dtype=W.dtype), np.ascontiguousarray(W.T), b, Z)
    return Z


#: Samples per block of :func:`sample_products` (its float64 sums stay in L1).
PRODUCT_BLOCK = 512


@nb.njit(parallel=True, cache=True)
def sample_products(XT, V, out):  # noqa: N803
    """``out[s, n] = x_n · V[s]`` from ``XT = Xᵀ`` (d × N, C-contiguous), accumulated
    in float64 in increasing feature order over the non-zero features of ``V[s]`` (a
    zero term adds ``±0``: no bit changes). Feature-major, so a product reads only the
    columns of its non-zero features, contiguously, and the loop over a block of
    samples vectorises."""
    d, N = XT.shape  # noqa: N806
    for block in nb.prange((N + PRODUCT_BLOCK - 1) // PRODUCT_BLOCK):
        lo = block * PRODUCT_BLOCK
        hi = min(N, lo + PRODUCT_BLOCK)
        acc = np.empty(hi - lo)
        for s in range(V.shape[0]):
            acc[:] = 0.0
            for i in range(d):
                vi = np.float64(V[s, i])
                if vi != 0.0:
                    column = XT[i, lo:hi]
                    for n in range(hi - lo):
                        acc[n] += np.float64(column[n]) * vi
            out[s, lo:hi] = acc
