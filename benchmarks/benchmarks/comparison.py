"""Our product against its peers and against the L1 roof, measured in one run.

Used by ``benchmarks/compare_products.py`` (prints it) and by the asv class
``bench_products.VersusTropicalGemm`` (tracks the ratios across commits): one
measurement, two front ends.

Throughput is in G pairs/s, ``n·k·m / seconds / 1e9``; the speed-up over a peer is
the ratio of throughputs, ``t_peer / t_ours``; the roof fraction is ``ours / roof``
in G pairs/s (see :mod:`.roof`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .common import REFERENCE, gpairs_per_second, interleaved_medians, pairs, random_operands
from .implementations import get_product, to_numpy_result
from .roof import L1Roof

OURS = "maxplus"
ROOF = "L1 roof"


@dataclass
class ProductComparison:
    """Median seconds of each contender on one product, and whether results agree."""

    shape: tuple[int, int, int]
    dtype: str
    maximize: bool
    repeats: int
    threads: int
    seconds: dict[str, float]
    roof_pairs: int = 0
    #: peer name -> (values identical, indices identical) against ours
    agreement: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    def gpairs(self, name: str) -> float:
        """Throughput of ``name`` in G pairs/s (the roof counts its own pairs)."""
        if name == ROOF:
            return self.roof_pairs / self.seconds[ROOF] / 1e9
        return gpairs_per_second(self.shape, self.seconds[name])

    def speedup_over(self, peer: str) -> float:
        """Throughput of ours divided by the throughput of ``peer``."""
        return self.seconds[peer] / self.seconds[OURS]

    @property
    def roof_fraction(self) -> float:
        """Throughput of ours as a fraction of the L1 roof."""
        return self.gpairs(OURS) / self.gpairs(ROOF)

    def all_agree(self) -> bool:
        return all(values and indices for values, indices in self.agreement.values())

    def report(self) -> str:
        """A plain-text table of the figures."""
        kind = "max-plus" if self.maximize else "min-plus"
        n, k, m = self.shape
        lines = [
            f"{kind} product with indices, {n}x{k} (x) {k}x{m}, {self.dtype}: "
            f"{pairs(self.shape) / 1e9:.3f} G pairs; median of {self.repeats} interleaved "
            f"rounds after warm-up; {self.threads} numba threads",
            f"{'implementation':<16}{'median ms':>12}{'G pairs/s':>12}{'ours / it':>12}",
        ]
        for name in self.seconds:
            ratio = self.gpairs(OURS) / self.gpairs(name)
            lines.append(
                f"{name:<16}{1e3 * self.seconds[name]:>12.2f}"
                f"{self.gpairs(name):>12.2f}{ratio:>12.2f}"
            )
        if ROOF in self.seconds:
            lines.append(f"fraction of the L1 roof reached by ours: {self.roof_fraction:.2f}")
        for peer, (values, indices) in self.agreement.items():
            verdict = "identical" if values and indices else "DIFFERENT"
            lines.append(
                f"{peer} vs ours: values {'identical' if values else 'DIFFERENT'}, "
                f"indices {'identical' if indices else 'DIFFERENT'} -> {verdict}"
            )
        return "\n".join(lines)


def compare_products(
    shape: tuple[int, int, int] = REFERENCE,
    dtype: str = "float32",
    *,
    maximize: bool = True,
    peers: tuple[str, ...] = ("tropical-gemm",),
    roof: bool = True,
    repeats: int = 7,
    warmup: int = 1,
    check: bool = True,
) -> ProductComparison:
    """Time ours, each of ``peers`` and (optionally) the L1 roof in interleaved rounds.

    With ``check``, also compare each peer's values and indices with ours (exact
    equality; indices as integers, whatever their dtype).
    """
    import numba

    A, B = random_operands(shape, dtype)
    contenders = {name: get_product(name, maximize=maximize) for name in (OURS, *peers)}
    operands = {name: product.prepare(A, B) for name, product in contenders.items()}
    calls = {
        name: (lambda p=product, ops=operands[name]: p(*ops))
        for name, product in contenders.items()
    }
    roof_pairs = 0
    if roof:
        l1_roof = L1Roof(pairs(shape), dtype=dtype, maximize=maximize)
        calls[ROOF] = l1_roof
        roof_pairs = l1_roof.pairs
    seconds = interleaved_medians(calls, repeats=repeats, warmup=warmup)
    agreement = {}
    if check:
        C, I = to_numpy_result(calls[OURS]())
        for peer in peers:
            c, i = to_numpy_result(calls[peer]())
            agreement[peer] = (bool(np.array_equal(C, c)), bool(np.array_equal(I, i)))
        if roof:
            l1_roof.check()
    return ProductComparison(
        shape=shape,
        dtype=str(np.dtype(dtype)),
        maximize=maximize,
        repeats=repeats,
        threads=numba.get_num_threads(),
        seconds=seconds,
        roof_pairs=roof_pairs,
        agreement=agreement,
    )
