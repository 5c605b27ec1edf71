"""How far each waiting sample's loss may have risen (the sparse trainer's lazy sync).

The sparse trainer brings a sample up to date only when its loss might be among the
``q`` largest. Between two synchronisations it keeps, per sample, a bound on how far
the loss can have risen, from the moves of the linear outputs the sample's first
tropical layer can feel and the weight moves of every layer; the reasoning is in
:mod:`maxplus.kernels.cpu_bounds`.
"""

from __future__ import annotations

import numpy as np

from .kernels.cpu_bounds import (
    BOUND,
    N_ACCUMULATORS,
    UNIFORM,
    forget_moves,
    raise_bounds,
    reset_bounds,
    resolve_bounds,
)


class LossBounds:
    """Per sample ``n``: ``bound[n]``, how far its loss may have risen since its last
    synchronisation, and what it is built from (rows of ``acc``, see
    :mod:`maxplus.kernels.cpu_bounds`): per linear unit ``m`` the move
    ``moved[m, n]`` of ``z_nm`` since then, in the first tropical layer's goodness,
    and its room ``room_at[m, n]`` to a takeover (unit-major, so that a step's few
    units are read contiguously)."""

    def __init__(self, n_samples: int, n_units: int):
        # written now, not on a unit's first move: the operating system would
        # otherwise map their pages then, at ~1 µs a page, inside the steps
        self.moved = np.full((n_units, n_samples), 0.0)
        self.room_at = np.full((n_units, n_samples), np.nan)
        self.acc = np.empty((N_ACCUMULATORS, n_samples))
        self.checked = np.zeros(n_samples, dtype=np.int64)  # log steps resolved
        self.reset(np.arange(n_samples), 0)

    @property
    def bound(self) -> np.ndarray:
        return self.acc[BOUND]

    @property
    def uniform(self) -> np.ndarray:
        """The part of ``bound`` every sample has: weight moves and rounding."""
        return self.acc[UNIFORM]

    def reset(self, samples, steps: int) -> None:
        """The samples (indices) are synchronised with the first ``steps`` logged
        steps: nothing has moved since (their ``moved`` entries are cleared by
        :meth:`forget` or :meth:`restart`)."""
        reset_bounds(self.acc, self.checked, np.asarray(samples, dtype=np.int64), steps)

    def forget(self, batch, first, log) -> None:
        """Clear ``moved`` of the samples ``batch`` for the units moved since their
        steps ``first``."""
        forget_moves(self.moved, batch, first, *log.moved_units())

    def restart(self, units) -> None:
        """The log was cleared (a refresh) after every sample was synchronised: clear
        ``moved`` for the ``units`` it had logged; the steps start from 0 again."""
        self.moved[units] = 0.0
        self.checked[:] = 0

    def add_step(self, maximize: bool, cols, coef, products, extra) -> float:
        """Raise the bounds for one step (``maximize``: the first tropical layer is
        max-plus); returns ``max_n max_m |Δz_nm|``."""
        sign = 1.0 if maximize else -1.0
        return raise_bounds(self.acc, self.moved, self.room_at, sign, cols, coef, products, extra)

    def resolve(self, batch, log, first_layer, Z) -> None:  # noqa: N803
        """Tighten the bounds of the samples ``batch`` with what their first tropical
        layer (``first_layer``, a :class:`maxplus.sparse.LayerState`) selects and how
        close its thresholds are."""
        resolve_bounds(
            self.acc,
            self.checked,
            self.moved,
            self.room_at,
            1.0 if first_layer.maximize else -1.0,
            first_layer.head,
            first_layer.T,
            first_layer.Dt,
            Z,
            first_layer.margin,
            batch,
            *log.moved_units(),
        )
