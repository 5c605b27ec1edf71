"""Input checks shared by the algebra, the networks and the trainers.

Every check names the argument and what is wrong with it, and never modifies the
user's array.
"""

from __future__ import annotations

import numbers

import numpy as np

SUPPORTED_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(*arrays, names=None) -> np.dtype:
    """The common floating dtype of ``arrays`` (float32 or float64).

    Integers and booleans promote to float64 (float32 when mixed with float32
    arrays that fit, following NumPy's rules), float16 to float32. Complex, object,
    string and extended-precision inputs are refused.
    """
    names = names or [f"argument {i}" for i in range(len(arrays))]
    kinds = []
    for name, a in zip(names, arrays, strict=True):
        dt = np.dtype(a.dtype)
        if dt.kind == "c":
            raise TypeError(f"{name} has complex dtype {dt}; max-plus algebra needs real numbers")
        if dt.kind not in "biuf":
            raise TypeError(f"{name} has dtype {dt}; expected a real floating or integer dtype")
        if dt.kind == "f" and dt.itemsize > 8:
            raise TypeError(
                f"{name} has dtype {dt}, which cannot be reconciled with the float32/float64 "
                "kernels without losing precision; convert it explicitly"
            )
        kinds.append(dt)
    dt = np.result_type(*kinds, np.float16)
    if dt == np.float16:
        dt = np.dtype(np.float32)
    return np.dtype(dt)


def check_matrix(name: str, a, xp, *, ndim=2, forbid: str = "nan") -> None:
    """Check ndim and forbidden values of an array that is already in namespace ``xp``.

    ``forbid`` is a string made of the letters of what is not allowed:
    ``"nan"`` (always implied), ``"+inf"``, ``"-inf"``, or ``"inf"`` for both.
    """
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got {a.ndim}-D with shape {a.shape}")
    if a.size == 0 or np.dtype(a.dtype).kind not in "fc":
        return
    if bool(xp.any(xp.isnan(a))):
        raise ValueError(f"{name} contains NaN")
    pos = "+inf" in forbid or forbid == "inf" or "both" in forbid
    neg = "-inf" in forbid or forbid == "inf" or "both" in forbid
    if pos and bool(xp.any(a == xp.inf)):
        raise ValueError(f"{name} contains +inf, which is not allowed here")
    if neg and bool(xp.any(a == -xp.inf)):
        raise ValueError(f"{name} contains -inf, which is not allowed here")


def check_positive_int(name: str, value, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(
            f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}"
        )
    return value
