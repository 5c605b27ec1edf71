"""numba kernels for the tropical matrix product with selected indices.

``C[i, j] = max_k A[i, k] + B[k, j]`` (or ``min``), ``I[i, j]`` = the lowest ``k``
attaining it. The loop order is i-k-j: for a block of ``ROWS`` rows of ``A`` and a
strip of ``COLS`` columns, the accumulators stay in L1 while ``k`` runs, every inner
``j`` loop is contiguous and vectorises, and a strict comparison keeps the first
(lowest) index on ties because ``k`` increases. Blocks of rows run in parallel.
"""

from __future__ import annotations

import numba as nb
import numpy as np

ROWS = 4
COLS = 512


@nb.njit(inline="always")
def _improves(value, best, maximize):
    return value > best if maximize else value < best


@nb.njit(cache=True, nogil=True)
def _block(A, B, C, I, i0, i1, j0, j1, maximize):  # noqa: N803 - matrix names
    """Accumulate rows i0:i1, columns j0:j1 of C and I over all k."""
    init = -np.inf if maximize else np.inf
    for i in range(i0, i1):
        for j in range(j0, j1):
            C[i, j] = init
            I[i, j] = 0
    if i1 - i0 == ROWS:
        c0, c1 = C[i0, j0:j1], C[i0 + 1, j0:j1]
        c2, c3 = C[i0 + 2, j0:j1], C[i0 + 3, j0:j1]
        x0, x1 = I[i0, j0:j1], I[i0 + 1, j0:j1]
        x2, x3 = I[i0 + 2, j0:j1], I[i0 + 3, j0:j1]
        for k in range(A.shape[1]):
            a0, a1 = A[i0, k], A[i0 + 1, k]
            a2, a3 = A[i0 + 2, k], A[i0 + 3, k]
            b = B[k, j0:j1]
            for j in range(j1 - j0):
                bj = b[j]
                v = a0 + bj
                if _improves(v, c0[j], maximize):
                    c0[j] = v
                    x0[j] = k
                v = a1 + bj
                if _improves(v, c1[j], maximize):
                    c1[j] = v
                    x1[j] = k
                v = a2 + bj
                if _improves(v, c2[j], maximize):
                    c2[j] = v
                    x2[j] = k
                v = a3 + bj
                if _improves(v, c3[j], maximize):
                    c3[j] = v
                    x3[j] = k
    else:
        for i in range(i0, i1):
            c = C[i, j0:j1]
            x = I[i, j0:j1]
            for k in range(A.shape[1]):
                a = A[i, k]
                b = B[k, j0:j1]
                for j in range(j1 - j0):
                    v = a + b[j]
                    if _improves(v, c[j], maximize):
                        c[j] = v
                        x[j] = k


@nb.njit(parallel=True, cache=True)
def tropical_product(A, B, C, I, maximize):  # noqa: N803
    """Fill ``C`` (n×m) and ``I`` (n×m, int32) with the max-plus (or min-plus) product
    of C-contiguous ``A`` (n×k) and ``B`` (k×m). ``I`` is 0 where all candidates are
    the semiring's zero (and, trivially, when k = 0)."""
    n = A.shape[0]
    m = B.shape[1]
    n_row_blocks = (n + ROWS - 1) // ROWS
    n_col_blocks = (m + COLS - 1) // COLS
    for t in nb.prange(n_row_blocks * n_col_blocks):
        ib = t // n_col_blocks
        jb = t - ib * n_col_blocks
        i0 = ib * ROWS
        j0 = jb * COLS
        _block(A, B, C, I, i0, min(i0 + ROWS, n), j0, min(j0 + COLS, m), maximize)


@nb.njit(parallel=True, cache=True)
def tropical_product_top2(A, B, C, I, R, maximize):  # noqa: N803
    """Like :func:`tropical_product`, and also ``R[i, j]``, the best value among the
    candidates other than the selected one (the runner-up; the semiring's zero when
    there is none). Used to initialise the sparse trainer's state."""
    n, kk = A.shape
    m = B.shape[1]
    init = -np.inf if maximize else np.inf
    for i in nb.prange(n):
        c, x, r = C[i], I[i], R[i]
        for j in range(m):
            c[j] = init
            r[j] = init
            x[j] = 0
        for k in range(kk):
            a = A[i, k]
            b = B[k]
            for j in range(m):
                v = a + b[j]
                if _improves(v, c[j], maximize):
                    r[j] = c[j]
                    c[j] = v
                    x[j] = k
                elif not _improves(r[j], v, maximize):
                    r[j] = v
