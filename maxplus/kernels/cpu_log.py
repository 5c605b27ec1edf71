"""numba kernels for the sparse trainer's log of moved keys (:class:`maxplus.step_log.LastMoves`).

Every move of a key (a linear unit, or a tropical weight ``row · width + col``) is
appended with its step; ``place[key]`` is the place of the key's last move, and the
earlier place is marked dead, so that the live places list each key once, in the
order of the step after which it last moved.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def add_moves(moves, steps, live, place, start, keys, t):  # noqa: N803
    """Append the ``keys`` moved in step ``t`` at ``start`` (the arrays have room), a
    key's earlier place marked dead (a key listed twice takes its later place).
    Returns False, changing nothing, when a key is past ``place``'s end."""
    for o in range(keys.shape[0]):
        if keys[o] >= place.shape[0]:
            return False
    for o in range(keys.shape[0]):
        key = keys[o]
        before = place[key]
        if before >= 0:
            live[before] = False
        place[key] = start + o
        moves[start + o] = key
        steps[start + o] = t
        live[start + o] = True
    return True


@nb.njit(cache=True)
def live_moves(moves, steps, live, size, width):  # noqa: N803
    """The live places among the first ``size``: ``(rows, cols, since)`` of the keys
    ``row · width + col`` (``rows`` the keys themselves and ``cols`` empty when
    ``width`` is 0)."""
    count = 0
    for e in range(size):
        count += live[e]
    rows = np.empty(count, dtype=np.int64)
    cols = np.empty(count if width > 0 else 0, dtype=np.int64)
    since = np.empty(count, dtype=np.int64)
    k = 0
    for e in range(size):
        if live[e]:
            key = moves[e]
            if width > 0:
                rows[k], cols[k] = key // width, key % width
            else:
                rows[k] = key
            since[k] = steps[e]
            k += 1
    return rows, cols, since
