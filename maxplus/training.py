"""``fit``: the subgradient method on the top-q objective, dense or sparse.

Each step evaluates the objective at the current iterate θ_t, selects its samples,
builds the subgradient g_t, and moves θ_{t+1} = θ_t − η_t g_t. ``method="dense"``
recomputes everything from scratch; ``method="sparse"`` walks only the selected
samples' computational trees and repairs the stored forward state. Both produce
the same iterates.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import backend
from ._validation import check_choice, check_positive_float, check_positive_int
from .losses import LOSSES
from .network import Sequential
from .objectives import objective_value, parse_objective, top_q
from .steps import STEP_RULES, step_size

METHODS = ("sparse", "dense")


@dataclass
class FitResult:
    """What :func:`fit` returns.

    ``model`` is the trained model (the last iterate, the same object that was
    passed in); ``best`` a copy of the iterate with the lowest objective, found at
    iterate ``best_step`` (0 = the initial parameters, ``steps`` = the last).
    ``history[key][t]`` describes iterate θ_t before step t's update:
    ``"objective"``, ``"worst_index"`` (the highest-loss sample), ``"flops"`` (the
    step's counted FLOPs) and ``"seconds"`` (its wall time); ``"step_size"`` too.
    """

    model: Sequential
    best: Sequential
    best_objective: float
    best_step: int
    final_objective: float
    history: dict
    method: str
    q: int
    stopped: str = "steps"
    info: dict = field(default_factory=dict)

    @property
    def steps_done(self) -> int:
        return len(self.history["objective"])

    def __repr__(self) -> str:
        return (
            f"FitResult(method={self.method!r}, q={self.q}, steps={self.steps_done}, "
            f"objective {self.history['objective'][0]:.4g} → {self.final_objective:.4g}, "
            f"best {self.best_objective:.4g} at step {self.best_step})"
        )


def fit(
    model,
    X,
    y,
    objective="worst",
    method="sparse",
    steps=1000,
    step="constant",
    lr=0.05,  # noqa: N803
    loss="cross_entropy",
    progress=False,
    *,
    target=0.0,
    refresh_every=100,
    exact=False,
    callback=None,
) -> FitResult:
    """Train ``model`` in place by the subgradient method; see the module docstring.

    Parameters
    ----------
    model : Sequential (e.g. :class:`maxplus.LMM`)
    X : array (N, d);  y : integer array (N,) in 0..K−1
    objective : ``"worst"``, ``"mean"`` or ``("topq", q)`` (q a count in 1..N, or a
        float fraction of N in (0, 1])
    method : ``"sparse"`` or ``"dense"``
    steps : number of subgradient steps (≥ 1)
    step : ``"constant"``, ``"diminishing"`` (lr/√(t+1)) or ``"polyak"``
        (lr·(F − target)/‖g‖²)
    lr : base step length (> 0)
    loss : ``"cross_entropy"`` or ``"hinge"``
    progress : show a progress bar with the current objective
    target : the Polyak rule's target value F*
    refresh_every : sparse method: recompute the cached linear state from scratch
        every this many steps (bounds rounding drift); ignored when ``exact``
    exact : sparse method: recompute changed linear columns instead of updating
        them, so the stored state is bitwise a fresh forward pass
    callback : optional ``callback(t, objective, model)`` after each step;
        returning True stops training

    Returns
    -------
    FitResult
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a maxplus Sequential/LMM, got {type(model).__name__}")
    check_choice("method", method, METHODS)
    check_choice("loss", loss, LOSSES)
    check_choice("step", step, STEP_RULES)
    steps = check_positive_int("steps", steps)
    lr = check_positive_float("lr", lr)
    refresh_every = check_positive_int("refresh_every", refresh_every)
    if not isinstance(target, int | float) or not np.isfinite(target):
        raise ValueError(f"target must be a finite number, got {target!r}")
    X = model.check_input(X)
    y = check_labels(y, X.shape[0], model.n_classes, model.xp)
    q = parse_objective(objective, X.shape[0])
    trainer = make_trainer(method, model, X, y, loss, refresh_every=refresh_every, exact=exact)
    return run(trainer, model, q, steps, step, lr, target, progress, callback)


def check_labels(y, n_samples: int, n_classes: int, xp):
    """``y`` as an int64 array of length N with values in 0..K−1."""
    y_host = backend.to_numpy(y)
    if y_host.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y_host.shape}")
    if y_host.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {y_host.shape[0]} labels")
    if n_samples == 0:
        raise ValueError("X and y are empty: need at least one sample")
    if y_host.dtype.kind == "f":
        if not np.all(np.isfinite(y_host)) or np.any(y_host != np.round(y_host)):
            raise ValueError("y must hold integer class labels")
    elif y_host.dtype.kind not in "iub":
        raise TypeError(f"y has dtype {y_host.dtype}; expected integer class labels")
    bad = (y_host < 0) | (y_host >= n_classes)
    if np.any(bad):
        value = y_host[np.argmax(bad)].item()
        raise ValueError(
            f"y has label {value!r} outside 0..{n_classes - 1} (the model has {n_classes} classes)"
        )
    return xp.asarray(y_host.astype(np.int64))


def make_trainer(method, model, X, y, loss, *, refresh_every=100, exact=False):  # noqa: N803
    if not backend.is_numpy_namespace(model.xp):
        from .gpu_training import make_gpu_trainer

        return make_gpu_trainer(method, model, X, y, loss, refresh_every=refresh_every, exact=exact)
    if method == "dense":
        from .dense import DenseTrainer

        return DenseTrainer(model, X, y, loss)
    from .sparse import SparseTrainer

    return SparseTrainer(model, X, y, loss, refresh_every=refresh_every, exact=exact)


def run(trainer, model, q, steps, rule, lr, target, progress, callback) -> FitResult:
    """The subgradient loop shared by every trainer."""
    history = {"objective": [], "worst_index": [], "flops": [], "seconds": [], "step_size": []}
    best = BestIterate(model)
    bar = progress_bar(steps) if progress else None
    stopped = "steps"
    xp = model.xp
    with contextlib.ExitStack() as stack:
        interrupts = stack.enter_context(DeferredInterrupts())
        if bar is not None:
            stack.callback(bar.close)
        for t in range(steps):
            start = time.perf_counter()
            losses = trainer.losses(q)
            rows = top_q(losses, q, xp)
            F = objective_value(losses, rows, xp)
            worst = int(xp.argmax(losses)) if q > 1 else int(rows[0])
            best.offer(F, t, model, trainer.touched_rows())
            g = trainer.gradient(rows, q)
            sq_norm = trainer.squared_norm(g)
            eta = step_size(rule, lr, t, F, sq_norm, target)
            interrupts.hold()
            try:
                trainer.apply(eta, g)
            finally:
                interrupts.release()
            history["seconds"].append(time.perf_counter() - start)
            history["objective"].append(F)
            history["worst_index"].append(worst)
            history["flops"].append(trainer.flops_last)
            history["step_size"].append(eta)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(objective=f"{F:.4f}", refresh=False)
            if sq_norm == 0.0:
                stopped = "zero subgradient"
                break
            if callback is not None and callback(t, F, model):
                stopped = "callback"
                break
    losses = trainer.losses(q)
    final = objective_value(losses, top_q(losses, q, xp), xp)
    best.offer(final, len(history["objective"]), model, trainer.touched_rows())
    return FitResult(
        model,
        best.model,
        best.objective,
        best.step,
        final,
        history,
        trainer.method,
        q,
        stopped,
        info=trainer_info(trainer),
    )


def trainer_info(trainer) -> dict:
    info = getattr(trainer, "info", None)
    return dict(info()) if callable(info) else {}


def joined(chunks: list):
    """The arrays ``chunks`` end to end (the only one itself, not a copy)."""
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


class BestIterate:
    """A copy of the best iterate so far, refreshed by copying only the rows that
    changed since the last copy (when the trainer reports them)."""

    def __init__(self, model):
        self.model = model.copy()
        self.params = self.model.named_parameters()  # the copy's own arrays, kept
        self.objective = np.inf
        self.step = -1
        self.dirty = {}
        self.all_dirty = False

    def offer(self, F, t, model, touched) -> None:  # noqa: N803
        if touched is None:
            self.all_dirty = True
        else:
            for name, rows in touched.items():
                self.dirty.setdefault(name, []).append(rows)
        if F < self.objective:
            self.sync(model)
            self.objective, self.step = F, t

    def sync(self, model) -> None:
        live, mine = model.named_parameters(), self.params
        if self.all_dirty:
            for name, param in live.items():
                mine[name][...] = param
        else:
            for name, chunks in self.dirty.items():
                rows = joined(chunks)
                mine[name][rows] = live[name][rows]  # a row listed twice is copied twice
        self.dirty, self.all_dirty = {}, False


class DeferredInterrupts:
    """For the whole loop: Ctrl-C (SIGINT) is held back while the parameters are
    being updated (between :meth:`hold` and :meth:`release`, which then raises it), so
    an interrupted fit leaves the model at a complete iterate; elsewhere it goes to
    the handler that was there before. The handler is installed once, not per step
    (installing one costs tens of microseconds)."""

    def __enter__(self):
        self.holding = self.received = False
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = signal.signal(signal.SIGINT, self.handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            signal.signal(signal.SIGINT, self.previous)

    def handle(self, signum, frame) -> None:
        if self.holding:
            self.received = True
        elif callable(self.previous):
            self.previous(signum, frame)
        elif self.previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        if self.received:
            self.received = False
            raise KeyboardInterrupt


def progress_bar(steps):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=steps, desc="fit", file=sys.stderr, leave=True)
