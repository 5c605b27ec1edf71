"""Pruning: drop the units that no sample's computational tree reaches.

A tropical unit that no class of any sample selects never reaches a score, and a
linear unit that only unreached tropical units select does not either. Walking the
selections back from the outputs of a network ``Linear → (MaxPlus | MinPlus)+``
over the samples ``X``:

.. math::

    R_L = \\{0, \\dots, K-1\\}, \\qquad
    R_{i-1} = \\{\\, \\sigma_i[n, j] : n \\le N,\\ j \\in R_i \\,\\}
    \\quad (i = L, \\dots, 1),

with ``σ_i`` the selections (argmax/argmin, lowest index on ties) of tropical layer
``i`` and ``R_0`` the reached linear units. :func:`prune` keeps the rows ``R_i`` and
the columns ``R_{i-1}`` of each layer, in their original order.

On every sample of ``X`` the pruned network computes the same scores: each kept
unit still holds the candidate it selected (its value is unchanged), the removed
candidates were not selected, and a removed candidate that tied with the selected
one had a *higher* index (the lowest index wins), so the selection among the kept
candidates, which keep their order, is the same. Predictions on ``X`` are therefore
identical. On other inputs the pruned network may differ (an input could have
selected a removed unit); pruning on the training set removes units that training
could not have moved either, since subgradients flow only along the trees.
"""

from __future__ import annotations

import numpy as np

from . import backend as backends
from .network import LMM, Linear, Sequential, Tropical

__all__ = ["prune", "reached_units"]


def reached_units(model: Sequential, X) -> list[np.ndarray]:  # noqa: N803
    """The units reached by the trees of the samples ``X``, per layer.

    Returns ``[R_0, R_1, ..., R_L]`` as sorted int64 NumPy arrays: ``R_0`` the
    reached linear units, ``R_i`` the reached outputs of tropical layer ``i``
    (``R_L`` all ``K`` classes).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a maxplus Sequential/LMM, got {type(model).__name__}")
    X = model.check_input(X)
    if X.shape[0] == 0:
        raise ValueError("X has no samples: cannot tell which units the data selects")
    forward = model.forward_validated(X)
    n_layers = len(model.layers)
    reached = [None] * n_layers
    reached[-1] = np.arange(model.n_classes, dtype=np.int64)
    for i in range(n_layers - 1, 0, -1):
        selections = backends.to_numpy(forward.selections[i])
        reached[i - 1] = np.unique(selections[:, reached[i]]).astype(np.int64)
    return reached


def prune(model: Sequential, X) -> Sequential:  # noqa: N803
    """A smaller copy of ``model`` without the units that no sample of ``X`` selects.

    Returns a network of the same class (an :class:`maxplus.LMM` stays an LMM), same
    dtype and backend, whose scores on ``X`` equal the original's (see the module
    docstring); ``model`` itself is not modified. Use
    ``model.n_parameters`` before and after to see what was saved.
    """
    reached = reached_units(model, X)
    xp = model.xp
    keep = [xp.asarray(r) for r in reached]
    linear = model.layers[0]
    layers = [Linear(linear.weight[keep[0]].copy(), linear.bias[keep[0]].copy())]
    for i, layer in enumerate(model.layers[1:], start=1):
        weight = layer.weight[keep[i]][:, keep[i - 1]]
        layers.append(Tropical(xp.ascontiguousarray(weight), layer.maximize))
    if isinstance(model, LMM):
        A, b = layers[0].weight, layers[0].bias  # noqa: N806
        return LMM.from_arrays(A, b, layers[1].weight, layers[2].weight, backend=model.backend)
    return Sequential(layers, backend=model.backend)
