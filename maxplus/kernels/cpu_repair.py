"""numba kernels that repair a tropical layer's stored state after a sparse step.

For every sample the layer stores its outputs ``H``, selections ``S`` and a
*runner bound* ``R``: for a max layer an upper bound on every non-selected
candidate ``W[j, i] + h_i`` (a lower bound for a min layer). After a step changed
some inputs ``h_i`` (per sample) and some weights ``W[j, i]``:

* the selected candidate's new value ``cur`` is recomputed in O(1);
* a changed input or weight that moved in the *improving* direction (up for max)
  may take over: compared in O(1) per output, lowest index on ties;
* if ``cur`` did not get worse, or the best changed candidate strictly beats
  every unchanged one (``≤ min(old, R)``), the result is exact at once;
* otherwise the output is *rescanned* over all its inputs (counted).

The runner bound stays valid by taking the max with every non-winning changed
candidate; a rescan makes it exact again.
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


@nb.njit(inline="always")
def worse_of(a, b, maximize):
    return b if improves(a, b, maximize) else a


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


@nb.njit(parallel=True, cache=True)
def repair_layer(Hin, W, WT, H, S, R, maximize,  # noqa: N803
                 ci_count, ci_idx, ci_old,
                 w_rows, w_cols, w_improving,
                 co_count, co_idx, co_old, work):
    """Repair one tropical layer for every sample.

    ``Hin`` holds the new inputs; sample ``n`` changed ``ci_count[n]`` of them,
    ``ci_idx[n, :count]`` with previous values ``ci_old[n, :count]``. Weights
    ``(w_rows[e], w_cols[e])`` changed (already updated in ``W`` and ``WT``),
    ``w_improving[e]`` telling the direction. Writes the changed outputs the same
    way into ``co_*`` and counts per sample in ``work[n]``: candidates compared,
    rescans.
    """
    N = Hin.shape[0]  # noqa: N806
    n_out, n_in = W.shape
    zero = -np.inf if maximize else np.inf
    n_chunks = min(CHUNKS, N)
    for c in nb.prange(n_chunks):
        best = np.empty(n_out, dtype=H.dtype)
        sec = np.empty(n_out, dtype=H.dtype)
        arg = np.empty(n_out, dtype=np.int32)
        for n in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            h = Hin[n]
            s_row = S[n]
            for j in range(n_out):
                sel = s_row[j]
                best[j] = W[j, sel] + h[sel]
                arg[j] = sel
                sec[j] = zero
            compared = n_out
            for t in range(ci_count[n]):
                i = ci_idx[n, t]
                hi = h[i]
                if not improves(hi, ci_old[n, t], maximize):
                    continue
                w = WT[i]
                compared += n_out
                for j in range(n_out):
                    if s_row[j] == i:
                        continue
                    v = w[j] + hi
                    if improves(v, best[j], maximize) or (v == best[j] and i < arg[j]):
                        sec[j] = better_of(sec[j], best[j], maximize)
                        best[j] = v
                        arg[j] = i
                    else:
                        sec[j] = better_of(sec[j], v, maximize)
            for e in range(w_rows.shape[0]):
                if not w_improving[e]:
                    continue
                j = w_rows[e]
                i = w_cols[e]
                if s_row[j] == i or arg[j] == i:
                    continue
                compared += 1
                v = W[j, i] + h[i]
                if improves(v, best[j], maximize) or (v == best[j] and i < arg[j]):
                    sec[j] = better_of(sec[j], best[j], maximize)
                    best[j] = v
                    arg[j] = i
                else:
                    sec[j] = better_of(sec[j], v, maximize)
            changed = 0
            rescans = 0
            for j in range(n_out):
                old = H[n, j]
                sel = s_row[j]
                cur = W[j, sel] + h[sel]
                keep = (not improves(old, cur, maximize)) or improves(
                    best[j], worse_of(old, R[n, j], maximize), maximize
                )
                if keep:
                    new_value, new_arg = best[j], arg[j]
                    R[n, j] = better_of(R[n, j], sec[j], maximize)
                else:
                    new_value, new_arg, R[n, j] = rescan_row(W[j], h, maximize)
                    rescans += 1
                if new_value != old:
                    co_idx[n, changed] = j
                    co_old[n, changed] = old
                    changed += 1
                H[n, j] = new_value
                s_row[j] = new_arg
            co_count[n] = changed
            work[n, 0] += compared
            work[n, 1] += rescans


@nb.njit(parallel=True, cache=True)
def shift_linear_columns(Z, columns, coef, r, old):  # noqa: N803
    """Cached linear repair after ``A[m] -= Σ_s coef[s, c] x_s`` and
    ``b[m] -= Σ_s coef[s, c]`` for ``m = columns[c]``:
    ``Z[n, m] -= Σ_s coef[s, c] (r[s, n] + 1)`` with ``r[s] = X x_s``.
    The previous values go to ``old[n, c]``."""
    for n in nb.prange(Z.shape[0]):
        for c in range(columns.shape[0]):
            m = columns[c]
            old[n, c] = Z[n, m]
            delta = 0.0
            for s in range(coef.shape[0]):
                delta += coef[s, c] * (r[s, n] + 1.0)
            Z[n, m] -= delta
