"""Compiled kernels: numba on the CPU (:mod:`.cpu_products`, :mod:`.cpu_repair`) and
CUDA on the GPU (:mod:`.gpu`). Each GPU kernel has a CPU twin with the same logic.

Importing this package first clears numba's on-disk caches of the package's compiled
code if any of its sources changed (:mod:`.cache_guard`)."""

from pathlib import Path

from .cache_guard import clear_stale_caches, compiled_sources

_KERNELS = Path(__file__).parent
_CACHES = (_KERNELS / "__pycache__", _KERNELS.parent / "__pycache__")
clear_stale_caches(compiled_sources(_KERNELS), _CACHES)
