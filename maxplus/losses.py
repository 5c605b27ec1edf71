"""Per-sample losses of the class scores and their gradients.

Cross-entropy: :math:`\\ell = \\log\\sum_k e^{s_k} - s_y`, with gradient
:math:`\\delta = \\mathrm{softmax}(s) - e_y`.

Multiclass hinge (Crammer & Singer): :math:`\\ell = \\max_k (s_k + [k \\ne y]) - s_y`,
with subgradient :math:`\\delta = e_{k^*} - e_y`, :math:`k^*` the lowest maximiser
(:math:`\\delta = 0` when :math:`k^* = y`).
"""

from __future__ import annotations

import numpy as np

LOSSES = ("cross_entropy", "hinge")


def losses(S, y, loss: str, xp=np):  # noqa: N803
    """Per-sample losses (N,) of scores ``S`` (N, K) and labels ``y`` (N,)."""
    rows = xp.arange(S.shape[0])
    if loss == "cross_entropy":
        top = xp.max(S, axis=1, keepdims=True)
        lse = xp.log(xp.sum(xp.exp(S - top), axis=1)) + top[:, 0]
        return lse - S[rows, y]
    if loss == "hinge":
        margins = S + (xp.arange(S.shape[1])[None, :] != y[:, None]).astype(S.dtype)
        return xp.max(margins, axis=1) - S[rows, y]
    raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")


def loss_gradients(S, y, loss: str, xp=np):  # noqa: N803
    """Gradient of each sample's loss with respect to its scores, shape (N, K)."""
    rows = xp.arange(S.shape[0])
    if loss == "cross_entropy":
        top = xp.max(S, axis=1, keepdims=True)
        e = xp.exp(S - top)
        delta = e / xp.sum(e, axis=1, keepdims=True)
    elif loss == "hinge":
        margins = S + (xp.arange(S.shape[1])[None, :] != y[:, None]).astype(S.dtype)
        delta = xp.zeros_like(S)
        delta[rows, xp.argmax(margins, axis=1)] = 1.0
    else:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    delta[rows, y] -= 1.0
    return delta


def loss_flops(n_classes: int) -> int:
    """Counted FLOPs of one sample's loss: cross-entropy's max, shift, exp, sum, log
    and two subtractions, about ``5K`` (the hinge is cheaper; we count the same)."""
    return 5 * n_classes
