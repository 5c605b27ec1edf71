"""numba kernels for the sparse trainer's log of moved keys (:class:`maxplus.step_log.LastMoves`).

Every move of a key (a linear unit, or a tropical weight ``row · width + col``) is
appended as a row ``(key, step, live)`` of a table; ``place[key]`` is the row of the
key's last move, and the earlier row is marked dead (``live`` 0), so that the live
rows list each key once, in the order of the step after which it last moved.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def add_moves(table, place, start, keys, t):  # noqa: N803
    """Write the ``keys`` moved in step ``t`` to the rows ``start…`` of ``table`` (they
    exist), a key's earlier row marked dead (a key listed twice takes its later
    row). Returns False, changing nothing, when a key is past ``place``'s end."""
    for o in range(keys.shape[0]):
        if keys[o] >= place.shape[0]:
            return False
    for o in range(keys.shape[0]):
        key = keys[o]
        before = place[key]
        if before >= 0:
            table[before, 2] = 0
        place[key] = start + o
        table[start + o, 0] = key
        table[start + o, 1] = t
        table[start + o, 2] = 1
    return True


@nb.njit(cache=True)
def live_moves(table, width):  # noqa: N803
    """The live rows of ``table``: ``(rows, cols, since)`` of the keys
    ``row · width + col`` (``rows`` the keys themselves and ``cols`` empty when
    ``width`` is 0)."""
    count = 0
    for e in range(table.shape[0]):
        count += table[e, 2]
    rows = np.empty(count, dtype=np.int64)
    cols = np.empty(count if width > 0 else 0, dtype=np.int64)
    since = np.empty(count, dtype=np.int64)
    k = 0
    for e in range(table.shape[0]):
        if table[e, 2]:
            key = table[e, 0]
            if width > 0:
                rows[k], cols[k] = key // width, key % width
            else:
                rows[k] = key
            since[k] = table[e, 1]
            k += 1
    return rows, cols, since
