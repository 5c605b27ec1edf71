"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

The algebra and the trainers are written once against an array namespace ``xp``
(the Python array API, through ``array_api_compat``), the way SciPy and
scikit-learn accept CuPy arrays: *array type in equals array type out*.
Hot loops dispatch to kernels chosen by the namespace (numba on the CPU, CUDA on
the GPU).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import array_api_compat
import numpy as np

BACKENDS = ("numpy", "cupy")

CUPY_INSTALL_HINT = (
    "Install CuPy for your CUDA version, e.g. `pip install cupy-cuda12x` (CUDA 12) or "
    "`pip install cupy-cuda13x` (CUDA 13), on a machine with an NVIDIA GPU and driver."
)


class BackendUnavailableError(RuntimeError):
    """A requested backend cannot run on this machine."""


def array_namespace(*arrays) -> ModuleType:
    """Namespace of the given arrays (NumPy for lists, scalars and NumPy arrays).

    Raises ``TypeError`` when arrays from different libraries are mixed.
    """
    arrays = [a for a in arrays if a is not None]
    if any(is_cupy_array(a) for a in arrays):
        return array_api_compat.array_namespace(*arrays)
    return np


def is_cupy_array(a) -> bool:
    return array_api_compat.is_cupy_array(a)


def is_numpy_namespace(xp: ModuleType) -> bool:
    return xp is np or array_api_compat.is_numpy_namespace(xp)


def namespace_name(xp: ModuleType) -> str:
    return "numpy" if is_numpy_namespace(xp) else "cupy"


def get_namespace(backend: str) -> ModuleType:
    """The array module for ``backend`` (``"numpy"`` or ``"cupy"``).

    ``"cupy"`` fails at once, with what is missing and how to install it, when
    CuPy is not installed or no GPU is visible.
    """
    if backend == "numpy":
        return np
    if backend != "cupy":
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return require_cupy()


def require_cupy() -> ModuleType:
    """Import CuPy and check that a GPU is usable; raise a clear error otherwise."""
    try:
        cp = importlib.import_module("cupy")
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise BackendUnavailableError(
            f"backend='cupy' needs CuPy, which is not installed ({exc}). {CUPY_INSTALL_HINT}"
        ) from None
    try:
        n_devices = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CuPy raises several driver error types
        raise BackendUnavailableError(
            f"backend='cupy': CuPy is installed but no CUDA device is usable ({exc}). "
            f"{CUPY_INSTALL_HINT}"
        ) from None
    if n_devices < 1:  # pragma: no cover - depends on the machine
        raise BackendUnavailableError(f"backend='cupy': no CUDA device found. {CUPY_INSTALL_HINT}")
    return cp


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        require_cupy()
    except BackendUnavailableError:
        return False
    return True


def to_numpy(a) -> np.ndarray:
    """A NumPy copy (or view) of a NumPy or CuPy array."""
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def asarray_like(a, xp: ModuleType, dtype=None):
    """``a`` as an array of namespace ``xp`` (copying between host and device if needed)."""
    if is_numpy_namespace(xp):
        return np.asarray(to_numpy(a), dtype=dtype)
    return xp.asarray(a, dtype=dtype)
