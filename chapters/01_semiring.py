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
# # The max-plus semiring
#
# ## Overview
#
# A max-plus neural network is built from one operation: take a few numbers, add a weight
# to each, and keep the largest. This chapter studies that operation as algebra. Replacing
# "plus" by "max" and "times" by "plus" gives the **max-plus semiring**, where sums are
# maxima and products are sums. Matrices, powers, polynomials and even equation solving
# all survive the change, with new and often geometric meanings: matrix powers compute
# longest paths in graphs, polynomials become convex piecewise-linear functions, and
# linear systems have a *greatest* approximate solution instead of an exact one.
#
# One thing will matter in every later chapter. Each max-plus product does not just return
# a number; it also **selects** which term achieved the maximum. The result depends, to
# first order, only on the selected term. This is where the sparsity of the subgradients
# of max-plus networks comes from, and why the `maxplus` package returns the selected
# indices, with one fixed rule (the lowest index wins a tie), from every product.
#
# We use:
#
# - `mp.oplus`, `mp.otimes`, `mp.MAX_PLUS`, `mp.MIN_PLUS`: the two semirings;
# - `mp.maxplus_matmul(A, B, return_indices=True)` and `mp.minplus_matmul`: matrix products;
# - `mp.MAX_PLUS.identity`, `mp.MAX_PLUS.power`: the identity matrix and matrix powers;
# - `mp.tropical_polynomial`: evaluation of a tropical polynomial and its selected term;
# - `mp.residual`: the greatest subsolution of $A \otimes x \le b$.

# %%
import itertools

import matplotlib.pyplot as plt
import numpy as np

import maxplus as mp
from maxplus.book import quick_mode, use_book_style

use_book_style()
QUICK = quick_mode()
rng = np.random.default_rng(0)
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## Two operations
#
# On $\mathbb{R}_{\max} = \mathbb{R} \cup \{-\infty\}$ define
#
# $$
# a \oplus b = \max(a, b), \qquad a \otimes b = a + b .
# $$ (eq-ops)
#
# Both operations of {eq}`eq-ops` are associative and commutative, and $\otimes$
# distributes over $\oplus$ because adding $a$ to both numbers does not change which one
# is larger:
#
# $$
# a \otimes (b \oplus c) = a + \max(b, c) = \max(a + b, a + c) = (a \otimes b) \oplus (a \otimes c).
# $$
#
# The neutral elements are the **zero** $\varepsilon = -\infty$, since
# $\max(a, -\infty) = a$, and the **unit** $e = 0$, since $a + 0 = a$. The zero is
# absorbing for $\otimes$: $a \otimes \varepsilon = \varepsilon$. What is missing is
# subtraction: $a \oplus b = \varepsilon$ has no solution $b$ when $a$ is finite, because
# $\oplus$ is *idempotent*, $a \oplus a = a$. So this is a semiring, not a ring, and we
# will have to solve equations differently (see {ref}`residuation` below).

# %%
print("3 ⊕ 5 =", mp.oplus(3.0, 5.0), "   3 ⊗ 5 =", mp.otimes(3.0, 5.0))
print("zero ε =", mp.MAX_PLUS.zero, "  unit e =", mp.MAX_PLUS.one)
eps = mp.MAX_PLUS.zero
print("3 ⊕ ε =", mp.oplus(3.0, eps), "   3 ⊗ ε =", mp.otimes(3.0, eps))

a, b, c = rng.normal(size=(3, 1000))
left = mp.otimes(a, mp.oplus(b, c))
right = mp.oplus(mp.otimes(a, b), mp.otimes(a, c))
assert np.array_equal(left, right)
assert np.array_equal(mp.oplus(a, a), a)  # idempotent
print("distributivity and idempotence hold on 1000 random triples")

# %% [markdown]
# ### The mirror: min-plus
#
# Swapping max for min gives the **min-plus** semiring $\mathbb{R}_{\min}$, with
# $a \oplus' b = \min(a, b)$, the same $\otimes$, zero $+\infty$ and unit $0$. Negation
# maps one onto the other, $\min(a, b) = -\max(-a, -b)$, so every statement about
# max-plus has a min-plus mirror. Both appear in the networks of the next chapter: a
# min-plus layer followed by a max-plus layer.

# %%
print("min-plus: 3 ⊕' 5 =", mp.MIN_PLUS.add(3.0, 5.0), "  zero =", mp.MIN_PLUS.zero)
assert np.array_equal(mp.MIN_PLUS.add(a, b), -mp.MAX_PLUS.add(-a, -b))

# %% [markdown]
# ## Matrices and their product
#
# Replace the sum and product in the usual matrix product by $\oplus$ and $\otimes$. For
# $A \in \mathbb{R}_{\max}^{n \times p}$ and $B \in \mathbb{R}_{\max}^{p \times m}$,
#
# $$
# (A \otimes B)_{ij} = \bigoplus_{k=1}^{p} A_{ik} \otimes B_{kj} = \max_{k} \,(A_{ik} + B_{kj}),
# \qquad
# I_{ij} = \min \operatorname*{arg\,max}_k \,(A_{ik} + B_{kj}).
# $$ (eq-product)
#
# The second half of {eq}`eq-product` is the **selected index**: which $k$ achieved the
# maximum, the lowest one if several tie. Here is a small product with a tie in it.

# %%
A = np.array([[0.0, 2.0, 1.0],
              [3.0, -1.0, 0.0]])
B = np.array([[1.0, 1.0],
              [0.0, -2.0],
              [2.0, 4.0]])
C, I = mp.maxplus_matmul(A, B, return_indices=True)
print("A ⊗ B =\n", C)
print("selected k =\n", I)

# %% [markdown]
# Each entry is a competition between $p = 3$ candidates $A_{ik} + B_{kj}$. Listing them
# makes the selected indices visible:

# %%
candidates = A[:, :, None] + B[None, :, :]  # candidates[i, k, j] = A[i, k] + B[k, j]
for i, j in itertools.product(range(C.shape[0]), range(C.shape[1])):
    print(f"(i={i}, j={j}): {candidates[i, :, j]} -> max {C[i, j]:g} at k = {I[i, j]}")

# the package agrees with the broadcast definition; argmax returns the first (lowest) maximiser
assert np.array_equal(C, candidates.max(axis=1))
assert np.array_equal(I, candidates.argmax(axis=1))

# %% [markdown]
# Entry $(1, 1)$ is a tie: $A_{10} + B_{01} = 3 + 1$ and $A_{12} + B_{21} = 0 + 4$ both
# reach $4$, and the product selects $k = 0$, the lower of the two. Rather than read
# ties by eye, let the code find them:

# %%
best = candidates.max(axis=1, keepdims=True)
n_maximisers = (candidates == best).sum(axis=1)
for i, j in zip(*np.nonzero(n_maximisers > 1), strict=True):
    tied = np.flatnonzero(candidates[i, :, j] == C[i, j])
    print(f"tie at (i={i}, j={j}): k in {tied.tolist()}; selected k = {I[i, j]}")
assert (n_maximisers > 1).any(), "the example is meant to contain a tie"

# %% [markdown]
# ### Why the selected index matters
#
# Away from ties, $C_{ij} = A_{i I_{ij}} + B_{I_{ij} j}$ depends on **one** entry of row
# $i$ of $A$ and one entry of column $j$ of $B$: moving any other entry by a small amount
# changes nothing, and moving the selected one moves $C_{ij}$ by the same amount. The
# derivative of $C_{ij}$ with respect to $A$ is a one-hot matrix, whatever $p$ is.

# %%
h = 1e-3
i, j = 0, 1  # an entry with a unique maximiser
k_sel = I[i, j]
for k in range(A.shape[1]):
    A_moved = A.copy()
    A_moved[i, k] += h
    dC = mp.maxplus_matmul(A_moved, B)[i, j] - C[i, j]
    note = "   <- selected" if k == k_sel else ""
    print(f"move A[{i},{k}] by h: C[{i},{j}] moves by {dC / h:+.3f} h{note}")
    assert np.isclose(dC, h if k == k_sel else 0.0)

# %% [markdown]
# At a tie the maximum has a kink: moving one of the tied entries up moves $C_{ij}$, moving
# it down does not. There is no derivative, but there are **subgradients** (for the
# convex function $\max$, any convex combination of the tied one-hot vectors). Choosing
# the *lowest* tied index picks one subgradient, deterministically. Later chapters train
# max-plus networks with subgradients computed in two very different ways, by automatic
# differentiation over all samples and by the sparse algorithm of the paper over one, and
# on CPU and GPU. They can only produce the *same* iterates if every one of them breaks
# every tie the same way, so the package fixes the rule once: lowest index, everywhere.
#
# Ties are not exotic. Integer or quantised data (pixels!) make them common:

# %%
n = 60 if QUICK else 200
A_int = rng.integers(0, 4, size=(n, n)).astype(float)
B_int = rng.integers(0, 4, size=(n, n)).astype(float)
C_int, I_int = mp.maxplus_matmul(A_int, B_int, return_indices=True)
cand = A_int[:, :, None] + B_int[None, :, :]
tied = (cand == C_int[:, None, :]).sum(axis=1) > 1
assert np.array_equal(C_int, cand.max(axis=1))
assert np.array_equal(I_int, cand.argmax(axis=1))
print(f"{n}x{n} product of small integers: {tied.mean():.0%} of the entries are ties, "
      "all resolved to the lowest index")

# %% [markdown]
# ## The identity and matrix powers
#
# The max-plus identity matrix $E$ has the unit $e = 0$ on its diagonal and the zero
# $\varepsilon = -\infty$ everywhere else, so that $A \otimes E = E \otimes A = A$. Powers
# are repeated products, $A^{\otimes 0} = E$ and $A^{\otimes k} = A^{\otimes (k-1)} \otimes A$.

# %%
E = mp.MAX_PLUS.identity(3)
print(E)
M = rng.normal(size=(3, 3))
assert np.array_equal(mp.maxplus_matmul(M, E), M)
assert np.array_equal(mp.maxplus_matmul(E, M), M)

# %% [markdown]
# ### Longest paths
#
# Read a square matrix as a weighted directed graph: node $i$ has an edge to node $j$ of
# weight $A_{ij}$, and $A_{ij} = \varepsilon$ means "no edge". Unrolling the product,
#
# $$
# (A^{\otimes k})_{ij} = \max_{i = v_0, v_1, \dots, v_k = j} \; \sum_{t=1}^{k} A_{v_{t-1} v_t},
# $$ (eq-paths)
#
# the largest total weight of a walk with exactly $k$ edges from $i$ to $j$ (and
# $\varepsilon$ if there is none). The selected indices of
# $A^{\otimes k} = A^{\otimes (k-1)} \otimes A$ are the node *before* $j$ on a best walk,
# so they let us recover the walk itself by following them backwards, exactly as the
# Viterbi algorithm does.

# %%
edges = {(0, 1): 2.0, (0, 2): 5.0, (1, 3): 4.0, (2, 3): 1.0, (2, 4): 3.0,
         (3, 0): -3.0, (3, 4): 1.5, (4, 1): -1.0}
G = np.full((5, 5), eps)
for (u, v), w in edges.items():
    G[u, v] = w

K = 6
powers, pointers = {1: G}, {}
for k in range(2, K + 1):
    powers[k], pointers[k] = mp.maxplus_matmul(powers[k - 1], G, return_indices=True)
    assert np.array_equal(powers[k], mp.MAX_PLUS.power(G, k))


def best_walk(i, j, k):
    """A best k-edge walk from i to j: follow the selected indices backwards."""
    nodes = [j]
    for t in range(k, 1, -1):
        nodes.append(int(pointers[t][i, nodes[-1]]))
    return [i] + nodes[::-1]


def walk_weight(nodes):
    return sum(G[u, v] for u, v in itertools.pairwise(nodes))


start, end, k_steps = 0, 4, 3
walk = best_walk(start, end, k_steps)
print(f"(G^⊗{k_steps})[{start},{end}] = {powers[k_steps][start, end]:g}; "
      f"best walk {walk} of weight {walk_weight(walk):g}")

# brute force over every sequence of intermediate nodes confirms the formula (eq-paths)
for k in range(2, 5):
    brute = np.full((5, 5), eps)
    for i, j in itertools.product(range(5), repeat=2):
        for middle in itertools.product(range(5), repeat=k - 1):
            brute[i, j] = max(brute[i, j], walk_weight([i, *middle, j]))
    assert np.array_equal(brute, powers[k]), k
    for i, j in zip(*np.nonzero(powers[k] > eps), strict=True):
        assert walk_weight(best_walk(i, j, k)) == powers[k][i, j]
print("powers 2..4 equal the brute-force longest walks; recovered walks are optimal")

# %% tags=["hide-input"]
angle = np.pi / 2 - 2 * np.pi * np.arange(5) / 5
pos = np.c_[np.cos(angle), np.sin(angle)]
on_walk = set(itertools.pairwise(walk))
bend = 0.12  # curvature of the arrows (matplotlib's arc3 connection)
fig, ax = plt.subplots(figsize=(5.2, 4.6))
for (u, v), w in edges.items():
    chosen = (u, v) in on_walk
    colour = "C3" if chosen else "0.55"
    ax.annotate("", xy=pos[v], xytext=pos[u], arrowprops=dict(
        arrowstyle="-|>", color=colour, lw=2.2 if chosen else 1.2,
        shrinkA=14, shrinkB=14, connectionstyle=f"arc3,rad={bend}"))
    # label on the curve, a third of the way from u to v (quadratic Bezier point)
    (x0, y0), (x1, y1) = pos[u], pos[v]
    control = (pos[u] + pos[v]) / 2 + bend * np.array([y1 - y0, x0 - x1])
    t = 0.35
    label_at = (1 - t) ** 2 * pos[u] + 2 * t * (1 - t) * control + t**2 * pos[v]
    ax.text(*label_at, f"{w:g}", ha="center", va="center", fontsize=10, color=colour,
            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none"))
ax.scatter(*pos.T, s=600, color="white", edgecolor="k", zorder=3)
for node, (x, y) in enumerate(pos):
    ax.text(x, y, str(node), ha="center", va="center", fontsize=12, zorder=4)
route = " → ".join(map(str, walk))
value = powers[k_steps][start, end]
ax.set_title(f"best {k_steps}-edge walk {route}: weight {value:g} = "
             f"$(G^{{\\otimes {k_steps}}})_{{{start}{end}}}$")
ax.set_aspect("equal")
ax.axis("off")
plt.show()

# %% [markdown]
# The graph has cycles, so walks can be arbitrarily long and the entries of
# $A^{\otimes k}$ grow with $k$. Max-plus spectral theory (Cuninghame-Green; Baccelli,
# Cohen, Olsder & Quadrat, *Synchronization and Linearity*, 1992) says how fast: for a
# strongly connected graph they eventually grow linearly, with slope the largest
# **mean weight of a cycle**,
#
# $$
# \lambda(A) = \max_{k = 1, \dots, n} \; \max_i \; \frac{(A^{\otimes k})_{ii}}{k},
# $$ (eq-cycle-mean)
#
# since $(A^{\otimes k})_{ii}$ is the heaviest closed walk of length $k$ through $i$, and
# every elementary cycle has at most $n$ edges. $\lambda$ is the max-plus eigenvalue of
# $A$: there is a vector $v$ with $A \otimes v = \lambda \otimes v$. The growth is
# eventually *periodic*: $A^{\otimes (k + c)} = (c\lambda) \otimes A^{\otimes k}$ for all
# large $k$, with some period $c$ (the cyclicity).

# %%
n_nodes = G.shape[0]
lam = max(np.max(np.diag(mp.MAX_PLUS.power(G, k))) / k for k in range(1, n_nodes + 1))
ks = np.arange(1, 31)
growth = np.array([mp.MAX_PLUS.power(G, int(k)).max() for k in ks])
print(f"largest cycle mean λ = {lam:g}")

# eventually periodic growth: G^⊗(k+c) = (cλ) ⊗ G^⊗k for some period c and all large k
tail = slice(len(ks) - 10, len(ks))
periods = [c for c in range(1, 16)
           if np.allclose(growth[tail.start - c:tail.stop - c] + c * lam, growth[tail])]
assert periods, "the growth rate should be the largest cycle mean"
c = periods[0]
print(f"for k = {ks[tail.start]}..{ks[-1]}: max (G^⊗k) = max (G^⊗(k-{c})) + {c}λ")

fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(ks, growth, "o", ms=4, label=r"$\max_{ij}\,(G^{\otimes k})_{ij}$")
ax.plot(ks, lam * ks + (growth - lam * ks).max(), "--", color="C3",
        label=rf"slope $\lambda = {lam:.3f}$, the largest cycle mean")
ax.set_xlabel("power $k$")
ax.set_ylabel("heaviest $k$-edge walk")
ax.legend()
plt.show()

# %% [markdown]
# ## Tropical polynomials
#
# A max-plus polynomial in one variable, with coefficients $c_i$ and exponents $a_i$, is
#
# $$
# p(x) = \bigoplus_{i} c_i \otimes x^{\otimes a_i} = \max_i \,(c_i + a_i x),
# $$ (eq-tropical-polynomial)
#
# since $x^{\otimes a} = a x$. (Max-plus and min-plus algebra are also called *tropical*,
# in honour of the Brazilian mathematician Imre Simon.) By {eq}`eq-tropical-polynomial`,
# $p$ is a maximum of affine functions: **convex and piecewise linear**. Each linear piece
# belongs to the term that is selected there, and the kinks, where two terms tie, play
# the role of roots. A term can be *redundant*: selected nowhere. The last term below
# lies under the others everywhere.

# %%
coefficients = [2.0, 1.0, -1.0, -5.0, -3.0]
exponents = [0.0, 1.0, 2.0, 3.0, 1.5]
x = np.linspace(-3, 6, 901)
p, selected = mp.tropical_polynomial(coefficients, exponents, x)

terms = np.asarray(coefficients)[:, None] + np.outer(exponents, x)
assert np.array_equal(p, terms.max(axis=0))
assert np.array_equal(selected, terms.argmax(axis=0))
assert np.all(np.diff(p, 2) >= -1e-9), "a tropical polynomial is convex"
changes = np.flatnonzero(np.diff(selected)) + 1  # first grid point of each new piece
print("selected terms, left to right:", selected[np.r_[0, changes]].tolist())
print("kinks near x =", x[changes].round(2).tolist())
print("never selected:", sorted(set(range(len(coefficients))) - set(selected.tolist())))

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6.4, 4))
for t, (c_t, a_t) in enumerate(zip(coefficients, exponents, strict=True)):
    ax.plot(x, c_t + a_t * x, ":", color=f"C{t}", lw=1, label=f"${c_t:g} + {a_t:g}x$")
for t in np.unique(selected):
    ax.plot(np.where(selected == t, x, np.nan), p, color=f"C{t}", lw=3.5)
ax.set_ylim(p.min() - 2, p.max() + 1)
ax.set_xlabel("$x$")
ax.set_ylabel("$p(x)$")
ax.set_title("a tropical polynomial, coloured by the selected term")
ax.legend(fontsize=9, loc="upper left")
plt.show()

# %% [markdown]
# A max-plus neuron $y = \max_j (w_j + x_j)$ is a tropical polynomial in several variables
# (exponents are unit vectors), and a network of them composes such functions. Networks
# with ReLU activations compute *differences* of tropical polynomials (Zhang, Naitzat &
# Lim, *Tropical Geometry of Deep Neural Networks*, 2018); the selected term is the
# max-plus counterpart of a ReLU's "on/off" pattern, but it keeps **one** input instead of
# a weighted sum of many.
#
# (residuation)=
# ## Residuation: the greatest subsolution
#
# Without subtraction, $A \otimes x = b$ cannot be solved by elimination. But the
# inequality always has a largest solution. $A \otimes x \le b$ means
# $A_{ij} + x_j \le b_i$ for all $i, j$, that is $x_j \le b_i - A_{ij}$ for all $i$, so
#
# $$
# A \otimes x \le b \iff x \le A \backslash b, \qquad
# (A \backslash b)_j = \min_i \,(b_i - A_{ij}),
# $$ (eq-residual)
#
# with $b_i - \varepsilon = +\infty$ (a missing entry constrains nothing). The **residual**
# $A \backslash b$ is the greatest subsolution, and the equation $A \otimes x = b$ has a
# solution exactly when $A \otimes (A \backslash b) = b$: if any $x$ solves it, then
# $x \le A \backslash b$ and $b = A \otimes x \le A \otimes (A \backslash b) \le b$.
# Formula {eq}`eq-residual` is a *min-plus* product, $A \backslash b = (-A^\top) \otimes' b$,
# the mirror of the previous section at work.

# %%
A_res = np.array([[0.0, 2.0, eps],
                  [1.0, 0.0, 3.0],
                  [-1.0, 1.0, 0.0],
                  [2.0, -2.0, 1.0]])
x_true = np.array([0.0, -3.0, 1.0])
b_ok = mp.maxplus_matmul(A_res, x_true[:, None])[:, 0]  # solvable by construction
x_hat = mp.residual(A_res, b_ok)
print("A =\n", A_res)
print("x_true =", x_true, "  b = A ⊗ x_true =", b_ok, "  A \\ b =", x_hat)

# it solves the equation, and it is the greatest solution (here strictly above x_true)
assert np.array_equal(mp.maxplus_matmul(A_res, x_hat[:, None])[:, 0], b_ok)
assert np.all(x_true <= x_hat) and np.any(x_true < x_hat)
assert np.array_equal(x_hat, mp.minplus_matmul(-A_res.T, b_ok[:, None])[:, 0])
print("A ⊗ (A \\ b) = b and A \\ b ≥ x_true: the equation has several solutions")

# %% [markdown]
# When $b$ is not reachable, the residual is still the best under-approximation: the
# largest $A \otimes x$ that stays below $b$. With $A$ made of zeros, $A \otimes x$ has
# equal entries, so $b = (0, 1)$ is out of reach:

# %%
A_flat = np.zeros((2, 2))
b_bad = np.array([0.0, 1.0])
x_bad = mp.residual(A_flat, b_bad)
reached = mp.maxplus_matmul(A_flat, x_bad[:, None])[:, 0]
print("A \\ b =", x_bad, "  A ⊗ (A \\ b) =", reached, " vs b =", b_bad)
assert np.all(reached <= b_bad) and not np.array_equal(reached, b_bad)

# check the equivalence (eq-residual) on random points: A ⊗ x ≤ b exactly when x ≤ A \ b
xs = rng.uniform(-4, 4, size=(500, 3))
below = np.all(mp.maxplus_matmul(A_res, xs.T) <= b_ok[:, None], axis=0)
assert np.array_equal(below, np.all(xs <= x_hat, axis=1))
print(f"{below.sum()} of 500 random x satisfy A ⊗ x ≤ b: those with x ≤ A \\ b")

# %% [markdown]
# ## Summary
#
# - Max-plus algebra replaces $(+, \times)$ by $(\max, +)$: zero $\varepsilon = -\infty$,
#   unit $e = 0$, idempotent addition and no subtraction. Min-plus is its mirror under
#   negation.
# - The matrix product {eq}`eq-product` selects one index per entry, the lowest on ties;
#   the entry depends to first order on the selected terms only, so its derivative with
#   respect to a factor is one-hot. One tie-breaking rule everywhere is what makes
#   sparse and dense subgradient steps comparable iterate by iterate.
# - Matrix powers are longest walks {eq}`eq-paths`; the selected indices recover the
#   walks; the growth rate is the largest cycle mean {eq}`eq-cycle-mean`.
# - Tropical polynomials {eq}`eq-tropical-polynomial` are convex piecewise-linear
#   functions whose pieces are the selected terms.
# - $A \otimes x = b$ is solved, when it can be, by the residual {eq}`eq-residual`, the
#   greatest subsolution.
#
# ## Try this
#
# 1. Check numerically that $\otimes$ distributes over $\oplus$ for matrices:
#    $A \otimes (B \oplus C) = (A \otimes B) \oplus (A \otimes C)$, with
#    `mp.oplus` for the elementwise maximum of two matrices.
# 2. Reverse the columns of `A` and the rows of `B` in the tied example. The product does
#    not change; which index is selected now, and which original $k$ does it point to?
# 3. Add the edge $4 \to 0$ with weight $2$ to the graph. Which cycle now has the largest
#    mean, and does the slope of the growth plot follow {eq}`eq-cycle-mean`?
# 4. The min-plus mirror of {eq}`eq-residual`: show that the *least* $x$ with
#    $A \otimes' x \ge b$ is $x_j = \max_i (b_i - A_{ij})$, that it equals
#    `-mp.residual(-A, -b)`, and test it with `mp.minplus_matmul` as above.
# 5. Show that a tropical polynomial with $m$ terms has at most $m - 1$ kinks, and compute
#    them exactly from the coefficients (two consecutive selected terms $s, t$ meet at
#    $x = (c_s - c_t) / (a_t - a_s)$). Compare with the kinks found on the grid.
