"""Samples synchronised per step by the sparse trainer, against how many it must be.

    python benchmarks/audit_syncs.py                       # MNIST-5k LMM, 3 step sizes x 2 starts
    python benchmarks/audit_syncs.py --lr 0.001 --after 300 --steps 100
    python benchmarks/audit_syncs.py --dataset iris --sizes 16,8 --steps 5

The sparse step repairs every sample whose loss bound may reach the largest loss, so
its cost follows the bounds' tightness (``maxplus.sync_audit``). For the reference
configuration of ``compare_training.py`` (LMM 784-512-128-10, float32, worst-sample
cross-entropy, constant step), from the seeded network and from its iterate after
``--after`` steps, this prints per step size the mean per step of

* ``synced``: samples the trainer synchronised;
* ``reached``: waiting samples whose stored bound reaches the largest fresh loss;
* ``needed``: waiting samples whose actual loss reaches it (what a bound equal to
  each actual rise would synchronise; the trainer must synchronise these);

and the median over steps of the per-step medians of the bound, its uniform part
(weight moves and rounding) and the actual loss rise. Each step also runs a full
forward pass for the measurement, so this script times nothing.
"""

from __future__ import annotations

import argparse
import sys

import compare_training as reference  # the reference configuration (and a checkout's maxplus)
import numpy as np

import maxplus as mp
from maxplus import speed
from maxplus.sync_audit import audit_syncs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    reference.add_configuration_arguments(parser, after=(0, 300))
    parser.add_argument("--steps", type=int, default=40, help="audited steps (default 40)")
    args = parser.parse_args(argv)
    reference.check_configuration(parser, args)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    X, y = mp.load_dataset(args.dataset)
    print(f"dataset {args.dataset}: X {X.shape[0]} x {X.shape[1]}, LMM sizes {args.sizes}, "
          f"{args.steps} steps each")  # fmt: skip
    print(f"{'lr':>8} {'start':>6} {'synced':>8} {'reached':>8} {'needed':>7} "
          f"{'bound':>9} {'uniform':>9} {'rise':>10}")  # fmt: skip
    for lr in args.lr:
        for after in args.after:
            start = None
            if after:
                start = speed.trained_parameters(X, y, after, lr=lr, sizes=args.sizes)
            r = audit_syncs(X, y, lr=lr, steps=args.steps, start=start, sizes=args.sizes)
            counts = [f"{np.mean(r[name]):8.1f}" for name in ("synced", "reached")]
            medians = [f"{np.median(r[name]):9.2e}" for name in ("bound", "uniform")]
            print(f"{lr:8g} {after:6d} {' '.join(counts)} {np.mean(r['needed']):7.1f} "
                  f"{' '.join(medians)} {np.median(r['rise']):10.2e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
