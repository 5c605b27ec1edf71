"""numba kernels that recompute a small tropical layer whole for each sample.

The repair of :mod:`.cpu_repair` keeps bounds that let it skip the candidates that
cannot matter, but it pays for them a few thousand cycles a sample however little
changed. In a layer of few candidates (inputs × outputs; the ten scores of an LMM
read 128 inputs each) recomputing every output of a sample brought up to date is
cheaper: output ``j`` is the best of its candidates ``W[j, i] + h_i`` (the largest
goodness, the lowest input on ties), the same value and selection a fresh forward
pass computes, so the state stays exact. Such a layer keeps only its outputs ``H``
and selections ``S``.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from .cpu_repair import RECOMPUTED, beats
from .ordered_keys import (
    INF_KEY,
    NO_CANDIDATE,
    candidate_key,
    key_goodness,
    key_input,
    lesser_key,
    order_key,
    own_key_value,
)

#: Checking a changed input's candidates costs about as much as this many candidates
#: of a recompute, which vectorises: a sample with more than ``n_in / CHECK_COST``
#: changed inputs is recomputed whole.
CHECK_COST = 16


def best_input(W, Hin, n, j, sign):  # noqa: N803
    """The input output ``j`` of sample ``n`` selects: the largest goodness
    ``sign · (W[j, i] + Hin[n, i])``, the lowest ``i`` on ties (compiled only)."""
    raise NotImplementedError("compiled only")


@overload(best_input, jit_options={"_nrt": False})
def _best_input(W, Hin, n, j, sign):  # noqa: N803
    if Hin.dtype == types.float32:

        def one_pass(W, Hin, n, j, sign):  # noqa: N803
            # candidates ordered by one int64 key each: a vectorised running maximum
            best = np.int64(-(2**63))
            for i in range(W.shape[1]):
                key = candidate_key((W[j, i] + Hin[n, i]) * sign, i)
                best = key if key > best else best
            return key_input(best)

        return one_pass

    def two_passes(W, Hin, n, j, sign):  # noqa: N803
        # the least key of the negated goodness, then the first input that has it
        n_in = W.shape[1]
        least = INF_KEY
        for i in range(n_in):
            least = lesser_key(least, order_key(-((W[j, i] + Hin[n, i]) * sign) + 0.0))
        first = n_in
        for i in range(n_in):
            at = i if order_key(-((W[j, i] + Hin[n, i]) * sign) + 0.0) == least else n_in
            first = at if at < first else first
        return first

    return two_passes


def best_two(W, Hin, n, j, sign):  # noqa: N803
    """The input output ``j`` of sample ``n`` selects (as :func:`best_input`) and the
    largest goodness of the other inputs' candidates (``-inf`` if there are none)
    (compiled only)."""
    raise NotImplementedError("compiled only")


@overload(best_two, jit_options={"_nrt": False})
def _best_two(W, Hin, n, j, sign):  # noqa: N803
    if Hin.dtype == types.float32:

        def by_keys(W, Hin, n, j, sign):  # noqa: N803
            # keys are distinct (each holds its input): the runner-up's is the
            # largest of the others, the best's own masked to NO_CANDIDATE by bit
            # operations (a conditional there would stop the loop vectorising)
            best = np.int64(NO_CANDIDATE)
            for i in range(W.shape[1]):
                key = candidate_key((W[j, i] + Hin[n, i]) * sign, i)
                best = key if key > best else best
            second = np.int64(NO_CANDIDATE)
            for i in range(W.shape[1]):
                key = candidate_key((W[j, i] + Hin[n, i]) * sign, i)
                key ^= -np.int64(key == best) & (key ^ np.int64(NO_CANDIDATE))
                second = key if key > second else second
            return key_input(best), key_goodness(second)

        return by_keys

    def by_values(W, Hin, n, j, sign):  # noqa: N803
        # the largest order key of the others' goodness, the selected one's masked
        selected = best_input(W, Hin, n, j, sign)
        most = order_key(-np.inf)
        for i in range(W.shape[1]):
            key = order_key(np.float64((W[j, i] + Hin[n, i]) * sign))
            key ^= -np.int64(i == selected) & (key ^ order_key(-np.inf))
            most = key if key > most else most
        return selected, own_key_value(most)

    return by_values


@nb.njit(cache=True, inline="always")
def recompute_output(W, Hin, H, S, n, j, sign):  # noqa: N803
    """Recompute output ``H[n, j]`` and its selection ``S[n, j]`` by one pass; returns
    the candidates computed."""
    i = best_input(W, Hin, n, j, sign)
    H[n, j] = W[j, i] + Hin[n, i]
    S[n, j] = i
    return W.shape[1]


@nb.njit(cache=True, inline="always")
def rescan_output(W, Hin, H, S, R2, V, n, j, sign, margin):  # noqa: N803
    """Recompute output ``H[n, j]``, its selection ``S[n, j]`` and its runner bound
    ``R2[n, j]``: the runner-up's goodness plus ``margin``, less ``V[n, j]``."""
    i, runner = best_two(W, Hin, n, j, sign)
    H[n, j] = W[j, i] + Hin[n, i]
    S[n, j] = i
    R2[n, j] = runner + margin - V[n, j]


@nb.njit(cache=True, inline="always")
def risen_inputs(Hin, n, count, idx, old, sign, risen):  # noqa: N803
    """Of the ``count`` changed inputs ``idx`` of sample ``n`` (previous values
    ``old``), those whose goodness rose, into ``risen``; returns how many."""
    k = 0
    for t in range(count):
        i = idx[t]
        risen[k] = i
        k += np.float64(Hin[n, i] * sign) > np.float64(old[t] * sign)
    return k


@nb.njit(cache=True, inline="always")
def best_risen(W, Hin, n, j, sign, risen, n_risen, skip):  # noqa: N803
    """Among the candidates of output ``j`` from the inputs ``risen[:n_risen]`` other
    than ``skip``: the best's goodness and input (lowest on ties; ``(-inf, -1)`` if
    none) and the largest goodness of the rest."""
    g_best, i_best, g_rest = -np.inf, -1, -np.inf
    for t in range(n_risen):
        i = risen[t]
        if i == skip:
            continue
        g = np.float64((W[j, i] + Hin[n, i]) * sign)
        if i_best < 0 or beats(g, i, g_best, i_best):
            g_rest = max(g_rest, g_best)
            g_best, i_best = g, i
        else:
            g_rest = max(g_rest, g)
    return g_best, i_best, g_rest


@nb.njit(cache=True, inline="always")
def recompute_whole(W, Hin, H, S, R2, n, sign):  # noqa: N803
    """Recompute every output of sample ``n`` by one pass each, leaving its runner
    bounds unknown (``+inf``); returns the candidates computed."""
    computed = 0
    for j in range(W.shape[0]):
        computed += recompute_output(W, Hin, H, S, n, j, sign)
        R2[n, j] = np.inf
    return computed


@nb.njit(cache=True, inline="always")
def check_outputs(W, Hin, H, S, R2, V, n, sign, count, idx, old, margin, calm, risen):  # noqa: N803
    """Bring every output of sample ``n`` up to date from its runner bound and the
    ``count`` changed inputs ``idx`` (previous values ``old``; ``risen`` is scratch of
    their length, see :func:`rescan_layer`); returns the candidates computed. An
    output whose bound is unknown is recomputed by one pass, its bound left unknown,
    unless the sample was checked (``calm``) at its previous synchronisation too:
    then it is worth the runner-up's pass."""
    n_out, n_in = W.shape
    n_risen = risen_inputs(Hin, n, count, idx, old, sign, risen)
    computed = count
    for j in range(n_out):
        if R2[n, j] == np.inf and not calm:
            computed += recompute_output(W, Hin, H, S, n, j, sign)
            continue
        s = S[n, j]
        g = np.float64((W[j, s] + Hin[n, s]) * sign)
        bound = R2[n, j] + V[n, j]
        g_up, i_up, g_rest = best_risen(W, Hin, n, j, sign, risen, n_risen, s)
        computed += 1 + n_risen
        if i_up < 0 or beats(g, s, g_up, i_up):
            if g > bound:  # still selected
                H[n, j] = W[j, s] + Hin[n, s]
                R2[n, j] = max(R2[n, j], g_up + margin - V[n, j])
                continue
        elif g_up > bound:  # a risen input takes the output over
            H[n, j] = W[j, i_up] + Hin[n, i_up]
            S[n, j] = i_up
            R2[n, j] = max(R2[n, j], max(g, g_rest) + margin - V[n, j])
            continue
        rescan_output(W, Hin, H, S, R2, V, n, j, sign, margin)
        computed += 2 * n_in
    return computed


@nb.njit(parallel=True, cache=True)
def rescan_layer(Hin, W, H, S, R2, V, calm, maximize, batch, ci_count, ci_idx, ci_old,  # noqa: N803
                 w_since, first, rise_sums, margin, co_count, co_idx, co_old, work,
                 threads):  # fmt: skip
    """Bring the samples ``batch`` up to date: the ``b``-th changed the ``ci_count[b]``
    inputs ``ci_idx[b]`` (previous values ``ci_old[b]``), and the layer's weights moved
    at the logged steps ``w_since`` (ascending) since its step ``first[b]``, those of
    row ``j`` rising in goodness by at most ``rise_sums[-1, j] − rise_sums[first[b],
    j]`` in all; a sample with neither keeps its outputs.

    ``R2[n, j] + V[n, j]`` bounds the goodness of every candidate of output ``j`` but
    the selected one, as long as its input has not risen: ``V[n, j]`` accumulates
    the row's weight rises and ``margin`` per logged step for rounding. A sample
    with more than ``n_in / CHECK_COST`` changed inputs is recomputed whole
    (:func:`recompute_whole`); ``calm[n]`` records whether the sample was checked
    instead at its last synchronisation. For the others (:func:`check_outputs`) the
    candidates
    of inputs that rose are computed exactly; an output keeps its selection when the
    selected candidate beats them and the bound; one of them takes it over when it
    beats the selected candidate and the bound (the loser goes under the bound);
    otherwise the output is recomputed whole with :func:`rescan_output`.

    The candidates computed are counted in ``work[n]`` (as candidates recomputed);
    the changed outputs are listed in ``co_count[b]``, ``co_idx[b]`` with the
    previous values in ``co_old[b]``, as
    :func:`maxplus.kernels.cpu_repair.repair_layer` lists them. ``threads``: numba's
    thread count (one scratch array each)."""
    sign = Hin.dtype.type(1.0 if maximize else -1.0)
    n_out, n_in = W.shape
    last_move = w_since[-1] if w_since.shape[0] else -1
    last_step = rise_sums.shape[0] - 1
    B = batch.shape[0]  # noqa: N806
    n_chunks = min(threads, B)
    for c in nb.prange(n_chunks):
        risen = np.empty(ci_idx.shape[1], dtype=np.int64)
        for b in range(c * B // n_chunks, (c + 1) * B // n_chunks):
            n = batch[b]
            co_count[b] = 0
            count = ci_count[b]
            if count == 0 and last_move < first[b]:
                continue
            rounding = margin * max(1, last_step - first[b])
            for j in range(n_out):
                V[n, j] += rise_sums[last_step, j] - rise_sums[first[b], j] + rounding
                co_old[b, j] = H[n, j]
            if count * CHECK_COST > n_in:
                work[n, RECOMPUTED] += recompute_whole(W, Hin, H, S, R2, n, sign)
                calm[n] = False
            else:
                work[n, RECOMPUTED] += check_outputs(W, Hin, H, S, R2, V, n, sign, count,
                                                     ci_idx[b], ci_old[b], margin, calm[n],
                                                     risen)  # fmt: skip
                calm[n] = True
            changed = 0
            for j in range(n_out):
                if H[n, j] != co_old[b, j]:
                    co_idx[b, changed] = j
                    co_old[b, changed] = co_old[b, j]
                    changed += 1
            co_count[b] = changed
