"""MaxPlusClassifier follows scikit-learn's conventions and maps any sortable labels."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from maxplus.data import train_test_split
from maxplus.estimator import MaxPlusClassifier, resolve_q

# Short, so that scikit-learn's ~45 checks take seconds (they include reaching 83%
# training accuracy on blobs, which 16/8 units or q = 1 do not: see the docstring).
SMALL = dict(steps=200)


def expected_failed_checks(estimator):
    return {}  # every check applies and passes


@parametrize_with_checks(
    [MaxPlusClassifier(**SMALL)], expected_failed_checks=expected_failed_checks
)
def test_sklearn_conventions(estimator, check):
    check(estimator)



def test_cross_val_score_on_iris(iris):
    X, y = iris
    scores = cross_val_score(MaxPlusClassifier(), X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() >= 0.85, scores


def test_get_params_set_params_round_trip():
    clf = MaxPlusClassifier(n_linear=7, objective=("topq", 3), step="polyak", lr=0.5)
    params = clf.get_params()
    assert params["n_linear"] == 7 and params["objective"] == ("topq", 3)
    other = MaxPlusClassifier().set_params(**params)
    assert other.get_params() == params
    assert clone(clf).get_params() == params
    clf.set_params(steps=12, standardize=False)
    assert clf.steps == 12 and clf.standardize is False


def test_string_labels_map_through_classes(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    # labels sort as "a" < "b" < "c": reverse the species so the codes differ from y
    letters = np.array(["c", "b", "a"])[y]
    clf_int = MaxPlusClassifier(**SMALL).fit(X, y)
    clf_str = MaxPlusClassifier(**SMALL).fit(X, names[y])
    clf_rev = MaxPlusClassifier(**SMALL).fit(X, letters)
    assert list(clf_str.classes_) == list(names)
    assert list(clf_rev.classes_) == ["a", "b", "c"]
    np.testing.assert_array_equal(clf_str.predict(X), names[clf_int.predict(X)])
    pred = clf_rev.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= {"a", "b", "c"}
    assert clf_rev.score(X, letters) == pytest.approx(np.mean(pred == letters))
    proba = clf_rev.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf_rev.classes_[proba.argmax(axis=1)], pred)


def test_fitted_attributes(iris):
    X, y = iris
    clf = MaxPlusClassifier(**SMALL).fit(X, y)
    assert clf.n_features_in_ == 4
    assert clf.q_ == 15  # ceil(0.1 * 150)
    assert clf.n_iter_ == SMALL["steps"]
    assert 0 <= clf.best_step_ <= clf.n_iter_
    assert clf.best_objective_ == pytest.approx(min(clf.history_["objective"]), abs=1e-6) or (
        clf.best_step_ == clf.n_iter_
    )
    assert clf.model_.architecture == "Linear(4→64) MinPlus(64→32) MaxPlus(32→3)"


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_linear": 0}, "n_linear"),
        ({"steps": 2.5}, "steps"),
        ({"lr": -1.0}, "lr"),
        ({"step": "sometimes"}, "step"),
        ({"objective": ("topq", 0)}, "q"),
        ({"objective": "median"}, "objective"),
        ({"dtype": "int8"}, "dtype"),
    ],
)
def test_bad_parameters_are_named(iris, params, match):
    X, y = iris
    with pytest.raises(ValueError, match=match):
        MaxPlusClassifier(**params).fit(X, y)


def test_bad_input_errors(iris):
    X, y = iris
    with pytest.raises(NotFittedError):
        MaxPlusClassifier().predict(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MaxPlusClassifier(**SMALL).fit(X[:40], y[:40])
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MaxPlusClassifier(**SMALL).fit(bad, y)
    with pytest.raises(ValueError, match="Unknown label type"):
        MaxPlusClassifier(**SMALL).fit(X, y + 0.5)
    clf = MaxPlusClassifier(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])


def test_resolve_q():
    assert resolve_q("worst", 50) == 1
    assert resolve_q("mean", 50) == 50
    assert resolve_q(("topq", 7), 50) == 7
    assert resolve_q(("topq", 70), 50) == 50
    assert resolve_q(("topq", 0.1), 50) == 5
    assert resolve_q(("topq", 0.001), 50) == 1
    assert resolve_q(("topq", 1.0), 50) == 50
    for bad in (("topq", 1.5), ("topq", True), ("topq", -2), ("topk", 3)):
        with pytest.raises(ValueError):
            resolve_q(bad, 50)


def test_predictions_generalise_on_iris(iris):
    X, y = iris
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, seed=0)
    clf = MaxPlusClassifier().fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) >= 0.9


def test_public_name_is_the_estimator():
    import maxplus as mp

    assert mp.MaxPlusClassifier is MaxPlusClassifier
    with pytest.raises(AttributeError, match="no_such_name"):
        mp.no_such_name  # noqa: B018
