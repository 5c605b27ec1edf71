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
# # Performance and hardware
#
# ## Overview
#
# The previous chapters counted operations; this one measures time. Two kernels carry
# the package: the tropical matrix product with indices, which every forward pass and
# every dense step runs, and the sparse trainer's step, which replaces a full forward and
# backward pass by one short computational tree and a repair of the stored state. We ask
# of each how fast it is, against what it could be and against its peers:
#
# - the product against the Rust library `tropical-gemm`, against NumPy and PyTorch
#   broadcasting, and against a *roof*, the speed of its own inner loop on data that
#   never leaves the L1 cache;
# - one numba thread against two;
# - the sparse training step against our dense step and against PyTorch autograd (with
#   tropical-gemm's kernels, and plain), with the counted FLOPs beside the seconds, so
#   that we can say which share of the algorithmic saving the implementation realises,
#   and where the rest goes;
# - the memory each trainer keeps;
# - the GPU backend: what it does, how it is tested on machines without a GPU, and how
#   to measure it on one;
# - and how the asv benchmark suite tracks all of this from commit to commit.
#
# Every number below is measured when the chapter runs, on the machine that runs it.
# The book is built on a small shared machine (two cores, often busy with other work):
# absolute times move from run to run, so we compare implementations **side by side**,
# in interleaved rounds within one measurement, and read ratios rather than times.
#
# We use:
#
# - `maxplus.peers`: the product of ours and of each peer as a callable
#   (`get_product`), `compare_products` (interleaved timing of ours, peers and the roof,
#   with a check that all return the same values and indices), `interleaved_medians`;
# - `maxplus.roof.L1Roof`, the in-run compute roof;
# - `maxplus.speed`: `measure_step_times`, `format_step_times`, `WarmStepper`,
#   `phase_seconds`, `measure_peak_memory`, `trainer_state_bytes`;
# - `maxplus.sync_audit`: `audit_syncs`, the samples synchronised per step against those
#   whose loss actually reached the top;
# - `maxplus.experiments`: `available_methods` (which peers can run here) and
#   `numba_threads`;
# - `maxplus.gpu_training` and `maxplus.kernels.gpu_twin`, the GPU trainers and the CPU
#   twins of their kernels.

# %%
import inspect
import json
import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numba
import numpy as np
from IPython.display import Markdown, display
from matplotlib.ticker import FuncFormatter

import maxplus as mp
from maxplus import backend, flops, peers, speed, training
from maxplus import experiments as ex
from maxplus.book import quick_mode, use_book_style
from maxplus.losses import losses
from maxplus.roof import L1Roof
from maxplus.sync_audit import audit_syncs

use_book_style()
QUICK = quick_mode()
THREADS = numba.get_num_threads()
ROOT = Path(mp.__file__).resolve().parents[1]  # the checkout (an editable install)


def machine_load() -> str:
    """The 1-minute load average against the number of cores (Unix only)."""
    if not hasattr(os, "getloadavg"):
        return "load average unknown"
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


print("quick mode" if QUICK else "full mode")
print(f"{os.cpu_count()} cores, {THREADS} numba threads; {machine_load()}")

# %% [markdown]
# ## The max-plus product: why no BLAS, and what bounds it
#
# A max-plus layer computes
#
# $$
# C_{ij} = \max_k \; A_{ik} + B_{kj}, \qquad I_{ij} = \min \{ k : A_{ik} + B_{kj} = C_{ij} \},
# $$ (eq-product-indices)
#
# the values *and* the selected indices, which the backward pass and the sparse trainer
# need. It has the shape of a matrix product, but none of the machinery that makes
# matrix products fast applies:
#
# - **No fused instruction.** An ordinary product does one multiply-add per pair
#   $(k, j)$, and CPUs execute a whole vector of them in one *fused multiply-add* (FMA)
#   instruction; BLAS libraries are built around it. Here each pair costs an addition, a
#   comparison with the running best, and, when the candidate wins, an update of the
#   value and of the index: about four vector instructions per vector of pairs, and
#   twice the registers (values and indices).
# - **No algebraic shortcut.** $(\max, +)$ has no subtraction, so Strassen-like schemes
#   do not exist; nor can the product be handed to a GEMM after a change of variables
#   without losing exactness and the indices.
# - **The same blocking.** What does carry over is the memory side: our numba kernel
#   (`maxplus.kernels.cpu_products`) runs the loops in the order $i, k, j$ on blocks of
#   4 rows of $A$ and 512 columns of $B$, keeps the accumulators in L1, and the innermost
#   loop is contiguous and vectorised; the strict comparison keeps the lowest index on
#   ties because $k$ increases.
#
# So the product is bounded by **arithmetic**: pairs per second per core, set by the
# SIMD width and the instructions per pair. Rather than trusting a data sheet (this is a
# virtual machine, with a nominal clock), we *measure* the bound: `maxplus.roof.L1Roof`
# runs the very inner loop of the product, add, compare, keep value and index, on a
# block of $B$ and accumulators that fit in the L1 cache, on as many threads as the
# product uses, for as many pairs. Repeating the same block, the branch is always
# predicted and nothing is rewritten: no real product should beat it (on a busy machine
# every median carries some noise, so a fraction near or even slightly above 1 reads
# "at the roof"). What the CPU advertises:

# %%
def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            line = next(ln for ln in f if ln.startswith("flags"))
        return set(line.split(":", 1)[1].split())
    except (OSError, StopIteration):
        return set()


def nominal_mhz() -> float | None:
    try:
        with open("/proc/cpuinfo") as f:
            return float(next(ln for ln in f if ln.startswith("cpu MHz")).split(":")[1])
    except (OSError, StopIteration, ValueError):
        return None


flags = cpu_flags()
simd = next(((name, bits) for name, bits in (("avx512f", 512), ("avx2", 256), ("sse2", 128))
             if name in flags), ("unknown", 128))
LANES = simd[1] // 32  # float32 lanes per vector
MHZ = nominal_mhz()
print(f"widest vector extension: {simd[0]} ({simd[1]} bits = {LANES} float32 lanes)")
print(f"nominal clock: {MHZ:.0f} MHz" if MHZ else "nominal clock: unknown")

# %% [markdown]
# With $L$ lanes, about four vector instructions per vector of pairs and two vector
# units per core, a core can retire at most about $L/2$ pairs per cycle, against $2L$
# multiply-adds per cycle for a GEMM with two FMA units: the same silicon does a
# tropical pair at a quarter of the rate of a multiply-add, at best. That is a bound
# for ideal code on an idle core at its nominal clock. The measured roof is the bound
# for *our* loop as the compiler builds it (the vector width it picks, how it compiles
# the conditional update), on the share of the cores that the machine gives us now; we
# print both, and measure the products against the second.
#
# Now the contenders, each measured by `maxplus.peers.compare_products` in one run:
# interleaved rounds (one call of each per round, in a rotating order, after a warm-up
# round), the median per contender, and a check that every peer returns exactly our
# values and indices. The broadcasting baselines materialise the $n \times k \times m$
# candidates in chunks and reduce them; we run them on the smaller sizes only.

# %%
available = peers.available_products()
for name, why in available.items():
    print(f"{name:14s}: {'available' if why is None else 'SKIPPED, ' + why}")
compiled = [p for p in ("tropical-gemm",) if available[p] is None]
broadcast = [p for p in ("numpy", "torch") if available[p] is None]

sizes = [64, 128, 256] if QUICK else [64, 128, 256, 512, 1024]
broadcast_up_to = 256 if QUICK else 512
repeats = 3 if QUICK else 7
comparisons = {}
for n in sizes:
    others = tuple(compiled + (broadcast if n <= broadcast_up_to else []))
    comparisons[n] = peers.compare_products((n, n, n), peers=others, repeats=repeats)
    assert comparisons[n].all_agree(), comparisons[n].report()
print(f"square products n x n x n, float32, max-plus with indices; median of {repeats} "
      f"interleaved rounds; {THREADS} threads; {machine_load()}")
print(f"{'n':>6}{'G pairs':>9}" + "".join(f"{name:>15}" for name in
                                         [peers.OURS, *compiled, *broadcast, peers.ROOF]))
for n, result in comparisons.items():
    cells = [f"{result.gpairs(name):15.3f}" if name in result.seconds else f"{'—':>15}"
             for name in [peers.OURS, *compiled, *broadcast, peers.ROOF]]
    print(f"{n:6d}{peers.pairs((n, n, n)) / 1e9:9.4f}" + "".join(cells) + "   G pairs/s")
print("every peer returned exactly our values and indices")

# %% [markdown]
# The MNIST layer of the paper is far from square: 5,000 images of 784 pixels by 784 × 256
# units, about a billion pairs, too many for the broadcasting baselines within the
# book's budget (quick mode takes its first 1,000 images).

# %%
mnist_shape = (1000 if QUICK else 5000, 784, 256)
mnist_layer = peers.compare_products(mnist_shape, peers=tuple(compiled), repeats=repeats)
assert mnist_layer.all_agree()
print(mnist_layer.report())

# %% [markdown]
# The square sizes as ratios: our throughput over each peer's (above 1: ours is
# faster), and our share of the roof.

# %%
print(f"{'n':>6}" + "".join(f"{'ours / ' + p:>23}" for p in compiled + broadcast)
      + f"{'ours / roof':>14}")
for n, result in comparisons.items():
    cells = [f"{result.speedup_over(p):23.2f}" if p in result.seconds else f"{'—':>23}"
             for p in compiled + broadcast]
    print(f"{n:6d}" + "".join(cells) + f"{result.roof_fraction:14.2f}")

largest = comparisons[sizes[-1]]
roof_per_core = largest.gpairs(peers.ROOF) * 1e9 / largest.threads
if MHZ:
    per_cycle = roof_per_core / (MHZ * 1e6)
    print(f"\nthe measured roof: {roof_per_core / 1e9:.2f} G pairs/s per thread = "
          f"{per_cycle:.1f} pairs per nominal cycle; the instruction count above allows "
          f"{LANES / 2:.0f}")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7.5, 4.4))
names = [peers.OURS, *compiled, *broadcast]
for i, name in enumerate(names):
    ns = [n for n in sizes if name in comparisons[n].seconds]
    ax.plot(ns, [comparisons[n].gpairs(name) for n in ns], "o-", color=f"C{i}",
            label=name if name != peers.OURS else "maxplus (ours)")
ax.plot(sizes, [comparisons[n].gpairs(peers.ROOF) for n in sizes], "k--", lw=1.2,
        label="L1 roof (the inner loop alone)")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
ax.set_xlabel("$n$ (product $n \\times n$ by $n \\times n$, float32)")
ax.set_ylabel("G pairs / s")
ax.set_title(f"max-plus product with indices, {THREADS} threads, measured side by side")
ax.legend(fontsize=8)
plt.show()

# %%
def span(values) -> str:
    low, high = min(values), max(values)
    if f"{low:.2f}" == f"{high:.2f}":
        return f"{low:.2f}×"
    return f"between {low:.2f}× and {high:.2f}×"


sentences = [f"ours reached {span([c.roof_fraction for c in comparisons.values()])} the "
             "throughput of the roof"]
for peer in compiled + broadcast:
    measured = [c.speedup_over(peer) for c in comparisons.values() if peer in c.seconds]
    sentences.append(f"ours ran {span(measured)} as fast as `{peer}`")
display(Markdown("Over the sizes of this run, " + "; ".join(sentences) + "."))

# %% [markdown]
# Read the figure by its gaps. The broadcasting baselines write and read back every
# candidate $A_{ik} + B_{kj}$: they are bound by memory traffic, not by the arithmetic
# of the pairs. The compiled kernels stream only $A$ and $B$; as $n$ grows their fixed
# costs (waking threads, allocating $C$ and $I$, the edges of the blocks) are amortised
# and the roof is the limit that remains. `python benchmarks/compare_products.py
# --baselines` measures the full MNIST layer against every peer with the same
# function.
#
# ## One thread or two
#
# The product parallelises over blocks of rows, with no communication between threads,
# so a second core should nearly double it, *if* the core is free. On a shared machine
# it often is not: another process may hold it. We therefore time, in the same
# interleaved rounds, our product and the roof on one thread and on two; the roof on
# two threads tells what the second core is really worth at this moment.

# %%
def on_threads(count, call):
    """``call`` run with ``count`` numba threads (then back to the previous setting)."""
    def run():
        with ex.numba_threads(count):
            call()
    return run


n_threads_size = 256 if QUICK else 512
shape = (n_threads_size,) * 3
A, B = peers.random_operands(shape)
ours = peers.get_product(peers.OURS)
thread_calls = {}
for count in sorted({1, THREADS}):
    thread_calls[f"ours, {count} thread(s)"] = on_threads(count, lambda: ours(A, B))
    thread_calls[f"roof, {count} thread(s)"] = on_threads(
        count, L1Roof(peers.pairs(shape), threads=count))
thread_seconds = peers.interleaved_medians(thread_calls, repeats=repeats + 2)
print(f"{shape[0]}^3 product; median of {repeats + 2} interleaved rounds; {machine_load()}")
for name, seconds in thread_seconds.items():
    print(f"{name:22s}: {peers.gpairs_per_second(shape, seconds):6.2f} G pairs/s")
if THREADS > 1:
    gain = {what: thread_seconds[f"{what}, 1 thread(s)"] / thread_seconds[f"{what}, {THREADS} "
                                                                          "thread(s)"]
            for what in ("ours", "roof")}
    print(f"speed-up from 1 to {THREADS} threads: ours {gain['ours']:.2f}x, "
          f"roof {gain['roof']:.2f}x")

# %% [markdown]
# When the roof itself gains less than twofold, the second core was busy with something
# else, and our product cannot be expected to gain more. (tropical-gemm sizes its
# thread pool, Rayon's, once per process, so it cannot be switched in the same run;
# `python benchmarks/compare_products.py --threads 1` runs every library on one thread.)
#
# ## The training step
#
# The issue behind this project sets two targets at the **reference configuration**:
# MNIST-5k, the LMM 784-512-128-10, float32, the worst-sample cross-entropy, a
# constant step. The sparse step should be at least 100 times faster than a step of
# PyTorch autograd with tropical-gemm's kernels, and at least 1000 times faster than
# plain PyTorch autograd (broadcasting). The reference measurement is
#
#     python benchmarks/compare_training.py
#
# which runs all four methods side by side at three learning rates (plain PyTorch needs
# gigabytes there, see the memory section). Here, within the book's budget, we run the
# same function,
# `maxplus.speed.measure_step_times`, on a smaller LMM over the same 5,000 images. Every
# method takes the same step from the same parameters; set-up and warm-up steps are not
# timed, and steps are then taken in interleaved rounds.
#
# Beside the seconds we put the counted FLOPs (chapter 5): the dense methods' formula,
# and what the sparse trainer's kernels actually did. Their quotient, the **FLOP
# ratio**, is the speed-up the algorithm allows; the time ratio divided by it, the
# **realised share**, is how much of that the implementation delivers.

# %%
TARGETS = speed.SPEEDUP_TARGETS  # the project's goals at the reference configuration


methods, missing = ex.available_methods(speed.METHODS)
for why in missing:
    print(f"not measured here: {why}")

X, y = mp.load_mnist5k()
N, d = X.shape
K = int(y.max()) + 1
BOOK_SIZES = (64, 16) if QUICK else (128, 32)
LR = 0.01
report = speed.measure_step_times(
    X, y, sizes=BOOK_SIZES, lr=LR, methods=methods,
    steps=6 if QUICK else 50, warmup=1 if QUICK else 3, max_seconds=0.5 if QUICK else 6.0,
)
print(machine_load())
print(speed.format_step_times(report, TARGETS))

# %% [markdown]
# The targets are stated for the reference network; the verdicts above are for the
# book's smaller one, where a dense step is cheaper and the FLOP ratio smaller. What
# the FLOP ratio looks like at the reference configuration needs only the sparse
# trainer (a few steps) and the dense formula:

# %%
REFERENCE_SIZES = (512, 128)
reference = speed.WarmStepper("sparse", X, y, sizes=REFERENCE_SIZES, lr=LR, warmup=1)
reference_flops = np.median(reference.steps(3 if QUICK else 10)["flops"])
reference_dense = flops.dense_step_flops(reference.model, N)
print(f"reference {reference.model.architecture}: dense step {reference_dense:.3g} FLOPs, "
      f"sparse step (median of the steps taken) {reference_flops:.3g} FLOPs: "
      f"FLOP ratio {reference_dense / reference_flops:.0f}x")
del reference

# %% [markdown]
# **Along the trajectory.** The dense step costs the same at every iterate; the sparse
# step does not. Its repair is proportional to how many selections change, and that
# depends on where training is. One worst-sample trajectory of the book network, its
# sparse step's seconds and its objective:

# %%
TRAJECTORY_STEPS = 60 if QUICK else 600
along = mp.LMM(d, *BOOK_SIZES, K, seed=0, dtype="float32")
trajectory = mp.fit(along, X, y, objective="worst", method="sparse",
                    steps=TRAJECTORY_STEPS, step="constant", lr=LR)
step_ms = 1e3 * np.asarray(trajectory.history["seconds"])
window = TRAJECTORY_STEPS // 6
for start in range(0, TRAJECTORY_STEPS, window):
    part = step_ms[start:start + window]
    print(f"steps {start:4d}-{start + window - 1:4d}: median {np.median(part):6.2f} ms, "
          f"objective {trajectory.history['objective'][start]:.4f}")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(step_ms, lw=0.6, color="C0")
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("sparse step (ms)", color="C0")
twin = ax.twinx()
twin.plot(trajectory.history["objective"], color="C3", lw=1)
twin.set_ylabel("worst-sample loss", color="C3")
ax.set_title(f"the sparse step along one trajectory, lr = {LR:g}")
plt.show()

# %% [markdown]
# The side-by-side measurement can therefore start later: `after=S` hands every method
# the iterate after S steps (the same for all, since their iterates agree), which is
# `compare_training.py --after S`. From the last iterate of the trajectory above (passed
# as `start`, so that it is not trained again):

# %%
later = speed.measure_step_times(
    X, y, sizes=BOOK_SIZES, lr=LR, methods=tuple(m for m in methods if m != "torch_plain"),
    steps=6 if QUICK else 50, warmup=1 if QUICK else 3, max_seconds=0.5 if QUICK else 6.0,
    after=TRAJECTORY_STEPS, start=along.named_parameters(),
)
print(speed.format_step_times(later, TARGETS))

# %% [markdown]
# The book configuration, in one picture: seconds per step against FLOPs per step, for
# every method. A method that executed its FLOPs at the same rate as another would sit
# on the same diagonal; the vertical distance between the diagonals is the rate.

# %%
figures = report["methods"]
rates = {m: f["median_flops"] / f["median_seconds"] for m, f in figures.items()}
for method, rate in rates.items():
    print(f"{method:22s}: {figures[method]['median_seconds'] * 1e3:9.2f} ms per step, "
          f"{figures[method]['median_flops']:10.3g} FLOPs, {rate / 1e9:7.3f} GFLOP/s")
ratios = report["ratios"]
shares = {peer: r["realised_share_median"] for peer, r in ratios.items()}
display(Markdown(
    "In this run the FLOP ratio of the book configuration is "
    f"{ratios['dense']['flop_ratio_median']:.0f}×, and a peer's step took this many times "
    "the sparse step: "
    + ", ".join(f"{r['time_ratio_median']:.2f}× (`{peer}`)" for peer, r in ratios.items())
    + " (medians). The sparse step realises "
    + ", ".join(f"{100 * s:.1f}%" for s in shares.values())
    + " of the FLOP ratio against these peers, in the same order. The sparse step runs "
    f"its counted FLOPs at {rates['sparse'] / 1e9:.3f} GFLOP/s, the dense step at "
    f"{rates['dense'] / 1e9:.3f} GFLOP/s."
))

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 4.4))
for i, (method, f) in enumerate(figures.items()):
    ax.scatter(f["median_flops"], f["median_seconds"], s=60, color=f"C{i}", label=method,
               zorder=3)
x_line = np.array([min(f["median_flops"] for f in figures.values()) / 3,
                   max(f["median_flops"] for f in figures.values()) * 3])
for method in ("sparse", "dense"):
    ax.plot(x_line, x_line / rates[method], ":", color="gray", lw=1)
    ax.annotate(f"{method}'s rate", (x_line[1], x_line[1] / rates[method]), fontsize=8,
                color="gray", xytext=(-8, 4), textcoords="offset points", ha="right",
                va="bottom")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("FLOPs per step (counted)")
ax.set_ylabel("seconds per step (median)")
ax.set_title(f"one step on MNIST-5k, {report['config']['architecture']}")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### Where the sparse step's time goes
#
# The sparse step does a small fraction of the dense step's FLOPs, at a much lower rate.
# Three reasons, which the measurements below make visible.
#
# **Every sample moves.** After a step, the linear units $M$ of the tree move along the
# worst sample $x^*$, and every sample's output moves by
# $-\eta\,\zeta_m (x_n \cdot x^* + 1)$ (chapter 5). MNIST pixels are non-negative, so
# $x_n \cdot x^* + 1 \ge 1$ for *every* $n$: no sample is spared, and all of them move the
# same way. The lazy synchronisation of the trainer repairs a sample only when its loss
# could have reached the top, but every step raises every sample's bound on how far its
# loss may have risen, so it can skip a sample only for a while. The bound counts a
# unit's move only for the samples whose min-plus layer selects that unit, or for
# which the unit may have come close enough to take an output over, and it counts the
# whole move since the sample's last synchronisation rather than the sum of the
# steps' moves (chapter 5). At small steps a sample then waits for many steps (the
# *synced* column below).

# %%
initial = mp.LMM(d, *BOOK_SIZES, K, seed=0, dtype="float32")  # the measured steppers' start
worst = int(np.argmax(losses(initial.scores(X), y, "cross_entropy")))
r = X @ X[worst] + 1.0
print(f"pixels: min {X.min():.1f}, max {X.max():.1f}, {np.mean(X > 0):.0%} non-zero")
print(f"x_n · x* + 1 for the first worst sample (n* = {worst}): min {r.min():.2f}, "
      f"median {np.median(r):.1f}; samples with a zero move: {int(np.sum(r == 0))} of {N}")

# %% [markdown]
# **Selections churn, more with a larger step.** A moved linear output can change the
# selections of the min-plus units that read it, and those of the max-plus units after
# them. The repair settles what it can with stored bounds in O(1), swaps to a stored
# runner-up, and rescans a unit only when its bound is binding. The trainer
# counts each kind of work (`counters`): per repaired (*synced*) sample, outputs whose
# selected input moved and simply *followed* it (O(1)); improved inputs *certified* by
# their stored thresholds not to take over anything (O(1)); *takeover passes* of an
# improved input over every output of the layer; worsened outputs *swapped* to their
# stored runner-up (O(1)) or *rescanned* over every input. The max-plus score layer
# (ten outputs over $h_2$ inputs) keeps one bound per output instead of that
# bookkeeping, and its work is counted as candidates *recomputed* or checked
# (chapter 5). We take the same number of steps at each learning rate and divide by the
# steps.

# %%
lrs = (0.01, 0.001) if QUICK else (0.01, 0.001, 0.0001)
churn_steps = 6 if QUICK else 30
churn, churned = {}, {}
for lr in lrs:
    stepper = churned[lr] = speed.WarmStepper("sparse", X, y, sizes=BOOK_SIZES, lr=lr, warmup=1)
    before = dict(stepper.trainer.counters)
    history = stepper.steps(churn_steps)
    per_step = {k: (stepper.trainer.counters[k] - before[k]) / churn_steps for k in before}
    per_step["ms"] = 1e3 * float(np.median(history["seconds"]))
    churn[lr] = per_step
h1, h2 = BOOK_SIZES
print(f"{report['config']['architecture']}, N = {N}: per step (mean of {churn_steps} steps "
      f"after 1 warm-up step); {machine_load()}")
print(f"{'lr':>8}{'synced':>10}{'followed':>11}{'certified':>11}{'swaps':>9}"
      f"{'takeovers':>11}{'rescans':>10}{'median ms':>11}")
for lr, c in churn.items():
    print(f"{lr:8g}{c['synced'] / N:10.0%}{c['followed']:11.0f}{c['certified']:11.0f}"
          f"{c['swaps']:9.0f}{c['takeover_passes']:11.0f}{c['rescans']:10.0f}{c['ms']:11.2f}")
print(f"(synced: share of the N samples repaired per step; {N * h2:,} min-plus and "
      f"{N * K:,} max-plus outputs in all; candidates recomputed in the score layer per "
      f"step: " + ", ".join(f"{c['recomputed']:,.0f} at lr {lr:g}" for lr, c in churn.items())
      + ")")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 4))
kinds = ["synced", "followed", "certified", "swaps", "takeover_passes", "rescans"]
width = 0.8 / len(lrs)
for i, lr in enumerate(lrs):
    ax.bar(np.arange(len(kinds)) + (i - (len(lrs) - 1) / 2) * width,
           [max(churn[lr][k], 0.5) for k in kinds], width, label=f"lr = {lr:g}")
ax.set_xticks(np.arange(len(kinds)), [k.replace("_", "\n") if k != "synced" else
                                      "samples\nsynced" for k in kinds])
ax.set_yscale("log")
ax.set_ylabel("per step (mean)")
ax.set_title(f"repair work of the sparse trainer per step, N = {N}")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Most of the synchronised samples did not need it.** A sample is synchronised when
# its loss bound says it *may* have reached the largest loss. `maxplus.sync_audit`
# computes every loss afresh at each step (for the measurement only) and counts, beside
# the samples synchronised, the waiting samples whose loss actually reached the largest:
# a bound equal to each sample's actual rise would have synchronised only those. It
# also gives the median bound, its uniform part (every layer's largest weight moves and
# rounding, which every sample carries) and the median actual rise of a waiting loss:

# %%
audit_steps = 4 if QUICK else 15
audits = {lr: audit_syncs(X, y, lr=lr, steps=audit_steps, sizes=BOOK_SIZES, warmup=1)
          for lr in lrs}
print(f"per step, mean of {audit_steps} steps after 1 warm-up step from the initial network")
print(f"{'lr':>8}{'synced':>9}{'needed':>9}{'median bound':>14}{'of it uniform':>15}"
      f"{'median rise':>13}")
for lr, a in audits.items():
    print(f"{lr:8g}{a['synced'].mean():9.1f}{a['needed'].mean():9.1f}"
          f"{np.median(a['bound']):14.2e}{np.median(a['uniform']):15.2e}"
          f"{np.median(a['rise']):13.2e}")
excess = min(a["synced"].mean() / max(a["needed"].mean(), 1.0) for a in audits.values())
share = max(np.median(a["rise"]) / np.median(a["bound"]) for a in audits.values())
display(Markdown(
    f"At every step size here the trainer synchronised at least {excess:.0f}× as many "
    "samples as needed. The bound is sound (a test checks that every needed sample is "
    "synchronised) but coarse: it adds up the largest rise and fall of any input the "
    "sample's first tropical layer selects, and every layer's largest weight moves. The "
    f"median actual rise was at most {max(share, 0.0):.1%} of the median bound. A tighter "
    "bound would save each spared synchronisation's fixed cost and its score-layer "
    "recompute, but less of the repair than the counts suggest: a sample's repair absorbs "
    "whatever moved since its last synchronisation, so sparing one mostly defers that "
    "work to the next, or to the refresh. The README lists the bounds tried."
))

# %% [markdown]
# **The repair is the step.** The trainer repairs lazily: a step only logs what moved,
# and the next call of `losses` brings every sample that could be among the worst up to
# date. Timing each call of the trainer's protocol inside `mp.fit`'s loop
# (`maxplus.speed.phase_seconds`) separates the repair from the rest, over the next
# steps of the trajectory counted above at the learning rate `LR`:

# %%
stepper = churned[LR]
phases = speed.phase_seconds(stepper.trainer, stepper.model, stepper.q, churn_steps, lr=LR)
labels = {"losses": "losses (the repair)", "gradient": "gradient (the trees)",
          "apply": "apply (update, X x*, bounds)"}
total = sum(phases.values())
for phase, seconds in phases.items():
    print(f"{labels.get(phase, phase):30s}: {1e3 * seconds:8.2f} ms per step ({seconds / total:5.1%})")

# %% [markdown]
# **The repair waits on memory.** Each repaired sample reads and writes its own rows
# of the stored state (outputs, selections, runner bounds, thresholds), and each step
# chains data-dependent look-ups: a selection names the weight to read, whose result
# decides the next layer's work. Bandwidth is not what limits it: even if each synced
# sample's *whole* state were streamed once per step (an overestimate), the rate would
# be far below what one core streams through a plain sum, measured here. What remains
# is the latency of scattered accesses, at two cores.

# %%
state = figures["sparse"]["state_bytes"]
synced_share = churn[LR]["synced"] / N
upper_bytes = state["per_sample"] * synced_share  # touched per step, at most
big = np.ones(32 * 2**20)  # 256 MiB of float64
stream = peers.interleaved_medians({"sum": big.sum}, repeats=3, warmup=1, min_sample=0)
stream_rate = big.nbytes / stream["sum"]
repair_rate = upper_bytes / (churn[LR]["ms"] / 1e3)
del big
print(f"sparse state {state['per_sample'] / 2**20:.1f} MiB per-sample arrays; "
      f"{synced_share:.0%} of the samples synced per step at lr = {LR:g}")
print(f"state bytes per second of the step, at most: {repair_rate / 1e9:.2f} GB/s; "
      f"one core streaming a sum: {stream_rate / 1e9:.2f} GB/s")

# %% [markdown]
# Together: the step's FLOPs are few, most of its time is the repair (the shares
# printed above), the repair visits most samples at the larger steps, and each visit is
# a chain of dependent memory accesses. That is why the realised share is small.
#
# One trap of numba cost a fifth of the step at the larger learning rates until it was
# found. A compiled function that is not inlined increments and decrements, atomically,
# the reference count of every array passed to it, and both threads of the repair
# share those counters: each call of a helper (a takeover, a swap, a rescan) moved their
# cache line from one core to the other, about 200 ns a call. The helpers allocate
# nothing, so they are compiled without reference counting (`_nrt=False`, through the
# decorator of `maxplus.kernels.uncounted`); alternated in one process with the code
# before, the first steps at lr 0.01 went from 33 to 27 ms a step, with the same iterates.
# The two helpers called most, a takeover and a swap to a runner-up, are now inlined
# into the repair (no call, no thirteen arrays passed): 0.82× the mean step in the first
# steps at lr 0.01, paired the same way. Inlining had a trap of its own. A helper that
# bound more than three of the state's arrays in one statement (`H, S, S2, R3 = st[0],
# st[1], st[2], st[3]`) lost its writes to them: CPython builds a tuple for such an
# unpacking, numba's alias analysis does not see through it, and the dead-code pass of
# the parallel loop drops a write to an array it believes nothing reads. The tests that
# compare the repaired state with a fresh forward pass after every step caught it; a
# quicker test now reads the source of every numba-compiled function and fails on any
# statement that binds more than three names at once from anything but a call's
# result (a tuple or list written out, a variable, nested targets, or the target of a
# `for` loop, a comprehension or a `with`).
#
# And threads? The samples are repaired in parallel, but each one's work is short and
# irregular, and the step has serial parts (the tree, the worst sample). Two trainers
# with the same seed and learning rate, so the same iterates, take blocks of steps in
# turn, one on one thread and one on two:

# %%
def stepper_pair():
    return {count: speed.WarmStepper("sparse", X, y, sizes=BOOK_SIZES, lr=LR, warmup=1)
            for count in sorted({1, THREADS})}


pair = stepper_pair()
step_seconds = {count: [] for count in pair}
for block in range(3 if QUICK else 6):
    order = list(pair) if block % 2 == 0 else list(pair)[::-1]
    for count in order:
        with ex.numba_threads(count):
            step_seconds[count] += pair[count].steps(2 if QUICK else 4)["seconds"]
same = max(float(np.abs(a - b).max()) for a, b in zip(
    *(p.model.named_parameters().values() for p in pair.values()), strict=True))
for count, seconds in step_seconds.items():
    print(f"sparse step on {count} thread(s): median {1e3 * np.median(seconds):.2f} ms "
          f"({len(seconds)} steps)")
if THREADS > 1:
    step_gain = np.median(step_seconds[1]) / np.median(step_seconds[THREADS])
    print(f"speed-up from 1 to {THREADS} threads: {step_gain:.2f}x; "
          f"largest parameter difference between the two runs: {same:.1e}")
    display(Markdown(
        f"From one thread to {THREADS}, the sparse step gained {step_gain:.2f}×, the "
        f"product {gain['ours']:.2f}× and the roof {gain['roof']:.2f}× (measured at "
        "different moments of a shared machine: compare each with the roof of its own run)."
    ))
print(machine_load())
del pair

# %% [markdown]
# ## Memory
#
# The dense methods keep little between steps: their forward pass allocates, and frees,
# activations for all $N$ samples every step (the first lines below measure what each
# method of the step measurement keeps). The sparse trainer keeps the forward state of
# every sample, which is what lets it skip the forward pass:
# per sample, the $h_1$ linear outputs and, per tropical layer, outputs, selections,
# runner bounds and per-input thresholds, so
#
# $$
# \text{state} = O\big(N \cdot (h_1 + h_2 + K)\big)
# $$ (eq-state)
#
# with a constant that the table below measures, plus a cache of products $X x_s$ (8 bytes
# per sample each, bounded) and the copy of $X$, feature by feature, that they are
# computed from (a product reads only its sample's non-zero features).
# `speed.trainer_state_bytes` walks a trainer's arrays and sorts them into per-sample
# state, weight-sized buffers, the product cache and that copy; we measure the
# per-sample state for a few $N$ and widths, without taking a step.

# %%
for method, f in figures.items():
    kept = f["state_bytes"]
    print(f"{method:22s} keeps {kept['per_sample'] / 2**20:7.2f} MiB per-sample arrays, "
          f"{kept['other'] / 2**20:6.2f} MiB other buffers between steps")
state_rows = []
shuffled = np.random.default_rng(0).permutation(N)  # the file is sorted by digit
for n_samples in ((1000, 2500, 5000) if QUICK else (1000, 2000, 3500, 5000)):
    subset = np.sort(shuffled[:n_samples])
    for sizes in ((32, 8), BOOK_SIZES) if QUICK else ((32, 8), (64, 16), BOOK_SIZES):
        st = speed.WarmStepper("sparse", X[subset], y[subset], sizes=sizes, lr=LR,
                               warmup=0)
        units = n_samples * (sum(sizes) + st.model.n_classes)
        state_rows.append((n_samples, sizes, units,
                           speed.trainer_state_bytes(st.trainer)["per_sample"]))
print(f"{'N':>6}{'h1, h2':>10}{'N(h1+h2+K)':>13}{'state MiB':>11}{'B per unit':>12}")
for n_samples, sizes, units, nbytes in state_rows:
    print(f"{n_samples:6d}{str(sizes):>10}{units:13,d}{nbytes / 2**20:11.2f}"
          f"{nbytes / units:12.1f}")

# %% [markdown]
# The bytes per unit stay nearly constant (a few arrays hold one value per sample
# whatever the widths, which weighs more in the narrowest network): the state is linear
# in $N \cdot (h_1 + h_2 + K)$, as {eq}`eq-state` says. Peak memory is another matter:
# it includes what a step allocates on the way. `speed.measure_peak_memory` sets each
# trainer up and steps it in a subprocess of its own, and reports the growth of its
# resident memory from the moment the modules and the data are loaded.

# %%
memory_methods = ("sparse", "dense") if QUICK else tuple(methods)
memory = speed.measure_peak_memory(X, y, sizes=BOOK_SIZES, lr=LR, methods=memory_methods,
                                   steps=1 if QUICK else 2, warmup=1)
print(f"{report['config']['architecture']}, N = {N}")
print(speed.format_peak_memory(memory))
print(f"sparse state per-sample arrays: {state['per_sample'] / 2**20:.1f} MiB")
for sizes in (BOOK_SIZES, REFERENCE_SIZES):
    print(f"plain PyTorch's min-plus candidates, N x h2 x h1 float32, at h1, h2 = {sizes}: "
          f"{N * sizes[1] * sizes[0] * 4 / 2**20:,.0f} MiB per forward pass")

# %% [markdown]
# A net peak counts everything the trainer's phase brought into memory: its state or
# its step's activations and gradients, and also the compiled numba code it loads, which
# is why the sparse trainer's net peak exceeds its per-sample state. Plain PyTorch
# materialises the $N \times h_2 \times h_1$ candidates of the min-plus layer (and keeps
# what autograd needs of them): the last lines give their size, at the book's network
# and at the reference one. The limitation the paper reports, memory growing with the
# explicit "short computational trees", does not arise here: the trees are never stored,
# only the state of {eq}`eq-state`.
#
# ## The GPU backend
#
# Everything above ran on the CPU. The package also has a GPU backend, on CuPy arrays:
#
# - **The product.** `mp.maxplus_matmul` on CuPy arrays launches a tiled CUDA kernel
#   (`maxplus/kernels/tropical_product.cu`): each block of threads computes a tile of
#   $C$ from tiles of $A$ and $B$ staged in shared memory, each thread keeps a small
#   block of values and indices in registers, and a strict comparison with $k$ visited
#   in increasing order keeps the **lowest index on ties**, as on the CPU.
# - **The trainers.** `mp.LMM(..., backend="cupy")` and `mp.fit(..., method="sparse" |
#   "dense")` run `maxplus.gpu_training`: the dense step as kernels over all samples,
#   and the sparse step with the whole forward state on the device; per step only the
#   tree's entries cross the bus, and the repair of every sample (linear columns, the
#   tropical layers with their runner bounds, the losses) runs as GPU kernels
#   (`linear.cu`, `tropical_training.cu`). Sums are taken in a fixed order, the same as
#   on the CPU, so that the iterates can agree bitwise (which the tests check, on the
#   twins).
#
# **Tested without a GPU.** Every kernel has a CPU *twin* (`maxplus.kernels.gpu_twin`)
# with the same algorithm, the same tiles and the same order of operations, and the
# CUDA sources themselves are compiled for the CPU behind a small shim (host emulation,
# one C++ thread per CUDA thread) and driven by the real launchers. `tests/test_gpu.py`
# and `tests/test_gpu_training.py` check the twins against independent references and
# the emulated sources against the twins, bitwise, and compile the sources with `nvcc`
# where it is installed; on a machine with a GPU, the tests marked `gpu` compare the
# real kernels with the twins. Two of those checks, live:

# %%
from maxplus.gpu_training import make_gpu_trainer  # noqa: E402
from maxplus.kernels.gpu_twin import TwinKernels, tropical_product_twin  # noqa: E402

rng = np.random.default_rng(0)
A_ties = rng.integers(0, 3, (70, 90)).astype(np.float32)  # small integers: many ties
B_ties = rng.integers(0, 3, (90, 50)).astype(np.float32)
C_twin = np.empty((70, 50), np.float32)
I_twin = np.empty((70, 50), np.int32)
tropical_product_twin(A_ties, B_ties, C_twin, I_twin, True)
C_cpu, I_cpu = mp.maxplus_matmul(A_ties, B_ties, return_indices=True)
assert np.array_equal(C_twin, C_cpu) and np.array_equal(I_twin, I_cpu)
print("the tiled GPU product's twin equals the CPU kernel, values and lowest indices, "
      f"on a {A_ties.shape[0]}x{A_ties.shape[1]} by {B_ties.shape[0]}x{B_ties.shape[1]} "
      "product with many ties")

X_iris, y_iris = mp.load_iris()
X_iris = np.ascontiguousarray(X_iris, dtype=np.float64)
start = mp.LMM(4, 16, 12, 3, seed=0, dtype="float64")
gpu_model, cpu_model = start.copy(), start.copy()
gpu_trainer = make_gpu_trainer("sparse", gpu_model, X_iris, np.asarray(y_iris, np.int64),
                               "cross_entropy", exact=True, kernels=TwinKernels())
twin_steps = 50 if QUICK else 200
training.run(gpu_trainer, gpu_model, 1, twin_steps, "constant", 0.1, 0.0, False, None)
mp.fit(cpu_model, X_iris, y_iris, objective="worst", method="sparse", exact=True,
       steps=twin_steps, lr=0.1, progress=False)
bitwise = all(np.array_equal(a, b) for a, b in zip(
    gpu_model.named_parameters().values(), cpu_model.named_parameters().values(),
    strict=True))
assert bitwise
print(f"{twin_steps} sparse steps on Iris: the GPU trainer on the twin kernels and the CPU "
      f"trainer end with bitwise equal parameters: {bitwise}")
print(f"a CUDA GPU with CuPy on this machine: {backend.gpu_available()}")

# %% [markdown]
# **Measuring on a GPU.** No GPU has been available to this project so far: nothing in
# this book has run on one, and we show no GPU figures that were not measured. On a
# machine with an NVIDIA GPU and CuPy, one command runs the GPU tests and then measures
# the product (our kernel, `mp.maxplus_matmul`, PyTorch broadcasting on the same GPU)
# and the trainers (sparse and dense `mp.fit` on CuPy arrays, and PyTorch autograd on
# the same GPU) at the reference configuration:
#
#     python benchmarks/gpu_check.py --json benchmarks/records/gpu_check.json
#
# (`nox -s gpu -- --json ...` does the same in a nox environment). The chapter shows
# every record it finds in `benchmarks/records/gpu*.json` (or the file that the
# environment variable `MAXPLUS_GPU_RECORD` names), labelled with the device that the
# record names:

# %%
def gpu_records() -> list[Path]:
    named = os.environ.get("MAXPLUS_GPU_RECORD")
    if named:
        return [Path(named)]
    return sorted((ROOT / "benchmarks" / "records").glob("gpu*.json"))


def describe_gpu_record(record: dict) -> list[str]:
    """The figures of a ``gpu_check.py --json`` record, as lines of text."""
    device = record.get("device", {})
    lines = [f"device: {device.get('name', 'unnamed')} (compute capability "
             f"{device.get('compute_capability', '?')}, host {device.get('host', '?')})"]
    tests = record.get("tests")
    if tests:
        lines.append(f"  gpu tests: {'passed' if tests.get('returncode') == 0 else 'FAILED'}")
    product = record.get("tropical_product") or {}
    kernel = product.get("kernel_seconds")
    if kernel:
        lines.append(
            f"  product {product['n']}x{product['k']}x{product['m']} {product['dtype']}: "
            f"{kernel['median'] * 1e3:.2f} ms = {kernel['pairs_per_second'] / 1e12:.2f} "
            f"T pairs/s; indices attain values: {product.get('indices_attain_values')}")
    torch_product = product.get("torch")
    if torch_product:
        lines.append(f"  torch broadcasting (values only): "
                     f"{torch_product['seconds']['median'] * 1e3:.1f} ms, our kernel "
                     f"{torch_product['our_speedup']:.1f}x faster")
    for run in (record.get("trainer") or {}).get("runs", []):
        lines.append(
            f"  trainers, N = {run['N']}: sparse "
            f"{run['sparse']['event_seconds_per_step'] * 1e3:.3f} ms/step, dense "
            f"{run['dense']['event_seconds_per_step'] * 1e3:.2f} ms/step: "
            f"{run['speedup_over_our_dense']:.1f}x (FLOP ratio {run['flops_ratio']:.0f})")
        for impl, t in run.get("torch", {}).items():
            if "sparse_speedup" in t:
                lines.append(f"    torch autograd ({impl}): {t['seconds']['median'] * 1e3:.2f} "
                             f"ms/step; sparse {t['sparse_speedup']:.1f}x faster")
            else:
                lines.append(f"    torch autograd ({impl}): {t.get('unavailable', 'n/a')}")
    return lines


records = [path for path in gpu_records() if path.is_file()]
if not records:
    print("No GPU record has been made yet: no GPU figures to show.")
    print("To make one, on a machine with an NVIDIA GPU and CuPy:\n"
          "    python benchmarks/gpu_check.py --json benchmarks/records/gpu_check.json")
for path in records:
    print(f"GPU record {path.name}:")
    print("\n".join(describe_gpu_record(json.loads(path.read_text(encoding="utf-8")))))

# %% [markdown]
# ## Tracking it with asv
#
# One measurement is a snapshot; what matters for a project is whether a commit made
# things faster or slower. The `benchmarks/` folder is an
# [asv](https://asv.readthedocs.io) suite (airspeed velocity, the tool behind the
# benchmark dashboards of NumPy and SciPy), driven by `benchmarks/run_asv.py` through
# nox:
#
# - `nox -s bench` runs the whole suite on the current commit in the current
#   environment (`asv run --python=same`, results recorded against `HEAD`; a dirty
#   working tree is measured but recorded as `HEAD`, with a warning), then publishes the
#   dashboard to `build/asv-html/` with its JavaScript vendored so that it works
#   offline; serve it with `python -m http.server -d build/asv-html`;
# - `nox -s bench -- --quick` runs every benchmark once: a smoke test, not a
#   measurement;
# - `nox -s bench -- continuous main HEAD` hands the command to asv with the project's
#   configuration: it builds both commits in virtual environments of their own and
#   reports the benchmarks that changed by more than asv's threshold; any other asv
#   command works the same way (`publish`, `compare A B`, `preview`).
#
# The suite's modules use the same functions as this chapter, so the dashboard and the
# book measure the same things. The cell below lists what the suite holds, read from the
# modules themselves:

# %%
def suite_listing(suite_dir: Path) -> list[str]:
    """Every benchmark class of ``bench_*.py`` with its benchmark methods and parameters."""
    sys.path.insert(0, os.fspath(suite_dir.parent))
    try:
        import benchmarks.bench_products
        import benchmarks.bench_training
    finally:
        sys.path.pop(0)
    lines = []
    for module in (benchmarks.bench_products, benchmarks.bench_training):
        lines.append(f"{module.__name__.split('.')[-1]}:")
        for name, cls in vars(module).items():
            if name.startswith("_") or not inspect.isclass(cls):
                continue
            kinds = sorted(m for m in dir(cls) if m.split("_")[0] in
                           ("time", "peakmem", "track", "mem"))
            if cls.__module__ != module.__name__ or not kinds:
                continue
            nested = all(isinstance(v, list | tuple) for v in cls.params)
            values = cls.params if nested else [cls.params]  # asv's two forms
            params = ", ".join(f"{p}: {len(v)} values" for p, v in
                               zip(cls.param_names, values, strict=True))
            lines.append(f"  {name:20s} {' '.join(kinds)}")
            lines.append(f"  {'':20s} ({params})")
    return lines


suite = ROOT / "benchmarks" / "benchmarks"
if suite.is_dir():
    print("\n".join(suite_listing(suite)))
else:
    print(f"the asv suite lives in a checkout of the project (benchmarks/); none at {ROOT}")

# %% [markdown]
# In words:
#
# - `bench_products`: `Products` times ours and tropical-gemm (max-plus and min-plus,
#   float32 and float64, a 256³ product and the MNIST layer); `BroadcastProducts` the
#   NumPy and PyTorch baselines; `GpuProducts` the GPU ones (skipped on a machine
#   without a GPU: a benchmark's `setup` raising `NotImplementedError` is how asv skips
#   it); `VersusTropicalGemm` tracks our throughput over tropical-gemm's and our
#   fraction of the L1 roof, each from one `compare_products` measurement, the one this
#   chapter plots.
# - `bench_training`: `TrainingStep` times one step of the sparse and the dense trainer
#   (Iris, a small and the reference MNIST-5k network), tracks their peak memory
#   (`peakmem_step`, which includes everything imported: compare the trainers with each
#   other) and the sparse state size (`track_state_bytes`); `TorchStep` the PyTorch
#   peers; `TrainingFlops` tracks the dense and sparse FLOPs per step and their ratio;
#   `TrainingRatios` tracks the time ratio of each peer to the sparse step and the
#   realised share, measured side by side by `measure_step_times`, as in this chapter;
#   `GpuTrainingStep` the trainers on a GPU.
#
# Ratios measured side by side are what the dashboard should be read for on a shared
# machine; absolute times are comparable only between runs on the same, quiet, machine.
#
# ## Summary
#
# - The max-plus product with indices cannot use BLAS: no fused instruction, no
#   algebraic shortcut, and an index to keep per output. It is bounded by arithmetic,
#   the rate of add-compare-select on SIMD lanes, which we measure as an L1-resident
#   roof in the same run, beside tropical-gemm and the broadcasting baselines (which
#   materialise the candidates and are bound by memory traffic instead). The printed
#   ratios say how close each comes, on this machine, in this run.
# - A second thread helps the product when a second core is free; the roof measured
#   alongside says whether it was.
# - The sparse training step does a small fraction of the dense step's FLOPs but runs
#   them at a much lower rate: on MNIST every sample moves after every step (pixels are
#   non-negative), selections churn more with a larger step, and the repair is a chain
#   of dependent memory accesses. The realised share of the FLOP ratio, printed above,
#   measures the gap; `python benchmarks/compare_training.py` measures the issue's
#   targets at the reference configuration.
# - The sparse step's cost depends on the iterate: it is highest in the first steps,
#   when selections change most, and falls as the objective levels off. A side-by-side
#   measurement therefore says where it started (`after=`, `--after`).
# - The sparse trainer's state is $O(N (h_1 + h_2 + K))$, linear in both, at a constant
#   number of bytes per sample and unit (measured above); the computational trees are
#   never stored.
# - The GPU backend (tiled product, trainers whose repair runs as kernels) is tested on
#   the CPU through twins and host emulation; it has not yet run on a GPU, and
#   `python benchmarks/gpu_check.py --json benchmarks/records/gpu_check.json` is the
#   command that will measure it.
# - `nox -s bench` tracks products, steps, FLOP ratios, realised shares and memory
#   across commits with asv, from the same functions.
#
# ## Try this
#
# 1. Run `python benchmarks/compare_products.py --baselines --threads 1` and compare the
#    roof fraction with the two-thread run. Which of the contenders gains most from the
#    second core?
# 2. Repeat the step-time measurement with `sizes=(512, 128)` (the reference network)
#    and `methods=("sparse", "dense", "torch_tropical_gemm")`. How do the FLOP ratio and
#    the realised share change with the width?
# 3. Standardise the MNIST pixels (`mp.Standardizer`) so that $x_n \cdot x^*$ takes both
#    signs, and count the synced samples per step again. Does the repair get cheaper?
# 4. Plot the sparse step's seconds against the step index over a few hundred steps at
#    `lr = 0.01`. Does the churn settle as training proceeds?
