"""Run the asv benchmark suite and publish its dashboard (what ``nox -s bench`` calls).

Run it from the repository root, in an environment where this checkout is installed
(``pip install -e ".[bench]"`` with the CPU ``torch==2.13.0``)::

    python benchmarks/run_asv.py                  # the suite on this commit -> build/asv-html/
    python benchmarks/run_asv.py --quick          # every benchmark once (a smoke run), published
    python benchmarks/run_asv.py --bench Products # other options go to `asv run`
    python benchmarks/run_asv.py continuous main HEAD   # any asv command, with our config
    python benchmarks/run_asv.py publish          # republish (and vendor) the dashboard

Without a command it runs, with ``benchmarks/asv.conf.json``:

1. ``asv machine --yes`` (describes this machine in ``~/.asv-machine.json``; idempotent);
2. ``asv run --python=same --set-commit-hash <HEAD>``: the suite in *this* environment,
   measuring the installed (editable: working-tree) code, recorded against ``HEAD``
   (without ``--set-commit-hash`` asv records nothing); results go to ``.asv/results/``;
3. ``asv publish`` to ``build/asv-html/``;
4. makes the dashboard work offline: its JavaScript (jQuery, flot, Bootstrap, ...) is
   fetched once from the npm registry with ``npm pack`` into ``build/asv-vendor-cache/``
   and served from ``build/asv-html/vendor/`` (see ``offline_dashboard.py``).

Serve the dashboard over HTTP (a browser refuses it as ``file://``):
``python -m http.server -d build/asv-html`` or ``python benchmarks/run_asv.py preview``.

When the first argument is an asv command (no leading ``-``), the arguments go to asv
unchanged, with ``--config benchmarks/asv.conf.json`` added: ``continuous main HEAD``
runs ``asv continuous main HEAD``, which builds each commit in its own virtualenv under
``.asv/env/`` (a wheel of the checkout only, then ``torch==2.13.0`` and the wheel's
``[bench]`` extras, see the config). After ``publish`` the dashboard is vendored too.

Exit status: asv's (non-zero when a benchmark failed; the dashboard is still
published), or 1 when the dashboard could not be made offline-capable (npm missing or
the registry unreachable: the published dashboard then loads its scripts from CDNs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "benchmarks" / "asv.conf.json"
HTML_DIR = ROOT / "build" / "asv-html"
VENDOR_CACHE = ROOT / "build" / "asv-vendor-cache"


@dataclass
class Plan:
    """What to do: run the suite (``asv_command`` None) or hand a command to asv."""

    asv_command: str | None = None
    asv_args: list[str] = field(default_factory=list)  # after the command / for `asv run`
    quick: bool = False


def parse_args(argv: list[str]) -> Plan:
    """Split the command line into a :class:`Plan` (``--help`` exits, like argparse)."""
    if argv and not argv[0].startswith("-"):
        return Plan(asv_command=argv[0], asv_args=list(argv[1:]))
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run_asv.py",
        description=__doc__.split("\n\n")[0],
        epilog="Other options are passed to `asv run`; a first argument without a leading "
        "'-' is an asv command run with this project's config (see the module docstring).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="run every benchmark once (asv run --quick)"
    )
    known, rest = parser.parse_known_args(argv)
    return Plan(asv_args=rest, quick=known.quick)


def asv(*args: str, quiet: bool = False) -> int:
    """Run ``python -m asv COMMAND --config benchmarks/asv.conf.json ARGS`` from the root.

    ``quiet`` shows the command's output only when it fails.
    """
    command, *rest = args
    cmd = [sys.executable, "-m", "asv", command, "--config", os.fspath(CONFIG), *rest]
    print("+", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=ROOT, check=False, capture_output=quiet, text=True)
    if quiet and done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
    return done.returncode


def head_commit() -> str:
    """The hash of ``HEAD`` (asv records the results against it)."""
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(
            f"run_asv: asv needs a git repository with a commit at {ROOT} "
            f"(`git rev-parse HEAD` failed: {done.stderr.strip()})"
        )
    return done.stdout.strip()


def warn_if_dirty() -> None:
    """Say so when tracked files differ from HEAD: their results are recorded as HEAD's."""
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.stdout.strip():
        print(
            "run_asv: warning: the working tree has uncommitted changes; the results measure "
            "the working tree but are recorded against HEAD",
            file=sys.stderr,
        )


def require_asv() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asv", "--version"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(
            f"run_asv: asv is not installed for {sys.executable}; "
            'install the checkout with `pip install -e ".[bench]"` (or run `nox -s bench`)'
        )


def publish() -> int:
    """``asv publish`` to build/asv-html/, then vendor its JavaScript for offline use."""
    status = asv("publish")
    if status != 0:
        return status
    return make_offline()


def make_offline() -> int:
    sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))
    from offline_dashboard import VendoringError, vendor_dashboard

    try:
        left = vendor_dashboard(HTML_DIR, VENDOR_CACHE)
    except VendoringError as exc:
        print(
            f"run_asv: the dashboard in {HTML_DIR} is published but NOT offline-capable: "
            f"{exc}.\nIt loads its JavaScript from CDNs (needs internet). Fix that and run "
            "`python benchmarks/run_asv.py publish`.",
            file=sys.stderr,
        )
        return 1
    if left:
        print(f"run_asv: warning: still loaded from the web: {', '.join(left)}", file=sys.stderr)
    print(f"run_asv: dashboard in {HTML_DIR} (serve it: python -m http.server -d {HTML_DIR})")
    return 0


def run_suite(plan: Plan) -> int:
    """Machine file, the suite on HEAD in this environment, publish, vendor."""
    commit = head_commit()
    warn_if_dirty()
    status = asv("machine", "--yes", quiet=True)
    if status != 0:
        return status
    run_args = ["--python=same", "--set-commit-hash", commit, "--show-stderr"]
    if plan.quick:
        run_args.append("--quick")
    run_status = asv("run", *run_args, *plan.asv_args)
    publish_status = publish()
    return run_status or publish_status


def main(argv: list[str] | None = None) -> int:
    plan = parse_args(sys.argv[1:] if argv is None else argv)
    require_asv()
    if plan.asv_command is None:
        return run_suite(plan)
    status = asv(plan.asv_command, *plan.asv_args)
    if plan.asv_command == "publish" and status == 0:
        status = make_offline()
    return status


if __name__ == "__main__":
    sys.exit(main())
