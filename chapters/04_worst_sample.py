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
# # The worst-sample objective
#
# ## Overview
#
# Chapter 3 showed that one sample's subgradient lives on a tree of at most
# $2K + K(d + 1)$ parameters. The usual training objective, the *average* loss over $N$
# samples, has for subgradient the average of $N$ such trees, and their union soon covers
# most of the network. The paper's way out is to change the objective: minimise the loss
# of the **worst** sample,
#
# $$
# F(\theta) = \max_{n = 1, \dots, N} \ell_n(\theta),
# $$ (eq-worst)
#
# whose subgradient is the tree of a single sample. This chapter measures how fast the
# trees of the average cover the network, puts the worst sample and the average into one
# family (the mean of the $q$ largest losses), states what the subgradient method
# guarantees, and what it does not, for such objectives, and then checks live that the
# package's sparse step is the step autograd would take. We end with training curves on
# Iris for three step-size rules and three members of the family.
#
# We use:
#
# - `mp.fit(model, X, y, objective="worst" | "mean" | ("topq", q), method="sparse" |
#   "dense", step="constant" | "diminishing" | "polyak", ...)`;
# - `maxplus.torch_reference.torch_fit`: the same method with PyTorch's autograd;
# - `model.forward(X)` for the selections of all samples, `maxplus.losses.losses` for
#   their losses.

# %%
import warnings

import matplotlib.pyplot as plt
import numba
import numpy as np

import maxplus as mp
from maxplus.book import quick_mode, use_book_style
from maxplus.losses import losses
from maxplus.objectives import top_q
from maxplus.torch_reference import torch_fit

use_book_style()
QUICK = quick_mode()
rng = np.random.default_rng(0)
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## The average loss has a dense subgradient
#
# The average $\frac1N \sum_n \ell_n$ has the subgradient $\frac1N \sum_n g_n$, one tree
# $g_n$ per sample (chapter 3). Different samples select different units, so the union
# of their trees grows with every sample added. To see how fast, take the samples in
# order of decreasing loss and count the parameters in the union of the first $q$
# trees. We do it on MNIST-5k with a random LMM 784-256-128-10, reading the trees off the
# selections of one forward pass: class $k$ of sample $n$ touches $C[k, \lambda_{nk}]$,
# $B[\lambda_{nk}, \mu_{n\lambda_{nk}}]$ and row $\mu_{n\lambda_{nk}}$ of $(A, b)$.

# %%
X_mnist, y_mnist = mp.load_mnist5k()
N, d = X_mnist.shape
K = 10
mnist_lmm = mp.LMM(d, 256, 128, K, seed=0, dtype="float64")
fwd = mnist_lmm.forward(X_mnist)
loss_all = losses(fwd.scores, y_mnist, "cross_entropy")
by_loss = np.argsort(-loss_all, kind="stable")    # decreasing loss, lowest index first
mu, lam = fwd.selections[1], fwd.selections[2]


def union_of_trees(rows):
    """Entries of C and B and rows of (A, b) in the union of the trees of `rows`."""
    lam_r = lam[rows]                                   # (q, K): λ of each class
    mu_r = np.take_along_axis(mu[rows], lam_r, axis=1)  # (q, K): the linear unit reached
    h2, h1 = mnist_lmm.B.shape
    c_entries = np.unique(np.arange(K)[None, :] * h2 + lam_r)  # flat indices into C
    b_entries = np.unique(lam_r * h1 + mu_r)                   # flat indices into B
    return c_entries.size, b_entries.size, np.unique(mu_r).size


def tree_parameter_count(rows):
    n_c, n_b, n_rows = union_of_trees(rows)
    return n_c + n_b + n_rows * (d + 1)


# the union read off the selections equals the union of the package's trees
some = np.sort(by_loss[:10])
union = {}
for n in some:
    for name, entries in mnist_lmm.tree(X_mnist[n]).parameters().items():
        union.setdefault(name, set()).update(map(lambda e: tuple(np.atleast_1d(e)), entries))
assert union_of_trees(some) == (len(union["2.weight"]), len(union["1.weight"]),
                                len(union["0.weight"]))

qs = np.unique(np.round(np.logspace(0, np.log10(N), 6 if QUICK else 13)).astype(int))
in_trees = np.array([tree_parameter_count(np.sort(by_loss[:q])) for q in qs])
print(f"P = {mnist_lmm.n_parameters:,} parameters")
for q, count in zip(qs, in_trees, strict=True):
    print(f"q = {q:5d}: {count:7,d} parameters in the union of the trees "
          f"({count / mnist_lmm.n_parameters:6.1%})")

# %% [markdown]
# A tree counts the whole row $(A_m, b_m)$ of every linear unit it reaches, but the
# gradient row is $\zeta_m x$, and MNIST digits are mostly blank: the pixels that are zero
# in every selected image receive nothing. The parameters that a step *actually changes*
# are fewer. We measure them too, by taking one real step of `mp.fit` on the top-$q$
# objective (defined next) and comparing the parameters before and after.

# %%
def changed_by_one_step(q):
    model = mnist_lmm.copy()
    mp.fit(model, X_mnist, y_mnist, objective=("topq", int(q)), method="dense", steps=1,
           lr=0.1, progress=False)
    return sum(int(np.count_nonzero(after != before)) for after, before in
               zip(model.named_parameters().values(),
                   mnist_lmm.named_parameters().values(), strict=True))


changed = np.array([changed_by_one_step(q) for q in qs])
for q, count in zip(qs, changed, strict=True):
    print(f"q = {q:5d}: {count:7,d} parameters changed by one step")
assert np.all(changed <= in_trees) and np.all(np.diff(in_trees) >= 0)
assert in_trees[0] <= 2 * K + K * (d + 1) and in_trees[-1] > mnist_lmm.n_parameters / 2
assert changed[-1] > mnist_lmm.n_parameters / 4

# %% tags=["hide-input"]
P = mnist_lmm.n_parameters
bound = 2 * K + K * (d + 1)
fig, ax = plt.subplots(figsize=(7, 4.4))
ax.axhline(P, color="k", ls="--", lw=1, label=f"all parameters, $P$ = {P:,}")
ax.axhline(bound, color="C3", lw=1, label=f"one tree at most, $2K + K(d+1)$ = {bound:,}")
ax.plot(qs, in_trees, "o-", label="in the union of the $q$ trees")
ax.plot(qs, changed, "s-", label="changed by one step (non-zero entries)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("$q$: samples in the objective (largest losses first)")
ax.set_ylabel("parameters")
ax.set_title("MNIST-5k, LMM 784-256-128-10: the subgradient fills up")
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# The worst sample alone ($q = 1$) touches a few thousand parameters; the average over
# all $N$ samples ($q = N$) touches most of the network. In between the count grows
# steadily with $q$: there is no cheap middle ground for the average.
#
# ## The top-$q$ family
#
# Sort the losses, $\ell_{[1]} \ge \ell_{[2]} \ge \dots \ge \ell_{[N]}$, and average the
# $q$ largest:
#
# $$
# F_q(\theta) = \frac1q \sum_{i=1}^{q} \ell_{[i]}(\theta)
#   = \max_{S \subseteq \{1..N\},\ |S| = q} \; \frac1q \sum_{n \in S} \ell_n(\theta).
# $$ (eq-topq)
#
# $F_1$ is the worst-sample objective {eq}`eq-worst` and $F_N$ the average; in between,
# $F_q$ is the **conditional value at risk** of the empirical loss distribution at level
# $q/N$, the mean of its upper $q/N$ tail (Rockafellar & Uryasev, 2000):
#
# $$
# F_q(\theta) = \min_{t \in \mathbb{R}} \Big\{ t + \frac1q \sum_{n=1}^{N} \big(\ell_n(\theta) - t\big)_+ \Big\},
# $$ (eq-cvar)
#
# with the minimum reached at $t = \ell_{[q]}$. By the right-hand side of {eq}`eq-topq`,
# $F_q$ is a maximum of finitely many functions, so one subgradient is that of the
# selected average: **the mean of the $q$ selected samples' trees**,
#
# $$
# g = \frac1q \sum_{n \in S^\star} g_n, \qquad S^\star = \text{the } q \text{ largest losses, lowest index on ties}.
# $$ (eq-topq-gradient)
#
# Ties between losses are not rare: when all classes of a sample end at the same linear
# unit, its cross-entropy does not depend on that unit, and samples with the same
# selections and label have *exactly* equal losses. On Iris, with a fresh LMM:

# %%
# Iris is tiny: a parallel kernel's thread hand-offs cost more than its work, so the
# Iris experiments of this chapter run on one numba thread (results are unchanged)
numba.set_num_threads(1)

X_iris, y_iris = mp.load_iris()
X_iris = mp.Standardizer().fit_transform(X_iris)
K_iris = 3
lmm = mp.LMM(4, 16, 12, K_iris, seed=0, dtype="float64")
iris_losses = losses(lmm.scores(X_iris), y_iris, "cross_entropy")
values, counts = np.unique(iris_losses, return_counts=True)
print(f"{len(values)} distinct losses among {len(iris_losses)} flowers; "
      f"the largest group of exactly equal losses has {counts.max()} flowers")

q = 15
selected = top_q(iris_losses, q)
F_q = iris_losses[selected].mean()
t_star = np.sort(iris_losses)[::-1][q - 1]
cvar = t_star + np.maximum(iris_losses - t_star, 0).sum() / q
ts = np.linspace(iris_losses.min(), iris_losses.max(), 2001)
assert np.isclose(F_q, cvar, rtol=0, atol=1e-14)
assert np.all(ts + np.maximum(iris_losses[None, :] - ts[:, None], 0).sum(axis=1) / q
              >= F_q - 1e-14)
first = mp.fit(lmm.copy(), X_iris, y_iris, objective=("topq", q), steps=1, progress=False)
assert first.history["objective"][0] == F_q
print(f"F_{q} = {F_q:.6f} = CVaR formula (eq-cvar) at t = ℓ_[{q}]; "
      "fit's first objective agrees")
F_all = [iris_losses[top_q(iris_losses, qq)].mean() for qq in (1, 5, 15, 50, 150)]
assert np.all(np.diff(F_all) <= 0)
print("F_1 ≥ F_5 ≥ F_15 ≥ F_50 ≥ F_150:", np.round(F_all, 4).tolist())

# %% [markdown]
# ## The subgradient method
#
# Each step evaluates the objective at the current parameters, takes the subgradient
# $g_t$ of {eq}`eq-topq-gradient` and moves against it:
#
# $$
# \theta_{t+1} = \theta_t - \eta_t \, g_t .
# $$ (eq-update)
#
# The package offers three rules for the step length $\eta_t$, from a base value $\eta$:
#
# $$
# \eta_t = \eta \quad\text{(constant)}, \qquad
# \eta_t = \frac{\eta}{\sqrt{t + 1}} \quad\text{(diminishing)}, \qquad
# \eta_t = \eta \, \frac{F(\theta_t) - F^\star}{\lVert g_t \rVert^2} \quad\text{(Polyak)},
# $$ (eq-steps)
#
# where $F^\star$ is a target value (the optimal value in Polyak's rule, which uses
# $\eta = 1$).
#
# **What is guaranteed, and for what.** The classical theory (Shor; Polyak, *Introduction
# to Optimization*, 1987; Nesterov's *Lectures on Convex Optimization*) is for a
# **convex** $F$ with subgradients bounded by $G$ and a minimiser $\theta^\star$ at distance
# $R$ from $\theta_0$. One step gives
# $\lVert \theta_{t+1} - \theta^\star \rVert^2 \le \lVert \theta_t - \theta^\star \rVert^2
# - 2\eta_t (F(\theta_t) - F^\star) + \eta_t^2 G^2$, and summing,
#
# $$
# \min_{t < T} F(\theta_t) - F^\star \;\le\; \frac{R^2 + G^2 \sum_{t<T} \eta_t^2}{2 \sum_{t<T} \eta_t}.
# $$ (eq-best-bound)
#
# - A constant step brings the best value within $G^2\eta/2$ of $F^\star$, no closer; for a
#   known horizon, $\eta = R / (G\sqrt{T})$ gives $RG/\sqrt{T}$.
# - The diminishing rule $\eta/\sqrt{t+1}$ has $\sum \eta_t \approx 2\eta\sqrt{T}$ and
#   $\sum \eta_t^2 \approx \eta^2 \ln T$: the best value converges, at the rate
#   $O(\log T / \sqrt{T})$.
# - Polyak's rule with the true $F^\star$ gives $\min_{t<T} F(\theta_t) - F^\star \le RG/\sqrt{T}$
#   without knowing $R$ or $G$, but it needs $F^\star$.
#
# These bounds concern the **best** iterate: the method is not a descent method, and
# $F(\theta_t)$ can go up from one step to the next, which is why `fit` keeps the best
# iterate (`result.best`).
#
# **Our objective is not convex.** The min-plus layer makes the scores non-convex in the
# parameters (chapter 2), and composing with the loss does not help; {eq}`eq-best-bound`
# does not apply. What survives: near a minimiser around which the selections do not
# change, $F$ is a maximum of smooth convex functions of the parameters it depends on,
# and the convex picture describes the local behaviour; for locally Lipschitz,
# piecewise-smooth ("tame") functions, the subgradient method with square-summable but
# non-summable steps ($\sum \eta_t = \infty$, $\sum \eta_t^2 < \infty$, e.g.
# $\eta/(t+1)^{0.6}$) and bounded iterates has Clarke-critical limit points (Davis,
# Drusvyatskiy, Kakade & Lee, 2020; Bolte & Pauwels, 2021, for the subgradients that
# automatic differentiation returns), with no rate. Beyond that the rules are
# **heuristics**: we compare them by experiment, below. Polyak's rule, in particular,
# needs a target: the losses are non-negative, so $F^\star = 0$ is a safe lower bound,
# but a poor estimate of the best reachable value.
#
# ## The sparse step is autograd's step
#
# Chapter 3 checked one subgradient. Now whole trajectories: we train the same LMM on
# Iris (standardised, float64) for a few hundred worst-sample steps three ways, with the
# package's sparse trainer, with its dense trainer (full forward and backward passes),
# and with PyTorch's autograd (`torch_fit`, broadcasting implementation), and compare the
# final parameters. Since equal losses are common, the worst sample is sometimes decided
# by the last bit of rounding; we compare the parameters, which is what matters.

# %%
steps = 100 if QUICK else 400
lr = 0.1
start = mp.LMM(4, 16, 12, 3, seed=0, dtype="float64")
sparse_model, dense_model, exact_model = start.copy(), start.copy(), start.copy()
sparse = mp.fit(sparse_model, X_iris, y_iris, objective="worst", method="sparse",
                steps=steps, lr=lr, progress=False)
dense = mp.fit(dense_model, X_iris, y_iris, objective="worst", method="dense",
               steps=steps, lr=lr, progress=False)
exact = mp.fit(exact_model, X_iris, y_iris, objective="worst", method="sparse", exact=True,
               steps=steps, lr=lr, progress=False)
with warnings.catch_warnings():  # torch_fit converts its objective with float(F)
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad",
                            category=UserWarning)
    torch_params, torch_objectives, _ = torch_fit(start.copy(), X_iris, y_iris,
                                                  objective="worst", steps=steps, lr=lr)

print(f"{steps} worst-sample steps of lr = {lr}: max loss "
      f"{sparse.history['objective'][0]:.4f} → {sparse.final_objective:.4f}")
print(f"{'parameter':10s} {'|sparse − autograd|':>20s} {'|sparse − dense|':>18s}")
for name, theta in sparse_model.named_parameters().items():
    gap_torch = np.abs(theta - torch_params[name]).max()
    gap_dense = np.abs(theta - dense_model.named_parameters()[name]).max()
    print(f"{name:10s} {gap_torch:20.1e} {gap_dense:18.1e}")
    assert gap_torch < 1e-10 and gap_dense < 1e-10
assert np.allclose(sparse.history["objective"], torch_objectives, rtol=0, atol=1e-10)
bitwise = all(np.array_equal(a, b) for a, b in zip(
    dense_model.named_parameters().values(), exact_model.named_parameters().values(),
    strict=True))
assert bitwise
print("dense and sparse(exact=True) parameters are bitwise identical:", bitwise)
changed = [np.count_nonzero(a != b) for a, b in zip(
    sparse_model.named_parameters().values(), start.named_parameters().values(), strict=True)]
print(f"parameters moved over the whole run: {sum(changed)} of {start.n_parameters}")

# %% [markdown]
# The three trajectories agree to rounding. The default sparse trainer updates its stored
# linear outputs incrementally (chapter 5) and differs from the dense one in the last
# bits; with `exact=True` it recomputes what changed and matches the dense trainer bit
# for bit. So everything known about the subgradient method for this objective applies
# to the sparse algorithm unchanged: it is the same method, computed differently.
#
# ## Step rules on Iris
#
# We now minimise the worst-sample loss of the Iris LMM with each rule of {eq}`eq-steps`.
# Base step lengths come from a small manual search on this problem. Polyak's rule runs
# twice: with the safe target $F^\star = 0$ (and a relaxation $\eta = 0.1$, since the
# true gap is far smaller than $F$), and with a target just below the best value the
# other rules found, an estimate one would not have in advance.

# %%
train_steps = 300 if QUICK else 2000


def run(objective="worst", step="constant", lr=0.05, target=0.0, every=10):
    """Train a fresh copy of `start`; record the max and mean loss every `every` steps."""
    track = {"step": [], "max": [], "mean": []}

    def record(t, objective_value, model):
        if t % every == 0 or t == train_steps - 1:
            all_losses = losses(model.scores(X_iris), y_iris, "cross_entropy")
            track["step"].append(t + 1)
            track["max"].append(all_losses.max())
            track["mean"].append(all_losses.mean())

    result = mp.fit(start.copy(), X_iris, y_iris, objective=objective, method="sparse",
                    steps=train_steps, step=step, lr=lr, target=target, progress=False,
                    callback=record)
    return result, track


rules = {
    "constant, η = 0.05": run(step="constant", lr=0.05),
    "diminishing, η = 0.3": run(step="diminishing", lr=0.3),
    "Polyak, F* = 0, η = 0.1": run(step="polyak", lr=0.1, target=0.0),
}
best_other = min(result.best_objective for result, _ in rules.values())
target = 0.95 * best_other
rules[f"Polyak, F* = {target:.3f}"] = run(step="polyak", lr=1.0, target=target)
for name, (result, _) in rules.items():
    print(f"{name:26s}: best max-loss {result.best_objective:.4f} at step "
          f"{result.best_step:4d}; last {result.final_objective:.4f}")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 4.4))
for i, (name, (result, _)) in enumerate(rules.items()):
    F = np.asarray(result.history["objective"])
    t = np.arange(len(F))
    ax.plot(t, F, color=f"C{i}", lw=0.6, alpha=0.45)
    ax.plot(t, np.minimum.accumulate(F), color=f"C{i}", lw=2, label=name)
ax.set_xlabel("step $t$")
ax.set_ylabel(r"$F(\theta_t) = \max_n \ell_n$")
ax.set_title("worst-sample training on Iris: $F(\\theta_t)$ (thin) and best so far (thick)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The thin curves are not monotone: this is a subgradient method, and a step that
# lowers the worst sample's loss can make another sample the new, worse, worst one. The
# best-so-far curves are what the method delivers.
#
# Some runs stall on a plateau, and the reason is worth knowing because it is specific
# to the worst-sample objective. Suppose the worst flower's three class scores all run
# through the *same* min-plus unit $l$ (and so the same linear unit). Then
# $\gamma_l = \sum_k \delta_k = 0$: its subgradient is zero on $B$, $A$ and $b$, and only
# moves the column $C_{:,l}$. Its scores are $C_{kl} + u_l$, so its loss
# $\log \sum_k e^{C_{kl}} - C_{yl}$ depends on that column alone, and every flower routed
# the same way has the same scores up to a shift. If such flowers come from all three
# species, one of them has a loss of at least $\log 3$, whatever $C_{:,l}$ is: the
# worst-sample objective cannot go below $\log 3 \approx 1.0986$ until a step moves some
# flower off that unit, and the worst flower's own subgradient never does. The cell
# below checks each run's last iterate for this trap.

# %%
def trap(model):
    """Min-plus unit l through which every class of the worst sample runs (or None),
    and the species of all the samples routed entirely through l."""
    all_losses = losses(model.scores(X_iris), y_iris, "cross_entropy")
    lam_all = model.forward(X_iris).selections[2]
    worst_units = np.unique(lam_all[np.argmax(all_losses)])
    if worst_units.size > 1:
        return None, set(), all_losses.max()
    collapsed = np.all(lam_all == worst_units[0], axis=1)
    return int(worst_units[0]), set(y_iris[collapsed].tolist()), all_losses.max()


for name, (result, _) in rules.items():
    unit, species, F_last = trap(result.model)
    if unit is None:
        print(f"{name:26s}: F = {F_last:.4f}; the worst flower's classes use several units")
        continue
    worst = int(np.argmax(losses(result.model.scores(X_iris), y_iris, "cross_entropy")))
    g = result.model.tree(X_iris[worst]).gradient(int(y_iris[worst])).to_dense(result.model)
    off_C = max(np.abs(g[name_]).max() for name_ in ("0.weight", "0.bias", "1.weight"))
    print(f"{name:26s}: F = {F_last:.4f}; the worst flower runs through min-plus unit "
          f"{unit} alone,\n{'':28s}as do flowers of species {sorted(species)}; "
          f"largest |g| outside C: {off_C:.0e}")
    assert off_C < 1e-15  # only the column C[:, l] moves (up to rounding in Σ δ_k)
    if species == {0, 1, 2}:
        assert F_last >= np.log(3) - 1e-12  # the bound of the text

# %% [markdown]
# ## Worst sample, top-$q$ and mean
#
# Finally, the family {eq}`eq-topq` on the same problem: the worst sample ($q = 1$), the
# worst tenth ($q = 15$) and the mean ($q = N = 150$), all with the constant step. Each
# run minimises its own objective, so we compare what they achieve on the two quantities
# that matter, the largest and the average loss over the training set, and the accuracy
# of their best iterates.

# %%
family = {
    "worst (q = 1)": run(objective="worst", step="constant", lr=0.05),
    "top-q (q = 15)": run(objective=("topq", 15), step="constant", lr=0.05),
    "mean (q = 150)": run(objective="mean", step="constant", lr=0.05),
}
summary = {}
for name, (result, _) in family.items():
    best_losses = losses(result.best.scores(X_iris), y_iris, "cross_entropy")
    accuracy = float(np.mean(result.best.predict(X_iris) == y_iris))
    summary[name] = (best_losses.max(), best_losses.mean(), accuracy)
    print(f"{name:15s}: best iterate: max loss {best_losses.max():.3f}, "
          f"mean loss {best_losses.mean():.3f}, accuracy {accuracy:.0%}")
max_losses = [s[0] for s in summary.values()]
mean_losses = [s[1] for s in summary.values()]
assert np.argmin(max_losses) == 0 and np.argmin(mean_losses) == 2

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
for i, (name, (_, track)) in enumerate(family.items()):
    axes[0].plot(track["step"], track["max"], color=f"C{i}", label=name)
    axes[1].plot(track["step"], track["mean"], color=f"C{i}", label=name)
axes[0].set_title(r"largest loss $\max_n \ell_n$")
axes[1].set_title(r"average loss $\frac{1}{N}\sum_n \ell_n$")
for ax in axes:
    ax.set_xlabel("step $t$")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Each objective wins on its own terms: the worst-sample run ends with the smallest
# largest loss and the mean run with the smallest average loss (the assertion in the cell
# above checks both). Where the top-$q$ run lands in between, and which run classifies
# best, depends on $q$, the step and the horizon: read the printed table. The trade-off
# between protecting the worst case and fitting the bulk is what $q$ controls. Chapter 6
# runs the paper's comparison on MNIST.
#
# ## Summary
#
# - The subgradient of the average loss is the average of $N$ trees; on MNIST their union
#   covers most of the network, and one step changes more than a quarter of it.
# - The top-$q$ objective {eq}`eq-topq` (the CVaR {eq}`eq-cvar` of the losses) runs from
#   the worst sample ($q = 1$) to the mean ($q = N$); its subgradient is the mean of the
#   $q$ selected trees {eq}`eq-topq-gradient`, ties going to the lowest index. $q = 1$ keeps
#   one tree per step.
# - The subgradient method {eq}`eq-update` with the rules {eq}`eq-steps` has best-iterate
#   guarantees {eq}`eq-best-bound` for convex objectives; ours is not convex, so they hold
#   at best locally and the rules are heuristics. The method does not descend: keep the
#   best iterate.
# - The package's sparse step equals autograd's step and the dense trainer's to rounding,
#   and bit for bit with `exact=True`.
#
# ## Try this
#
# 1. Repeat the union-of-trees count with a *trained* LMM (a few hundred steps of the mean
#    objective). Do trained networks share units more or less than random ones?
# 2. Approximate the rule $\eta_t = \eta / (t + 1)^{0.6}$ (square-summable, not
#    summable) by calling `mp.fit` in chunks of 100 steps with a constant `lr` that
#    decreases from chunk to chunk. Does it beat the diminishing rule?
# 3. Vary $q$ from 1 to 150 and plot the best iterate's largest loss, average loss and
#    accuracy against $q$.
# 4. Replace the cross-entropy by `loss="hinge"` in the worst-sample run. What happens to
#    the objective when every sample is classified with a margin of 1?
# 5. Run `torch_fit` with `impl="tropical_gemm"` (if the `tropical-gemm` package is
#    installed) and compare its parameters with the sparse trainer's.
