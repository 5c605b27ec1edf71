"""Seconds per subgradient step, sparse against every dense peer, measured side by side.

One measurement, three front ends: ``benchmarks/compare_training.py`` prints it, the
asv module ``bench_training`` tracks it across commits, and the book's reproduction
reports it.

The methods take the same step, :math:`\\theta \\leftarrow \\theta - \\eta g` with
``g`` the subgradient of the top-q objective, from the same initial parameters:

* ``"sparse"``: :class:`maxplus.sparse.SparseTrainer` (short computational trees,
  repaired forward state);
* ``"dense"``: :class:`maxplus.dense.DenseTrainer` (full forward and backward);
* ``"torch_tropical_gemm"`` / ``"torch_plain"``: PyTorch autograd with the
  tropical-gemm kernels / with broadcasting (:mod:`maxplus.torch_reference`),
  behind the same trainer protocol (:class:`TorchTrainer`).

Every method is driven by :func:`maxplus.training.run`, the loop of ``mp.fit``; a
step's seconds are those ``run`` records (``history["seconds"]``: objective, sample
selection, subgradient, step, state repair and best-iterate bookkeeping). Trainer
set-up and ``warmup`` steps (numba compilation, first allocations) are not timed.
The methods are timed in interleaved rounds, a block of steps each per round, so
that a slow patch of the machine hits them all alike.

Ratios against the sparse trainer, for each peer ``p``:

.. math::

    \\text{time ratio} = \\frac{t_p}{t_\\text{sparse}}, \\qquad
    \\text{FLOP ratio} = \\frac{f_p}{f_\\text{sparse}}, \\qquad
    \\text{realised share} = \\frac{\\text{time ratio}}{\\text{FLOP ratio}},

from medians (``*_median``) or means (``*_mean``) of the per-step figures; the mean
includes the sparse trainer's periodic full refresh. ``f`` are counted FLOPs
(:mod:`maxplus.flops`): what the sparse trainer's kernels did, and
:func:`maxplus.flops.dense_step_flops` for every dense peer.

Memory: :func:`trainer_state_bytes` sums the arrays a trainer keeps between steps
(for the sparse trainer O(N·(h1+h2+K)) per-sample state, plus the product cache,
reported apart); :func:`measure_peak_memory` runs each method in a subprocess and
reads its peak resident set size, less that of a baseline process that imports the
same modules, loads the same data and builds the model without training.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import backend as backends
from . import flops
from ._validation import check_choice, check_positive_float, check_positive_int
from .io import json_ready
from .losses import LOSSES
from .network import LMM, Linear, Sequential, Tropical
from .objectives import parse_objective
from .training import check_labels, make_trainer, run

METHODS = ("sparse", "dense", "torch_tropical_gemm", "torch_plain")
#: The torch peers and their :mod:`maxplus.torch_reference` implementation.
TORCH_METHODS = {"torch_tropical_gemm": "tropical_gemm", "torch_plain": "plain"}
#: Seconds a block of one method's steps should last in an interleaved round.
BLOCK_SECONDS = 0.25
#: Steps quicker than this (seconds) get an untimed lead-in step per block.
LEAD_IN_BELOW = 1.0
#: Sparse trainer: steps between full refreshes of its cached linear state.
REFRESH_EVERY = 100

#: The project's per-step goals at the reference configuration (MNIST-5k, LMM
#: 784-512-128-10, float32, worst-sample cross-entropy, constant step): how many times
#: faster than each peer the sparse step should be.
SPEEDUP_TARGETS = {"torch_tropical_gemm": 100.0, "torch_plain": 1000.0}


# ----------------------------------------------------------------------- torch trainer


class TorchTrainer:
    """PyTorch autograd behind the trainer protocol of :func:`maxplus.training.run`.

    The torch parameters share memory with the model's NumPy arrays, so the model is
    trained in place as with the other trainers. ``losses`` runs the forward pass
    (keeping autograd's graph), ``gradient`` back-propagates the mean of the selected
    losses, ``apply`` takes the step under ``no_grad``.
    """

    def __init__(self, model, X, y, loss: str, impl: str):  # noqa: N803
        torch = _require_torch(impl)
        from .torch_reference import TorchNetwork

        self.method = f"torch_{impl}"
        self.loss = loss
        self.net = TorchNetwork(model, impl, share=True)  # `run` sees the iterate
        self.X = torch.tensor(np.asarray(X))  # copies: X may be read-only
        self.y = torch.tensor(np.asarray(y, dtype=np.int64))
        self.step_flops = flops.dense_step_flops(model, X.shape[0])
        self.flops_last = 0
        self._losses = None

    def losses(self, q=None) -> np.ndarray:
        """Every sample's loss (a full forward pass: ``q`` is not used)."""
        from .torch_reference import torch_losses

        for p in self.net.params:
            p.grad = None
        self._losses = torch_losses(self.net.scores(self.X), self.y, self.loss)
        return self._losses.detach().numpy()

    def gradient(self, rows, q: int) -> list:
        torch = _require_torch()
        objective = self._losses[torch.as_tensor(np.asarray(rows))].sum() / q
        objective.backward()
        self._losses = None
        return [p.grad for p in self.net.params]

    def squared_norm(self, g) -> float:
        return float(sum(float((gi.double() ** 2).sum()) for gi in g))

    def apply(self, eta: float, g) -> None:
        torch = _require_torch()
        with torch.no_grad():
            for p, gi in zip(self.net.params, g, strict=True):
                p -= eta * gi
        self.flops_last = self.step_flops

    def touched_rows(self):
        return None  # every parameter may have moved


def _require_torch(impl: str = "plain"):
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"the torch methods {sorted(TORCH_METHODS)} need PyTorch: "
            f'pip install "maxplus[torch]" ({exc})'
        ) from None
    if impl == "tropical_gemm":
        try:
            import tropical_gemm.pytorch  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "method 'torch_tropical_gemm' needs tropical-gemm: "
                f"pip install tropical-gemm ({exc})"
            ) from None
    return torch


# ---------------------------------------------------------------------- warm steppers


class NumbaCompilations:
    """Counts numba compilations (cache misses, not cache loads) while watching.

    ``with NumbaCompilations.watching(): ...`` installs a listener for numba's
    ``"numba:compile"`` event; :attr:`count` grows by one per compilation. A step
    that compiles a kernel (a code path that the warm-up did not reach) is not
    timed: it measures the compiler, not the step.
    """

    count = 0

    @classmethod
    @contextlib.contextmanager
    def watching(cls):
        from numba.core import event

        class Listener(event.Listener):
            def on_start(self, ev):
                cls.count += 1

            def on_end(self, ev):
                pass

        with event.install_listener("numba:compile", Listener()):
            yield cls


class ReusedLosses:
    """A trainer whose ``losses()`` is computed once per iterate.

    :func:`~maxplus.training.run` evaluates the losses once more after its last step;
    through this wrapper the next ``run`` reuses them, so a sequence of one-step runs
    costs one step each (what an asv ``time_*`` call should measure). Not for
    per-step seconds from ``history``: the first step of each run would miss its
    forward pass.
    """

    def __init__(self, trainer):
        self.trainer = trainer
        self._losses = None

    def __getattr__(self, name):
        return getattr(self.trainer, name)

    def losses(self, *args):
        if self._losses is None:
            self._losses = self.trainer.losses(*args)
        return self._losses

    def apply(self, eta, g) -> None:
        self._losses = None
        self.trainer.apply(eta, g)


class WarmStepper:
    """A model and one method's trainer, set up and warmed up, stepping on demand.

    ``steps(n)`` takes ``n`` steps through :func:`maxplus.training.run` and returns
    its history (per-step ``"seconds"`` and ``"flops"``); ``step()`` takes exactly one
    step (see :class:`ReusedLosses`). The model starts from the seeded LMM, or from
    ``start`` (parameters by :meth:`~maxplus.network.Sequential.named_parameters`
    name, e.g. :func:`trained_parameters`).
    """

    def __init__(
        self,
        method: str,
        X,  # noqa: N803
        y,
        *,
        sizes=(512, 128),
        lr=0.01,
        dtype="float32",
        objective="worst",
        loss="cross_entropy",
        seed=0,
        warmup=3,
        backend="numpy",
        start=None,
    ):
        check_choice("method", method, METHODS)
        check_choice("loss", loss, LOSSES)
        self.method, self.lr = method, check_positive_float("lr", lr)
        h1, h2 = _check_sizes(sizes)
        X_host = backends.to_numpy(X)
        if X_host.ndim != 2:
            raise ValueError(f"X must be 2-D (samples × features), got shape {X_host.shape}")
        n_classes = int(np.max(backends.to_numpy(y))) + 1 if len(y) else 1
        self.model = LMM(
            X_host.shape[1], h1, h2, n_classes, seed=seed, dtype=dtype, backend=backend
        )
        if start is not None:  # a later iterate of the same trajectory
            xp = self.model.xp
            self.model.set_parameters({k: backends.asarray_like(v, xp) for k, v in start.items()})
        self.X = self.model.check_input(X)
        self.y = check_labels(y, self.X.shape[0], n_classes, self.model.xp)
        self.q = parse_objective(objective, self.X.shape[0])
        if method in TORCH_METHODS:
            if not backends.is_numpy_namespace(self.model.xp):
                raise ValueError(f"method {method!r} runs on the numpy backend only")
            self.trainer = TorchTrainer(self.model, self.X, self.y, loss, TORCH_METHODS[method])
        else:
            self.trainer = make_trainer(
                method, self.model, self.X, self.y, loss, refresh_every=REFRESH_EVERY, exact=False
            )
        self._one_step = ReusedLosses(self.trainer)
        self.steps_done = 0
        self.last_seconds = None  # of the last step that steps() took
        if warmup:
            self.steps(warmup)

    def steps(self, n: int) -> dict:
        """Take ``n`` steps; the history of :func:`maxplus.training.run`, with
        ``history["compiled"][t]`` True when step t compiled numba code (see
        :class:`NumbaCompilations`; all False when none is watching)."""
        self._one_step._losses = None  # the iterate moves: forget step()'s reused losses
        marks = [NumbaCompilations.count]

        def mark(t, objective, model):
            marks.append(NumbaCompilations.count)
            return False

        result = run(self.trainer, self.model, self.q, n, "constant", self.lr, 0.0, False, mark)
        history = result.history
        if len(marks) <= len(history["seconds"]):  # stopped early: no callback after the last
            marks.append(NumbaCompilations.count)
        pairs = zip(marks[:-1], marks[1:], strict=True)
        history["compiled"] = [after > before for before, after in pairs]
        self.steps_done += result.steps_done
        if history["seconds"]:
            self.last_seconds = history["seconds"][-1]
        return history

    def step(self) -> None:
        """Exactly one step (its forward pass included, counted once)."""
        run(self._one_step, self.model, self.q, 1, "constant", self.lr, 0.0, False, None)
        self.steps_done += 1

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])


def _check_sizes(sizes) -> tuple[int, int]:
    if not isinstance(sizes, tuple | list) or len(sizes) != 2:
        raise ValueError(f"sizes must be (n_linear, n_minplus), got {sizes!r}")
    return tuple(check_positive_int(name, s) for name, s in zip(("h1", "h2"), sizes, strict=True))


# ------------------------------------------------------------------------ measurement


def measure_step_times(
    X,  # noqa: N803
    y,
    *,
    sizes=(512, 128),
    lr=0.01,
    dtype="float32",
    objective="worst",
    loss="cross_entropy",
    methods=METHODS,
    steps=100,
    warmup=3,
    seed=0,
    max_seconds=None,
    backend="numpy",
    after=0,
    start=None,
) -> dict:
    """Seconds per step of each method on ``LMM(d, h1, h2, K)``, measured in one run.

    Every method starts from the same parameters: the seeded LMM or, with ``after``,
    its iterate after that many steps of the same objective (:func:`trained_parameters`;
    pass them as ``start`` when they are at hand, so that they are not trained again);
    each is set up and takes ``warmup`` untimed steps, then all take steps in
    interleaved rounds (a block of about :data:`BLOCK_SECONDS` each per round, in a
    rotating order) until each has
    ``steps`` timed steps or, with ``max_seconds``, has spent that many timed seconds
    (at least one step each; set-up and warm-up are not counted).

    Returns a JSON-serialisable dict: ``"config"`` (the configuration echoed),
    ``"methods"`` (per method: ``median_seconds``, ``mean_seconds``, ``timed_steps``,
    ``median_flops``, ``mean_flops``, ``state_bytes`` and, for the sparse trainer,
    ``trainer_info``) and ``"ratios"`` (per peer, against ``"sparse"`` when it is
    measured; see the module docstring).
    """
    methods = tuple(methods)
    if not methods:
        raise ValueError("methods must name at least one method")
    for method in methods:
        check_choice("methods", method, METHODS)
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods has duplicates: {methods!r}")
    steps = check_positive_int("steps", steps)
    warmup = check_positive_int("warmup", warmup, minimum=0)
    if max_seconds is not None:
        max_seconds = check_positive_float("max_seconds", max_seconds)
    after = check_positive_int("after", after, minimum=0)
    common = dict(
        sizes=sizes, lr=lr, dtype=dtype, objective=objective, loss=loss, seed=seed, backend=backend
    )
    if start is not None and not after:
        raise ValueError("start needs after: the number of steps that led to it")
    if after and start is None:
        start = trained_parameters(X, y, after, **common)
    steppers = {
        method: WarmStepper(method, X, y, warmup=warmup, start=start, **common)
        for method in methods
    }
    with NumbaCompilations.watching():
        seconds, counted, compiled = _interleaved_steps(steppers, steps, max_seconds)
    model = next(iter(steppers.values())).model
    report = {
        "config": _config(model, steppers, sizes, lr, objective, loss, steps, warmup, seed),
        "methods": {},
        "ratios": {},
    }
    report["config"]["max_seconds"] = max_seconds
    report["config"]["after"] = after
    for method, stepper in steppers.items():
        figures = _method_figures(stepper, seconds[method], counted[method])
        figures["compiling_steps"] = len(compiled[method])
        figures["compiling_seconds"] = sum(compiled[method])
        report["methods"][method] = figures
    if "sparse" in steppers:
        sparse = report["methods"]["sparse"]
        for method in methods:
            if method != "sparse":
                report["ratios"][method] = ratios(report["methods"][method], sparse)
    return report


def trained_parameters(X, y, steps: int, **config) -> dict:  # noqa: N803
    """Parameters of :class:`WarmStepper`'s seeded LMM (``config``: its keywords) after
    ``steps`` constant steps of the sparse trainer, whose iterates are every method's;
    copies, by :meth:`~maxplus.network.Sequential.named_parameters` name."""
    stepper = WarmStepper("sparse", X, y, warmup=0, **config)
    stepper.steps(check_positive_int("steps", steps))
    params = stepper.model.named_parameters()
    return {name: backends.to_numpy(array).copy() for name, array in params.items()}


def ratios(peer: dict, sparse: dict) -> dict:
    """Time ratio, FLOP ratio and realised share of ``peer`` over ``sparse`` (figures
    as in :func:`measure_step_times`'s ``"methods"``), from medians and from means."""
    out = {}
    for stat in ("median", "mean"):
        time_ratio = peer[f"{stat}_seconds"] / sparse[f"{stat}_seconds"]
        flop_ratio = peer[f"{stat}_flops"] / sparse[f"{stat}_flops"]
        out[f"time_ratio_{stat}"] = time_ratio
        out[f"flop_ratio_{stat}"] = flop_ratio
        out[f"realised_share_{stat}"] = time_ratio / flop_ratio
    return out


def _interleaved_steps(steppers: dict, steps: int, max_seconds):
    """Per-step seconds and FLOPs of every stepper, timed in rotating rounds.

    A block of a method whose steps are quicker than :data:`LEAD_IN_BELOW` seconds
    starts with one untimed *lead-in* step: the first step after another library ran
    pays for waking this one's thread pool (tens of ms on a busy machine), a cost
    that training with one method alone does not have. Steps that compiled numba
    code are set aside too (:class:`NumbaCompilations`); returns per method the
    timed seconds, their FLOPs, and the seconds of the steps set aside for compiling.
    """
    names = list(steppers)
    seconds = {name: [] for name in names}
    counted = {name: [] for name in names}
    compiled = {name: [] for name in names}  # seconds of steps that compiled: untimed
    estimate = {name: steppers[name].last_seconds for name in names}

    def wanted(name):
        done, spent = len(seconds[name]), sum(seconds[name])
        if done >= steps or (max_seconds is not None and done and spent >= max_seconds):
            return 0
        per_step = estimate[name]
        n = 1 if per_step is None else max(1, math.floor(BLOCK_SECONDS / max(per_step, 1e-9)))
        if max_seconds is not None and per_step is not None:
            left = max_seconds - spent
            n = min(n, max(1, math.ceil(left / max(per_step, 1e-9))))
        return min(n, steps - done)

    round_ = 0
    while True:
        shift = round_ % len(names)
        active = False
        for name in names[shift:] + names[:shift]:
            n = wanted(name)
            if n == 0:
                continue
            active = True
            lead_in = int(estimate[name] is None or estimate[name] < LEAD_IN_BELOW)
            history = steppers[name].steps(lead_in + n)
            for t in range(lead_in, len(history["seconds"])):
                if history["compiled"][t]:
                    compiled[name].append(history["seconds"][t])
                else:
                    seconds[name].append(history["seconds"][t])
                    counted[name].append(int(history["flops"][t]))
            if seconds[name]:
                estimate[name] = statistics.median(seconds[name])
        if not active:
            return seconds, counted, compiled
        round_ += 1


def _method_figures(stepper: WarmStepper, seconds: list, counted: list) -> dict:
    figures = {
        "median_seconds": statistics.median(seconds),
        "mean_seconds": statistics.fmean(seconds),
        "min_seconds": min(seconds),
        "max_seconds": max(seconds),
        "timed_steps": len(seconds),
        "median_flops": float(statistics.median(counted)),
        "mean_flops": statistics.fmean(counted),
        "steps_done": stepper.steps_done,
        "state_bytes": trainer_state_bytes(stepper.trainer),
    }
    info = getattr(stepper.trainer, "info", None)
    if callable(info):
        figures["trainer_info"] = json_ready(info())
    return figures


def _config(model, steppers, sizes, lr, objective, loss, steps, warmup, seed) -> dict:
    import numba

    config = {
        "n_samples": int(next(iter(steppers.values())).n_samples),
        "n_features": int(model.n_features),
        "sizes": [int(s) for s in sizes],
        "n_classes": int(model.n_classes),
        "architecture": model.architecture,
        "n_parameters": int(model.n_parameters),
        "dtype": str(np.dtype(model.dtype)),
        "backend": model.backend,
        "objective": objective if isinstance(objective, str) else list(objective),
        "q": next(iter(steppers.values())).q,
        "loss": loss,
        "step": "constant",
        "lr": float(lr),
        "steps": steps,
        "warmup": warmup,
        "seed": seed,
        "methods": list(steppers),
        "refresh_every": REFRESH_EVERY,
        "numba_threads": int(numba.get_num_threads()),
        "cpu_count": os.cpu_count(),
    }
    if any(name in TORCH_METHODS for name in steppers):
        import torch

        config["torch_threads"] = int(torch.get_num_threads())
    return config


# ------------------------------------------------------------------------- reporting


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.3g}"


def format_step_times(report: dict, targets: dict | None = None) -> str:
    """A plain-text table of :func:`measure_step_times`'s ``report``.

    ``targets`` maps a peer to the speed-up over it that is wanted (e.g. ``100``):
    each is marked met or NOT met, by the median and by the mean, with the median
    sparse step the target asks for (the peer's median divided by the speed-up).
    """
    config, figures = report["config"], report["methods"]
    lines = [
        f"{config['architecture']}, {config['dtype']}, N = {config['n_samples']}; "
        f"objective {config['objective']} (q = {config['q']}), {config['loss']}, "
        f"constant step lr = {config['lr']:g}",
        (f"from the iterate after {config['after']} sparse steps; " if config.get("after") else "")
        + f"{config['warmup']} untimed warm-up steps, then interleaved rounds: up to "
        f"{config['steps']} timed steps per method"
        + (f" or {config['max_seconds']:g} s" if config.get("max_seconds") else "")
        + f"; {config['numba_threads']} numba threads"
        + (f", {config['torch_threads']} torch threads" if "torch_threads" in config else ""),
        f"{'method':<22}{'median ms':>11}{'mean ms':>11}{'steps':>7}"
        f"{'median FLOPs':>15}{'mean FLOPs':>13}",
    ]
    for method, f in figures.items():
        lines.append(
            f"{method:<22}{1e3 * f['median_seconds']:>11.3f}{1e3 * f['mean_seconds']:>11.3f}"
            f"{f['timed_steps']:>7d}{f['median_flops']:>15.4g}{f['mean_flops']:>13.4g}"
        )
    if report["ratios"]:
        lines.append(
            f"{'peer / sparse':<22}{'time ratio':>18}{'FLOP ratio':>18}{'realised share':>20}"
            + ("   target" if targets else "")
        )
        lines.append(f"{'':<22}{'median / mean':>18}{'median / mean':>18}{'median / mean':>20}")
    for peer, r in report["ratios"].items():
        line = (
            f"{peer:<22}{_pair(r, 'time_ratio', 'x'):>18}  {_pair(r, 'flop_ratio', 'x'):>16}"
            f"  {_pair(r, 'realised_share', '%'):>18}"
        )
        if targets and peer in targets:
            wanted = targets[peer]
            verdicts = [
                "met" if r[f"time_ratio_{stat}"] >= wanted else "NOT met"
                for stat in ("median", "mean")
            ]
            budget = figures[peer]["median_seconds"] / wanted
            line += (
                f"   >= {wanted:g}x: {verdicts[0]} / {verdicts[1]}"
                f" (a sparse step of at most {_ms(budget)} ms)"
            )
        lines.append(line)
    set_aside = [
        f"{method} {f['compiling_steps']} ({f['compiling_seconds']:.3g} s)"
        for method, f in figures.items()
        if f.get("compiling_steps")
    ]
    if set_aside:
        lines.append("steps set aside (numba compiled code in them): " + ", ".join(set_aside))
    sparse = figures.get("sparse")
    if sparse is not None:
        state = sparse["state_bytes"]
        units = sum(config["sizes"]) + config["n_classes"]
        per_sample = state["per_sample"] / config["n_samples"]
        lines.append(
            f"sparse state: {_mib(state['per_sample'])} per-sample arrays "
            f"({per_sample:.0f} B per sample = {per_sample / units:.1f} B x (h1+h2+K) = "
            f"{units}), {_mib(state['other'])} weight-sized buffers, "
            f"{_mib(state['product_cache'])} product cache "
            f"(X x_s of {state['cached_products']} samples), "
            f"{_mib(state['data_copy'])} feature-major copy of X"
        )
        info = sparse.get("trainer_info")
        if info:
            lines.append(
                "sparse trainer counters: " + ", ".join(f"{k}={v}" for k, v in info.items())
            )
    return "\n".join(lines)


def format_peak_memory(memory: dict) -> str:
    """A plain-text table of :func:`measure_peak_memory`'s result."""
    how = memory.get("how", "reset")
    explain = {
        "reset": "peak RSS of a subprocess while it sets the trainer up and steps, minus "
        "its RSS before (after imports and data; Linux clear_refs)",
        "baseline": "peak RSS of a subprocess, minus that of a subprocess that only "
        "imports, loads the data and builds the model",
    }[how]
    lines = [
        f"peak memory: {explain}",
        f"{'method':<22}{'net MiB':>10}{'peak MiB':>10}{'before MiB':>12}",
    ]
    for method, m in memory.items():
        if method == "how":
            continue
        lines.append(
            f"{method:<22}{m['net'] / 2**20:>10.1f}{m['peak_rss'] / 2**20:>10.1f}"
            f"{m['before'] / 2**20:>12.1f}"
        )
    return "\n".join(lines)


def _pair(r: dict, key: str, unit: str) -> str:
    a, b = r[f"{key}_median"], r[f"{key}_mean"]
    if unit == "%":
        return f"{100 * a:.1f}% / {100 * b:.1f}%"
    return f"{_times(a)} / {_times(b)}"


def _times(x: float) -> str:
    """A ratio as ``12.3x`` or ``1234x`` (three significant digits, no exponent)."""
    return f"{x:.0f}x" if x >= 100 else f"{x:.3g}x"


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


# ----------------------------------------------------------------------- state bytes


def trainer_state_bytes(trainer) -> dict:
    """Bytes of the arrays a trainer keeps between steps.

    Walks the trainer's attributes (and the lists, dicts and maxplus objects they
    hold), skipping the data ``X``, ``y`` and the model's parameters, and splits the
    arrays into ``"per_sample"`` (an axis of length N, in either layout: the
    O(N·(h1+h2+K)) forward state), ``"other"`` (weight-sized buffers and copies,
    independent of N), ``"product_cache"`` (the sparse trainer's cached
    ``X x_s``, at most :data:`maxplus.sparse.CACHE_BYTES`; ``"cached_products"`` of
    them) and ``"data_copy"`` (its feature-major copy of ``X``, N·d). A width equal to
    N would be counted as per-sample.
    """
    trainer = getattr(trainer, "trainer", trainer)  # unwrap ReusedLosses
    X = getattr(trainer, "X", None)
    n_samples = int(X.shape[0]) if X is not None else -1
    excluded = [a for a in (X, getattr(trainer, "y", None)) if isinstance(a, np.ndarray)]
    model = getattr(trainer, "model", None)
    if model is not None:
        excluded += list(model.named_parameters().values())
    names = ("per_sample", "other", "product_cache", "cached_products", "data_copy")
    totals = dict.fromkeys(names, 0)
    cache = getattr(trainer, "cache", None)
    if getattr(cache, "XT", None) is not None:
        totals["data_copy"] = int(cache.XT.nbytes)
    for entry in getattr(cache, "entries", {}).values():
        totals["product_cache"] += int(entry.nbytes)
        totals["cached_products"] += 1
        excluded.append(entry)  # counted once, as cache, wherever else it is referenced
    skip = {"model", "X", "y", "cache"}
    for array in _state_arrays(trainer, skip, excluded):
        kind = "per_sample" if n_samples in array.shape else "other"
        totals[kind] += int(array.nbytes)
    return totals


def sparse_state_bytes(trainer) -> dict:
    """:func:`trainer_state_bytes` of a :class:`maxplus.sparse.SparseTrainer`."""
    trainer = getattr(trainer, "trainer", trainer)
    if getattr(trainer, "method", None) != "sparse":
        raise TypeError(f"expected a sparse trainer, got {type(trainer).__name__}")
    return trainer_state_bytes(trainer)


def _state_arrays(root, skip: set, excluded: list):
    """Distinct arrays reachable from ``root``'s attributes (see trainer_state_bytes)."""
    seen, found = set(), []

    def visit(value, depth):
        if id(value) in seen or depth > 4:
            return
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            if value.nbytes and not any(
                np.may_share_memory(value, other) for other in excluded + found
            ):
                found.append(value)
            return
        if isinstance(value, Sequential | Linear | Tropical):
            return  # the model and its layers: parameters, not state
        if isinstance(value, dict):
            for item in value.values():
                visit(item, depth + 1)
        elif isinstance(value, list | tuple):
            for item in value:
                visit(item, depth + 1)
        elif type(value).__module__.startswith("maxplus") and hasattr(value, "__dict__"):
            for name, item in vars(value).items():
                if depth == 0 and name in skip:
                    continue
                visit(item, depth + 1)

    visit(root, 0)
    return found


# ----------------------------------------------------------------------- peak memory


def measure_peak_memory(
    X,  # noqa: N803
    y,
    *,
    sizes=(512, 128),
    lr=0.01,
    dtype="float32",
    objective="worst",
    loss="cross_entropy",
    methods=METHODS,
    steps=2,
    warmup=1,
    seed=0,
    timeout=None,
) -> dict:
    """Peak resident memory of each method's set-up and steps, each in a subprocess.

    Every child imports the same modules (maxplus with its numba kernels, torch and
    tropical-gemm when installed), loads ``X``, ``y`` (handed over as ``.npy``
    files) and builds the model; then it sets the method's trainer up and takes
    ``warmup + steps`` steps. Returns, in bytes, ``{method: {"peak_rss", "before",
    "net"}}`` with ``net = peak_rss - before`` and ``"how"``, the way it was measured:

    * ``"reset"`` (Linux): the child resets its peak (``/proc/self/clear_refs``)
      after loading, so ``before`` is its resident size then and ``peak_rss`` the
      peak of the trainer's phase alone;
    * ``"baseline"`` (elsewhere): ``peak_rss`` is the child's lifetime peak and
      ``before`` that of a baseline child that stops after building the model.

    ``net`` includes the compiled numba code a trainer loads.
    """
    for method in methods:
        check_choice("methods", method, METHODS)
    spec = {
        "sizes": [int(s) for s in _check_sizes(sizes)],
        "lr": float(lr),
        "dtype": str(np.dtype(dtype)),
        "objective": objective if isinstance(objective, str) else list(objective),
        "loss": loss,
        "steps": check_positive_int("steps", steps),
        "warmup": check_positive_int("warmup", warmup, minimum=0),
        "seed": int(seed),
    }
    report = {}
    with tempfile.TemporaryDirectory(prefix="maxplus-memory-") as folder:
        np.save(Path(folder) / "X.npy", np.asarray(backends.to_numpy(X)), allow_pickle=False)
        np.save(Path(folder) / "y.npy", np.asarray(backends.to_numpy(y)), allow_pickle=False)
        baseline = None
        for method in methods:
            child = _run_memory_child(folder, dict(spec, method=method), timeout)
            if child["reset"]:
                before, how = child["before"], "reset"
            else:
                if baseline is None:
                    baseline = _run_memory_child(folder, dict(spec, method=None), timeout)
                before, how = baseline["peak"], "baseline"
            report[method] = {"peak_rss": child["peak"], "before": before}
            report[method]["net"] = child["peak"] - before
            report["how"] = how
    return report


def _run_memory_child(folder: str, spec: dict, timeout) -> dict:
    command = [sys.executable, "-m", "maxplus.speed", folder, json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"memory measurement of {spec['method'] or 'the baseline'} failed "
            f"(exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _memory_child(folder: str, spec: dict) -> dict:
    """What a :func:`measure_peak_memory` child does: ``{"peak", "before", "reset"}``
    in bytes (``before`` None and ``peak`` the lifetime peak without a reset)."""
    from . import dense, sparse  # noqa: F401 - the same imports in every child

    for name in ("torch", "tropical_gemm.pytorch"):
        try:
            __import__(name)
        except ImportError:
            pass
    X = np.load(Path(folder) / "X.npy", allow_pickle=False)  # noqa: N806
    y = np.load(Path(folder) / "y.npy", allow_pickle=False)
    method = spec["method"]
    if method is None:  # the baseline: data and model only
        n_classes = int(y.max()) + 1
        LMM(X.shape[1], *spec["sizes"], n_classes, seed=spec["seed"], dtype=spec["dtype"])
        return {"peak": max_rss_bytes(), "before": None, "reset": False}
    objective = spec["objective"]
    reset = reset_peak_rss()
    before = current_rss_bytes() if reset else None
    stepper = WarmStepper(
        method,
        X,
        y,
        sizes=tuple(spec["sizes"]),
        objective=objective if isinstance(objective, str) else tuple(objective),
        warmup=spec["warmup"],
        **{k: spec[k] for k in ("lr", "dtype", "loss", "seed")},
    )
    stepper.steps(spec["steps"])
    peak = _proc_status_bytes("VmHWM") if reset else max_rss_bytes()
    return {"peak": peak, "before": before, "reset": reset}


def max_rss_bytes() -> int:
    """This process's lifetime peak resident set size in bytes (``getrusage``)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # macOS: bytes, Linux: KiB


def reset_peak_rss() -> bool:
    """Reset this process's peak resident size (Linux ``clear_refs``); False if not
    possible here."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _proc_status_bytes("VmHWM") is not None
    except OSError:
        return False


def current_rss_bytes() -> int | None:
    """This process's resident set size now (Linux), in bytes."""
    return _proc_status_bytes("VmRSS")


def _proc_status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name == key:
                    return int(value.split()[0]) * 1024  # reported in kB
    except OSError:
        return None
    return None


# ----------------------------------------------------------------- time per phase


class PhaseTimer:
    """A trainer wrapper that adds up the host time of each protocol call (no extra
    synchronisation: a call's time includes the waits it does itself); what is left
    of a step is the shared loop's own work (top-q, objective, best iterate)."""

    PHASES = ("losses", "gradient", "squared_norm", "apply", "flops_last")

    def __init__(self, trainer):
        self.trainer, self.method = trainer, trainer.method
        self.seconds = dict.fromkeys(self.PHASES, 0.0)

    def _timed(self, phase, call, *args):
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def losses(self, q=None):
        return self._timed("losses", self.trainer.losses, q)

    def gradient(self, rows, q):
        return self._timed("gradient", self.trainer.gradient, rows, q)

    def squared_norm(self, g):
        return self._timed("squared_norm", self.trainer.squared_norm, g)

    def apply(self, eta, g):
        return self._timed("apply", self.trainer.apply, eta, g)

    @property
    def flops_last(self):
        return self._timed("flops_last", lambda: self.trainer.flops_last)

    def touched_rows(self):
        return self.trainer.touched_rows()

    def info(self):
        return self.trainer.info()


def phase_seconds(trainer, model, q: int, steps: int, rule: str = "constant", lr: float = 0.01):
    """Mean seconds per step in each protocol call of ``trainer`` over ``steps`` steps
    of the shared loop (:func:`maxplus.training.run`), and ``"loop"``: the rest of a
    step (top-q, objective, best iterate)."""
    timer = PhaseTimer(trainer)
    started = time.perf_counter()
    result = run(timer, model, q, steps, rule, lr, 0.0, False, None)
    total = time.perf_counter() - started
    done = result.steps_done
    phases = {name: seconds / done for name, seconds in timer.seconds.items()}
    phases["loop"] = total / done - sum(phases.values())
    return phases


if __name__ == "__main__":  # the child of measure_peak_memory
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m maxplus.speed DATA_FOLDER SPEC_JSON (internal)")
    print(json.dumps(_memory_child(sys.argv[1], json.loads(sys.argv[2]))))
