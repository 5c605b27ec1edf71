"""Algebraic laws of the max-plus semiring, checked with hypothesis.

Integer-valued floats make every sum exact, so associativity holds bitwise.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import maxplus as mp
from maxplus import MAX_PLUS, MIN_PLUS

INT_FLOATS = st.integers(-50, 50).map(float)
WITH_ZERO = st.one_of(INT_FLOATS, st.just(-np.inf))


def matrices(rows, cols, elements=WITH_ZERO):
    return arrays(np.float64, (rows, cols), elements=elements)


dims = st.integers(1, 6)


@st.composite
def three_chained(draw, elements=WITH_ZERO):
    n, k, l, m = (draw(dims) for _ in range(4))
    shapes = ((n, k), (k, l), (l, m))
    return tuple(draw(matrices(rows, cols, elements)) for rows, cols in shapes)


@settings(max_examples=60, deadline=None)
@given(three_chained())
def test_product_is_associative(abc):
    A, B, C = abc
    left = mp.maxplus_matmul(mp.maxplus_matmul(A, B), C)
    right = mp.maxplus_matmul(A, mp.maxplus_matmul(B, C))
    np.testing.assert_array_equal(left, right)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_product_distributes_over_oplus(data):
    n, k, m = (data.draw(dims) for _ in range(3))
    A = data.draw(matrices(n, k))
    B = data.draw(matrices(k, m))
    C = data.draw(matrices(k, m))
    left = mp.maxplus_matmul(A, mp.oplus(B, C))
    right = mp.oplus(mp.maxplus_matmul(A, B), mp.maxplus_matmul(A, C))
    np.testing.assert_array_equal(left, right)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_oplus_is_idempotent_commutative_and_has_zero(data):
    n, m = data.draw(dims), data.draw(dims)
    A = data.draw(matrices(n, m))
    B = data.draw(matrices(n, m))
    np.testing.assert_array_equal(mp.oplus(A, A), A)
    np.testing.assert_array_equal(mp.oplus(A, B), mp.oplus(B, A))
    np.testing.assert_array_equal(mp.oplus(A, MAX_PLUS.zeros(A.shape)), A)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_identity_and_zero_matrices(data):
    n, m = data.draw(dims), data.draw(dims)
    A = data.draw(matrices(n, m))
    np.testing.assert_array_equal(mp.maxplus_matmul(MAX_PLUS.identity(n), A), A)
    np.testing.assert_array_equal(mp.maxplus_matmul(A, MAX_PLUS.identity(m)), A)
    Z = MAX_PLUS.zeros((m, 3))
    np.testing.assert_array_equal(mp.maxplus_matmul(A, Z), MAX_PLUS.zeros((n, 3)))
    # min-plus mirrors max-plus under negation, indices included
    C, I = mp.minplus_matmul(-A, MIN_PLUS.identity(m), return_indices=True)
    np.testing.assert_array_equal(C, -A)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_matrix_power_matches_repeated_products(data):
    n = data.draw(dims)
    A = data.draw(matrices(n, n))
    k = data.draw(st.integers(0, 6))
    expected = MAX_PLUS.identity(n)
    for _ in range(k):
        expected = mp.maxplus_matmul(expected, A)
    np.testing.assert_array_equal(MAX_PLUS.power(A, k), expected)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_residual_is_the_greatest_subsolution(data):
    n, m = data.draw(dims), data.draw(dims)
    A = data.draw(matrices(n, m))
    b = data.draw(arrays(np.float64, (n,), elements=WITH_ZERO))
    x = mp.residual(A, b)
    # x is a subsolution: A ⊗ x <= b (x may hold +inf only in columns where A is all -inf)
    finite_x = np.where(np.isposinf(x), 0.0, x)
    usable = ~np.all(A == -np.inf, axis=0)
    Ax = mp.maxplus_matmul(A[:, usable], finite_x[usable, None])[:, 0]
    assert np.all(Ax <= b)
    # and the greatest one: raising any finite coordinate by 1 breaks it
    for j in np.flatnonzero(usable & np.isfinite(x)):
        y = finite_x.copy()
        y[j] += 1
        assert np.any(mp.maxplus_matmul(A[:, usable], y[usable, None])[:, 0] > b)


def test_residual_solves_a_solvable_system():
    A = np.array([[0.0, 2.0], [1.0, -np.inf], [3.0, 1.0]])
    x_true = np.array([1.0, -1.0])
    b = mp.maxplus_matmul(A, x_true[:, None])[:, 0]
    x = mp.residual(A, b)
    np.testing.assert_array_equal(mp.maxplus_matmul(A, x[:, None])[:, 0], b)


def test_power_and_residual_refuse_bad_input():
    with pytest.raises(ValueError, match="square"):
        MAX_PLUS.power(np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="k must be >= 0"):
        MAX_PLUS.power(np.zeros((2, 2)), -1)
    with pytest.raises(ValueError, match="b must have shape"):
        mp.residual(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="A contains NaN"):
        mp.residual(np.array([[np.nan]]), np.zeros(1))


def test_tropical_polynomial_is_convex_piecewise_linear():
    x = np.linspace(-3, 3, 61)
    values, selected = mp.tropical_polynomial([0.0, 1.0, -1.0], [0.0, 1.0, 2.0], x)
    np.testing.assert_allclose(values, np.maximum.reduce([0 * x, 1 + x, -1 + 2 * x]))
    assert np.all(np.diff(values, 2) >= -1e-12)  # convex
    assert set(np.unique(selected)) <= {0, 1, 2}
