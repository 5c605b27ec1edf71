"""An in-run compute roof for the tropical product with indices.

The roof is the throughput of the product's inner work, ``v = a + b``, ``if v > c:
c = v; i = k``, on data that never leaves L1: every thread repeats a product of
``ROWS`` rows of ``A`` (length ``DEPTH``) by a ``DEPTH×COLS`` block of ``B``, whose
block, accumulators and indices take ``DEPTH·COLS·s + ROWS·COLS·(s + 4)`` bytes
(24 KiB in float32, 40 KiB in float64: within a 48 KiB L1d). Threads run in
parallel, as many as numba uses for the product, and the repetitions add up to
(at least) the pairs of the product being measured, so the roof and the product
run for about the same time in the same conditions.

Repeating the same block, no candidate improves after the first pass: the branch is
always predicted and no accumulator is rewritten, so the loop is an upper bound on
the same loop over fresh data. ``measured throughput / roof`` is the fraction of
the core's add-and-compare rate that a real product reaches once it has to stream
``B`` through the caches, split the work into blocks and write its results.

:func:`maxplus.peers.compare_products` times it beside the products.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .kernels.cpu_products import _improves
from .peers import SEED

ROWS = 4
DEPTH = 16
COLS = 256


@nb.njit(cache=True, nogil=True)
def _repeat_block(a, b, c, x, repeats, maximize):
    """``repeats`` passes of the ROWS×DEPTH by DEPTH×COLS product, accumulated in c, x
    (the inner loop of :func:`maxplus.kernels.cpu_products.tropical_product`).

    The loop body is a copy of the product kernel's on purpose: moving it into one
    njit helper that both call (plain or ``inline="always"``) cost the product about
    a fifth of its throughput and the roof about two fifths in
    ``benchmarks/compare_products.py``, so the roof would no longer measure the code
    the product runs."""
    init = -np.inf if maximize else np.inf
    c[:, :] = init
    x[:, :] = 0
    c0, c1 = c[0], c[1]
    c2, c3 = c[2], c[3]
    x0, x1 = x[0], x[1]
    x2, x3 = x[2], x[3]
    for _ in range(repeats):
        for k in range(b.shape[0]):
            a0, a1 = a[0, k], a[1, k]
            a2, a3 = a[2, k], a[3, k]
            bk = b[k]
            for j in range(bk.shape[0]):
                bj = bk[j]
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

@nb.njit(parallel=True, cache=True)
def _roof_kernel(a, b, c, x, repeats, maximize):
    """One L1-resident block per thread: ``a[t]``, ``b[t]``, ``c[t]``, ``x[t]``."""
    for t in nb.prange(a.shape[0]):
        _repeat_block(a[t], b[t], c[t], x[t], repeats, maximize)


class L1Roof:
    """Callable roof sized to at least ``pairs`` add-and-compare pairs.

    ``roof()`` runs it; ``roof.pairs`` is the number of pairs it actually does
    (a whole number of block passes per thread).
    """

    def __init__(self, pairs: int, dtype="float32", maximize: bool = True, threads=None):
        if pairs < 1:
            raise ValueError(f"pairs must be >= 1, got {pairs}")
        self.threads = int(threads or nb.get_num_threads())
        self.maximize = bool(maximize)
        block_pairs = ROWS * DEPTH * COLS
        self.repeats = -(-pairs // (self.threads * block_pairs))
        self.pairs = self.threads * self.repeats * block_pairs
        rng = np.random.default_rng(SEED)
        t = self.threads
        self.a = rng.standard_normal((t, ROWS, DEPTH)).astype(dtype)
        self.b = rng.standard_normal((t, DEPTH, COLS)).astype(dtype)
        self.c = np.empty((t, ROWS, COLS), dtype=dtype)
        self.x = np.empty((t, ROWS, COLS), dtype=np.int32)

    def __call__(self) -> None:
        _roof_kernel(self.a, self.b, self.c, self.x, self.repeats, self.maximize)

    def check(self) -> None:
        """Raise ``AssertionError`` unless the roof computed the block's product."""
        for t in range(self.threads):
            cand = self.a[t][:, :, None] + self.b[t][None]
            idx = cand.argmax(axis=1) if self.maximize else cand.argmin(axis=1)
            best = np.take_along_axis(cand, idx[:, None, :], axis=1)[:, 0]
            assert np.array_equal(self.x[t], idx) and np.array_equal(self.c[t], best)
