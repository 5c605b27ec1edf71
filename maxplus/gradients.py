"""Subgradients of the objective: dense backpropagation and short computational trees.

For selected samples with upstream score gradients ``G`` (one row per sample,
the loss gradient times the objective's weight), a tropical layer passes each
output's gradient to the one input it selected:

.. math:: \\frac{\\partial F}{\\partial W_{j, S_{nj}}} \\mathrel{+}= G_{nj}, \\qquad
          G^{\\text{in}}_{n, S_{nj}} \\mathrel{+}= G_{nj},

and the linear layer gives ``∂F/∂W = Gᵀ X``, ``∂F/∂b = Gᵀ 1``. A sample's tree
reaches at most ``K`` entries per tropical layer and ``K`` rows of the linear
layer, whatever the widths: at most ``2K + K(d+1)`` non-zeros for an LMM.

:func:`dense_gradient` does the full backward pass over every sample (what
autograd does); :func:`tree_gradient` walks the selected samples' trees only.
Both accumulate in the same order, so they agree bitwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernels import cpu_backward as kb


@dataclass
class TropicalEntries:
    """Non-zero entries of one tropical layer's weight gradient (row-major order)."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray


@dataclass
class SparseGradient:
    """The subgradient restricted to the selected samples' trees.

    ``linear_rows`` (sorted) are the linear units reached; ``linear_weight``
    (|M| × d) and ``linear_bias`` (|M|,) their gradient rows. ``tropical[i]`` holds
    the entries of tropical layer ``i + 1``. ``samples`` are the selected samples and
    ``linear_upstream`` (q × |M|) their gradients at the linear outputs, so that
    ``linear_weight = linear_upstreamᵀ X[samples]``.
    """

    linear_rows: np.ndarray
    linear_weight: np.ndarray
    linear_bias: np.ndarray
    tropical: list
    samples: np.ndarray
    linear_upstream: np.ndarray

    @property
    def nnz(self) -> int:
        """Number of stored entries (parameters this subgradient touches)."""
        return int(
            self.linear_weight.size
            + self.linear_bias.size
            + sum(t.values.size for t in self.tropical)
        )

    def squared_norm(self) -> float:
        """‖g‖², summed in the parameters' memory order (as :func:`dense_squared_norm`)."""
        total = kb.sum_of_squares(self.linear_weight) + kb.sum_of_squares(self.linear_bias)
        for entries in self.tropical:
            total += kb.sum_of_squares(entries.values)
        return float(total)

    def to_dense(self, model) -> dict:
        """The same gradient as full arrays named like ``model.named_parameters()``."""
        dense = {name: np.zeros_like(p) for name, p in model.named_parameters().items()}
        dense["0.weight"][self.linear_rows] = self.linear_weight
        dense["0.bias"][self.linear_rows] = self.linear_bias
        for i, entries in enumerate(self.tropical, start=1):
            dense[f"{i}.weight"][entries.rows, entries.cols] = entries.values
        return dense


def score_gradients(delta_rows, q: int):
    """Upstream gradients of the selected samples: ``δ / q`` (exactly ``δ`` when q = 1)."""
    return delta_rows if q == 1 else delta_rows * delta_rows.dtype.type(1.0 / q)


def dense_gradient(model, forward, X, G_scores) -> dict:  # noqa: N803
    """Full backward pass over every sample. ``G_scores`` (N × K) is zero outside the
    selected samples. Returns arrays named like ``model.named_parameters()``."""
    G = G_scores
    grads = {}
    for i in range(len(model.layers) - 1, 0, -1):
        W = model.layers[i].weight
        S = forward.selections[i]
        grads[f"{i}.weight"] = np.empty_like(W)
        kb.tropical_backward_weights(G, S, grads[f"{i}.weight"])
        G_in = np.empty((G.shape[0], W.shape[1]), dtype=G.dtype)
        kb.tropical_backward_inputs(G, S, G_in)
        G = G_in
    lin = model.layers[0]
    grads["0.weight"] = np.empty_like(lin.weight)
    grads["0.bias"] = np.empty_like(lin.bias)
    kb.linear_backward(G, X, grads["0.weight"], grads["0.bias"])
    return {name: grads[name] for name in model.named_parameters()}


def dense_squared_norm(grads: dict) -> float:
    """‖g‖² over the full gradient arrays, in parameter then memory order."""
    return float(sum(kb.sum_of_squares(g) for g in grads.values()))


class TreeBackward:
    """Reusable workspace for :meth:`gradient` (scratch arrays the size of the weights)."""

    def __init__(self, model):
        self.scratch = [np.zeros_like(layer.weight) for layer in model.layers[1:]]
        self.keys = np.empty(0, dtype=np.int64)

    def gradient(self, model, selections, X, rows, G_rows) -> SparseGradient:  # noqa: N803
        """Backpropagate the samples ``rows`` (ascending) with upstream score
        gradients ``G_rows`` (q × K) through their trees only."""
        rows = np.asarray(rows, dtype=np.int64)
        G = np.ascontiguousarray(G_rows)
        tropical = []
        for i in range(len(model.layers) - 1, 0, -1):
            if self.keys.size < G.size:
                self.keys = np.empty(G.size, dtype=np.int64)
            G, r, c, values = kb.tree_backward_tropical(
                rows, G, selections[i], self.scratch[i - 1], self.keys
            )
            tropical.append(TropicalEntries(r, c, values))
        columns, weight_rows, bias_rows, upstream = kb.tree_backward_linear(rows, G, X)
        return SparseGradient(columns, weight_rows, bias_rows, tropical[::-1], rows, upstream)
