"""A software prefetch for numba kernels (``llvm.prefetch``).

The sparse trainer visits samples in order, but touches only scattered entries of
each sample's rows; the hardware prefetcher does not see a stream there. Asking
for the next sample's rows while working on the current one hides most of the
memory latency.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

#: Samples ahead whose entries a light per-sample loop (the linear catch-up, the loss
#: bounds) prefetches; the repair, with more state per sample, keeps its own distance.
SAMPLES_AHEAD = 4


@intrinsic
def prefetch(typingctx, array, row, col):
    """Prefetch the cache line holding ``array[row, col]`` (2-D C-contiguous)."""
    if not isinstance(array, types.Array) or array.ndim != 2:
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        index = [context.cast(builder, args[k], signature.args[k], types.intp) for k in (1, 2)]
        ptr = cgutils.get_item_pointer(
            context, builder, signature.args[0], ary, index, wraparound=False
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


@intrinsic
def prefetch_row(typingctx, array, row):
    """Prefetch every cache line of ``array[row]`` (2-D C-contiguous) for reading."""
    if not isinstance(array, types.Array) or array.ndim != 2:
        return None
    itemsize = array.dtype.bitwidth // 8

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        row_index = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer(
            context, builder, signature.args[0], ary, [row_index, zero], wraparound=False
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        base = builder.bitcast(ptr, i8p)
        shape = cgutils.unpack_tuple(builder, ary.shape, 2)
        nbytes = builder.mul(shape[1], context.get_constant(types.intp, itemsize))
        with cgutils.for_range_slice(
            builder,
            context.get_constant(types.intp, 0),
            nbytes,
            context.get_constant(types.intp, 64),
        ) as (offset, _):
            builder.call(fn, [builder.gep(base, [offset]), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row), codegen
