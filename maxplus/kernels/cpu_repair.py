"""numba kernels that repair a tropical layer's stored state after a sparse step.

For every sample the layer stores its outputs ``H``, selections ``S`` and a
*runner bound* ``R``: for a max layer an upper bound on every non-selected
candidate ``W[j, i] + h_i`` (a lower bound for a min layer). A step changes some
inputs ``h_i`` (per sample) and some weights ``W[j, i]``. Each changed candidate
is processed in turn, as if the changes happened one after the other, and each
is exact in O(1):

* it is the selected one: the output takes its new value; if that got worse and
  is not strictly better than the runner bound, the output is marked for a
  *rescan* over all its inputs at the end (counted);
* it is not: it takes over if it beats the output (lowest index on ties), the
  old selected value then bounding the runners; otherwise it joins the bound.

The direction of a change does not matter, so the same pass handles every
changed input. Per changed input the loop runs over all outputs, contiguous in
memory (``WT[i]`` and the sample's rows), and vectorises.
"""

from __future__ import annotations

import numba as nb
import numpy as np

CHUNKS = 64


@nb.njit(inline="always")
def improves(a, b, maximize):
    return a > b if maximize else a < b


@nb.njit(inline="always")
def better_of(a, b, maximize):
    return a if improves(a, b, maximize) else b


@nb.njit(cache=True)
def rescan_row(w, h, maximize):
    """Exact best value, its lowest index, and the runner-up of ``w + h``."""
    zero = -np.inf if maximize else np.inf
    best, second, arg = zero, zero, 0
    for i in range(w.shape[0]):
        v = w[i] + h[i]
        if improves(v, best, maximize):
            second = best
            best = v
            arg = i
        elif not improves(second, v, maximize):
            second = v
    return best, arg, second


@nb.njit(inline="always")
def process_candidate(cand, i, h_row, s_row, r_row, dirty, j, maximize):
    """Apply candidate ``(j, i)`` with new value ``cand`` to output ``j`` (any direction)."""
    h_cur = h_row[j]
    s_cur = s_row[j]
    r_cur = r_row[j]
    is_sel = s_cur == i
    take = (not is_sel) & (improves(cand, h_cur, maximize) | ((cand == h_cur) & (i < s_cur)))
    lose = is_sel & improves(h_cur, cand, maximize) & (not improves(cand, r_cur, maximize))
    h_row[j] = cand if (is_sel | take) else h_cur
    s_row[j] = i if take else s_cur
    r_take = better_of(r_cur, h_cur, maximize)
    r_other = r_cur if is_sel else better_of(r_cur, cand, maximize)
    r_row[j] = r_take if take else r_other
    dirty[j] = dirty[j] | lose


@nb.njit(inline="always")
def process_selected(cand, i, h_row, s_row, r_row, dirty, j, maximize):
    """Apply candidate ``(j, i)`` only where it is selected: enough when every
    candidate of input ``i`` got worse (non-selected ones then cannot take over and
    the runner bounds stay valid)."""
    h_cur = h_row[j]
    is_sel = s_row[j] == i
    lose = is_sel & improves(h_cur, cand, maximize) & (not improves(cand, r_row[j], maximize))
    h_row[j] = cand if is_sel else h_cur
    dirty[j] = dirty[j] | lose


@nb.njit(parallel=True, cache=True)
def repair_layer(
    Hin,
    W,
    WT,
    H,
    S,
    R,
    maximize,  # noqa: N803
    ci_count,
    ci_idx,
    ci_old,
    w_rows,
    w_cols,
    co_count,
    co_idx,
    co_old,
    work,
):
    """Repair one tropical layer for every sample.

    ``Hin`` holds the new inputs; sample ``n`` changed ``ci_count[n]`` of them,
    ``ci_idx[n, :count]``, whose previous values are ``ci_old[n, :count]``.
    Weights ``(w_rows[e], w_cols[e])`` changed (``W`` and ``WT`` already hold the
    new values). An input that moved in the worsening direction only updates the
    outputs that select it; one that improved is processed for every output; the
    changed weights are processed one by one; when most inputs changed, each output
    is simply rescanned. Writes the changed outputs of each sample into
    ``co_count``, ``co_idx`` with their previous values in ``co_old``, and counts in
    ``work[n]``: candidates processed, rescans.
    """
    N = Hin.shape[0]  # noqa: N806
    n_out, n_in = W.shape
    n_chunks = min(CHUNKS, N)
    for c in nb.prange(n_chunks):
        old = np.empty(n_out, dtype=H.dtype)
        dirty = np.empty(n_out, dtype=np.bool_)
        for n in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            if ci_count[n] == 0 and w_rows.shape[0] == 0:
                co_count[n] = 0
                continue
            h = Hin[n]
            h_row, s_row, r_row = H[n], S[n], R[n]
            for j in range(n_out):
                old[j] = h_row[j]
            compared = 0
            if 4 * ci_count[n] >= n_in:
                for j in range(n_out):
                    dirty[j] = True
            else:
                for j in range(n_out):
                    dirty[j] = False
                for t in range(ci_count[n]):
                    i = ci_idx[n, t]
                    hi = h[i]
                    w = WT[i]
                    if improves(hi, ci_old[n, t], maximize):
                        for j in range(n_out):
                            process_candidate(w[j] + hi, i, h_row, s_row, r_row, dirty, j, maximize)
                    else:
                        for j in range(n_out):
                            process_selected(w[j] + hi, i, h_row, s_row, r_row, dirty, j, maximize)
                compared += ci_count[n] * n_out
                for e in range(w_rows.shape[0]):
                    j = w_rows[e]
                    i = w_cols[e]
                    process_candidate(W[j, i] + h[i], i, h_row, s_row, r_row, dirty, j, maximize)
                compared += w_rows.shape[0]
            changed = 0
            rescans = 0
            for j in range(n_out):
                if dirty[j]:
                    h_row[j], s_row[j], r_row[j] = rescan_row(W[j], h, maximize)
                    rescans += 1
                if h_row[j] != old[j]:
                    co_idx[n, changed] = j
                    co_old[n, changed] = old[j]
                    changed += 1
            co_count[n] = changed
            work[n, 0] += compared
            work[n, 1] += rescans


@nb.njit(parallel=True, cache=True)
def shift_linear_columns(Z, columns, coef, r, old):  # noqa: N803
    """Cached linear repair after ``A[m] -= Σ_s coef[s, c] x_s`` and
    ``b[m] -= Σ_s coef[s, c]`` for ``m = columns[c]``:
    ``Z[n, m] -= Σ_s coef[s, c] (r[s, n] + 1)`` with ``r[s] = X x_s``. The previous
    values go to ``old[n, c]``."""
    for n in nb.prange(Z.shape[0]):
        for c in range(columns.shape[0]):
            m = columns[c]
            old[n, c] = Z[n, m]
            delta = 0.0
            for s in range(coef.shape[0]):
                delta += coef[s, c] * (r[s, n] + 1.0)
            Z[n, m] -= delta
