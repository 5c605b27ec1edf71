"""The PyTorch MLP baseline: learns Iris, is deterministic per seed, refuses bad input."""

import subprocess
import sys

import numpy as np
import pytest

from maxplus.baselines import accuracy, train_mlp

torch = pytest.importorskip("torch")



@pytest.fixture(scope="module")
def iris_model(iris_split):
    X_train, _, y_train, _ = iris_split
    return train_mlp(X_train, y_train, seed=0)


def test_mlp_learns_iris(iris_split, iris_model):
    X_train, X_test, y_train, y_test = iris_split
    assert iris_model.score(X_train, y_train) >= 0.95
    assert iris_model.score(X_test, y_test) >= 0.9
    loss = iris_model.history["loss"]
    assert len(loss) == 100 and loss[-1] < 0.5 * loss[0]


def test_mlp_outputs_and_history(iris_split, iris_model):
    _, X_test, _, _ = iris_split
    pred = iris_model.predict(X_test)
    assert pred.dtype == np.int64 and pred.shape == (30,) and set(pred) <= {0, 1, 2}
    proba = iris_model.predict_proba(X_test)
    assert proba.shape == (30, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(proba.argmax(axis=1), pred)
    seconds = iris_model.history["seconds"]
    assert len(seconds) == len(iris_model.history["loss"])
    assert all(b >= a for a, b in zip(seconds, seconds[1:], strict=False))
    assert iris_model.train_seconds == seconds[-1] > 0


def test_mlp_is_deterministic_per_seed(iris_split):
    X_train, X_test, y_train, _ = iris_split
    a = train_mlp(X_train, y_train, epochs=5, seed=3)
    b = train_mlp(X_train, y_train, epochs=5, seed=3)
    c = train_mlp(X_train, y_train, epochs=5, seed=4)
    assert a.history["loss"] == b.history["loss"]
    np.testing.assert_array_equal(a.scores(X_test), b.scores(X_test))
    assert a.history["loss"] != c.history["loss"]


def test_mlp_leaves_global_rng_and_threads_alone(iris_split):
    X_train, _, y_train, _ = iris_split
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_mlp(X_train, y_train, epochs=1)
    np.testing.assert_array_equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_mlp_options(iris_split):
    X_train, X_test, y_train, _ = iris_split
    deep = train_mlp(X_train, y_train, hidden=(8, 8), epochs=2, dtype="float64", batch_size=7)
    assert deep.scores(X_test).dtype == np.float64
    linear_layers = [m for m in deep.model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear_layers] == [(4, 8), (8, 8), (8, 3)]
    logistic = train_mlp(X_train, y_train, hidden=(), epochs=2, n_classes=5)
    assert logistic.predict_proba(X_test).shape == (30, 5)
    capped = train_mlp(X_train, y_train, epochs=10_000, max_seconds=1e-9)
    assert len(capped.history["loss"]) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"y_train": np.zeros(5, int)}, ValueError, "X_train has 6 samples but y_train has 5"),
        ({"y_train": np.array([0, 1, 2, 0, 1, -1])}, ValueError, "labels >= 0, found -1"),
        ({"y_train": np.array([0, 1, 2, 0, 1, 3]), "n_classes": 3}, ValueError, "label 3"),
        ({"y_train": np.array([0, 1, 0.5, 0, 1, 1])}, ValueError, "integer class labels"),
        ({"y_train": np.zeros(6, int)}, ValueError, "at least 2 classes"),
        ({"X_train": np.zeros((0, 2)), "y_train": np.zeros(0, int)}, ValueError, "empty"),
        ({"X_train": np.full((6, 2), np.nan)}, ValueError, "X_train contains NaN"),
        ({"X_train": np.zeros(6)}, ValueError, "X_train must be a 2-D"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"lr": -1.0}, ValueError, "lr must be a finite number > 0"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
        ({"dtype": "float16"}, ValueError, "unknown dtype 'float16'"),
        ({"hidden": (4, 0)}, ValueError, "hidden width must be >= 1"),
    ],
)
def test_mlp_bad_input(kwargs, error, message):
    args = {"X_train": np.zeros((6, 2)), "y_train": np.array([0, 1, 2, 0, 1, 2]), "epochs": 1}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        train_mlp(**args)


def test_predict_checks_feature_count(iris_model):
    with pytest.raises(ValueError, match="X has 3 features; the model was trained on 4"):
        iris_model.predict(np.zeros((2, 3)))


def test_accuracy():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    with pytest.raises(ValueError, match="y_true has 2 labels but y_pred has 3"):
        accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])


def test_package_root_never_imports_torch():
    code = (
        "import sys, maxplus, maxplus.baselines; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
