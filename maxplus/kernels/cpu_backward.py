"""numba kernels for backpropagation through max-plus networks.

The dense kernels visit every sample; the tree kernels visit selected samples
only. Both accumulate in the same order (samples ascending, then units
ascending) with the same expressions, so the sparse gradient is bitwise the
dense one: the terms the tree kernels skip are exact zeros.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True)
def tropical_backward_inputs(G_out, S, G_in):  # noqa: N803
    """``G_in[n, S[n, j]] += G_out[n, j]`` (units ``j`` ascending), G_in zeroed here."""
    for n in nb.prange(G_out.shape[0]):
        for i in range(G_in.shape[1]):
            G_in[n, i] = 0.0
        for j in range(G_out.shape[1]):
            G_in[n, S[n, j]] += G_out[n, j]


@nb.njit(parallel=True, cache=True)
def tropical_backward_weights(G_out, S, grad_W):  # noqa: N803
    """``grad_W[j, S[n, j]] += G_out[n, j]`` over samples ``n`` ascending (grad_W zeroed here)."""
    for j in nb.prange(grad_W.shape[0]):
        for i in range(grad_W.shape[1]):
            grad_W[j, i] = 0.0
        for n in range(G_out.shape[0]):
            grad_W[j, S[n, j]] += G_out[n, j]


@nb.njit(parallel=True, cache=True)
def linear_backward(G, X, grad_W, grad_b):  # noqa: N803
    """``grad_W = Gᵀ X`` and ``grad_b = Gᵀ 1``, summing samples in increasing order."""
    for m in nb.prange(grad_W.shape[0]):
        row = grad_W[m]
        for i in range(row.shape[0]):
            row[i] = 0.0
        acc = 0.0
        for n in range(G.shape[0]):
            g = G[n, m]
            x = X[n]
            for i in range(row.shape[0]):
                row[i] += g * x[i]
            acc += g
        grad_b[m] = acc


@nb.njit(cache=True)
def tree_backward_tropical(rows, G_out, S, scratch, keys):  # noqa: N803
    """Backpropagate the selected samples ``rows`` through one tropical layer.

    ``G_out`` (q × out) holds their upstream gradients. Returns ``G_in`` (q × in)
    and the weight gradient's entries ``(rows, cols, values)`` in row-major order:
    each touched ``(j, i)`` once, its value summed in the zeroed dense ``scratch``
    (out × in, zeroed again here). ``keys`` (at least ``G_out.size`` long) lists
    the flat keys ``j * in + i`` as they are touched (a key can repeat when its sum
    passed through exactly zero).
    """
    n_in = scratch.shape[1]
    G_in = np.zeros((rows.shape[0], n_in), dtype=G_out.dtype)
    count = 0
    for r in range(rows.shape[0]):
        n = rows[r]
        for j in range(G_out.shape[1]):
            g = G_out[r, j]
            if g != 0.0:
                i = S[n, j]
                G_in[r, i] += g
                key = j * n_in + i
                if scratch.flat[key] == 0.0:
                    keys[count] = key
                    count += 1
                scratch.flat[key] += g
    touched = np.sort(keys[:count])
    entry_rows = np.empty(count, dtype=np.int64)
    entry_cols = np.empty(count, dtype=np.int64)
    values = np.empty(count, dtype=scratch.dtype)
    k = 0
    for t in range(count):
        key = touched[t]
        if k == 0 or key != touched[t - 1]:
            entry_rows[k] = key // n_in
            entry_cols[k] = key % n_in
            values[k] = scratch.flat[key]
            k += 1
    for t in range(count):
        scratch.flat[touched[t]] = 0.0
    return G_in, entry_rows[:k], entry_cols[:k], values[:k]


@nb.njit(cache=True)
def tree_backward_linear(rows, G, X):  # noqa: N803
    """The linear units ``M`` that the selected samples ``rows`` reach (``G[:, m]``
    not all zero), ascending, with their gradient rows ``Σ_r G[r, m] X[rows[r]]``
    and ``Σ_r G[r, m]`` (samples ascending) and ``G[:, M]``."""
    q, h = G.shape
    reached = np.zeros(h, dtype=np.bool_)
    for r in range(q):
        for m in range(h):
            if G[r, m] != 0.0:
                reached[m] = True
    columns = np.flatnonzero(reached)
    grad_rows = np.zeros((columns.shape[0], X.shape[1]), dtype=G.dtype)
    grad_bias = np.empty(columns.shape[0], dtype=G.dtype)
    upstream = np.empty((q, columns.shape[0]), dtype=G.dtype)
    for c in range(columns.shape[0]):
        m = columns[c]
        row = grad_rows[c]
        acc = 0.0
        for r in range(q):
            g = G[r, m]
            upstream[r, c] = g
            if g != 0.0:
                x = X[rows[r]]
                for i in range(row.shape[0]):
                    row[i] += g * x[i]
                acc += g
        grad_bias[c] = acc
    return columns, grad_rows, grad_bias, upstream


@nb.njit(cache=True)
def sum_of_squares(a):
    """Σ a² over the flattened array in memory order (sequential, reproducible)."""
    acc = 0.0
    flat = a.ravel()
    for i in range(flat.shape[0]):
        acc += flat[i] * flat[i]
    return acc
