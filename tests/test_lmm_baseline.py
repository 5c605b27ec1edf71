"""Standard LMM training (Adam on the mean loss): learns Iris, deterministic, safe."""

import numpy as np
import pytest

import maxplus as mp
from maxplus.baselines import train_lmm_adam

pytest.importorskip("torch")



def test_learns_iris_from_sizes(iris_split):
    X_tr, X_te, y_tr, y_te = iris_split
    result = train_lmm_adam((64, 32), X_tr, y_tr, epochs=100, lr=1e-2, batch_size=16)
    assert isinstance(result.model, mp.LMM)
    assert result.model.architecture == "Linear(4→64) MinPlus(64→32) MaxPlus(32→3)"
    assert result.score(X_te, y_te) >= 0.9
    loss = result.history["loss"]
    assert len(loss) == 100 and loss[-1] < 0.5 * loss[0]
    assert result.train_seconds == result.history["seconds"][-1] > 0


def test_starts_from_a_given_model_without_touching_it(iris_split):
    X_tr, _, y_tr, _ = iris_split
    init = mp.LMM(4, 16, 8, 3, seed=5)
    before = {k: v.copy() for k, v in init.named_parameters().items()}
    a = train_lmm_adam(init, X_tr, y_tr, epochs=3, lr=1e-2, seed=1)
    b = train_lmm_adam(init, X_tr, y_tr, epochs=3, lr=1e-2, seed=1)
    c = train_lmm_adam(init, X_tr, y_tr, epochs=3, lr=1e-2, seed=2)
    for name, value in init.named_parameters().items():
        np.testing.assert_array_equal(value, before[name])
    for name, value in a.model.named_parameters().items():
        np.testing.assert_array_equal(value, b.model.named_parameters()[name])
    assert not np.array_equal(a.model.A, init.A)
    assert a.history["loss"] != c.history["loss"]


def test_one_epoch_equals_autograd_adam_by_hand(iris_split):
    """The first Adam step moves each parameter by about lr against its gradient's sign."""
    X_tr, _, y_tr, _ = iris_split
    init = mp.LMM(4, 8, 4, 3, seed=0)
    out = train_lmm_adam(init, X_tr, y_tr, epochs=1, lr=1e-3, batch_size=len(y_tr))
    from maxplus.torch_reference import autograd_gradient

    grads = autograd_gradient(init, X_tr, y_tr, objective="mean")
    for name, g in grads.items():
        moved = out.model.named_parameters()[name] - init.named_parameters()[name]
        expected = np.where(g != 0, -1e-3 * np.sign(g), 0.0)
        np.testing.assert_allclose(moved, expected, atol=2e-6)


def test_bad_input(iris_split):
    X_tr, _, y_tr, _ = iris_split
    with pytest.raises(ValueError, match="features"):
        train_lmm_adam(mp.LMM(5, 4, 3, 3), X_tr, y_tr, epochs=1)
    with pytest.raises(ValueError, match="labels"):
        train_lmm_adam((4, 3), X_tr, y_tr[:-1], epochs=1)
    with pytest.raises(ValueError, match=r"\(h1, h2\)"):
        train_lmm_adam((4, 3, 2), X_tr, y_tr, epochs=1)
    with pytest.raises(ValueError, match="impl"):
        train_lmm_adam((4, 3), X_tr, y_tr, epochs=1, impl="fast")
    with pytest.raises(ValueError, match="n_classes"):
        train_lmm_adam(mp.LMM(4, 4, 3, 3), X_tr, y_tr, epochs=1, n_classes=4)
