"""Tropical products with indices: ours against tropical-gemm and broadcasting.

``C[i, j] = max_k A[i, k] + B[k, j]`` (or ``min``) with the selected ``k``, on a small
product and on the reference MNIST layer ``5000×784 ⊗ 784×256``. The implementations
and the side-by-side measurement live in :mod:`maxplus.peers`.
"""

from __future__ import annotations

from maxplus.peers import compare_products, get_product, random_operands

from .common import REFERENCE, SMALL, parse_size, size_name

SIZES = [size_name(SMALL), size_name(REFERENCE)]
SEMIRINGS = ["max-plus", "min-plus"]


class _ProductTiming:
    """Time one implementation of the product; subclasses choose which ones."""

    param_names = ["implementation", "semiring", "size", "dtype"]

    def setup(self, implementation, semiring, size, dtype):
        self.product = get_product(implementation, maximize=semiring == "max-plus")
        A, B = random_operands(parse_size(size), dtype)
        self.operands = self.product.prepare(A, B)
        # Compile numba kernels (and warm the library up) on a slice of A.
        self.product(*self.product.prepare(A[:8], B))

    def time_product(self, implementation, semiring, size, dtype):
        self.product(*self.operands)


class Products(_ProductTiming):
    """The compiled products: ours and tropical-gemm, float32 and float64."""

    params = [["maxplus", "tropical-gemm"], SEMIRINGS, SIZES, ["float32", "float64"]]


class BroadcastProducts(_ProductTiming):
    """The plain baselines (chunked broadcasting); seconds per call at the reference size."""

    params = [["numpy", "torch"], SEMIRINGS, SIZES, ["float32"]]
    number = 1
    repeat = (1, 5, 20.0)
    timeout = 180


class GpuProducts(_ProductTiming):
    """The same on an NVIDIA GPU (skipped without one)."""

    params = [["maxplus-cupy", "torch-cuda"], SEMIRINGS, SIZES, ["float32"]]


class VersusTropicalGemm:
    """Ratios from ``benchmarks/compare_products.py``'s measurement (max-plus, float32).

    Each ``track_*`` runs its own interleaved measurement (median of 7 rounds).
    """

    params = [SIZES]
    param_names = ["size"]
    timeout = 180

    def setup(self, size):
        self.shape = parse_size(size)
        get_product("tropical-gemm")  # skip when tropical-gemm is missing

    def track_speedup_over_tropical_gemm(self, size):
        result = compare_products(self.shape, peers=("tropical-gemm",), roof=False)
        if not result.all_agree():
            raise AssertionError("maxplus and tropical-gemm disagree:\n" + result.report())
        return result.speedup_over("tropical-gemm")

    track_speedup_over_tropical_gemm.unit = "throughput ratio (ours / tropical-gemm)"

    def track_fraction_of_l1_roof(self, size):
        return compare_products(self.shape, peers=(), roof=True).roof_fraction

    track_fraction_of_l1_roof.unit = "fraction of the L1 roof"
