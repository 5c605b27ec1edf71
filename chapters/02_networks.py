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
# # Max-plus networks
#
# ## Overview
#
# The previous chapter studied one max-plus product. A **max-plus network** stacks such
# products as layers, after an ordinary linear layer that turns the input into a few
# affine functions of it. The network of the paper is the **LMM** of Luo & Fan
# (*Min-Max-Plus Neural Networks*, 2021): a linear layer, then a min-plus layer, then a
# max-plus layer whose outputs are the class scores.
#
# This chapter defines the three kinds of layer, then shows two facts that the rest of
# the book is built on:
#
# 1. every output of every tropical layer **selects one input**, so a class score is the
#    sum of one weight per layer and *one* affine function of the input: the score of a
#    sample runs along a single path through the network;
# 2. a max of mins of affine functions can represent **every continuous piecewise-linear
#    function**, and an LMM is exactly such a max of mins, with its affine pieces made by
#    the linear layer and shared between the min-plus units.
#
# We then train an LMM on a small 2-D problem and look at its pieces.
#
# We use:
#
# - `mp.make_sequential(sizes, kinds)`, `mp.Sequential`, `mp.Linear`, `mp.MaxPlus`,
#   `mp.MinPlus`: general networks `Linear → (MaxPlus | MinPlus)+`;
# - `mp.LMM(d, h1, h2, K)` and `mp.LMM.from_arrays(A, b, B, C)`;
# - `model.forward(X)`: the values *and* the selections of every layer;
# - `mp.fit(model, X, y, objective="mean", ...)`: training (derived in chapters 3 and 4);
# - `maxplus.plotting`: a grid over the plane and the selection path of each point.

# %%
import matplotlib.pyplot as plt
import numba
import numpy as np
from matplotlib.colors import ListedColormap
from sklearn.datasets import make_moons

import maxplus as mp
from maxplus.book import quick_mode, use_book_style
from maxplus.plotting import plane_grid, region_label_points, selection_paths

use_book_style()
QUICK = quick_mode()
rng = np.random.default_rng(0)
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## Three kinds of layer
#
# Write one sample's input as $x \in \mathbb{R}^d$. A **linear** layer with weights
# $A \in \mathbb{R}^{h \times d}$ and bias $b \in \mathbb{R}^h$ computes $h$ affine
# functions of it:
#
# $$
# z_m = A_m \cdot x + b_m, \qquad m = 1, \dots, h .
# $$ (eq-linear)
#
# A **max-plus** layer with weights $W \in \mathbb{R}^{p \times h}$ is the max-plus
# product of chapter 1 applied to its input vector $z$, and it records the selected
# input of every output:
#
# $$
# o_j = \max_{i} \,(W_{ji} + z_i), \qquad \sigma_j = \min \operatorname*{arg\,max}_i \,(W_{ji} + z_i).
# $$ (eq-maxplus-layer)
#
# A **min-plus** layer is its mirror, with $\min$ and the lowest $\arg\min$:
#
# $$
# o_j = \min_{i} \,(W_{ji} + z_i), \qquad \sigma_j = \min \operatorname*{arg\,min}_i \,(W_{ji} + z_i).
# $$ (eq-minplus-layer)
#
# There is no activation function: the max and the min *are* the non-linearity. A network
# of the package is a linear layer followed by any number of max-plus and min-plus
# layers. `model.forward(X)` returns the values of every layer for all samples and the
# selected inputs of every tropical layer. Here is a small one, checked against the
# definitions written with NumPy broadcasting.

# %%
net = mp.make_sequential([3, 5, 4, 2], ["MinPlus", "MaxPlus"], seed=1, dtype="float64")
print(net)
print({name: p.shape for name, p in net.named_parameters().items()})

X_demo = rng.normal(size=(6, 3))
fwd = net.forward(X_demo)
Z, U, S = fwd.values
linear, minplus, maxplus = net.layers

assert np.allclose(Z, X_demo @ linear.weight.T + linear.bias, rtol=1e-13, atol=1e-13)
cand_min = Z[:, None, :] + minplus.weight[None, :, :]  # (N, out, in): W[j, i] + z[i]
assert np.array_equal(U, cand_min.min(axis=2))
assert np.array_equal(fwd.selections[1], cand_min.argmin(axis=2))  # lowest index on ties
cand_max = U[:, None, :] + maxplus.weight[None, :, :]
assert np.array_equal(S, cand_max.max(axis=2))
assert np.array_equal(fwd.selections[2], cand_max.argmax(axis=2))
print("min-plus selections of sample 0:", fwd.selections[1][0].tolist())
print("max-plus selections of sample 0:", fwd.selections[2][0].tolist())

# %% [markdown]
# ## The LMM
#
# The LMM has $d$ inputs, $h_1$ linear units, $h_2$ min-plus units and $K$ outputs, one
# per class, with parameters $A$ ($h_1 \times d$), $b$ ($h_1$), $B$ ($h_2 \times h_1$)
# and $C$ ($K \times h_2$):
#
# $$
# z_m = A_m \cdot x + b_m, \qquad
# u_l = \min_m \,(B_{lm} + z_m), \qquad
# s_k = \max_l \,(C_{kl} + u_l),
# $$ (eq-lmm)
#
# with selections $\mu_l$ (the linear unit that unit $l$ keeps) and $\lambda_k$ (the
# min-plus unit that class $k$ keeps). The predicted class is $\arg\max_k s_k$ and the
# training loss of a sample with label $y$ is the cross-entropy
# $\ell = \log \sum_k e^{s_k} - s_y$. The model has
#
# $$
# P = h_1 (d + 1) + h_2 h_1 + K h_2
# $$ (eq-n-parameters)
#
# parameters. On Iris ($d = 4$, $K = 3$):

# %%
X_iris, y_iris = mp.load_iris()
X_iris = mp.Standardizer().fit_transform(X_iris)
d, h1, h2, K = X_iris.shape[1], 16, 12, 3
lmm = mp.LMM(d, h1, h2, K, seed=0, dtype="float64")
print(lmm)
assert lmm.n_parameters == h1 * (d + 1) + h2 * h1 + K * h2
print(f"P = {h1}·{d + 1} + {h2}·{h1} + {K}·{h2} = {lmm.n_parameters}")
print("scores of the first two flowers:\n", lmm.scores(X_iris[:2]))

# %% [markdown]
# ## Each output selects one input: paths
#
# Follow the selections of {eq}`eq-lmm` backwards from class $k$: the max-plus layer
# keeps one min-plus unit $l = \lambda_k$, which keeps one linear unit $m = \mu_l$, so
#
# $$
# s_k = C_{k \lambda_k} + B_{\lambda_k \mu_{\lambda_k}} + A_{\mu_{\lambda_k}} \cdot x + b_{\mu_{\lambda_k}} .
# $$ (eq-path)
#
# The score of class $k$ is one affine function of $x$ (the linear unit at the end of the
# path) plus two weights. The same holds in every network of the package: one weight per
# tropical layer plus one linear unit. The forward pass stores the selections, so the
# path of every sample and class can be read off and {eq}`eq-path` checked exactly,
# bit for bit, because the network adds the same numbers in the same order.

# %%
fwd = lmm.forward(X_iris)
Z, U, S = fwd.values
mu, lam = fwd.selections[1], fwd.selections[2]
n = np.arange(len(X_iris))[:, None]
k = np.arange(K)[None, :]
l_sel = lam                      # λ_k for every sample and class
m_sel = mu[n, l_sel]             # μ_{λ_k}
path_scores = lmm.C[k, l_sel] + (lmm.B[l_sel, m_sel] + Z[n, m_sel])
assert np.array_equal(path_scores, S)
print("paths [class, min-plus unit, linear unit] of flower 0:")
print(lmm.tree(X_iris[0]).paths)
print(f"eq. (eq-path) holds exactly for all {S.size} (sample, class) pairs")

# %% [markdown]
# A consequence: near a point where no selection is tied, $s_k$ **is** the affine
# function of {eq}`eq-path`, with gradient $A_{\mu_{\lambda_k}}$ with respect to $x$. A
# small move of the input changes the score by exactly that linear amount. (In a fresh
# network the classes often share their linear unit, as for flower 0; we take the first
# flower whose classes use more than one.)

# %%
first = next(i for i, x in enumerate(X_iris) if len(lmm.tree(x).linear_units) > 1)
x0 = X_iris[first]
print(f"flower {first}")
v = rng.normal(size=d)
h = 1e-6
s0, s1 = lmm.scores(x0[None])[0], lmm.scores((x0 + h * v)[None])[0]
tree0 = lmm.tree(x0)
assert lmm.tree(x0 + h * v).paths == tree0.paths, "the step must not change a selection"
for cls, path in tree0.paths.items():
    predicted = lmm.A[path[-1]] @ v
    print(f"class {cls} (linear unit {path[-1]:2d}): (s(x + hv) − s(x)) / h = "
          f"{(s1[cls] - s0[cls]) / h:+.6f}, A[μ]·v = {predicted:+.6f}")
    assert np.isclose((s1[cls] - s0[cls]) / h, predicted, rtol=1e-6, atol=1e-6)

# %% [markdown]
# ## Deeper stacks, and why they alternate
#
# Two max-plus layers in a row are one max-plus layer in disguise. By associativity of the
# max-plus product (chapter 1),
#
# $$
# \max_j \Big( W^{(2)}_{kj} + \max_i \,(W^{(1)}_{ji} + z_i) \Big)
#   = \max_i \Big( \underbrace{\max_j \,(W^{(2)}_{kj} + W^{(1)}_{ji})}_{(W^{(2)} \otimes W^{(1)})_{ki}} + z_i \Big),
# $$ (eq-collapse)
#
# so stacking layers of one kind adds parameters but no expressive power. A network of
# max-plus layers only computes maxima of the affine functions $z_i$, which are **convex**
# functions of $x$. The min-plus layer is what brings concave kinks, hence non-convex
# scores. Both facts can be checked: {eq}`eq-collapse` on a random two-max network, and
# convexity through the midpoint inequality $s(\tfrac{a+b}{2}) \le \tfrac{s(a) + s(b)}{2}$
# on random pairs of points.

# %%
maxmax = mp.make_sequential([2, 6, 5, 3], ["MaxPlus", "MaxPlus"], seed=2, dtype="float64")
lin, first, second = maxmax.layers
merged = mp.Sequential([mp.Linear(lin.weight, lin.bias),
                        mp.MaxPlus(mp.maxplus_matmul(second.weight, first.weight))])
X_plane = rng.normal(size=(1000, 2)) * 2
assert np.allclose(maxmax.scores(X_plane), merged.scores(X_plane), rtol=0, atol=1e-12)
print(maxmax.architecture, "computes the same scores as", merged.architecture)


def midpoint_violations(model, n_pairs=4000):
    a, b = rng.normal(size=(2, n_pairs, model.n_features)) * 2
    gap = model.scores((a + b) / 2) - (model.scores(a) + model.scores(b)) / 2
    return int((gap > 1e-12).sum()), float(gap.max())


lmm_2d = mp.LMM(2, 6, 5, 3, seed=2, dtype="float64")
for name, model in [("MaxPlus-MaxPlus", maxmax), ("LMM (MinPlus-MaxPlus)", lmm_2d)]:
    count, worst = midpoint_violations(model)
    print(f"{name:22s}: {count:5d} violated midpoint inequalities (largest gap {worst:+.2e})")
assert midpoint_violations(maxmax)[0] == 0 and midpoint_violations(lmm_2d)[0] > 0

# %% [markdown]
# ## A max of mins represents every piecewise-linear function
#
# A function $f : \mathbb{R}^d \to \mathbb{R}$ is **continuous piecewise linear** (CPWL)
# when it is continuous and finitely many affine functions $g_1, \dots, g_p$ (its
# *pieces*) cover it: at every $x$, $f(x) = g_j(x)$ for some $j$. Every CPWL function is a
# max of mins of its own pieces (Tarela & Martínez, 1999; Ovchinnikov, *Max-min
# representation of piecewise linear functions*, 2002): there are subsets
# $S_1, \dots, S_q \subseteq \{1, \dots, p\}$ with
#
# $$
# f(x) = \max_{i = 1, \dots, q} \; \min_{j \in S_i} \; g_j(x) \qquad \text{for all } x .
# $$ (eq-maxmin)
#
# **The intuition.** Cut the space into regions $D_1, \dots, D_q$ on which $f$ is a single
# piece, $f = g_{i}$ on $D_i$ (renumbering the pieces), and let $S_i$ hold the pieces that
# lie *above* $g_i$ on $D_i$. On its own region the $i$-th term is then
# $\min_{j \in S_i} g_j = g_i = f$, so the maximum in {eq}`eq-maxmin` is at least $f$.
# The work of the theorem is the other half: no term $i$ can exceed $f$ anywhere else.
# Walking in a straight line from $D_i$ to a point $x$, continuity forces $f$ to pass from
# piece to piece, and one shows that some piece of $S_i$ is at most $f(x)$ at $x$: the
# $\min$ cuts every term down to size. Max-only functions are convex and min-only ones concave; one level of
# each suffices for everything in between.
#
# **The LMM is such a representation.** Its linear layer computes $h_1$ affine functions
# $z_m$, the candidate pieces. A min-plus unit $u_l = \min_m (B_{lm} + z_m)$ takes the
# minimum over a subset of them: a weight $B_{lm} = 0$ puts piece $m$ in the subset, a
# large one keeps it out (on a bounded input domain a large finite weight acts like
# $+\infty$). An output $s_k = \max_l (C_{kl} + u_l)$ takes the maximum over a subset of
# the min-plus units in the same way. Pieces are **shared**: a piece that appears in many
# subsets $S_i$ is computed once, and finite weights add a constant to it, which gives
# the subset each piece in a shifted copy for free. Since CPWL functions approximate
# every continuous function uniformly on a compact set, so do LMMs: Luo & Fan prove that
# their min-max-plus networks are universal approximators.
#
# Let us build one by hand: the pyramid
# $f(x) = \max\big(0, \min(1 - x_1, 1 + x_1, 1 - x_2, 1 + x_2)\big)$, five pieces, two
# min-plus units (the four faces, and the zero plane), one output.

# %%
big = 10.0  # "excluded": on [-2, 2]² every piece lies in [-1, 3], far below big − 1
A_pyr = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0], [0.0, 0.0]])
b_pyr = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
B_pyr = np.array([[0.0, 0.0, 0.0, 0.0, big],     # unit 0: min of the four faces
                  [big, big, big, big, 0.0]])    # unit 1: the zero plane alone
C_pyr = np.array([[0.0, 0.0]])                    # one output: max of the two units
pyramid = mp.LMM.from_arrays(A_pyr, b_pyr, B_pyr, C_pyr)

xx, yy, grid = plane_grid(np.array([[-2.0, -2.0], [2.0, 2.0]]), n=121, margin=0.0)
target = np.maximum(0, np.minimum.reduce([1 - grid[:, 0], 1 + grid[:, 0],
                                           1 - grid[:, 1], 1 + grid[:, 1]]))
pyr_fwd = pyramid.forward(grid)
assert np.allclose(pyr_fwd.scores[:, 0], target, rtol=0, atol=1e-12)
piece = selection_paths(pyr_fwd, np.zeros(len(grid), dtype=int))[:, -1]
print("the hand-built LMM equals the pyramid on all", len(grid), "grid points")
print("grid points per selected piece:", np.bincount(piece).tolist())

# %% tags=["hide-input"]
piece_names = ["$1 - x_1$", "$1 + x_1$", "$1 - x_2$", "$1 + x_2$", "$0$"]
piece_cmap = ListedColormap([f"C{i}" for i in range(5)])
fig = plt.figure(figsize=(10, 4.2))
ax3d = fig.add_subplot(1, 2, 1, projection="3d")
ax3d.plot_surface(xx, yy, pyr_fwd.scores[:, 0].reshape(xx.shape),
                  facecolors=piece_cmap(piece.reshape(xx.shape) / 4), linewidth=0,
                  antialiased=False, shade=False, rstride=2, cstride=2)
ax3d.set_xlabel("$x_1$")
ax3d.set_ylabel("$x_2$")
ax3d.set_title("$s(x)$ of the hand-built LMM")
ax = fig.add_subplot(1, 2, 2)
ax.pcolormesh(xx, yy, piece.reshape(xx.shape), cmap=piece_cmap, vmin=-0.5, vmax=4.5)
for j, (r_, c_) in region_label_points(piece.reshape(xx.shape)).items():
    ax.text(xx[r_, c_], yy[r_, c_], piece_names[j], ha="center", va="center", fontsize=11,
            bbox=dict(boxstyle="round", fc="white", alpha=0.8))
ax.set_aspect("equal")
ax.set_xlabel("$x_1$")
ax.set_ylabel("$x_2$")
ax.set_title("selected linear unit (the piece)")
ax.grid(False)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## A trained LMM and its pieces
#
# Training finds such a representation by itself. We fit an LMM with two classes to the
# "two moons" of scikit-learn (400 noisy points, standardised) by minimising the average
# cross-entropy with the subgradient method; chapters 3 and 4 derive the step. For each
# point of the plane we then read the predicted class and the path of its score, and
# colour the plane by the linear unit at the end of that path: the piece that the
# winning score uses there.

# %%
# the problem is tiny: a parallel kernel's thread hand-offs cost more than its work,
# so we train on one numba thread (the result is the same)
numba.set_num_threads(1)

X_moons, y_moons = make_moons(400, noise=0.15, random_state=0)
X_moons = mp.Standardizer().fit_transform(X_moons)
steps = 500 if QUICK else 3000
moons_lmm = mp.LMM(2, 16, 8, 2, seed=0, dtype="float64")
result = mp.fit(moons_lmm, X_moons, y_moons, objective="mean", method="dense",
                steps=steps, step="constant", lr=1.0, progress=False)
model = result.best
accuracy = float(np.mean(model.predict(X_moons) == y_moons))
print(f"{result.steps_done} steps: mean loss {result.history['objective'][0]:.4f} → "
      f"{result.best_objective:.4f} (best iterate, step {result.best_step})")
print(f"training accuracy of the best iterate: {accuracy:.1%}")
assert accuracy >= 0.9

# %%
xx, yy, grid = plane_grid(X_moons, n=160 if QUICK else 300, margin=0.4)
grid_fwd = model.forward(grid)
scores = grid_fwd.scores
winner = np.argmax(scores, axis=1)
paths = selection_paths(grid_fwd, winner)          # [class, λ, μ] of the winning score
margin = scores[:, 1] - scores[:, 0]

# the winning score is affine on each region of constant (class, λ, μ), with slope A[μ]
regions, region_of = np.unique(paths, axis=0, return_inverse=True)
region_of = region_of.ravel()
worst_residual = 0.0
for r, (cls, _, m_unit) in enumerate(regions):
    inside = region_of == r
    design = np.c_[grid[inside], np.ones(inside.sum())]
    coef = np.linalg.lstsq(design, scores[inside, cls], rcond=None)[0]
    worst_residual = max(worst_residual, np.abs(design @ coef - scores[inside, cls]).max())
    if inside.sum() >= 3:
        assert np.allclose(coef[:2], model.A[m_unit], atol=1e-8)
assert worst_residual < 1e-9
used = np.unique(paths[:, -1])
print(f"{len(regions)} regions of constant path (class, λ, μ) on the grid")
print(f"on each, the winning score is affine with slope A[μ] "
      f"(largest residual {worst_residual:.1e})")
print(f"linear units used by a winning score: {used.tolist()} of {model.A.shape[0]}")

# %% tags=["hide-input"]
shape = xx.shape
point_colours = ListedColormap(["C0", "C3"])
unit_index = np.searchsorted(used, paths[:, -1]).reshape(shape)
unit_colours = ListedColormap([plt.get_cmap("Set2")(i % 8) for i in range(len(used))])

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharey=True)
axes[0].contourf(xx, yy, winner.reshape(shape), levels=[-0.5, 0.5, 1.5],
                 colors=["#cfe2f3", "#f4cccc"])
axes[0].scatter(*X_moons.T, c=y_moons, cmap=point_colours, s=10, edgecolor="k", lw=0.3)
axes[0].set_title(f"decision regions (training accuracy {accuracy:.0%})")
axes[1].pcolormesh(xx, yy, unit_index, cmap=unit_colours, vmin=-0.5, vmax=len(used) - 0.5)
axes[1].contour(xx, yy, margin.reshape(shape), levels=[0], colors="k", linewidths=1.5)
axes[1].scatter(*X_moons.T, c=y_moons, cmap=point_colours, s=4, alpha=0.5)
for i, (r_, c_) in region_label_points(unit_index).items():
    axes[1].text(xx[r_, c_], yy[r_, c_], f"$z_{{{used[i]}}}$", ha="center", va="center",
                 fontsize=11, bbox=dict(boxstyle="round", fc="white", alpha=0.85))
axes[1].set_title("linear unit at the end of the winning path")
for ax in axes:
    ax.set_xlabel("$x_1$")
    ax.set_aspect("equal")
    ax.grid(False)
axes[0].set_ylabel("$x_2$")
plt.tight_layout()
plt.show()

# %% tags=["hide-input"]
fig = plt.figure(figsize=(10.5, 4.4))
ax = fig.add_subplot(1, 2, 1)
limit = np.abs(margin).max()
filled = ax.contourf(xx, yy, margin.reshape(shape), levels=24, cmap="coolwarm",
                     vmin=-limit, vmax=limit)
ax.contour(xx, yy, margin.reshape(shape), levels=np.linspace(-limit, limit, 25),
           colors="k", linewidths=0.3)
ax.contour(xx, yy, margin.reshape(shape), levels=[0], colors="k", linewidths=1.5)
fig.colorbar(filled, ax=ax, label="$s_1 - s_0$")
ax.set_title("score margin $s_1 - s_0$")
ax.set_xlabel("$x_1$")
ax.set_ylabel("$x_2$")
ax.set_aspect("equal")
ax.grid(False)
ax3d = fig.add_subplot(1, 2, 2, projection="3d")
winning_score = scores[np.arange(len(grid)), winner].reshape(shape)
ax3d.plot_surface(xx, yy, winning_score, facecolors=unit_colours(unit_index),
                  linewidth=0, antialiased=False, shade=False,
                  rstride=max(1, shape[0] // 80), cstride=max(1, shape[1] // 80))
ax3d.set_xlabel("$x_1$")
ax3d.set_ylabel("$x_2$")
ax3d.set_title("winning score, coloured by its linear unit")
ax3d.view_init(elev=35, azim=-60)
plt.tight_layout()
plt.show()

# %% [markdown]
# The right-hand panel of the first figure shows the pieces. A handful of linear units
# do all the work: the winning score in each coloured region is the affine function
# $z_m$ named there, plus two constant weights (a region can hold several paths that end
# at the same unit). Inside a region of constant paths the margin's contour lines are
# straight and parallel; they bend only where a selection changes, and the surface of
# the winning score is made of flat facets. The decision boundary (black) is made of
# straight segments, each where two paths tie.
#
# Most linear units are never at the end of a winning path, and the tropical layers'
# weights that do not lie on a path do not influence the scores near those points at
# all. Chapter 3 turns this into the sparsity of the subgradient.
#
# ## Summary
#
# - A network is a linear layer {eq}`eq-linear` followed by max-plus and min-plus layers
#   {eq}`eq-maxplus-layer`, {eq}`eq-minplus-layer`; each tropical output selects one input
#   (lowest index on ties), and `model.forward` records every selection.
# - The LMM {eq}`eq-lmm` (linear, min-plus, max-plus) has $P$ parameters
#   {eq}`eq-n-parameters`. A class score is one linear unit plus one weight per tropical
#   layer along a path {eq}`eq-path`, so it is locally affine in $x$ with slope
#   $A_{\mu_{\lambda_k}}$.
# - Two layers of the same kind collapse into one {eq}`eq-collapse`; max-only networks are
#   convex. Alternating min and max gives every continuous piecewise-linear function
#   {eq}`eq-maxmin`, and the LMM is that representation with shared pieces.
# - A trained LMM uses a few linear units as the pieces of its winning scores.
#
# ## Try this
#
# 1. Build, with `mp.LMM.from_arrays`, an LMM for the "tent"
#    $f(x) = \max(0, 1 - |x_1| - |x_2|)$. How many pieces and min-plus units does it need?
#    (Hint: $|x_1| + |x_2| = \max(\pm x_1 \pm x_2)$.)
# 2. In the pyramid, lower `big` until the LMM stops being exact on $[-2, 2]^2$. Which
#    value is the threshold, and why?
# 3. Train the moons LMM with `h1=4` and with `h1=64`. How many linear units does the
#    winning class use, and how does the decision boundary change?
# 4. Replace the LMM by `mp.make_sequential([2, 16, 8, 2], ["MaxPlus", "MaxPlus"])` and
#    train it the same way. By {eq}`eq-collapse` each score is a maximum of the $z_i$ plus
#    constants, so the plane is cut into convex cells, one per winning $z_i$, each with a
#    fixed class. Plot the cells. How many does the network need for the moons?
# 5. Check {eq}`eq-path` for a deeper network
#    `mp.make_sequential([4, 16, 12, 8, 3], ["MinPlus", "MaxPlus", "MaxPlus"])` with
#    `maxplus.plotting.selection_paths`.
