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
def tree_backward_tropical(rows, G_out, S, G_in, scratch, keys, n_keys_out):  # noqa: N803
    """Backpropagate the selected samples ``rows`` through one tropical layer.

    ``G_out`` (q × out) holds their upstream gradients; writes ``G_in`` (q × in),
    accumulates the weight gradient into the zeroed dense ``scratch`` (out × in)
    and lists the touched flat keys ``j * in + i`` in ``keys`` (a key can repeat
    when its sum passed through exactly zero; their count in ``n_keys_out[0]``).
    """
    n_in = G_in.shape[1]
    count = 0
    for r in range(rows.shape[0]):
        n = rows[r]
        for i in range(n_in):
            G_in[r, i] = 0.0
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
    n_keys_out[0] = count


@nb.njit(cache=True)
def tree_backward_linear(rows, G, X, columns, grad_rows, grad_bias):  # noqa: N803
    """``grad_rows[c] = Σ_r G[r, m] X[rows[r]]`` for ``m = columns[c]`` (samples ascending)."""
    for c in range(columns.shape[0]):
        m = columns[c]
        row = grad_rows[c]
        for i in range(row.shape[0]):
            row[i] = 0.0
        acc = 0.0
        for r in range(rows.shape[0]):
            g = G[r, m]
            if g != 0.0:
                x = X[rows[r]]
                for i in range(row.shape[0]):
                    row[i] += g * x[i]
                acc += g
        grad_bias[c] = acc


@nb.njit(cache=True)
def sum_of_squares(a):
    """Σ a² over the flattened array in memory order (sequential, reproducible)."""
    acc = 0.0
    flat = a.ravel()
    for i in range(flat.shape[0]):
        acc += flat[i] * flat[i]
    return acc


def zeroed_keys_values(scratch, keys):
    """Sorted distinct keys, their values, and the scratch cleared again."""
    keys = np.unique(keys)
    values = scratch.flat[keys].copy()
    scratch.flat[keys] = 0.0
    return keys, values
