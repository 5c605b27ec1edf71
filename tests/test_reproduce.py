"""``python -m maxplus reproduce``: well-formed results on the seconds-long preset."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from maxplus import experiments as ex
from maxplus import reproduce as rp

KEYS = {"claim", "dataset", "metric", "ours", "paper", "unit", "config", "note"}


def check_results(out, claims):
    rows = json.loads((out / "results.json").read_text())
    assert isinstance(rows, list) and rows
    assert {row["claim"] for row in rows} == set(claims)
    paper = {(f.claim, f.value, f.unit) for f in ex.PAPER}
    for row in rows:
        assert set(row) == KEYS
        assert isinstance(row["ours"], int | float) or row["ours"] is None
        assert isinstance(row["config"], dict) and row["config"]
        if row["paper"] is not None:  # the paper's figure comes from the one table
            assert (row["claim"], row["paper"], row["unit"]) in paper
    md = (out / "results.md").read_text()
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert lines[0] == "| claim | dataset | metric | ours | paper | unit | note |"
    assert len(lines) == 1 + len(rows)  # one table: header and a line per row
    for row, line in zip(rows, lines[1:], strict=True):
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert cells[:3] == [row["claim"], row["dataset"], row["metric"]]
        assert cells[3] == rp.format_number(row["ours"])
        assert cells[4] == rp.format_number(row["paper"])
    assert "## Figures" in md
    return rows, md


def test_command_line_quick_only_on_tiny_preset(tmp_path):
    env = dict(os.environ, MAXPLUS_REPRODUCE_PRESET="tiny", NUMBA_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "maxplus", "reproduce", "--quick", "--out", str(tmp_path)]
    cmd += ["--only", "iris_train_time_vs_mlp", "--only", "pruning"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "[iris_train_time_vs_mlp]" in done.stdout and "all done" in done.stdout
    rows, _ = check_results(tmp_path, ["iris_train_time_vs_mlp", "pruning"])
    by_metric = {(r["claim"], r["metric"]): r for r in rows}
    same = by_metric[("pruning", "training predictions unchanged by pruning")]
    assert same["ours"] == 100.0
    timing = [r for r in rows if r["claim"] == "iris_train_time_vs_mlp"]
    assert {r["paper"] for r in timing} >= {151.0, 33.0}
    assert all(r["ours"] is None or r["ours"] > 0 for r in timing)


def test_claim_name_selects_its_experiment_and_draws(tmp_path, capsys):
    code = rp.main(["--preset", "tiny", "--out", str(tmp_path), "--only", "worst_vs_mean_accuracy"])
    assert code == 0
    claims = ["worst_vs_mean_max_loss", "worst_vs_mean_accuracy", "worst_vs_mean_seconds"]
    rows, md = check_results(tmp_path, claims)
    assert (tmp_path / "worst_vs_mean_iris.png").stat().st_size > 1000
    assert "`worst_vs_mean_iris.png`" in md
    accuracy = [r for r in rows if r["claim"] == "worst_vs_mean_accuracy"]
    assert {r["paper"] for r in accuracy} == {92.0, 69.0, None}  # the MLP: no figure
    assert all(0 <= r["ours"] <= 100 for r in accuracy)
    worst = next(r for r in accuracy if r["metric"].startswith("test accuracy, worst"))
    assert "goal ≥ 92%" in worst["note"]
    assert "worst_vs_mean" in capsys.readouterr().out
    mlp = next(r for r in accuracy if r["metric"] == "test accuracy, MLP (PyTorch)")
    assert mlp["paper"] is None and mlp["config"]["model"] == "MLP 4-64-3 (ReLU)"
    seconds = [r for r in rows if r["claim"] == "worst_vs_mean_seconds"]
    assert len(seconds) == 3 and all(r["ours"] > 0 for r in seconds)


def test_scaling_and_topq_on_tiny_preset(tmp_path):
    assert (
        rp.main(
            [
                "--preset",
                "tiny",
                "--out",
                str(tmp_path),
                "--only",
                "step_cost_scaling",
                "--only",
                "topq_family",
            ]
        )
        == 0
    )
    rows, _ = check_results(tmp_path, ["step_cost_scaling", "topq_family"])
    slopes = [r for r in rows if r["claim"] == "step_cost_scaling"]
    assert len(slopes) == 6 and all(np.isfinite(r["ours"]) for r in slopes)
    assert (tmp_path / "step_cost_scaling.png").exists()
    assert (tmp_path / "topq_family_iris.png").exists()


def test_unknown_name_is_refused(tmp_path, capsys):
    assert rp.main(["--out", str(tmp_path), "--only", "everything"]) == 2
    assert "unknown experiment or claim 'everything'" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_module_entry_point_help():
    from maxplus.__main__ import main

    assert main([]) == 2
    assert main(["--help"]) == 0
    assert main(["frobnicate"]) == 2


def test_resolve_names():
    assert ex.resolve_names([]) == list(ex.EXPERIMENTS)
    assert ex.resolve_names(["worst_vs_mean_max_loss", "worst_vs_mean"]) == ["worst_vs_mean"]
    assert ex.resolve_names(["pruning", "per_iteration_speedup"]) == [
        "pruning",
        "per_iteration_speedup",
    ]


def test_make_row_takes_the_paper_figure_from_the_table():
    row = ex.make_row(
        "per_iteration_speedup", "mnist5k", "m", 0.5, "s", {"a": (1, 2)}, paper_key="dense_seconds"
    )
    assert row["paper"] == ex.paper_figure("per_iteration_speedup", "dense_seconds").value
    assert row["config"] == {"a": [1, 2]} and row["ours"] == 0.5
    with pytest.raises(ValueError, match="unit mismatch"):
        ex.make_row("per_iteration_speedup", "d", "m", 1.0, "ms", {}, paper_key="dense_seconds")
    with pytest.raises(KeyError):
        ex.paper_figure("pruning", "anything")
    assert ex.make_row("pruning", "d", "m", np.float32(2.5), "", {})["paper"] is None


def test_markdown_cells_and_numbers():
    assert rp.format_number(None) == "—"
    assert rp.format_number(151.0) == "151"
    assert rp.format_number(0.12) == "0.12"
    assert rp.format_number(0.000123) == "0.000123"
    assert rp.format_number(123456.0) == "123,456"
    row = ex.make_row("pruning", "iris", "a | b", 1.0, "%", {"x": 1}, note="n|m")
    table = rp.markdown_table([row])
    assert "a \\| b" in table and "n\\|m" in table


def test_helpers():
    xs = np.array([10.0, 20.0, 40.0])
    assert ex.loglog_slope(xs, 3 * xs**1.5) == pytest.approx(1.5)
    X = np.arange(20, dtype=float)[:, None]
    y = np.arange(20) % 4
    Xs, ys = ex.resample(X, y, 5, 2)
    assert len(ys) == 5 and set(ys) <= {0, 1} and len(np.unique(Xs)) == 5
    Xr, yr = ex.resample(X, y, 25, 2)
    assert len(yr) == 25 and set(yr) <= {0, 1}
    assert ex.resolve_q(0, 50) == 50 and ex.resolve_q(0.1, 50) == 5 and ex.resolve_q(3, 50) == 3


def test_stall_experiment_on_tiny_preset(tmp_path):
    assert (
        rp.main(["--preset", "tiny", "--out", str(tmp_path), "--only", "worst_sample_stall"]) == 0
    )
    rows, md = check_results(tmp_path, ["worst_sample_stall"])
    assert (tmp_path / "worst_sample_stall_iris.png").stat().st_size > 1000
    lrs = ex.PRESETS["tiny"].stall["iris"].lrs
    assert len(rows) == 6 * len(lrs)  # four for q = 1, two for the mean objective
    by_metric = {r["metric"]: r["ours"] for r in rows}
    for lr in lrs:
        floor = by_metric[f"routing floor under the max loss, q = 1, lr {lr:g}"]
        loss = by_metric[f"best max training loss, q = 1, lr {lr:g}"]
        assert 0 <= floor <= np.log(3) + 1e-12 and loss >= floor - 1e-9


@pytest.mark.parametrize("name", sorted(ex.PRESETS))
def test_presets_are_well_formed(name):
    preset = ex.PRESETS[name]
    assert preset.name == name
    for dataset in (*preset.datasets, *preset.topq_datasets, *preset.prune_datasets):
        assert isinstance(preset.worst[dataset], ex.WorstConfig), dataset
    for dataset in preset.datasets:
        assert isinstance(preset.adam[dataset], ex.AdamConfig), dataset
    assert set(preset.mlp) <= set(preset.datasets)
    assert all(isinstance(m, ex.MLPConfig) and m.epochs >= 1 for m in preset.mlp.values())
    for dataset, stall in preset.stall.items():
        assert isinstance(stall, ex.StallConfig) and dataset in preset.worst
        assert stall.lrs and all(lr > 0 for lr in stall.lrs) and 1 <= stall.every <= stall.steps
    assert preset.topq_steps is None or preset.topq_steps >= 1
    assert set(preset.estimator_variants) <= set(ex.ESTIMATOR_VARIANTS)
    assert 0 < preset.test_size < 1 and preset.timing_repeats >= 1


def collapsing_lmm(C):
    """LMM 2-2-2-K whose min-plus units all select linear unit 0, whatever the input."""
    A = np.array([[1.0, 0.0], [0.0, 1.0]])
    B = np.array([[0.0, 100.0], [0.5, 100.0]])
    return ex.LMM.from_arrays(A, np.zeros(2), B, np.asarray(C, dtype=float))


def test_routing_floor_holds_for_any_weights_on_the_paths():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(30, 2))
    y = np.arange(30) % 3
    for _ in range(20):
        model = collapsing_lmm(rng.normal(size=(3, 2)))
        summary = ex.routing_summary(model, X, y)
        assert summary["collapsed"] == 1.0 and summary["groups"] == 1
        assert summary["labels_in_one_group"] == 3 and summary["floor"] == pytest.approx(np.log(3))
        assert summary["worst_collapsed"] and summary["max_loss"] >= np.log(3) - 1e-12
    two_labels = ex.routing_summary(collapsing_lmm(np.zeros((3, 2))), X[y < 2], y[y < 2])
    assert two_labels["floor"] == pytest.approx(np.log(2))
    assert two_labels["max_loss"] == pytest.approx(np.log(3))  # equal scores: log K


def test_routing_of_trees_that_end_on_different_linear_units():
    A = np.array([[1.0, 0.0], [0.0, 1.0]])
    B = np.array([[0.0, 100.0], [100.0, 0.0]])  # min-plus unit l selects linear unit l
    C = np.array([[0.0, -100.0], [-100.0, 0.0]])  # class k selects min-plus unit k
    model = ex.LMM.from_arrays(A, np.zeros(2), B, C)
    X = np.random.default_rng(1).uniform(-1, 1, size=(10, 2))
    summary = ex.routing_summary(model, X, np.arange(10) % 2)
    assert summary["collapsed"] == 0.0 and summary["groups"] == 0 and summary["floor"] == 0.0
    assert summary["linear_units_reached"] == 2 and not summary["worst_collapsed"]


def test_class_paths_end_where_the_trees_do():
    model = ex.LMM(5, 12, 7, 4, seed=3, dtype="float64")
    X = np.random.default_rng(2).normal(size=(25, 5))
    paths = ex.class_paths(model, X)
    assert len(paths) == 3 and all(p.shape == (25, 4) for p in paths)
    for n in range(25):
        tree = model.tree(X[n]).parameters()
        assert set(paths[-1][n].tolist()) == set(np.atleast_1d(tree["0.weight"]).tolist())
        assert {(int(k), int(paths[1][n, k])) for k in range(4)} == set(tree["2.weight"])


def test_speed_subsample_keeps_every_class():
    # the data files are sorted by label: the first rows of Iris are all setosa
    preset = replace(ex.PRESETS["tiny"], speed_samples=30, speed_steps=2, speed_seconds=0.05)
    outcome = ex.per_iteration_speedup(preset, ex.Data(preset))
    config = outcome.series["report"]["config"]
    assert config["n_samples"] == 30 and config["n_classes"] == 3


def test_class_block_network_starts_with_no_collapsed_sample():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 12))
    X /= np.sqrt((X**2).mean())
    y = rng.integers(0, 4, 200)
    blocks = ex.class_block_lmm(12, 16, 8, 4, seed=0)
    assert ex.routing_summary(blocks, X, y)["collapsed"] == 0.0
    linear_units = ex.class_paths(blocks, X)[-1]  # (N, K): where each class's path ends
    assert all(len(set(row)) == 4 for row in linear_units.tolist())
    with pytest.raises(ValueError, match="n_classes=4"):
        ex.class_block_lmm(12, 3, 8, 4)
