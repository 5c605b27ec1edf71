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
