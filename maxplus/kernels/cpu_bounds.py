"""numba kernel for the sparse trainer's loss bounds (lazy synchronisation).

A sample that waits keeps its loss as it was at its last synchronisation and a bound
``β_n`` on how far that loss can have risen since. A step moves the linear outputs
``z[n, m]`` of the moved units ``m`` by ``Δz_nm = −Σ_s c_sm (r_s[n] + 1)`` (``c`` the
step's coefficients ``ηζ``, ``r_s = X x_s``), and each output rises or falls with
every input and weight of a max or a min of sums, by at most as much. A min-plus
unit rises at most as far as the candidate it selected (``u_j ≤ B_jσ + z_σ``), so
when the first tropical layer is min-plus only the columns it selected at the
sample's last synchronisation can raise it; a max-plus first layer likewise falls
only with its selected columns. Both losses rise by at most the largest rise of a
score plus the fall of the label's score (``Δℓ ≤ max_k Δs_k − Δs_y``).
"""

from __future__ import annotations

import numba as nb


@nb.njit(cache=True)
def raise_bounds(bound, head, restrict_rise, cols, coef, products, extra):  # noqa: N803
    """``bound[n] += max_m (Δz_nm)⁺ + max_m (−Δz_nm)⁺ + extra`` over the moved columns
    ``m = cols[k]``, with ``Δz_nm = −Σ_s coef[s, k] (products[s, n] + 1)``.

    The rise (``restrict_rise``) or else the fall counts only where the first tropical
    layer selects the column (``head[n, m] ≥ 0``, as at the sample's last
    synchronisation). Returns ``max_n max_m |Δz_nm|``."""
    if coef.shape[0] == 1:
        return raise_bounds_one(bound, head, restrict_rise, cols, coef[0], products[0], extra)
    N = bound.shape[0]  # noqa: N806
    q, n_cols = coef.shape
    largest = 0.0
    for n in range(N):
        rise = 0.0
        fall = 0.0
        for k in range(n_cols):
            dz = 0.0
            for s in range(q):
                dz -= coef[s, k] * (products[s, n] + 1.0)
            # the selection is read only where it decides (a strided read)
            if dz > rise and (not restrict_rise or head[n, cols[k]] >= 0):
                rise = dz
            elif -dz > fall and (restrict_rise or head[n, cols[k]] >= 0):
                fall = -dz
            largest = max(largest, abs(dz))
        bound[n] += rise + fall + extra
    return largest


@nb.njit(cache=True)
def raise_bounds_one(bound, head, restrict_rise, cols, coef, product, extra):  # noqa: N803
    """:func:`raise_bounds` for one selected sample: ``|Δz_nm| = |c_m| |r[n] + 1|``, so
    per sample only the restricted direction's columns are looked at (the same
    values: rounding is monotone)."""
    largest_pos = 0.0  # max c_m over c_m > 0: these fall where r + 1 > 0
    largest_neg = 0.0  # max −c_m over c_m < 0: these rise there
    for k in range(coef.shape[0]):
        largest_pos = max(largest_pos, coef[k])
        largest_neg = max(largest_neg, -coef[k])
    largest = 0.0
    for n in range(bound.shape[0]):
        a = product[n] + 1.0
        # columns moving the restricted way here: those with -c a > 0 if the rise is
        # restricted, i.e. c < 0 where a > 0
        negative = (a > 0.0) == restrict_rise
        free = largest_pos if negative else largest_neg
        chosen = 0.0
        for k in range(coef.shape[0]):
            c = -coef[k] if negative else coef[k]
            if c > chosen and head[n, cols[k]] >= 0:
                chosen = c
        scale = abs(a)
        bound[n] += scale * chosen + scale * free + extra
        largest = max(largest, scale * max(largest_pos, largest_neg))
    return largest
