"""Fixtures shared by several test modules."""

import pytest

from maxplus.data import Standardizer, load_iris, train_test_split


@pytest.fixture(scope="module")
def iris():
    """Iris as shipped by scikit-learn: ``(X, y)``, 150 samples, 4 features, 3 classes."""
    return load_iris()


@pytest.fixture(scope="module")
def iris_split():
    """A seeded 80/20 stratified split of Iris, standardised on the training part:
    ``(X_train, X_test, y_train, y_test)``."""
    X, y = load_iris()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    scaler = Standardizer().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test
