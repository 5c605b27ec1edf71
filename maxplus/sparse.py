"""The sparse trainer: subgradients from short computational trees, state repaired.

The trainer stores the forward state of every sample (linear outputs ``Z``; per
tropical layer the outputs, selections, exact seconds and the bounds that certify
them) and the losses. A step touches only the selected samples' trees, so it changes
at most ``K`` rows of the linear layer and ``K`` entries per tropical layer per
sample. The step is logged, and a sample's state is *repaired* when it is needed:

1. **linear units**: row ``m`` moved along ``x_s`` for each selected sample
   ``s``, so ``z[:, m]`` moves by ``-η ζ_m (X x_s + 1)``; the product ``X x_s`` is
   cached per sample (``exact=True`` recomputes the changed entries instead, and
   the state is then bitwise a fresh forward pass);
2. **tropical layers**: :func:`maxplus.kernels.cpu_repair.repair_layer`, O(1) per
   changed candidate, counted rescans where a selected candidate got worse; a small
   layer after the first (fewer than :data:`RECOMPUTE_BELOW` candidates, such as an
   LMM's scores) keeps one runner bound per output instead, and an output is
   recomputed whole when its selection may have changed
   (:mod:`maxplus.kernels.cpu_rescan`), which costs it less;
3. **losses** of the samples whose scores changed.

**Lazy synchronisation**: ``losses(q)`` brings up to date only the samples whose
loss, within a bound on how far it can have risen since their last repair, may be
among the ``q`` largest; the others catch up with the log later. Every
``refresh_every`` steps ``Z`` is recomputed exactly and every sample repaired, which
bounds the rounding drift of the cached updates (:meth:`SparseTrainer.drift_bound`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numba as nb
import numpy as np

from . import flops, gradients
from .kernels import cpu_repair, cpu_rescan
from .kernels.cpu_bounds import kth_largest, lower_bounds, reaching, split_reaching
from .kernels.cpu_linear import (
    catch_up,
    linear_forward,
    padded_columns,
    refresh_columns,
    sample_products,
)
from .kernels.cpu_losses import LOSS_CODES, row_loss_gradients, row_losses
from .kernels.cpu_sync import finish_sync
from .kernels.cpu_update import update_entries, update_rows
from .loss_bounds import LossBounds
from .losses import loss_flops
from .step_log import StepLog, largest_magnitude
from .training import joined

#: Unit roundoff of float64 (the losses are computed in float64).
FLOAT64_EPS = float(np.finfo(np.float64).eps)

#: Bytes of cached products ``X x_s`` kept (least recently used dropped first).
CACHE_BYTES = 256 * 2**20

#: A tropical layer after the first with fewer candidates (inputs × outputs) than
#: this keeps one runner bound per output and recomputes an output whole when the
#: bound cannot vouch for its selection (:class:`RecomputedLayer`) instead of being
#: repaired: below about this size the repair's fixed cost per sample is the larger
#: (the min-plus layer's repair costs 9,000–16,000 cycles a sample on MNIST, a
#: recompute about 1.3 cycles a candidate).
RECOMPUTE_BELOW = 4096


class ProductCache:
    """``r_s = X x_s`` (float64) for recently selected samples ``s`` (an LRU cache),
    computed from a feature-major copy of ``X`` (:func:`sample_products`)."""

    def __init__(self, X, max_bytes=CACHE_BYTES):  # noqa: N803
        self.X = X
        self.XT = np.ascontiguousarray(X.T)
        self.entries = OrderedDict()
        self.capacity = max(1, max_bytes // max(1, 8 * X.shape[0]))
        self.hits = self.misses = 0

    def get(self, samples) -> list:
        """``[r_s for s in samples]``; the missing ones computed in one pass over X."""
        samples = [int(s) for s in samples]
        missing = list(dict.fromkeys(s for s in samples if s not in self.entries))
        if missing:
            fresh = np.empty((len(missing), self.X.shape[0]), dtype=np.float64)
            sample_products(self.XT, self.X[missing], fresh)
            rows = [fresh[0]] if len(missing) == 1 else [row.copy() for row in fresh]
            self.entries.update(zip(missing, rows, strict=True))  # each freed on its own
        self.misses += len(missing)
        self.hits += len(samples) - len(missing)
        products = []
        for s in samples:
            self.entries.move_to_end(s)
            products.append(self.entries[s])
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        return products


def scalar(value: float, a):
    """``value`` as a scalar of ``a``'s dtype, as NumPy casts it in ``value * a``."""
    return a.dtype.type(value)


def index_dtype(largest: int):
    """The narrowest signed integer type for indices below ``largest`` (and -1): the
    repair streams every touched sample's index rows, so narrower is faster."""
    return np.int16 if largest <= np.iinfo(np.int16).max else np.int32


def rounding_margin(Hin, W) -> float:  # noqa: N803
    """``64 u (1 + 4 max(max|Hin|, max|W|))``, ``u`` the unit roundoff: what a stored
    bound on a tropical layer's candidates allows for rounding."""
    scale = max(float(np.abs(Hin).max(initial=0.0)), float(np.abs(W).max(initial=0.0)))
    return 64 * float(np.finfo(Hin.dtype).eps) * (1.0 + 4.0 * scale)


class LayerState:
    """One tropical layer's stored state for every sample (see
    :mod:`maxplus.kernels.cpu_repair`): outputs ``H``, selections ``S``, runners-up
    ``S2`` (``SECONDS`` per output), runner bounds ``R3``, input thresholds ``T`` and
    ``T3``, the drift accumulators ``Dt`` and ``Dr``, and the groups
    ``head``/``nxt``/``prv`` of outputs selecting each input."""

    def __init__(self, layer, Hin):  # noqa: N803
        N, n_in = Hin.shape  # noqa: N806
        n_out = layer.weight.shape[0]
        self.layer = layer
        self.maximize = layer.maximize
        self.WT = np.ascontiguousarray(layer.weight.T)
        index = index_dtype(max(n_in, n_out))
        self.H = np.empty((N, n_out), dtype=Hin.dtype)
        self.S = np.empty((N, n_out), dtype=index)
        self.S2 = np.empty((N, n_out * cpu_repair.SECONDS), dtype=index)
        self.R3 = np.empty((N, n_out), dtype=np.float64)
        self.T = np.empty((N, n_in), dtype=np.float64)
        self.T3 = np.empty((N, n_in), dtype=np.float64)
        self.Dt = np.zeros(N, dtype=np.float64)
        self.Dr = np.zeros(N, dtype=np.float64)
        self.head = np.empty((N, n_in), dtype=index)  # first output selecting each input
        self.nxt = np.empty((N, n_out), dtype=index)  # next output with the same selection
        self.prv = np.empty((N, n_out), dtype=index)  # previous one (-1 for the first)
        self.changed_count = np.zeros(N, dtype=np.int64)
        self.changed_idx = np.empty((N, n_out), dtype=np.int64)
        self.changed_old = np.empty((N, n_out), dtype=Hin.dtype)  # previous output values
        self.rebuild(Hin)

    @property
    def arrays(self):
        """The state tuple the kernels take."""
        return (
            self.H,
            self.S,
            self.S2,
            self.R3,
            self.T,
            self.T3,
            self.Dt,
            self.Dr,
            self.head,
            self.nxt,
            self.prv,
        )

    def rebuild(self, Hin) -> None:  # noqa: N803
        """Exact state from the inputs; ``margin`` absorbs rounding in stored bounds."""
        W = self.layer.weight
        self.margin = rounding_margin(Hin, W)
        cpu_repair.initial_state(Hin, W, self.WT, self.arrays, self.maximize, self.margin)

    def repair(self, Hin, batch, count, idx, old, log, layer, first, work, threads):  # noqa: N803
        """Repair the samples ``batch`` after the inputs listed per sample changed and
        the weights of tropical layer ``layer`` logged in ``log`` as moved since the
        step ``first[b]`` (``(rows, cols, since)`` with ``since ≥ first[b]``) may have
        moved, by at most ``gain_sums[-1, layer] − gain_sums[first[b], layer]`` (see
        :func:`maxplus.kernels.cpu_repair.repair_layer`); the changed outputs are left
        in ``changed_*`` (indexed like ``batch``); ``threads``: numba's thread count."""
        W = self.layer.weight
        moved, gain_sums = log.moved_weights(layer), log.gain_sums.view
        cpu_repair.repair_layer(
            Hin,
            W,
            self.WT,
            self.arrays,
            self.maximize,
            batch,
            count,
            idx,
            old,
            *moved,
            first,
            gain_sums,
            layer,
            self.margin,
            self.changed_count,
            self.changed_idx,
            self.changed_old,
            work,
            threads,
        )


class RecomputedLayer:
    """A small tropical layer's stored state for every sample: outputs ``H``,
    selections ``S`` and one runner bound per output (``R2 + V``, see
    :func:`maxplus.kernels.cpu_rescan.rescan_layer`). For each sample brought up to
    date an output is recomputed whole only when its selected candidate may no
    longer beat the others. It is repaired with the arguments of
    :meth:`LayerState.repair` and lists its changed outputs the same way. Like every
    layer state it holds the transposed weights ``WT`` the trainer's update keeps in
    step."""

    def __init__(self, layer, Hin):  # noqa: N803
        N, n_out = Hin.shape[0], layer.weight.shape[0]  # noqa: N806
        self.layer = layer
        self.maximize = layer.maximize
        self.WT = np.ascontiguousarray(layer.weight.T)
        values, selections = layer.forward(Hin, np)  # the tropical product with indices
        self.H = np.ascontiguousarray(values, dtype=Hin.dtype)
        self.S = selections.astype(index_dtype(max(Hin.shape[1], n_out)))
        self.R2 = np.full((N, n_out), np.inf)  # unknown: recomputed at the first repair
        self.V = np.zeros((N, n_out))
        self.calm = np.zeros(N, dtype=np.bool_)  # checked, not recomputed, at the last sync
        self.margin = rounding_margin(Hin, layer.weight)
        self.changed_count = np.zeros(N, dtype=np.int64)
        self.changed_idx = np.empty((N, n_out), dtype=np.int64)
        self.changed_old = np.empty((N, n_out), dtype=Hin.dtype)

    def repair(self, Hin, batch, count, idx, old, log, layer, first, work, threads):  # noqa: N803
        """Bring up to date the samples ``batch`` whose inputs (``count[b] > 0``) or
        weights (moved at a logged step ``≥ first[b]``) changed."""
        cpu_rescan.rescan_layer(
            Hin,
            self.layer.weight,
            self.H,
            self.S,
            self.R2,
            self.V,
            self.calm,
            self.maximize,
            batch,
            count,
            idx,
            old,
            log.moved_weights(layer)[2],
            first,
            log.rise_sums[layer].view,
            self.margin,
            self.changed_count,
            self.changed_idx,
            self.changed_old,
            work,
            threads,
        )


def work_flops(layer) -> np.ndarray:
    """FLOPs per unit of repair work (:data:`WORK_NAMES`) in a tropical ``layer`` with
    ``n_in`` inputs and ``n_out`` outputs: per output that followed its input 2, per
    takeover pass ``4 n_out`` (the pass and the thresholds), per swap 3, per rescan
    ``2 n_in``, per certified input 0, per candidate recomputed or checked in a
    :class:`RecomputedLayer` 2."""
    n_out, n_in = layer.weight.shape
    flops = np.zeros(cpu_repair.N_COUNTERS, dtype=np.int64)
    flops[cpu_repair.FOLLOWED] = 2
    flops[cpu_repair.TAKEOVER_PASSES] = 4 * n_out
    flops[cpu_repair.SWAPS] = 3
    flops[cpu_repair.RESCANS] = 2 * n_in
    flops[cpu_repair.RECOMPUTED] = 2
    return flops


def layer_state(layer, Hin, first: bool, recompute_below: int):  # noqa: N803
    """The stored state of a tropical layer: outputs recomputed when their runner
    bounds cannot vouch for them (:class:`RecomputedLayer`) when it has fewer than
    ``recompute_below`` candidates (inputs × outputs) and is not the ``first`` (whose
    thresholds also tighten the loss bounds), else repaired (:class:`LayerState`)."""
    if not first and Hin.shape[1] * layer.weight.shape[0] < recompute_below:
        return RecomputedLayer(layer, Hin)
    return LayerState(layer, Hin)


class SparseTrainer:
    """Trains by tree subgradients and repairs the stored forward state lazily.

    After a step only the samples that may be among the ``q`` worst are brought up
    to date: each sample accumulates a bound on how far its loss may have risen
    since it was last synchronised (every score rises and falls at most as far as
    its inputs and weights, the first tropical layer's outputs move only with the
    inputs they selected or one that passed its takeover threshold, and the loss
    rises at most by a score's rise plus the label score's fall; see
    :mod:`maxplus.loss_bounds`), plus a rounding margin, and a sample whose bound
    cannot reach the ``q``-th largest loss waits. Every ``refresh_every``
    steps every sample is synchronised and ``Z`` recomputed exactly (ending the
    cached updates' drift).
    The selected samples, their trees and the objective are exact at every step.

    ``recompute_below``: a tropical layer after the first with fewer candidates
    (inputs × outputs) is recomputed per sample instead of repaired
    (:class:`RecomputedLayer`); 0 repairs every layer.
    """

    method = "sparse"

    def __init__(self, model, X, y, loss: str, *, refresh_every: int = 100, exact: bool = False,  # noqa: N803
                 recompute_below: int = RECOMPUTE_BELOW):  # fmt: skip
        self.model, self.X, self.y, self.loss = model, X, y, loss
        self.loss_code = LOSS_CODES[loss]
        self.refresh_every, self.exact = refresh_every, exact
        self.cache = ProductCache(X)
        self.tree = gradients.TreeBackward(model)
        self.flops_last = self.flops_pending = 0
        self.counts = dict.fromkeys(("refreshes", "synced", "resolved"), 0)
        self.work_done = np.zeros(cpu_repair.N_COUNTERS, dtype=np.int64)  # WORK_NAMES
        self._touched = {}
        lin = model.layers[0]
        N = X.shape[0]  # noqa: N806
        self.Z = np.empty((N, lin.weight.shape[0]), dtype=model.dtype)
        linear_forward(X, np.ascontiguousarray(lin.weight.T), lin.bias, self.Z)
        self.layers = []
        Hin = self.Z
        for layer in model.layers[1:]:
            self.layers.append(layer_state(layer, Hin, not self.layers, recompute_below))
            Hin = self.layers[-1].H
        n_layers, n_counters = len(self.layers), cpu_repair.N_COUNTERS
        self.work = np.zeros((n_layers, N, n_counters), dtype=np.int64)  # zero between repairs
        self.last_work = np.zeros((n_layers, n_counters), dtype=np.int64)  # of the last repair
        self.flops_per_work = np.stack([work_flops(state.layer) for state in self.layers])
        self.last_repair_flops = 0
        self.L = row_losses(self.scores, y, loss)
        self.bounds = LossBounds(N, lin.weight.shape[0])
        self.all_samples = np.arange(N)
        self.synced_at = np.zeros(N, dtype=np.int64)  # the log step each sample has seen
        widths = [state.layer.weight.shape for state in self.layers]
        self.log = StepLog(N, [n_in for _, n_in in widths], [n_out for n_out, _ in widths],
                           model.dtype)  # fmt: skip
        # the data's magnitudes, for the rounding and drift bounds
        self.x_l1 = float(np.abs(X).sum(axis=1).max(initial=0))
        self.x_max = largest_magnitude(X)
        self.x_sq_max = float(np.max(np.sum(np.square(X, dtype=np.float64), axis=1), initial=0))
        self.unit_roundoff = float(np.finfo(model.dtype).eps)
        self.measure_scales()

    # ---- state -----------------------------------------------------------------
    @property
    def scores(self):
        return self.layers[-1].H

    @property
    def bound(self) -> np.ndarray:
        """How far each loss may have risen since the sample's last synchronisation."""
        return self.bounds.bound

    @property
    def selections(self):
        return [None] + [state.S for state in self.layers]

    def state_values(self):
        """``[Z, H_1, ..., H_L]`` as stored; call :meth:`synchronize` first to compare
        with ``model.forward(X).values``."""
        return [self.Z] + [state.H for state in self.layers]

    def drift_bound(self) -> float:
        """Bound on ``|Z_cached − Z_fresh|`` for samples synchronised since the last
        exact recomputation (0 in exact mode).

        With ``t`` logged steps, unit roundoff ``u``, ``S1 = max_n ‖x_n‖₁ max|A|
        + max|b|`` and ``c`` the sum over those steps of ``max |η ζ|``:
        ``u (3 c (max ‖x‖² + 1) + t (S1 + 2 max|Z|) + 2 d S1)``: each step rounds the
        parameter change and its product once, a catch-up rounds ``z`` once, each
        forward pass sums ``d`` products.
        """
        if self.exact:
            return 0.0
        u = self.unit_roundoff
        d = self.X.shape[1]
        s1 = self.linear_scale()
        z_max = largest_magnitude(self.Z)
        t = len(self.log)
        c = self.log.coef_max_sum
        return u * (3 * c * (self.x_sq_max + 1) + t * (s1 + 2 * z_max) + 2 * d * s1)

    def linear_scale(self) -> float:
        """``S1 = max_n ‖x_n‖₁ max|A| + max|b|``, which bounds every ``|z_nm|``."""
        lin = self.model.layers[0]
        return self.x_l1 * largest_magnitude(lin.weight) + largest_magnitude(lin.bias)

    def measure_scales(self) -> None:
        """Magnitudes the rounding margins of the loss bounds start from (at a refresh):
        ``S1``, the largest parameters, and ``max|Z| + Σ_l max|H_l|``."""
        lin = self.model.layers[0]
        self.a_max = largest_magnitude(lin.weight)
        self.b_max = largest_magnitude(lin.bias)
        self.value_scale = largest_magnitude(self.Z) + sum(
            largest_magnitude(state.H) for state in self.layers
        )

    def rounding_margins(self):
        """``(once, per_step)``: how far rounding can carry a computed loss past the
        real-valued bound, once per waiting sample (its loss evaluated then and now:
        the tropical sums, the linear sums in exact mode, the float64 loss) and per
        logged step (the rounded parameter update and catch-up). With ``c`` the
        logged ``Σ max|ηζ|``, ``S1 ≤ max‖x‖₁ (max|A| + c max|x|) + max|b| + c``."""
        u = self.unit_roundoff
        c = self.log.coef_max_sum
        s1 = self.x_l1 * (self.a_max + c * self.x_max) + self.b_max + c
        scale = self.value_scale
        d = self.X.shape[1]
        loss_rounding = 64 * FLOAT64_EPS * (1 + scale)
        once = 2 * u * (scale + (d + 1) * s1 * self.exact) + loss_rounding
        return once, u * (s1 + 2 * scale)

    # ---- synchronisation ---------------------------------------------------------
    def synchronize(self, refresh: bool = True) -> None:
        """Bring every sample up to date; with ``refresh`` also recompute ``Z``
        exactly (then the state is a fresh forward pass, bitwise in exact mode)."""
        if refresh:
            self.refresh()
        else:
            self.sync(np.flatnonzero(self.synced_at < len(self.log)))

    def sync(self, batch) -> None:
        """Catch the samples ``batch`` up with the logged steps, then repair them."""
        if batch.size == 0:
            return
        batch = np.asarray(batch, dtype=np.int64)
        log = self.log
        cols = log.columns.view
        width = min(self.Z.shape[1], cols.size)
        count = np.zeros(batch.size, dtype=np.int64)
        visited = np.zeros(batch.size, dtype=np.int64)
        idx = np.empty((batch.size, width), dtype=np.int64)
        old = np.empty((batch.size, width), dtype=self.Z.dtype)
        lin = self.model.layers[0]
        first = self.synced_at[batch]
        threads = nb.get_num_threads()
        catch_up(
            self.Z,
            self.X,
            lin.weight,
            lin.bias,
            self.exact,
            batch,
            first,
            log.step_ptr.view,
            cols,
            log.coefs.view,
            log.step_rows.view,
            log.products.view,
            count,
            idx,
            old,
            visited,
            threads,
        )
        self.bounds.forget(batch, first, log)
        self.repair(batch, count, idx, old, first, threads)
        n_pairs = int(visited.sum())
        d = self.X.shape[1]
        q = log.coefs.view.shape[1]
        self.flops_pending += (2 * d + 1) * n_pairs if self.exact else 3 * n_pairs * q

    def refresh(self) -> None:
        """Recompute exactly the columns of ``Z`` moved since the last refresh (the
        others are exact already: the same kernel, so bitwise a full forward pass)
        and repair every sample for what differs."""
        lin = self.model.layers[0]
        cols = np.unique(self.log.columns.view)
        N = self.Z.shape[0]  # noqa: N806
        count = np.zeros(N, dtype=np.int64)
        idx = np.empty((N, cols.size), dtype=np.int64)
        old = np.empty((N, cols.size), dtype=self.Z.dtype)
        WT, bias = padded_columns(lin.weight, lin.bias, cols)  # noqa: N806
        refresh_columns(self.X, WT, bias, cols, self.Z, count, idx, old)
        self.repair(self.all_samples, count, idx, old, self.synced_at.copy(), nb.get_num_threads())
        self.log.clear()
        self.synced_at[:] = 0
        self.bounds.restart(cols)
        self.counts["refreshes"] += 1
        self.measure_scales()
        # the tropical layers and the losses are counted by repair()
        self.flops_pending += flops.linear_forward_flops(self.model, N, cols.size)

    def repair(self, batch, count, idx, old, first, threads) -> None:
        """Repair the tropical layers of ``batch`` (changed linear outputs given) and
        their losses, on ``threads`` threads; they are synchronised with the whole
        log afterwards."""
        steps = len(self.log)
        Hin, work = self.Z, self.work
        for i, state in enumerate(self.layers):
            state.repair(Hin, batch, count, idx, old, self.log, i, first, work[i], threads)
            Hin = state.H
            count, idx, old = state.changed_count, state.changed_idx, state.changed_old
        changed, self.last_repair_flops = finish_sync(
            self.scores,
            self.y,
            self.loss_code,
            batch,
            count,
            self.L,
            self.bounds.acc,
            self.bounds.checked,
            self.synced_at,
            steps,
            self.work,
            self.last_work,
            self.work_done,
            self.flops_per_work,
            threads,
        )
        self.counts["synced"] += batch.size
        self.flops_pending += self.last_repair_flops + changed * loss_flops(self.model.n_classes)

    # ---- the trainer protocol ----------------------------------------------------
    def losses(self, q=None) -> np.ndarray:
        """Losses whose ``q`` largest are exact (the rest may be stale but are then
        certainly smaller). The samples that may reach the ``q``-th largest lower
        bound are synced: first those that the weight moves and rounding alone bring
        there, then, among the others, those that still may once their bounds are
        tightened (:meth:`maxplus.loss_bounds.LossBounds.resolve`); the ``q``-th
        largest lower bound is recomputed after each round. Without ``q`` every loss
        is exact."""
        if self.log and q is None:
            self.sync(np.flatnonzero(self.bound > 0))
        elif self.log:
            once = self.rounding_margins()[0]
            q = min(q, self.L.size)
            L, bound = self.L, self.bound  # noqa: N806
            lower = np.empty_like(L)
            kth = self.kth_lower_bound(lower, once, q, self.all_samples)
            sure, rest = split_reaching(L, bound, self.bounds.uniform, once, kth)
            self.sync(sure)
            rest = reaching(L, bound, once, self.kth_lower_bound(lower, once, q, sure), rest)
            self.tighten(rest)
            self.sync(reaching(L, bound, once, self.kth_lower_bound(lower, once, q, rest), rest))
        return self.L

    def kth_lower_bound(self, lower, once, q: int, updated) -> float:
        """The ``q``-th largest of ``lower``, the least each loss can be now, after
        recomputing it for the samples ``updated`` (synchronised or tightened)."""
        lower_bounds(self.L, self.bound, once, lower, updated)
        return kth_largest(lower, q)

    def tighten(self, samples=None) -> None:
        """Tighten the loss bounds of ``samples`` (default: all) with what their
        first tropical layer selects (:meth:`maxplus.loss_bounds.LossBounds.resolve`)."""
        samples = self.all_samples if samples is None else samples
        self.counts["resolved"] += samples.size
        if samples.size:
            self.bounds.resolve(samples, self.log, self.layers[0], self.Z)

    def gradient(self, rows, q: int) -> gradients.SparseGradient:
        delta = row_loss_gradients(self.scores[rows], self.y[rows], self.loss)
        G = gradients.score_gradients(delta, q)
        return self.tree.gradient(self.model, self.selections, self.X, rows, G)

    def squared_norm(self, g: gradients.SparseGradient) -> float:
        return g.squared_norm()

    def touched_rows(self) -> dict:
        touched, self._touched = self._touched, {}
        return {name: joined(chunks) for name, chunks in touched.items()}

    def apply(self, eta: float, g: gradients.SparseGradient) -> None:
        """θ ← θ − η g on the tree's entries; log the step and raise the loss bounds
        (:class:`maxplus.loss_bounds.LossBounds`): the linear outputs' moves the first
        tropical layer can feel, every tropical layer's largest weight rise and fall,
        and rounding."""
        N, d = self.X.shape  # noqa: N806
        entry = self.update(eta, g)
        self.log.append(entry, g.samples)
        products = entry.products[0][None] if len(entry.products) == 1 else np.stack(entry.products)
        weights = float(entry.rises.sum() + entry.falls.sum())
        moved = self.bounds.add_step(
            self.layers[0].maximize,
            entry.columns,
            entry.coef,
            products,
            weights + self.rounding_margins()[1],
        )
        self.value_scale += (1 + len(self.layers)) * (moved + weights)
        self.flops_pending += flops.tree_flops(self.model, g.samples.size, g) + 6 * N
        if len(self.log) >= self.refresh_every:
            self.refresh()
        self.flops_last, self.flops_pending = self.flops_pending, 0

    def update(self, eta, g) -> LogEntry:
        """Move the parameters of the tree (θ −= η g) and describe the move."""
        lin = self.model.layers[0]
        M = g.linear_rows  # noqa: N806
        update_rows(
            lin.weight, lin.bias, M, g.linear_weight, g.linear_bias, scalar(eta, g.linear_weight)
        )
        self._touched.setdefault("0.weight", []).append(M)
        self._touched.setdefault("0.bias", []).append(M)
        misses = self.cache.misses
        products = self.cache.get(g.samples)
        self.flops_pending += 2 * self.X.size * (self.cache.misses - misses)
        coef = np.ascontiguousarray((eta * g.linear_upstream).astype(self.Z.dtype, copy=False))
        rows, cols, falls, rises, row_rises = [], [], [], [], []
        for i, (state, entries) in enumerate(zip(self.layers, g.tropical, strict=True), start=1):
            r, c, values = entries.rows, entries.cols, entries.values
            W, step = state.layer.weight, scalar(eta, values)  # noqa: N806
            row_rises.append(np.empty(W.shape[0]))
            sign = 1.0 if state.maximize else -1.0
            fall, rise = update_entries(W, state.WT, r, c, values, step, sign, row_rises[-1])
            rows.append(r)
            cols.append(c)
            falls.append(fall)
            rises.append(rise)
            self._touched.setdefault(f"{i}.weight", []).append(r)
        columns = np.asarray(M, dtype=np.int64)
        return LogEntry(columns, coef, products, rows, cols, np.array(rises), np.array(falls),
                        row_rises)  # fmt: skip

    def repair_flops(self) -> int:
        """FLOPs of the repair kernels' last calls, each layer's work (``last_work``)
        counted by :func:`work_flops`."""
        return self.last_repair_flops

    @property
    def counters(self) -> dict:
        """Since the trainer was made: ``refreshes`` (how many), ``synced`` (samples
        repaired, the N of each refresh included), ``resolved`` (samples whose bounds
        were tightened) and the repair's work (:data:`WORK_NAMES`)."""
        return dict(self.counts, **dict(zip(WORK_NAMES, self.work_done.tolist(), strict=True)))

    def info(self) -> dict:
        return dict(
            self.counters,
            cache_hits=self.cache.hits,
            exact=self.exact,
            refresh_every=self.refresh_every,
        )


@dataclass
class LogEntry:
    """One step as the lazy samples must replay it: the linear rows moved with
    their coefficients (q × |M|) and the products ``X x_s``; per tropical layer the
    entries moved, the largest rise and fall of a weight, and per row of weights
    the largest rise in goodness (:func:`~maxplus.kernels.cpu_update.update_entries`)."""

    columns: np.ndarray
    coef: np.ndarray
    products: list
    rows: list
    cols: list
    rises: np.ndarray
    falls: np.ndarray
    row_rises: list

    @property
    def gains(self) -> np.ndarray:
        """Per tropical layer, the largest move of a weight, up or down."""
        return np.maximum(self.rises, self.falls)


WORK_NAMES = ("followed", "takeover_passes", "swaps", "rescans", "certified", "recomputed")
