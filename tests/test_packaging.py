"""Packaging and source checks: environment.yml and pyproject.toml list the same
packages, numba's caches follow the compiled sources, and the kernels avoid a numba
miscompile."""

import ast
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip", "nox"}  # nox drives the sessions; pyproject need not list it
OPTIONAL_GPU = {"cupy-cuda12x", "cupy-cuda13x"}  # conda users install cupy for their CUDA by hand


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def pyproject_packages() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs += extra
    return {name_of(r) for r in reqs} - {"maxplus"} - OPTIONAL_GPU


def environment_packages() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {name_of(r) for r in dep["pip"] if not r.startswith("-e")}
        else:
            names.add(CONDA_TO_PYPI.get(name_of(dep), name_of(dep)))
    return names - NOT_PACKAGES


def test_environment_yml_matches_pyproject():
    missing = pyproject_packages() - environment_packages()
    extra = environment_packages() - pyproject_packages()
    assert not missing, f"in pyproject.toml but not environment.yml: {sorted(missing)}"
    assert not extra, f"in environment.yml but not pyproject.toml: {sorted(extra)}"


def test_ci_runs_the_readme_test_command():
    assert "nox -s tests" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "nox -s tests" in readme and "nox -s book" in readme


def test_numba_caches_are_cleared_when_a_compiled_source_changes(tmp_path):
    """numba keys a cached kernel on its own file only; the guard clears the caches of
    every folder when any file with compiled code changes, and only then."""
    from maxplus.kernels.cache_guard import clear_stale_caches

    kernels, package = tmp_path / "kernels", tmp_path / "package"
    for folder in (kernels, package):
        (folder / "__pycache__").mkdir(parents=True)
    helper, plain, user = kernels / "helper.py", kernels / "plain.py", package / "user.py"
    helper.write_text("@nb.njit(inline='always')\ndef f(x):\n    return x\n")
    plain.write_text("X = 1\n")
    user.write_text("@nb.njit(cache=True)\ndef g(x):\n    return f(x)\n")
    caches = [kernels / "__pycache__" / "helper.f-1.py311.nbi",
              kernels / "__pycache__" / "helper.f-1.py311.1.nbc",
              package / "__pycache__" / "user.g-1.py311.nbi"]  # fmt: skip
    bytecode = package / "__pycache__" / "user.cpython-311.pyc"

    def fill():
        for path in [*caches, bytecode]:
            path.write_bytes(b"cached")

    sources, folders = [helper, user], [kernels / "__pycache__", package / "__pycache__"]
    fill()
    assert clear_stale_caches(sources, folders)  # no digest stored yet
    assert not any(path.exists() for path in caches) and bytecode.exists()
    fill()
    assert not clear_stale_caches(sources, folders)  # nothing changed
    plain.write_text("X = 2\n")  # not a compiled source
    assert not clear_stale_caches(sources, folders)
    assert all(path.exists() for path in caches)
    helper.write_text("@nb.njit(inline='always')\ndef f(x):\n    return -x\n")
    assert clear_stale_caches(sources, folders)  # the user's cache inlined the old helper
    assert not any(path.exists() for path in caches) and bytecode.exists()


def test_the_cache_guard_digests_every_module_with_compiled_code():
    """Every package module with numba-compiled code is among the guard's sources."""
    import maxplus
    from maxplus.kernels.cache_guard import compiled_sources

    package = Path(maxplus.__file__).parent
    marks = ("njit(", "@intrinsic", "@uncounted")
    compiled = {
        path
        for path in [*package.glob("*.py"), *(package / "kernels").glob("*.py")]
        if any(mark in path.read_text("utf-8") for mark in marks)
    }
    assert compiled <= set(compiled_sources(package / "kernels"))


def names_bound(target) -> int:
    """How many plain names a tuple or list target binds, nested tuples and starred
    names included (0 for any other target)."""
    if not isinstance(target, ast.Tuple | ast.List):
        return 0
    return sum(element_names(t) for t in target.elts)


def element_names(element) -> int:
    """Plain names one element of a tuple or list target binds."""
    if isinstance(element, ast.Starred):
        element = element.value
    return 1 if isinstance(element, ast.Name) else names_bound(element)


def long_targets(node) -> list:
    """The targets ``node`` unpacks from something other than a call's result: an
    assignment's (unless its value is a call), a ``for`` loop's, a comprehension's
    and a ``with`` item's."""
    if isinstance(node, ast.Assign):
        return [] if isinstance(node.value, ast.Call) else node.targets
    if isinstance(node, ast.For | ast.comprehension):
        return [node.target]
    if isinstance(node, ast.withitem) and node.optional_vars is not None:
        return [node.optional_vars]
    return []


def long_unpackings(source) -> list[int]:
    """Lines of the compiled functions in ``source`` (:func:`compiled_functions`) that
    bind more than three names at once from anything but a call's result: an
    assignment from a tuple or list display, a variable, an item or an attribute
    (``a, b, c, d = x[0], x[1], x[2], x[3]``, ``a, b, c, d = x``, nested targets such
    as ``(a, b), (c, d) = x`` included), or the target of a ``for`` loop, a
    comprehension or a ``with`` item (``for a, b, c, d in x``). ``source``: text or
    its parsed tree."""
    tree = ast.parse(source) if isinstance(source, str) else source
    lines = set()  # a nested function is walked with its outer one too
    for function in compiled_functions(tree):
        for node in ast.walk(function):
            lines.update(t.lineno for t in long_targets(node) if names_bound(t) > 3)
    return sorted(lines)


#: Decorators (their source's start) of the functions numba compiles in this package:
#: ``nb.njit``'s forms, the repair's ``uncounted``, and ``overload``, whose nested
#: implementations are compiled.
COMPILING_DECORATORS = ("nb.njit", "uncounted", "overload")


def compiled_functions(tree) -> list:
    """The functions of ``tree`` numba compiles: those with a
    :data:`COMPILING_DECORATORS` decorator (the functions nested in them are walked
    with them)."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).startswith(COMPILING_DECORATORS) for d in node.decorator_list)
    ]


def test_long_unpackings_are_found():
    source = (
        "A, B, C, D = 0, 1, 2, 3\n"
        "@nb.njit(cache=True)\n"
        "def f(x, st):\n"
        "    a, b, c, d = x[0], x[1], x[2], x[3]\n"  # 4
        "    a, b, c, d = st\n"  # 5
        "    a, b, c = st\n"
        "    x[0], x[1], x[2], x[3] = a, b, c, d\n"
        "    a, b, c, d = g(x)\n"
        "    [a, b, c, d] = [x, x, x, x]\n"  # 9
        "    e = a, b, c, d = st[0]\n"  # 10
        "    a, b, c, d = st.arrays\n"  # 11
        "    for a, b, c, d in st:\n"  # 12
        "        pass\n"
        "    for a, b, c in st:\n"
        "        pass\n"
        "    def g(y):\n"
        "        a, b, c, d = y\n"  # 17
        "    (a, b), (c, d) = st\n"  # 18
        "    a, *b, c, d = st\n"  # 19
        "    (a, b), c = st\n"
        "    e = [a for a, b, c, d in st]\n"  # 21
        "    e = {a: b for (a, b), c in st}\n"
        "    with st as (a, b, c, d):\n"  # 23
        "        pass\n"
        "    with st as (a, b, c), st as e:\n"
        "        pass\n"
        "def python(st):\n"
        "    a, b, c, d = st\n"
        "@uncounted\n"
        "def helper(st):\n"
        "    a, b, c, d = st\n"  # 31
        "@overload(python)\n"
        "def _python(st):\n"
        "    def impl(st):\n"
        "        for i, (a, b, c) in st:\n"  # 35
        "            pass\n"
        "    return impl\n"
    )
    assert long_unpackings(source) == [4, 5, 9, 10, 11, 12, 17, 18, 19, 21, 23, 31, 35]


def test_compiled_code_binds_at_most_three_names_per_statement():
    """numba's alias analysis does not follow a tuple unpacking (CPython compiles one of
    more than three names through a tuple), and in a helper inlined into a parallel
    loop its dead-code pass then drops writes to the arrays so bound: see the comment
    on the state tuple in ``kernels/cpu_repair.py``. Every numba-compiled function of
    the package is held to it. (Unpacking a call's result is allowed: the kernels'
    helpers that return more than three values return scalars.)"""
    from maxplus.kernels.cache_guard import compiled_sources

    trees = {path.name: ast.parse(path.read_text("utf-8"))
             for path in compiled_sources(ROOT / "maxplus" / "kernels")}  # fmt: skip
    found = {name: lines for name, tree in trees.items() if (lines := long_unpackings(tree))}
    assert found == {}
    # every jit-decorated function is one the check reads, whatever the spelling
    unseen = [
        f"{name}:{node.name}"
        for name, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any("jit" in ast.unparse(d) for d in node.decorator_list)
        and node not in compiled_functions(tree)
    ]
    assert unseen == []
