"""How many samples the sparse trainer brings up to date, against how many it must.

Before each step, :class:`maxplus.sparse.SparseTrainer` synchronises every sample whose
loss *may* be among the ``q`` largest, judged by a per-sample bound on how far the loss
can have risen since the sample was last synchronised (:mod:`maxplus.loss_bounds`).
The looser the bound, the more samples are repaired; at larger step sizes that count,
not the cost of one repair, decides the step's time. This module measures the gap. At
each step it also computes every loss afresh (a full forward pass, for the
measurement only) and counts, with ``ℓ*`` the ``q``-th largest fresh loss:

* ``synced``: the samples the trainer synchronised;
* ``reached``: the waiting samples whose stored bound reaches ``ℓ*`` before any is
  tightened (``L + bound ≥ ℓ*``, ``L`` the loss at the last synchronisation);
* ``needed``: the waiting samples whose *actual* loss reaches ``ℓ*``, the ones a bound
  equal to each actual rise would still synchronise. A sound bound synchronises all
  of them, so ``synced ≥ needed``;

and the medians over the waiting samples of the bound, of its ``uniform`` part (the
weight moves and rounding every sample carries) and of the actual rise.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int
from .kernels.cpu_bounds import kth_largest
from .kernels.cpu_losses import row_losses
from .speed import WarmStepper
from .training import run

#: What :class:`SyncAudit` records per step (see the module's docstring).
FIELDS = ("synced", "reached", "needed", "bound", "uniform", "rise")


class SyncAudit:
    """A sparse trainer wrapper: each ``losses(q)`` call is measured before it is
    passed on, one entry per :data:`FIELDS` in ``records``."""

    def __init__(self, trainer):
        if getattr(trainer, "method", None) != "sparse" or not hasattr(trainer, "bounds"):
            raise TypeError("SyncAudit audits the CPU sparse trainer (maxplus.sparse)")
        self.trainer = trainer
        self.records = {name: [] for name in FIELDS}

    def __getattr__(self, name):
        return getattr(self.trainer, name)

    def losses(self, q=None):
        t = self.trainer
        stale, bound, uniform = t.L.copy(), t.bound.copy(), t.bounds.uniform.copy()
        fresh = row_losses(t.model.forward_validated(t.X).scores, t.y, t.loss)
        synced = t.counts["synced"]
        out = t.losses(q)
        top = kth_largest(fresh, min(q or fresh.size, fresh.size))
        waiting = bound > 0
        rise = fresh[waiting] - stale[waiting]
        record = {
            "synced": t.counts["synced"] - synced,
            "reached": int(np.count_nonzero(stale[waiting] + bound[waiting] >= top)),
            "needed": int(np.count_nonzero(fresh[waiting] >= top)),
            "bound": _median(bound[waiting]),
            "uniform": _median(uniform[waiting]),
            "rise": _median(rise),
        }
        for name, value in record.items():
            self.records[name].append(value)
        return out


def _median(values) -> float:
    return float(np.median(values)) if values.size else 0.0


def audit_syncs(X, y, *, lr: float, steps: int, start=None, warmup: int = 3, **config) -> dict:  # noqa: N803
    """Per-step :data:`FIELDS` (arrays) of ``steps`` constant steps of the sparse
    trainer on :class:`~maxplus.speed.WarmStepper`'s LMM (``config``: its other
    keywords), from the seeded network or from ``start`` (parameters by name)."""
    steps = check_positive_int("steps", steps)
    stepper = WarmStepper("sparse", X, y, lr=lr, start=start, warmup=warmup, **config)
    audit = SyncAudit(stepper.trainer)
    run(audit, stepper.model, stepper.q, steps, "constant", lr, 0.0, False, None)
    return {name: np.asarray(values[:steps]) for name, values in audit.records.items()}
