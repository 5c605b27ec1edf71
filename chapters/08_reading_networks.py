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
# # Reading a trained max-plus network
#
# ## Overview
#
# Every score of a max-plus network runs along one path: class $k$ keeps one min-plus
# unit, which keeps one linear unit (chapter 2). The previous chapters used this to make
# training cheap. This chapter uses it to **read** a trained network. On MNIST the linear
# units are images, *templates* that a digit is matched against, and the two tropical
# layers combine the matches by logic: a min-plus unit is an "AND" of template tests, a
# class score an "OR" of min-plus units. Because every selection is a single index, we
# can count exactly which units each class uses, look at them, follow the path that
# decides a prediction, and remove the units that no training sample uses without
# changing a single training prediction.
#
# We train an LMM 784-64-32-10 on MNIST-5k, then:
#
# - write the LMM as a max over classes of min over templates of affine matches;
# - count how often each class selects each min-plus unit ($\lambda$) and each min-plus
#   unit each linear unit ($\mu$), and watch the selections concentrate during training;
# - show the templates on the paths of each class, and the path behind a few test
#   predictions;
# - prune the units that no training sample selects and measure what changes;
# - read the computational tree of a misclassified test digit.
#
# We use:
#
# - `mp.load_mnist5k`, `mp.train_test_split`, `maxplus.estimator.FeatureScaler`;
# - `mp.LMM`, `mp.fit(..., callback=...)`, `model.forward(X)`, `model.tree(x)`;
# - `maxplus.pruning.reached_units` and `maxplus.pruning.prune`;
# - `maxplus.plotting`: `selection_paths`, `draw_tree`, `show_image`.

# %%
import time

import matplotlib.pyplot as plt
import numba
import numpy as np
from matplotlib.colors import LogNorm

import maxplus as mp
from maxplus.book import quick_mode, use_book_style
from maxplus.estimator import FeatureScaler
from maxplus.losses import losses
from maxplus.plotting import draw_tree, selection_paths, show_image
from maxplus.pruning import prune, reached_units

use_book_style()
QUICK = quick_mode()
rng = np.random.default_rng(0)
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## A max of mins of template matches
#
# Recall the LMM of chapter 2, for one input $x$ with $d$ features: $h_1$ linear units,
# $h_2$ min-plus units and $K$ class scores,
#
# $$
# z_m = A_m \cdot x + b_m, \qquad
# u_l = \min_m \,(B_{lm} + z_m), \qquad
# s_k = \max_l \,(C_{kl} + u_l),
# $$ (eq-lmm-read)
#
# with selections $\mu_l$ (the linear unit that unit $l$ keeps) and $\lambda_k$ (the
# min-plus unit that class $k$ keeps), lowest index on ties. On images, row $A_m$ has
# one weight per pixel: it is a **template**, and
#
# $$
# z_m = \sum_{p=1}^{d} A_{mp}\, x_p + b_m
# $$ (eq-match)
#
# is an affine **match** of the image against it, large when the image has ink where
# the template is positive and none where it is negative. The templates are signed, so
# one match can say "ink here *and* blank there".
#
# Now read the two tropical layers as logic. A minimum is at least $\tau$ exactly when
# every term is, and a maximum is at least $t$ exactly when some term is:
#
# $$
# u_l \ge \tau \iff z_m \ge \tau - B_{lm} \ \text{ for every } m, \qquad
# s_k \ge t \iff u_l \ge t - C_{kl} \ \text{ for some } l .
# $$ (eq-and-or)
#
# A min-plus unit is an **AND** of template tests, each with its own threshold shifted
# by $B_{lm}$; a large $B_{lm}$ makes test $m$ pass on every input of interest, which
# removes template $m$ from the conjunction. A class score is an **OR** of its min-plus
# units, shifted by $C_{kl}$. Put together, every level set of a score is a disjunction
# of conjunctions of affine tests:
#
# $$
# s_k(x) \ge t \iff \bigvee_{l=1}^{h_2} \ \bigwedge_{m=1}^{h_1}
# \big[\, A_m \cdot x + b_m \ge t - C_{kl} - B_{lm} \,\big],
# $$ (eq-dnf)
#
# a union of $h_2$ polyhedra, each the intersection of $h_1$ half-spaces. The values
# carry more than a yes/no: $u_l$ is the **weakest** of its shifted matches (a
# conjunction is as strong as its weakest test) and $s_k$ the **strongest** of its
# alternatives. The selections name them: $\mu_l$ is the test that unit $l$ barely
# passes, $\lambda_k$ the alternative that carries class $k$. The prediction
# $\arg\max_k s_k$ is the class whose best conjunction is strongest.
#
# {eq}`eq-dnf` is not an approximation: written with the sums in the order the network
# adds them, it holds exactly in floating point, since $\min_m v_m \ge \tau$ and
# "every $v_m \ge \tau$" compare the same numbers. We check it on a random LMM first,
# with thresholds drawn at random around the scores.

# %%
def dnf_holds(model, X, thresholds):
    """Check eq. (eq-dnf) written with the network's own sums C + (B + z)."""
    fwd = model.forward(X)
    Z, S = fwd.values[0], fwd.scores
    shifted = model.B[None, :, :] + Z[:, None, :]        # (N, h2, h1): B_lm + z_m
    terms = model.C[None, :, :, None] + shifted[:, None]  # (N, K, h2, h1)
    ok = True
    for t in thresholds:
        by_logic = np.any(np.all(terms >= t, axis=3), axis=2)  # OR over l of AND over m
        ok &= np.array_equal(by_logic, S >= t)
    return ok


toy = mp.LMM(784, 16, 8, 10, seed=1)
X_mnist, y_mnist = mp.load_mnist5k()
X_toy = X_mnist[:200].astype(np.float32)
S_toy = toy.scores(X_toy)
thresholds = rng.uniform(S_toy.min(), S_toy.max(), size=25).astype(np.float32)
assert dnf_holds(toy, X_toy, thresholds)
print(f"eq. (eq-dnf) holds: {len(X_toy)} digits, {toy.n_classes} classes, "
      f"{len(thresholds)} thresholds, LMM 784-16-8-10")

# %% [markdown]
# ## Training an LMM on MNIST-5k
#
# We hold out a stratified fifth of the 5,000 images and scale the features the way the
# reproduction experiments and `MaxPlusClassifier` do (`FeatureScaler`: standardised
# with the training statistics, then divided by their RMS norm, so that a step moves the
# linear and the tropical weights on the same scale). The templates therefore live in
# the scaled pixel space: a blank pixel has a *negative* scaled value, so a negative
# template weight there raises the match.
#
# The network is an LMM 784-64-32-10, the widths of the reproduction's MNIST
# experiments. To get a network worth reading within a minute or two, we minimise the
# **average** cross-entropy ($q = N$ in chapter 4's top-$q$ family) with the package's
# subgradient method: the worst-sample objective needs far more steps on MNIST than this
# chapter can spend, and a class-block initial network to avoid collapsing (chapter 6
# and `maxplus.experiments.class_block_lmm` explain why).
# Nothing below depends on how the network was trained. A callback records, every few
# steps, the held-out accuracy and how many units the training samples still reach.

# %%
# a small network: a parallel kernel's thread hand-offs cost more than its work here
numba.set_num_threads(1)

X_train_raw, X_test_raw, y_train, y_test = mp.train_test_split(X_mnist, y_mnist,
                                                               test_size=0.2, seed=0)
scaler = FeatureScaler().fit(X_train_raw)
X_train = scaler.transform(X_train_raw).astype(np.float32)
X_test = scaler.transform(X_test_raw).astype(np.float32)
d, h1, h2, K = 784, 64, 32, 10
print(f"{len(y_train)} training and {len(y_test)} test images")

STEPS = 120 if QUICK else 600
EVERY = 20 if QUICK else 50
initial = mp.LMM(d, h1, h2, K, seed=0)
model = initial.copy()


def record(step, net):
    reached = reached_units(net, X_train)
    return {"step": step, "linear": len(reached[0]), "minplus": len(reached[1]),
            "test": float(np.mean(net.predict(X_test) == y_test))}


curve = [record(0, model)]


def callback(t, objective, net):
    if (t + 1) % EVERY == 0:
        curve.append(record(t + 1, net))


start = time.perf_counter()
result = mp.fit(model, X_train, y_train, objective="mean", method="dense", steps=STEPS,
                step="constant", lr=1.0, callback=callback)
seconds = time.perf_counter() - start
net = result.best
train_acc = float(np.mean(net.predict(X_train) == y_train))
test_acc = float(np.mean(net.predict(X_test) == y_test))
print(f"{STEPS} steps in {seconds:.0f} s: mean loss {result.history['objective'][0]:.3f} → "
      f"{result.best_objective:.3f} (best iterate, step {result.best_step})")
print(f"accuracy: training {train_acc:.1%}, held-out {test_acc:.1%}")
assert test_acc > (0.7 if QUICK else 0.8)

# %% tags=["hide-input"]
steps_rec = [c["step"] for c in curve]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].plot(steps_rec, [100 * c["test"] for c in curve], "o-")
axes[0].set_xlabel("step")
axes[0].set_ylabel("held-out accuracy (%)")
axes[0].set_title("learning")
axes[1].plot(steps_rec, [c["linear"] for c in curve], "o-", label=f"linear units (of {h1})")
axes[1].plot(steps_rec, [c["minplus"] for c in curve], "s-", label=f"min-plus units (of {h2})")
axes[1].set_xlabel("step")
axes[1].set_ylabel("units reached by the training set")
axes[1].set_ylim(0, h1 + 4)
axes[1].set_title("selections concentrate")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The right panel counts the units that some training sample's computational tree can
# reach (`reached_units`, defined below). In the random initial network almost every
# linear unit is the weakest test of some min-plus unit for some image; training
# concentrates the selections on far fewer linear units, and then the count settles.
# The min-plus layer goes the other way: training brings more of its units into use,
# each selected by some class for some image.
#
# ## Which units win
#
# One forward pass over the training set gives every selection. Two tables summarise
# them: $\Lambda_{kl}$, the share of training images for which class $k$'s score selects
# min-plus unit $l$, and $M_{lm}$, the share for which min-plus unit $l$ selects linear
# unit $m$. Each row of either table sums to one.

# %%
fwd = net.forward(X_train)
mu, lam = fwd.selections[1], fwd.selections[2]
N = len(y_train)
Lambda = np.stack([np.bincount(lam[:, k], minlength=h2) for k in range(K)]) / N
M = np.stack([np.bincount(mu[:, l_], minlength=h1) for l_ in range(h2)]) / N
assert np.allclose(Lambda.sum(axis=1), 1) and np.allclose(M.sum(axis=1), 1)

main_unit = Lambda.argmax(axis=1)              # each class's most selected min-plus unit
for k in range(K):
    print(f"class {k}: min-plus unit {main_unit[k]:2d} for {Lambda[k, main_unit[k]]:5.1%} "
          f"of the training images; {np.count_nonzero(Lambda[k])} units in use")
print(f"distinct main units: {len(set(main_unit.tolist()))} for {K} classes")
assert len(set(main_unit.tolist())) == K and np.all(Lambda.max(axis=1) > 0.5)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.6]})
norm = LogNorm(vmin=1 / N, vmax=1)
shown = axes[0].imshow(np.ma.masked_equal(Lambda, 0), cmap="viridis", norm=norm,
                       aspect="auto", interpolation="nearest")
axes[0].set_xlabel("min-plus unit $l$")
axes[0].set_ylabel("class $k$")
axes[0].set_yticks(range(K))
axes[0].set_title(r"$\Lambda_{kl}$: class $k$ selects unit $l$")
axes[1].imshow(np.ma.masked_equal(M, 0), cmap="viridis", norm=norm, aspect="auto",
               interpolation="nearest")
axes[1].set_xlabel("linear unit $m$")
axes[1].set_ylabel("min-plus unit $l$")
axes[1].set_title(r"$M_{lm}$: unit $l$ selects linear unit $m$")
for ax in axes:
    ax.grid(False)
fig.colorbar(shown, ax=axes, label="share of the training images (white: never)")
plt.show()

# %% [markdown]
# Each class leans on one min-plus unit, its own: the main units of the ten classes are
# ten different units, and the other units of a row are selected only now and then. A
# min-plus unit in turn selects a few linear units, and many columns of $M$ are empty
# (white): those linear units are the weakest test of no unit for any training image.
#
# ### Units that no sample reaches
#
# Walk the selections back from the classes over all training images: the min-plus
# units that some class selects for some image, then the linear units that those units
# select for some image. This is `reached_units`; everything outside it never takes
# part in a training score, and training never moves it again (subgradients flow only
# along the trees, chapter 3).

# %%
reached = reached_units(net, X_train)
R_linear, R_minplus = reached[0], reached[1]
# the same sets, read off the selection tables above
assert np.array_equal(R_minplus, np.flatnonzero(Lambda.sum(axis=0)))
assert np.array_equal(R_linear, np.flatnonzero(M[R_minplus].sum(axis=0)))
print(f"reached by the training set: {len(R_linear)} of {h1} linear units, "
      f"{len(R_minplus)} of {h2} min-plus units")

winning = selection_paths(fwd, fwd.scores.argmax(axis=1))   # [class, λ, μ] of the winner
print(f"on a winning path: {len(np.unique(winning[:, 2]))} linear units, "
      f"{len(np.unique(winning[:, 1]))} min-plus units")
through_main = np.mean(winning[:, 1] == main_unit[winning[:, 0]])
print(f"winning paths through the predicted class's main unit: {through_main:.1%}")
assert through_main > 0.9
assert set(np.unique(winning[:, 2])) <= set(R_linear.tolist())
assert len(R_linear) <= h1 // 2 < curve[0]["linear"]
assert len(R_minplus) > curve[0]["minplus"]

# %% [markdown]
# The winning paths are narrower still: the predicted class of an image almost always
# goes through its main unit, and the remaining reached units serve the losing
# scores. Losing scores matter too (the cross-entropy compares all of them), which is
# why pruning below keeps every reached unit, not only those on winning paths.
#
# ## Templates
#
# The linear units at the end of the winning paths are the templates the network
# actually matches digits against. For each class we take the training images that it
# classifies correctly, follow the winning path of each, and show the three most
# frequent linear units with their share.

# %%
correct = np.flatnonzero(winning[:, 0] == y_train)
top_templates = {}
for k in range(K):
    units, counts = np.unique(winning[correct[y_train[correct] == k], 2], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:3]
    top_templates[k] = [(int(units[i]), counts[i] / counts.sum()) for i in order]
    print(f"class {k}: " + ", ".join(f"z_{m} {share:.0%}" for m, share in top_templates[k]))
first_choice = np.array([top_templates[k][0][0] for k in range(K)])
in_top3 = np.unique([m for k in range(K) for m, _ in top_templates[k]], return_counts=True)
print(f"distinct first templates: {len(set(first_choice))} for {K} classes")
print(f"templates in the top three of several classes: {in_top3[0][in_top3[1] > 1].tolist()}")
assert len(set(first_choice)) == K and np.any(in_top3[1] > 1)

# %% tags=["hide-input"]
limit = np.abs(net.A[np.unique(winning[:, 2])]).max()
fig, axes = plt.subplots(3, K, figsize=(1.25 * K, 4.6))
for k in range(K):
    for rank in range(3):
        ax = axes[rank, k]
        if rank < len(top_templates[k]):
            m, share = top_templates[k][rank]
            show_image(ax, net.A[m], limit=limit, title=f"$z_{{{m}}}$ {share:.0%}", fontsize=8)
        else:
            ax.axis("off")
    axes[0, k].set_title(f"class {k}\n" + axes[0, k].get_title(), fontsize=8)
fig.suptitle("templates $A_m$ on the winning paths of each class (red: ink raises the "
             "match, blue: ink lowers it)", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# The first template of each class is its own, and most are recognisably the digit:
# red strokes where the class puts ink, blue where it does not, often blue where a
# look-alike class would draw (the centre of the 0). The less frequent templates of a
# class are the tests that bind on its unusual images, and they are shared: the first
# template of one class is a second or third choice of others. A min-plus unit's
# conjunction holds several classes' templates, and whichever match is weakest on an
# image is the one that decides.
#
# ## The path behind a prediction
#
# For a test digit the prediction is decided by one path: the winning class $k$, its
# selected unit $l = \lambda_k$, and that unit's weakest test $m = \mu_l$, with
#
# $$
# s_k = C_{kl} + B_{lm} + \sum_{p} A_{mp}\, x_p + b_m .
# $$ (eq-decomposition)
#
# The pixel-wise products $A_{mp} x_p$ show where the winning score comes from. Here
# are four correctly classified test digits of different classes: the digit, the
# template at the end of its winning path, and the products.

# %%
test_fwd = net.forward(X_test)
test_pred = test_fwd.scores.argmax(axis=1)
test_paths = selection_paths(test_fwd, test_pred)
shown_digits = []
for n in np.flatnonzero(test_pred == y_test):
    if y_test[n] not in {y_test[i] for i in shown_digits}:
        shown_digits.append(int(n))
    if len(shown_digits) == 4:
        break

Z_test = test_fwd.values[0]
for n in shown_digits:
    k, l_, m = test_paths[n]
    parts = net.C[k, l_], net.B[l_, m], Z_test[n, m]
    assert test_fwd.scores[n, k] == parts[0] + (parts[1] + parts[2])   # eq-decomposition
    assert np.isclose(parts[2], net.A[m] @ X_test[n] + net.b[m], rtol=1e-5, atol=1e-5)
    print(f"digit {n} (label {y_test[n]}): {k} → u_{l_} → z_{m}; s = C {parts[0]:+.3f} "
          f"+ B {parts[1]:+.3f} + z {parts[2]:+.3f} = {test_fwd.scores[n, k]:+.3f}")

# %% tags=["hide-input"]
fig, axes = plt.subplots(len(shown_digits), 3, figsize=(6.2, 2.1 * len(shown_digits)))
for row, n in zip(axes, shown_digits, strict=True):
    k, l_, m = test_paths[n]
    show_image(row[0], X_test_raw[n], signed=False, title=f"test digit {n}: label {y_test[n]}")
    show_image(row[1], net.A[m], title=f"template $A_{{{m}}}$ ({k} → $u_{{{l_}}}$ → "
               f"$z_{{{m}}}$)")
    show_image(row[2], net.A[m] * X_test[n], title=f"$A_{{{m},p}}\\,x_p$: sum "
               f"{net.A[m] @ X_test[n]:+.2f}")
plt.tight_layout()
plt.show()

# %% [markdown]
# The products are positive (red) along the strokes that the template expects, and
# also on blank pixels where the template is blue: there the scaled pixel is negative,
# and "no ink here" counts as evidence. Isolated bright pixels are pixels that few
# training digits ink: their standard deviation is small, so ink there gets a large
# scaled value. The template at the end of the path is the *weakest* test of the
# conjunction, usually the class's own first template but not always: for some digits
# another class's template binds, with a low match, a "does not look like that digit"
# test. The next cell measures both: how large the largest scaled pixel of an image
# gets, and how often the winning path ends at the predicted class's first template.

# %%
brightest = np.quantile(X_train.max(axis=1), [0.5, 0.99])
print(f"largest scaled pixel per training image: median {brightest[0]:.2f}, "
      f"99th percentile {brightest[1]:.2f}")
print(f"median |x_p| of the non-zero scaled pixels: {np.median(np.abs(X_train[X_train != 0])):.3f}")
own = first_choice[test_pred] == test_paths[:, 2]
right = test_pred == y_test
print(f"path ends at the class's first template: {own[right].mean():.0%} of the correct, "
      f"{own[~right].mean():.0%} of the wrong predictions")

# %% [markdown]
#
# The AND and the OR of {eq}`eq-and-or` can be watched on one digit. On the left, the
# $h_1$ shifted matches $B_{lm} + z_m$ of the winning unit $l$: their minimum, the
# weakest test, is $u_l$. On the right, the $h_2$ alternatives $C_{kl} + u_l$ of the
# winning class: their maximum is the score.

# %%
n = shown_digits[0]
k, l_, m = test_paths[n]
tests = net.B[l_] + Z_test[n]                      # B_lm + z_m for every m
alternatives = net.C[k] + test_fwd.values[1][n]    # C_kl + u_l for every l
assert tests.min() == test_fwd.values[1][n, l_] and tests.argmin() == m
assert alternatives.max() == test_fwd.scores[n, k] and alternatives.argmax() == l_
gap_and = np.partition(tests, 1)[1] - tests.min()
gap_or = alternatives.max() - np.partition(alternatives, -2)[-2]
print(f"digit {n}: AND picks z_{m}, {gap_and:.3f} below the runner-up; "
      f"OR picks u_{l_}, {gap_or:.3f} above it")

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
colours = np.where(np.arange(h1) == m, "C3", "C0")
axes[0].bar(np.arange(h1), tests, color=colours)
axes[0].set_xlabel("linear unit $m$")
axes[0].set_title(f"AND: $u_{{{l_}}} = \\min_m (B_{{{l_} m}} + z_m)$ selects $m = {m}$")
colours = np.where(np.arange(h2) == l_, "C3", "C0")
axes[1].bar(np.arange(h2), alternatives, color=colours)
axes[1].set_xlabel("min-plus unit $l$")
axes[1].set_title(f"OR: $s_{{{k}}} = \\max_l (C_{{{k} l}} + u_l)$ selects $l = {l_}$")
for ax in axes:
    ax.axhline(0, color="k", lw=0.6)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Pruning the units nobody selects
#
# A unit outside `reached_units` takes part in no training score, so removing it
# changes no training score: every kept unit still holds the candidate it selected, and
# a removed candidate that tied with the selected one had a higher index and lost the
# tie anyway (`maxplus.pruning`). `prune` keeps the reached rows and columns of each
# layer, in order, and returns a smaller LMM.

# %%
pruned = prune(net, X_train)
print(f"before: {net.architecture}, {net.n_parameters:,} parameters")
print(f"after:  {pruned.architecture}, {pruned.n_parameters:,} parameters "
      f"({pruned.n_parameters / net.n_parameters:.0%})")
assert pruned.n_parameters == (len(R_linear) * (d + 1) + len(R_minplus) * len(R_linear)
                               + K * len(R_minplus))
assert np.array_equal(pruned.scores(X_train), net.scores(X_train))
assert np.array_equal(pruned.predict(X_train), net.predict(X_train))
print(f"training set: all {N} scores identical bit for bit, so are the predictions")

# %% [markdown]
# On held-out data the guarantee is gone: a test digit may select a unit that no
# training digit selects. For such a digit, a removed min-plus unit can only *lower* the
# score of a class that selected it (its maximum runs over fewer alternatives), and a
# removed linear unit can only *raise* a kept min-plus unit that selected it (its
# minimum runs over fewer tests), which may then overtake a class's selected unit. A
# digit for which every class and every kept min-plus unit selects a kept unit gets
# exactly the same scores. We count the digits of each kind and the predictions that
# change.

# %%
test_mu, test_lam = test_fwd.selections[1], test_fwd.selections[2]
# a class selects a removed min-plus unit, or a kept min-plus unit a removed linear unit
touches = (np.any(~np.isin(test_lam, R_minplus), axis=1)
           | np.any(~np.isin(test_mu[:, R_minplus], R_linear), axis=1))
pruned_test = pruned.scores(X_test)
same_scores = np.all(pruned_test == test_fwd.scores, axis=1)
changed = pruned_test.argmax(axis=1) != test_pred
assert np.all(same_scores[~touches]) and not np.any(changed & ~touches)
acc_before = float(np.mean(test_pred == y_test))
acc_after = float(np.mean(pruned_test.argmax(axis=1) == y_test))
print(f"test digits that select a removed unit: {touches.sum()} of {len(y_test)}")
print(f"  of these, scores changed: {np.sum(~same_scores)}, predictions changed: "
      f"{changed.sum()}")
print(f"test accuracy: {acc_before:.2%} before pruning, {acc_after:.2%} after")
assert touches.mean() < 0.05

# %% [markdown]
# Few test digits, if any, select a removed unit: a unit that no training image
# selects is rarely selected by a new image of the same distribution. The held-out
# accuracy can move only through those digits, in either direction, and a changed
# score changes a prediction only if it crosses the winning one.
#
# ## The tree of a misclassified digit
#
# Finally a mistake. Among the misclassified test digits we take a typical one: the
# median of the margins by which the true class lost. Its computational tree (chapter 3)
# shows all ten paths; the node weights are the gradient weights
# $\delta_k = \mathrm{softmax}(s)_k - [k = y]$, with $y$ the true label, summed down the
# tree ($\gamma_l$, then $\zeta_m$): the directions in which one subgradient step on this
# digit's loss would push each unit.

# %%
wrong = np.flatnonzero(test_pred != y_test)
margins = test_fwd.scores[wrong, test_pred[wrong]] - test_fwd.scores[wrong, y_test[wrong]]
miss = int(wrong[np.argsort(margins, kind="stable")[len(wrong) // 2]])
true_k, pred_k = int(y_test[miss]), int(test_pred[miss])
tree = net.tree(X_test[miss])
s = tree.scores.astype(np.float64)
delta = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
delta[true_k] -= 1.0
loss_miss = losses(s[None, :], np.array([true_k]), "cross_entropy")[0]
margin_miss = s[pred_k] - s[true_k]
print(f"{len(wrong)} misclassified test digits; the median margin is digit {miss}:")
print(f"  label {true_k}, predicted {pred_k}, margin {margin_miss:.3g}, loss {loss_miss:.3f}")
for cls in (pred_k, true_k):
    print(f"  class {cls}: path {tree.paths[cls]}, score {s[cls]:+.3f}")
assert tree.paths[pred_k] == test_paths[miss].tolist()

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(11, 5.2))
draw_tree(ax, tree, delta,
          level_names=["classes $k$", "min-plus units $l$", "linear units $m$"])
ax.set_title(f"computational tree of test digit {miss}: label {true_k}, predicted {pred_k}")
plt.show()

# %% tags=["hide-input"]
m_pred, m_true = tree.paths[pred_k][-1], tree.paths[true_k][-1]
fig, axes = plt.subplots(1, 5, figsize=(11, 2.6))
show_image(axes[0], X_test_raw[miss], signed=False, title=f"digit {miss}: label {true_k}")
show_image(axes[1], net.A[m_pred], title=f"predicted {pred_k}: $A_{{{m_pred}}}$")
show_image(axes[2], net.A[m_pred] * X_test[miss], title=f"$A_{{{m_pred},p}} x_p$")
show_image(axes[3], net.A[m_true], title=f"true {true_k}: $A_{{{m_true}}}$")
show_image(axes[4], net.A[m_true] * X_test[miss], title=f"$A_{{{m_true},p}} x_p$")
plt.tight_layout()
plt.show()

# %% [markdown]
# The tree reads as an explanation. Each score is one template match plus two weights:
# the printed paths name the template that decided the winning class and the one that
# held down the true class (the weakest test of its best conjunction), and the products
# show the strokes that each template liked and disliked. The colours of the tree say what a
# step on this digit would do: raise the units on the true class's path (blue, negative
# weight, so a step against the gradient lifts them) and lower those on the winning
# path (red), with every other parameter of the network untouched.
#
# ## Summary
#
# - An LMM is a max over classes of min over templates of affine matches
#   {eq}`eq-lmm-read`, {eq}`eq-match`: a min-plus unit is an AND of template tests and a
#   class score an OR of min-plus units, and every level set of a score is a disjunction
#   of conjunctions of half-spaces {eq}`eq-dnf`, exactly, in floating point too.
# - Trained on MNIST-5k, each class leans on one min-plus unit of its own, and the
#   selections concentrate during training on a fraction of the linear units; their
#   templates look like the digits, with signed weights for "ink here, none there".
# - A prediction is one path {eq}`eq-decomposition`; the pixel-wise products of the
#   template and the digit show where the winning score comes from.
# - Units that no training sample reaches can be pruned: the training scores stay
#   identical bit for bit, and a test digit can change only if its tree reached a removed
#   unit.
# - A misclassified digit's computational tree names the paths that won and lost and
#   the few parameters that a step on it would move.
#
# ## Try this
#
# 1. Prune with only the *winning* paths (the units of `winning` above) instead of
#    `reached_units`. Do the training predictions survive? Which of the two effects
#    described in the pruning section breaks them?
# 2. Train a network with the reproduction's MNIST setting (`objective="worst"`, the
#    diminishing step with `lr=1.0`, from `maxplus.experiments.class_block_lmm`) for as
#    many steps as you can afford, and compare the number of reached units and the
#    templates with those above.
# 3. Replace each class's main min-plus unit by one built from the three templates of
#    the figure (set its row of `B` to 0 on them and to a large value elsewhere, with
#    `mp.LMM.from_arrays`). How much accuracy does the hand-made network keep?
# 4. For the misclassified digit, take one subgradient step on its loss alone
#    (`mp.fit(net.copy(), X_test[[miss]], y_test[[miss]], objective="worst", steps=1)`)
#    and find the smallest `lr` that corrects it. How many training predictions change?
# 5. Use `tree.gradient(label)` to check that the node weights drawn in the tree are
#    the entries of the sparse subgradient, as chapter 3 does.
