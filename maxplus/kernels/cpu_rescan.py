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

from .cpu_repair import RECOMPUTED
from .ordered_keys import INF_KEY, candidate_key, key_input, lesser_key, order_key


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


@nb.njit(cache=True, inline="always")
def rescan_outputs(W, Hin, H, S, n, sign):  # noqa: N803
    """Recompute every output ``H[n, j]`` and selection ``S[n, j]`` of sample ``n``."""
    for j in range(W.shape[0]):
        i = best_input(W, Hin, n, j, sign)
        H[n, j] = W[j, i] + Hin[n, i]
        S[n, j] = i


@nb.njit(parallel=True, cache=True)
def rescan_layer(Hin, W, H, S, maximize, batch, ci_count, w_since, first,  # noqa: N803
                 co_count, co_idx, co_old, work):  # fmt: skip
    """Bring the samples ``batch`` up to date: the ``b``-th changed ``ci_count[b]``
    inputs, and the layer's weights moved at the logged steps ``w_since`` (ascending)
    since its step ``first[b]``; a sample with neither keeps its outputs. The others
    are recomputed whole (counted in ``work[n]`` as candidates recomputed), and their
    changed outputs listed in ``co_count[b]``, ``co_idx[b]`` with the previous values
    in ``co_old[b]``, as :func:`maxplus.kernels.cpu_repair.repair_layer` lists them."""
    sign = Hin.dtype.type(1.0 if maximize else -1.0)
    n_out = W.shape[0]
    last_move = w_since[-1] if w_since.shape[0] else -1
    for b in nb.prange(batch.shape[0]):
        n = batch[b]
        co_count[b] = 0
        if ci_count[b] == 0 and last_move < first[b]:
            continue
        for j in range(n_out):
            co_old[b, j] = H[n, j]
        rescan_outputs(W, Hin, H, S, n, sign)
        changed = 0
        for j in range(n_out):
            if H[n, j] != co_old[b, j]:
                co_idx[b, changed] = j
                co_old[b, changed] = co_old[b, j]
                changed += 1
        co_count[b] = changed
        work[n, RECOMPUTED] += n_out * W.shape[1]
