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
# # Subgradients and their sparsity
#
# ## Overview
#
# A max-plus network is not differentiable everywhere: a maximum has a kink wherever two
# of its candidates tie. Training it needs **subgradients**, and this chapter derives
# them by hand, from the subdifferential of a single maximum to the gradient of a sample's
# loss with respect to all the parameters of an LMM.
#
# The result is strikingly sparse. One sample's loss depends on the parameters only
# through the paths of its $K$ class scores (chapter 2), so its subgradient lives on
# those paths: at most $K$ weights of each tropical layer and $K$ rows of the linear
# layer, **whatever the widths of the hidden layers are**. We call this set the sample's
# *short computational tree*, derive the five formulas that fill it, check them against
# automatic differentiation to the last bit, draw one tree of a real MNIST digit, and
# measure how the tree's size compares with the size of the network as the network
# grows.
#
# We use:
#
# - `model.tree(x)`: the computational tree of one sample (its paths, its parameters);
# - `tree.gradient(label)`: the subgradient of the sample's loss, as a sparse gradient
#   (`.to_dense(model)`, `.nnz`);
# - `maxplus.torch_reference.autograd_gradient`: what PyTorch's autograd returns for the
#   same loss;
# - `maxplus.plotting.draw_tree`: the tree with its gradient weights.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import maxplus as mp
from maxplus.book import quick_mode, use_book_style
from maxplus.plotting import draw_tree
from maxplus.torch_reference import autograd_gradient

use_book_style()
QUICK = quick_mode()
rng = np.random.default_rng(0)
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## The subdifferential of a maximum
#
# The maximum $f(u) = \max_i u_i$ of $u \in \mathbb{R}^n$ is convex. A vector $g$ is a
# **subgradient** of a convex $f$ at $u$ when the affine function it defines stays below
# $f$ everywhere, $f(u + v) \ge f(u) + g \cdot v$ for all $v$; the set of them is the
# **subdifferential** $\partial f(u)$. For the maximum, with $I(u)$ the set of indices
# that reach it,
#
# $$
# \partial f(u) = \operatorname{conv}\{ e_i : i \in I(u) \}, \qquad
# I(u) = \{ i : u_i = \max_j u_j \}.
# $$ (eq-subdiff-max)
#
# When one index wins, $\partial f(u) = \{e_i\}$ is the gradient; at a tie it is the
# segment (or simplex) between the tied one-hot vectors. The minimum $\min_i u_i$ is
# concave, and its mirror set $\operatorname{conv}\{e_i : i \in \arg\min\}$ contains the
# vectors $g$ with $\min(u + v) \le \min(u) + g \cdot v$.
#
# Every element of {eq}`eq-subdiff-max` is a valid subgradient, and different software
# picks different ones. Take $u = (1, 3, 3, \tfrac12)$, tied between indices 1 and 2:

# %%
u = np.array([1.0, 3.0, 3.0, 0.5])
tied = np.flatnonzero(u == u.max())
print("indices reaching the maximum:", tied.tolist())


def is_subgradient(g, u, n_directions=2000):
    """f(u + v) >= f(u) + g·v for many random directions v (f = max)."""
    v = rng.normal(size=(n_directions, u.size))
    return bool(np.all((u + v).max(axis=1) >= u.max() + v @ g - 1e-12))


for t in (0.0, 0.3, 0.5, 1.0):
    g = t * np.eye(4)[1] + (1 - t) * np.eye(4)[2]
    assert is_subgradient(g, u)
assert not is_subgradient(np.eye(4)[0], u)  # a non-maximal index is not one
print("every convex combination of e_1 and e_2 is a subgradient; e_0 is not")

# two PyTorch reductions, two different subgradients
t_u = torch.tensor(u, requires_grad=True)
torch.amax(t_u, dim=0).backward()
print("torch.amax  spreads the gradient over the tie:", t_u.grad.numpy())
even = t_u.grad.numpy().copy()
t_u.grad = None
torch.gather(t_u, 0, torch.argmax(t_u)[None]).sum().backward()
print("argmax + gather sends it to the lowest index: ", t_u.grad.numpy())
assert np.array_equal(even, [0, 0.5, 0.5, 0]) and np.array_equal(t_u.grad.numpy(), np.eye(4)[1])

# %% [markdown]
# Both are in {eq}`eq-subdiff-max`. The **one-hot** choice keeps the subgradient as sparse
# as the gradient away from ties, and it is the one the package makes, in every layer,
# with one rule: **the lowest index wins a tie**. PyTorch's `argmax` returns the first
# maximal index too, so autograd through `argmax` and `gather` (the reference
# implementation in `maxplus.torch_reference`) follows the same rule.
#
# Why one rule everywhere? The sparse algorithm of the paper and the dense
# backpropagation of autograd are two computations of *one* subgradient; the sparse step
# can only equal the dense step when both pick the same element of the set at every tie
# of every layer.
#
# **Networks are not convex.** The LMM's scores are maxima of minima, and the loss
# composes them with a log-sum-exp. For such locally Lipschitz, piecewise smooth
# functions, Clarke's generalised gradient plays the role of the subdifferential: the
# convex hull of the limits of gradients at nearby points where the function is
# differentiable. Away from ties the network is differentiable and the one-hot rule gives
# the gradient; at a tie, the chain rule below gives the gradient of one of the smooth
# pieces that meet there, the quantity that automatic differentiation computes (Bolte &
# Pauwels, 2021, call such chain-rule outputs *conservative fields*; they agree with the
# gradient almost everywhere). This is the subgradient that the rest of the book uses.
#
# ## The chain rule through selections
#
# Take one sample $x$ with label $y$ and an LMM (chapter 2): linear units $z_m$,
# min-plus units $u_l = \min_m (B_{lm} + z_m)$ with selections $\mu_l$, scores
# $s_k = \max_l (C_{kl} + u_l)$ with selections $\lambda_k$. The cross-entropy
# $\ell = \log \sum_k e^{s_k} - s_y$ has the score gradient
#
# $$
# \delta_k = \frac{\partial \ell}{\partial s_k} = \operatorname{softmax}(s)_k - [k = y].
# $$ (eq-delta)
#
# Along its path, $s_k = C_{k\lambda_k} + B_{\lambda_k \mu_{\lambda_k}} + A_{\mu_{\lambda_k}} \cdot x
# + b_{\mu_{\lambda_k}}$, so each score depends on one weight of $C$, one of $B$ and one row of
# $(A, b)$. Summing $\delta_k$ times these derivatives over the classes and grouping the
# classes by the unit they meet gives the whole subgradient:
#
# $$
# \begin{aligned}
# g_C[k, \lambda_k] &= \delta_k, &
# \gamma_l &= \sum_{k \,:\, \lambda_k = l} \delta_k, &
# g_B[l, \mu_l] &= \gamma_l, \\
# \zeta_m &= \sum_{l \,:\, \mu_l = m} \gamma_l, &
# g_A[m, :] &= \zeta_m \, x, &
# g_b[m] &= \zeta_m ,
# \end{aligned}
# $$ (eq-tree-gradient)
#
# where $l$ runs over the min-plus units some class selects, and every other entry is
# zero. Read it as back-propagation along the paths: each class sends its $\delta_k$ to
# the unit it selected, each min-plus unit adds up what it receives ($\gamma_l$) and
# passes it to its own selection, each linear unit adds up again ($\zeta_m$) and turns it
# into a row of $A$ by the outer product with $x$.
#
# Here is {eq}`eq-tree-gradient` typed in directly, with NumPy and the selections of a
# forward pass, for one flower of Iris:

# %%
X_iris, y_iris = mp.load_iris()
X_iris = mp.Standardizer().fit_transform(X_iris)
lmm = mp.LMM(4, 16, 12, 3, seed=0, dtype="float64")


def tree_gradient_by_hand(model, x, label):
    """Eq. (eq-tree-gradient) with NumPy: returns dense arrays named like the model's."""
    fwd = model.forward(x[None, :])
    s, mu, lam = fwd.scores[0], fwd.selections[1][0], fwd.selections[2][0]
    delta = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    delta[label] -= 1.0
    g = {name: np.zeros_like(p) for name, p in model.named_parameters().items()}
    gamma = np.zeros(model.B.shape[0])
    for k in range(model.C.shape[0]):
        g["2.weight"][k, lam[k]] = delta[k]
        gamma[lam[k]] += delta[k]
    zeta = np.zeros(model.A.shape[0])
    for l_unit in np.unique(lam):
        g["1.weight"][l_unit, mu[l_unit]] = gamma[l_unit]
        zeta[mu[l_unit]] += gamma[l_unit]
    for m in np.unique(mu[lam]):
        g["0.weight"][m] = zeta[m] * x
        g["0.bias"][m] = zeta[m]
    return g, delta, gamma, zeta


# the first flower whose classes end at more than one linear unit
n_flower = next(n for n, x_n in enumerate(X_iris) if len(lmm.tree(x_n).linear_units) > 1)
x, label = X_iris[n_flower], int(y_iris[n_flower])
by_hand, delta, gamma, zeta = tree_gradient_by_hand(lmm, x, label)
tree = lmm.tree(x)
print(f"flower {n_flower} (class {label}), paths [class, λ, μ]:", tree.paths)
selected_units = sorted({path[1] for path in tree.paths.values()})
print("δ =", delta.round(4))
print("γ on the selected min-plus units:",
      {l_: round(float(gamma[l_]), 4) for l_ in selected_units})
print("ζ on the linear units reached:   ",
      {int(m): round(float(zeta[m]), 4) for m in tree.linear_units})

# %% [markdown]
# ## Checking against automatic differentiation
#
# In the spirit of QuantEcon's lecture on back-propagation, the next cell compares three
# computations of the same subgradient: the hand formulas above, the package's tree
# (`tree.gradient(label)`, the routine the sparse trainer uses) and PyTorch's autograd
# applied to the sample's loss (`autograd_gradient` with a one-sample data set, so that
# the "worst sample" is that sample). In float64 they must agree to rounding: the only
# operations that differ between them are the few additions in the softmax.

# %%
def compare(model, x, label):
    """max |difference| per parameter: hand vs tree, autograd vs tree."""
    hand, *_ = tree_gradient_by_hand(model, x, label)
    sparse = model.tree(x).gradient(label)
    tree_dense = sparse.to_dense(model)
    auto = autograd_gradient(model, x[None, :], np.array([label]), objective="worst")
    rows = []
    for name in model.named_parameters():
        rows.append((name, np.abs(hand[name] - tree_dense[name]).max(),
                     np.abs(auto[name] - tree_dense[name]).max()))
        if name != "0.bias" and name != "0.weight":  # tropical weights: same support
            assert np.array_equal(auto[name] != 0, tree_dense[name] != 0), name
    worst = max(max(r[1], r[2]) for r in rows)
    assert worst <= 1e-15, worst
    return rows, sparse


rows, sparse = compare(lmm, x, label)
print(f"{'parameter':10s} {'max|hand − tree|':>18s} {'max|autograd − tree|':>22s}")
for name, hand_gap, auto_gap in rows:
    print(f"{name:10s} {hand_gap:18.1e} {auto_gap:22.1e}")

X_mnist, y_mnist = mp.load_mnist5k()
mnist_lmm = mp.LMM(784, 256, 128, 10, seed=0, dtype="float64")
checked = rng.choice(len(X_mnist), size=5 if QUICK else 25, replace=False)
for n in checked:
    compare(mnist_lmm, X_mnist[n], int(y_mnist[n]))
print(f"... and the same to ≤ 1e-15 on {len(checked)} MNIST digits with an LMM 784-256-128-10")

# %% [markdown]
# The tropical weights' gradients have exactly the same non-zero entries in all three,
# and the values differ by at most a unit in the last place. The sparse tree **is** what
# autograd computes; it just never materialises the zeros.
#
# One more thing to notice: a linear unit whose incoming classes are *all* $K$ classes
# receives $\zeta_m = \sum_k \delta_k = 0$, because the softmax sums to one. Adding the
# same number to every score does not change the cross-entropy, and a linear unit that
# every path runs through shifts every score together. This happens in fresh networks,
# whose classes often share their linear unit:

# %%
shared = next(n for n, x_n in enumerate(X_iris) if len(lmm.tree(x_n).linear_units) == 1)
(unit,) = lmm.tree(X_iris[shared]).linear_units
_, delta_shared, _, zeta_shared = tree_gradient_by_hand(lmm, X_iris[shared],
                                                         int(y_iris[shared]))
g_shared = lmm.tree(X_iris[shared]).gradient(int(y_iris[shared]))
print(f"flower {shared}: every class ends at linear unit {unit}; "
      f"ζ_{unit} = Σ δ_k = {zeta_shared[unit]:.1e}")
print(f"rows of A in the package's gradient: {g_shared.linear_rows.tolist()}, "
      f"largest |g_b| stored: {np.abs(g_shared.linear_bias).max(initial=0.0):.1e}")
assert abs(zeta_shared[unit]) < 1e-15 and np.all(np.abs(g_shared.linear_bias) < 1e-15)

# %% [markdown]
# ## Counting the tree
#
# The tree of {eq}`eq-tree-gradient` has exactly $K$ entries of $C$ (one per class), one
# entry of $B$ per min-plus unit selected by some class (at most $K$), and one row of
# $(A, b)$ per linear unit reached (at most $K$). So a sample's subgradient has at most
#
# $$
# \underbrace{K}_{C} + \underbrace{K}_{B} + \underbrace{K (d + 1)}_{A,\, b}
# \quad \text{non-zeros, against} \quad
# P = h_1 (d + 1) + h_2 h_1 + K h_2
# $$ (eq-tree-size)
#
# parameters in the network: the bound does not depend on $h_1$ or $h_2$. Let us draw
# one tree of the MNIST network above ($d = 784$, $K = 10$), with the weights of
# {eq}`eq-tree-gradient` on its nodes: $\delta_k$ on the classes, $\gamma_l$ on the
# min-plus units, $\zeta_m$ on the linear units. An edge from class $k$ to unit
# $\lambda_k$ stands for the weight $C_{k\lambda_k}$ and carries its gradient
# $\delta_k$, the value of the node above it; an edge from unit $l$ to $\mu_l$ stands
# for $B_{l\mu_l}$ and carries $\gamma_l$. Colour and thickness show the sign and size.

# %%
digit = int(checked[0])
x_digit, y_digit = X_mnist[digit], int(y_mnist[digit])
tree = mnist_lmm.tree(x_digit)
grad = tree.gradient(y_digit)
scores = tree.scores
delta_digit = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
delta_digit[y_digit] -= 1.0
K, d = 10, 784
print(f"MNIST image {digit}, label {y_digit}; paths [class, λ, μ]:")
for k, path in tree.paths.items():
    print(f"  class {k}: min-plus unit {path[1]:3d}, linear unit {path[2]:3d}")
print(f"tree: {tree.n_parameters()} parameters; gradient non-zeros: {grad.nnz}; "
      f"bound 2K + K(d+1) = {2 * K + K * (d + 1)}; P = {mnist_lmm.n_parameters:,}")
assert grad.nnz <= tree.n_parameters() <= 2 * K + K * (d + 1)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(11, 5.4))
levels, edges = draw_tree(ax, tree, delta_digit,
                          level_names=["classes $k$", "min-plus units $l$", "linear units $m$"])
ax.set_title(f"computational tree of MNIST image {digit} (label {y_digit}): "
             f"{grad.nnz:,} of {mnist_lmm.n_parameters:,} parameters")
plt.show()

# the weights drawn are the entries of the package's sparse gradient
for drawn, entries in zip(edges, grad.tropical[::-1], strict=True):  # g_C, then g_B
    stored = {(int(r), int(c)): v for r, c, v in zip(entries.rows, entries.cols,
                                                    entries.values, strict=True)}
    assert set(stored) <= set(drawn)
    assert all(abs(drawn[key] - stored.get(key, 0.0)) <= 1e-15 for key in drawn)
assert np.allclose([levels[2][int(m)] for m in grad.linear_rows], grad.linear_bias,
                   rtol=0, atol=1e-15)

# %% [markdown]
# The rows of $g_A$ are copies of the image, scaled by $\zeta_m$ (a linear unit's row
# moves towards or away from the digit). Here are the image and the rows of $A$'s
# gradient that the tree touches:

# %% tags=["hide-input"]
rows_A = grad.linear_rows
fig, axes = plt.subplots(1, len(rows_A) + 1, figsize=(1.9 * (len(rows_A) + 1), 2.4))
axes[0].imshow(x_digit.reshape(28, 28), cmap="gray_r")
axes[0].set_title(f"x (label {y_digit})", fontsize=9)
limit = np.abs(grad.linear_weight).max()
for ax, m, row, z in zip(axes[1:], rows_A, grad.linear_weight, grad.linear_bias, strict=True):
    ax.imshow(row.reshape(28, 28), cmap="coolwarm", vmin=-limit, vmax=limit)
    ax.set_title(f"$g_A[{m}, :]$, ζ={z:+.2f}", fontsize=9)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
plt.tight_layout()
plt.show()
assert np.allclose(grad.linear_weight, grad.linear_bias[:, None] * x_digit[None, :], atol=1e-15)

# %% [markdown]
# ## Sparsity against width
#
# The bound {eq}`eq-tree-size` stays put while $P$ grows with the hidden widths. We
# measure both on real digits: for growing $h_1$ (with $h_2 = h_1 / 2$) we draw a random
# LMM, take a random sample of MNIST images, and count the parameters in each image's
# tree and the non-zeros of its subgradient.

# %%
widths = [16, 64, 256, 1024] if QUICK else [16, 64, 256, 1024, 4096]
n_images = 20 if QUICK else 100
images = rng.choice(len(X_mnist), size=n_images, replace=False)
sizes = {"P": [], "tree_mean": [], "tree_max": [], "tree_min": [], "nnz_mean": []}
for h1 in widths:
    model = mp.LMM(d, h1, h1 // 2, K, seed=1, dtype="float32")
    trees = [model.tree(X_mnist[n]) for n in images]
    in_tree = np.array([t.n_parameters() for t in trees])
    nnz = np.array([t.gradient(int(y_mnist[n])).nnz for t, n in zip(trees, images, strict=True)])
    assert np.all(nnz <= in_tree) and np.all(in_tree <= 2 * K + K * (d + 1))
    sizes["P"].append(model.n_parameters)
    sizes["tree_mean"].append(in_tree.mean())
    sizes["tree_max"].append(in_tree.max())
    sizes["tree_min"].append(in_tree.min())
    sizes["nnz_mean"].append(nnz.mean())
    print(f"h1 = {h1:5d}, h2 = {h1 // 2:5d}: P = {model.n_parameters:11,d}; tree "
          f"{in_tree.mean():5.0f} on average (max {in_tree.max():5d}), "
          f"{in_tree.mean() / model.n_parameters:6.2%} of P")
share = np.array(sizes["tree_mean"]) / np.array(sizes["P"])
assert np.all(np.diff(share) < 0) and share[0] > 0.1 and share[-1] < 0.01

# %% tags=["hide-input"]
P = np.array(sizes["P"])
bound = 2 * K + K * (d + 1)
fig, ax = plt.subplots(figsize=(7, 4.4))
ax.plot(P, P, "k--", lw=1, label="all $P$ parameters (a dense gradient)")
ax.axhline(bound, color="C3", lw=1.5, label=f"bound $2K + K(d+1) = {bound:,}$")
ax.fill_between(P, sizes["tree_min"], sizes["tree_max"], color="C0", alpha=0.2)
ax.plot(P, sizes["tree_mean"], "o-", color="C0",
        label=f"parameters in the tree (mean, min–max over {n_images} images)")
ax.plot(P, sizes["nnz_mean"], "s:", color="C2", ms=4, label="non-zeros of the subgradient (mean)")
for p, h1 in zip(P, widths, strict=True):
    ax.annotate(f"$h_1$={h1}", (p, sizes["tree_max"][widths.index(h1)]),
                textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("parameters $P$ of the LMM 784-$h_1$-$h_1/2$-10")
ax.set_ylabel("parameters")
ax.set_title("one sample's subgradient on MNIST")
ax.legend(fontsize=8, loc="upper left")
plt.show()

# %% [markdown]
# At the smallest width the tree is more than a tenth of the network; at the largest it
# is less than a hundredth, and its size stops growing: it is set by $K$ and $d$. A
# sample's tree is mostly its linear rows, $d + 1$ parameters each. The classes of a
# random network often share linear units, so the average tree sits below the bound; the
# largest trees reach it when the ten classes end at ten different linear units.
#
# This is the sparsity the paper exploits. It belongs to **one sample**: the gradient of
# the average loss over $N$ samples is the average of $N$ such trees, and their union
# quickly covers the network. Chapter 4 turns to the objective that keeps a single tree
# per step, the loss of the worst sample.
#
# ## Summary
#
# - The subdifferential of a maximum is the convex hull of the one-hot vectors of its
#   maximisers {eq}`eq-subdiff-max`. The package takes the one-hot vector of the lowest
#   maximiser, in every layer, as autograd does through `argmax`.
# - Through the selections, the chain rule gives a sample's subgradient in five lines
#   {eq}`eq-tree-gradient`: $\delta$ on the classes' weights of $C$, sums $\gamma$ on the
#   selected weights of $B$, sums $\zeta$ scaling $x$ on the reached rows of $A$ and $b$.
# - The package's tree gradient equals the hand formulas and autograd's gradient to
#   rounding ($\le 10^{-15}$ in float64), with identical supports.
# - A tree has at most $2K + K(d+1)$ parameters {eq}`eq-tree-size`, independent of the
#   hidden widths, so its share of the network shrinks as the network grows: on MNIST,
#   from more than a tenth of the smallest LMM to less than a hundredth of the largest.
#
# ## Try this
#
# 1. Change the loss to the multiclass hinge: `tree.gradient(label, loss="hinge")` and
#    `autograd_gradient(..., loss="hinge")`. How many classes have $\delta_k \ne 0$ now,
#    and how small does the tree's gradient become?
# 2. Construct an input with a tie in the min-plus layer (for example, set two rows of
#    $A$ and $b$ equal in `LMM.from_arrays`). Which unit does the package select, and does
#    autograd agree?
# 3. Extend `tree_gradient_by_hand` to a network with three tropical layers
#    (`mp.make_sequential([4, 16, 12, 8, 3], ["MinPlus", "MaxPlus", "MinPlus"])`) and
#    check it against `autograd_gradient`.
# 4. Train the MNIST LMM for a few hundred steps (chapter 4) and redraw the tree of the
#    same image. Do the classes still share linear units?
# 5. Bound the tree of a network with $L$ tropical layers. Which term dominates when
#    $d \gg L$?
