"""Clear numba's on-disk caches of this package when any of its compiled sources change.

numba keys a cached function on its own source file and bytecode only. A kernel
that inlines or calls a function of another file (most of ours: the order keys,
the prefetch, the repair's helpers inlined into the synchronisation) keeps running
the old code from its cache after that other file changes, with no error. On the
first import of :mod:`maxplus.kernels`, :func:`clear_stale_caches` compares a digest
of every package file with numba-compiled code (:func:`compiled_sources`) against
the one stored beside the caches, and deletes the caches when it differs; numba then
compiles afresh.

Only the caches numba keeps beside the sources (``__pycache__``, writable: a
checkout or an editable install) are handled. With ``NUMBA_CACHE_DIR`` set, or in a
read-only install, numba caches elsewhere and nothing is done: clear that directory
after editing the kernels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Package modules outside ``kernels/`` with numba-compiled code (a test keeps this
#: list complete).
COMPILED_MODULES = ("roof.py",)
#: The digest's file, in the first cache folder.
STAMP = "maxplus-compiled-sources.sha256"


def compiled_sources(kernels: Path) -> list[Path]:
    """The package's files with compiled code: every module of ``kernels`` and
    :data:`COMPILED_MODULES` of the package above it."""
    return sorted(kernels.glob("*.py")) + [kernels.parent / name for name in COMPILED_MODULES]


def sources_digest(files) -> str:
    """SHA-256 over the names and contents of ``files``, in order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def clear_stale_caches(sources, caches) -> bool:
    """Delete numba's cache files (``*.nbi``, ``*.nbc``) in the folders ``caches`` when
    the digest of ``sources`` is not the one stored in the first of them, and store
    the new one. Returns whether caches were cleared; caches that cannot be written
    (a read-only install) are left alone."""
    caches = [Path(cache) for cache in caches]
    stamp = caches[0] / STAMP
    digest = sources_digest(sources)
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass  # no stamp yet
    try:
        for cache in caches:
            for path in cache.glob("*.nb[ic]"):
                path.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        return False
    return True
