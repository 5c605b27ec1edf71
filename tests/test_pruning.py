"""Pruning removes the units no sample selects and leaves the predictions on X alone."""

import numpy as np
import pytest

import maxplus as mp
from maxplus.data import load_iris
from maxplus.network import make_sequential
from maxplus.pruning import prune, reached_units


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def trained(iris):
    X, y = iris
    model = mp.LMM(4, 32, 16, 3, seed=1)
    mp.fit(model, X, y, objective=("topq", 10), steps=300, lr=0.05)
    return model


def test_prune_keeps_training_predictions_and_scores(iris, trained):
    X, _ = iris
    pruned = prune(trained, X)
    assert isinstance(pruned, mp.LMM)
    assert pruned.n_parameters < trained.n_parameters  # something was unused
    np.testing.assert_array_equal(pruned.predict(X), trained.predict(X))
    np.testing.assert_array_equal(pruned.scores(X), trained.scores(X))
    # the original is untouched and pruning again removes nothing more
    assert trained.A.shape == (32, 4)
    again = prune(pruned, X)
    assert again.n_parameters == pruned.n_parameters


def test_reached_units_follow_the_selections(iris, trained):
    X, _ = iris
    reached = reached_units(trained, X)
    forward = trained.forward(X)
    lam, mu = forward.selections[2], forward.selections[1]
    assert reached[2].tolist() == [0, 1, 2]
    assert reached[1].tolist() == sorted(set(lam.ravel().tolist()))
    assert reached[0].tolist() == sorted(set(mu[:, reached[1]].ravel().tolist()))
    pruned = prune(trained, X)
    assert pruned.A.shape == (len(reached[0]), 4)
    assert pruned.B.shape == (len(reached[1]), len(reached[0]))
    assert pruned.C.shape == (3, len(reached[1]))


def test_hand_built_network_drops_exactly_the_unused_units():
    # Linear units z = (x, x, -x); min-plus unit 0 reads z0, unit 1 reads z1 (both
    # always) and unit 2 is never selected by an output (C puts it far below).
    A = np.array([[1.0], [1.0], [-1.0]])
    b = np.zeros(3)
    big = 100.0
    B = np.array([[0.0, big, big], [big, 0.0, big], [big, big, 0.0]])
    C = np.array([[0.0, -big, -2 * big], [-big, 0.0, -2 * big]])
    model = mp.LMM.from_arrays(A, b, B, C)
    X = np.linspace(-1, 1, 7)[:, None]
    reached = reached_units(model, X)
    assert [r.tolist() for r in reached] == [[0, 1], [0, 1], [0, 1]]
    pruned = prune(model, X)
    np.testing.assert_array_equal(pruned.A, A[:2])
    np.testing.assert_array_equal(pruned.B, B[:2, :2])
    np.testing.assert_array_equal(pruned.C, C[:, :2])
    np.testing.assert_array_equal(pruned.scores(X), model.scores(X))


def test_deeper_sequential(iris):
    X, y = iris
    model = make_sequential([4, 24, 12, 8, 3], ["MinPlus", "MaxPlus", "MaxPlus"], seed=2)
    mp.fit(model, X, y, objective=("topq", 10), steps=100, lr=0.05)
    pruned = prune(model, X)
    assert type(pruned) is type(model) and len(pruned.layers) == 4
    np.testing.assert_array_equal(pruned.predict(X), model.predict(X))
    np.testing.assert_array_equal(pruned.scores(X), model.scores(X))


def test_prune_refuses_bad_input(trained):
    with pytest.raises(ValueError, match="no samples"):
        prune(trained, np.empty((0, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="features"):
        prune(trained, np.ones((3, 5)))
    with pytest.raises(TypeError, match="Sequential"):
        prune("not a model", np.ones((3, 4)))
