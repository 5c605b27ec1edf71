"""Compiled kernels: numba on the CPU (:mod:`.cpu_products`, :mod:`.cpu_repair`) and
CUDA on the GPU (:mod:`.gpu`). Each GPU kernel has a CPU twin with the same logic."""
