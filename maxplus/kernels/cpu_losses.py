"""numba kernels for per-sample losses, row by row with a fixed operation order
(the same bits whichever subset of rows is evaluated)."""

from __future__ import annotations

import numba as nb
import numpy as np

CROSS_ENTROPY, HINGE = 0, 1
LOSS_CODES = {"cross_entropy": CROSS_ENTROPY, "hinge": HINGE}


@nb.njit(cache=True, inline="always")
def _row_max(s):
    top = s[0]
    for k in range(1, s.shape[0]):
        if s[k] > top:
            top = s[k]
    return top


@nb.njit(cache=True, inline="always")
def _hinge_argmax(s, label):
    best = s[0] + (0.0 if label == 0 else 1.0)
    arg = 0
    for k in range(1, s.shape[0]):
        v = s[k] + (0.0 if label == k else 1.0)
        if v > best:
            best = v
            arg = k
    return best, arg


@nb.njit(cache=True)
def loss_of_row(s, label, code):
    """One sample's loss from its scores ``s``."""
    if code == CROSS_ENTROPY:
        top = _row_max(s)
        acc = 0.0
        for k in range(s.shape[0]):
            acc += np.exp(s[k] - top)
        return np.log(acc) + top - s[label]
    best, _ = _hinge_argmax(s, label)
    return best - s[label]


@nb.njit(parallel=True, cache=True)
def losses_of_rows(S, y, code, rows, out):  # noqa: N803
    """``out[rows[r]] = loss(S[rows[r]], y[rows[r]])``."""
    for r in nb.prange(rows.shape[0]):
        n = rows[r]
        out[n] = loss_of_row(S[n], y[n], code)


@nb.njit(cache=True)
def losses_of_changed(S, y, code, batch, count, out):  # noqa: N803
    """``out[n] = loss(S[n], y[n])`` for ``n = batch[b]`` where ``count[b] > 0`` (the
    samples whose scores changed); returns how many."""
    changed = 0
    for b in range(batch.shape[0]):
        if count[b] > 0:
            n = batch[b]
            out[n] = loss_of_row(S[n], y[n], code)
            changed += 1
    return changed


@nb.njit(cache=True)
def gradient_of_row(s, label, code, out):
    """``out = ∂loss/∂s`` for one sample."""
    if code == CROSS_ENTROPY:
        top = _row_max(s)
        acc = 0.0
        for k in range(s.shape[0]):
            out[k] = np.exp(s[k] - top)
            acc += out[k]
        for k in range(s.shape[0]):
            out[k] = out[k] / acc
    else:
        _, arg = _hinge_argmax(s, label)
        for k in range(s.shape[0]):
            out[k] = 0.0
        out[arg] = 1.0
    out[label] -= 1.0


@nb.njit(cache=True)
def _gradients(S, y, code, out):  # noqa: N803
    for n in range(S.shape[0]):
        gradient_of_row(S[n], y[n], code, out[n])


def row_losses(S, y, loss: str, rows=None, out=None) -> np.ndarray:  # noqa: N803
    """Per-sample losses of scores ``S`` (float64), for all rows or the given ``rows``."""
    if out is None:
        out = np.empty(S.shape[0], dtype=np.float64)
    if rows is None:
        rows = np.arange(S.shape[0])
    losses_of_rows(S, y, LOSS_CODES[loss], rows, out)
    return out


def row_loss_gradients(S_rows, y_rows, loss: str) -> np.ndarray:  # noqa: N803
    """∂loss/∂scores for each given row, in the scores' dtype."""
    out = np.empty_like(S_rows)
    _gradients(np.ascontiguousarray(S_rows), y_rows, LOSS_CODES[loss], out)
    return out
