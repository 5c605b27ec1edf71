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
from .kernels.cpu_linear import linear_columns, linear_forward
from .kernels.cpu_losses import row_loss_gradients, row_losses
from .kernels.cpu_products import tropical_product_top2
from .losses import loss_flops

#: Bytes of cached products ``X x_s`` kept (least recently used dropped first).
CACHE_BYTES = 256 * 2**20


class ProductCache:
    """``r_s = X x_s`` for recently selected samples ``s`` (an LRU cache)."""

    def __init__(self, X, max_bytes=CACHE_BYTES):  # noqa: N803
        self.X = X
        self.entries = OrderedDict()
        self.capacity = max(1, max_bytes // max(1, X.shape[0] * X.itemsize))
        self.hits = self.misses = 0

    def get(self, s: int):
        r = self.entries.get(s)
        if r is None:
            self.misses += 1
            r = self.X @ self.X[s]
            self.entries[s] = r
            if len(self.entries) > self.capacity:
                self.entries.popitem(last=False)
        else:
            self.hits += 1
            self.entries.move_to_end(s)
        return r


class LayerState:
    """Outputs ``H``, selections ``S`` and runner bounds ``R`` of one tropical layer."""

    def __init__(self, layer, Hin):  # noqa: N803
        self.layer = layer
        self.maximize = layer.maximize
        self.WT = np.ascontiguousarray(layer.weight.T)
        N, n_out = Hin.shape[0], layer.weight.shape[0]  # noqa: N806
        self.H = np.empty((N, n_out), dtype=Hin.dtype)
        self.S = np.empty((N, n_out), dtype=np.int32)
        self.R = np.empty((N, n_out), dtype=Hin.dtype)
        self.recompute(Hin)
        self.changed_count = np.zeros(N, dtype=np.int64)
        self.changed_idx = np.empty((N, n_out), dtype=np.int64)
        self.changed_old = np.empty((N, n_out), dtype=Hin.dtype)  # previous output values

    def recompute(self, Hin) -> None:  # noqa: N803
        tropical_product_top2(Hin, self.WT, self.H, self.S, self.R, self.maximize)


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
        self.counters = {"rescans": 0, "compared": 0, "refreshes": 0, "changed_samples": 0}
        self._touched = {}
        self.refresh()

    # ---- state -----------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute the whole state from the parameters (as a forward pass does)."""
        lin = self.model.layers[0]
        N = self.X.shape[0]  # noqa: N806
        self.Z = np.empty((N, lin.weight.shape[0]), dtype=self.model.dtype)
        linear_forward(self.X, np.ascontiguousarray(lin.weight.T), lin.bias, self.Z)
        self.layers = []
        Hin = self.Z
        for layer in self.model.layers[1:]:
            self.layers.append(LayerState(layer, Hin))
            Hin = self.layers[-1].H
        self.L = row_losses(self.scores, self.y, self.loss)
        self.work = np.zeros((N, 2), dtype=np.int64)
        self.steps_since_refresh = 0
        self.counters["refreshes"] += 1

    @property
    def scores(self):
        return self.layers[-1].H

    @property
    def selections(self):
        return [None] + [state.S for state in self.layers]

    def state_values(self):
        """``[Z, H_1, ..., H_L]``, comparable with ``model.forward(X).values``."""
        return [self.Z] + [state.H for state in self.layers]

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
        old, linear_flops = self.update_linear(eta, g)
        flop_count += linear_flops
        weight_changes = self.update_tropical(eta, g)
        if self.steps_since_refresh + 1 >= self.refresh_every and not self.exact:
            self.refresh()
            self.flops_last = flop_count + flops.forward_flops(self.model, self.X.shape[0])
            return
        self.steps_since_refresh += 1
        self.work[:] = 0
        N = self.X.shape[0]  # noqa: N806
        columns = g.linear_rows
        count = np.full(N, columns.size, dtype=np.int64)
        idx = np.broadcast_to(columns.astype(np.int64), (N, columns.size))
        Hin = self.Z
        for state, (w_rows, w_cols) in zip(self.layers, weight_changes, strict=True):
            cpu_repair.repair_layer(
                Hin,
                state.layer.weight,
                state.WT,
                state.H,
                state.S,
                state.R,
                state.maximize,
                count,
                idx,
                old,
                w_rows,
                w_cols,
                state.changed_count,
                state.changed_idx,
                state.changed_old,
                self.work,
            )
            Hin, count, idx, old = (
                state.H,
                state.changed_count,
                state.changed_idx,
                state.changed_old,
            )
        changed = np.flatnonzero(count)
        row_losses(self.scores, self.y, self.loss, rows=changed, out=self.L)
        compared, rescans = (int(v) for v in self.work.sum(axis=0))
        self.counters["compared"] += compared
        self.counters["rescans"] += rescans
        self.counters["changed_samples"] += changed.size
        widths = [state.layer.weight.shape[1] for state in self.layers]
        rescan_flops = 2 * rescans * max(widths)
        self.flops_last = (
            flop_count
            + 2 * compared
            + rescan_flops
            + changed.size * loss_flops(self.model.n_classes)
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
        cpu_repair.shift_linear_columns(self.Z, M, coef, r, old)
        return old, 2 * N * d * (self.cache.misses - misses) + 3 * N * M.size * g.samples.size

    def update_tropical(self, eta, g):
        """Move the tropical entries; returns per layer the changed (rows, cols)."""
        changes = []
        for i, (state, entries) in enumerate(zip(self.layers, g.tropical, strict=True), start=1):
            W = state.layer.weight
            step = eta * entries.values
            W[entries.rows, entries.cols] -= step
            state.WT[entries.cols, entries.rows] = W[entries.rows, entries.cols]
            changes.append((entries.rows, entries.cols))
            self._touched.setdefault(f"{i}.weight", []).append(entries.rows)
        return changes

    def info(self) -> dict:
        return dict(
            self.counters,
            cache_hits=self.cache.hits,
            exact=self.exact,
            refresh_every=self.refresh_every,
        )
