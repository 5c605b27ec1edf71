"""Exactness of the tropical products against a broadcasting reference."""

import numpy as np
import pytest

import maxplus as mp
from maxplus.products import NO_INDEX, naive_tropical_matmul

DTYPES = [np.float32, np.float64]
PRODUCTS = [(mp.maxplus_matmul, True), (mp.minplus_matmul, False)]
SHAPES = [(1, 1, 1), (7, 3, 5), (64, 9, 2), (2, 9, 700), (33, 130, 17), (5, 1, 1000)]


def grid_values(rng, shape, dtype):
    """Values on a coarse grid, so ties are frequent."""
    return rng.integers(-3, 4, size=shape).astype(dtype) * 0.5


def check_against_reference(A, B, func, maximize):
    C, I = func(A, B, return_indices=True)
    ref_C, ref_I = naive_tropical_matmul(A, B, maximize=maximize)
    np.testing.assert_array_equal(C, ref_C.astype(C.dtype))
    np.testing.assert_array_equal(I, ref_I)
    assert I.dtype == np.int32
    return C, I


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func,maximize", PRODUCTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_random_and_tie_heavy_inputs(dtype, func, maximize, shape):
    n, k, m = shape
    rng = np.random.default_rng(n * 1000 + k * 10 + m)
    def gaussian(s):
        return rng.standard_normal(s).astype(dtype)

    for make in (gaussian, lambda s: grid_values(rng, s, dtype)):
        A, B = make((n, k)), make((k, m))
        C, _ = check_against_reference(A, B, func, maximize)
        assert C.dtype == dtype


@pytest.mark.parametrize("func,maximize", PRODUCTS)
def test_semiring_zero_entries_propagate(func, maximize):
    rng = np.random.default_rng(1)
    zero = -np.inf if maximize else np.inf
    A = grid_values(rng, (20, 11), np.float64)
    B = grid_values(rng, (11, 13), np.float64)
    A[rng.random(A.shape) < 0.4] = zero
    B[rng.random(B.shape) < 0.4] = zero
    A[3, :] = zero  # a whole row of zeros: the result row is zero, index 0
    C, I = check_against_reference(A, B, func, maximize)
    assert np.all(C[3] == zero) and np.all(I[3] == 0)


@pytest.mark.parametrize("func,maximize", PRODUCTS)
def test_empty_inner_dimension_gives_zero_element(func, maximize):
    C, I = func(np.zeros((3, 0)), np.zeros((0, 4)), return_indices=True)
    assert C.shape == (3, 4) and np.all(C == (-np.inf if maximize else np.inf))
    assert np.all(I == NO_INDEX)


@pytest.mark.parametrize("func,maximize", PRODUCTS)
def test_empty_outer_dimensions(func, maximize):
    assert func(np.zeros((0, 3)), np.zeros((3, 4))).shape == (0, 4)
    assert func(np.zeros((2, 3)), np.zeros((3, 0))).shape == (2, 0)


@pytest.mark.parametrize("func,maximize", PRODUCTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_and_fortran_inputs(func, maximize, dtype):
    rng = np.random.default_rng(2)
    big = grid_values(rng, (40, 30), dtype)
    A = big[::3, 1::2]  # strided view
    B = np.asfortranarray(grid_values(rng, (A.shape[1], 9), dtype))
    A_before, B_before = A.copy(), B.copy()
    check_against_reference(A, B, func, maximize)
    check_against_reference(B.T, A.T, func, maximize)  # transposed views
    np.testing.assert_array_equal(A, A_before)
    np.testing.assert_array_equal(B, B_before)


def test_lowest_index_on_ties():
    A = np.zeros((1, 5))
    B = np.zeros((5, 1))
    for func in (mp.maxplus_matmul, mp.minplus_matmul):
        _, I = func(A, B, return_indices=True)
        assert I[0, 0] == 0
    B[2:, 0] = 1.0
    assert mp.maxplus_matmul(A, B, return_indices=True)[1][0, 0] == 2
    assert mp.minplus_matmul(A, B, return_indices=True)[1][0, 0] == 0


def test_dtype_promotion():
    f32 = np.ones((2, 3), np.float32)
    assert mp.maxplus_matmul(f32, np.ones((3, 2), np.float32)).dtype == np.float32
    assert mp.maxplus_matmul(f32, np.ones((3, 2), np.float64)).dtype == np.float64
    assert mp.maxplus_matmul(np.ones((2, 3), int), np.ones((3, 2), int)).dtype == np.float64
    half = np.ones((2, 3), np.float16), np.ones((3, 2), np.float16)
    assert mp.maxplus_matmul(*half).dtype == np.float32
    # lists are accepted and come back as NumPy arrays
    assert isinstance(mp.maxplus_matmul([[1.0, 2.0]], [[0.0], [1.0]]), np.ndarray)


@pytest.mark.parametrize(
    "A,B,exc,message",
    [
        (np.ones(3), np.ones((3, 2)), ValueError, "A must be a 2-D"),
        (np.ones((2, 3)), np.ones((3, 2, 1)), ValueError, "B must be a 2-D"),
        (np.ones((2, 3)), np.ones((4, 2)), ValueError, "inner dimensions"),
        (np.array([[np.nan, 1.0]]), np.ones((2, 1)), ValueError, "A contains NaN"),
        (np.ones((1, 2)), np.array([[1.0], [np.nan]]), ValueError, "B contains NaN"),
        (np.ones((1, 2), complex), np.ones((2, 1)), TypeError, "A has complex dtype"),
        (np.ones((1, 2)), np.ones((2, 1), object), TypeError, "B has dtype object"),
        (np.ones((1, 2), np.longdouble), np.ones((2, 1)), TypeError, "cannot be reconciled"),
        (np.array([["a", "b"]]), np.ones((2, 1)), TypeError, "A has dtype"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(A, B, exc, message):
    if np.dtype(np.longdouble).itemsize <= 8 and "reconciled" in message:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(exc, match=message):
        mp.maxplus_matmul(A, B)


def test_opposite_infinity_is_refused():
    with pytest.raises(ValueError, match=r"A contains \+inf"):
        mp.maxplus_matmul(np.array([[np.inf]]), np.ones((1, 1)))
    with pytest.raises(ValueError, match="B contains -inf"):
        mp.minplus_matmul(np.ones((1, 1)), np.array([[-np.inf]]))


def test_inputs_are_not_modified():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 4))
    B = rng.standard_normal((4, 5)).astype(np.float32)
    A0, B0 = A.copy(), B.copy()
    mp.maxplus_matmul(A, B, return_indices=True)
    mp.minplus_matmul(A, B)
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(B, B0)
    assert B.dtype == np.float32
