"""The asv suite, its runner and the product comparison script, without asv.

The products and their timing are tested with the package (``tests/test_peers.py``).

The smoke test runs every benchmark of ``benchmarks/benchmarks/bench_*.py`` once, at
the first combination of its parameters (the smallest, by the suite's convention),
so benchmarks added later are covered without touching this file.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
SUITE_DIR = BENCH_DIR / "benchmarks"
BENCHMARK_PREFIXES = ("time_", "timeraw_", "peakmem_", "mem_", "track_")

if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # the suite is the package `benchmarks` in there

from benchmarks import common  # noqa: E402


def load_script(name: str):
    """Import ``benchmarks/<name>.py`` (a script, not part of the suite) as a module."""
    module_name = f"_benchmark_script_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- smoke test


def bench_modules():
    return sorted(path.stem for path in SUITE_DIR.glob("bench_*.py"))


def first_params(params) -> tuple:
    """asv's ``params``: a list of value lists (several parameters) or of values (one)."""
    if not params:
        return ()
    if all(isinstance(p, list | tuple) for p in params):
        return tuple(p[0] for p in params)
    return (params[0],)


def benchmark_cases():
    """(id, module name, class name or None, method names) for every benchmark."""
    cases = []
    for module_name in bench_modules():
        module = importlib.import_module(f"benchmarks.{module_name}")
        for name, obj in vars(module).items():
            if name.startswith("_"):
                continue
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                methods = [m for m in dir(obj) if m.startswith(BENCHMARK_PREFIXES)]
                if methods:
                    cases.append((f"{module_name}.{name}", module_name, name, methods))
            elif inspect.isfunction(obj) and name.startswith(BENCHMARK_PREFIXES):
                cases.append((f"{module_name}.{name}", module_name, None, [name]))
    return cases


CASES = benchmark_cases()


def test_suite_has_benchmarks():
    assert "bench_products" in bench_modules()
    assert any(case[0] == "bench_products.Products" for case in CASES)


@pytest.mark.parametrize(
    ("module_name", "class_name", "methods"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_benchmark_runs_once(module_name, class_name, methods):
    module = importlib.import_module(f"benchmarks.{module_name}")
    owner = getattr(module, class_name)() if class_name else module
    params = first_params(getattr(owner, "params", []))
    setup = getattr(owner, "setup", None)
    try:
        if setup is not None:
            setup(*params)
        for method in methods:
            value = getattr(owner, method)(*params)
            if method.startswith("track_"):
                assert isinstance(value, int | float) and np.isfinite(value), (method, value)
    except NotImplementedError as exc:  # asv's way of skipping (no GPU, no package)
        pytest.skip(f"skipped by setup: {exc}")
    finally:
        teardown = getattr(owner, "teardown", None)
        if teardown is not None:
            teardown(*params)


def test_parametrized_classes_name_their_parameters():
    for _, module_name, class_name, _ in CASES:
        if class_name is None:
            continue
        cls = getattr(importlib.import_module(f"benchmarks.{module_name}"), class_name)
        params = getattr(cls, "params", None)
        if params:
            assert len(cls.param_names) == len(first_params(params)), class_name


# ------------------------------------------------------------------ sizes and scripts


def test_sizes_round_trip_and_bad_sizes_are_named():
    assert common.parse_size(common.size_name(common.REFERENCE)) == common.REFERENCE
    for bad in ("5000x784", "0x2x3", "ax2x3"):
        with pytest.raises(ValueError, match="n x k x m"):
            common.parse_size(bad)


def test_compare_products_script_prints_the_figures(capsys):
    script = load_script("compare_products")
    status = script.main(["--size", "64x48x40", "--baselines"])
    out = capsys.readouterr().out
    assert status == 0, out
    for expected in ("maxplus", "tropical-gemm", "numpy", "torch", "L1 roof", "G pairs/s"):
        assert expected in out
    assert "DIFFERENT" not in out
    assert re.search(r"ours / tropical-gemm throughput: \d+\.\d\dx", out)


def test_compare_products_script_refuses_few_repeats():
    script = load_script("compare_products")
    with pytest.raises(SystemExit):
        script.parse_args(["--repeats", "3"])


# ------------------------------------------------------------------ audit_syncs.py


def test_audit_syncs_script_prints_a_row_per_step_size_and_start(capsys):
    script = load_script("audit_syncs")
    argv = ["--dataset", "iris", "--sizes", "16,8", "--lr", "0.01", "0.001", "--after", "0", "2"]
    assert script.main([*argv, "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "synced  reached  needed" in out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [(row[0], row[1]) for row in rows] == [("0.01", "0"), ("0.01", "2"),
                                                  ("0.001", "0"), ("0.001", "2")]  # fmt: skip
    assert all(float(row[2]) >= float(row[4]) for row in rows)  # synced >= needed


@pytest.mark.parametrize("argv", [["--sizes", "512"], ["--steps", "0"], ["--lr", "0"]])
def test_audit_syncs_script_refuses_bad_arguments(argv):
    with pytest.raises(SystemExit):
        load_script("audit_syncs").parse_args(argv)


# ------------------------------------------------------------ compare_training.py


def test_compare_training_script_prints_the_figures(capsys, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("tropical_gemm")
    script = load_script("compare_training")
    document_path = tmp_path / "training.json"
    argv = ["--dataset", "iris", "--sizes", "16,8", "--lr", "0.01", "0.001", "--steps", "3"]
    argv += ["--after", "0", "2"]
    status = script.main([*argv, "--warmup", "1", "--no-memory", "--json", str(document_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    for expected in (
        "sparse",
        "dense",
        "torch_tropical_gemm",
        "torch_plain",
        "time ratio",
        "FLOP ratio",
        "realised share",
        ">= 100x",
        ">= 1000x",
        "lr = 0.01\n",
        "lr = 0.001\n",
        "sparse state",
        "Linear(4→16) MinPlus(16→8) MaxPlus(8→3)",
        "from the iterate after 2 sparse steps",
    ):
        assert expected in out, expected
    document = json.loads(document_path.read_text())
    assert [run["config"]["lr"] for run in document["runs"]] == [0.01, 0.01, 0.001, 0.001]
    assert [run["config"]["after"] for run in document["runs"]] == [0, 2, 0, 2]
    assert document["targets"] == {"torch_tropical_gemm": 100.0, "torch_plain": 1000.0}
    assert document["memory"] is None


def test_compare_training_defaults_are_the_reference_configuration():
    args = load_script("compare_training").parse_args([])
    assert (args.dataset, args.sizes, args.dtype) == ("mnist5k", (512, 128), "float32")
    assert args.lr == (0.01, 0.001, 0.0001) and args.after == [0]
    quick = load_script("compare_training").parse_args(["--quick"])
    assert quick.steps < args.steps and quick.max_seconds < args.max_seconds


@pytest.mark.parametrize(
    "argv",
    [["--sizes", "512"], ["--sizes", "a,b"], ["--steps", "0"], ["--lr", "-1"], ["--after", "-1"]],
)
def test_compare_training_script_refuses_bad_arguments(argv):
    with pytest.raises(SystemExit):
        load_script("compare_training").parse_args(argv)


def test_training_configurations_start_small_and_include_the_reference():
    names = list(common.TRAINING_CONFIGS)
    assert names[0].startswith("iris") and common.TRAINING_REFERENCE in names
    X, y, sizes = common.training_problem(common.TRAINING_REFERENCE)
    assert X.shape == (5000, 784) and sizes == (512, 128) and 0 <= X.min() and X.max() <= 1
    with pytest.raises(ValueError, match="training configuration"):
        common.training_problem("mnist-1-2-3")


# ------------------------------------------------------------------------ asv config


@pytest.fixture(scope="module")
def asv_conf():
    return json.loads((BENCH_DIR / "asv.conf.json").read_text(encoding="utf-8"))


def test_asv_conf_has_what_asv_needs(asv_conf):
    for key in (
        "version",
        "project",
        "repo",
        "branches",
        "environment_type",
        "benchmark_dir",
        "env_dir",
        "results_dir",
        "html_dir",
        "build_command",
        "install_command",
    ):
        assert key in asv_conf, key
    assert asv_conf["version"] == 1
    assert (BENCH_DIR / asv_conf["repo"]).resolve() == ROOT
    assert (BENCH_DIR / asv_conf["benchmark_dir"]).resolve() == SUITE_DIR
    assert (BENCH_DIR / asv_conf["html_dir"]).resolve() == ROOT / "build" / "asv-html"
    # Build only our wheel (otherwise "Found multiple wheels ... Cannot decide").
    assert any("--no-deps" in command for command in asv_conf["build_command"])


def test_asv_history_environments_pin_the_cpu_torch(asv_conf):
    install = " ".join(asv_conf["install_command"])
    pinned = re.search(r'TORCH = "(torch==[\d.]+)"', (ROOT / "noxfile.py").read_text())
    assert pinned, "noxfile.py pins TORCH"
    assert pinned.group(1) in install
    assert "{wheel_file}[bench]" in install


def test_asv_outputs_are_ignored_by_git(asv_conf):
    paths = [
        str((BENCH_DIR / asv_conf[key]).resolve().relative_to(ROOT) / "x")
        for key in ("env_dir", "results_dir", "html_dir")
    ]
    done = subprocess.run(
        ["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert sorted(done.stdout.split()) == sorted(paths)


# ------------------------------------------------------------------------ run_asv.py


@pytest.fixture(scope="module")
def run_asv():
    return load_script("run_asv")


def test_run_asv_plans(run_asv):
    assert run_asv.parse_args([]) == run_asv.Plan()
    assert run_asv.parse_args(["--quick"]) == run_asv.Plan(quick=True)
    assert run_asv.parse_args(["--quick", "--bench", "Products"]) == run_asv.Plan(
        asv_args=["--bench", "Products"], quick=True
    )
    assert run_asv.parse_args(["continuous", "main", "HEAD"]) == run_asv.Plan(
        asv_command="continuous", asv_args=["main", "HEAD"]
    )


def test_run_asv_help(run_asv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_asv.parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_run_asv_hands_commands_to_asv_with_the_config(run_asv, monkeypatch):
    calls = []
    monkeypatch.setattr(run_asv, "require_asv", lambda: None)
    monkeypatch.setattr(
        run_asv.subprocess,
        "run",
        lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""),
    )
    assert run_asv.main(["compare", "abc", "def"]) == 0
    assert calls == [
        [sys.executable, "-m", "asv", "compare", "--config", str(run_asv.CONFIG), "abc", "def"]
    ]


# --------------------------------------------------------------- offline dashboard


@pytest.fixture(scope="module")
def offline():
    return load_script("offline_dashboard")


@pytest.fixture(scope="module")
def asv_index_html():
    import asv

    return (Path(asv.__file__).parent / "www" / "index.html").read_text(encoding="utf-8")


def test_every_cdn_file_of_asv_is_vendored(offline, asv_index_html):
    urls = offline.cdn_urls(asv_index_html)
    assert len(urls) >= 9
    unknown = [url for url in urls if url.rsplit("/", 1)[-1] not in offline.VENDORED]
    assert unknown == []


def test_rewrite_points_at_local_files_without_integrity(offline, asv_index_html):
    urls = offline.cdn_urls(asv_index_html)
    local = {url: f"vendor/{i}.js" for i, url in enumerate(urls)}
    page = offline.rewrite_page(asv_index_html, local)
    assert offline.cdn_urls(page) == []
    assert "integrity=" not in page and "crossorigin=" not in page
    assert all(path in page for path in local.values())
    assert 'src="asv.js"' in page  # asv's own files untouched


def test_vendoring_without_npm_fails_clearly(offline, tmp_path, monkeypatch):
    monkeypatch.setattr(offline.shutil, "which", lambda name: None)
    with pytest.raises(offline.VendoringError, match="npm was not found"):
        offline.fetch_package("jquery@3.3.1", tmp_path)


def test_vendoring_uses_the_cache(offline, tmp_path, monkeypatch, asv_index_html):
    monkeypatch.setattr(offline.shutil, "which", lambda name: None)  # no network needed
    for name, wanted in offline.VENDORED.items():
        package = tmp_path / "cache" / wanted.package / "package"
        for relative in (wanted.path, *wanted.extra):
            target = package / relative
            if relative in wanted.extra:
                target.mkdir(parents=True, exist_ok=True)
                (target / "glyph.woff").write_text("font")
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f"/* {name} */")
        (package / "package.json").write_text("{}")
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text(asv_index_html)
    assert offline.vendor_dashboard(html, tmp_path / "cache") == []
    page = (html / "index.html").read_text()
    assert offline.cdn_urls(page) == []
    assert (html / "vendor/bootstrap/dist/fonts/glyph.woff").exists()
    for src in re.findall(r'(?:src|href)="(vendor/[^"]+)"', page):
        assert (html / src).is_file(), src


def test_first_params_reads_both_asv_forms():
    assert first_params([["a", "b"], [1, 2]]) == ("a", 1)
    assert first_params(["x", "y"]) == ("x",)
    assert first_params([]) == ()
