"""Figure helpers for the book: grids over the plane, selection paths, drawn trees.

Nothing here is needed to train a network; the chapters use these helpers to keep
their cells short. Matplotlib is imported only by the drawing functions.
"""

from __future__ import annotations

import numpy as np

from .backend import to_numpy


def plane_grid(X, n=200, margin=0.5):  # noqa: N803
    """A regular ``n × n`` grid around the 2-D points ``X``.

    Returns ``(xx, yy, points)``: the two ``(n, n)`` coordinate arrays of
    :func:`numpy.meshgrid` and the ``(n², 2)`` grid points, row-major.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (N, 2), got {X.shape}")
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    return xx, yy, np.c_[xx.ravel(), yy.ravel()]


def selection_paths(forward, classes):
    """Units on the path of ``classes[n]`` for every sample ``n``.

    ``forward`` is a :class:`~maxplus.network.ForwardPass` of a network with ``L``
    tropical layers. Returns an int array ``(N, L + 1)``: column 0 the class, column
    ``i`` the unit of the ``i``-th layer from the top that the path runs through; the
    last column is the linear unit (for an LMM: ``[k, λ_k, μ_{λ_k}]``).
    """
    selections = [to_numpy(s) for s in forward.selections[1:]]
    classes = np.asarray(classes, dtype=np.int64)
    rows = np.arange(classes.shape[0])
    path = [classes]
    for sel in reversed(selections):
        path.append(sel[rows, path[-1]].astype(np.int64))
    return np.stack(path, axis=1)


def tree_weights(tree, delta):
    """Gradient weights on the nodes and edges of a computational tree.

    ``delta`` (K,) is ∂loss/∂scores of the sample. Level 0 holds the classes with
    weight ``δ_k``; level ``i + 1`` the units that level ``i`` selects, each weighing
    the sum of the weights that select it (``γ_l``, then ``ζ_m`` for an LMM). Returns
    ``(levels, edges)``: ``levels[i]`` a dict ``unit → weight``, ``edges[i]`` a dict
    ``(unit at level i, unit at level i + 1) → weight`` (the gradient entry of the
    weight that joins them).
    """
    delta = np.asarray(delta, dtype=float)
    paths = tree.paths
    depth = len(next(iter(paths.values())))
    levels = [{k: float(delta[k]) for k in sorted(paths)}]
    edges = []
    for i in range(depth - 1):
        pairs = sorted({(path[i], path[i + 1]) for path in paths.values()})
        edge = {pair: levels[i][pair[0]] for pair in pairs}
        below: dict = {}
        for (_, unit), weight in edge.items():
            below[unit] = below.get(unit, 0.0) + weight
        edges.append(edge)
        levels.append(dict(sorted(below.items())))
    return levels, edges


def draw_tree(
    ax, tree, delta, *, level_names=None, class_names=None, edge_labels=False, fontsize=9
):
    """Draw the computational tree of one sample, top (classes) to bottom (linear units).

    Each node shows its unit and its weight (``δ_k``, ``γ_l``, ``ζ_m`` for an LMM); an
    edge carries the weight of the node above it, which is the gradient entry of the
    tropical weight the edge stands for (colour and width show it; ``edge_labels``
    writes it too). Units below the top are ordered by the mean position of the units
    that select them, which keeps crossings few. Returns the ``(levels, edges)`` of
    :func:`tree_weights`.
    """
    import matplotlib.pyplot as plt

    levels, edges = tree_weights(tree, delta)
    depth = len(levels)
    if level_names is None:
        level_names = ["classes"] + [f"tropical layer {depth - 1 - i}" for i in range(1, depth - 1)]
        level_names += ["linear units"]
    symbols = ["δ", "γ", "ζ"] if depth == 3 else ["g"] * depth
    scale = max(abs(w) for level in levels for w in level.values()) or 1.0
    cmap = plt.get_cmap("coolwarm")
    width = max(len(level) for level in levels)
    position = {}
    order = list(levels[0])
    for i, level in enumerate(levels):
        if i > 0:
            parents: dict = {}
            for top, bottom in edges[i - 1]:
                parents.setdefault(bottom, []).append(position[i - 1, top][0])
            order = sorted(level, key=lambda unit: (np.mean(parents[unit]), unit))
        xs = np.linspace(0, width - 1, len(order)) if len(order) > 1 else [(width - 1) / 2]
        for unit, x in zip(order, xs, strict=True):
            position[i, unit] = (float(x), float(depth - 1 - i))
    for i, edge in enumerate(edges):
        for (top, bottom), weight in edge.items():
            (x0, y0), (x1, y1) = position[i, top], position[i + 1, bottom]
            ax.plot(
                [x0, x1],
                [y0, y1],
                color=cmap(0.5 + 0.5 * weight / scale),
                lw=1 + 4 * abs(weight) / scale,
                zorder=1,
            )
            if edge_labels:
                t = 0.3
                ax.text(
                    x0 + t * (x1 - x0),
                    y0 + t * (y1 - y0),
                    f"{weight:+.3f}",
                    ha="center",
                    va="center",
                    fontsize=fontsize - 2,
                    zorder=3,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85),
                )
    for i, level in enumerate(levels):
        for unit, weight in level.items():
            x, y = position[i, unit]
            name = class_names[unit] if (i == 0 and class_names is not None) else str(unit)
            ax.scatter(
                [x], [y], s=1500, color=cmap(0.5 + 0.5 * weight / scale), edgecolor="k", zorder=2
            )
            ax.text(
                x,
                y,
                f"{name}\n{symbols[i]}={weight:+.2f}",
                ha="center",
                va="center",
                fontsize=fontsize - 1,
                zorder=4,
            )
        ax.text(
            -0.7,
            depth - 1 - i,
            level_names[i],
            ha="right",
            va="center",
            fontsize=fontsize,
            style="italic",
        )
    ax.set_xlim(-3.0, width - 0.4)
    ax.set_ylim(-0.5, depth - 0.5)
    ax.axis("off")
    return levels, edges


def region_label_points(labels):
    """Where to write the name of each region of a 2-D label image.

    ``labels`` is an ``(n, n)`` integer image (for example the selected unit on a
    :func:`plane_grid`). Returns ``{label: (row, col)}``, for each label the pixel
    deepest inside its largest connected patch (farthest from any other label).
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D image, got shape {labels.shape}")
    points = {}
    for value in np.unique(labels):
        patches, count = ndimage.label(labels == value)
        sizes = np.bincount(patches.ravel())[1:]
        largest = patches == 1 + int(np.argmax(sizes))
        depth = ndimage.distance_transform_edt(np.pad(largest, 1))[1:-1, 1:-1]
        points[int(value)] = tuple(int(i) for i in np.unravel_index(np.argmax(depth), depth.shape))
    return points


def show_image(ax, values, shape=(28, 28), *, signed=True, title=None, fontsize=9, limit=None):
    """Show a vector as an image (an MNIST digit, a template row ``A[m]``) without axes.

    ``signed=True`` draws on a diverging map centred at 0 (red positive, blue negative,
    symmetric limits ``±limit``, default the largest ``|value|``), for weights and
    products; ``signed=False`` draws on ``gray_r`` (dark = large), for pixels. Returns
    the matplotlib image.
    """
    values = np.asarray(to_numpy(values), dtype=float)
    if values.size != int(np.prod(shape)):
        raise ValueError(
            f"values has {values.size} entries, shape {tuple(shape)} needs {int(np.prod(shape))}"
        )
    image = values.reshape(shape)
    if signed:
        bound = float(np.abs(image).max()) if limit is None else float(limit)
        bound = bound if bound > 0 else 1.0
        shown = ax.imshow(image, cmap="coolwarm", vmin=-bound, vmax=bound)
    else:
        shown = ax.imshow(image, cmap="gray_r")
    if title is not None:
        ax.set_title(title, fontsize=fontsize)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return shown


#: The axes of :func:`maxplus.experiments.step_cost_scaling` and their labels.
SCALING_AXES = {"N": "samples $N$", "h1": "linear units $h_1$", "K": "classes $K$"}


def step_cost_ratios(points):
    """Dense over sparse per measured point of :func:`~maxplus.experiments.step_cost_scaling`.

    Returns ``(flop_ratio, time_ratio, realised)``, arrays with one entry per point:
    ``dense_flops / sparse_flops``, ``dense_median / sparse_median`` (seconds) and
    their quotient ``time_ratio / flop_ratio``, the share of the FLOP saving that
    the measured time realises.
    """
    flop = np.array([p["dense_flops"] / p["sparse_flops"] for p in points], dtype=float)
    time = np.array([p["dense_median"] / p["sparse_median"] for p in points], dtype=float)
    return flop, time, time / flop


def plot_step_costs(series, axes=None):
    """Cost per step against N, h1 and K, one column per axis of ``series`` (the
    ``Outcome.series`` of :func:`~maxplus.experiments.step_cost_scaling`).

    Top row: median milliseconds per step of the sparse and the dense trainer,
    log-log. Bottom row: the dense/sparse ratios of counted FLOPs and of seconds
    (:func:`step_cost_ratios`), log-log. The log axes are labelled at 1, 2 and 5 times
    the powers of ten. ``axes`` is a ``(2, n_axes)`` array of matplotlib axes (made
    when None). Returns the figure and the axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    names = [name for name in SCALING_AXES if name in series]
    if not names:
        raise ValueError(f"series has none of the axes {list(SCALING_AXES)}: {list(series)}")
    if axes is None:
        _, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 6.4), squeeze=False)
    axes = np.asarray(axes)
    if axes.shape != (2, len(names)):
        raise ValueError(f"axes must have shape (2, {len(names)}), got {axes.shape}")
    for col, name in enumerate(names):
        points = series[name]
        xs = [p[name] for p in points]
        top, bottom = axes[0, col], axes[1, col]
        top.plot(xs, [1e3 * p["dense_median"] for p in points], "s-", color="C1", label="dense")
        top.plot(xs, [1e3 * p["sparse_median"] for p in points], "o-", color="C0", label="sparse")
        flop, time, _ = step_cost_ratios(points)
        bottom.plot(xs, flop, "^--", color="C2", label="FLOP ratio")
        bottom.plot(xs, time, "D-", color="C3", label="time ratio")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(xs, [str(x) for x in xs])
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.minorticks_off()
        bottom.set_xlabel(SCALING_AXES[name])
    axes[0, 0].set_ylabel("milliseconds per step (median)")
    axes[1, 0].set_ylabel("dense / sparse")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=8)
    return axes[0, 0].figure, axes
