"""Figure helpers of the book (maxplus.plotting) that compute what they draw."""

import numpy as np
import pytest

from maxplus.plotting import plot_step_costs, step_cost_ratios


def scaling_series():
    """A series shaped like step_cost_scaling's, with numbers chosen by hand."""
    point = dict(N=100, h1=8, K=3, sparse_median=0.5, dense_median=2.0, sparse_flops=10.0,
                 dense_flops=400.0, sparse_mean=0.6, dense_mean=2.1)
    return {
        "N": [point, dict(point, N=200, dense_median=4.0, dense_flops=800.0)],
        "K": [dict(point, K=2, sparse_median=0.25, sparse_flops=5.0), point],
    }


def test_step_cost_ratios_are_dense_over_sparse():
    flop, time, realised = step_cost_ratios(scaling_series()["N"])
    np.testing.assert_allclose(flop, [40.0, 80.0])
    np.testing.assert_allclose(time, [4.0, 8.0])
    np.testing.assert_allclose(realised, [0.1, 0.1])


def test_plot_step_costs_draws_the_series():
    import matplotlib.pyplot as plt

    series = scaling_series()
    fig, axes = plot_step_costs(series)
    assert axes.shape == (2, 2)  # the axes present, in the order N, h1, K
    assert axes[1, 1].get_xlabel() == "classes $K$"
    dense, sparse = axes[0, 1].get_lines()
    np.testing.assert_array_equal(dense.get_xdata(), [2, 3])
    np.testing.assert_allclose(sparse.get_ydata(), [250.0, 500.0])  # milliseconds
    flop, time = axes[1, 0].get_lines()
    np.testing.assert_allclose(flop.get_ydata(), [40.0, 80.0])
    np.testing.assert_allclose(time.get_ydata(), [4.0, 8.0])
    plt.close(fig)


def test_plot_step_costs_refuses_bad_input():
    import matplotlib.pyplot as plt

    with pytest.raises(ValueError, match="none of the axes"):
        plot_step_costs({"depth": []})
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match=r"axes must have shape \(2, 2\)"):
        plot_step_costs(scaling_series(), axes=axes)
    plt.close(fig)
