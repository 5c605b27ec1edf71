"""Minima of float64 values as integer minima, which LLVM vectorises.

numba's loops that take a running minimum of floats (``m = v if v < m else m``)
stay scalar: without fast-math LLVM will not reorder a floating-point comparison
chain. Each non-NaN float64 ``v`` has an int64 *order key*: its bits, with every bit
but the sign flipped when the sign is set. Keys compare as the values do (``-0.0``
just below ``+0.0``), and an integer minimum vectorises (``vpminsq``). A kernel
keeps a running minimum of the keys of the values it wants the least of
(:func:`lesser_key`, starting from :data:`INF_KEY`); :func:`key_value` gives the
float back, bitwise.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.core.extending import intrinsic, overload

#: The key of ``+inf``: the minimum of no values.
INF_KEY = 0x7FF0000000000000
_LOW_63 = 0x7FFFFFFFFFFFFFFF


def _reinterpret(source, target):
    """An intrinsic that reads the bits of a ``source`` scalar as a ``target`` one."""

    @intrinsic
    def reinterpret(typingctx, x):
        if x != source:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(target))

        return target(source), codegen

    return reinterpret


#: The bits of a float64 as an int64, and back; the bits of a float32 as an int32.
float_bits = _reinterpret(types.float64, types.int64)
bits_float = _reinterpret(types.int64, types.float64)
float32_bits = _reinterpret(types.float32, types.int32)
_LOW_31 = 0x7FFFFFFF
_LOW_32 = 0xFFFFFFFF


@nb.njit(inline="always")
def order_key(v):
    """The int64 that orders as the float64 ``v`` does (``v`` not NaN)."""
    b = float_bits(v)
    return b ^ ((b >> 63) & _LOW_63)


@nb.njit(inline="always")
def key_value(k):
    """The float64 whose key is ``k`` (the inverse of :func:`order_key`)."""
    return bits_float(k ^ ((k >> 63) & _LOW_63))


@nb.njit(inline="always")
def lesser_key(a, b):
    """The lesser of two keys, without a branch: a loop's running minimum of keys
    vectorises."""
    return a if a < b else b


@nb.njit(inline="always")
def candidate_key(g, i):
    """An int64 that orders candidates (float32 goodness ``g``, not NaN, of input
    ``i``) as a tropical layer selects them: larger goodness first, then the lower
    input. The high half is ``g``'s order key, with ``-0.0`` taken as ``+0.0`` (as
    ``==`` does); the low half is ``2³² − 1 − i``. A running maximum of keys
    vectorises (a float64 goodness has no room for the input in 64 bits)."""
    k = own_key(g + np.float32(0.0))  # -0.0 + 0.0 = +0.0
    return (np.int64(k) << 32) | (_LOW_32 - i)  # sign-extended: orders as g


@nb.njit(inline="always")
def key_input(key):
    """The input ``i`` of a :func:`candidate_key`."""
    return _LOW_32 - (key & _LOW_32)


#: Less than every :func:`candidate_key`: the maximum of no candidates.
NO_CANDIDATE = -(2**63)
#: More than every :func:`candidate_key`.
MOST_KEY = 2**63 - 1
bits_float32 = _reinterpret(types.int32, types.float32)


@nb.njit(inline="always")
def key_goodness(key):
    """The goodness of a :func:`candidate_key` as a float64 (``-inf`` for
    :data:`NO_CANDIDATE`; ``+0.0`` for a zero)."""
    if key == NO_CANDIDATE:
        return -np.inf
    return own_key_value(np.int32(key >> 32))


def own_key(v):
    """The order key of ``v`` in its own width (an int32 for a float32, as
    :func:`order_key` for a float64): keys of the narrower type fill twice the vector
    lanes (compiled only)."""
    raise NotImplementedError("compiled only")


@overload(own_key, jit_options={"_nrt": False})
def _own_key(v):
    if v == types.float32:

        def key32(v):
            b = float32_bits(v)
            return np.int32(b ^ ((b >> np.int32(31)) & np.int32(_LOW_31)))

        return key32
    return lambda v: order_key(v)


def own_key_value(k):
    """The value, as a float64, whose :func:`own_key` is ``k`` (compiled only)."""
    raise NotImplementedError("compiled only")


@overload(own_key_value, jit_options={"_nrt": False})
def _own_key_value(k):
    if k == types.int32:

        def value32(k):
            return np.float64(bits_float32(np.int32(k ^ ((k >> np.int32(31)) & np.int32(_LOW_31)))))

        return value32
    return lambda k: key_value(k)
