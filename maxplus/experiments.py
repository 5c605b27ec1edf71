"""The reproduction's experiments, each a function returning result rows.

``python -m maxplus reproduce`` (:mod:`maxplus.reproduce`) runs them and writes the
rows to ``results.json`` / ``results.md``; the chapters can call them too. A row is

    {"claim", "dataset", "metric", "ours", "paper", "unit", "config", "note"}

``ours`` is always measured here. ``paper`` comes from :data:`PAPER`, the one place in
the code that holds the paper's figures (with the paper's wording), and is ``None``
where the paper gives no figure for the metric. ``config`` records what was run, so
that every figure can be reproduced and judged.

Experiments (the names ``--only`` accepts; a claim name selects its experiment):

* ``per_iteration_speedup``: seconds per step, sparse against every dense peer
  (:func:`maxplus.speed.measure_step_times`), MNIST-5k, LMM 784-512-128-10, float32,
  worst-sample cross-entropy, constant step;
* ``worst_vs_mean`` (claims ``worst_vs_mean_max_loss``, ``worst_vs_mean_accuracy``,
  ``worst_vs_mean_seconds``): worst-sample (top-q) training by the sparse subgradient
  method against standard LMM training (mean loss, autograd, Adam;
  :func:`maxplus.baselines.train_lmm_adam`) from the same initial network, and
  against the paper's MLP baseline, on held-out splits of Iris and MNIST-5k;
* ``iris_train_time_vs_mlp``: wall time to reach the same test accuracy on Iris, the
  max-plus model against the paper's MLP baseline;
* ``step_cost_scaling``: seconds per step against N, h1 and K (log-log slopes);
* ``topq_family``: the objective from q = 1 (worst sample) to q = N (mean);
* ``pruning``: units that no training sample selects, removed
  (:func:`maxplus.pruning.prune`);
* ``estimator_defaults``: the experiment behind :class:`MaxPlusClassifier`'s defaults;
* ``worst_sample_stall``: the worst-sample objective itself (q = 1) at several step
  sizes, and the routing that holds it above ``log K`` (:func:`routing_summary`).

The configurations live in :data:`PRESETS` (``"full"``, ``"quick"``, the book's
``"book"`` and ``"book_quick"``, and the test-only ``"tiny"``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .baselines import accuracy, train_lmm_adam, train_mlp
from .data import load_dataset, train_test_split
from .estimator import FeatureScaler
from .io import json_ready
from .losses import losses
from .network import LMM
from .objectives import parse_objective
from .training import fit

__all__ = [
    "EXPERIMENTS",
    "PAPER",
    "PRESETS",
    "Outcome",
    "Preset",
    "WorstConfig",
    "estimator_defaults",
    "iris_train_time_vs_mlp",
    "paper_figure",
    "per_iteration_speedup",
    "pruning",
    "resolve_names",
    "routing_summary",
    "step_cost_scaling",
    "topq_family",
    "worst_sample_stall",
    "worst_vs_mean",
]


# ============================================================================ the paper


@dataclass(frozen=True)
class PaperFigure:
    """One figure of the paper: ``value`` in ``unit``, with the paper's ``wording``."""

    claim: str
    key: str
    value: float
    unit: str
    wording: str


_SPEEDUP = (
    "per-iteration time, dense (standard backprop) vs sparse updates: "
    "5.6 s vs 0.12 s, a 29× speed-up"
)
_WORST = (
    "worst-sample training vs standard (average-loss) LMM training: "
    "max loss ≈ 1.64, accuracy ≈ 92% vs ≈ 69%"
)
_IRIS = (
    "training time, max-plus vs a standard MLP on Iris: 151 s vs 33 s "
    "(the paper blames its prototype)"
)

#: The paper's figures (Enaieh & Fercoq, arXiv:2603.04133), the only copy in the code.
PAPER = (
    PaperFigure("per_iteration_speedup", "dense_seconds", 5.6, "s", _SPEEDUP),
    PaperFigure("per_iteration_speedup", "sparse_seconds", 0.12, "s", _SPEEDUP),
    PaperFigure("per_iteration_speedup", "speedup", 29.0, "×", _SPEEDUP),
    PaperFigure("worst_vs_mean_max_loss", "max_loss_worst", 1.64, "", _WORST),
    PaperFigure("worst_vs_mean_accuracy", "accuracy_worst", 92.0, "%", _WORST),
    PaperFigure("worst_vs_mean_accuracy", "accuracy_standard", 69.0, "%", _WORST),
    PaperFigure("iris_train_time_vs_mlp", "maxplus_seconds", 151.0, "s", _IRIS),
    PaperFigure("iris_train_time_vs_mlp", "mlp_seconds", 33.0, "s", _IRIS),
)


def paper_figure(claim: str, key: str) -> PaperFigure:
    """The paper's figure ``key`` of ``claim`` (KeyError if the paper has none)."""
    for figure in PAPER:
        if figure.claim == claim and figure.key == key:
            return figure
    raise KeyError(f"the paper gives no figure {key!r} for claim {claim!r}")


# ============================================================================ configuration


@dataclass(frozen=True)
class WorstConfig:
    """Worst-sample (top-q) training by the subgradient method (:func:`maxplus.fit`).

    ``q`` is a count, or a fraction of the training samples when below 1. ``method``
    is the trainer: both give the same iterates; the sparse one is the paper's, and
    the one that saves work when ``q`` is small. ``init``: ``"default"``
    (``LMM(..., seed=)``) or ``"class_blocks"`` (:func:`class_block_lmm`).
    """

    sizes: tuple[int, int]
    q: float
    step: str
    lr: float
    steps: int
    method: str = "sparse"
    init: str = "default"


@dataclass(frozen=True)
class AdamConfig:
    """Standard LMM training: Adam on mini-batches of the mean loss."""

    epochs: int
    lr: float
    batch_size: int


@dataclass(frozen=True)
class MLPConfig:
    """The paper's baseline: a ReLU MLP trained by Adam (:func:`maxplus.baselines.train_mlp`)."""

    epochs: int
    lr: float = 1e-3
    batch_size: int = 16
    hidden: tuple[int, ...] = (64,)


@dataclass(frozen=True)
class StallConfig:
    """The worst-sample objective itself (q = 1, sparse trainer) at each step size of
    ``lrs``, for ``steps`` steps; the routing is read every ``every`` steps. With
    ``compare_mean`` the mean objective (q = N) runs at the same step sizes too."""

    lrs: tuple[float, ...]
    steps: int
    every: int = 50
    compare_mean: bool = False


@dataclass(frozen=True)
class Preset:
    """Everything an experiment needs to know about its size.

    ``mnist_train`` caps the MNIST training part (None: all of it). The scaling
    axes list the values of N, h1 and K; each point is timed for
    ``scaling_seconds`` seconds of steps per method (at least one step).
    """

    name: str
    datasets: tuple[str, ...] = ("iris", "mnist5k")
    test_size: float = 0.2
    seed: int = 0
    mnist_train: int | None = None
    # per_iteration_speedup
    speed_dataset: str = "mnist5k"
    speed_samples: int | None = None
    speed_sizes: tuple[int, int] = (512, 128)
    speed_steps: int = 200
    speed_warmup: int = 3
    speed_seconds: float = 60.0
    # worst_vs_mean (per data set)
    worst: dict = field(default_factory=dict)
    adam: dict = field(default_factory=dict)
    mlp: dict = field(default_factory=dict)
    # iris_train_time_vs_mlp
    iris_target: float = 0.93
    iris_max_steps: int = 5000
    iris_check_every: int = 10
    mlp_max_epochs: int = 500
    timing_repeats: int = 3
    # step_cost_scaling
    scaling_dataset: str = "mnist5k"
    scaling_N: tuple[int, ...] = (1000, 2500, 5000, 10000)  # noqa: N815
    scaling_h1: tuple[int, ...] = (64, 128, 256, 512, 1024)
    scaling_K: tuple[int, ...] = (2, 5, 10)  # noqa: N815
    scaling_base: tuple[int, int, int] = (2500, 512, 128)  # N, h1, h2 held fixed
    scaling_seconds: float = 4.0
    scaling_steps: int = 200
    # topq_family
    topq_datasets: tuple[str, ...] = ("iris",)
    topq_qs: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 0)  # 0 stands for q = N
    topq_steps: int | None = None  # None: the data set's worst-sample steps
    # pruning
    prune_datasets: tuple[str, ...] = ("iris", "mnist5k")
    # estimator_defaults
    estimator_datasets: tuple[str, ...] = ("iris", "mnist5k")
    estimator_variants: tuple[str, ...] = (  # on Iris; MNIST runs the defaults only
        "defaults",
        "no feature scaling",
        "worst sample (q=1)",
        "top 1% (q=0.01)",
        "diminishing step (lr 0.5)",
        "polyak step (lr 0.5)",
        "16/8 units",
    )
    # worst_sample_stall (per data set)
    stall: dict = field(default_factory=dict)


#: Iris: the paper's objective itself (q = 1, the worst sample), by the sparse trainer.
#: lr 0.03 and 3,000 steps: lr 0.01 is still moving at 3,000 steps, lr 0.1 swings a
#: whole class in and out between iterates (measured on the seeded split).
IRIS_WORST = WorstConfig(sizes=(64, 32), q=1, step="constant", lr=0.03, steps=3000)
#: MNIST-5k: the paper's objective itself (q = 1), sparse trainer, from class-block
#: initial weights (:func:`class_block_lmm`) with the diminishing step lr/√(t+1), lr 1.
#: From the default init, q ≤ 40 first routes every class of almost every sample
#: through one linear unit (max loss ≈ ln 10, accuracy 10%) and q = 400 reaches ~52%;
#: class blocks keep the classes on different linear units, so each step moves A.
#: Constant steps (0.05 to 0.3) reach ~51% in 1,500 steps, Polyak (target 0) and
#: diminishing lr ≥ 10 overshoot (measured on the seeded split, one thread).
MNIST_WORST = WorstConfig(
    sizes=(64, 32), q=1, step="diminishing", lr=1.0, steps=3000, init="class_blocks"
)
IRIS_ADAM = AdamConfig(epochs=100, lr=1e-3, batch_size=16)
MNIST_ADAM = AdamConfig(epochs=10, lr=1e-3, batch_size=32)
#: The MLP: 4-64-3 on Iris (the defaults of ``train_mlp``); 784-64-10 on MNIST-5k,
#: batches of 64 (batches of 16 cost 4x the time for the same accuracy).
IRIS_MLP = MLPConfig(epochs=100)
MNIST_MLP = MLPConfig(epochs=10, batch_size=64)
#: q = 1 on Iris around the worst-sample step of IRIS_WORST (0.03), against the mean
#: objective; on MNIST-5k constant steps 0.01 and 0.05 from the default init (the
#: collapse that MNIST_WORST's class-block init avoids).
IRIS_STALL = StallConfig(lrs=(0.01, 0.03, 0.1), steps=3000, every=100, compare_mean=True)
MNIST_STALL = StallConfig(lrs=(0.01, 0.05), steps=1000, every=50)

PRESETS = {
    "full": Preset(
        "full",
        worst={"iris": IRIS_WORST, "mnist5k": MNIST_WORST},
        adam={"iris": IRIS_ADAM, "mnist5k": MNIST_ADAM},
        mlp={"iris": IRIS_MLP, "mnist5k": MNIST_MLP},
        stall={"iris": IRIS_STALL, "mnist5k": MNIST_STALL},
    ),
    "quick": Preset(
        "quick",
        mnist_train=None,
        speed_steps=50,
        speed_seconds=15.0,
        worst={"iris": IRIS_WORST, "mnist5k": replace(MNIST_WORST, steps=1500)},
        adam={"iris": IRIS_ADAM, "mnist5k": replace(MNIST_ADAM, epochs=3)},
        mlp={"iris": IRIS_MLP, "mnist5k": replace(MNIST_MLP, epochs=3)},
        stall={
            "iris": replace(IRIS_STALL, steps=1000),
            "mnist5k": replace(MNIST_STALL, lrs=(0.05,), steps=300),
        },
        timing_repeats=1,
        scaling_N=(1000, 2000, 4000),
        scaling_h1=(128, 256, 512),
        scaling_K=(2, 5, 10),
        scaling_base=(2000, 256, 64),
        scaling_seconds=1.5,
        scaling_steps=40,
        topq_qs=(1, 8, 0),
        prune_datasets=("iris",),
        estimator_datasets=("iris",),
    ),
    # The book's chapter 6 (full mode: a few minutes on 2 cores): the paper's
    # comparisons on both data sets; the speed-up at LMM 784-512-128-10, a few seconds
    # of steps per method.
    "book": Preset(
        "book",
        speed_sizes=(512, 128),
        speed_steps=40,
        speed_warmup=1,
        speed_seconds=3.0,
        worst={"iris": IRIS_WORST, "mnist5k": replace(MNIST_WORST, steps=400)},
        adam={"iris": IRIS_ADAM, "mnist5k": MNIST_ADAM},
        mlp={"iris": IRIS_MLP, "mnist5k": MNIST_MLP},
        topq_qs=(1, 4, 16, 0),
        topq_steps=600,
        stall={"iris": IRIS_STALL, "mnist5k": replace(MNIST_STALL, steps=300)},
    ),
    # The book's chapter 6 in quick mode (under a minute in all): 1,000 MNIST images.
    "book_quick": Preset(
        "book_quick",
        mnist_train=1000,
        speed_samples=1000,
        speed_sizes=(128, 32),
        speed_steps=10,
        speed_warmup=1,
        speed_seconds=0.5,
        worst={"iris": replace(IRIS_WORST, steps=500), "mnist5k": replace(MNIST_WORST, steps=40)},
        adam={"iris": replace(IRIS_ADAM, epochs=30), "mnist5k": replace(MNIST_ADAM, epochs=2)},
        mlp={"iris": replace(IRIS_MLP, epochs=30), "mnist5k": replace(MNIST_MLP, epochs=2)},
        iris_max_steps=500,
        mlp_max_epochs=100,
        timing_repeats=1,
        topq_qs=(1, 8, 0),
        topq_steps=200,
        prune_datasets=("iris",),
        stall={
            "iris": replace(IRIS_STALL, lrs=(0.03, 0.1), steps=500),
            "mnist5k": replace(MNIST_STALL, lrs=(0.05,), steps=150, every=25),
        },
    ),
    # For the tests: Iris only, a few steps, seconds in all.
    "tiny": Preset(
        "tiny",
        datasets=("iris",),
        speed_dataset="iris",
        speed_sizes=(16, 8),
        speed_steps=5,
        speed_warmup=1,
        speed_seconds=0.5,
        worst={"iris": replace(IRIS_WORST, sizes=(16, 8), steps=50)},
        adam={"iris": replace(IRIS_ADAM, epochs=3)},
        mlp={"iris": replace(IRIS_MLP, epochs=3)},
        stall={"iris": StallConfig(lrs=(0.03, 0.1), steps=40, every=10, compare_mean=True)},
        iris_target=0.5,
        iris_max_steps=200,
        mlp_max_epochs=20,
        timing_repeats=1,
        scaling_dataset="iris",
        scaling_N=(60, 120),
        scaling_h1=(8, 16),
        scaling_K=(2, 3),
        scaling_base=(100, 16, 8),
        scaling_seconds=0.05,
        scaling_steps=3,
        topq_qs=(1, 0),
        prune_datasets=("iris",),
        estimator_datasets=("iris",),
        estimator_variants=("defaults",),
    ),
}


# ============================================================================ results


@dataclass
class Outcome:
    """What an experiment returns: table ``rows`` and ``series`` for its figures."""

    rows: list = field(default_factory=list)
    series: dict = field(default_factory=dict)


def make_row(claim, dataset, metric, ours, unit, config, *, paper_key=None, note="") -> dict:
    """A result row; ``paper`` is looked up in :data:`PAPER` by ``paper_key``."""
    paper = None
    if paper_key is not None:
        figure = paper_figure(claim, paper_key)
        paper = figure.value
        if figure.unit != unit:
            raise ValueError(f"unit mismatch for {claim}/{paper_key}: {unit!r} vs {figure.unit!r}")
    return {
        "claim": claim,
        "dataset": dataset,
        "metric": metric,
        "ours": None if ours is None else json_ready(ours),
        "paper": paper,
        "unit": unit,
        "config": json_ready(config),
        "note": note,
    }


def goal_note(value: float, goal: float, what: str) -> str:
    """``"goal ≥ 92%: met"`` or ``"goal ≥ 92%: MISSED"``."""
    return f"goal {what}: {'met' if value >= goal else 'MISSED'}"


# ============================================================================ data


@dataclass
class Split:
    """A held-out split; the features standardised with training statistics."""

    dataset: str
    X_train: np.ndarray  # noqa: N815
    X_test: np.ndarray  # noqa: N815
    y_train: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def describe(self) -> dict:
        return {
            "dataset": self.dataset,
            "n_train": int(len(self.y_train)),
            "n_test": int(len(self.y_test)),
            "features": "standardised, then unit RMS norm (FeatureScaler, training "
            "statistics), float32",
        }


class Data:
    """Loads each data set once, makes the seeded, scaled splits, and keeps the
    worst-sample models trained on them (several experiments use the same one)."""

    def __init__(self, preset: Preset):
        self.preset = preset
        self._raw = {}
        self._splits = {}
        self._trained = {}

    def raw(self, name: str):
        if name not in self._raw:
            self._raw[name] = load_dataset(name)
        return self._raw[name]

    def raw_split(self, name: str):
        """``(X_tr, X_te, y_tr, y_te)``, unscaled: the preset's seeded split (MNIST's
        training part cut to ``mnist_train`` samples when the preset says so)."""
        X, y = self.raw(name)
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=self.preset.test_size, seed=self.preset.seed
        )
        if name == "mnist5k" and self.preset.mnist_train is not None:
            X_tr, y_tr = X_tr[: self.preset.mnist_train], y_tr[: self.preset.mnist_train]
        return X_tr, X_te, y_tr, y_te

    def split(self, name: str) -> Split:
        """The seeded split, standardised on its training part, in float32."""
        if name not in self._splits:
            X_tr, X_te, y_tr, y_te = self.raw_split(name)
            scaler = FeatureScaler().fit(X_tr)
            self._splits[name] = Split(
                name,
                scaler.transform(X_tr).astype(np.float32),
                scaler.transform(X_te).astype(np.float32),
                y_tr.astype(np.int64),
                y_te.astype(np.int64),
            )
        return self._splits[name]

    def trained(self, name: str, cfg: WorstConfig):
        """``train_worst(split(name), cfg, seed)``, computed once."""
        key = (name, cfg)
        if key not in self._trained:
            self._trained[key] = train_worst(self.split(name), cfg, self.preset.seed)
        return self._trained[key]


# ============================================================================ helpers


def max_loss(model, X, y) -> float:  # noqa: N803
    """The largest per-sample cross-entropy of ``model`` on ``(X, y)`` (in float64)."""
    scores = np.asarray(model.scores(X), dtype=np.float64)
    return float(losses(scores, np.asarray(y), "cross_entropy").max())


def model_accuracy(model, X, y) -> float:  # noqa: N803
    return accuracy(y, np.asarray(model.predict(X)))


def class_paths(model, X, forward=None) -> list[np.ndarray]:  # noqa: N803
    """The path of every class of every sample back to a linear unit.

    In a stack ``Linear → (MaxPlus | MinPlus)+`` each tropical unit selects one
    input, so the tree of class ``k`` of sample ``n`` is a single path. Returns
    ``[P_L, ..., P_1]``, each ``(N, K)``: ``P_L[n, k] = k`` is the output unit and
    ``P_{i-1}[n, k] = σ_i[n, P_i[n, k]]`` the unit it selected in the layer below;
    ``P_0`` (last) is the linear unit reached. ``forward``: ``model.forward(X)``, when
    the caller has it already.
    """
    from . import backend as backends

    selections = (model.forward(X) if forward is None else forward).selections
    n, k = len(X), model.n_classes
    path = [np.broadcast_to(np.arange(k), (n, k))]
    for i in range(len(model.layers) - 1, 0, -1):
        sel = backends.to_numpy(selections[i])
        path.append(np.take_along_axis(sel, path[-1], axis=1))
    return path


def routing_summary(model, X, y) -> dict:  # noqa: N803
    """How the samples' trees sit on the network, and the floor it puts under F = max ℓ.

    A sample is *collapsed* when the paths of all its K classes (:func:`class_paths`)
    reach the same linear unit ``m``. Its scores are then
    ``s[n, k] = c_k + z[n, m]``, ``c_k`` the sum of the tropical weights on path k, and
    the cross-entropy ignores the common ``z[n, m]``: every collapsed sample with the
    same paths (a *group*) has the same scores up to a shift, whatever its input. In a
    group whose samples carry the labels ``G``, ``Σ_{y∈G} softmax(c)_y ≤ 1``, so one
    of them has ``softmax(c)_y ≤ 1/|G|``, i.e. a loss ``≥ log |G|``, for any values of
    the weights on the paths. While the routing stands, ``F ≥ log max_group |G|``
    (``floor``; ``log K`` when a group holds every label). The worst sample's own
    subgradient cannot break this: its tree ends at one linear unit with
    ``ζ_m = Σ_k δ_k = 0``, so the step leaves ``A`` and ``b`` alone and moves only the
    path weights, which shift the whole group together.

    Returns ``collapsed`` (fraction of samples), ``groups`` (distinct collapsed
    routings), ``labels_in_one_group`` (the largest ``|G|``), ``floor`` (its log, 0
    without collapsed samples), ``linear_units_reached``, ``max_loss``,
    ``worst_collapsed`` (whether a highest-loss sample, lowest index, is collapsed)
    and ``score_spread`` (median over samples of ``max_k s - min_k s``).
    """
    y = np.asarray(y)
    forward = model.forward(X)
    paths = class_paths(model, X, forward)
    linear = paths[-1]
    collapsed = np.all(linear == linear[:, :1], axis=1)
    scores = np.asarray(forward.scores, dtype=np.float64)
    sample_losses = losses(scores, y, "cross_entropy")
    labels_in_group, groups = 0, 0
    if collapsed.any():
        keys = np.concatenate([p[collapsed] for p in paths[1:]], axis=1)
        _, group = np.unique(keys, axis=0, return_inverse=True)
        group = group.ravel()
        groups = int(group.max()) + 1
        pairs = np.unique(np.stack([group, y[collapsed]], axis=1), axis=0)
        labels_in_group = int(np.bincount(pairs[:, 0]).max())
    return {
        "collapsed": float(collapsed.mean()),
        "groups": groups,
        "labels_in_one_group": labels_in_group,
        "floor": math.log(labels_in_group) if labels_in_group else 0.0,
        "linear_units_reached": int(np.unique(linear).size),
        "max_loss": float(sample_losses.max()),
        "worst_collapsed": bool(collapsed[int(np.argmax(sample_losses))]),
        "score_spread": float(np.median(scores.max(axis=1) - scores.min(axis=1))),
    }


def resolve_q(q: float, n: int) -> int:
    """A count ``q ≥ 1`` as is (at most N); a fraction ``0 < q < 1`` as ``ceil(qN)``
    (:func:`maxplus.objectives.parse_objective`); ``0`` as N."""
    return n if q == 0 else parse_objective(("topq", q), n, clip=True)


INITS = ("default", "class_blocks")


def class_block_lmm(n_features, n_linear, n_minplus, n_classes, seed=0, gap=10.0) -> LMM:
    """An LMM whose classes start on disjoint blocks of units.

    Linear unit ``m`` and min-plus unit ``l`` belong to class ``m mod K`` and
    ``l mod K``; ``B[l, m] = 0`` when both belong to the same class and ``gap``
    otherwise, ``C[k, l] = 0`` when ``l`` belongs to class ``k`` and ``-gap``
    otherwise; ``A ~ U(-1/√d, 1/√d)``, ``b = 0``. While the selections stay inside the
    blocks, ``s_k = max_{l∈k} min_{m∈k} z_m``: the K classes of a sample reach K
    different linear units, so no sample is *collapsed* (:func:`routing_summary`),
    the worst sample's ``ζ_m = δ_k`` is non-zero and its step moves ``A``. The default
    init (tropical weights ``N(0, 0.1²)`` against ``z ≈ b`` of spread ≈ 0.04 on
    unit-norm inputs) sends every class of most samples to one linear unit instead.
    Needs ``n_linear ≥ K`` and ``n_minplus ≥ K``.
    """
    d, h1, h2, k = n_features, n_linear, n_minplus, n_classes
    if h1 < k or h2 < k:
        raise ValueError(
            f"class blocks need n_linear and n_minplus ≥ n_classes={k}, got {h1} and {h2}"
        )
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(d)
    A = rng.uniform(-bound, bound, size=(h1, d))  # noqa: N806
    linear_class, minplus_class = np.arange(h1) % k, np.arange(h2) % k
    B = np.where(minplus_class[:, None] == linear_class[None, :], 0.0, gap)  # noqa: N806
    C = np.where(np.arange(k)[:, None] == minplus_class[None, :], 0.0, -gap)  # noqa: N806
    f32 = np.float32
    return LMM.from_arrays(A.astype(f32), np.zeros(h1, f32), B.astype(f32), C.astype(f32))


def initial_lmm(cfg: WorstConfig, n_features: int, n_classes: int, seed: int) -> LMM:
    """The initial network of ``cfg`` (its ``sizes`` and ``init``)."""
    h1, h2 = cfg.sizes
    if cfg.init == "class_blocks":
        return class_block_lmm(n_features, h1, h2, n_classes, seed=seed)
    if cfg.init == "default":
        return LMM(n_features, h1, h2, n_classes, seed=seed)
    raise ValueError(f"unknown init {cfg.init!r}; expected one of {INITS}")


def train_worst(split: Split, cfg: WorstConfig, seed: int, steps: int | None = None):
    """Worst-sample (top-q) training of a fresh LMM on ``split``; returns
    ``(initial model, FitResult, seconds)``."""
    init = initial_lmm(cfg, split.X_train.shape[1], split.n_classes, seed)
    model = init.copy()
    q = resolve_q(cfg.q, len(split.y_train))
    start = time.perf_counter()
    result = fit(
        model,
        split.X_train,
        split.y_train,
        objective=("topq", q),
        method=cfg.method,
        steps=cfg.steps if steps is None else steps,
        step=cfg.step,
        lr=cfg.lr,
    )
    return init, result, time.perf_counter() - start


def warm_up_kernels(split: Split) -> None:
    """Compile (or load) the numba kernels before anything is timed."""
    model = LMM(split.X_train.shape[1], 4, 3, split.n_classes, seed=0)
    for method in ("sparse", "dense"):
        fit(
            model.copy(),
            split.X_train[:20],
            split.y_train[:20] % split.n_classes,
            objective=("topq", 2),
            method=method,
            steps=3,
        )
    model.predict(split.X_test[:5])


@contextlib.contextmanager
def numba_threads(n: int | None):
    """Run the numba kernels on ``n`` threads (``None``: leave the setting alone)."""
    if n is None:
        yield
        return
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the exponent of a power law)."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        return float("nan")
    return float(np.polyfit(lx, ly, 1)[0])


Progress = Callable[[str], None]


def _silent(message: str) -> None:
    pass


# ============================================================================ experiments


def per_iteration_speedup(preset: Preset, data: Data, progress: Progress = _silent) -> Outcome:
    """Seconds per step: sparse against our dense, torch + tropical-gemm, torch plain.

    One :func:`maxplus.speed.measure_step_times` run, methods interleaved, from the
    same initial LMM; worst-sample cross-entropy, constant step ``lr = 0.01``,
    float32, on MNIST-5k (all 5,000 images, as the paper's set-up) unless the preset
    says otherwise. Each method runs until ``speed_steps`` timed steps or
    ``speed_seconds`` seconds of steps.
    """
    from .speed import METHODS, measure_step_times

    claim = "per_iteration_speedup"
    X, y = data.raw(preset.speed_dataset)
    if preset.speed_samples is not None:
        # a seeded subsample of all the classes: the data files are sorted by label,
        # so their first rows would hold one or two classes only
        X, y = resample(X, y, preset.speed_samples, int(y.max()) + 1, seed=preset.seed)
    X = X.astype(np.float32)
    methods, missing = available_methods(METHODS)
    progress(f"timing {', '.join(methods)} on {preset.speed_dataset} ({len(y)} samples)")
    report = measure_step_times(
        X,
        y,
        sizes=preset.speed_sizes,
        lr=0.01,
        dtype="float32",
        methods=methods,
        steps=preset.speed_steps,
        warmup=preset.speed_warmup,
        seed=preset.seed,
        max_seconds=preset.speed_seconds,
    )
    config = dict(report["config"], dataset=preset.speed_dataset, features="pixels / 255")
    if missing:
        config["not_measured"] = missing
    out = Outcome(series={"report": report})
    figures = report["methods"]
    ds = preset.speed_dataset
    labels = {
        "sparse": "sparse (ours)",
        "dense": "dense (ours, numba)",
        "torch_tropical_gemm": "dense (torch + tropical-gemm)",
        "torch_plain": "dense (torch, plain)",
    }
    for method in methods:
        fig = figures[method]
        key = "sparse_seconds" if method == "sparse" else "dense_seconds"
        steps_note = f"{fig['timed_steps']} timed steps; mean {fig['mean_seconds']:.4g} s"
        out.rows.append(
            make_row(
                claim,
                ds,
                f"seconds per step, {labels[method]} (median)",
                fig["median_seconds"],
                "s",
                config,
                paper_key=key,
                note=steps_note,
            )
        )
    for method, r in report["ratios"].items():
        out.rows.append(
            make_row(
                claim,
                ds,
                f"speed-up per step, {labels[method]} / sparse (median)",
                r["time_ratio_median"],
                "×",
                config,
                paper_key="speedup",
                note=f"mean-based {r['time_ratio_mean']:.3g}× (includes periodic refreshes)",
            )
        )
    if report["ratios"]:
        r = next(iter(report["ratios"].values()))
        out.rows.append(
            make_row(
                claim,
                ds,
                "counted FLOPs per step, dense / sparse (median)",
                r["flop_ratio_median"],
                "×",
                config,
                note="the algorithmic limit of the speed-up",
            )
        )
    return out


def available_methods(methods) -> tuple[list, list]:
    """The methods that can run here, and ``"method: why not"`` for the others."""
    ok, missing = [], []
    for method in methods:
        try:
            if method.startswith("torch"):
                import torch  # noqa: F401
            if method == "torch_tropical_gemm":
                import tropical_gemm.pytorch  # noqa: F401
        except ImportError as exc:
            missing.append(f"{method}: {exc}")
            continue
        ok.append(method)
    return ok, missing


def worst_vs_mean(preset: Preset, data: Data, progress: Progress = _silent) -> Outcome:
    """Worst-sample training against standard LMM training and the MLP baseline.

    Worst-sample: the top-q objective of :data:`PRESETS` (``WorstConfig``) by the
    sparse subgradient method; the reported model is the best iterate (lowest
    training objective). Standard: :func:`maxplus.baselines.train_lmm_adam` (mean
    cross-entropy, mini-batches, Adam) from the same initial network, final iterate.
    MLP: :func:`maxplus.baselines.train_mlp` (``MLPConfig``; skipped when the preset
    has none for the data set), final iterate. All on the standardised training part;
    accuracy on the held-out part; max loss over the training part; training wall
    seconds (one thread each).
    """
    out = Outcome()
    for name in preset.datasets:
        split = data.split(name)
        warm_up_kernels(split)
        cfg, adam = preset.worst[name], preset.adam[name]
        progress(f"{name}: worst-sample training, {cfg}")
        init, result, worst_seconds = data.trained(name, cfg)
        progress(f"{name}: standard LMM training (Adam), {adam}")
        standard = train_lmm_adam(
            init,
            split.X_train,
            split.y_train,
            epochs=adam.epochs,
            lr=adam.lr,
            batch_size=adam.batch_size,
            seed=preset.seed,
        )
        q = result.q
        worst_cfg = dict(
            asdict(cfg),
            q=q,
            objective=f"top-{q} cross-entropy",
            iterate=f"best (step {result.best_step} of {result.steps_done})",
            seconds=round(worst_seconds, 2),
            **split.describe(),
        )
        std_cfg = dict(
            asdict(adam),
            sizes=cfg.sizes,
            objective="mean cross-entropy",
            optimizer="Adam",
            seconds=round(standard.train_seconds, 2),
            **split.describe(),
        )
        worst_label = f"worst-sample training (top-{q})" if q > 1 else "worst-sample training"
        std_label = "standard LMM training (Adam)"
        models = {
            worst_label: (result.best, worst_cfg, worst_seconds, f"{result.steps_done} steps"),
            std_label: (standard.model, std_cfg, standard.train_seconds, f"{adam.epochs} epochs"),
        }
        series = {}
        mlp_cfg = preset.mlp.get(name)
        if mlp_cfg is not None:
            progress(f"{name}: MLP baseline, {mlp_cfg}")
            train_mlp(split.X_train[:32], split.y_train[:32], epochs=1)  # torch start-up
            mlp = train_mlp(
                split.X_train,
                split.y_train,
                hidden=mlp_cfg.hidden,
                epochs=mlp_cfg.epochs,
                lr=mlp_cfg.lr,
                batch_size=mlp_cfg.batch_size,
                seed=preset.seed,
                n_classes=split.n_classes,
            )
            widths = "-".join(map(str, (split.X_train.shape[1], *mlp_cfg.hidden, split.n_classes)))
            config = dict(
                asdict(mlp_cfg),
                model=f"MLP {widths} (ReLU)",
                objective="mean cross-entropy",
                optimizer="Adam",
                seconds=round(mlp.train_seconds, 2),
                **split.describe(),
            )
            models["MLP (PyTorch)"] = (mlp, config, mlp.train_seconds, f"{mlp_cfg.epochs} epochs")
            series["mlp_loss"] = list(mlp.history["loss"])
        for label, (model, config, seconds, length) in models.items():
            loss = max_loss(model, split.X_train, split.y_train)
            acc = 100 * model_accuracy(model, split.X_test, split.y_test)
            worst = label == worst_label
            standard_lmm = label == std_label
            out.rows.append(
                make_row(
                    "worst_vs_mean_max_loss",
                    name,
                    f"max training loss, {label}",
                    loss,
                    "",
                    config,
                    paper_key="max_loss_worst" if worst else None,
                )
            )
            note = goal_note(acc, 92.0, "≥ 92%") if worst else ""
            key = "accuracy_worst" if worst else "accuracy_standard" if standard_lmm else None
            out.rows.append(
                make_row(
                    "worst_vs_mean_accuracy",
                    name,
                    f"test accuracy, {label}",
                    acc,
                    "%",
                    config,
                    paper_key=key,
                    note=note,
                )
            )
            out.rows.append(
                make_row(
                    "worst_vs_mean_seconds",
                    name,
                    f"training seconds, {label}",
                    seconds,
                    "s",
                    config,
                    note=f"{length}, one thread",
                )
            )
            series[label] = {"max_loss": loss, "accuracy": acc, "seconds": seconds}
        series["objective"] = list(result.history["objective"])
        series["adam_loss"] = list(standard.history["loss"])
        out.series[name] = series
    return out


def iris_train_time_vs_mlp(preset: Preset, data: Data, progress: Progress = _silent) -> Outcome:
    """Wall time to reach the same test accuracy on Iris: max-plus vs the MLP.

    Like with like: both models train on the same standardised training part and
    must reach ``iris_target`` accuracy on the same held-out part. Both trainers are
    deterministic, so the time to the target is measured in two passes: a first pass
    finds the number of steps (max-plus, checked every ``iris_check_every`` steps)
    or epochs (MLP, by bisection) after which the model first reaches the target;
    a second pass times training for exactly that long, without any evaluation,
    after a warm-up (numba compilation, torch start-up) and on one thread each
    (numba and torch). The median of ``timing_repeats`` timed runs is reported.
    """
    claim = "iris_train_time_vs_mlp"
    split = data.split("iris")
    cfg = preset.worst["iris"]
    target = preset.iris_target
    warm_up_kernels(split)
    train_mlp(split.X_train, split.y_train, epochs=1)

    progress(f"max-plus: steps to {100 * target:.0f}% test accuracy ({cfg.step}, lr {cfg.lr})")
    steps_needed = steps_to_target(split, cfg, preset, target)
    progress(f"MLP: epochs to {100 * target:.0f}% test accuracy")
    epochs_needed = epochs_to_target(split, preset, target)

    def time_maxplus():
        _, result, seconds = train_worst(split, cfg, preset.seed, steps=steps_needed)
        return seconds, model_accuracy(result.model, split.X_test, split.y_test)

    def time_mlp():
        start = time.perf_counter()
        mlp = train_mlp(split.X_train, split.y_train, epochs=epochs_needed, seed=preset.seed)
        return time.perf_counter() - start, mlp.score(split.X_test, split.y_test)

    times = {"maxplus": [], "mlp": []}
    acc = {}
    with numba_threads(1):
        for _ in range(preset.timing_repeats):
            if steps_needed is not None:
                seconds, acc["maxplus"] = time_maxplus()
                times["maxplus"].append(seconds)
            if epochs_needed is not None:
                seconds, acc["mlp"] = time_mlp()
                times["mlp"].append(seconds)
    median = {k: float(np.median(v)) if v else None for k, v in times.items()}
    q = resolve_q(cfg.q, len(split.y_train))
    common = dict(
        target_test_accuracy=target, threads=1, repeats=preset.timing_repeats, **split.describe()
    )
    mp_cfg = dict(
        common,
        model=f"LMM 4-{cfg.sizes[0]}-{cfg.sizes[1]}-3",
        trainer="sparse",
        objective=f"top-{q}",
        step=cfg.step,
        lr=cfg.lr,
        steps=steps_needed,
        reached=acc.get("maxplus"),
        max_steps=preset.iris_max_steps,
    )
    mlp_cfg = dict(
        common,
        model="MLP 4-64-3 (ReLU)",
        optimizer="Adam lr 1e-3, batch 16",
        epochs=epochs_needed,
        reached=acc.get("mlp"),
        max_epochs=preset.mlp_max_epochs,
    )
    never = "never reached the target"
    out = Outcome(series={"times": times, "steps": steps_needed, "epochs": epochs_needed})
    out.rows.append(
        make_row(
            claim,
            "iris",
            f"seconds to {100 * target:.0f}% test accuracy, max-plus (sparse)",
            median["maxplus"],
            "s",
            mp_cfg,
            paper_key="maxplus_seconds",
            note=never if steps_needed is None else f"{steps_needed} steps",
        )
    )
    out.rows.append(
        make_row(
            claim,
            "iris",
            f"seconds to {100 * target:.0f}% test accuracy, MLP (PyTorch)",
            median["mlp"],
            "s",
            mlp_cfg,
            paper_key="mlp_seconds",
            note=never if epochs_needed is None else f"{epochs_needed} epochs",
        )
    )
    if median["maxplus"] and median["mlp"]:
        ratio = median["mlp"] / median["maxplus"]
        out.rows.append(
            make_row(
                claim,
                "iris",
                "MLP time / max-plus time",
                ratio,
                "×",
                {"maxplus": mp_cfg, "mlp": mlp_cfg},
                note=goal_note(ratio, 1.0, "max-plus faster than the MLP (> 1×)")
                + f"; paper: {paper_figure(claim, 'mlp_seconds').value:g} s / "
                f"{paper_figure(claim, 'maxplus_seconds').value:g} s",
            )
        )
    return out


def steps_to_target(split: Split, cfg: WorstConfig, preset: Preset, target: float):
    """First step count (a multiple of ``iris_check_every``) whose iterate reaches
    ``target`` test accuracy, or None within ``iris_max_steps``."""
    found = []

    def check(t, objective, model):
        if (t + 1) % preset.iris_check_every == 0:
            if model_accuracy(model, split.X_test, split.y_test) >= target:
                found.append(t + 1)
                return True
        return False

    model = initial_lmm(cfg, split.X_train.shape[1], split.n_classes, preset.seed)
    fit(
        model,
        split.X_train,
        split.y_train,
        objective=("topq", resolve_q(cfg.q, len(split.y_train))),
        method="sparse",
        steps=preset.iris_max_steps,
        step=cfg.step,
        lr=cfg.lr,
        callback=check,
    )
    return found[0] if found else None


def epochs_to_target(split: Split, preset: Preset, target: float):
    """Fewest epochs after which the (deterministic) MLP reaches ``target`` test
    accuracy, by doubling then bisection; None within ``mlp_max_epochs``."""

    def reaches(epochs):
        mlp = train_mlp(split.X_train, split.y_train, epochs=epochs, seed=preset.seed)
        return mlp.score(split.X_test, split.y_test) >= target

    hi = 1
    while not reaches(hi):
        if hi >= preset.mlp_max_epochs:
            return None
        hi = min(2 * hi, preset.mlp_max_epochs)
    lo = hi // 2  # fails (or 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi


def step_cost_scaling(preset: Preset, data: Data, progress: Progress = _silent) -> Outcome:
    """Seconds per step of the sparse and dense trainers against N, h1 and K.

    One axis varies at a time around ``scaling_base`` = (N, h1, h2); the worst-sample
    cross-entropy, constant step 0.01, float32, pixels / 255. N: MNIST-5k subsampled,
    or replicated (tiled) beyond 5,000. K: the images of the digits ``0..K-1``,
    subsampled or replicated to the base N. Reported: the log-log slope (the
    exponent ``a`` in ``time ∝ x^a``) per method and axis; every point is in the
    series (and the figure).
    """
    from .speed import measure_step_times

    claim = "step_cost_scaling"
    X, y = data.raw(preset.scaling_dataset)
    X = X.astype(np.float32)
    n0, h1_0, h2_0 = preset.scaling_base
    K0 = int(y.max()) + 1  # noqa: N806
    axes = {
        "N": [(n, h1_0, K0) for n in preset.scaling_N],
        "h1": [(n0, h, K0) for h in preset.scaling_h1],
        "K": [(n0, h1_0, k) for k in preset.scaling_K],
    }
    series = {}
    out = Outcome(series=series)
    for axis, points in axes.items():
        series[axis] = []
        for n, h1, k in points:
            Xp, yp = resample(X, y, n, k, seed=preset.seed)
            progress(f"{axis}: N={n}, h1={h1}, K={k}")
            report = measure_step_times(
                Xp,
                yp,
                sizes=(h1, min(h2_0, h1)),
                lr=0.01,
                methods=("sparse", "dense"),
                steps=preset.scaling_steps,
                warmup=2,
                seed=preset.seed,
                max_seconds=preset.scaling_seconds,
            )
            m = report["methods"]
            series[axis].append(
                {
                    "N": n,
                    "h1": h1,
                    "K": k,
                    "sparse_median": m["sparse"]["median_seconds"],
                    "sparse_mean": m["sparse"]["mean_seconds"],
                    "dense_median": m["dense"]["median_seconds"],
                    "dense_mean": m["dense"]["mean_seconds"],
                    "sparse_flops": m["sparse"]["median_flops"],
                    "dense_flops": m["dense"]["median_flops"],
                }
            )
        xs = [p[axis] for p in series[axis]]
        config = {
            "base": {"N": n0, "h1": h1_0, "h2": h2_0, "K": K0},
            axis: xs,
            "dataset": preset.scaling_dataset,
            "statistic": "median seconds per step",
            "seconds_per_point": preset.scaling_seconds,
        }
        for method in ("sparse", "dense"):
            slope = loglog_slope(xs, [p[f"{method}_median"] for p in series[axis]])
            out.rows.append(
                make_row(
                    claim,
                    preset.scaling_dataset,
                    f"exponent of seconds per step in {axis}, {method}",
                    slope,
                    "",
                    config,
                    note="beyond the paper; time ∝ x^exponent",
                )
            )
    return out


def resample(X, y, n: int, k: int, seed: int = 0):  # noqa: N803
    """``n`` samples of the classes ``0..k-1``: a seeded subsample, or the whole set
    tiled (replicated) and cut to ``n``."""
    keep = y < k
    X, y = X[keep], y[keep]
    rng = np.random.default_rng(seed)
    if n <= len(y):
        rows = np.sort(rng.choice(len(y), size=n, replace=False))
    else:
        rows = np.resize(np.arange(len(y)), n)
    return np.ascontiguousarray(X[rows]), y[rows]


def topq_family(preset: Preset, data: Data, progress: Progress = _silent) -> Outcome:
    """The top-q objective from q = 1 (worst sample) to q = N (mean loss).

    Same initial LMM, sizes, step rule, learning rate and number of steps as the
    data set's worst-sample configuration (``topq_steps`` steps when the preset sets
    it); only q varies. Per q: test accuracy and max training loss of the best
    iterate, and training seconds.
    """
    claim = "topq_family"
    out = Outcome()
    for name in preset.topq_datasets:
        split = data.split(name)
        base = preset.worst[name]
        if preset.topq_steps is not None:
            base = replace(base, steps=preset.topq_steps)
        n = len(split.y_train)
        qs = sorted({resolve_q(q, n) for q in preset.topq_qs})
        points = []
        warm_up_kernels(split)
        for q in qs:
            progress(f"{name}: q = {q}")
            train_worst(split, replace(base, q=q), preset.seed, steps=2)  # warm-up
            _, result, seconds = train_worst(split, replace(base, q=q), preset.seed)
            points.append(
                {
                    "q": q,
                    "accuracy": 100 * model_accuracy(result.best, split.X_test, split.y_test),
                    "max_loss": max_loss(result.best, split.X_train, split.y_train),
                    "seconds": seconds,
                    "seconds_per_step": seconds / max(1, result.steps_done),
                }
            )
        out.series[name] = points
        config = dict(asdict(base), qs=qs, **split.describe())
        best = max(points, key=lambda p: p["accuracy"])
        picks = [
            ("q = 1", points[0]),
            (f"q = N = {n}", points[-1]),
            (f"best q = {best['q']}", best),
        ]
        for label, p in picks:
            out.rows.append(
                make_row(
                    claim,
                    name,
                    f"test accuracy, {label}",
                    p["accuracy"],
                    "%",
                    config,
                    note="beyond the paper",
                )
            )
        for label, p in picks[:2]:
            out.rows.append(
                make_row(claim, name, f"max training loss, {label}", p["max_loss"], "", config)
            )
            out.rows.append(
                make_row(
                    claim,
                    name,
                    f"training seconds, {label}",
                    p["seconds"],
                    "s",
                    config,
                    note=f"{base.steps} steps",
                )
            )
    return out


def pruning(preset: Preset, data: Data, progress: Progress = _silent) -> Outcome:
    """Remove the units that no training sample selects after worst-sample training.

    Reported: parameters kept, whether predictions on the training set are identical
    (they must be), and test accuracy before and after.
    """
    from .pruning import prune

    claim = "pruning"
    out = Outcome()
    for name in preset.prune_datasets:
        split = data.split(name)
        cfg = preset.worst[name]
        progress(f"{name}: training, then pruning")
        _, result, _ = data.trained(name, cfg)
        model = result.best
        pruned = prune(model, split.X_train)
        kept = [layer.shape[0] for layer in pruned.layers]
        same = float(
            np.mean(
                np.asarray(pruned.predict(split.X_train))
                == np.asarray(model.predict(split.X_train))
            )
        )
        config = dict(
            asdict(cfg),
            architecture_before=model.architecture,
            architecture_after=pruned.architecture,
            units_kept=kept,
            **split.describe(),
        )
        out.rows.append(
            make_row(
                claim,
                name,
                "parameters kept after pruning",
                100 * pruned.n_parameters / model.n_parameters,
                "%",
                config,
                note=f"{model.n_parameters} → {pruned.n_parameters}; beyond the paper",
            )
        )
        out.rows.append(
            make_row(
                claim,
                name,
                "training predictions unchanged by pruning",
                100 * same,
                "%",
                config,
                note="must be 100",
            )
        )
        for label, m in (("before", model), ("after", pruned)):
            out.rows.append(
                make_row(
                    claim,
                    name,
                    f"test accuracy, {label} pruning",
                    100 * model_accuracy(m, split.X_test, split.y_test),
                    "%",
                    config,
                )
            )
    return out


def worst_sample_stall(preset: Preset, data: Data, progress: Progress = _silent) -> Outcome:
    """The paper's objective itself, q = 1, and what holds it up.

    Per data set of ``preset.stall`` and step size: worst-sample training of the
    data set's LMM (sizes of its ``WorstConfig``; sparse trainer, constant step) for
    ``steps`` steps, the routing of the training samples (:func:`routing_summary`)
    read every ``every`` steps and at the best iterate, and the best iterate's test
    accuracy. With ``compare_mean``: the mean objective (q = N, dense trainer: the
    same iterates as the sparse one, cheaper when every tree moves) at the same
    step sizes, from the same initial network.
    """
    claim = "worst_sample_stall"
    out = Outcome()
    for name, cfg in preset.stall.items():
        split = data.split(name)
        sizes = preset.worst[name].sizes
        log_k = math.log(split.n_classes)
        runs = []
        warm_up_kernels(split)
        for lr in cfg.lrs:
            progress(f"{name}: q = 1, lr {lr}, {cfg.steps} steps")
            worst = WorstConfig(sizes=sizes, q=1, step="constant", lr=lr, steps=cfg.steps)
            run = stall_run(split, worst, cfg.every, preset.seed)
            if cfg.compare_mean:
                progress(f"{name}: mean objective, lr {lr}")
                run["mean"] = mean_run(split, replace(worst, q=0, method="dense"), preset.seed)
            runs.append(run)
            config = dict(asdict(worst), log_K=log_k, **split.describe())
            for metric, value, unit, note in stall_rows(run, log_k):
                out.rows.append(
                    make_row(claim, name, f"{metric}, lr {lr:g}", value, unit, config, note=note)
                )
        out.series[name] = {"log_K": log_k, "steps": cfg.steps, "runs": runs}
    return out


def stall_run(split: Split, cfg: WorstConfig, every: int, seed: int) -> dict:
    """Worst-sample training (``cfg``, q = 1) with the routing read every ``every``
    steps; the series of :func:`worst_sample_stall` for one step size."""
    X, y = split.X_train, split.y_train
    h1, h2 = cfg.sizes
    model = LMM(X.shape[1], h1, h2, split.n_classes, seed=seed)
    trace = [{"step": 0, **routing_summary(model, X, y)}]

    def read(t, objective, current):
        if (t + 1) % every == 0:
            trace.append({"step": t + 1, **routing_summary(current, X, y)})
        return False

    result = fit(
        model,
        X,
        y,
        objective="worst",
        method=cfg.method,
        steps=cfg.steps,
        step=cfg.step,
        lr=cfg.lr,
        callback=read,
    )
    return {
        "lr": cfg.lr,
        "objective": list(result.history["objective"]),
        "trace": trace,
        "best": routing_summary(result.best, X, y),
        "best_step": result.best_step,
        "accuracy": 100 * model_accuracy(result.best, split.X_test, split.y_test),
        "mean": None,
    }


def mean_run(split: Split, cfg: WorstConfig, seed: int) -> dict:
    """The best iterate of ``cfg`` (the mean objective): accuracy, max loss, curve."""
    _, result, _ = train_worst(split, cfg, seed)
    return {
        "accuracy": 100 * model_accuracy(result.best, split.X_test, split.y_test),
        "max_loss": max_loss(result.best, split.X_train, split.y_train),
        "objective": list(result.history["objective"]),
    }


def stall_rows(run: dict, log_k: float) -> list[tuple]:
    """``(metric, value, unit, note)`` of one step size of :func:`worst_sample_stall`."""
    best = run["best"]
    rows = [
        (
            "best max training loss, q = 1",
            best["max_loss"],
            "",
            f"log K = {log_k:.3g}; best at step {run['best_step']}",
        ),
        ("test accuracy, q = 1", run["accuracy"], "%", "best iterate"),
        (
            "training samples with all classes on one linear unit, q = 1",
            100 * best["collapsed"],
            "%",
            f"{best['groups']} routing group(s)",
        ),
        (
            "routing floor under the max loss, q = 1",
            best["floor"],
            "",
            f"|G| = {best['labels_in_one_group']} labels share one routing"
            if best["groups"]
            else "no sample has all its classes on one linear unit",
        ),
    ]
    if run["mean"] is not None:
        mean = run["mean"]
        rows.append(("test accuracy, mean objective (q = N)", mean["accuracy"], "%", "best"))
        rows.append(("max training loss, mean objective (q = N)", mean["max_loss"], "", "best"))
    return rows


ESTIMATOR_VARIANTS = {
    "defaults": {},
    "no feature scaling": {"standardize": False},
    "worst sample (q=1)": {"objective": "worst"},
    "top 1% (q=0.01)": {"objective": ("topq", 0.01)},
    "diminishing step (lr 0.5)": {"step": "diminishing", "lr": 0.5},
    "polyak step (lr 0.5)": {"step": "polyak", "lr": 0.5},
    "16/8 units": {"n_linear": 16, "n_minplus": 8},
}


def estimator_defaults(preset: Preset, data: Data, progress: Progress = _silent) -> Outcome:
    """The experiment behind :class:`maxplus.estimator.MaxPlusClassifier`'s defaults.

    The estimator with its defaults, and with one default changed at a time, trained
    on the raw training part (it standardises inside) and scored on the held-out
    part. Reported: test accuracy and fit seconds of each variant.
    """
    from .estimator import MaxPlusClassifier

    claim = "estimator_defaults"
    out = Outcome()
    for name in preset.estimator_datasets:
        X_tr, X_te, y_tr, y_te = data.raw_split(name)
        out.series[name] = {}
        variants = preset.estimator_variants if name == "iris" else ("defaults",)
        for variant in variants:
            params = ESTIMATOR_VARIANTS[variant]
            progress(f"{name}: {variant}")
            clf = MaxPlusClassifier(**params)
            start = time.perf_counter()
            clf.fit(X_tr, y_tr)
            seconds = time.perf_counter() - start
            acc = 100 * clf.score(X_te, y_te)
            config = dict(clf.get_params(), n_train=len(y_tr), n_test=len(y_te))
            note = f"fit {seconds:.1f} s"
            if variant == "defaults":
                note += "; " + goal_note(acc, 92.0, "≥ 92%")
            out.rows.append(
                make_row(claim, name, f"test accuracy, {variant}", acc, "%", config, note=note)
            )
            out.series[name][variant] = {"accuracy": acc, "seconds": seconds}
    return out


# ============================================================================ registry


@dataclass(frozen=True)
class Experiment:
    """``threads``: numba threads for the experiment (None: leave the setting). The
    training experiments use 1: their problems are too small for threads to pay, and
    on a shared machine spinning OpenMP threads make steps 10-100 times slower."""

    name: str
    claims: tuple[str, ...]
    run: Callable
    summary: str
    threads: int | None = 1

    def __call__(self, preset: Preset, data: Data, progress: Progress = _silent) -> Outcome:
        with numba_threads(self.threads):
            return self.run(preset, data, progress)


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment(
            "per_iteration_speedup",
            ("per_iteration_speedup",),
            per_iteration_speedup,
            "seconds per step, sparse vs every dense peer (MNIST-5k, 784-512-128-10)",
            threads=None,
        ),
        Experiment(
            "worst_vs_mean",
            ("worst_vs_mean_max_loss", "worst_vs_mean_accuracy", "worst_vs_mean_seconds"),
            worst_vs_mean,
            "worst-sample vs standard LMM training and the MLP (Iris, MNIST-5k)",
        ),
        Experiment(
            "iris_train_time_vs_mlp",
            ("iris_train_time_vs_mlp",),
            iris_train_time_vs_mlp,
            "time to the same test accuracy on Iris, max-plus vs MLP",
        ),
        Experiment(
            "step_cost_scaling",
            ("step_cost_scaling",),
            step_cost_scaling,
            "seconds per step against N, h1 and K (log-log)",
            threads=None,
        ),
        Experiment(
            "topq_family", ("topq_family",), topq_family, "the top-q objective from q = 1 to q = N"
        ),
        Experiment(
            "pruning", ("pruning",), pruning, "removing the units no training sample selects"
        ),
        Experiment(
            "estimator_defaults",
            ("estimator_defaults",),
            estimator_defaults,
            "MaxPlusClassifier's defaults against one change at a time",
        ),
        Experiment(
            "worst_sample_stall",
            ("worst_sample_stall",),
            worst_sample_stall,
            "the worst-sample objective (q = 1) at several steps, and its routing floor",
        ),
    )
}


def resolve_names(names) -> list[str]:
    """Experiment names for ``--only`` arguments (experiment or claim names)."""
    if not names:
        return list(EXPERIMENTS)
    chosen = []
    for name in names:
        matches = [e.name for e in EXPERIMENTS.values() if name == e.name or name in e.claims]
        if not matches:
            known = sorted({n for e in EXPERIMENTS.values() for n in (e.name, *e.claims)})
            raise ValueError(f"unknown experiment or claim {name!r}; known: {', '.join(known)}")
        chosen += [m for m in matches if m not in chosen]
    return chosen
