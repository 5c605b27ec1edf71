"""Every workflow of the project is a nox session.

    nox -s tests              # the whole test suite (what CI runs)
    nox -s book               # execute the chapters and render the book to build/book/
    nox -s bench              # asv suite on this commit, dashboard in build/asv-html/
    nox -s bench -- --quick   # smoke run; other arguments after -- go to asv
    nox -s reproduce          # the paper's experiments: build/reproduce/
    nox -s lint               # ruff

Reuse environments with ``nox -r``. numba's compiled kernels are cached beside the
sources (the sessions install this checkout editable), and those caches are cleared
when any source with compiled code changes (``maxplus.kernels.cache_guard``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
BUILD = ROOT / "build"

# The CPU build of PyTorch. An unpinned `torch` pulls a multi-GB CUDA build.
TORCH = "torch==2.13.0"

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "virtualenv"


def install(session: nox.Session, extras: str) -> None:
    """Install the pinned CPU torch, then this checkout (editable) with ``extras``."""
    session.install(TORCH)
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (CPU; GPU tests skip without a GPU)."""
    install(session, "test")
    session.run("python", "-m", "pytest", *(session.posargs or ["-q"]))


@nox.session
def book(session: nox.Session) -> None:
    """Execute every chapter in a fresh kernel and render the static HTML book."""
    install(session, "book")
    session.run("python", "-m", "maxplus.book", "--out", str(BUILD / "book"), *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run the asv suite on the current commit and publish the dashboard.

    ``nox -s bench -- --quick`` runs every benchmark once; any other arguments are
    handed to asv unchanged (``nox -s bench -- continuous main HEAD``).
    """
    install(session, "bench")
    session.run("python", "benchmarks/run_asv.py", *session.posargs)


@nox.session
def reproduce(session: nox.Session) -> None:
    """Run the paper's experiments (``-- --quick`` for the short version)."""
    install(session, "book")
    args = session.posargs or ["--out", str(BUILD / "reproduce")]
    session.run("python", "-m", "maxplus", "reproduce", *args)


@nox.session
def lint(session: nox.Session) -> None:
    """Static checks with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session(venv_backend="none")
def gpu(session: nox.Session) -> None:
    """On a machine with an NVIDIA GPU: the gpu tests and the GPU figures.

    Runs in the current Python environment (GPU machines are often offline and have
    CuPy installed for their CUDA): ``pip install -e ".[test]" cupy-cuda12x`` first.
    """
    env = {"CUPY_CACHE_DIR": os.fspath(BUILD / "cupy-cache")}
    # The record goes where chapter 7 reads it (and where it can be committed).
    record = ROOT / "benchmarks" / "records" / "gpu_check.json"
    args = session.posargs or ["--json", os.fspath(record)]
    session.run("python", "benchmarks/gpu_check.py", *args, env=env)
