"""maxplus.speed: side-by-side step timings, FLOP ratios, state sizes, peak memory.

Speed itself is never asserted (flaky); what is checked is that the figures are
well formed and consistent with each other and with the trainers.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import maxplus as mp
from maxplus import flops, speed
from maxplus.sparse import SparseTrainer
from maxplus.training import make_trainer

SIZES = (16, 8)


def synthetic(n, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, k, n)


def available_methods():
    methods = ["sparse", "dense"]
    try:
        import torch  # noqa: F401

        methods.append("torch_plain")
        import tropical_gemm.pytorch  # noqa: F401

        methods.append("torch_tropical_gemm")
    except ImportError:
        pass
    return tuple(methods)


@pytest.fixture(scope="module")
def report(iris):
    X, y = iris
    return speed.measure_step_times(
        X, y, sizes=SIZES, lr=0.01, methods=available_methods(), steps=6, warmup=1
    )


def test_report_echoes_the_configuration(report, iris):
    X, y = iris
    config = report["config"]
    assert config["n_samples"] == X.shape[0] and config["n_features"] == X.shape[1]
    assert config["sizes"] == list(SIZES) and config["n_classes"] == 3
    assert config["dtype"] == "float32" and config["objective"] == "worst" and config["q"] == 1
    assert config["lr"] == 0.01 and config["steps"] == 6 and config["warmup"] == 1
    assert config["methods"] == list(available_methods())
    json.dumps(report)  # plain JSON


def test_every_method_has_well_formed_figures(report):
    for method, f in report["methods"].items():
        assert f["timed_steps"] == 6, method
        assert 0 < f["min_seconds"] <= f["median_seconds"] <= f["max_seconds"], method
        assert f["min_seconds"] <= f["mean_seconds"] <= f["max_seconds"], method
        assert f["median_flops"] > 0 and f["mean_flops"] > 0, method
        # warm-up and one lead-in step per block are extra, untimed steps
        assert f["steps_done"] >= 1 + 6, method


def test_dense_peers_count_the_dense_formula(report, iris):
    X, _ = iris
    model = mp.LMM(X.shape[1], *SIZES, 3)
    expected = flops.dense_step_flops(model, X.shape[0])
    for method, f in report["methods"].items():
        if method != "sparse":
            assert f["median_flops"] == f["mean_flops"] == expected, method
    assert report["methods"]["sparse"]["mean_flops"] < expected


def test_ratios_are_consistent_with_the_times(report):
    sparse = report["methods"]["sparse"]
    assert set(report["ratios"]) == set(report["methods"]) - {"sparse"}
    for peer, r in report["ratios"].items():
        f = report["methods"][peer]
        for stat in ("median", "mean"):
            assert math.isclose(
                r[f"time_ratio_{stat}"], f[f"{stat}_seconds"] / sparse[f"{stat}_seconds"]
            )
            assert math.isclose(
                r[f"flop_ratio_{stat}"], f[f"{stat}_flops"] / sparse[f"{stat}_flops"]
            )
            assert math.isclose(
                r[f"realised_share_{stat}"], r[f"time_ratio_{stat}"] / r[f"flop_ratio_{stat}"]
            )


def test_format_names_every_method_and_judges_targets(report):
    text = speed.format_step_times(report, {"dense": 1e9})
    for method in report["methods"]:
        assert method in text
    assert "realised share" in text
    assert ">= 1e+09x: NOT met / NOT met" in text
    budget = 1e3 * report["methods"]["dense"]["median_seconds"] / 1e9
    assert f"(a sparse step of at most {budget:.3g} ms)" in text


def test_max_seconds_stops_each_method_after_its_budget(iris):
    X, y = iris
    out = speed.measure_step_times(
        X, y, sizes=SIZES, methods=("sparse", "dense"), steps=50, warmup=0, max_seconds=1e-9
    )
    assert [f["timed_steps"] for f in out["methods"].values()] == [1, 1]


def test_without_sparse_there_are_no_ratios(iris):
    X, y = iris
    out = speed.measure_step_times(X, y, sizes=SIZES, methods=("dense",), steps=2, warmup=0)
    assert out["ratios"] == {} and list(out["methods"]) == ["dense"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ("sparse", "bogus")}, "methods"),
        ({"methods": ()}, "methods"),
        ({"methods": ("dense", "dense")}, "duplicates"),
        ({"steps": 0}, "steps"),
        ({"warmup": -1}, "warmup"),
        ({"max_seconds": 0.0}, "max_seconds"),
        ({"sizes": (16,)}, "sizes"),
        ({"lr": -1.0}, "lr"),
        ({"after": -1}, "after"),
        ({"start": {}}, "after"),
    ],
)
def test_bad_arguments_are_named(iris, kwargs, match):
    X, y = iris
    with pytest.raises(ValueError, match=match):
        speed.measure_step_times(X, y, **{"sizes": SIZES, **kwargs})


def test_after_starts_every_method_from_the_trained_iterate(iris, monkeypatch):
    X, y = iris
    dense = speed.WarmStepper("dense", X, y, sizes=SIZES, lr=0.05, warmup=0, dtype="float64")
    dense.steps(7)
    start = speed.trained_parameters(X, y, 7, sizes=SIZES, lr=0.05, dtype="float64")
    for name, value in dense.model.named_parameters().items():  # the same trajectory
        np.testing.assert_allclose(start[name], value, rtol=1e-12, atol=1e-12)
    starts = []
    inner = speed.WarmStepper.__init__

    def spy(self, *args, **kwargs):
        inner(self, *args, **kwargs)
        starts.append({k: v.copy() for k, v in self.model.named_parameters().items()})

    monkeypatch.setattr(speed.WarmStepper, "__init__", spy)
    report = speed.measure_step_times(
        X,
        y,
        sizes=SIZES,
        lr=0.05,
        dtype="float64",
        methods=("sparse", "dense"),
        steps=1,
        warmup=0,
        after=7,
    )
    assert report["config"]["after"] == 7
    assert len(starts) == 3  # the trajectory's stepper, then one per method
    for params in starts[1:]:
        for name, value in params.items():
            np.testing.assert_array_equal(value, start[name])


def test_after_is_stated_in_the_table(iris):
    X, y = iris
    out = speed.measure_step_times(
        X, y, sizes=SIZES, methods=("sparse", "dense"), steps=2, warmup=0, after=3
    )
    assert "from the iterate after 3 sparse steps" in speed.format_step_times(out)


# --------------------------------------------------------------------- the steppers


def test_torch_trainer_takes_the_dense_iterates(iris):
    pytest.importorskip("torch")
    X, y = iris
    dense = speed.WarmStepper("dense", X, y, sizes=SIZES, lr=0.05, warmup=0, dtype="float64")
    torch = speed.WarmStepper("torch_plain", X, y, sizes=SIZES, lr=0.05, warmup=0, dtype="float64")
    h_dense, h_torch = dense.steps(5), torch.steps(5)
    np.testing.assert_allclose(h_torch["objective"], h_dense["objective"], rtol=1e-10)
    for name, value in dense.model.named_parameters().items():
        np.testing.assert_allclose(torch.model.named_parameters()[name], value, rtol=1e-10)
    assert not np.array_equal(dense.model.C, mp.LMM(4, *SIZES, 3, dtype="float64").C)


def test_step_takes_exactly_one_step_and_one_forward(iris, monkeypatch):
    X, y = iris
    one = speed.WarmStepper("dense", X, y, sizes=SIZES, warmup=0)
    many = speed.WarmStepper("dense", X, y, sizes=SIZES, warmup=0)
    forwards = []
    inner = one.trainer.losses
    monkeypatch.setattr(one.trainer, "losses", lambda *q: forwards.append(1) or inner(*q))
    for _ in range(4):
        one.step()
    many.steps(4)
    assert len(forwards) == 4 + 1  # one per step, plus the next iterate's
    for name, value in many.model.named_parameters().items():
        np.testing.assert_array_equal(one.model.named_parameters()[name], value)
    one.steps(1)  # steps() after step() must not reuse stale losses
    many.steps(1)
    np.testing.assert_array_equal(one.model.C, many.model.C)


# ------------------------------------------------------------------------ state size


def sparse_trainer(n, sizes, d=6, seed=0):
    X, y = synthetic(n, d=d, seed=seed)
    model = mp.LMM(X.shape[1], *sizes, 3, seed=seed, dtype="float64")
    return make_trainer("sparse", model, X, y, "cross_entropy", refresh_every=100, exact=False)


def test_sparse_state_grows_linearly_with_samples():
    small, large = sparse_trainer(300, (20, 10)), sparse_trainer(600, (20, 10))
    a, b = speed.sparse_state_bytes(small), speed.sparse_state_bytes(large)
    assert a["per_sample"] > 0 and b["per_sample"] == 2 * a["per_sample"]
    assert b["other"] == a["other"]


def test_sparse_state_is_linear_in_the_widths():
    base = speed.sparse_state_bytes(sparse_trainer(300, (20, 10)))["per_sample"]
    wide = speed.sparse_state_bytes(sparse_trainer(300, (80, 40)))["per_sample"]
    # widths x4 (their product x16): O(N (h1 + h2 + K)) grows at most 4-fold
    assert base < wide <= 4 * base
    assert wide <= 64 * 300 * (80 + 40 + 3)  # bytes per sample and unit, generously


def test_product_cache_is_reported_apart():
    trainer = sparse_trainer(200, (20, 10))
    model = trainer.model
    before = speed.sparse_state_bytes(trainer)
    from maxplus.training import run

    run(trainer, model, 1, 5, "constant", 0.05, 0.0, False, None)
    after = speed.sparse_state_bytes(trainer)
    assert after["cached_products"] >= 1
    assert after["product_cache"] == after["cached_products"] * 200 * 8  # float64 X x_s
    # the state may keep a log of the steps since its last refresh (a few vectors of
    # length N per step), but the cached products are not counted in it
    grown = after["per_sample"] - before["per_sample"]
    assert 0 <= grown <= 5 * 200 * 8 * 2


def test_state_bytes_count_neither_data_nor_parameters():
    few, many = sparse_trainer(300, (20, 10), d=6), sparse_trainer(300, (20, 10), d=600)
    # X (N x d) and A (h1 x d) are not state: the state does not depend on d, except
    # for the products' feature-major copy of X, reported apart
    few_bytes, many_bytes = speed.sparse_state_bytes(few), speed.sparse_state_bytes(many)
    assert many_bytes.pop("data_copy") == many.X.nbytes
    assert few_bytes.pop("data_copy") == few.X.nbytes
    assert many_bytes == few_bytes


def test_sparse_state_bytes_refuses_other_trainers():
    trainer = sparse_trainer(100, (20, 10))
    assert isinstance(trainer, SparseTrainer)
    dense = make_trainer(
        "dense", trainer.model, trainer.X, trainer.y, "cross_entropy", refresh_every=1, exact=False
    )
    with pytest.raises(TypeError, match="sparse"):
        speed.sparse_state_bytes(dense)
    names = ("per_sample", "other", "product_cache", "cached_products", "data_copy")
    empty = dict.fromkeys(names, 0)
    assert speed.trainer_state_bytes(dense) == empty  # nothing kept before a forward pass
    dense.losses()
    assert speed.trainer_state_bytes(dense)["per_sample"] > 0


# ------------------------------------------------------------------------ peak memory


def test_peak_memory_of_one_method(iris):
    X, y = iris
    memory = speed.measure_peak_memory(X, y, sizes=SIZES, methods=("dense",), steps=1)
    assert memory["how"] in ("reset", "baseline")
    m = memory["dense"]
    assert m["peak_rss"] >= m["before"] > 0 and m["net"] == m["peak_rss"] - m["before"]
    assert "dense" in speed.format_peak_memory(memory)


# ------------------------------------------------------------- compilation set aside


def test_numba_compilations_are_counted_while_watching():
    import numba

    @numba.njit
    def twice(x):
        return 2 * x

    before = speed.NumbaCompilations.count
    with speed.NumbaCompilations.watching():
        twice(1.0)
        twice(2.0)  # compiled once per signature
    assert speed.NumbaCompilations.count == before + 1
    twice(1)  # not watching: not counted
    assert speed.NumbaCompilations.count == before + 1


class ScriptedStepper:
    """Steps with given seconds and compile flags (for the interleaving logic)."""

    def __init__(self, seconds, compiled):
        self.seconds, self.compiled, self.last_seconds = list(seconds), list(compiled), None

    def steps(self, n):
        seconds, self.seconds = self.seconds[:n], self.seconds[n:]
        compiled, self.compiled = self.compiled[:n], self.compiled[n:]
        return {"seconds": seconds, "flops": [7] * n, "compiled": compiled}


def test_steps_that_compiled_and_lead_in_steps_are_not_timed():
    seconds = [5.0, 0.1, 0.15, 9.0, 0.2, 0.25, 0.3]
    stepper = ScriptedStepper(seconds, [False, False, False, True, False, False, False])
    timed, counted, compiled = speed._interleaved_steps({"a": stepper}, steps=3, max_seconds=None)
    # blocks: lead-in 5.0 + 0.1; lead-in 0.15 + 9.0 (compiled: set aside) + 0.2; 0.25 + 0.3
    assert timed["a"] == [0.1, 0.2, 0.3] and counted["a"] == [7, 7, 7]
    assert compiled["a"] == [9.0] and stepper.seconds == []


def test_phase_seconds_time_each_protocol_call(iris):
    """PhaseTimer wraps any trainer (here the CPU sparse one; gpu_check wraps the GPU
    one): the shared loop runs through it and each protocol call's time is counted."""
    X, y = iris
    model = mp.LMM(4, 8, 6, 3, seed=0)
    trainer = SparseTrainer(model, X.astype(np.float32), y, "cross_entropy")
    phases = speed.phase_seconds(trainer, model, 1, 5, "constant", 0.01)
    assert set(phases) == {*speed.PhaseTimer.PHASES, "loop"}
    assert phases["losses"] > 0 and phases["apply"] > 0
