"""numba kernels for the sparse trainer's loss bounds (lazy synchronisation).

A sample that waits keeps its loss as it was at its last synchronisation and a bound
on how far that loss can have risen since. A step moves the linear outputs ``z[n, m]``
of the moved units ``m`` by ``Δz_nm = −Σ_s c_sm (r_s[n] + 1)`` (``c`` the step's
coefficients ``ηζ``, ``r_s = X x_s``); the kernels keep, per waiting sample and moved
unit, the whole move ``D_nm`` since the sample's last synchronisation, so that moves
that go back and forth are not counted twice.

Write the moves in the first tropical layer's *goodness* (``+D`` for a max-plus
layer, ``−D`` for a min-plus one, as in :mod:`maxplus.kernels.cpu_repair`). An output
of that layer follows the input it selected, and otherwise changes only when another
input takes it over, which a better input does only past its takeover threshold
``T − Dt`` (the repair's own certificate). So, per sample,

* an output worsens at most by ``worse`` = the largest worsening of an input it
  selected (and the weight moves);
* it improves at most by ``better`` = the largest improvement of a selected input,
  or of an unselected one that can have passed its threshold: ``rival`` = the largest
  improvement of an unselected input, counted once ``room`` = the least distance left
  to a threshold (threshold − goodness at the last synchronisation − improvement) is
  no longer more than the outputs' worsening and the weight moves;

every later layer passes rises and falls on at most as far (a max or a min of sums),
and both losses rise at most by a score's rise plus the label score's fall
(``Δℓ ≤ max_k Δs_k − Δs_y``). The bound is

``bound = uniform + worse + max(better, rival if room ≤ worse + 2 uniform)``,

with ``uniform`` the logged weight moves of all tropical layers plus rounding.
Each accumulator only grows (``room`` only shrinks) between synchronisations, so it
covers every value a move took on the way.

Whether the layer selects a unit, and its room, are read from the sample's row of
the layer's state, a strided read per sample and unit; a step does not read them.
From its first move on, a unit is *unknown* and counts as selected in both
directions (in ``unknown_worse`` and ``unknown_better``) until the trainer *resolves*
the sample (:func:`resolve_bounds`), which it does only for the samples whose bound
may reach the objective's ``q``-th largest loss.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .prefetch import SAMPLES_AHEAD, prefetch

#: Rows of the per-sample accumulators ``acc`` (8 × N) the kernels take.
BOUND, UNIFORM, WORSE, BETTER, RIVAL, ROOM, UNKNOWN_WORSE, UNKNOWN_BETTER = range(8)
N_ACCUMULATORS = 8


@nb.njit(cache=True, inline="always")
def take_in(gain, at, w, b, r, left):
    """Fold one moved unit (goodness change ``gain``, takeover room ``at``, ``-inf``
    where selected; NaN, unknown, changes nothing) into ``(worse, better, rival,
    room)``. Written with selects and ``&`` rather than branches and ``and``, so that
    the loops calling it vectorise (the branches would be unpredictable)."""
    selected = at == -np.inf
    b = gain if (selected & (gain > b)) else b
    w = -gain if (selected & (-gain > w)) else w
    rival_now = (at > -np.inf) & (gain > 0.0)  # False for NaN
    r = gain if (rival_now & (gain > r)) else r
    v = at - gain
    left = v if (rival_now & (v < left)) else left
    return w, b, r, left


@nb.njit(cache=True, inline="always")
def store_bound(acc, n, w, b, r, left, wu, bu):
    """Store a sample's accumulators and its bound."""
    acc[WORSE, n], acc[BETTER, n], acc[RIVAL, n], acc[ROOM, n] = w, b, r, left
    acc[UNKNOWN_WORSE, n], acc[UNKNOWN_BETTER, n] = wu, bu
    u = acc[UNIFORM, n]
    w = wu if wu > w else w
    b = bu if bu > b else b
    counted = (left <= w + 2.0 * u) & (r > b)
    acc[BOUND, n] = u + w + (r if counted else b)


@nb.njit(cache=True, inline="always")
def move_unit(moved_m, room_m, n, gain, w, b, r, left, wu, bu):
    """Fold one step's move ``gain`` of a unit (``moved_m``, ``room_m``: its rows) into
    sample ``n``'s accumulators ``(worse, better, rival, room, unknown_worse,
    unknown_better)``; the unit is unknown from its first move since the sample's
    last synchronisation on."""
    d0, a0 = moved_m[n], room_m[n]
    at = np.nan if d0 == 0.0 else a0
    room_m[n] = at
    d = d0 + gain
    moved_m[n] = d
    unknown = at != at
    wu = -d if (unknown & (-d > wu)) else wu
    bu = d if (unknown & (d > bu)) else bu
    w, b, r, left = take_in(d, at, w, b, r, left)
    return w, b, r, left, wu, bu


@nb.njit(cache=True, inline="always")
def load_accumulators(acc, n):
    """Sample ``n``'s ``(worse, better, rival, room, unknown_worse, unknown_better)``."""
    return (acc[WORSE, n], acc[BETTER, n], acc[RIVAL, n], acc[ROOM, n],
            acc[UNKNOWN_WORSE, n], acc[UNKNOWN_BETTER, n])  # fmt: skip


@nb.njit(cache=True, inline="always")
def keep_accumulators(acc, n, w, b, r, left, wu, bu):
    """Write back what :func:`load_accumulators` read."""
    acc[WORSE, n], acc[BETTER, n], acc[RIVAL, n], acc[ROOM, n] = w, b, r, left
    acc[UNKNOWN_WORSE, n], acc[UNKNOWN_BETTER, n] = wu, bu


@nb.njit(cache=True, inline="always")
def fold_move(acc, moved_m, room_m, n, gain):
    """One unit's move ``gain`` into sample ``n``'s accumulators in ``acc``
    (:func:`move_unit` between :func:`load_accumulators` and :func:`keep_accumulators`)."""
    w, b, r, left, wu, bu = load_accumulators(acc, n)
    w, b, r, left, wu, bu = move_unit(moved_m, room_m, n, gain, w, b, r, left, wu, bu)
    keep_accumulators(acc, n, w, b, r, left, wu, bu)


@nb.njit(cache=True)
def move_units_along_one(acc, moved, room_at, sign, cols, coef, p):  # noqa: N803
    """:func:`raise_bounds`' moves for one selected sample (``p = X x_s``): units
    four at a time, so that the accumulators are read and written once per four
    units (the same operations in the same order as one at a time)."""
    n_cols = coef.shape[1]
    k = 0
    while k + 4 <= n_cols:
        c0, c1 = sign * np.float64(coef[0, k]), sign * np.float64(coef[0, k + 1])
        c2, c3 = sign * np.float64(coef[0, k + 2]), sign * np.float64(coef[0, k + 3])
        m0, r0 = moved[cols[k]], room_at[cols[k]]
        m1, r1 = moved[cols[k + 1]], room_at[cols[k + 1]]
        m2, r2 = moved[cols[k + 2]], room_at[cols[k + 2]]
        m3, r3 = moved[cols[k + 3]], room_at[cols[k + 3]]
        for n in range(acc.shape[1]):
            w, b, r, left, wu, bu = load_accumulators(acc, n)
            x = p[n] + 1.0
            w, b, r, left, wu, bu = move_unit(m0, r0, n, 0.0 - c0 * x, w, b, r, left, wu, bu)
            w, b, r, left, wu, bu = move_unit(m1, r1, n, 0.0 - c1 * x, w, b, r, left, wu, bu)
            w, b, r, left, wu, bu = move_unit(m2, r2, n, 0.0 - c2 * x, w, b, r, left, wu, bu)
            w, b, r, left, wu, bu = move_unit(m3, r3, n, 0.0 - c3 * x, w, b, r, left, wu, bu)
            keep_accumulators(acc, n, w, b, r, left, wu, bu)
        k += 4
    for rest in range(k, n_cols):
        c0 = sign * np.float64(coef[0, rest])
        m0, r0 = moved[cols[rest]], room_at[cols[rest]]
        for n in range(acc.shape[1]):
            fold_move(acc, m0, r0, n, 0.0 - c0 * (p[n] + 1.0))


@nb.njit(cache=True)
def raise_bounds(acc, moved, room_at, sign, cols, coef, products, extra):  # noqa: N803
    """Add one step to the bounds ``acc`` (rows :data:`BOUND` ... :data:`UNKNOWN_BETTER`).

    ``moved[m, n]`` is ``sign · D_nm``, the move in goodness (``sign`` = 1 for a
    max-plus first tropical layer, −1 for a min-plus one; 0 for a unit that has not
    moved since the sample's last synchronisation), and ``room_at[m, n]`` the unit's
    room to a takeover as :func:`resolve_bounds` reads it (``-inf`` where the first
    tropical layer selects ``m``), NaN from the unit's first move since that
    synchronisation until then: an unknown unit counts as selected, in both
    directions, in its own accumulators. The step moved units ``cols[k]`` by
    coefficients ``coef[s, k]`` along ``products[s]``; ``extra`` (the step's weight
    moves and rounding) goes to every sample. Returns ``Σ_s max_k |coef[s, k]|
    max_n |products[s, n] + 1|``, a bound on every ``|Δz_nm|`` (equal to the largest
    for one selected sample). Each loop over the samples vectorises."""
    q, n_cols = coef.shape
    N = acc.shape[1]  # noqa: N806
    if q == 1:
        move_units_along_one(acc, moved, room_at, sign, cols, coef, products[0])
    else:
        gain = np.empty(N)
        for k in range(n_cols):
            moved_m, room_m = moved[cols[k]], room_at[cols[k]]
            for n in range(N):
                gain[n] = 0.0
            for s in range(q):
                c = sign * np.float64(coef[s, k])
                for n in range(N):
                    gain[n] -= c * (products[s, n] + 1.0)
            for n in range(N):
                fold_move(acc, moved_m, room_m, n, gain[n])
    for n in range(N):
        acc[UNIFORM, n] += extra
        w, b, r, left, wu, bu = load_accumulators(acc, n)
        store_bound(acc, n, w, b, r, left, wu, bu)
    largest = 0.0
    for s in range(q):
        c_max, a_max = 0.0, 0.0
        for k in range(n_cols):
            c_max = max(c_max, abs(np.float64(coef[s, k])))
        for n in range(N):
            a = abs(products[s, n] + 1.0)
            a_max = a if a > a_max else a_max
        largest += c_max * a_max
    return largest


@nb.njit(cache=True, inline="always")
def prefetch_units(a, units, since, step, n):
    """Prefetch sample ``n``'s entries ``a[m, n]`` (unit-major) of the units ``m``
    moved since its step ``step`` (``units`` ordered by ``since``)."""
    for e in range(np.searchsorted(since, step), units.shape[0]):
        prefetch(a, units[e], n)


@nb.njit(parallel=True, cache=True)
def resolve_bounds(acc, checked, moved, room_at, sign, head, T, Dt, Z, margin, batch, units, since):  # noqa: N803
    """Tighten the bounds of the samples ``batch``: for the units moved since their
    last resolution (the log's step ``checked[n]``; ``units`` ordered by the step
    ``since`` after which they last moved) whose room is unknown, read whether the
    first tropical layer selects them (``head``) and else their room
    ``T − Dt − sign·z − margin`` to a takeover (``head``, ``T``, ``Dt``, ``Z`` as at
    the sample's last synchronisation), and fold their moves as they are now in with
    the known ones (the loss depends only on the current parameters): no unit is
    unknown afterwards."""
    n_steps = since[-1] + 1 if since.shape[0] else 0
    for j in nb.prange(batch.shape[0]):
        n = batch[j]
        if j + SAMPLES_AHEAD < batch.shape[0]:  # a later sample's entries; one the other
            # thread has resolved already reads as up to date: nothing is prefetched
            ahead = batch[j + SAMPLES_AHEAD]
            prefetch_units(moved, units, since, checked[ahead], ahead)
            prefetch_units(room_at, units, since, checked[ahead], ahead)
        w, b = acc[WORSE, n], acc[BETTER, n]
        r, left = acc[RIVAL, n], acc[ROOM, n]
        for e in range(np.searchsorted(since, checked[n]), units.shape[0]):
            m = units[e]
            at = room_at[m, n]
            if at != at:
                at = -np.inf if head[n, m] >= 0 else T[n, m] - Dt[n] - sign * Z[n, m] - margin
                room_at[m, n] = at
            w, b, r, left = take_in(moved[m, n], at, w, b, r, left)
        checked[n] = max(checked[n], n_steps)
        store_bound(acc, n, w, b, r, left, 0.0, 0.0)


@nb.njit(cache=True)
def reset_bounds(acc, checked, batch, steps):
    """The samples ``batch`` are synchronised with the first ``steps`` logged steps:
    their accumulators start afresh."""
    for j in range(batch.shape[0]):
        n = batch[j]
        for row in range(acc.shape[0]):
            acc[row, n] = np.inf if row == ROOM else 0.0
        checked[n] = steps


@nb.njit(cache=True)
def forget_moves(moved, batch, first, units, since):  # noqa: N803
    """``moved[m, n] = 0`` for the samples ``n = batch[j]`` and the units moved since
    their steps ``first[j]``: they are synchronised (too little work to split)."""
    for j in range(batch.shape[0]):
        n = batch[j]
        if j + SAMPLES_AHEAD < batch.shape[0]:  # a later sample's entries
            ahead = batch[j + SAMPLES_AHEAD]
            prefetch_units(moved, units, since, first[j + SAMPLES_AHEAD], ahead)
        for e in range(np.searchsorted(since, first[j]), units.shape[0]):
            moved[units[e], n] = 0.0


def kth_largest(values, q: int) -> float:
    """The ``q``-th largest of ``values`` (their maximum for ``q = 1``: NumPy's
    vectorised maximum, 2–3× faster than numba's)."""
    if q == 1:
        return float(values.max())
    return float(np.partition(values, values.shape[0] - q)[values.shape[0] - q])


@nb.njit(cache=True)
def lower_bounds(L, bound, once, lower, samples):  # noqa: N803
    """``lower[n]``, the least each loss can be now, for the samples listed:
    ``L − bound − once`` for a sample that waits (``bound > 0``), else ``L``."""
    for j in range(samples.shape[0]):
        n = samples[j]
        lower[n] = L[n] - bound[n] - once if bound[n] > 0.0 else L[n]


@nb.njit(cache=True)
def reaching(L, bound, once, kth, samples):  # noqa: N803
    """The samples listed that wait and whose loss may reach ``kth``
    (``L + bound + once ≥ kth``)."""
    out = np.empty(samples.shape[0], dtype=np.int64)
    count = 0
    for j in range(samples.shape[0]):
        n = samples[j]
        if bound[n] > 0.0 and L[n] + bound[n] + once >= kth:
            out[count] = n
            count += 1
    return out[:count]


@nb.njit(cache=True)
def split_reaching(L, bound, uniform, once, kth):  # noqa: N803
    """The samples that wait and may reach ``kth``, split into those whose weight
    moves and rounding alone (``uniform``) may, and the others."""
    reach = reaching(L, bound, once, kth, np.arange(L.shape[0]))
    alone = np.empty(reach.shape[0], dtype=np.bool_)
    for j in range(reach.shape[0]):
        n = reach[j]
        alone[j] = L[n] + uniform[n] + once >= kth
    return reach[alone], reach[~alone]
