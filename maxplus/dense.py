"""The dense trainer: a full forward and a full backward pass over all samples per step.

This is the straightforward implementation of the subgradient step (what
autograd computes), kept as the reference the sparse trainer must match.
"""

from __future__ import annotations

import numpy as np

from . import flops, gradients
from .kernels.cpu_losses import row_loss_gradients, row_losses


class DenseTrainer:
    """Recomputes everything from the parameters at every step."""

    method = "dense"

    def __init__(self, model, X, y, loss: str):  # noqa: N803
        self.model, self.X, self.y, self.loss = model, X, y, loss
        self.forward = None
        self.flops_last = 0

    def losses(self, q=None) -> np.ndarray:
        """Per-sample losses at the current parameters (a full forward pass); ``q``
        (how many of the largest losses the caller needs) is not used here."""
        self.forward = self.model.forward_validated(self.X)
        self.flops_last = flops.forward_flops(self.model, self.X.shape[0])
        return row_losses(self.forward.scores, self.y, self.loss)

    def gradient(self, rows, q: int) -> dict:
        """Full backward pass with the score gradient zero outside ``rows``."""
        S = self.forward.scores
        G = np.zeros_like(S)
        G[rows] = gradients.score_gradients(row_loss_gradients(S[rows], self.y[rows], self.loss), q)
        return gradients.dense_gradient(self.model, self.forward, self.X, G)

    def squared_norm(self, grads: dict) -> float:
        return gradients.dense_squared_norm(grads)

    def apply(self, eta: float, grads: dict) -> None:
        """θ ← θ − η g on every parameter."""
        for name, param in self.model.named_parameters().items():
            param -= eta * grads[name]
        self.flops_last = flops.dense_step_flops(self.model, self.X.shape[0])

    def touched_rows(self):
        """Rows changed by the last :meth:`apply` (None: possibly all)."""
        return None
