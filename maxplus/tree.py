"""A sample's short computational tree: the parameters its scores depend on.

Following the selections back from each class score ``s_k`` through every
tropical layer reaches one unit per layer and finally one linear unit ``m``:

.. math:: s_k = C_{k\\lambda_k} + B_{\\lambda_k \\mu_{\\lambda_k}}
          + A_{\\mu_{\\lambda_k}} \\cdot x + b_{\\mu_{\\lambda_k}}

(for an LMM). The union of the ``K`` paths is the tree: at most ``K`` entries per
tropical layer and ``K`` rows of the linear layer, so at most
``2K + K(d + 1)`` parameters for an LMM, whatever the widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import gradients
from .kernels.cpu_losses import row_loss_gradients


@dataclass
class ComputationalTree:
    """The tree of one sample ``x``.

    ``paths[k]`` lists, for class ``k``, the unit reached in each layer from the
    output back to the linear layer: ``[k, λ_k, μ_{λ_k}]`` for an LMM.
    ``scores`` are the sample's class scores.
    """

    model: object
    x: np.ndarray
    scores: np.ndarray
    selections: list
    paths: dict

    @property
    def linear_units(self) -> np.ndarray:
        """Linear units reached by some class (sorted)."""
        return np.unique([path[-1] for path in self.paths.values()])

    def parameters(self) -> dict:
        """``{parameter name: sorted indices touched}``: rows for the linear layer,
        ``(row, col)`` pairs for tropical layers."""
        out = {"0.weight": self.linear_units, "0.bias": self.linear_units}
        for i in range(1, len(self.model.layers)):
            pairs = {(path[-i - 1], path[-i]) for path in self.paths.values()}
            out[f"{i}.weight"] = sorted(pairs)
        return out

    def n_parameters(self) -> int:
        """Number of parameters in the tree (each linear row counts d + 1)."""
        p = self.parameters()
        d = self.model.n_features
        return len(p["0.weight"]) * (d + 1) + sum(len(v) for k, v in p.items() if k[0] != "0")

    def gradient(self, label: int, loss: str = "cross_entropy") -> gradients.SparseGradient:
        """The subgradient of this sample's loss: the tree with its weights."""
        delta = row_loss_gradients(self.scores[None, :], np.array([label]), loss)
        return gradients.TreeBackward(self.model).gradient(
            self.model, self.selections, self.x[None, :], np.array([0]), delta
        )


def computational_tree(model, x, classes=None) -> ComputationalTree:
    """The tree of sample ``x`` (shape (d,)) for ``classes`` (default: all)."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"x must be one sample of shape ({model.n_features},), got {x.shape}")
    forward = model.forward(x[None, :])
    classes = range(model.n_classes) if classes is None else classes
    paths = {}
    for k in classes:
        if not 0 <= k < model.n_classes:
            raise ValueError(f"class {k} outside 0..{model.n_classes - 1}")
        path = [int(k)]
        for i in range(len(model.layers) - 1, 0, -1):
            path.append(int(forward.selections[i][0, path[-1]]))
        paths[int(k)] = path
    return ComputationalTree(
        model, model.check_input(x[None, :])[0], forward.scores[0], forward.selections, paths
    )
