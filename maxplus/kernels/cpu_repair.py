"""numba kernels that repair a tropical layer's stored state after a sparse step.

Everything is written in terms of *goodness* ``g(v) = v`` for a max layer and
``g(v) = −v`` for a min layer, so that "better" always means "larger goodness".

Per sample ``n`` and output ``j`` the state holds the output ``H``, the selected
input ``S`` (lowest index on ties), a *second* input ``S2`` whose candidate value
``W[j, S2] + h[S2]`` can be recomputed at any time (``-1`` if none), and ``R3``, an
upper bound on the goodness of every other candidate. Per sample and input ``i``
it holds ``T``, a threshold: while ``g(h_i) < T``, input ``i`` cannot take over any
output that does not select it.

Bounds are stored *normalised*: each sample accumulates ``Dt`` (how far any output
may have worsened, which lowers thresholds) and ``Dr`` (how far any candidate may
have improved without being looked at, which raises ``R3``); the effective bounds
are ``T − Dt`` and ``R3 + Dr``. A step changes some inputs ``h_i`` of a sample and
some weights. For each changed input:

* outputs that select it take its new value; one that got worse is resolved
  against its second (exact) and ``R3``: it keeps its input, swaps with the second,
  or, only when ``R3`` is binding, is *rescanned* over all inputs (counted);
* if it improved and may reach its threshold, a takeover pass compares it with
  every output (lowest index on ties) and its threshold is recomputed; otherwise
  nothing is done for the other outputs.

Changed weights are processed one by one with the same rules. The values kept
are those a fresh forward pass computes, so the repaired state is exact.
"""

from __future__ import annotations

import numba as nb
import numpy as np

CHUNKS = 64
# work counters per sample
SCANS, TAKEOVER_PASSES, SWAPS, RESCANS, CERTIFIED = 0, 1, 2, 3, 4
N_COUNTERS = 5


@nb.njit(inline="always")
def good(v, maximize):
    """Goodness: the value for a max layer, its negative for a min layer."""
    return np.float64(v) if maximize else -np.float64(v)


@nb.njit(inline="always")
def beats(gv, iv, gw, iw):
    """Candidate (goodness ``gv``, index ``iv``) beats (``gw``, ``iw``): lowest index on ties."""
    return gv > gw or (gv == gw and iv < iw)


@nb.njit(cache=True)
def rescan_row(w, h, maximize):
    """Exact best value and input, second-best input and third-best goodness of ``w + h``."""
    g1, g2, g3 = -np.inf, -np.inf, -np.inf
    best, i1, i2 = w[0] + h[0], 0, -1
    for i in range(w.shape[0]):
        v = w[i] + h[i]
        gv = good(v, maximize)
        if gv > g1:
            g3, g2, i2 = g2, g1, i1
            g1, i1, best = gv, i, v
        elif gv > g2:
            g3 = g2
            g2, i2 = gv, i
        elif gv > g3:
            g3 = gv
    if i2 == i1:
        i2 = -1
    return best, i1, i2, g3


@nb.njit(cache=True)
def threshold_of(W, H, S, n, i, maximize):  # noqa: N803
    """``min over outputs j not selecting i of g(H[n, j]) − g(W[j, i])``."""
    t = np.inf
    for j in range(W.shape[0]):
        v = good(H[n, j], maximize) - good(W[j, i], maximize)
        t = v if (S[n, j] != i and v < t) else t
    return t


@nb.njit(cache=True)
def resolve_worse(W, h, H, S, S2, R3, T, Dr, Dt, n, j, margin, maximize, work):  # noqa: N803
    """Output ``j`` of sample ``n``: its selected candidate got worse (already in ``H``)."""
    s, s2 = S[n, j], S2[n, j]
    g_cur = good(H[n, j], maximize)
    r3 = R3[n, j] + Dr[n]
    if s2 >= 0:
        v2 = W[j, s2] + h[s2]
        g2 = good(v2, maximize)
        if beats(g_cur, s, g2, s2) and g_cur > r3:
            return
        if beats(g2, s2, g_cur, s) and g2 > r3:
            S[n, j], S2[n, j], H[n, j] = s2, s, v2
            T[n, s] = min(T[n, s], g2 - good(W[j, s], maximize) + Dt[n] - margin)
            work[n, SWAPS] += 1
            return
    elif g_cur > r3:
        return
    best, i1, i2, g3 = rescan_row(W[j], h, maximize)
    H[n, j], S[n, j], S2[n, j] = best, i1, i2
    R3[n, j] = g3 - Dr[n] + margin
    if i1 != s:
        T[n, s] = min(T[n, s], good(best, maximize) - good(W[j, s], maximize) + Dt[n] - margin)
    work[n, RESCANS] += 1


@nb.njit(cache=True)
def take_over(W, h, H, S, S2, R3, T, Dr, Dt, n, j, i, cand, margin, maximize):  # noqa: N803
    """Input ``i`` with candidate value ``cand`` takes output ``j`` over."""
    s, s2 = S[n, j], S2[n, j]
    if s2 >= 0 and s2 != i:
        g2 = good(W[j, s2] + h[s2], maximize)
        R3[n, j] = max(R3[n, j], g2 - Dr[n] + margin)
    T[n, s] = min(T[n, s], good(cand, maximize) - good(W[j, s], maximize) + Dt[n] - margin)
    S2[n, j] = s
    S[n, j] = i
    H[n, j] = cand


@nb.njit(cache=True)
def weight_candidate(W, h, H, S, S2, R3, T, Dr, Dt, n, j, i, margin, maximize, work):  # noqa: N803
    """Candidate ``(j, i)`` whose weight changed (any direction)."""
    cand = W[j, i] + h[i]
    g = good(cand, maximize)
    s = S[n, j]
    if s == i:
        worse = g < good(H[n, j], maximize)
        H[n, j] = cand
        if worse:
            resolve_worse(W, h, H, S, S2, R3, T, Dr, Dt, n, j, margin, maximize, work)
        return
    if beats(g, i, good(H[n, j], maximize), s):
        take_over(W, h, H, S, S2, R3, T, Dr, Dt, n, j, i, cand, margin, maximize)
        return
    if S2[n, j] != i:
        R3[n, j] = max(R3[n, j], g - Dr[n] + margin)
    T[n, i] = min(T[n, i], good(H[n, j], maximize) - good(W[j, i], maximize) + Dt[n] - margin)


@nb.njit(parallel=True, cache=True)
def repair_layer(
    Hin,
    W,
    WT,
    H,
    S,
    S2,
    R3,
    T,
    Dt,
    Dr,
    maximize,  # noqa: N803
    ci_count,
    ci_idx,
    ci_old,
    w_rows,
    w_cols,
    w_gain,
    margin,
    co_count,
    co_idx,
    co_old,
    work,
):
    """Repair one tropical layer for every sample.

    ``Hin`` holds the new inputs; sample ``n`` changed ``ci_count[n]`` of them,
    ``ci_idx[n, :count]``, whose previous values are ``ci_old[n, :count]``. Weights
    ``(w_rows[e], w_cols[e])`` changed (``W``, ``WT`` hold the new values); ``w_gain``
    is the largest change of a weight's goodness, up or down. Writes the changed
    outputs into ``co_count``, ``co_idx`` with their previous values in ``co_old``,
    and counts the work per sample.
    """
    N = Hin.shape[0]  # noqa: N806
    n_out = W.shape[0]
    n_chunks = min(CHUNKS, N)
    for c in nb.prange(n_chunks):
        old = np.empty(n_out, dtype=H.dtype)
        worse = np.empty(n_out, dtype=np.bool_)
        passed = np.empty(Hin.shape[1], dtype=np.int64)
        for n in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            count = ci_count[n]
            if count == 0 and w_rows.shape[0] == 0:
                co_count[n] = 0
                continue
            h = Hin[n]
            h_row, s_row = H[n], S[n]
            # how far outputs may worsen (an input and its weight both moving; the
            # threshold's own weight moving too) and unseen candidates may improve
            down = 0.0
            up = 0.0
            for t in range(count):
                delta = good(h[ci_idx[n, t]], maximize) - good(ci_old[n, t], maximize)
                down = max(down, -delta)
                up = max(up, delta)
            Dt[n] += down + 2.0 * w_gain + margin
            Dr[n] += up + w_gain + margin
            for j in range(n_out):
                old[j] = h_row[j]
                worse[j] = False
            # outputs that select a changed input follow it
            for t in range(count):
                i = ci_idx[n, t]
                hi = h[i]
                w = WT[i]
                for j in range(n_out):
                    sel = s_row[j] == i
                    v = w[j] + hi
                    worse[j] = worse[j] | (sel & (good(v, maximize) < good(h_row[j], maximize)))
                    h_row[j] = v if sel else h_row[j]
                work[n, SCANS] += 1
            for e in range(w_rows.shape[0]):
                j = w_rows[e]
                if s_row[j] == w_cols[e] and worse[j]:
                    continue  # already followed with its new weight
                weight_candidate(
                    W, h, H, S, S2, R3, T, Dr, Dt, n, j, w_cols[e], margin, maximize, work
                )
            # improved inputs that may reach an output: takeover passes
            n_passed = 0
            for t in range(count):
                i = ci_idx[n, t]
                g_new = good(h[i], maximize)
                if not g_new > good(ci_old[n, t], maximize):
                    continue
                if g_new < T[n, i] - Dt[n]:
                    work[n, CERTIFIED] += 1
                    continue
                w = WT[i]
                for j in range(n_out):
                    if s_row[j] == i:
                        continue
                    v = w[j] + h[i]
                    g = good(v, maximize)
                    if beats(g, i, good(h_row[j], maximize), s_row[j]):
                        take_over(W, h, H, S, S2, R3, T, Dr, Dt, n, j, i, v, margin, maximize)
                    elif S2[n, j] != i:
                        R3[n, j] = max(R3[n, j], g - Dr[n] + margin)
                passed[n_passed] = i
                n_passed += 1
                work[n, TAKEOVER_PASSES] += 1
            for j in range(n_out):
                if worse[j]:
                    resolve_worse(W, h, H, S, S2, R3, T, Dr, Dt, n, j, margin, maximize, work)
            # thresholds of the inputs that had a pass, from the final outputs
            for p in range(n_passed):
                i = passed[p]
                T[n, i] = threshold_of(W, H, S, n, i, maximize) + Dt[n] - margin
            changed = 0
            for j in range(n_out):
                if h_row[j] != old[j]:
                    co_idx[n, changed] = j
                    co_old[n, changed] = old[j]
                    changed += 1
            co_count[n] = changed


@nb.njit(parallel=True, cache=True)
def initial_state(Hin, W, H, S, S2, R3, T, Dt, Dr, maximize, margin):  # noqa: N803
    """Exact state of one layer from its inputs: selections, seconds, bounds."""
    N = Hin.shape[0]  # noqa: N806
    n_out, n_in = W.shape
    for n in nb.prange(N):
        Dt[n] = 0.0
        Dr[n] = 0.0
        h = Hin[n]
        for j in range(n_out):
            best, i1, i2, g3 = rescan_row(W[j], h, maximize)
            H[n, j], S[n, j], S2[n, j] = best, i1, i2
            R3[n, j] = g3 + margin
        t = np.full(n_in, np.inf)
        for j in range(n_out):
            gh = good(H[n, j], maximize)
            s = S[n, j]
            w = W[j]
            for i in range(n_in):
                v = gh - good(w[i], maximize)
                t[i] = v if (i != s and v < t[i]) else t[i]
        for i in range(n_in):
            T[n, i] = t[i] - margin


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
