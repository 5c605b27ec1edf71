"""Counted floating-point operations (an add, a multiply or a comparison each count 1).

Dense step for a network with linear layer ``d → h1`` and tropical layers
``h_{i-1} → h_i`` over N samples:

.. math::

    \\underbrace{2Ndh_1 + Nh_1}_{\\text{linear forward}}
    + \\sum_i \\underbrace{2N h_{i-1} h_i}_{\\text{add + compare}}
    + \\underbrace{5NK}_{\\text{losses}}
    + \\sum_i \\underbrace{2N h_i}_{\\text{tropical backward}}
    + \\underbrace{2Ndh_1 + Nh_1}_{\\text{linear backward}}
    + \\underbrace{2P}_{\\text{update}}.

The sparse trainer counts what its kernels actually did (see
:class:`maxplus.sparse.SparseTrainer`).
"""

from __future__ import annotations

from .losses import loss_flops


def layer_widths(model):
    """``[d, h1, h2, ..., K]``."""
    return [model.n_features] + [layer.shape[0] for layer in model.layers]


def linear_forward_flops(model, n_samples: int, columns: int | None = None) -> int:
    """``Z = X Aᵀ + b``: ``2·N·d·h1 + N·h1`` (``columns`` of ``Z`` only: ``h1`` → that)."""
    w = layer_widths(model)
    h = w[1] if columns is None else columns
    return 2 * n_samples * w[0] * h + n_samples * h


def forward_flops(model, n_samples: int) -> int:
    """The linear layer, every tropical layer (an add and a compare per candidate) and
    the losses."""
    w = layer_widths(model)
    total = linear_forward_flops(model, n_samples)
    total += sum(2 * n_samples * a * b for a, b in zip(w[1:-1], w[2:], strict=True))
    return total + n_samples * loss_flops(w[-1])


def dense_step_flops(model, n_samples: int) -> int:
    """Forward, loss, full backward and update over ``n_samples`` samples."""
    w = layer_widths(model)
    backward = sum(2 * n_samples * h for h in w[2:])
    backward += 2 * n_samples * w[0] * w[1] + n_samples * w[1]
    return forward_flops(model, n_samples) + backward + 2 * model.n_parameters


def tree_flops(model, n_selected: int, gradient) -> int:
    """Backward through the selected samples' trees and the sparse update."""
    w = layer_widths(model)
    tropical = sum(2 * n_selected * h for h in w[2:])
    linear = 2 * gradient.linear_weight.size + gradient.linear_bias.size
    return tropical + linear + 2 * gradient.nnz
