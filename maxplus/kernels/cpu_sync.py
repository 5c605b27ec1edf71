"""The end of the sparse trainer's synchronisation of a batch, in one kernel call.

After the tropical layers of the samples ``batch`` are repaired, the trainer needs
their new losses, their loss bounds restarted, the step they are synchronised with,
and the repair's work counted. Each is a small kernel; called one by one from
Python they cost more in interpreter and dispatch time than in work (a sync has
tens of samples at small step sizes), so :func:`finish_sync` runs them together.
"""

from __future__ import annotations

import numba as nb

from .cpu_bounds import reset_bounds
from .cpu_losses import losses_of_changed
from .cpu_repair import take_work


@nb.njit(cache=True)
def finish_sync(S, y, code, batch, count, L, acc, checked, synced_at, steps, work, last_work,  # noqa: N803
                work_done, flops_per_work, threads):  # fmt: skip
    """For the samples ``batch`` (``count[b] > 0``: its scores ``S[n]`` changed):
    ``L[n]`` = their loss (:func:`~maxplus.kernels.cpu_losses.losses_of_changed`),
    bounds restarted (:func:`~maxplus.kernels.cpu_bounds.reset_bounds`, ``acc`` and
    ``checked``) and ``synced_at[n] = steps``; the work each layer ``l`` counted in
    their rows of ``work[l]`` moves to ``last_work[l]``
    (:func:`~maxplus.kernels.cpu_repair.take_work`) and is added to ``work_done``.
    Returns the number of losses recomputed and the work's FLOPs
    (``Σ_l last_work[l] · flops_per_work[l]``: a pass or a rescan costs by its own
    layer's width)."""
    changed = losses_of_changed(S, y, code, batch, count, L, threads)
    reset_bounds(acc, checked, batch, steps)
    for b in range(batch.shape[0]):
        synced_at[batch[b]] = steps
    take_work(work, batch, last_work)
    flops = 0
    for layer in range(last_work.shape[0]):
        for c in range(last_work.shape[1]):
            work_done[c] += last_work[layer, c]
            flops += last_work[layer, c] * flops_per_work[layer, c]
    return changed, flops
