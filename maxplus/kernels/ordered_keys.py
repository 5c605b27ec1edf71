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
from numba import types
from numba.core.extending import intrinsic

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


#: The bits of a float64 as an int64, and back.
float_bits = _reinterpret(types.float64, types.int64)
bits_float = _reinterpret(types.int64, types.float64)


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
