"""The training objectives: the mean of the ``q`` largest per-sample losses.

.. math:: F_q(\\theta) = \\frac1q \\sum_{i=1}^{q} \\ell_{[i]}(\\theta),
    \\qquad \\ell_{[1]} \\ge \\ell_{[2]} \\ge \\dots

``q = 1`` is the worst sample (``"worst"``), ``q = N`` the ordinary average
(``"mean"``), and ``("topq", q)`` everything between (the CVaR family). Ties
between samples go to the lowest index, so the selected set is well defined.
"""

from __future__ import annotations

import numbers

import numpy as np


def parse_objective(objective, n_samples: int, *, clip: bool = False) -> int:
    """The ``q`` of ``objective`` for ``N = n_samples``.

    ``"worst"`` → 1, ``"mean"`` → N, ``("topq", q)`` → ``q`` for an integer ``q`` in
    1..N, and ``max(1, ⌈q·N⌉)`` for a fraction ``0 < q < 1`` (a float). An integer
    ``q > N`` is an error, or N with ``clip=True`` (for callers whose N varies, such as
    cross-validation folds).
    """
    if isinstance(objective, str):
        if objective == "worst":
            return 1
        if objective == "mean":
            return n_samples
    elif isinstance(objective, tuple | list) and len(objective) == 2 and objective[0] == "topq":
        return _top_count(objective[1], n_samples, clip)
    raise ValueError(f"unknown objective {objective!r}; expected 'worst', 'mean' or ('topq', q)")


def _top_count(q, n_samples: int, clip: bool) -> int:
    """The ``q`` of ``("topq", q)`` as a count in 1..N (see :func:`parse_objective`)."""
    if isinstance(q, bool) or not isinstance(q, numbers.Real):
        raise TypeError(f"objective ('topq', q) needs an integer q or a fraction, got {q!r}")
    if not isinstance(q, numbers.Integral):
        if not 0 < q <= 1:
            raise ValueError(
                f"objective ('topq', q) needs an integer q >= 1 or a fraction 0 < q <= 1, got {q!r}"
            )
        return max(1, min(n_samples, int(np.ceil(q * n_samples - 1e-9))))
    if clip and q > n_samples:
        return n_samples
    if not 1 <= q <= n_samples:
        raise ValueError(f"objective ('topq', q) needs 1 <= q <= N = {n_samples}, got q = {q}")
    return int(q)


def top_q(losses, q: int, xp=np):
    """Indices of the ``q`` largest losses, in increasing index order (lowest index
    wins ties at the boundary)."""
    n = losses.shape[0]
    if q == 1:
        return xp.argmax(losses)[None]
    if q == n:
        return xp.arange(n)
    # CuPy's argsort is always stable and takes no ``stable`` keyword
    order = np.argsort(-losses, kind="stable") if xp is np else xp.argsort(-losses)
    return xp.sort(order[:q])


def objective_value(losses, selected, xp=np):
    """``F = mean(losses[selected])`` in a fixed summation order."""
    if selected.shape[0] == 1:  # the sum of one loss, 0 + ℓ, without a reduction
        return float(losses[selected[0]]) + 0.0
    return float(xp.sum(losses[selected])) / selected.shape[0]
