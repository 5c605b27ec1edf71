"""The sparse trainer's log: the steps a lazily synchronised sample still replays.

Each step moves a few linear rows ``M`` along the selected samples' inputs
(``z[:, m] −= Σ_s coef[s, m] (X x_s + 1)``) and a few entries of each tropical
layer. The log keeps them packed as they arrive, so that bringing samples up to
date costs work in the new entries only, not Python work over the whole log:

* ``columns``/``step_ptr``/``coefs``: step ``t`` moved rows
  ``columns[step_ptr[t]:step_ptr[t + 1]]`` with coefficients ``coefs[...]`` (one
  column per selected sample);
* ``products``/``step_rows``: the cached products ``X x_s``, one row per distinct
  sample, and the rows step ``t`` used;
* ``gain_sums[t]``: per tropical layer, the sum of the largest weight moves of the
  first ``t`` steps; ``rise_sums[l][t]``: per output ``j`` of tropical layer ``l``,
  the sum of the largest rises in goodness of a weight of row ``j``;
  ``coef_max_sum``: the sum over the steps of ``max |coef|``;
* per tropical layer, every moved entry once, in the order of the step after which
  it last moved (:meth:`StepLog.moved_weights`).
"""

from __future__ import annotations

import numpy as np

from .kernels.cpu_log import add_moves, live_moves


def largest_magnitude(a) -> float:
    """``max |a|`` (0 for an empty array) without an ``|a|`` temporary."""
    return max(float(a.max(initial=0)), -float(a.min(initial=0)))


class Growing:
    """An array grown along its first axis (amortised O(1) per appended row)."""

    def __init__(self, row_shape: tuple, dtype):
        self.data = np.empty((8, *row_shape), dtype=dtype)
        self.size = 0

    def clear(self) -> None:
        """No rows (the room is kept)."""
        self.size = 0

    def extend(self, n: int) -> np.ndarray:
        """Grow by ``n`` rows (doubling the room when it runs out) and return them to
        be written."""
        start, end = self.size, self.size + n
        if end > self.data.shape[0]:
            shape = (max(end, 2 * self.data.shape[0]), *self.data.shape[1:])
            grown = np.empty(shape, self.data.dtype)
            grown[:start] = self.data[:start]
            self.data = grown
        self.size = end
        return self.data[start:end]

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.size]


class LastMoves:
    """Keys (linear units, or weight entries ``row · width + col``) that moved, each
    once, in the order of the step after which they last moved: a sample
    synchronised at step ``k`` has yet to see the keys with ``since ≥ k``, a suffix.

    Every move is appended (a key again each time it moves) with its step, and the
    key's earlier row is marked dead (:mod:`maxplus.kernels.cpu_log`): the ordered
    keys are the live rows, in order, listed by one pass over the table when asked."""

    def __init__(self, width=None):
        self.width = width
        # per move, in order: the key, the step, whether it is the key's last move
        self.table = Growing((3,), np.int64)
        self.place = np.full(64, -1, dtype=np.int64)  # key -> the place of its last move
        self._arrays = None

    def clear(self) -> None:
        """Forget every move (keeping the room: keys keep their range)."""
        self.place[self.table.view[:, 0]] = -1
        self.table.clear()
        self._arrays = None

    def add(self, keys, t: int) -> None:
        """The ``keys`` (int64) moved in step ``t`` (listing one twice is harmless)."""
        start = self.table.size
        self.table.extend(keys.size)
        while not add_moves(self.table.data, self.place, start, keys, t):
            wider = max(2 * self.place.size, int(keys.max()) + 1)
            self.place = np.concatenate([self.place, np.full(wider - self.place.size, -1)])
        self._arrays = None

    def arrays(self):
        """``(keys, since)`` as arrays ordered by ``since``, the keys split into
        ``(rows, cols)`` when a ``width`` is given."""
        if self._arrays is None:
            rows, cols, since = live_moves(self.table.view, self.width or 0)
            self._arrays = (rows, since) if self.width is None else (rows, cols, since)
        return self._arrays


class StepLog:
    """The logged steps since the last refresh (see the module docstring)."""

    def __init__(self, n_samples: int, layer_inputs: list, layer_outputs: list, dtype):
        self.n_samples, self.layer_inputs, self.dtype = n_samples, list(layer_inputs), dtype
        self.columns = Growing((), np.int64)
        self.step_ptr = Growing((), np.int64)
        self.coefs = self.step_rows = None  # width q: known at the first step
        self.products = Growing((n_samples,), np.float64)
        self.gain_sums = Growing((len(self.layer_inputs),), np.float64)
        self.rise_sums = [Growing((n_out,), np.float64) for n_out in layer_outputs]
        self.moved = [LastMoves(n_in) for n_in in self.layer_inputs]
        self.units = LastMoves()  # the linear units
        self.clear()

    def __len__(self) -> int:
        return self.steps

    def clear(self) -> None:
        """Forget every step (keeping the arrays' room)."""
        self.steps = 0
        self.coef_max_sum = 0.0
        self.product_row = {}
        logs = (self.columns, self.step_ptr, self.coefs, self.products, self.step_rows,
                self.gain_sums, *self.rise_sums)  # fmt: skip
        for growing in logs:
            if growing is not None:  # coefs and step_rows before the first step
                growing.clear()
        self.step_ptr.extend(1)[0] = 0
        for sums in (self.gain_sums, *self.rise_sums):
            sums.extend(1)[0] = 0.0
        for moves in (*self.moved, self.units):
            moves.clear()

    def append(self, entry, samples) -> None:
        """Log one step (a :class:`maxplus.sparse.LogEntry`) taken for ``samples``
        (indices)."""
        t = self.steps
        self.steps += 1
        coef = entry.coef
        self.coef_max_sum += largest_magnitude(coef)
        q, width = coef.shape
        if self.coefs is None:
            self.coefs = Growing((q,), self.dtype)
            self.step_rows = Growing((q,), np.int64)
        self.columns.extend(width)[:] = entry.columns
        self.units.add(entry.columns, t)
        self.step_ptr.extend(1)[0] = self.columns.size
        self.coefs.extend(width)[:] = coef.T
        self.step_rows.extend(1)[0] = [
            self.pack(s, r)
            for s, r in zip(np.asarray(samples).tolist(), entry.products, strict=True)
        ]
        rises = zip(self.rise_sums, entry.row_rises, strict=True)
        for sums, step in ((self.gain_sums, entry.gains), *rises):
            np.add(sums.data[t], step, out=sums.extend(1)[0])
        for i, n_in in enumerate(self.layer_inputs):
            keys = entry.rows[i] * n_in
            keys += entry.cols[i]
            self.moved[i].add(keys, t)

    def pack(self, sample: int, product) -> int:
        """The row of ``products`` that holds ``X x_sample`` (added on first use)."""
        row = self.product_row.get(sample)
        if row is None:
            row = self.products.size
            self.products.extend(1)[0] = product
            self.product_row[sample] = row
        return row

    def moved_weights(self, i: int):
        """Entries of tropical layer ``i + 1`` moved during the logged steps, each once,
        ordered by the step after which they last moved (within a step, as the step
        listed them): ``(rows, cols, since)``; a sample synchronised at step ``k``
        needs the entries with ``since ≥ k``."""
        return self.moved[i].arrays()

    def moved_units(self):
        """The linear units moved during the logged steps, each once, ordered by the
        step after which they last moved: ``(units, since)``; a sample synchronised
        at step ``k`` has seen the moves of the units with ``since < k``."""
        return self.units.arrays()
