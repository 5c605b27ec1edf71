"""Step-size rules of the subgradient method.

* ``"constant"``: :math:`\\eta_t = \\eta`.
* ``"diminishing"``: :math:`\\eta_t = \\eta / \\sqrt{t + 1}` (square-summable steps
  diverge, the classical condition for convergence of the best iterate).
* ``"polyak"``: :math:`\\eta_t = \\eta\\,(F(\\theta_t) - F^\\star) / \\lVert g_t \\rVert^2`
  with a target value :math:`F^\\star` (``target``, default 0) and a relaxation
  :math:`\\eta \\in (0, 2)` (pass ``lr=1`` for Polyak's own rule).

Subgradient methods are not descent methods, so the trainer keeps the best iterate.
"""

from __future__ import annotations

import math

STEP_RULES = ("constant", "diminishing", "polyak")


def step_size(
    rule: str, lr: float, t: int, objective: float, sq_norm: float, target: float
) -> float:
    """The step length for iteration ``t`` (0-based)."""
    if rule == "constant":
        return lr
    if rule == "diminishing":
        return lr / math.sqrt(t + 1)
    if rule == "polyak":
        if sq_norm == 0.0:
            return 0.0
        return lr * max(objective - target, 0.0) / sq_norm
    raise ValueError(f"unknown step {rule!r}; expected one of {STEP_RULES}")
