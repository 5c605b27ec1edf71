"""numba kernels that repair a tropical layer's stored state after a sparse step.

Everything is written in terms of *goodness* ``g(v) = v`` for a max layer and
``g(v) = −v`` for a min layer, so that "better" always means "larger goodness".

Per sample ``n`` and output ``j`` the state holds the output ``H``, the selected
input ``S`` (lowest index on ties), up to :data:`SECONDS` *runners-up* ``S2``
(inputs whose candidate values ``W[j, i] + h[i]`` are recomputed exactly when
needed; ``-1`` marks a free place), and ``R3``, an upper bound on the goodness of
every other candidate. Per sample ``n`` and input
``i`` it holds two thresholds and the group of outputs selecting ``i`` (a linked
doubly linked list ``head``/``nxt``/``prv``):

* ``T``: while ``g(h_i) < T − Dt``, input ``i`` cannot take over an output that
  does not select it;
* ``T3``: while ``g(h_i) < T3``, none of input ``i``'s candidates exceeds the
  ``R3`` bound of an output for which it is neither selected nor a runner-up.

Bounds are not revisited when something they depend on moves a little; instead
each sample accumulates how far that could have been: ``Dt`` (outputs worsening,
weights moving) and ``Dr`` (a rounding margin per repair), and the effective
bounds are ``T − Dt`` and ``R3 + Dr``.

A repair brings a sample's state up to date after some of its inputs and some
weights changed:

* outputs whose selected input (or weight) changed take the new value; one that
  got worse is resolved against its runners-up (exact) and ``R3``: it keeps its
  input, swaps with the best runner-up, or, only when ``R3`` is binding, is
  *rescanned* (which also re-ranks its runners-up);
* an input that improved past one of its thresholds gets a takeover pass over
  every output (lowest index on ties, ``R3`` raised where needed) which also sets
  its new thresholds (only ``T`` while it is still under ``T3``: then no ``R3``
  needs raising and ``T3`` stays valid); otherwise nothing is done for it;
* changed weights are processed one candidate at a time: a runner's ``R3`` and
  ``T3`` take in its new value (``T`` allows for it through ``Dt``).

The values kept are those a fresh forward pass computes, so the state is exact.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from .ordered_keys import (
    INF_KEY,
    MOST_KEY,
    NO_CANDIDATE,
    candidate_key,
    key_goodness,
    key_input,
    key_value,
    lesser_key,
    order_key,
    own_key,
    own_key_value,
)
from .prefetch import prefetch, prefetch_row
from .uncounted import uncounted

#: Runners-up kept exactly per output. A takeover pushes the previous selection
#: among them; only when the list is full does one drop under the bound ``R3``, so
#: an output whose selection worsens past a few candidates needs no rescan.
SECONDS = 4
#: Where a rescan puts the bound ``R3`` between the best unlisted candidate (0) and
#: the worst listed one (1): room for the former to improve without a takeover pass.
HEADROOM = 0.5
#: Samples ahead whose state is prefetched.
PREFETCH_DISTANCE = 2
#: A sample whose inputs did not change and whose layer had at most this many weights
#: moved since its synchronisation has only those entries' places prefetched.
ENTRIES_PREFETCHED = 16
# work counters per sample (RECOMPUTED: candidates of layers recomputed whole, :mod:`.cpu_rescan`)
FOLLOWED, TAKEOVER_PASSES, SWAPS, RESCANS, CERTIFIED, RECOMPUTED = 0, 1, 2, 3, 4, 5
N_COUNTERS = 6


@nb.njit(inline="always")
def good(v, maximize):
    """Goodness: the value for a max layer, its negative for a min layer."""
    return np.float64(v) if maximize else -np.float64(v)


@nb.njit(inline="always")
def beats(gv, iv, gw, iw):
    """Candidate (goodness ``gv``, index ``iv``) beats (``gw``, ``iw``): lowest index on ties."""
    return (gv > gw) | ((gv == gw) & (iv < iw))  # no branches: the pass loop vectorises


def rank_candidates(W, Hin, n, j, maximize, top_g, top_i, keys):  # noqa: N803
    """The best ``SECONDS + 1`` candidates ``W[j] + Hin[n]`` into ``top_g`` (goodness)
    and ``top_i`` (input), best first, the lower input first on ties; returns how many
    there are and the best goodness of the others (``-inf`` if none). ``keys`` is
    scratch of length ``n_in`` (compiled only)."""
    raise NotImplementedError("compiled only")


@overload(rank_candidates, jit_options={"_nrt": False})
def _rank_candidates(W, Hin, n, j, maximize, top_g, top_i, keys):  # noqa: N803
    if Hin.dtype == types.float32:

        def by_keys(W, Hin, n, j, maximize, top_g, top_i, keys):  # noqa: N803
            # one int64 key per candidate (distinct: each holds its input); each
            # place is the largest key below the one before, by a running maximum
            # over every key with those at or above it masked by bit operations (a
            # conditional there would stop the loop vectorising)
            sign = np.float32(1.0 if maximize else -1.0)
            n_in = W.shape[1]
            for i in range(n_in):
                keys[i] = candidate_key((W[j, i] + Hin[n, i]) * sign, i)
            above = np.int64(MOST_KEY)
            for k in range(SECONDS + 2):  # the last one: the best of the others
                best = np.int64(NO_CANDIDATE)
                for i in range(n_in):
                    key = keys[i]
                    key ^= -np.int64(key >= above) & (key ^ np.int64(NO_CANDIDATE))
                    best = key if key > best else best
                if best == NO_CANDIDATE:
                    return k, -np.inf
                if k == SECONDS + 1:
                    return k, key_goodness(best)
                top_g[k], top_i[k] = key_goodness(best), key_input(best)
                above = best
            return SECONDS + 1, -np.inf  # not reached

        return by_keys

    def by_insertion(W, Hin, n, j, maximize, top_g, top_i, keys):  # noqa: N803
        m = SECONDS + 1
        filled = 0
        g_rest = -np.inf
        for i in range(W.shape[1]):
            gv = good(W[j, i] + Hin[n, i], maximize)
            if filled == m:
                low = top_g[m - 1]
                if not gv > low:
                    g_rest = max(g_rest, gv)
                    continue
                g_rest = max(g_rest, low)
                p = m - 1
            else:
                p = filled
                filled += 1
            while p > 0 and top_g[p - 1] < gv:  # equal goodness keeps the lower index first
                top_g[p] = top_g[p - 1]
                top_i[p] = top_i[p - 1]
                p -= 1
            top_g[p] = gv
            top_i[p] = i
        return filled, g_rest

    return by_insertion


@uncounted
def rescan_row(W, Hin, n, j, maximize, S2, top_g, top_i, keys):  # noqa: N803
    """Rank the candidates ``W[j] + Hin[n]`` (:func:`rank_candidates`): returns the
    best value, its input and a goodness bound for the candidates outside the top
    ``SECONDS + 1``: halfway between the best of them and the worst of the top
    (``g_rest + HEADROOM·gap``), so that the best unlisted input can improve a little
    before its ``T3`` trips. The runners-up (best first, lowest index on ties, ``-1``
    where there are fewer) go to output ``j``'s places ``S2[n, j * SECONDS + k]``;
    ``top_g``/``top_i`` are scratch of length ``SECONDS + 1``, ``keys`` of length
    ``n_in``."""
    m = SECONDS + 1
    filled, g_rest = rank_candidates(W, Hin, n, j, maximize, top_g, top_i, keys)
    for k in range(SECONDS):
        S2[n, j * SECONDS + k] = top_i[k + 1] if k + 1 < filled else -1
    i1 = top_i[0]
    if g_rest > -np.inf:  # then the top is full
        g_rest += HEADROOM * (top_g[m - 1] - g_rest)
    return W[j, i1] + Hin[n, i1], i1, g_rest


@uncounted
def unlisted(S2, n, j, i):  # noqa: N803
    """Input ``i`` is not among output ``j``'s runners-up."""
    out = True
    for k in range(SECONDS):
        out = out & (S2[n, j * SECONDS + k] != i)
    return out


# The state of one layer, passed as a tuple:
# (H, S, S2, R3, T, T3, Dt, Dr, head, nxt, prv)
# The helpers run per output, take_over and resolve_worse, are inlined into the repair:
# a call passes the thirteen arrays afresh, and a pass can take over tens of outputs
# (together 0.82x the mean step at lr 1e-2 from the initial network).
# Kernels bind at most three of the state's arrays per statement: CPython compiles a
# longer unpacking ``a, b, c, d = st[0], ...`` (or ``... = st``) through a tuple, which
# numba's alias analysis does not follow, so that in a helper inlined into the parallel
# loop its dead-code pass drops the writes to those arrays (it did to resolve_worse's
# swaps). tests/test_packaging.py holds every kernel module to this.


@nb.njit(cache=True, inline="always")
def store_takeover_threshold(st, n, i, t, margin):
    """``T[n, i]`` from the exact minimum ``t``."""
    st[4][n, i] = t + st[6][n] - margin


@nb.njit(cache=True, inline="always")
def store_thresholds(st, n, i, t, t3, margin):
    """``T[n, i]`` and ``T3[n, i]`` from the exact minima ``t`` and ``t3``."""
    store_takeover_threshold(st, n, i, t, margin)
    st[5][n, i] = t3 - margin


@nb.njit(cache=True, inline="always")
def own_contest(WT, H, S, n, i, j, hi, sign):  # noqa: N803
    """Input ``i`` (value ``hi``) against output ``j`` of sample ``n``, in the layer's
    own precision (``sign`` = 1 for a max layer, −1 for a min layer, of that dtype):
    the goodness of its weight, of its candidate and of the output, whether ``j``
    selects another input, and whether the candidate takes ``j`` over."""
    gw = WT[i, j] * sign
    gv = (WT[i, j] + hi) * sign
    gh = H[n, j] * sign
    s = S[n, j]
    other = s != i
    return gw, gv, gh, other, other & beats(gv, i, gh, s)


@nb.njit(cache=True, inline="always")
def contest(WT, H, S, n, i, j, hi, maximize):  # noqa: N803
    """:func:`own_contest` with the goodnesses as float64 (exactly: negation and
    widening do not round)."""
    sign = H.dtype.type(1.0 if maximize else -1.0)
    gw, gv, gh, other, bt = own_contest(WT, H, S, n, i, j, hi, sign)
    return np.float64(gw), np.float64(gv), np.float64(gh), other, bt


@nb.njit(cache=True, inline="always")
def mark_takes(WT, H, S, n, i, hi, maximize, take):  # noqa: N803
    """``take[j]``: input ``i``'s candidate ``WT[i, j] + hi`` takes output ``j`` over."""
    for j in range(WT.shape[1]):
        take[j] = contest(WT, H, S, n, i, j, hi, maximize)[4]


@nb.njit(cache=True, inline="always")
def takeover_pass(WT, H, S, S2, R3, n, i, hi, lift, maximize, take):  # noqa: N803
    """Input ``i`` of sample ``n``, of value ``hi``, against every output ``j`` (the
    state arrays as in :func:`repair_layer`).

    Returns whether its candidate ``WT[i, j] + hi`` beats any output ``j`` that does
    not select it (then ``take[j]`` marks those it takes), and the minima its
    thresholds come from: over the outputs it does not select and keeps,
    ``t = min g(H) − g(W)``, and ``t3 = min R3 − g(W)`` over those where it is not
    listed either. Where it neither takes ``j`` nor is selected or listed there, it
    raises ``R3[n, j]`` to its candidate's goodness plus ``lift``. (An input whose
    candidates exceed no runner bound needs only :func:`takeover_check`.)

    The minima are running minima of order keys (:mod:`maxplus.kernels.ordered_keys`),
    so that the loop vectorises. (A zero minimum may come back as ``-0.0`` where a
    comparison chain keeps ``+0.0``; :func:`store_thresholds` subtracts a positive
    margin, so the stored thresholds are the same bits.)
    """
    any_take = False
    least_t, least_t3 = INF_KEY, INF_KEY
    for j in range(WT.shape[1]):
        gw, gv, gh, other, bt = contest(WT, H, S, n, i, j, hi, maximize)
        any_take = any_take | bt
        keep = other & (not bt)
        least_t = lesser_key(least_t, order_key(gh - gw) if keep else INF_KEY)
        unl = unlisted(S2, n, j, i)
        r3 = R3[n, j]
        raised = gv + lift
        r3 = raised if (keep & unl & (raised > r3)) else r3
        R3[n, j] = r3
        least_t3 = lesser_key(least_t3, order_key(r3 - gw) if (keep & unl) else INF_KEY)
    if any_take:
        mark_takes(WT, H, S, n, i, hi, maximize, take)
    return any_take, key_value(least_t), key_value(least_t3)


@nb.njit(cache=True, inline="always")
def takeover_check(WT, H, S, n, i, hi, maximize, take):  # noqa: N803
    """:func:`takeover_pass` for an input whose candidates exceed no runner bound
    (``g(h_i) < T3[n, i]``), in the layer's own precision, which fills twice the vector
    lanes of float64 in a float32 layer: returns whether it takes any output over
    (``take[j]`` marking those) and ``t = min g(H) − g(W)`` over the outputs it does
    not select and keeps. In float32 that difference is rounded (by at most half a
    unit in its last place), which :func:`store_takeover_threshold`'s margin
    covers; in float64 it is :func:`takeover_pass`'s, bitwise."""
    sign = H.dtype.type(1.0 if maximize else -1.0)
    none = own_key(H.dtype.type(np.inf))
    any_take = False
    least = none
    for j in range(WT.shape[1]):
        gw, _, gh, other, bt = own_contest(WT, H, S, n, i, j, hi, sign)
        any_take = any_take | bt
        key = own_key(gh - gw) if other & (not bt) else none
        least = key if key < least else least
    if any_take:
        mark_takes(WT, H, S, n, i, hi, maximize, take)
    return any_take, own_key_value(least)


@uncounted
def thresholds(WT, st, n, i, margin, maximize, take):  # noqa: N803
    """Recompute ``T[n, i]`` and ``T3[n, i]`` from the current outputs: a
    :func:`takeover_pass` of a value that beats no (finite) output and raises no
    ``R3``."""
    worst = -np.inf if maximize else np.inf
    H, S, S2 = st[0], st[1], st[2]  # noqa: N806
    R3 = st[3]  # noqa: N806
    _, t, t3 = takeover_pass(WT, H, S, S2, R3, n, i, worst, 0.0, maximize, take)
    store_thresholds(st, n, i, t, t3, margin)


@nb.njit(cache=True, inline="always")
def lost_output(W, st, n, j, s, g_out, margin, maximize):  # noqa: N803
    """Input ``s`` no longer holds output ``j``, now of goodness ``g_out``: its
    takeover threshold ``T[n, s]`` takes in the gap back to that output."""
    T, Dt = st[4], st[6]  # noqa: N806
    T[n, s] = min(T[n, s], g_out - good(W[j, s], maximize) + Dt[n] - margin)


@nb.njit(cache=True, inline="always")
def under_bound(W, st, n, j, i, g, margin, maximize):  # noqa: N803
    """Input ``i``'s candidate for output ``j`` (goodness ``g``) is neither selected
    nor listed: ``R3[n, j]`` is raised to cover it and ``T3[n, i]`` takes the bound in."""
    R3, T3, Dr = st[3], st[5], st[7]  # noqa: N806
    R3[n, j] = max(R3[n, j], g + margin - Dr[n])
    T3[n, i] = min(T3[n, i], R3[n, j] - good(W[j, i], maximize) - margin)


@uncounted
def select(st, n, j, i):
    """Output ``j`` now selects input ``i``: move it between the two groups (O(1))."""
    S, head = st[1], st[8]  # noqa: N806
    nxt, prv = st[9], st[10]
    old = S[n, j]
    if old == i:
        return
    before, after = prv[n, j], nxt[n, j]
    if before >= 0:
        nxt[n, before] = after
    else:
        head[n, old] = after
    if after >= 0:
        prv[n, after] = before
    first = head[n, i]
    if first >= 0:
        prv[n, first] = j
    nxt[n, j], prv[n, j] = first, -1
    head[n, i] = j
    S[n, j] = i


@nb.njit(cache=True, inline="always")
def touch(H, n, j, old, touched, touched_list, counts):  # noqa: N803
    """Remember output ``j``'s value before this repair changes it."""
    if not touched[j]:
        touched[j] = True
        old[j] = H[n, j]
        touched_list[counts[0]] = j
        counts[0] += 1


@nb.njit(cache=True, inline="always")
def follow(H, n, j, v, maximize, worse, worse_list, counts):  # noqa: N803
    """Output ``j``'s selected candidate now has value ``v``; flag it if worse."""
    if good(v, maximize) < good(H[n, j], maximize) and not worse[j]:
        worse[j] = True
        worse_list[counts[1]] = j
        counts[1] += 1
    H[n, j] = v


@nb.njit(cache=True, inline="always")
def best_listed(W, Hin, H, S, S2, n, j, maximize):  # noqa: N803
    """The best of output ``j``'s selection and runners-up, exactly: its goodness,
    input and place among the runners-up (``-1``: the selection itself)."""
    g_best, i_best, k_best = good(H[n, j], maximize), S[n, j], -1
    for k in range(SECONDS):
        c = S2[n, j * SECONDS + k]
        if c >= 0:
            g = good(W[j, c] + Hin[n, c], maximize)
            if beats(g, c, g_best, i_best):
                g_best, i_best, k_best = g, c, k
    return g_best, i_best, k_best


@uncounted
def mark_listed(S2, n, j, i1, mark, value):  # noqa: N803
    """Set ``mark`` of output ``j``'s selection ``i1`` and runners-up to ``value``."""
    mark[i1] = value
    for k in range(SECONDS):
        c = S2[n, j * SECONDS + k]
        if c >= 0:
            mark[c] = value


@nb.njit(cache=True, inline="always")
def resolve_worse(W, Hin, st, n, j, listed, margin, maximize, work, top_g, top_i, keys, mark):  # noqa: N803
    """Output ``j`` of sample ``n``: its selected candidate got worse (already in
    ``H``) and ``listed`` is :func:`best_listed`'s answer for it. ``top_g``, ``top_i``,
    ``keys`` (length ``n_in``) and ``mark`` (all ``False``, length ``n_in``) are
    scratch."""
    H, S, S2 = st[0], st[1], st[2]  # noqa: N806
    R3, T3, Dr = st[3], st[5], st[7]  # noqa: N806
    s = S[n, j]
    g_best, i_best, k_best = listed
    if g_best > R3[n, j] + Dr[n]:  # nothing else can be as good
        if k_best >= 0:
            select(st, n, j, i_best)
            S2[n, j * SECONDS + k_best], H[n, j] = s, W[j, i_best] + Hin[n, i_best]
            lost_output(W, st, n, j, s, g_best, margin, maximize)
            work[n, SWAPS] += 1
        return
    best, i1, g_rest = rescan_row(W, Hin, n, j, maximize, S2, top_g, top_i, keys)
    select(st, n, j, i1)
    H[n, j] = best
    R3[n, j] = g_rest + margin - Dr[n]
    mark_listed(S2, n, j, i1, mark, True)
    for i in range(W.shape[1]):  # the new bound constrains every other input's T3
        v = R3[n, j] - good(W[j, i], maximize) - margin
        T3[n, i] = v if (not mark[i] and v < T3[n, i]) else T3[n, i]
    mark_listed(S2, n, j, i1, mark, False)
    if i1 != s:
        lost_output(W, st, n, j, s, good(best, maximize), margin, maximize)
    work[n, RESCANS] += 1


@nb.njit(cache=True, inline="always")
def take_over(W, Hin, st, n, j, i, cand, margin, maximize):  # noqa: N803
    """Input ``i`` with candidate value ``cand`` takes output ``j`` over; the old
    selection becomes a runner-up, in ``i``'s place if ``i`` was one, else in a free
    place, else in place of the worst runner-up, which joins the rest under ``R3``."""
    H, S, S2 = st[0], st[1], st[2]  # noqa: N806
    s = S[n, j]
    place, free = -1, -1
    for k in range(SECONDS):
        c = S2[n, j * SECONDS + k]
        place = k if c == i else place
        free = k if c < 0 else free
    if place < 0:
        place = free
    if place < 0:  # full: the worst runner-up drops under R3
        k_worst, g_worst = -1, np.inf
        for k in range(SECONDS):
            c = S2[n, j * SECONDS + k]
            g = good(W[j, c] + Hin[n, c], maximize)
            if k_worst < 0 or beats(g_worst, S2[n, j * SECONDS + k_worst], g, c):
                k_worst, g_worst = k, g
        place = k_worst
        under_bound(W, st, n, j, S2[n, j * SECONDS + k_worst], g_worst, margin, maximize)
    lost_output(W, st, n, j, s, good(cand, maximize), margin, maximize)
    select(st, n, j, i)
    S2[n, j * SECONDS + place] = s
    H[n, j] = cand


@nb.njit(cache=True, inline="always")
def certified(Hin, st, n, i, maximize):  # noqa: N803
    """Input ``i`` can neither take over an output nor exceed a runner bound."""
    g = good(Hin[n, i], maximize)
    return g < st[4][n, i] - st[6][n] and g < st[5][n, i]


@nb.njit(cache=True, inline="always")
def prefetch_sample(Hin, st, batch, b, ci_count, ci_idx, w_rows, w_cols, first_moved):  # noqa: N803
    """Prefetch what the repair of sample ``n = batch[b]`` reads: the places of its
    changed inputs ``ci_idx[b, :ci_count[b]]`` and of the weights
    ``(w_rows[e], w_cols[e])``, ``e ≥ first_moved``, moved since its synchronisation.
    With no input changed and at most :data:`ENTRIES_PREFETCHED` weights moved, only
    those entries' places; otherwise the output rows whole, and ``T``/``T3`` at the
    moved inputs or whole, whichever is fewer cache lines."""
    H, S, S2 = st[0], st[1], st[2]  # noqa: N806
    R3, T, T3 = st[3], st[4], st[5]  # noqa: N806
    head, nxt, prv = st[8], st[9], st[10]
    n = batch[b]
    n_inputs = ci_count[b]
    for t in range(n_inputs):
        i = ci_idx[b, t]
        prefetch(Hin, n, i)
        prefetch(T, n, i)
        prefetch(T3, n, i)
        prefetch(head, n, i)
    n_moved = w_rows.shape[0]
    entries_only = n_inputs == 0 and n_moved - first_moved <= ENTRIES_PREFETCHED
    by_row = not entries_only and n_moved - first_moved > T.shape[1] * T.itemsize // 64
    for e in range(first_moved, first_moved if by_row else n_moved):
        j, i = w_rows[e], w_cols[e]
        prefetch(T3, n, i)
        if entries_only:
            prefetch(Hin, n, i)
            prefetch(H, n, j)
            prefetch(S, n, j)
            prefetch(S2, n, j * SECONDS)
            prefetch(R3, n, j)
        else:
            prefetch(T, n, i)
    if by_row:
        prefetch_row(T, n)
        prefetch_row(T3, n)
    if not entries_only:
        prefetch_row(H, n)
        prefetch_row(S, n)
        prefetch_row(S2, n)
        prefetch_row(R3, n)
        prefetch_row(nxt, n)
        prefetch_row(prv, n)


# fmt: off
@nb.njit(parallel=True, cache=True)
def repair_layer(Hin, W, WT, st, maximize,  # noqa: N803
                 batch, ci_count, ci_idx, ci_old, w_rows, w_cols, w_since, first, gain_sums,
                 layer, margin, co_count, co_idx, co_old, work, threads):
    """Repair one tropical layer (state tuple ``st``) for the samples ``batch``.

    ``Hin`` holds the new inputs; the ``b``-th sample of the batch changed
    ``ci_count[b]`` of them, ``ci_idx[b, :count]``, whose previous values are
    ``ci_old[b, :count]`` (only inputs whose value differs are listed: every producer,
    the linear catch-up and refresh and each layer's changed outputs, filters so).
    The sample was last synchronised after the logged step ``first[b]``: the weights
    ``(w_rows[e], w_cols[e])`` with ``w_since[e] ≥ first[b]`` (``w_since`` ascending)
    may have changed since (``W``, ``WT`` hold the new values; listing one that did
    not, or twice, is harmless), and ``gain_sums[-1, layer] − gain_sums[first[b],
    layer]`` (sums of the logged steps' largest weight moves, per layer) bounds how
    far any weight's goodness moved since, up or down. Writes the changed outputs
    into ``co_count[b]``,
    ``co_idx[b]`` with their previous values in ``co_old[b]``, and counts the work
    per sample in ``work[n]``. ``threads``: numba's thread count (one set of scratch
    arrays each: ``prange`` gives each thread an equal share of the batch).
    """
    H, S, S2 = st[0], st[1], st[2]  # noqa: N806
    R3, T3 = st[3], st[5]  # noqa: N806
    Dt, Dr = st[6], st[7]  # noqa: N806
    head, nxt = st[8], st[9]
    B = batch.shape[0]  # noqa: N806
    n_out, n_in = W.shape
    n_chunks = min(threads, B)
    n_moved = w_rows.shape[0]
    for c in nb.prange(n_chunks):
        old = np.empty(n_out, dtype=H.dtype)
        touched = np.zeros(n_out, dtype=np.bool_)
        touched_list = np.empty(n_out, dtype=np.int64)
        worse = np.zeros(n_out, dtype=np.bool_)
        worse_list = np.empty(n_out, dtype=np.int64)
        take = np.zeros(n_out, dtype=np.bool_)
        passed = np.empty(n_in, dtype=np.int64)
        pending = np.zeros(n_in, dtype=np.bool_)
        mark = np.zeros(n_in, dtype=np.bool_)
        top_g = np.empty(SECONDS + 1, dtype=np.float64)
        top_i = np.empty(SECONDS + 1, dtype=np.int64)
        keys = np.empty(n_in, dtype=np.int64)
        counts = np.zeros(2, dtype=np.int64)
        lo, last = c * B // n_chunks, (c + 1) * B // n_chunks
        w_start = np.searchsorted(w_since, first[lo:last])  # each sample's first moved weight
        for b in range(lo, last):
            n = batch[b]
            if b + PREFETCH_DISTANCE < last:  # the state of a sample a few steps ahead
                ba = b + PREFETCH_DISTANCE
                prefetch_sample(Hin, st, batch, ba, ci_count, ci_idx, w_rows, w_cols,
                                w_start[ba - lo])
            count = ci_count[b]
            w_first = w_start[b - lo]
            if count == 0 and w_first == n_moved:
                co_count[b] = 0
                continue
            counts[0] = 0
            counts[1] = 0
            # how far outputs may have worsened (a selected input and its weight both
            # moving, the threshold's own weight moving too) and weights improved
            down = 0.0
            for t in range(count):
                i = ci_idx[b, t]
                if head[n, i] >= 0:  # an input no output selects worsens no output
                    down = max(down, good(ci_old[b, t], maximize) - good(Hin[n, i], maximize))
            w_gain = gain_sums[-1, layer] - gain_sums[first[b], layer]
            Dt[n] += down + 2.0 * w_gain + margin
            Dr[n] += margin
            # outputs whose selected input changed follow it
            followed = 0
            for t in range(count):
                i = ci_idx[b, t]
                hi = Hin[n, i]
                j = head[n, i]
                while j >= 0:
                    touch(H, n, j, old, touched, touched_list, counts)
                    follow(H, n, j, W[j, i] + hi, maximize, worse, worse_list, counts)
                    followed += 1
                    j = nxt[n, j]
            # changed weights, one candidate at a time (the thresholds of their inputs
            # already allow for weight moves through Dt and Dr)
            for e in range(w_first, n_moved):
                j = w_rows[e]
                i = w_cols[e]
                cand = W[j, i] + Hin[n, i]
                if S[n, j] == i:
                    touch(H, n, j, old, touched, touched_list, counts)
                    follow(H, n, j, cand, maximize, worse, worse_list, counts)
                    continue
                g = good(cand, maximize)
                if beats(g, i, good(H[n, j], maximize), S[n, j]):
                    touch(H, n, j, old, touched, touched_list, counts)
                    take_over(W, Hin, st, n, j, i, cand, margin, maximize)
                elif unlisted(S2, n, j, i):  # R3 covers it, T3 with its new weight
                    under_bound(W, st, n, j, i, g, margin, maximize)
            n_passed = 0
            # improved inputs past a threshold, too
            for t in range(count):
                i = ci_idx[b, t]
                g_move = good(Hin[n, i], maximize) - good(ci_old[b, t], maximize)
                if not g_move > 0.0:
                    continue
                if certified(Hin, st, n, i, maximize):
                    work[n, CERTIFIED] += 1
                elif not pending[i]:
                    pending[i] = True
                    passed[n_passed] = i
                    n_passed += 1
            # takeover passes: each such input against every output; the same loop
            # sets its thresholds (outputs taken over later only improve, which
            # keeps them valid; what else changes them updates them itself)
            for p in range(n_passed):
                i = passed[p]
                pending[i] = False
                hi = Hin[n, i]
                if good(hi, maximize) < T3[n, i]:  # only T is stale: no R3 is raised
                    any_take, t = takeover_check(WT, H, S, n, i, hi, maximize, take)
                    store_takeover_threshold(st, n, i, t, margin)
                else:
                    lift = margin - Dr[n]  # R3 raised just past the candidate
                    any_take, t, t3 = takeover_pass(WT, H, S, S2, R3, n, i, hi, lift,
                                                    maximize, take)
                    store_thresholds(st, n, i, t, t3, margin)
                if any_take:
                    for j in range(n_out):
                        if take[j]:
                            touch(H, n, j, old, touched, touched_list, counts)
                            take_over(W, Hin, st, n, j, i, WT[i, j] + hi, margin, maximize)
                work[n, TAKEOVER_PASSES] += 1
            for k in range(counts[1]):
                j = worse_list[k]
                worse[j] = False
                listed = best_listed(W, Hin, H, S, S2, n, j, maximize)
                if listed[1] != S[n, j] or not listed[0] > R3[n, j] + Dr[n]:  # not simply kept
                    resolve_worse(W, Hin, st, n, j, listed, margin, maximize, work,
                                  top_g, top_i, keys, mark)
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
# fmt: on


@nb.njit(cache=True)
def take_work(work, batch, out):
    """``out[l]`` = the work counted in the rows ``batch`` of each layer's ``work[l]``,
    which are zeroed (every row is zero between repairs)."""
    out[:] = 0
    for layer in range(work.shape[0]):
        for b in range(batch.shape[0]):
            n = batch[b]
            for c in range(work.shape[2]):
                out[layer, c] += work[layer, n, c]
                work[layer, n, c] = 0


@nb.njit(parallel=True, cache=True)
def initial_state(Hin, W, WT, st, maximize, margin):  # noqa: N803
    """Exact state of one layer from its inputs: selections, runners-up, bounds,
    groups, and every input's thresholds (:func:`thresholds`)."""
    H, S, S2 = st[0], st[1], st[2]  # noqa: N806
    R3, Dt, Dr = st[3], st[6], st[7]  # noqa: N806
    head, nxt, prv = st[8], st[9], st[10]
    N = Hin.shape[0]  # noqa: N806
    n_out, n_in = W.shape
    for n in nb.prange(N):
        top_g = np.empty(SECONDS + 1, dtype=np.float64)
        top_i = np.empty(SECONDS + 1, dtype=np.int64)
        keys = np.empty(n_in, dtype=np.int64)
        take = np.empty(n_out, dtype=np.bool_)
        Dt[n] = 0.0
        Dr[n] = 0.0
        for i in range(n_in):
            head[n, i] = -1
        for j in range(n_out):
            best, i1, g_rest = rescan_row(W, Hin, n, j, maximize, S2, top_g, top_i, keys)
            H[n, j], S[n, j] = best, i1
            R3[n, j] = g_rest + margin
            first = head[n, i1]
            if first >= 0:
                prv[n, first] = j
            nxt[n, j], prv[n, j] = first, -1
            head[n, i1] = j
        for i in range(n_in):
            thresholds(WT, st, n, i, margin, maximize, take)
