"""``python -m maxplus reproduce``: run the experiments, print progress, write results.

    python -m maxplus reproduce [--quick] [--out DIR] [--only NAME ...]

writes to ``DIR`` (default ``build/reproduce``):

* ``results.json``: a list of rows ``{"claim", "dataset", "metric", "ours", "paper",
  "unit", "config", "note"}`` (see :mod:`maxplus.experiments`);
* ``results.md``: one table (claim | dataset | metric | ours | paper | unit | note),
  the paper's figure in its own column beside ours, then the list of figures;
* the figures, as PNG.

``--quick`` runs smaller configurations (under 10 minutes on 2 cores); the default
is the full run (under an hour). ``--only`` takes experiment or claim names and may
be repeated. ``--preset tiny`` (hidden; also ``MAXPLUS_REPRODUCE_PRESET=tiny``) is
the seconds-long configuration of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import experiments as ex

DEFAULT_OUT = Path("build") / "reproduce"
PRESET_ENV = "MAXPLUS_REPRODUCE_PRESET"
COLUMNS = ("claim", "dataset", "metric", "ours", "paper", "unit", "note")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m maxplus reproduce",
        description="Run the reproduction's experiments and write results.json, "
        "results.md and the figures (PNG).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller configurations (under 10 minutes on 2 cores)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        default=[],
        help="run only this experiment or claim (repeatable): " + ", ".join(ex.EXPERIMENTS),
    )
    parser.add_argument("--preset", choices=sorted(ex.PRESETS), help=argparse.SUPPRESS)
    return parser


def choose_preset(args) -> ex.Preset:
    name = args.preset or os.environ.get(PRESET_ENV) or ("quick" if args.quick else "full")
    if name not in ex.PRESETS:
        raise SystemExit(f"{PRESET_ENV}={name!r} is not a preset; known: {', '.join(ex.PRESETS)}")
    return ex.PRESETS[name]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        names = ex.resolve_names(args.only)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    preset = choose_preset(args)
    return run(names, preset, args.out)


def run(names, preset: ex.Preset, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    data = ex.Data(preset)
    rows, figures, timings = [], [], {}
    start = time.perf_counter()
    say(f"maxplus reproduce: preset {preset.name!r}, experiments: {', '.join(names)} → {out}")
    for name in names:
        experiment = ex.EXPERIMENTS[name]
        say(f"[{name}] {experiment.summary}")
        t0 = time.perf_counter()
        outcome = experiment(preset, data, progress=lambda m, n=name: say(f"  [{n}] {m}"))
        timings[name] = time.perf_counter() - t0
        rows += outcome.rows
        figures += draw_figures(name, outcome, out)
        say(f"[{name}] done in {timings[name]:.1f} s")
        write_results(out, rows, figures, preset, timings)  # partial results survive a crash
    total = time.perf_counter() - start
    say(
        f"all done in {total:.1f} s; wrote {out / 'results.json'}, {out / 'results.md'}"
        + (f" and {len(figures)} figure(s)" if figures else "")
    )
    print(markdown_table(rows))
    return 0


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


# ============================================================================ writing


def write_results(out: Path, rows, figures, preset, timings) -> None:
    (out / "results.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    (out / "results.md").write_text(markdown_report(rows, figures, preset, timings))


def format_number(value) -> str:
    """Three significant digits (thousands separated); ``—`` for no value."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [
            row["claim"],
            row["dataset"],
            row["metric"],
            format_number(row["ours"]),
            format_number(row["paper"]),
            row["unit"],
            row.get("note", ""),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_report(rows, figures, preset, timings) -> str:
    paper = "\n".join(f"- *{w}*" for w in dict.fromkeys(f.wording for f in ex.PAPER))
    times = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    parts = [
        "# maxplus: reproduction results\n",
        f'Preset `{preset.name}`; run times: {times}. "ours" is measured by this run; '
        '"paper" is the paper\'s figure (Enaieh & Fercoq, arXiv:2603.04133), shown beside '
        "it, never copied into ours; — means no figure. Full configurations: "
        "`results.json`.\n",
        markdown_table(rows),
        "\n## The paper's figures, in its words\n",
        paper + "\n",
        "\n## Figures\n",
    ]
    parts += [f"- `{name}`: {caption}" for name, caption in figures] or ["(none)"]
    return "\n".join(parts) + "\n"


# ============================================================================ figures


def draw_figures(name: str, outcome: ex.Outcome, out: Path) -> list:
    """Draw the experiment's figures into ``out``; returns ``[(file, caption)]``."""
    drawer = FIGURES.get(name)
    if drawer is None or not outcome.series:
        return []
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    drawn = []
    for filename, caption, fig in drawer(outcome.series, plt):
        fig.savefig(out / filename, dpi=110, bbox_inches="tight")
        plt.close(fig)
        drawn.append((filename, caption))
    return drawn


def figure_speedup(series, plt):
    """Seconds per step as points on a log axis (bars on a log axis would start at an
    arbitrary left edge and exaggerate the ratios)."""
    report = series["report"]
    methods = list(report["methods"])
    medians = [report["methods"][m]["median_seconds"] for m in methods]
    means = [report["methods"][m]["mean_seconds"] for m in methods]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ys = list(range(len(methods)))
    ax.plot(medians, ys, "o", ms=7, label="median")
    ax.plot(means, ys, "x", ms=7, label="mean")
    for y, median in zip(ys, medians, strict=True):
        ax.annotate(
            f"{median:.3g} s",
            (median, y),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_yticks(ys, methods)
    ax.set_ylim(-0.6, len(methods) - 0.2)
    ax.set_xscale("log")
    ax.margins(x=0.2)
    ax.xaxis.set_minor_formatter(plt.NullFormatter())  # labelled minor ticks overlap
    ax.set_xlabel("seconds per step (log scale)")
    cfg = report["config"]
    ax.set_title(f"per step, {cfg['architecture']}, N={cfg['n_samples']}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    yield "per_iteration_speedup.png", "seconds per step of each method (ours)", fig


def figure_scaling(series, plt):
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
    for ax, axis in zip(axes, ("N", "h1", "K"), strict=True):
        points = series[axis]
        xs = [p[axis] for p in points]
        for method, marker in (("sparse", "o"), ("dense", "s")):
            ax.loglog(xs, [p[f"{method}_median"] for p in points], marker=marker, label=method)
        ax.set_xlabel(axis)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds per step (median)")
    axes[0].legend()
    fig.tight_layout()
    fig.suptitle("per-step cost against N, h1 and K (log-log)", fontsize=10)
    yield "step_cost_scaling.png", "seconds per step against N, h1 and K, sparse and dense", fig


def figure_topq(series, plt):
    for name, points in series.items():
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
        qs = [p["q"] for p in points]
        for ax, key, label in zip(
            axes,
            ("accuracy", "max_loss", "seconds"),
            ("test accuracy (%)", "max training loss", "training seconds"),
            strict=True,
        ):
            ax.semilogx(qs, [p[key] for p in points], marker="o")
            ax.set_xlabel("q (1 = worst sample, N = mean)")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
        fig.suptitle(f"top-q family on {name}", fontsize=10)
        yield f"topq_family_{name}.png", f"the top-q family on {name}", fig


def figure_worst_vs_mean(series, plt):
    for name, s in series.items():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        axes[0].plot(s["objective"])
        axes[0].set_xlabel("subgradient step")
        axes[0].set_ylabel("top-q objective")
        axes[0].set_title("worst-sample training", fontsize=9)
        epochs = range(1, len(s["adam_loss"]) + 1)
        axes[1].plot(epochs, s["adam_loss"], marker=".", label="standard LMM (Adam)")
        if "mlp_loss" in s:
            epochs = range(1, len(s["mlp_loss"]) + 1)
            axes[1].plot(epochs, s["mlp_loss"], marker=".", label="MLP (Adam)")
            axes[1].legend(fontsize=8)
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("mean mini-batch loss")
        axes[1].set_title("baselines: mean loss, Adam", fontsize=9)
        fig.suptitle(f"training curves on {name}", fontsize=10)
        yield f"worst_vs_mean_{name}.png", f"training curves on {name}", fig


def figure_stall(series, plt):
    for name, s in series.items():
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        for i, run in enumerate(s["runs"]):
            color = f"C{i}"
            objective = run["objective"]
            axes[0].plot(objective, color=color, lw=0.6, alpha=0.4)
            axes[0].plot(
                np.minimum.accumulate(objective), color=color, lw=1.8, label=f"lr {run['lr']:g}"
            )
            if run["best"]["floor"] > 0:
                axes[0].axhline(run["best"]["floor"], color=color, ls=":", lw=1)
            trace = run["trace"]
            axes[1].plot(
                [p["step"] for p in trace],
                [100 * p["collapsed"] for p in trace],
                color=color,
                marker=".",
                label=f"lr {run['lr']:g}",
            )
        axes[0].axhline(s["log_K"], color="k", ls="--", lw=1, label="log K")
        axes[0].set_xlabel("subgradient step")
        axes[0].set_ylabel("max training loss F (q = 1)")
        axes[0].set_title("F (thin), best so far (thick), routing floor (dotted)", fontsize=9)
        axes[0].legend(fontsize=8)
        axes[1].set_xlabel("subgradient step")
        axes[1].set_ylabel("samples on one linear unit (%)")
        axes[1].set_ylim(-3, 103)
        axes[1].set_title("samples whose K classes reach one linear unit", fontsize=9)
        fig.suptitle(f"worst-sample training (q = 1) on {name}", fontsize=10)
        fig.tight_layout()
        yield (
            f"worst_sample_stall_{name}.png",
            f"worst-sample training and its routing, {name}",
            fig,
        )


FIGURES = {
    "per_iteration_speedup": figure_speedup,
    "step_cost_scaling": figure_scaling,
    "topq_family": figure_topq,
    "worst_vs_mean": figure_worst_vs_mean,
    "worst_sample_stall": figure_stall,
}
