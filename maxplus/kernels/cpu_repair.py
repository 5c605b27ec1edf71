"""numba kernels that repair a tropical layer's stored state after a sparse step.

Everything is written in terms of *goodness* ``g(v) = v`` for a max layer and
``g(v) = −v`` for a min layer, so that "better" always means "larger goodness".

Per sample ``n`` and output ``j`` the state holds the output ``H``, the selected
input ``S`` (lowest index on ties), a *second* input ``S2`` whose candidate value
``W[j, S2] + h[S2]`` can be recomputed at any time (``-1`` if none), and ``R3``, an
upper bound on the goodness of every other candidate. Per input ``i`` and sample
``n`` (stored input-major, so that a column changed for every sample is read in
order) it holds two thresholds:

* ``T``: while ``g(h_i) < T − Dt``, input ``i`` cannot take over an output that
  does not select it. ``Dt`` accumulates how far the sample's outputs may have
  worsened since (outputs are not revisited when they worsen);
* ``T3``: while ``g(h_i) < T3``, none of input ``i``'s candidates exceeds the
  ``R3`` bound of an output for which it is neither selected nor second.

A step changes some inputs ``h_i`` of a sample and some weights:

* outputs whose selected input changed take its new value; one that got worse is
  resolved against its second (exact) and ``R3``: it keeps its input, swaps with
  the second, or, only when ``R3`` is binding, is *rescanned* over all inputs;
* an input that improved past one of its thresholds gets a takeover pass over
  every output (lowest index on ties, ``R3`` raised where needed) and new
  thresholds; otherwise nothing is done for it;
* changed weights are processed one by one with the same rules.

The values kept are those a fresh forward pass computes, so the state is exact.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .prefetch import prefetch, prefetch_row

CHUNKS = 64
#: A takeover pass raises the runner bounds it must raise by this many times the
#: input's last move (and a rounding margin), so that the next moves of the same
#: input are certified without another pass; looser bounds cost rare rescans.
SLACK = 4.0
#: Samples ahead whose rows are prefetched.
PREFETCH_DISTANCE = 2
# work counters per sample
FOLLOWED, TAKEOVER_PASSES, SWAPS, RESCANS, CERTIFIED = 0, 1, 2, 3, 4
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
def rescan_row(W, Hin, n, j, maximize):  # noqa: N803
    """Exact best value and input, second-best input and third-best goodness of
    ``W[j] + Hin[n]``."""
    g1, g2, g3 = -np.inf, -np.inf, -np.inf
    best, i1, i2 = W[j, 0] + Hin[n, 0], 0, -1
    for i in range(W.shape[1]):
        v = W[j, i] + Hin[n, i]
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


@nb.njit(cache=True, inline="always")
def thresholds(WT, H, S, S2, R3, T, T3, Dt, n, i, margin, maximize):  # noqa: N803
    """Recompute ``T[i, n]`` and ``T3[i, n]`` from the current outputs."""
    t = np.inf
    t3 = np.inf
    for j in range(WT.shape[1]):
        gw = good(WT[i, j], maximize)
        v = good(H[n, j], maximize) - gw
        t = v if (S[n, j] != i and v < t) else t
        v3 = R3[n, j] - gw
        t3 = v3 if (S[n, j] != i and S2[n, j] != i and v3 < t3) else t3
    T[i, n] = t + Dt[n] - margin
    T3[i, n] = t3 - margin


@nb.njit(cache=True, inline="always")
def lower_third(W, S, S2, R3, T3, n, j, margin, maximize):  # noqa: N803
    """``R3[n, j]`` was lowered: every input's ``T3`` must respect it."""
    r3 = R3[n, j]
    s, s2 = S[n, j], S2[n, j]
    for i in range(W.shape[1]):
        v = r3 - good(W[j, i], maximize) - margin
        T3[i, n] = v if (i != s and i != s2 and v < T3[i, n]) else T3[i, n]


# ---- the inverted index: for each input, the outputs that select it -----------------


@nb.njit(cache=True, inline="always")
def select(S, head, nxt, n, j, i):  # noqa: N803
    """Output ``j`` now selects input ``i``: move it between the two groups."""
    old = S[n, j]
    if old == i:
        return
    p = head[old, n]
    if p == j:
        head[old, n] = nxt[n, j]
    else:
        while nxt[n, p] != j:
            p = nxt[n, p]
        nxt[n, p] = nxt[n, j]
    nxt[n, j] = head[i, n]
    head[i, n] = j
    S[n, j] = i


@nb.njit(cache=True, inline="always")
def touch(H, n, j, old, touched, touched_list, counts):  # noqa: N803
    """Remember output ``j``'s value before this step changes it."""
    if not touched[j]:
        touched[j] = True
        old[j] = H[n, j]
        touched_list[counts[0]] = j
        counts[0] += 1


@nb.njit(cache=True, inline="always")
def mark_worse(j, worse, worse_list, counts):
    if not worse[j]:
        worse[j] = True
        worse_list[counts[1]] = j
        counts[1] += 1


@nb.njit(cache=True, inline="always")
def resolve_worse(W, Hin, H, S, S2, R3, T, T3, Dt, head, nxt, n, j, margin, maximize, work):  # noqa: N803
    """Output ``j`` of sample ``n``: its selected candidate got worse (already in ``H``)."""
    s, s2 = S[n, j], S2[n, j]
    g_cur = good(H[n, j], maximize)
    r3 = R3[n, j]
    if s2 >= 0:
        v2 = W[j, s2] + Hin[n, s2]
        g2 = good(v2, maximize)
        if beats(g_cur, s, g2, s2) and g_cur > r3:
            return
        if beats(g2, s2, g_cur, s) and g2 > r3:
            select(S, head, nxt, n, j, s2)
            S2[n, j], H[n, j] = s, v2
            T[s, n] = min(T[s, n], g2 - good(W[j, s], maximize) + Dt[n] - margin)
            work[n, SWAPS] += 1
            return
    elif g_cur > r3:
        return
    best, i1, i2, g3 = rescan_row(W, Hin, n, j, maximize)
    select(S, head, nxt, n, j, i1)
    H[n, j], S2[n, j] = best, i2
    R3[n, j] = g3 + margin
    lower_third(W, S, S2, R3, T3, n, j, margin, maximize)
    if i1 != s:
        T[s, n] = min(T[s, n], good(best, maximize) - good(W[j, s], maximize) + Dt[n] - margin)
    work[n, RESCANS] += 1


@nb.njit(cache=True, inline="always")
def take_over(W, Hin, H, S, S2, R3, T, T3, Dt, head, nxt, n, j, i, cand, margin, maximize):  # noqa: N803
    """Input ``i`` with candidate value ``cand`` takes output ``j`` over; the old
    selection becomes the second, the old second joins the rest under ``R3``."""
    s, s2 = S[n, j], S2[n, j]
    if s2 >= 0 and s2 != i:
        gw2 = good(W[j, s2], maximize)
        R3[n, j] = max(R3[n, j], gw2 + good(Hin[n, s2], maximize) + margin)
        T3[s2, n] = min(T3[s2, n], R3[n, j] - gw2 - margin)
    T[s, n] = min(T[s, n], good(cand, maximize) - good(W[j, s], maximize) + Dt[n] - margin)
    select(S, head, nxt, n, j, i)
    S2[n, j] = s
    H[n, j] = cand


@nb.njit(parallel=True, cache=True)
# fmt: off
def repair_layer(  # noqa: N803
    Hin,
    W,
    WT,
    H,
    S,
    S2,
    R3,
    T,
    T3,
    Dt,
    head,
    nxt,
    maximize,
    batch,
    ci_count,
    ci_idx,
    ci_old,
    w_rows,
    w_cols,
    w_first,
    w_gain,
    margin,
    co_count,
    co_idx,
    co_old,
    work,
):
    """Repair one tropical layer for the samples ``batch``.

    ``Hin`` holds the new inputs; the ``b``-th sample of the batch changed
    ``ci_count[b]`` of them, ``ci_idx[b, :count]``, whose previous values are
    ``ci_old[b, :count]``. Weights ``(w_rows[e], w_cols[e])`` for ``e ≥ w_first[b]``
    may have changed since (``W``, ``WT`` hold the new values; listing one that did
    not, or twice, is harmless); ``w_gain[b]`` bounds how far any weight's goodness
    moved since, up or down.
    ``head``/``nxt`` list, per sample, the outputs selecting each input. Writes the
    changed outputs into ``co_count[b]``, ``co_idx[b]`` with their previous values in
    ``co_old[b]``, and counts the work per sample in ``work[n]``.
    """
    B = batch.shape[0]  # noqa: N806
    n_out, n_in = W.shape
    n_chunks = min(CHUNKS, B)
    # fmt: on
    for c in nb.prange(n_chunks):
        old = np.empty(n_out, dtype=H.dtype)
        touched = np.zeros(n_out, dtype=np.bool_)
        touched_list = np.empty(n_out, dtype=np.int64)
        worse = np.zeros(n_out, dtype=np.bool_)
        worse_list = np.empty(n_out, dtype=np.int64)
        take = np.zeros(n_out, dtype=np.bool_)
        passed = np.empty(n_in, dtype=np.int64)
        counts = np.zeros(2, dtype=np.int64)
        last = (c + 1) * B // n_chunks
        for b in range(c * B // n_chunks, last):
            n = batch[b]
            if b + PREFETCH_DISTANCE < last:  # the rows of a sample a few steps ahead
                a = batch[b + PREFETCH_DISTANCE]
                for t in range(ci_count[b + PREFETCH_DISTANCE]):
                    prefetch(Hin, a, ci_idx[b + PREFETCH_DISTANCE, t])
                if n_in <= 256:
                    prefetch_row(Hin, a)
                prefetch_row(H, a)
                prefetch_row(S, a)
                prefetch_row(S2, a)
                prefetch_row(R3, a)
                prefetch_row(nxt, a)
            count = ci_count[b]
            if count == 0 and w_first[b] == w_rows.shape[0]:
                co_count[b] = 0
                continue
            counts[0] = 0
            counts[1] = 0
            # how far outputs may worsen (an input and its weight both moving, and
            # the threshold's own weight moving too)
            down = 0.0
            for t in range(count):
                i = ci_idx[b, t]
                down = max(down, good(ci_old[b, t], maximize) - good(Hin[n, i], maximize))
            Dt[n] += down + 2.0 * w_gain[b] + margin
            # outputs whose selected input changed follow it
            followed = 0
            for t in range(count):
                i = ci_idx[b, t]
                hi = Hin[n, i]
                j = head[i, n]
                while j >= 0:
                    touch(H, n, j, old, touched, touched_list, counts)
                    v = W[j, i] + hi
                    if good(v, maximize) < good(H[n, j], maximize):
                        mark_worse(j, worse, worse_list, counts)
                    H[n, j] = v
                    followed += 1
                    j = nxt[n, j]
            # changed weights, one candidate at a time
            for e in range(w_first[b], w_rows.shape[0]):
                j = w_rows[e]
                i = w_cols[e]
                cand = W[j, i] + Hin[n, i]
                g = good(cand, maximize)
                if S[n, j] == i:
                    touch(H, n, j, old, touched, touched_list, counts)
                    if g < good(H[n, j], maximize):
                        mark_worse(j, worse, worse_list, counts)
                    H[n, j] = cand
                elif beats(g, i, good(H[n, j], maximize), S[n, j]):
                    touch(H, n, j, old, touched, touched_list, counts)
                    take_over(
                        W, Hin, H, S, S2, R3, T, T3, Dt, head, nxt, n, j, i, cand, margin, maximize
                    )
                else:
                    gw = good(W[j, i], maximize)
                    if S2[n, j] != i:
                        R3[n, j] = max(R3[n, j], g + margin)
                        T3[i, n] = min(T3[i, n], R3[n, j] - gw - margin)
                    T[i, n] = min(T[i, n], good(H[n, j], maximize) - gw + Dt[n] - margin)
            # improved inputs past a threshold: takeover passes
            n_passed = 0
            for t in range(count):
                i = ci_idx[b, t]
                hi = Hin[n, i]
                g_new = good(hi, maximize)
                if not g_new > good(ci_old[b, t], maximize):
                    continue
                if g_new < T[i, n] - Dt[n] and g_new < T3[i, n]:
                    work[n, CERTIFIED] += 1
                    continue
                any_take = False
                slack = margin + SLACK * (g_new - good(ci_old[b, t], maximize))
                for j in range(n_out):
                    gv = good(WT[i, j] + hi, maximize)
                    s = S[n, j]
                    gh = good(H[n, j], maximize)
                    other = s != i
                    bt = other & ((gv > gh) | ((gv == gh) & (i < s)))
                    take[j] = bt
                    any_take = any_take | bt
                    r3 = R3[n, j]
                    raised = gv + slack
                    raise3 = other & (not bt) & (S2[n, j] != i) & (raised > r3)
                    R3[n, j] = raised if raise3 else r3
                if any_take:
                    for j in range(n_out):
                        if take[j]:
                            take[j] = False
                            touch(H, n, j, old, touched, touched_list, counts)
                            take_over(
                                W,
                                Hin,
                                H,
                                S,
                                S2,
                                R3,
                                T,
                                T3,
                                Dt,
                                head,
                                nxt,
                                n,
                                j,
                                i,
                                WT[i, j] + hi,
                                margin,
                                maximize,
                            )
                passed[n_passed] = i
                n_passed += 1
                work[n, TAKEOVER_PASSES] += 1
            for k in range(counts[1]):
                j = worse_list[k]
                worse[j] = False
                resolve_worse(
                    W, Hin, H, S, S2, R3, T, T3, Dt, head, nxt, n, j, margin, maximize, work
                )
            for p in range(n_passed):
                thresholds(WT, H, S, S2, R3, T, T3, Dt, n, passed[p], margin, maximize)
            changed = 0
            for k in range(counts[0]):
                j = touched_list[k]
                touched[j] = False
                if H[n, j] != old[j]:
                    co_idx[b, changed] = j
                    co_old[b, changed] = old[j]
                    changed += 1
            co_count[b] = changed
            work[n, FOLLOWED] += followed


@nb.njit(parallel=True, cache=True)
def initial_state(Hin, W, H, S, S2, R3, T, T3, Dt, head, nxt, maximize, margin):  # noqa: N803
    """Exact state of one layer from its inputs: selections, seconds, bounds, groups."""
    N = Hin.shape[0]  # noqa: N806
    n_out, n_in = W.shape
    for n in nb.prange(N):
        Dt[n] = 0.0
        for i in range(n_in):
            head[i, n] = -1
        for j in range(n_out):
            best, i1, i2, g3 = rescan_row(W, Hin, n, j, maximize)
            H[n, j], S[n, j], S2[n, j] = best, i1, i2
            R3[n, j] = g3 + margin
            nxt[n, j] = head[i1, n]
            head[i1, n] = j
        t = np.full(n_in, np.inf)
        t3 = np.full(n_in, np.inf)
        for j in range(n_out):
            gh = good(H[n, j], maximize)
            r3 = R3[n, j]
            s, s2 = S[n, j], S2[n, j]
            for i in range(n_in):
                gw = good(W[j, i], maximize)
                v = gh - gw - margin
                t[i] = v if (i != s and v < t[i]) else t[i]
                v3 = r3 - gw - margin
                t3[i] = v3 if (i != s and i != s2 and v3 < t3[i]) else t3[i]
        for i in range(n_in):
            T[i, n] = t[i]
            T3[i, n] = t3[i]


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
