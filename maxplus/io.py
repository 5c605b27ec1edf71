"""Save and load models as ``.npz`` files, without pickle; plain JSON values for results.

The file holds one array per parameter (named like
:meth:`maxplus.Sequential.named_parameters`), the layer kinds and a format
version, all as plain NumPy arrays (strings as fixed-width unicode), so
``numpy.load(..., allow_pickle=False)`` reads it. Loading checks every name,
shape and dtype and rebuilds the same class (``LMM`` or ``Sequential``).
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import asdict

import numpy as np

from . import backend
from .network import LMM, Linear, Sequential, Tropical

FORMAT = "maxplus-model-1"
KINDS = ("Linear", "MaxPlus", "MinPlus")


class ModelFileError(ValueError):
    """A model file is missing pieces, malformed, or inconsistent."""


def save_model(model: Sequential, path) -> None:
    """Write ``model`` to ``path`` (``.npz``); parameters are copied to the host."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a maxplus Sequential/LMM, got {type(model).__name__}")
    arrays = {name: backend.to_numpy(a) for name, a in model.named_parameters().items()}
    arrays["__format__"] = np.array(FORMAT)
    arrays["__kinds__"] = np.array([layer.kind for layer in model.layers])
    arrays["__class__"] = np.array(type(model).__name__)
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays)


def load_model(path, backend: str = "numpy") -> Sequential:
    """Read a model written by :func:`save_model`."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path}: not a readable .npz model file ({exc})") from None
    for key in ("__format__", "__kinds__", "__class__"):
        if key not in arrays:
            raise ModelFileError(f"{path}: missing entry {key!r}; not a maxplus model file")
    if str(arrays["__format__"]) != FORMAT:
        raise ModelFileError(f"{path}: format {str(arrays['__format__'])!r}, expected {FORMAT!r}")
    kinds = [str(k) for k in arrays["__kinds__"]]
    if len(kinds) < 2 or kinds[0] != "Linear" or any(k not in KINDS[1:] for k in kinds[1:]):
        raise ModelFileError(f"{path}: invalid layer kinds {kinds}")
    expected = ["0.weight", "0.bias"] + [f"{i}.weight" for i in range(1, len(kinds))]
    names = sorted(k for k in arrays if not k.startswith("__"))
    if names != sorted(expected):
        raise ModelFileError(f"{path}: parameters {names}, expected {sorted(expected)}")
    dtypes = {arrays[name].dtype for name in expected}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        raise ModelFileError(
            f"{path}: parameters must share one float32/float64 dtype, got {dtypes}"
        )
    layers = [Linear(arrays["0.weight"], arrays["0.bias"])]
    layers += [Tropical(arrays[f"{i}.weight"], kinds[i] == "MaxPlus") for i in range(1, len(kinds))]
    try:
        model = Sequential(layers)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if str(arrays["__class__"]) == "LMM" and kinds == ["Linear", "MinPlus", "MaxPlus"]:
        model = LMM.from_arrays(*(arrays[name] for name in expected))
    if backend != "numpy":
        return to_backend(model, backend)
    return model


def to_backend(model: Sequential, name: str) -> Sequential:
    """A copy of ``model`` with its parameters on backend ``name``."""
    from . import backend as backends

    xp = backends.get_namespace(name)
    new = model.copy()
    for layer in new.layers:
        for attr, array in layer.parameters().items():
            setattr(layer, attr, xp.asarray(backends.to_numpy(array)))
    new.backend, new.xp = name, xp
    return new


def json_ready(value):
    """A copy of ``value`` that :func:`json.dumps` writes as standard JSON: dataclasses
    as dicts, dict keys as strings, tuples as lists, NumPy scalars as Python numbers,
    and non-finite floats as ``None``."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
