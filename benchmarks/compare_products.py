"""Our CPU tropical product with indices against tropical-gemm, and against the L1 roof.

    python benchmarks/compare_products.py                       # 5000x784 (x) 784x256 float32
    python benchmarks/compare_products.py --size 1000x784x512 --dtype float64 --min-plus
    python benchmarks/compare_products.py --baselines           # also numpy and torch

Prints, measured side by side in one run (interleaved rounds, median of ``--repeats``
after a warm-up round): each implementation's time and throughput (G pairs/s, a pair
being one ``A[i,k] + B[k,j]`` and its comparison), our throughput over each peer's,
and our fraction of an in-run compute roof: the same add-and-compare-with-index loop
on L1-resident blocks, over as many threads, for as many pairs
(:mod:`maxplus.roof`). It also checks that every peer returns exactly
our values and indices, and exits with status 1 if one does not.

The measurement is :func:`maxplus.peers.compare_products`, the one the asv suite tracks
(``bench_products.VersusTropicalGemm``) and the book plots (chapter 7).
``--threads N`` runs numba, tropical-gemm (rayon) and torch on N threads.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The asv suite is the package ``benchmarks`` in the folder next to this script.
sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="5000x784x256", help="n x k x m (default %(default)s)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--min-plus", action="store_true", help="min-plus instead of max-plus")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument(
        "--baselines", action="store_true", help="also time numpy and torch broadcasting"
    )
    parser.add_argument("--threads", type=int, default=None, help="threads for every library")
    args = parser.parse_args(argv)
    if args.repeats < 7:
        parser.error(f"--repeats must be at least 7 for a median, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    return args


def set_threads(threads: int) -> None:
    """Use ``threads`` threads in numba, tropical-gemm's rayon pool and torch."""
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # read when rayon's pool starts
    import numba

    numba.set_num_threads(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        set_threads(args.threads)
    from benchmarks.common import parse_size

    from maxplus.peers import PeerUnavailableError, compare_products

    try:
        shape = parse_size(args.size)
    except ValueError as exc:
        print(f"--size: {exc}", file=sys.stderr)
        return 2
    peers = ("tropical-gemm", "numpy", "torch") if args.baselines else ("tropical-gemm",)
    try:
        result = compare_products(
            shape, args.dtype, maximize=not args.min_plus, peers=peers, repeats=args.repeats
        )
    except PeerUnavailableError as exc:  # a peer's package is missing
        print(f"cannot compare: {exc}", file=sys.stderr)
        return 2
    print(result.report())
    print(
        f"ours / tropical-gemm throughput: {result.speedup_over('tropical-gemm'):.2f}x; "
        f"ours: {result.gpairs('maxplus'):.2f} G pairs/s = "
        f"{result.roof_fraction:.2f} of the L1 roof ({result.gpairs('L1 roof'):.2f} G pairs/s)"
    )
    return 0 if result.all_agree() else 1


if __name__ == "__main__":
    sys.exit(main())
