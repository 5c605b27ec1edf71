"""The trainers on the GPU: the dense and the sparse subgradient step on CuPy arrays.

Both follow the protocol of the CPU trainers (:mod:`maxplus.dense`,
:mod:`maxplus.sparse`) that :func:`maxplus.training.run` drives, and produce the same
iterates. They are written against a *kernels* object: :class:`maxplus.kernels.gpu.
CudaKernels` (CUDA launchers on CuPy arrays) or :class:`maxplus.kernels.gpu_twin.
TwinKernels` (their CPU twins on NumPy arrays, same methods), so the whole GPU
algorithm runs, and is tested, on machines without a GPU.

**Dense.** Each step: the forward pass (fixed-order linear kernel, tiled tropical
product), every loss, then a full backward pass over all N samples with the score
gradient zero outside the selected rows, and ``θ ← θ − η g`` on every parameter.

**Sparse.** The forward state of every sample stays on the device: the linear
outputs ``Z``, and per tropical layer the outputs ``H``, selections ``S`` and runner
bounds ``R``, and the losses. Per step only small arrays cross the bus:

1. *gradient*: one kernel gathers the selected samples' scores, selections and
   inputs, one copy brings them to the host (O(q·(K + Σh + d)) bytes), where the
   tree gradient is built (the CPU's :class:`maxplus.gradients.TreeBackward`);
2. *apply*: one copy takes the tree's entries to the device, where kernels update
   the touched parameters, repair the linear columns ``Z[:, M]`` (cached mode:
   ``Z[:, m] -= Σ_s coef[s, m] (X x_s + 1)`` with ``X x_s`` cached on the device;
   exact mode: the columns recomputed by the fixed-order kernel, bitwise a fresh
   forward pass), repair each tropical layer for all samples (one group of lanes
   per sample, see ``repair_layer`` in ``tropical_training.cu``), and recompute the
   losses of the samples whose scores changed; the work counters come back
   asynchronously.

Sums run in the same order in both trainers (and as on the CPU), so the gradients,
hence the iterates, agree bitwise.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from . import flops, gradients
from .kernels.cpu_losses import LOSS_CODES, row_loss_gradients
from .losses import loss_flops

#: Bytes of cached products ``X x_s`` kept on the device (least recently used dropped first).
CACHE_BYTES = 256 * 2**20

#: The cached linear repair serves at most this many selected samples per step;
#: beyond, the changed columns are recomputed (N·d·|M| work instead of N·|M|·q).
CACHED_MAX_SAMPLES = 32


def make_gpu_trainer(method, model, X, y, loss, *, refresh_every=100, exact=False, kernels=None):  # noqa: N803
    """The GPU trainer for ``method`` (``"sparse"`` or ``"dense"``).

    ``kernels``: a :class:`maxplus.kernels.gpu.CudaKernels` (default, for CuPy
    models) or a :class:`maxplus.kernels.gpu_twin.TwinKernels` (NumPy models: the
    same algorithm on the CPU twins of the kernels).
    """
    if kernels is None:
        from .kernels.gpu import CudaKernels

        kernels = CudaKernels()
    arrays = {"X": X, "y": y, **model.named_parameters()}
    for name, a in arrays.items():
        if not kernels.is_array(a):
            raise TypeError(
                f"{name} is a {type(a).__module__}.{type(a).__name__}; the {kernels.name} "
                "kernels need arrays of their own backend"
            )
    if method == "dense":
        return GpuDenseTrainer(model, X, y, loss, kernels)
    if method == "sparse":
        return GpuSparseTrainer(
            model, X, y, loss, kernels, refresh_every=refresh_every, exact=exact
        )
    raise ValueError(f"method must be 'sparse' or 'dense', got {method!r}")


class TropicalState:
    """A tropical layer's forward state for all samples, and the lists of changed
    outputs that its repair hands to the next layer."""

    def __init__(self, xp, layer, n_samples: int, n_in: int):
        n_out = layer.weight.shape[0]
        dtype = layer.weight.dtype
        self.layer = layer
        self.maximize = layer.maximize
        self.WT = xp.empty((n_in, n_out), dtype=dtype)
        self.H = xp.empty((n_samples, n_out), dtype=dtype)
        self.S = xp.empty((n_samples, n_out), dtype=np.int32)
        self.R = xp.empty((n_samples, n_out), dtype=dtype)
        self.co_count = xp.zeros(n_samples, dtype=np.int32)
        self.co_idx = xp.empty((n_samples, n_out), dtype=np.int32)
        self.co_old = xp.empty((n_samples, n_out), dtype=dtype)

    def transpose_weight(self) -> None:
        self.WT[...] = self.layer.weight.T

    def changes(self, n_out: int):
        from .kernels.gpu import Changes

        return Changes(self.co_count, 1, self.co_idx, n_out, self.co_old, n_out)


def host_shapes(model):
    """A stand-in for ``model`` with host arrays of its parameter shapes (no data), for
    :class:`maxplus.gradients.TreeBackward`, which reads only the shapes."""

    class Layer:
        def __init__(self, weight):
            self.weight = np.broadcast_to(np.zeros((), dtype=model.dtype), weight.shape)

    class Shapes:
        layers = [Layer(layer.weight) for layer in model.layers]

    return Shapes()


# --------------------------------------------------------------------------------- dense


class GpuForwardState:
    """The device arrays both GPU trainers keep: ``Z`` (N, h1), one
    :class:`TropicalState` per tropical layer, and the per-sample losses ``L``."""

    def __init__(self, model, X, y, loss: str, kernels):  # noqa: N803
        self.model, self.X, self.y, self.loss, self.k = model, X, y, loss, kernels
        xp = kernels.xp
        self.y_host = kernels.to_host(y)
        self.code = LOSS_CODES[loss]
        N = X.shape[0]  # noqa: N806
        lin = model.layers[0]
        self.Z = xp.empty((N, lin.weight.shape[0]), dtype=model.dtype)
        self.layers = []
        n_in = lin.weight.shape[0]
        for layer in model.layers[1:]:
            self.layers.append(TropicalState(xp, layer, N, n_in))
            n_in = layer.weight.shape[0]
        self.L = xp.empty(N, dtype=np.float64)

    @property
    def scores(self):
        return self.layers[-1].H

    def forward(self, with_runners: bool) -> None:
        """``Z``, every tropical layer's ``H`` and ``S`` (and the runner bounds ``R``
        when ``with_runners``), and the losses ``L``, from the current parameters."""
        k = self.k
        lin = self.model.layers[0]
        k.linear(self.X, lin.weight, lin.bias, self.Z)
        Hin = self.Z  # noqa: N806
        for state in self.layers:
            state.transpose_weight()
            if with_runners:
                k.tropical_top2(Hin, state.WT, state.H, state.S, state.R, state.maximize)
            else:
                k.tropical_product(Hin, state.WT, state.H, state.S, state.maximize)
            Hin = state.H  # noqa: N806
        k.row_losses(self.scores, self.y, self.code, self.L)


class GpuDenseTrainer(GpuForwardState):
    """Full forward and full backward pass over all samples at every step."""

    method = "dense"

    def __init__(self, model, X, y, loss: str, kernels):  # noqa: N803
        super().__init__(model, X, y, loss, kernels)
        self.flops_last = 0

    def losses(self, q=None):
        """Per-sample losses at the current parameters (a full forward pass); ``q``
        is not used (every loss is exact)."""
        self.forward(with_runners=False)
        self.flops_last = flops.forward_flops(self.model, self.X.shape[0])
        return self.L

    def gradient(self, rows, q: int) -> dict:
        """Full backward pass with the score gradient zero outside ``rows``."""
        k, xp = self.k, self.k.xp
        host_rows, (scores,) = k.gather_rows(rows, [self.scores])
        delta = row_loss_gradients(scores, self.y_host[host_rows], self.loss)
        G = xp.zeros_like(self.scores)  # noqa: N806
        G[xp.asarray(host_rows)] = xp.asarray(gradients.score_gradients(delta, q))
        grads = {}
        for i in range(len(self.layers), 0, -1):
            state = self.layers[i - 1]
            W = state.layer.weight  # noqa: N806
            grads[f"{i}.weight"] = xp.empty_like(W)
            k.tropical_backward_weights(G, state.S, grads[f"{i}.weight"])
            G_in = xp.empty((G.shape[0], W.shape[1]), dtype=G.dtype)  # noqa: N806
            k.tropical_backward_inputs(G, state.S, G_in)
            G = G_in  # noqa: N806
        lin = self.model.layers[0]
        grads["0.weight"] = xp.empty_like(lin.weight)
        grads["0.bias"] = xp.empty_like(lin.bias)
        k.linear_backward(G, self.X, grads["0.weight"], grads["0.bias"])
        return {name: grads[name] for name in self.model.named_parameters()}

    def squared_norm(self, grads: dict) -> float:
        """‖g‖², on the host in the CPU trainers' order (so it agrees bitwise)."""
        return gradients.dense_squared_norm({n: self.k.to_host(g) for n, g in grads.items()})

    def apply(self, eta: float, grads: dict) -> None:
        """θ ← θ − η g on every parameter."""
        for name, param in self.model.named_parameters().items():
            self.k.scale_subtract(param, grads[name], eta)
        self.flops_last = flops.dense_step_flops(self.model, self.X.shape[0])

    def touched_rows(self):
        return None

    def info(self) -> dict:
        return {"kernels": self.k.name}


# -------------------------------------------------------------------------------- sparse


class ProductCache:
    """``r_s = X x_s`` for recently selected samples ``s``, as rows of one device array
    (slots, least recently used dropped first), computed by the fixed-order kernel."""

    def __init__(self, kernels, X, max_bytes=CACHE_BYTES):  # noqa: N803
        self.k, self.X = kernels, X
        N = X.shape[0]  # noqa: N806
        self.capacity = int(max(1, min(N, max_bytes // max(1, N * X.itemsize))))
        self.store = kernels.xp.empty((min(self.capacity, 8), N), dtype=X.dtype)
        self.slot_of = OrderedDict()
        self.hits = self.misses = 0

    def slots(self, samples) -> np.ndarray | None:
        """Slots (int32) holding ``X x_s`` for ``samples``, computing the missing
        ones; None when they do not fit in the cache together."""
        if len(samples) > self.capacity:
            return None
        out = np.empty(len(samples), dtype=np.int32)
        for t, s in enumerate(int(s) for s in samples):
            slot = self.slot_of.get(s)
            if slot is not None:
                self.hits += 1
                self.slot_of.move_to_end(s)
            else:
                self.misses += 1
                slot = self.free_slot()
                row = self.store[slot].reshape(-1, 1)
                self.k.linear(self.X, self.X[s : s + 1], None, row)
                self.slot_of[s] = slot
            out[t] = slot
        return out

    def free_slot(self) -> int:
        used = len(self.slot_of)
        if used < self.store.shape[0]:
            return used
        if used < self.capacity:  # grow the store (doubling, up to the capacity)
            xp = self.k.xp
            grown = xp.empty((min(self.capacity, 2 * used), self.store.shape[1]), self.store.dtype)
            grown[:used] = self.store
            self.store = grown
            return used
        _, slot = self.slot_of.popitem(last=False)
        return slot


class GpuSparseTrainer(GpuForwardState):
    """Tree subgradients, and the forward state of all samples repaired on the device."""

    method = "sparse"

    def __init__(self, model, X, y, loss: str, kernels, *, refresh_every=100, exact=False):  # noqa: N803
        super().__init__(model, X, y, loss, kernels)
        self.refresh_every, self.exact = refresh_every, exact
        xp = kernels.xp
        self.old = xp.empty(0, dtype=model.dtype)  # previous values of changed linear columns
        self.cache = ProductCache(kernels, X)
        self.tree = gradients.TreeBackward(host_shapes(model))
        self.shapes = host_shapes(model)
        self.gather = [self.scores, *(state.S for state in self.layers), X]
        # Per layer: candidates processed, rescans, samples with a changed output.
        self.device_counters = xp.zeros(3 * len(self.layers), dtype=kernels.counter_dtype)
        self.counts_seen = np.zeros(3 * len(self.layers), dtype=np.int64)
        # each layer's inputs: what one of its rescans reads (for the FLOP count)
        self.layer_inputs = np.array([state.layer.weight.shape[1] for state in self.layers])
        self.counters = {"rescans": 0, "compared": 0, "refreshes": 0, "changed_samples": 0}
        self.steps_since_refresh = 0
        self._flops = 0
        self._pending = None
        self._touched = {}
        self.refresh()

    # ---- state -----------------------------------------------------------------
    @property
    def selections(self):
        return [None] + [state.S for state in self.layers]

    def state_values(self):
        """``[Z, H_1, ..., H_L]``, comparable with ``model.forward(X).values``."""
        return [self.Z] + [state.H for state in self.layers]

    def refresh(self) -> None:
        """Recompute the whole state from the parameters (as a forward pass does)."""
        self.forward(with_runners=True)
        self.steps_since_refresh = 0
        self.counters["refreshes"] += 1

    # ---- the trainer protocol ----------------------------------------------------
    def losses(self, q=None):
        """Every sample's loss, exact (the GPU repairs all samples each step)."""
        return self.L

    def gradient(self, rows, q: int) -> gradients.SparseGradient:
        """The selected samples' trees, built on the host from their gathered rows."""
        host_rows, parts = self.k.gather_rows(rows, self.gather)
        scores, *selections, X_rows = parts  # noqa: N806
        delta = row_loss_gradients(scores, self.y_host[host_rows], self.loss)
        G = gradients.score_gradients(delta, q)  # noqa: N806
        local = np.arange(host_rows.size)
        g = self.tree.gradient(self.shapes, [None, *selections], X_rows, local, G)
        g.samples = host_rows
        return g

    def squared_norm(self, g: gradients.SparseGradient) -> float:
        return g.squared_norm()

    def touched_rows(self) -> dict:
        touched, self._touched = self._touched, {}
        return {name: np.concatenate(chunks) for name, chunks in touched.items()}

    @property
    def flops_last(self) -> int:
        """FLOPs of the last step (waits for its work counters)."""
        if self._pending is not None:
            fetched, base = self._pending
            self._pending = None
            now = fetched.result().astype(np.int64)
            step, self.counts_seen = now - self.counts_seen, now
            compared, rescans = int(step[0::3].sum()), step[1::3]  # rescans per layer
            changed = int(step[-1])
            self.counters["compared"] += compared
            self.counters["rescans"] += int(rescans.sum())
            self.counters["changed_samples"] += changed
            self._flops = (
                base
                + 2 * compared
                + 2 * int(rescans @ self.layer_inputs)
                + changed * loss_flops(self.model.n_classes)
            )
        return self._flops

    def apply(self, eta: float, g: gradients.SparseGradient) -> None:
        """θ ← θ − η g on the tree's entries, then repair the state on the device."""
        k = self.k
        dtype = self.model.dtype
        lin = self.model.layers[0]
        N, d = self.X.shape  # noqa: N806
        M = g.linear_rows  # noqa: N806
        q = int(g.samples.size)
        refresh_due = not self.exact and self.steps_since_refresh + 1 >= self.refresh_every
        slots = None
        if M.size and not self.exact and not refresh_due and q <= CACHED_MAX_SAMPLES:
            misses = self.cache.misses
            slots = self.cache.slots(g.samples)
            cache_flops = 2 * N * d * (self.cache.misses - misses)
        coef = (eta * g.linear_upstream).astype(dtype)
        host = [
            M.astype(np.int32),
            np.array([M.size], dtype=np.int32),
            np.asarray(g.linear_weight, dtype=dtype),
            np.asarray(g.linear_bias, dtype=dtype),
            coef,
            np.zeros(0, np.int32) if slots is None else slots,
        ]
        for entries in g.tropical:
            host += [
                entries.rows.astype(np.int32),
                entries.cols.astype(np.int32),
                np.asarray(entries.values, dtype=dtype),
            ]
        cols, count, weight_rows, bias_rows, coef_dev, slots_dev, *entries_dev = k.upload(host)

        # the parameters
        k.update_rows(lin.weight, lin.bias, cols, weight_rows, bias_rows, eta)
        self._touched.setdefault("0.weight", []).append(M)
        self._touched.setdefault("0.bias", []).append(M)
        changes = []
        for i, (state, entries) in enumerate(zip(self.layers, g.tropical, strict=True)):
            rows_dev, cols_dev, values_dev = entries_dev[3 * i : 3 * i + 3]
            k.update_entries(state.layer.weight, state.WT, rows_dev, cols_dev, values_dev, eta)
            self._touched.setdefault(f"{i + 1}.weight", []).append(entries.rows)
            changes.append((rows_dev, cols_dev))
        flop_count = flops.tree_flops(self.model, q, g)
        if refresh_due:
            self.refresh()
            self._pending = None
            self._flops = flop_count + flops.forward_flops(self.model, N)
            return
        self.steps_since_refresh += 1

        # the linear columns
        old = self.old_columns(N, M.size)
        if M.size and slots is not None:
            k.shift_columns(self.Z, cols, coef_dev, self.cache.store, slots_dev, old)
            flop_count += cache_flops + 3 * N * M.size * q
        elif M.size:
            k.linear(self.X, lin.weight, lin.bias, self.Z, cols=cols, old=old)
            flop_count += 2 * N * d * M.size

        # the tropical layers, then the losses
        from .kernels.gpu import Changes

        change = Changes(count, 0, cols, 0, old, M.size)
        Hin = self.Z  # noqa: N806
        for i, (state, (w_rows, w_cols)) in enumerate(zip(self.layers, changes, strict=True)):
            k.repair_layer(
                Hin,
                state.layer.weight,
                state.WT,
                state.H,
                state.S,
                state.R,
                state.maximize,
                change,
                w_rows,
                w_cols,
                state.co_count,
                state.co_idx,
                state.co_old,
                self.device_counters[3 * i : 3 * i + 3],
            )
            change = state.changes(state.H.shape[1])
            Hin = state.H  # noqa: N806
        k.row_losses(self.scores, self.y, self.code, self.L, changed=self.layers[-1].co_count)
        self._pending = (k.fetch(self.device_counters), flop_count)

    def old_columns(self, n_samples: int, width: int):
        """An N × width buffer for the previous values of the changed linear columns."""
        size = n_samples * width
        if self.old.size < size:
            self.old = self.k.xp.empty(2 * size, dtype=self.model.dtype)
        return self.old[:size].reshape(n_samples, width)

    def info(self) -> dict:
        self.flops_last  # noqa: B018 - settles the last step's counters
        return dict(
            self.counters,
            cache_hits=self.cache.hits,
            cache_misses=self.cache.misses,
            exact=self.exact,
            refresh_every=self.refresh_every,
            kernels=self.k.name,
        )
