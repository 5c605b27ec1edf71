"""A numba decorator for kernels' helpers that allocate nothing: no reference counts.

A compiled function that numba does not inline increments and decrements,
atomically, the reference count of every array passed to it. Called from a parallel
loop, those counters are shared by every thread, so each call moves their cache line
between cores: about 200 ns a call with a layer's eleven state arrays, 4 % (lr 1e-4)
to 19 % (lr 1e-2, first steps) of a sparse step before the repair's helpers were
compiled without it. A helper that allocates nothing needs no counts: the caller
holds its arrays.
"""

from __future__ import annotations

import numba as nb

#: ``@uncounted`` compiles (and caches) a helper without numba's reference counting
#: (numba's ``_nrt=False``); it must not create arrays.
uncounted = nb.njit(cache=True, _nrt=False)
