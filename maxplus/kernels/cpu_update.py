"""numba kernels for the sparse trainer's parameter update ``θ −= η g`` on a tree's
entries, with the arithmetic of NumPy's ``W[rows] -= eta * G`` (``eta`` in the
gradient's dtype, the product rounded, then the difference), so bitwise the same."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def update_rows(W, b, rows, GW, Gb, eta):  # noqa: N803
    """``W[rows] -= eta GW`` and ``b[rows] -= eta Gb`` (rows distinct)."""
    for c in range(rows.shape[0]):
        m = rows[c]
        for i in range(W.shape[1]):
            W[m, i] -= eta * GW[c, i]
        b[m] -= eta * Gb[c]


@nb.njit(cache=True)
def update_entries(W, WT, rows, cols, values, eta, sign, row_rises):  # noqa: N803
    """``W[rows, cols] -= eta values`` and ``WT[cols, rows]`` the same (distinct
    entries). Returns ``(fall, rise)``: ``max(0, max_k eta values_k)`` and
    ``max(0, −min_k eta values_k)``, NaN if a step is NaN. ``row_rises[j]`` (a place
    per row) is set to the largest rise in goodness of a weight of row ``j``
    (``sign`` = 1 for a max layer, −1 for a min layer; 0 where none rose, NaN if a
    step is NaN)."""
    fall = rise = 0.0
    row_rises[:] = 0.0
    for k in range(rows.shape[0]):
        r, c = rows[k], cols[k]
        step = eta * values[k]
        W[r, c] -= step
        WT[c, r] = W[r, c]
        if step > fall or step != step:
            fall = step
        if -step > rise or step != step:
            rise = -step
        up = -sign * np.float64(step)
        if up > row_rises[r] or up != up:
            row_rises[r] = up
    return fall, rise
