"""The chapters run, round-trip through Jupytext, and the book builds offline.

Chapter execution and the book builds start real kernels; they are marked ``slow`` but
run in the default suite (chapters in quick mode, each well under a minute).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

from maxplus import book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS_DIR = ROOT / "chapters"
CHAPTERS = book.chapter_files(CHAPTERS_DIR)
CELL_TIMEOUT = 120  # seconds per cell; a quick-mode chapter takes well under a minute

HEADER = """\
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
"""


def write_chapter(path: Path, *code_cells: str) -> Path:
    cells = "".join(f"\n# %%\n{code}\n" for code in code_cells)
    path.write_text(HEADER + "\n# %% [markdown]\n# # A test chapter\n" + cells)
    return path


def toc_files(toc_path: Path) -> list[str]:
    toc = yaml.safe_load(toc_path.read_text())
    return [entry["file"] for entry in toc.get("chapters", [])]


# ------------------------------------------------------------------ the chapter files


def test_there_are_chapters_and_the_toc_lists_exactly_them():
    assert CHAPTERS and CHAPTERS[0].name == "01_semiring.py"
    listed = toc_files(CHAPTERS_DIR / "_toc.yml")
    assert listed == [p.stem for p in CHAPTERS], "chapters/_toc.yml and chapters/NN_*.py differ"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_round_trips_through_jupytext(chapter):
    text = chapter.read_text()
    nb = jupytext.reads(text, fmt="py:percent")
    representation = nb.metadata["jupytext"].get("text_representation", {})
    assert "jupytext_version" not in representation, "strip jupytext_version from the header"
    assert not re.search(r"^#\s+jupytext_version:", text, re.MULTILINE)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["jupytext"]["formats"] == "py:percent"
    assert jupytext.writes(nb, fmt="py:percent") == text


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_executes_in_quick_mode(chapter):
    nb = book.execute_chapter(chapter, quick=True, timeout=CELL_TIMEOUT)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "every code cell ran"


# ------------------------------------------------------------------ the builder's pieces


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("0", False), ("no", False), ("1", True), ("TRUE", True),
     (" yes ", True), ("on", True)],
)
def test_quick_mode_reads_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(book.QUICK_ENV, raising=False)
    else:
        monkeypatch.setenv(book.QUICK_ENV, value)
    assert book.quick_mode() is expected


def test_quick_mode_refuses_an_unknown_value(monkeypatch):
    monkeypatch.setenv(book.QUICK_ENV, "maybe")
    with pytest.raises(ValueError, match="MAXPLUS_QUICK"):
        book.quick_mode()


def test_kernel_environment_forwards_quick_mode_and_keeps_the_inline_backend():
    env = book.kernel_environment(True, base={"MPLBACKEND": "Agg", "JUPYTER_PATH": "/x"})
    assert env[book.QUICK_ENV] == "1" and "MPLBACKEND" not in env
    first, *rest = env["JUPYTER_PATH"].split(":")
    assert first.endswith("share/jupyter") and rest == ["/x"]
    assert book.kernel_environment(False, base={})[book.QUICK_ENV] == "0"


def test_remote_assets_are_found_and_local_ones_pass(tmp_path):
    (tmp_path / "ok.html").write_text(
        '<link rel="stylesheet" href="_static/a.css"><script src="_static/b.js"></script>'
        '<a href="https://example.org">a link is fine</a>'
        '<script>var doc = "see https://example.org/page";</script>'
    )
    assert book.remote_assets(tmp_path) == []
    (tmp_path / "bad.html").write_text(
        '<script src="https://cdn.example.org/mathjax.js"></script>'
        '<link href="//fonts.googleapis.com/css?family=X" rel="stylesheet">'
        '<script>const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"</script>'
    )
    (tmp_path / "style.css").write_text('@import "https://fonts.example.org/font.css";')
    found = book.remote_assets(tmp_path)
    assert len(found) == 4
    assert any("cdn.example.org" in f for f in found) and any("unpkg" in f for f in found)
    assert any("style.css" in f for f in found) and any("googleapis" in f for f in found)


def test_notebook_problems_report_errors_and_stderr():
    nb = {"cells": [
        {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout",
                                           "text": "ok"}]},
        {"cell_type": "code", "outputs": [{"output_type": "error", "ename": "ValueError",
                                           "evalue": "bad", "traceback": []}]},
        {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stderr",
                                           "text": "UserWarning: careful"}]},
    ]}
    problems = book.notebook_problems(nb)
    assert len(problems) == 2
    assert "ValueError" in problems[0] and "UserWarning" in problems[1]


def test_output_folder_is_only_replaced_when_it_is_an_earlier_book(tmp_path):
    source = tmp_path / "html"
    source.mkdir()
    (source / "index.html").write_text("new")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(book.BookBuildError, match="did not write"):
        book.replace_folder(source, foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
    out = tmp_path / "book"
    book.replace_folder(source, out)
    (source / "index.html").write_text("newer")
    book.replace_folder(source, out)  # an earlier book: replaced
    assert (out / "index.html").read_text() == "newer"


def test_only_selects_chapters_by_name_or_number(tmp_path):
    for name in ("01_alpha", "02_beta", "02_gamma"):
        write_chapter(tmp_path / f"{name}.py", "x = 1")
    assert book.select_chapters(tmp_path, ["01", "02_gamma.py", "01_alpha"]) == [
        "01_alpha", "02_gamma"]
    with pytest.raises(book.BookBuildError, match="'02' matches 2 chapters"):
        book.select_chapters(tmp_path, ["02"])
    with pytest.raises(book.BookBuildError, match="'09' matches 0 chapters"):
        book.select_chapters(tmp_path, ["09"])


@pytest.mark.slow
def test_a_raising_chapter_fails_execution(tmp_path):
    chapter = write_chapter(tmp_path / "01_bad.py", "x = 1", "raise RuntimeError('boom')")
    with pytest.raises(book.BookBuildError, match="boom"):
        book.execute_chapter(chapter, timeout=60)


@pytest.mark.slow
def test_kernel_gets_quick_mode_this_interpreter_and_the_inline_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # would leave the pages without figures
    chapter = write_chapter(
        tmp_path / "01_quick.py",
        "from maxplus.book import quick_mode\nassert quick_mode()\nimport sys\n"
        "import matplotlib\nprint(sys.prefix, matplotlib.get_backend())",
    )
    nb = book.execute_chapter(chapter, quick=True, timeout=60)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    prefix, backend = printed.split()
    assert prefix == sys.prefix and "inline" in backend


# ------------------------------------------------------------------ end-to-end builds


def small_book(tmp_path: Path, chapter: Path) -> tuple[Path, Path]:
    """A chapters folder with the real config and index and a single chapter."""
    src = tmp_path / "chapters"
    src.mkdir()
    for name in ("_config.yml", "index.md"):
        shutil.copy(CHAPTERS_DIR / name, src / name)
    shutil.copy(chapter, src / chapter.name)
    toc = src / "_toc.yml"
    toc.write_text(f"format: jb-book\nroot: index\nchapters:\n  - file: {chapter.stem}\n")
    return src, toc


@pytest.mark.slow
def test_the_book_builds_offline_with_math_and_figures(tmp_path):
    # chapter 1 only: the real toc would run every chapter, too slow for the suite
    out = tmp_path / "build" / "book"
    src = CHAPTERS_DIR
    before = sorted(p.name for p in src.iterdir())
    index = book.build_book(out, chapters=src, only=["01"], quick=True, verbose=False)
    assert sorted(p.name for p in src.iterdir()) == before, "the build wrote into chapters/"

    assert index == out.resolve() / "index.html" and index.is_file()
    assert "01_semiring.html" in index.read_text()  # the chapter list on the front page
    page = (out / "01_semiring.html").read_text()
    mathjax = re.search(r'<script[^>]*src="(_static/mathjax/[^"]+)"', page)
    assert mathjax and (out / mathjax.group(1)).is_file(), "MathJax is bundled locally"
    assert re.search(r'class="math[^"]*"', page) and r"\otimes" in page
    assert 'id="equation-eq-product"' in page  # a numbered, referable equation
    images = re.findall(r'<img[^>]*src="([^"]+\.(?:png|svg))"', page)
    assert images and all((out / src_).is_file() for src_ in images)
    assert 'rel="next"' in (out / "index.html").read_text()  # prev/next navigation
    assert (out / "search.html").is_file() and (out / "searchindex.js").is_file()
    assert book.remote_assets(out) == []
    executed = list((tmp_path / "build" / f"jupyter-book-{out.name}").rglob("*.ipynb"))
    assert executed and all(book.notebook_problems(json.loads(p.read_text())) == []
                            for p in executed)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cell", "reason"),
    [("raise RuntimeError('boom')", "RuntimeError: boom"),
     ("import sys; print('oops', file=sys.stderr)", "stderr was found in the cell outputs")],
)
def test_the_build_fails_on_a_broken_chapter(tmp_path, cell, reason):
    chapter = write_chapter(tmp_path / "01_broken.py", "x = 1", cell)
    src, toc = small_book(tmp_path, chapter)
    out = tmp_path / "out" / "book"
    with pytest.raises(book.BookBuildError, match="jupyter-book failed") as failure:
        book.build_book(out, chapters=src, toc=toc, quick=True, verbose=False)
    assert reason in str(failure.value)
    assert not (out / "index.html").exists()
