"""Build the book: execute every chapter in a fresh kernel and render static HTML.

    python -m maxplus.book --out build/book            # full experiments
    python -m maxplus.book --out build/book --quick    # MAXPLUS_QUICK=1: small experiments
    python -m maxplus.book --out build/book --quick --only 03   # one chapter, while writing it

The chapters are Jupytext percent scripts ``chapters/NN_name.py``, rendered by Jupyter
Book 1.x (configuration in ``chapters/_config.yml``, chapter list in ``chapters/_toc.yml``).
Jupyter Book works in ``<out>/../jupyter-book-<out name>/`` (never in the source tree,
and separate for every output folder, so two builds can run side by side); its HTML is
then checked and copied to ``<out>``. The build fails (:class:`BookBuildError`, exit
status 1) when a chapter raises, when an executed chapter holds an error or a stderr
output, when Sphinx warns, or when a page would load a script or stylesheet from the web.

Chapters import only :func:`quick_mode` from here, so this module imports nothing heavy
at the top level.
"""

from __future__ import annotations

import argparse
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Environment variable that asks the chapters for their small (quick) experiments.
QUICK_ENV = "MAXPLUS_QUICK"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}

#: Chapter files: two digits, an underscore, a name.
CHAPTER_GLOB = "[0-9][0-9]_*.py"
#: Written into the output folder, so that a rebuild may replace a folder it made itself.
MARKER = ".maxplus-book"
REMOTE_URL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
INLINE_REMOTE = re.compile(
    r"""["'`]((?:https?:)?//[^"'`\s]+?\.(?:js|mjs|css)(?:\?[^"'`\s]*)?)["'`]"""
)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
CSS_REMOTE_URL = re.compile(r"(url\(\s*['\"]?|@import\s+['\"])(https?:)?//", re.IGNORECASE)


class BookBuildError(RuntimeError):
    """The book could not be built, or the built book breaks one of its rules."""


# ---------------------------------------------------------------------------- quick mode


def quick_mode() -> bool:
    """True when ``MAXPLUS_QUICK`` asks for the small experiments (``1``/``true``/``yes``/``on``).

    Chapters call this to shrink their experiments so that each runs in under a minute.
    """
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(
        f"environment variable {QUICK_ENV}={os.environ[QUICK_ENV]!r} is not understood; "
        f"use one of {sorted(TRUE_WORDS)} or {sorted(FALSE_WORDS - {''})}"
    )


def use_book_style() -> None:
    """Matplotlib settings shared by the chapters (sharper figures, lighter axes)."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": 120,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.frameon": False,
    })


# ---------------------------------------------------------------------------- locations


def default_chapters_dir() -> Path:
    """``chapters/`` beside the package (a checkout), else ``./chapters``."""
    beside = Path(__file__).resolve().parents[1] / "chapters"
    return beside if beside.is_dir() else Path.cwd() / "chapters"


def chapter_files(chapters_dir: Path | str | None = None) -> list[Path]:
    """The chapter scripts ``NN_name.py`` of ``chapters_dir``, in order."""
    chapters_dir = Path(chapters_dir) if chapters_dir is not None else default_chapters_dir()
    return sorted(chapters_dir.glob(CHAPTER_GLOB))


# ---------------------------------------------------------------------------- kernels


def kernel_dirs() -> list[str]:
    """Kernel specs of this interpreter's environment only (never a user-level ``python3``)."""
    return [os.path.join(sys.prefix, "share", "jupyter", "kernels")]


def kernel_environment(quick: bool, base: dict | None = None) -> dict[str, str]:
    """Environment for the builder and the kernels it starts.

    Sets ``MAXPLUS_QUICK``; puts this environment's Jupyter data first on ``JUPYTER_PATH``
    so that its ``python3`` kernel (which runs ``sys.executable``) wins over a user-level
    one; drops ``MPLBACKEND``, which would replace the kernel's inline backend and leave
    the pages without figures.
    """
    env = dict(os.environ if base is None else base)
    env[QUICK_ENV] = "1" if quick else "0"
    own = os.path.join(sys.prefix, "share", "jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (own, env.get("JUPYTER_PATH")) if p)
    env.pop("MPLBACKEND", None)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences a debugger note on stderr
    return env


def read_chapter(path: Path | str):
    """A chapter script as an ``nbformat`` notebook (Jupytext percent format)."""
    import jupytext

    return jupytext.read(Path(path), fmt="py:percent")


def execute_chapter(path: Path | str, *, quick: bool = True, timeout: int = 600):
    """Run one chapter top to bottom in a fresh ``python3`` kernel of this interpreter.

    Runs in a temporary working directory; ``timeout`` is per cell, in seconds. Returns
    the executed notebook; raises :class:`BookBuildError` when a cell raises or leaves an
    error or stderr output.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = read_chapter(path)
    ksm = KernelSpecManager(kernel_dirs=kernel_dirs())
    km = KernelManager(kernel_name="python3", kernel_spec_manager=ksm)
    with tempfile.TemporaryDirectory(prefix="maxplus-chapter-") as cwd:
        client = NotebookClient(
            nb, km=km, timeout=timeout, allow_errors=False,
            resources={"metadata": {"path": cwd}},
        )
        try:
            client.execute(env=kernel_environment(quick), cwd=cwd)
        except CellExecutionError as err:
            raise BookBuildError(f"{path.name} raised:\n{err}") from None
    problems = notebook_problems(nb)
    if problems:
        raise BookBuildError(f"{path.name}: " + "\n".join(problems))
    return nb


# ---------------------------------------------------------------------------- checks


def notebook_problems(nb) -> list[str]:
    """Error and stderr outputs left in an executed notebook (dict or ``NotebookNode``)."""
    problems = []
    for number, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {number}: error {out.get('ename')}: {out.get('evalue')}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", ""))
                problems.append(f"cell {number}: stderr output: {text.strip()[:300]}")
    return problems


class RemoteAssetFinder(html.parser.HTMLParser):
    """Collects what a page would load from another host.

    ``<script src>`` and ``<link href>`` URLs with a scheme or ``//``, and script or
    stylesheet URLs written inside inline ``<script>`` code (for example the thebe
    loader's ``THEBE_JS_URL``).
    """

    def __init__(self):
        super().__init__()
        self.remote: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        self.in_script = tag == "script"
        attr = {"script": "src", "link": "href"}.get(tag)
        for name, value in attrs:
            if name == attr and value and REMOTE_URL.match(value):
                self.remote.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script:
            for match in INLINE_REMOTE.finditer(data):
                self.remote.append(f"<script> code loads {match.group(1)!r}")


def remote_assets(html_dir: Path | str) -> list[str]:
    """Scripts, stylesheets and CSS imports/fonts of a built book loaded from the web."""
    html_dir = Path(html_dir)
    found = []
    for page in sorted(html_dir.rglob("*.html")):
        finder = RemoteAssetFinder()
        finder.feed(page.read_text(encoding="utf-8", errors="replace"))
        found += [f"{page.relative_to(html_dir)}: {tag}" for tag in finder.remote]
    for sheet in sorted(html_dir.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        for match in CSS_REMOTE_URL.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{sheet.relative_to(html_dir)}:{line}: remote url in CSS")
    return found


def html_problems(html_dir: Path | str, executed_dir: Path | str | None = None) -> list[str]:
    """Everything that makes a built book unacceptable (empty list when it is fine)."""
    html_dir = Path(html_dir)
    problems = []
    if not (html_dir / "index.html").is_file():
        problems.append(f"{html_dir / 'index.html'} is missing")
    problems += [f"loads from the web: {item}" for item in remote_assets(html_dir)]
    if executed_dir is not None and Path(executed_dir).is_dir():
        for nb_path in sorted(Path(executed_dir).rglob("*.ipynb")):
            nb = json.loads(nb_path.read_text(encoding="utf-8"))
            problems += [f"{nb_path.name}: {p}" for p in notebook_problems(nb)]
    for page in sorted(html_dir.rglob("*.html")):
        if 'class="output traceback' in page.read_text(encoding="utf-8", errors="replace"):
            problems.append(f"{page.relative_to(html_dir)}: shows a traceback")
    return problems


# ---------------------------------------------------------------------------- build


def select_chapters(chapters: Path, only: list[str]) -> list[str]:
    """Chapter stems matching ``only`` (full stems like ``02_networks`` or number prefixes)."""
    stems = [p.stem for p in chapter_files(chapters)]
    selected = []
    for wanted in only:
        wanted = Path(wanted).stem
        matches = [s for s in stems if s == wanted or s.split("_", 1)[0] == wanted]
        if len(matches) != 1:
            raise BookBuildError(
                f"--only {wanted!r} matches {len(matches)} chapters of {chapters}; "
                f"available: {', '.join(stems) or 'none'}"
            )
        selected += [m for m in matches if m not in selected]
    return selected


def jupyter_book_command(chapters: Path, work: Path, toc: Path | None) -> list[str]:
    """The ``jupyter-book build`` command line, run by this interpreter."""
    cmd = [
        sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
        "build", str(chapters), "--path-output", str(work), "--builder", "html",
        "--all", "--warningiserror", "--keep-going",
    ]
    if toc is not None:
        cmd += ["--toc", str(toc)]
    return cmd


def replace_folder(source: Path, out: Path) -> None:
    """Copy ``source`` to ``out``, replacing ``out`` only if it is empty or an earlier book."""
    if out.exists():
        if not out.is_dir():
            raise BookBuildError(f"--out {out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise BookBuildError(
                f"--out {out} is a non-empty folder that this builder did not write; "
                "refusing to replace it (choose an empty or new folder)"
            )
        shutil.rmtree(out)
    shutil.copytree(source, out)
    (out / MARKER).write_text("Built by python -m maxplus.book; safe to delete.\n")


def build_book(
    out: Path | str,
    *,
    chapters: Path | str | None = None,
    toc: Path | str | None = None,
    only: list[str] | None = None,
    work: Path | str | None = None,
    quick: bool = False,
    verbose: bool = True,
) -> Path:
    """Execute the chapters and write the static HTML book to ``out``; return ``out/index.html``.

    ``work`` is Jupyter Book's working folder (default ``<out>/../jupyter-book-<name>``), ``toc``
    an alternative table of contents (default ``chapters/_toc.yml``), ``only`` a list of
    chapter names (``"03_subgradients"`` or ``"03"``) to build alone, after the front page.
    """
    out = Path(out).resolve()
    chapters = Path(chapters).resolve() if chapters is not None else default_chapters_dir()
    work = Path(work).resolve() if work is not None else out.parent / f"jupyter-book-{out.name}"
    toc = Path(toc).resolve() if toc is not None else None
    for needed in ("_config.yml", "index.md") + (() if toc else ("_toc.yml",)):
        if not (chapters / needed).is_file():
            raise BookBuildError(f"chapters folder {chapters} has no {needed}")
    if toc is not None and not toc.is_file():
        raise BookBuildError(f"toc {toc} does not exist")
    if work == out or out in work.parents or work in out.parents:
        raise BookBuildError(f"work folder {work} and --out {out} must not contain each other")

    if only:
        if toc is not None:
            raise BookBuildError("give either toc or only, not both")
        names = select_chapters(chapters, only)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if only:
        toc = work / "_toc_only.yml"
        toc.write_text("format: jb-book\nroot: index\nchapters:\n"
                       + "".join(f"  - file: {name}\n" for name in names))
    cmd = jupyter_book_command(chapters, work, toc)
    proc = subprocess.run(
        cmd, env=kernel_environment(quick), cwd=chapters.parent,
        stdout=None if verbose else subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if proc.returncode != 0:
        tail = "" if verbose else "\n" + ANSI_ESCAPE.sub("", proc.stdout or "")[-12000:]
        raise BookBuildError(
            f"jupyter-book failed (exit status {proc.returncode}): a chapter raised or Sphinx "
            f"warned; see the log above{tail}"
        )
    html_dir = work / "_build" / "html"
    problems = html_problems(html_dir, executed_dir=work / "_build" / "jupyter_execute")
    if problems:
        raise BookBuildError("the built book is not acceptable:\n  " + "\n  ".join(problems))
    replace_folder(html_dir, out)
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maxplus.book", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("build/book"),
                        help="folder for the HTML book (default: build/book)")
    parser.add_argument("--quick", action="store_true",
                        help=f"small experiments: sets {QUICK_ENV}=1 for every chapter")
    parser.add_argument("--chapters", type=Path, default=None,
                        help="folder with _config.yml, _toc.yml and the chapters")
    parser.add_argument("--toc", type=Path, default=None,
                        help="alternative table of contents (default: <chapters>/_toc.yml)")
    parser.add_argument("--only", nargs="+", default=None, metavar="CHAPTER",
                        help="build only these chapters (e.g. 03 or 03_subgradients)")
    parser.add_argument("--work", type=Path, default=None,
                        help="Jupyter Book's working folder "
                        "(default: <out>/../jupyter-book-<name>)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        quick = args.quick or quick_mode()
        index = build_book(args.out, chapters=args.chapters, toc=args.toc, only=args.only,
                           work=args.work, quick=quick)
    except (BookBuildError, ValueError) as err:
        print(f"book build failed: {err}", file=sys.stderr)
        return 1
    mode = "quick" if quick else "full"
    print(f"book ({mode} mode) written to {index} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
