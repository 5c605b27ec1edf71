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
# # The sparse subgradient algorithm
#
# ## Overview
#
# Chapter 4 chose the objective: the worst sample's loss, or the mean of the $q$ largest.
# Its subgradient is one short computational tree per selected sample, a few thousand
# parameters out of hundreds of thousands (chapter 3). Yet a step of the subgradient
# method needs more than the subgradient: it needs *the worst sample*, and finding it
# takes every sample's loss at the current parameters. Done naively, that is a full
# forward pass over all $N$ samples at every step, and the sparse subgradient saves
# little.
#
# This chapter is about the algorithm that avoids it. The trainer keeps the forward
# state of every sample from one step to the next and, after each step, **repairs**
# it where the few changed parameters reach it, instead of recomputing it. We count
# what a dense step and a sparse step cost, derive the repair of the linear layer (one
# cached product per selected sample) and of the tropical layers (takeovers and
# rescans), then the lazy synchronisation that repairs only the samples that might
# enter the top $q$. Then we check, live, that the repaired trainer produces the very
# iterates of the dense one, that its state is a fresh forward pass, what its repair
# costs per step on MNIST-5k, and how the cost grows with $N$, $h_1$ and $K$.
#
# We use:
#
# - `maxplus.flops`: `dense_step_flops`, `forward_flops`, `tree_flops` (counted FLOPs);
# - `maxplus.sparse.SparseTrainer`: the sparse trainer itself (its `counters`, `cache`,
#   `synchronize`, `drift_bound`), driven step by step or through `mp.fit`;
# - `mp.fit(..., method="sparse" | "dense", exact=..., refresh_every=...)` and its
#   `history["flops"]`;
# - `maxplus.experiments.step_cost_scaling` with a `Preset` sized for this chapter, and
#   `maxplus.plotting.plot_step_costs` to draw it.

# %%
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np

import maxplus as mp
from maxplus.book import quick_mode, use_book_style
from maxplus.experiments import PRESETS, Data, loglog_slope, paper_figure, step_cost_scaling
from maxplus.flops import dense_step_flops, forward_flops, tree_flops
from maxplus.objectives import top_q
from maxplus.plotting import plot_step_costs, step_cost_ratios
from maxplus.sparse import SparseTrainer
from maxplus.training import run

use_book_style()
QUICK = quick_mode()
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## The dense step and what it costs
#
# For the LMM of chapter 2, with parameters $A \in \mathbb{R}^{h_1 \times d}$,
# $b \in \mathbb{R}^{h_1}$, $B \in \mathbb{R}^{h_2 \times h_1}$, $C \in \mathbb{R}^{K
# \times h_2}$ ($P = h_1(d + 1) + h_2 h_1 + K h_2$ in all), a dense step evaluates every
# loss, backpropagates the selected samples' losses through the whole network (the
# gradient is zero outside them, but a dense backward pass does not know it) and moves
# every parameter. Counting an add, a multiply or a comparison as one FLOP
# (`maxplus.flops`):
#
# $$
# f_\text{dense} =
# \underbrace{2Ndh_1 + Nh_1}_{\text{linear forward}}
# + \underbrace{2N(h_1h_2 + h_2K)}_{\text{tropical forward}}
# + \underbrace{5NK}_{\text{losses}}
# + \underbrace{2N(h_2 + K)}_{\text{tropical backward}}
# + \underbrace{2Ndh_1 + Nh_1}_{\text{linear backward}}
# + \underbrace{2P}_{\text{update}} .
# $$ (eq-dense-flops)
#
# Every term but the last grows with $N$, and the two linear terms, $4Ndh_1$, dominate
# when the inputs are images. The subgradient itself, for one selected sample $n^\star$,
# is its tree: at most $K$ entries of $C$, $K$ of $B$ and $K$ rows of $(A, b)$, at most
# $2K + K(d + 1)$ numbers. Walking it and moving those parameters costs
#
# $$
# f_\text{tree} = 2q(h_2 + K) + (2d + 1)\,|M| + 2\,\mathrm{nnz}(g),
# $$ (eq-tree-flops)
#
# with $M$ the linear units the trees reach ($|M| \le qK$) and $q$ selected samples.
# No $N$ at all. We count both for a real step on MNIST-5k with an LMM 784-128-32-10.

# %%
X, y = mp.load_mnist5k()
N, d = X.shape
K = 10
H1, H2 = 128, 32
start = mp.LMM(d, H1, H2, K, seed=0, dtype="float64")

trainer = SparseTrainer(start.copy(), X, y, "cross_entropy")
initial_losses = trainer.losses().copy()
worst = top_q(initial_losses, 1)
g = trainer.gradient(worst, 1)
P = start.n_parameters
terms = {
    "dense step, (eq-dense-flops)": dense_step_flops(start, N),
    "  of which the forward pass": forward_flops(start, N),
    "tree of the worst sample, (eq-tree-flops)": tree_flops(start, 1, g),
    "one product X·x[n*] (2Nd)": 2 * N * d,
}
print(f"N = {N}, LMM {d}-{H1}-{H2}-{K}: P = {P:,} parameters; the worst sample is "
      f"n* = {worst[0]}, its tree has {g.nnz:,} non-zeros (bound {2 * K + K * (d + 1):,})")
for name, count in terms.items():
    print(f"{name:43s} {count:15,d} FLOPs")
print(f"dense step / tree: {terms['dense step, (eq-dense-flops)'] / tree_flops(start, 1, g):,.0f}×")

# %% [markdown]
# The tree is cheaper than the dense step by orders of magnitude. But the next step must
# know which sample is now the worst, and a fresh forward pass to find out costs half
# the dense step by itself (the second line). The sparse trainer instead
# keeps the forward state of all $N$ samples, the linear outputs $Z$, the min-plus
# outputs and selections $(U, \mu)$, the scores and selections $(S, \lambda)$ and the
# losses $\ell$, and repairs them after each step. What the repair costs decides the
# speed-up; the rest of the chapter is about it.
#
# ## Repairing the linear layer: one product per selected sample
#
# The tree gives row $m \in M$ of $A$ the gradient $\zeta_m x_{n^\star}$ and $b_m$ the
# gradient $\zeta_m$ (chapter 3): the step moves **every changed row along the same
# direction**, the worst sample's input. So, with step length $\eta$, for every sample
# $n$,
#
# $$
# z_{nm} = A_m \cdot x_n + b_m \;\longmapsto\;
# z_{nm} - \eta\,\zeta_m\,\bigl(x_n \cdot x_{n^\star} + 1\bigr), \qquad m \in M .
# $$ (eq-column-repair)
#
# The whole column update is a rank-one correction $Z_{:,M} \mathrel{-}= (r + 1)\,
# (\eta\zeta_M)^\top$ with the single product $r = X x_{n^\star}$ ($Nd$ multiply-adds).
# For the top-$q$ objective the rows move along $\sum_s \eta\, G_{sm} x_s$ over the $q$
# selected samples $s$, and the correction needs the $q$ products $X x_s$, of rank at
# most $q$. Worst samples recur (the same hard images come back), so the trainer keeps
# the products $r_s$ in a least-recently-used cache (`maxplus.sparse.ProductCache`,
# float64, 256 MiB): a product is paid once per *distinct* selected sample (as long as
# it stays in the cache), and a step whose worst sample was seen before costs only
# $O(N|M|)$ in the linear layer.
#
# We check {eq}`eq-column-repair` on the step above: the gradient rows are multiples of
# $x_{n^\star}$, and the corrected columns equal those of a fresh forward pass after the
# step.

# %%
x_star = X[worst[0]]
zeta = g.linear_upstream[0]                       # ζ_m for m in M (q = 1)
assert np.array_equal(g.linear_weight, zeta[:, None] * x_star[None, :])
assert np.array_equal(g.linear_bias, zeta)
eta = 0.05
M = g.linear_rows
Z_before = trainer.Z.copy()
r = X @ x_star
predicted = Z_before[:, M] - (r + 1.0)[:, None] * (eta * zeta)[None, :]
trainer.apply(eta, g)                             # the step: θ ← θ − η g
fresh = trainer.model.forward(X).values[0]
print(f"|M| = {M.size} linear units moved; "
      f"max |repaired − fresh| on their columns: {np.abs(predicted - fresh[:, M]).max():.1e}")
print(f"columns outside M unchanged by the step: "
      f"{np.array_equal(np.delete(Z_before, M, axis=1), np.delete(fresh, M, axis=1))}")
change = predicted - Z_before[:, M]
one_direction = np.array_equal(np.sign(change), np.broadcast_to(-np.sign(zeta), change.shape))
print(f"pixels are ≥ 0, so r = X·x[n*] ≥ 0 (here min r = {r.min():.1f}): the step moves "
      f"{np.mean(change != 0):.0%} of the entries of the moved columns,\n"
      f"every sample in the direction −sign(ζ_m) of its column: {one_direction}")
print(f"product cache: room for {trainer.cache.capacity:,} products of {N:,} samples; "
      f"{trainer.cache.misses} computed so far")

# %% [markdown]
# The last lines are the catch on MNIST. A moved linear unit changes the pre-activation
# of *every* image, all in the same direction, because the products $x_n \cdot
# x_{n^\star}$ of non-negative pixels are never negative. So the linear repair always
# touches all $N$ samples, and the tropical layers above must look at every one of
# them. The saving there has to come from doing $O(1)$ work per sample and changed
# input, not from skipping samples.
#
# ## Repairing the tropical layers: follow, take over, rescan
#
# Write a tropical layer in terms of *goodness*, $\mathrm{g}(v) = v$ in a max-plus
# layer and $-v$ in a min-plus layer, so that "better" means "larger" in both:
# output $j$ of sample $n$ is the best candidate $W_{ji} + h_{ni}$ over the inputs $i$,
# its selection $S_{nj}$ the lowest index among the best. After a step, some inputs
# $h_{ni}$ have changed (the columns $M$ of $Z$ for the min-plus layer, the outputs that
# changed below for the max-plus layer) and at most $qK$ weights $W_{ji}$ have changed.
# Only values that actually changed count: once the worst sample's tree runs through a
# single linear unit, its coefficient $\zeta_m = \sum_k \delta_k$ is zero up to rounding
# and the move of that column usually rounds to nothing, so the column is not listed.
# For each sample the repair (`maxplus.kernels.cpu_repair.repair_layer`) does:
#
# 1. **Follow.** Every output that selects a changed input takes the new value
#    $W_{ji} + h_{ni}$: $O(1)$ per output. The trainer keeps, per sample and input, the
#    list of outputs selecting it, so it visits only those.
# 2. **Take over.** A candidate that *improved* may now beat an output that did not
#    select it; it then takes the output over in $O(1)$ (lowest index on ties). For a
#    changed weight this is one comparison. For a changed input it means a pass over
#    the outputs (a *takeover pass*, $O(h_\text{out})$, which also sets the input's new
#    thresholds in the same sweep, taking their minima over integer keys that order
#    as the floats do, so that the sweep vectorises), unless a stored threshold per
#    sample and input **certifies** that the input is still too poor to beat any
#    output it does not hold; then nothing is done. A second stored threshold says
#    whether its candidates can pass the bound $R_3$ of step 3 below; while they
#    cannot, the pass reads neither the runners-up nor $R_3$ and renews only the
#    takeover threshold (four passes in five at step size $10^{-3}$ on MNIST).
# 3. **Resolve or rescan.** An output whose selected candidate got *worse* may have to
#    hand over to another input. The state keeps, per sample and output, a few
#    *runners-up* (`cpu_repair.SECONDS` inputs whose candidates are recomputed
#    exactly) and an upper bound $R_3$ on the goodness of all the others. If the best
#    of the selection and its runners-up beats the bound, it is the output: the
#    selection stays or swaps with that runner-up; only when the bound is binding is
#    the row **rescanned**, $O(h_\text{in})$, which also re-ranks the runners-up and
#    resets the bound halfway between the best candidate left out and the worst
#    runner-up (the room lets that candidate improve a little without a takeover
#    pass). A takeover pushes the old selection among the runners-up, so the bound
#    only takes in a candidate when the list is full.
#
# The bounds and thresholds are not recomputed when things they depend on move a little:
# each sample accumulates how far that could have been (drift accumulators); a moved
# weight is a single candidate, handled on its own. What the repair produces is exact: the
# values and selections a fresh forward pass of the stored $Z$ gives, ties included. The
# tests check this after every step, and also that every stored bound and threshold
# still certifies what the repair skips.
# The outputs that changed are handed to the next layer, and the losses of the samples
# whose scores changed are recomputed.
#
# **A small layer is recomputed instead.** All this bookkeeping costs a few thousand
# cycles a sample however little changed, more than recomputing a layer of few
# candidates: in the reference LMM (784-512-128-10) the score layer has
# $K \cdot h_2 = 1280$ of them, against $h_2 h_1 = 65{,}536$ in its min-plus layer. So
# a tropical layer after the first with fewer than `sparse.RECOMPUTE_BELOW` candidates
# (inputs × outputs) keeps only its outputs, its selections and one bound per output,
# and is brought up to date output by output (`maxplus.kernels.cpu_rescan`). A
# recomputed output takes the best candidate by a running maximum of integer keys
# that order candidates by goodness, then by the lower input, so the loop vectorises:
# a fresh forward pass of that output, exact by construction. (The first tropical
# layer is always repaired: its thresholds also tighten the loss bounds below.) In the
# LMM of 784-512-128-10 on MNIST, timers inside the repair had put half of its cycles
# in the score layer at step size $10^{-2}$ and a quarter at $10^{-3}$ (over 20 passes
# a sample at $10^{-2}$, each over only ten outputs).
#
# Each output's bound $\bar r_{nj}$ is an upper bound on the goodness of every candidate
# but the selected one. It is the runner-up's goodness when the output was last
# recomputed, plus everything that could have raised a candidate since: the largest
# rise of a weight in row $j$ at each logged step (the log keeps them per row), a
# rounding margin per step, and the candidates of inputs that rose, which are
# computed exactly and folded in. While the selected candidate's new goodness beats
# the bound and those risen candidates, the output keeps its selection and takes the
# new value in $O(1)$; a risen candidate that beats both takes the output over; only
# otherwise is the output recomputed, with a second pass for the runner-up. A sample
# with many changed inputs (more than $n_\text{in}/16$, `cpu_rescan.CHECK_COST`) is
# recomputed whole by one pass an output instead, its bounds left unknown, and they
# are set again only from its second checked synchronisation in a row. This matters
# once the objective has levelled off at step size $10^{-2}$: then every sample is
# brought up to date at every step, its scores' inputs barely move, and only the
# worst sample's label row of weights rises.
#
# The trainer counts this work (`trainer.counters`): outputs *followed*, *takeover
# passes*, *certified* inputs (a pass avoided), *swaps* with a runner-up, *rescans*, and
# candidates *recomputed*. Each is counted in FLOPs by the widths of the layer it was
# done in (`sparse.work_flops`): 2 per output followed, $4\,n_\text{out}$ per takeover
# pass (the pass and the thresholds), 3 per swap, $2\,n_\text{in}$ per rescan and 2 per
# candidate recomputed or checked. Here it is for the step above, whose repair runs when the
# samples are brought up to date:

# %%
before = dict(trainer.counters)
trainer.synchronize(refresh=False)            # repair every sample for the logged step
work = {name: trainer.counters[name] - before[name] for name in before}
assert np.abs(trainer.Z[:, M] - fresh[:, M]).max() < 1e-12
for name in ("synced", "followed", "takeover_passes", "certified", "swaps", "rescans",
             "recomputed"):
    print(f"{name:16s} {work[name]:9,d}  ({work[name] / N:6.2f} per sample)")
print(f"repair FLOPs of the step: {trainer.repair_flops():,} "
      f"against {forward_flops(start, N):,} for a fresh forward pass")

# %% [markdown]
# ## Lazy synchronisation, refreshes and the exact mode
#
# **Only the samples that might be among the $q$ worst need exact losses.** Each
# sample keeps its loss $\ell_n$ as it was at its last synchronisation and a bound
# $\beta_n$ on how far it can have *risen* since. Write the moves of the linear outputs
# since that synchronisation, $D_{nm} = z_{nm} - z^0_{nm}$, in the first tropical
# layer's *goodness* $g_{nm}$ ($+D_{nm}$ for a max-plus layer, $-D_{nm}$ for a min-plus
# one, so that "better" always means larger). Four facts give the bound:
#
# - an output of the first tropical layer follows the input it selected; it changes
#   otherwise only if another input *takes it over*, and the repair's own certificate
#   says when that cannot happen: while input $m$'s goodness stays under its
#   threshold $T_{nm} - D^t_n$, less how far the outputs may have worsened;
# - so the layer's outputs worsen at most by
#   $w_n = \max_{m \in S_n} (-g_{nm})^+$ over the units $S_n$ it selected, and improve at
#   most by $\max_{m \in S_n} g_{nm}^+$, or by the improvement $\max_{m \notin S_n} g_{nm}^+$
#   of an unselected unit once one may have passed its threshold;
# - a max or a min of sums rises (falls) at most as far as the largest rise (fall) of
#   its inputs and weights, so every later layer and every score passes them on at most
#   as far, plus the weight moves $\sum_{\text{tropical layers}}(\max(-\eta g_W)^+ +
#   \max(\eta g_W)^+)$ of each step;
# - both losses rise at most by the largest rise of a score plus the fall of the
#   label's score, $\Delta\ell \le \max_k \Delta s_k - \Delta s_y$.
#
# With $u_n$ the weight moves and rounding summed over the steps since the sample's
# synchronisation, and $\kappa_n$ the room left before an unselected unit may take an
# output over,
#
# $$
# \kappa_n = \min_{m \notin S_n:\ g_{nm} > 0} \bigl(T_{nm} - D^t_n - g^0_{nm} - g_{nm}\bigr),
# $$
#
# the bound is
#
# $$
# \beta_n = u_n + w_n + \max\Bigl(\max_{m \in S_n} g_{nm}^+,\;
#   \bigl[\kappa_n \le w_n + 2u_n\bigr] \max_{m \notin S_n} g_{nm}^+\Bigr).
# $$ (eq-loss-bound)
#
# A step moves $z_{nm}$, for the moved linear units $m$, by
# $\Delta z_{nm} = -\sum_s \eta G_{sm}\,(r_s[n] + 1)$: the trainer adds it to $D_{nm}$ (kept
# per sample and unit, unit-major, so that a step reads its few units contiguously)
# and folds it into running maxima, $O(N)$ work per step. The maxima keep every value a
# move took on the way, which is an upper bound for the value now.
#
# Which units a sample selects, and their thresholds, sit in the sample's row of the
# layer's state: reading them for every sample and every newly moved unit would be a
# strided read each. So a unit that starts moving counts as *unknown*, as if selected
# and in both directions, and the trainer reads the rows only for the samples that may
# matter. Before the next step it computes the $q$-th largest lower bound
# $\ell_n - \beta_n - \rho$ ($\rho$ a margin for rounding in the loss evaluation) and
# takes the samples whose upper bound $\ell_n + \beta_n + \rho$ reaches it. Those whose
# weight moves and rounding alone already reach it are synchronised at once; the
# others are *resolved* (their unknown units read) and synchronised only if they still
# reach it; the $q$-th largest lower bound is recomputed after each round. The others
# cannot be among the $q$ worst. A sample that waits is caught up later by replaying
# the logged steps (the linear corrections summed in float64 and applied once), then
# repaired as above. Applied once per catch-up, the corrections round once per
# catch-up: in the cached mode a sample's $Z$ depends in its last bits on when it was
# caught up, so a change to which samples are synchronised when (another bound, another
# order of rounds) moves the cached-mode iterates in their last bits; the exact mode's
# do not move.
#
# **Refresh.** The cached correction {eq}`eq-column-repair` is not the sum a forward pass
# computes, so $Z$ drifts from $XA^\top + b$ by rounding. Every `refresh_every` steps
# (100 by default) the trainer recomputes the columns of $Z$ that moved since the last
# refresh (the others never drifted; the same fixed-order kernel makes them bitwise a
# full forward pass), repairs the tropical layers where they differed, and synchronises
# every sample. Between refreshes the drift of a
# synchronised sample is bounded (`trainer.drift_bound()`): with unit roundoff $u$,
# $t$ steps since the refresh, $c$ the sum of their largest coefficients $|\eta\zeta|$
# and $S_1 = \max_n \lVert x_n\rVert_1 \max|A| + \max|b|$,
#
# $$
# |Z^\text{repaired} - Z^\text{fresh}| \le u\Bigl(3c\,(\max_n\lVert x_n\rVert^2 + 1)
#   + t\,(S_1 + 2\max|Z|) + 2dS_1\Bigr).
# $$ (eq-drift-bound)
#
# **Exact mode** (`exact=True`): the changed entries $z_{nm}$ are recomputed from the
# parameters with the same summation order as the forward kernel ($2d + 1$ FLOPs each,
# instead of 3 per selected sample), and the stored state is then bitwise a fresh
# forward pass. Lazy synchronisation approximates nothing: in either mode the $q$
# largest losses, the selected samples, their trees and the objective are up to date at
# every step, carrying the rounding drift of $Z$ in the cached mode and none in the
# exact mode.
#
# ## Live check: the same iterates
#
# Sparse (cached and exact modes) against dense on 500 MNIST images, float64, LMM
# 784-64-32-10, the worst sample and the top-10 objective, compared by their parameters
# after every run (the test suite asserts the same, `tests/test_training.py`).

# %%
rng = np.random.default_rng(0)
small = np.sort(rng.choice(N, 500, replace=False))
X_small, y_small = X[small], y[small]
small_start = mp.LMM(d, 64, 32, K, seed=0, dtype="float64")
check_steps = 100 if QUICK else 200
variants = {"dense": dict(method="dense"), "sparse, exact": dict(method="sparse", exact=True),
            "sparse, cached": dict(method="sparse", refresh_every=37)}
agreement = {}
for objective in ("worst", ("topq", 10)):
    runs = {}
    for name, options in variants.items():
        model = small_start.copy()
        runs[name] = model, mp.fit(model, X_small, y_small, objective=objective,
                                   steps=check_steps, lr=0.05, **options)
    dense_params = runs["dense"][0].named_parameters()
    moved_by = max(np.abs(dense_params[k] - p).max()
                   for k, p in small_start.named_parameters().items())
    print(f"objective {objective!s:14s}: {check_steps} steps, parameters moved up to "
          f"{moved_by:.3f}")
    for name in ("sparse, exact", "sparse, cached"):
        params = runs[name][0].named_parameters()
        gap = max(np.abs(params[k] - dense_params[k]).max() for k in params)
        same_worst = np.mean(np.equal(runs[name][1].history["worst_index"],
                                      runs["dense"][1].history["worst_index"]))
        objective_gap = np.abs(np.subtract(runs[name][1].history["objective"],
                                           runs["dense"][1].history["objective"])).max()
        agreement[objective, name] = gap
        print(f"  {name:15s}: max |θ − θ_dense| = {gap:.1e}, objectives differ by at most "
              f"{objective_gap:.1e}, same worst index at {same_worst:.0%} of the steps")
assert all(agreement[o, "sparse, exact"] == 0.0 for o in ("worst", ("topq", 10)))
assert all(agreement[o, "sparse, cached"] < 1e-12 for o in ("worst", ("topq", 10)))

# %% [markdown]
# The exact mode reproduces the dense trainer bit for bit; the cached mode agrees to
# the last bits. The worst-sample *index* may differ at some steps even so: as chapter 4
# explained, samples whose trees run through the same units have exactly equal losses
# and equal subgradients, so which of them is "the" worst is decided by rounding, and
# the step, hence the iterate, is the same either way.
#
# ## Live check: the repaired state is a fresh forward pass
#
# Now MNIST-5k in float32, the precision one trains in, with the default cached mode:
# we train the LMM 784-128-32-10 for some worst-sample steps, synchronise every sample
# (without the exact refresh) and compare the stored state with a fresh forward pass:
# $Z$ within the drift bound {eq}`eq-drift-bound`, and the tropical layers' values and
# selections exactly those computed from the stored $Z$.

# %%
def compare_with_fresh(trainer):
    """Max |Z − fresh Z| and whether the tropical state is exact given the stored Z."""
    trainer.synchronize(refresh=False)
    model = trainer.model
    Z = trainer.state_values()[0]
    drift = float(np.abs(Z.astype(np.float64) - model.forward(X).values[0]).max())
    H, exact = Z, True
    for i, layer in enumerate(model.layers[1:], start=1):
        values, selections = layer.forward(H, np)
        exact &= np.array_equal(trainer.state_values()[i], values)
        exact &= np.array_equal(trainer.selections[i], selections)
        H = values
    return drift, exact


X32 = X.astype(np.float32)
drift_steps = 30 if QUICK else 150
f32 = SparseTrainer(mp.LMM(d, H1, H2, K, seed=0, dtype="float32"), X32, y, "cross_entropy",
                    refresh_every=10**6)  # no refresh: the drift accumulates
run(f32, f32.model, 1, drift_steps, "constant", 0.01, 0.0, False, None)
drift, tropical_exact = compare_with_fresh(f32)
print(f"after {drift_steps} float32 steps without refresh: max |Z − fresh| = {drift:.2e}, "
      f"bound {f32.drift_bound():.2e}; tropical state exact given Z: {tropical_exact}")
assert drift <= f32.drift_bound() and tropical_exact

exact_trainer = SparseTrainer(mp.LMM(d, H1, H2, K, seed=0, dtype="float32"), X32, y,
                              "cross_entropy", exact=True)
run(exact_trainer, exact_trainer.model, 1, drift_steps, "constant", 0.01, 0.0, False, None)
drift_exact, tropical_exact = compare_with_fresh(exact_trainer)
print(f"exact mode: max |Z − fresh| = {drift_exact}, tropical state exact: {tropical_exact}")
assert drift_exact == 0.0 and tropical_exact

# %% [markdown]
# ## What the repair costs on MNIST-5k
#
# We now follow the counters step by step: worst-sample training of the LMM
# 784-128-32-10 on all 5,000 images in float32, with the constant step at two learning
# rates, a refresh every `refresh_every` steps. For every step we record the samples
# synchronised, the outputs followed, the takeover passes, the rescans, and the counted
# FLOPs (`history["flops"]`), against the dense step's {eq}`eq-dense-flops`.

# %%
trace_steps = 40 if QUICK else 300
refresh_every = 20 if QUICK else 100
TRACED = ("synced", "followed", "takeover_passes", "certified", "swaps", "rescans",
          "refreshes")


def traced_run(lr):
    """Worst-sample training from the chapter's start; per-step counters and history."""
    model = mp.LMM(d, H1, H2, K, seed=0, dtype="float32")
    trainer = SparseTrainer(model, X32, y, "cross_entropy", refresh_every=refresh_every)
    rows = [dict(trainer.counters)]

    def record(t, objective, model):
        rows.append(dict(trainer.counters))

    result = run(trainer, model, 1, trace_steps, "constant", lr, 0.0, False, record)
    per_step = {k: np.diff([row[k] for row in rows]) for k in TRACED}
    return trainer, result, per_step


dense_flops = dense_step_flops(start, N)
dense_history = mp.fit(mp.LMM(d, H1, H2, K, seed=0, dtype="float32"), X32, y, method="dense",
                       steps=1, lr=0.01).history
assert dense_history["flops"] == [dense_flops]  # the dense trainer counts (eq-dense-flops)
traces = {}
for lr in (0.01, 0.1):
    started = time.perf_counter()
    traces[lr] = traced_run(lr)
    trainer_lr, result, per_step = traces[lr]
    flops = np.asarray(result.history["flops"], dtype=float)
    ordinary = per_step["refreshes"] == 0
    print(f"lr = {lr}: {trace_steps} steps in {time.perf_counter() - started:.1f} s, "
          f"max loss {result.history['objective'][0]:.3f} → {result.final_objective:.3f}; "
          f"{trainer_lr.cache.misses} products X·x_s computed, {trainer_lr.cache.hits} reused")
    print(f"  {'per step':16s} {'median':>9s} {'mean':>9s}")
    for name in TRACED[:-1]:
        print(f"  {name:16s} {np.median(per_step[name]):9,.0f} {per_step[name].mean():9,.0f}")
    print(f"  FLOP ratio dense/sparse: median {np.median(dense_flops / flops):,.0f}×; of the "
          f"mean cost {dense_flops / flops.mean():,.0f}×, "
          f"{dense_flops / flops[ordinary].mean():,.0f}× without the "
          f"{np.count_nonzero(~ordinary)} refresh steps")


def rolling_mean(values, window):
    """Mean over the last `window` steps (fewer at the start)."""
    sums = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts


# %% tags=["hide-input"]
window = 5 if QUICK else 10
fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), sharex=True)
for i, (lr, (_, result, per_step)) in enumerate(traces.items()):
    steps = np.arange(trace_steps)
    ratio = dense_flops / np.asarray(result.history["flops"], dtype=float)
    axes[0, 0].plot(steps, ratio, color=f"C{i}", lw=1, label=f"lr = {lr}")
    refreshed = np.flatnonzero(per_step["refreshes"])
    axes[0, 0].plot(steps[refreshed], ratio[refreshed], "v", color=f"C{i}", ms=6)
    lazy = per_step["synced"] - N * per_step["refreshes"]  # a refresh synchronises all N
    panels = {(0, 1): lazy, (1, 0): per_step["rescans"], (1, 1): per_step["takeover_passes"]}
    for (row, col), counts in panels.items():
        axes[row, col].plot(steps, counts / N, color=f"C{i}", lw=0.6, alpha=0.35)
        axes[row, col].plot(steps, rolling_mean(counts / N, window), color=f"C{i}", lw=1.8,
                            label=f"lr = {lr}, mean of {window} steps")
axes[0, 0].set_yscale("log")
axes[0, 0].set_title("counted FLOPs, dense / sparse (▼ refresh)")
axes[0, 1].set_title("samples synchronised by the loss bounds / N")
axes[1, 0].set_title("rescans per sample")
axes[1, 1].set_title("takeover passes per sample")
for ax in axes[1]:
    ax.set_xlabel("step")
axes[0, 0].legend(fontsize=8)
axes[1, 0].legend(fontsize=8)
fig.suptitle(f"worst-sample steps on MNIST-5k, LMM {d}-{H1}-{H2}-{K}, float32", y=1.0)
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the figure with the printed tables. On ordinary steps the sparse step counts far
# fewer FLOPs than the dense one. At a refresh step (▼) the trainer recomputes $Z$, a
# linear forward pass over all samples, and the ratio falls to a few; the step after it
# finds every sample up to date and synchronises none, so its ratio jumps. Refreshes
# weigh on the mean cost per step, not on the median (the last line of each table).
#
# Lazy synchronisation skips few samples in these runs (top right). The reason is the
# spread of the losses: a fresh network gives every image a loss close to $\ln 10$, and
# after a step or two the bounds {eq}`eq-loss-bound` exceed the gap between most losses
# and the largest. The repair, meanwhile, does a few rescans and takeover passes per
# sample and step, because every moved linear column reaches every image.
#
# A larger learning rate moves the columns farther at each step, so more candidates
# cross each other and more selections change; the loss bounds grow faster too. The
# lines below compare the two runs, counter by counter and in counted FLOPs.

# %%
print(f"losses of the initial network: {initial_losses.min():.3f} to {initial_losses.max():.3f}"
      f" (ln 10 = {np.log(10):.3f})")
for name in ("synced", "followed", "rescans", "takeover_passes"):
    low, high = (traces[lr][2][name].mean() / N for lr in (0.01, 0.1))
    print(f"{name:16s} per sample and step: lr 0.01 → {low:6.2f}, lr 0.1 → {high:6.2f} "
          f"({high / low:.2f}×)")
sparse_median = {lr: np.median(traces[lr][1].history["flops"]) for lr in (0.01, 0.1)}
print(f"median sparse FLOPs per step: lr 0.01 → {sparse_median[0.01]:,.0f}, lr 0.1 → "
      f"{sparse_median[0.1]:,.0f} ({sparse_median[0.1] / sparse_median[0.01]:.2f}×)")

# %% [markdown]
# The counters are deterministic (they do not depend on timing), so these comparisons
# are reproducible. At the larger rate the repair follows more outputs and rescans more
# rows per step: that is the churn of the selections. Takeover passes need not follow
# the same trend: an input whose candidates improved causes a takeover pass (unless its
# thresholds certify it), a selection that got worse causes a resolve or a rescan, and
# which of the two a moved column causes depends on the direction it moves in each
# layer, which the learning rate changes along the trajectory.

# %% [markdown]
# ## Cost per step against $N$, $h_1$ and $K$
#
# Counted FLOPs are the algorithmic limit of the speed-up; seconds are what one gets.
# `maxplus.experiments.step_cost_scaling` measures both for the sparse and the dense
# trainer (worst-sample cross-entropy, constant step 0.01, float32, MNIST pixels / 255),
# varying one of $N$, $h_1$, $K$ at a time around a base network: $N$ by subsampling
# MNIST-5k, $K$ by keeping the digits $0..K-1$. Each point times the two trainers in
# interleaved rounds from the same initial LMM (`maxplus.speed.measure_step_times`), a
# few warm-up steps first. We give it a preset sized for this chapter.

# %%
if QUICK:
    sizes = dict(scaling_N=(500, 1000, 2000), scaling_h1=(64, 128, 256), scaling_K=(2, 5, 10),
                 scaling_base=(1000, 128, 32), scaling_seconds=0.4, scaling_steps=12)
else:
    sizes = dict(scaling_N=(500, 1000, 2000, 5000), scaling_h1=(64, 128, 256, 512),
                 scaling_K=(2, 5, 10), scaling_base=(2000, 128, 32), scaling_seconds=1.5,
                 scaling_steps=60)
preset = replace(PRESETS["quick" if QUICK else "full"], **sizes)
started = time.perf_counter()
scaling = step_cost_scaling(preset, Data(preset))
print(f"measured in {time.perf_counter() - started:.0f} s; base N = {preset.scaling_base[0]}, "
      f"h1 = {preset.scaling_base[1]}, h2 = {preset.scaling_base[2]}, K = 10")
print(f"{'axis':4s} {'N':>5s} {'h1':>4s} {'K':>3s} {'sparse ms':>10s} {'dense ms':>9s} "
      f"{'FLOP ratio':>11s} {'time ratio':>11s} {'realised':>9s}")
for axis, points in scaling.series.items():
    flop_ratio, time_ratio, realised = step_cost_ratios(points)
    for p, fr, tr, share in zip(points, flop_ratio, time_ratio, realised, strict=True):
        print(f"{axis:4s} {p['N']:5d} {p['h1']:4d} {p['K']:3d} {1e3 * p['sparse_median']:10.1f} "
              f"{1e3 * p['dense_median']:9.1f} {fr:10.0f}× {tr:10.1f}× {share:9.1%}")

# %% tags=["hide-input"]
fig, axes = plot_step_costs(scaling.series)
fig.suptitle("time per step and dense/sparse ratios, MNIST, float32", y=1.0)
plt.tight_layout()
plt.show()

# %% [markdown]
# The base network appears on every axis, so it was measured three times; the spread of
# those three times is the noise of this (shared, two-core) machine. Then the exponents
# of the power laws $\text{cost} \propto x^a$ fitted to the points (a log-log
# least-squares slope, `maxplus.experiments.loglog_slope`), in seconds and in counted
# FLOPs, and the FLOP rate each trainer reaches.

# %%
n0, h1_0, _ = preset.scaling_base
base = [p for points in scaling.series.values() for p in points
        if (p["N"], p["h1"], p["K"]) == (n0, h1_0, K)]
for method in ("sparse", "dense"):
    times = [1e3 * p[f"{method}_median"] for p in base]
    print(f"base point, {method:6s}: {min(times):6.1f} to {max(times):6.1f} ms per step "
          f"over its {len(times)} measurements")
for axis, points in scaling.series.items():
    xs = [p[axis] for p in points]
    slope = {(m, unit): loglog_slope(xs, [p[f"{m}_{unit}"] for p in points])
             for m in ("sparse", "dense") for unit in ("median", "flops")}
    print(f"{axis:3s}: seconds ∝ {axis}^a with a = {slope['sparse', 'median']:+.2f} (sparse), "
          f"{slope['dense', 'median']:+.2f} (dense); counted FLOPs: "
          f"{slope['sparse', 'flops']:+.2f} (sparse), {slope['dense', 'flops']:+.2f} (dense)")
all_points = [p for points in scaling.series.values() for p in points]
rates = {m: np.median([p[f"{m}_flops"] / p[f"{m}_median"] for p in all_points]) / 1e9
         for m in ("sparse", "dense")}
flop_ratio, time_ratio, realised = step_cost_ratios(all_points)
print(f"FLOP rate (median over the points): dense {rates['dense']:.2f} GFLOP/s, "
      f"sparse {rates['sparse']:.2f} GFLOP/s")
print(f"FLOP ratio {flop_ratio.min():.0f}× to {flop_ratio.max():.0f}×, time ratio "
      f"{time_ratio.min():.1f}× to {time_ratio.max():.1f}×: the time realises "
      f"{realised.min():.1%} to {realised.max():.1%} of the FLOP saving")
speedup = {key: paper_figure("per_iteration_speedup", key).value
           for key in ("dense_seconds", "sparse_seconds", "speedup")}
print(f"the paper reports {speedup['dense_seconds']} s vs {speedup['sparse_seconds']} s per "
      f"iteration, {speedup['speedup']:.0f}× (its own set-up and hardware)")

# %% [markdown]
# What the exponents say, in terms of {eq}`eq-dense-flops`: the dense step's FLOPs grow
# in proportion to $N$ and to $h_1$ (the linear layer dominates) and hardly with $K$,
# and its time roughly follows its FLOPs, since it is regular arithmetic that the processor runs
# at a high rate. The sparse step is **not** sublinear in $N$ on MNIST: every moved
# column reaches every image, so the repair visits all $N$ samples, and its FLOPs grow
# with $N$ like the dense ones; the FLOP ratio is then roughly constant in $N$. It grows
# with $h_1$, because the dense step pays for all $h_1$ linear units and the sparse step
# only for the few that move and the rows it rescans; it falls with $K$, because more
# classes mean more moved units per step, each touching every sample.
#
# The time realises only a small part of the FLOP saving (the share is printed above).
# The dense step's operations are a long regular loop; the repair's are a handful per
# sample and changed input, scattered over the stored state of all $N$ samples and full
# of branches, so they run at a far lower rate (the two FLOP rates above). A step also
# has fixed costs, Python and the hand-off to the thread pool, that no FLOP count sees;
# they weigh most at small $N$. The paper's figure comes from its own prototype and
# hardware, not from these runs; chapter 7 compares the trainers head to head with
# PyTorch peers.
#
# ## Summary
#
# - A dense step costs {eq}`eq-dense-flops`, dominated by $4Ndh_1$ for images; the
#   subgradient of the worst sample is a tree of at most $2K + K(d + 1)$ entries,
#   {eq}`eq-tree-flops`, independent of $N$ and of the hidden widths.
# - The sparse trainer keeps every sample's forward state and **repairs** it. The linear
#   layer's changed columns move along the selected samples' inputs, so one cached
#   product $X x_s$ per distinct selected sample gives the exact correction
#   {eq}`eq-column-repair` for all $N$ samples.
# - The tropical layers are repaired per sample in $O(1)$ per changed candidate: outputs
#   *follow* their selected input, an improved candidate *takes over*, a worsened
#   selection is resolved against stored runners-up and a bound, and only rarely
#   *rescanned*. Thresholds certify inputs that cannot take anything over. A small
#   layer after the first (the scores) is cheaper to recompute per sample, and is.
# - Loss bounds {eq}`eq-loss-bound` let the trainer synchronise only samples that may be
#   among the $q$ worst; a refresh every `refresh_every` steps ends the rounding drift,
#   which stays within {eq}`eq-drift-bound`; `exact=True` keeps the state bitwise a fresh
#   forward pass.
# - Live: exact mode reproduced the dense iterates bit for bit and the cached mode to
#   rounding; the repaired state matched a fresh forward pass. On MNIST every moved
#   column reaches every image (non-negative pixels), so each step repairs all samples
#   and its cost grows with $N$ like the dense step's; the counted FLOPs still fall by
#   a large factor, and the measured time by a much smaller one (the tables above).
#
# ## Try this
#
# 1. Rerun the counter trace with `refresh_every=10` and with `refresh_every=1000`. How
#    do the FLOP ratio's mean and median move, and what happens to `drift_bound()`?
# 2. Centre the MNIST pixels (subtract the mean image) before training. The products
#    $x_n \cdot x_{n^\star}$ then take both signs: do the rescans and takeover passes
#    per sample change?
# 3. Train with the top-$q$ objective, $q = 10$ and $q = 100$, and count the products
#    computed (`trainer.cache.misses`) and the FLOP ratio. Where does the sparse
#    method stop paying?
# 4. Start the counter trace from a network trained for a few hundred steps of the mean
#    objective, where the losses are spread out. Does lazy synchronisation skip more
#    samples?
