"""numba kernels for per-sample losses, row by row with a fixed operation order
(the same bits whichever subset of rows is evaluated)."""

from __future__ import annotations

import numba as nb
import numpy as np

from .uncounted import uncounted

CROSS_ENTROPY, HINGE = 0, 1
LOSS_CODES = {"cross_entropy": CROSS_ENTROPY, "hinge": HINGE}


@nb.njit(cache=True, inline="always")
def _row_max(S, n):  # noqa: N803
    top = S[n, 0]
    for k in range(1, S.shape[1]):
        if S[n, k] > top:
            top = S[n, k]
    return top


@nb.njit(cache=True, inline="always")
def _hinge_argmax(S, n, label):  # noqa: N803
    best = S[n, 0] + (0.0 if label == 0 else 1.0)
    arg = 0
    for k in range(1, S.shape[1]):
        v = S[n, k] + (0.0 if label == k else 1.0)
        if v > best:
            best = v
            arg = k
    return best, arg


@uncounted
def loss_of_row(S, n, label, code):  # noqa: N803
    """Sample ``n``'s loss from its scores ``S[n]``, read in place: a row view may
    count a reference to ``S`` from every thread of a parallel loop
    (:mod:`maxplus.kernels.uncounted`)."""
    if code == CROSS_ENTROPY:
        top = _row_max(S, n)
        acc = 0.0
        for k in range(S.shape[1]):
            acc += np.exp(S[n, k] - top)
        return np.log(acc) + top - S[n, label]
    best, _ = _hinge_argmax(S, n, label)
    return best - S[n, label]


@nb.njit(parallel=True, cache=True)
def losses_of_rows(S, y, code, rows, out):  # noqa: N803
    """``out[rows[r]] = loss(S[rows[r]], y[rows[r]])``."""
    for r in nb.prange(rows.shape[0]):
        n = rows[r]
        out[n] = loss_of_row(S, n, y[n], code)


#: Samples per thread below which :func:`losses_of_changed` runs on one thread.
SAMPLES_PER_THREAD = 512


@nb.njit(parallel=True, cache=True)
def losses_of_changed(S, y, code, batch, count, out, threads):  # noqa: N803
    """``out[n] = loss(S[n], y[n])`` for ``n = batch[b]`` where ``count[b] > 0`` (the
    samples whose scores changed); returns how many. Up to ``threads`` threads, each
    with at least :data:`SAMPLES_PER_THREAD` samples of the batch."""
    B = batch.shape[0]  # noqa: N806
    n_chunks = max(1, min(threads, B // SAMPLES_PER_THREAD))
    changed = 0
    for c in nb.prange(n_chunks):
        for b in range(c * B // n_chunks, (c + 1) * B // n_chunks):
            if count[b] > 0:
                n = batch[b]
                out[n] = loss_of_row(S, n, y[n], code)
                changed += 1
    return changed


@uncounted
def gradient_of_row(S, n, label, code, out):  # noqa: N803
    """``out[n] = ∂loss/∂s`` for sample ``n`` of scores ``S``."""
    if code == CROSS_ENTROPY:
        top = _row_max(S, n)
        acc = 0.0
        for k in range(S.shape[1]):
            out[n, k] = np.exp(S[n, k] - top)
            acc += out[n, k]
        for k in range(S.shape[1]):
            out[n, k] = out[n, k] / acc
    else:
        _, arg = _hinge_argmax(S, n, label)
        for k in range(S.shape[1]):
            out[n, k] = 0.0
        out[n, arg] = 1.0
    out[n, label] -= 1.0


@nb.njit(cache=True)
def _gradients(S, y, code, out):  # noqa: N803
    for n in range(S.shape[0]):
        gradient_of_row(S, n, y[n], code, out)


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
