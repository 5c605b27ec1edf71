"""The sparse trainer: subgradients from short computational trees, state repaired.

The trainer stores the forward state of every sample (linear outputs ``Z``, and
per tropical layer the outputs, selections and runner bounds) and the losses.
A step touches only the selected samples' trees, so it changes at most ``K``
rows of the linear layer and ``K`` entries per tropical layer per sample. The
state is then *repaired*:

1. **linear units**: row ``m`` moved along ``x_s`` for each selected sample
   ``s``, so ``z[:, m]`` moves by ``-η ζ_m (X x_s + 1)``; the product ``X x_s`` is
   cached per sample (``exact=True`` recomputes the changed columns instead, and
   the state is then bitwise a fresh forward pass); a full refresh every
   ``refresh_every`` steps bounds the rounding drift of the cached updates;
2. **tropical layers**: :func:`maxplus.kernels.cpu_repair.repair_layer`, O(1) per
   changed candidate, counted rescans where a selected candidate got worse;
3. **losses** of the samples whose scores changed.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from . import flops, gradients
from .kernels import cpu_repair
from .kernels.cpu_linear import linear_columns, linear_forward, row_products
from .kernels.cpu_losses import row_loss_gradients, row_losses
from .losses import loss_flops

#: Bytes of cached products ``X x_s`` kept (least recently used dropped first).
CACHE_BYTES = 256 * 2**20


class ProductCache:
    """``r_s = X x_s`` (float64) for recently selected samples ``s`` (an LRU cache)."""

    def __init__(self, X, max_bytes=CACHE_BYTES):  # noqa: N803
        self.X = X
        self.entries = OrderedDict()
        self.capacity = max(1, max_bytes // max(1, 8 * X.shape[0]))
        self.max_sq_norm = float(np.max(np.sum(np.square(X, dtype=np.float64), axis=1), initial=0))
        self.hits = self.misses = 0

    def get(self, s: int):
        r = self.entries.get(s)
        if r is None:
            self.misses += 1
            r = np.empty(self.X.shape[0], dtype=np.float64)
            row_products(self.X, self.X[s], r)
            self.entries[s] = r
            if len(self.entries) > self.capacity:
                self.entries.popitem(last=False)
        else:
            self.hits += 1
            self.entries.move_to_end(s)
        return r


class LayerState:
    """One tropical layer's stored state for every sample (see
    :mod:`maxplus.kernels.cpu_repair`): outputs ``H``, selections ``S``, seconds
    ``S2``, runner bounds ``R3``, input thresholds ``T`` and ``T3`` and the drift
    accumulator ``Dt``."""

    def __init__(self, layer, Hin):  # noqa: N803
        N, n_in = Hin.shape  # noqa: N806
        n_out = layer.weight.shape[0]
        self.layer = layer
        self.maximize = layer.maximize
        self.WT = np.ascontiguousarray(layer.weight.T)
        self.H = np.empty((N, n_out), dtype=Hin.dtype)
        self.S = np.empty((N, n_out), dtype=np.int32)
        self.S2 = np.empty((N, n_out), dtype=np.int32)
        self.R3 = np.empty((N, n_out), dtype=np.float64)
        self.T = np.empty((n_in, N), dtype=np.float64)  # input-major
        self.T3 = np.empty((n_in, N), dtype=np.float64)
        self.Dt = np.zeros(N, dtype=np.float64)
        self.head = np.empty((n_in, N), dtype=np.int32)  # first output selecting each input
        self.nxt = np.empty((N, n_out), dtype=np.int32)  # next output with the same selection
        self.changed_count = np.zeros(N, dtype=np.int64)
        self.changed_idx = np.empty((N, n_out), dtype=np.int64)
        self.changed_old = np.empty((N, n_out), dtype=Hin.dtype)  # previous output values
        self.rebuild(Hin)

    def rebuild(self, Hin) -> None:  # noqa: N803
        """Exact state from the inputs; ``margin`` absorbs rounding in stored bounds."""
        W = self.layer.weight
        scale = max(float(np.abs(Hin).max(initial=0.0)), float(np.abs(W).max(initial=0.0)))
        self.margin = 64 * float(np.finfo(Hin.dtype).eps) * (1.0 + 4.0 * scale)
        cpu_repair.initial_state(
            Hin,
            W,
            self.H,
            self.S,
            self.S2,
            self.R3,
            self.T,
            self.T3,
            self.Dt,
            self.head,
            self.nxt,
            self.maximize,
            self.margin,
        )

    def repair(self, Hin, count, idx, old, rows, cols, step, work):  # noqa: N803
        """Repair after the inputs listed per sample changed and weights moved by
        ``-step``; the changed outputs are left in ``changed_*``."""
        W = self.layer.weight
        self.WT[cols, rows] = W[rows, cols]
        w_gain = float(np.abs(step).max(initial=0.0))
        cpu_repair.repair_layer(
            Hin,
            W,
            self.WT,
            self.H,
            self.S,
            self.S2,
            self.R3,
            self.T,
            self.T3,
            self.Dt,
            self.head,
            self.nxt,
            self.maximize,
            count,
            idx,
            old,
            rows,
            cols,
            w_gain,
            self.margin,
            self.changed_count,
            self.changed_idx,
            self.changed_old,
            work,
        )


class SparseTrainer:
    """Trains by tree subgradients and repairs the stored forward state."""

    method = "sparse"

    def __init__(self, model, X, y, loss: str, *, refresh_every: int = 100, exact: bool = False):  # noqa: N803
        self.model, self.X, self.y, self.loss = model, X, y, loss
        self.refresh_every, self.exact = refresh_every, exact
        self.cache = ProductCache(X)
        self.tree = gradients.TreeBackward(model)
        self.flops_last = 0
        self.steps_since_refresh = 0
        self.coef_since_refresh = 0.0
        self.counters = dict.fromkeys(("refreshes", "changed_samples", *WORK_NAMES), 0)
        self._touched = {}
        lin = model.layers[0]
        N = X.shape[0]  # noqa: N806
        self.Z = np.empty((N, lin.weight.shape[0]), dtype=model.dtype)
        linear_forward(X, np.ascontiguousarray(lin.weight.T), lin.bias, self.Z)
        self.layers = []
        Hin = self.Z
        for layer in model.layers[1:]:
            self.layers.append(LayerState(layer, Hin))
            Hin = self.layers[-1].H
        self.work = np.zeros((N, cpu_repair.N_COUNTERS), dtype=np.int64)
        self.L = row_losses(self.scores, y, loss)

    # ---- state -----------------------------------------------------------------
    @property
    def scores(self):
        return self.layers[-1].H

    @property
    def selections(self):
        return [None] + [state.S for state in self.layers]

    def state_values(self):
        """``[Z, H_1, ..., H_L]``, comparable with ``model.forward(X).values``."""
        return [self.Z] + [state.H for state in self.layers]

    def refresh_linear(self):
        """Recompute ``Z`` exactly, ending the cached updates' rounding drift; returns
        the columns that differed and their previous values."""
        lin = self.model.layers[0]
        fresh = np.empty_like(self.Z)
        linear_forward(self.X, np.ascontiguousarray(lin.weight.T), lin.bias, fresh)
        columns = np.flatnonzero(np.any(fresh != self.Z, axis=0))
        z_old = np.ascontiguousarray(self.Z[:, columns])
        self.Z[...] = fresh
        self.steps_since_refresh = 0
        self.coef_since_refresh = 0.0
        self.counters["refreshes"] += 1
        return columns, z_old

    def drift_bound(self) -> float:
        """Bound on ``|Z_cached − Z_fresh|`` after the cached linear updates since the
        last exact recomputation (0 in exact mode).

        With ``t`` updates since then, unit roundoff ``u``, ``S1 = max_n ‖x_n‖₁ max|A|
        + max|b|`` and ``c`` the sum over those updates of ``max |η ζ|``:
        ``u (3 c (max ‖x‖² + 1) + t (S1 + 2 max|Z|) + 2 d S1)``: each update rounds
        ``z``, the parameter change and its product once; each forward pass sums
        ``d`` products.
        """
        if self.exact:
            return 0.0
        lin = self.model.layers[0]
        u = float(np.finfo(self.Z.dtype).eps)
        d = self.X.shape[1]
        s1 = float(np.abs(self.X).sum(axis=1).max(initial=0)) * float(
            np.abs(lin.weight).max()
        ) + float(np.abs(lin.bias).max())
        z_max = float(np.abs(self.Z).max(initial=0))
        t = self.steps_since_refresh
        c = self.coef_since_refresh
        return u * (3 * c * (self.cache.max_sq_norm + 1) + t * (s1 + 2 * z_max) + 2 * d * s1)

    # ---- the trainer protocol ----------------------------------------------------
    def losses(self) -> np.ndarray:
        return self.L

    def gradient(self, rows, q: int) -> gradients.SparseGradient:
        delta = row_loss_gradients(self.scores[rows], self.y[rows], self.loss)
        G = gradients.score_gradients(delta, q)
        return self.tree.gradient(self.model, self.selections, self.X, rows, G)

    def squared_norm(self, g: gradients.SparseGradient) -> float:
        return g.squared_norm()

    def touched_rows(self) -> dict:
        touched, self._touched = self._touched, {}
        return {name: np.concatenate(chunks) for name, chunks in touched.items()}

    def apply(self, eta: float, g: gradients.SparseGradient) -> None:
        """θ ← θ − η g on the tree's entries, then repair the state."""
        flop_count = flops.tree_flops(self.model, g.samples.size, g)
        columns = g.linear_rows
        z_old, linear_flops = self.update_linear(eta, g)
        steps = self.update_tropical(eta, g)
        self.steps_since_refresh += 1
        if self.steps_since_refresh >= self.refresh_every and not self.exact:
            columns, z_old = merge_columns(columns, z_old, *self.refresh_linear())
            linear_flops += 2 * self.X.shape[0] * self.X.shape[1] * self.Z.shape[1]
        N = self.X.shape[0]  # noqa: N806
        count = np.full(N, columns.size, dtype=np.int64)
        idx = np.broadcast_to(columns.astype(np.int64), (N, columns.size))
        Hin, old = self.Z, z_old
        self.work[:] = 0
        for state, entries, step in zip(self.layers, g.tropical, steps, strict=True):
            state.repair(Hin, count, idx, old, entries.rows, entries.cols, step, self.work)
            Hin, count, idx, old = (
                state.H,
                state.changed_count,
                state.changed_idx,
                state.changed_old,
            )
        changed = np.flatnonzero(count)
        row_losses(self.scores, self.y, self.loss, rows=changed, out=self.L)
        self.counters["changed_samples"] += changed.size
        self.flops_last = (
            flop_count
            + linear_flops
            + self.repair_flops()
            + changed.size * loss_flops(self.model.n_classes)
        )

    def repair_flops(self) -> int:
        """FLOPs of the repair kernels: per pass over a layer's outputs 2 per output
        (add, compare), per rescan 2 per input, per swap 3."""
        work = self.work.sum(axis=0)
        for name, value in zip(WORK_NAMES, work, strict=True):
            self.counters[name] += int(value)
        widest_out = max(state.layer.weight.shape[0] for state in self.layers)
        widest_in = max(state.layer.weight.shape[1] for state in self.layers)
        passes = int(2 * work[cpu_repair.TAKEOVER_PASSES])
        return (
            2 * widest_out * passes
            + 2 * int(work[cpu_repair.FOLLOWED])
            + 2 * widest_in * int(work[cpu_repair.RESCANS])
            + 3 * int(work[cpu_repair.SWAPS])
        )

    def update_linear(self, eta, g):
        """Move the linear rows and repair ``Z[:, M]``; returns the previous values of
        those columns (N × |M|) and the FLOPs spent."""
        lin = self.model.layers[0]
        M = g.linear_rows  # noqa: N806
        lin.weight[M] -= eta * g.linear_weight
        lin.bias[M] -= eta * g.linear_bias
        self._touched.setdefault("0.weight", []).append(M)
        self._touched.setdefault("0.bias", []).append(M)
        N, d = self.X.shape  # noqa: N806
        old = np.empty((N, M.size), dtype=self.Z.dtype)
        if self.exact:
            old[:] = self.Z[:, M]
            linear_columns(self.X, lin.weight, lin.bias, M, self.Z)
            return old, 2 * N * d * M.size
        misses = self.cache.misses
        r = np.stack([self.cache.get(int(s)) for s in g.samples]) if M.size else np.empty((0, N))
        coef = np.ascontiguousarray((eta * g.linear_upstream).astype(self.Z.dtype))
        self.coef_since_refresh += float(np.abs(coef).max(initial=0.0))
        cpu_repair.shift_linear_columns(self.Z, M, coef, r, old)
        return old, 2 * N * d * (self.cache.misses - misses) + 3 * N * M.size * g.samples.size

    def update_tropical(self, eta, g):
        """Move the tropical entries (W −= η g); returns the steps ``η g`` per layer."""
        steps = []
        for i, entries in enumerate(g.tropical, start=1):
            step = eta * entries.values
            self.model.layers[i].weight[entries.rows, entries.cols] -= step
            steps.append(step)
            self._touched.setdefault(f"{i}.weight", []).append(entries.rows)
        return steps

    def info(self) -> dict:
        return dict(
            self.counters,
            cache_hits=self.cache.hits,
            exact=self.exact,
            refresh_every=self.refresh_every,
        )


WORK_NAMES = ("followed", "takeover_passes", "swaps", "rescans", "certified")


def merge_columns(columns, z_old, more_columns, more_old):
    """Union of two sets of changed columns with their previous values (sorted);
    where a column is in both, the first set's previous value is kept."""
    keep = np.isin(more_columns, columns, invert=True)
    columns = np.concatenate([columns, more_columns[keep]])
    z_old = np.concatenate([z_old, more_old[:, keep]], axis=1)
    order = np.argsort(columns)
    return columns[order], np.ascontiguousarray(z_old[:, order])
