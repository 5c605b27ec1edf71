"""The paper's baselines, trained with PyTorch (CPU): a standard MLP and "standard LMM
training".

**The MLP** (:func:`train_mlp`):

    h_0 = x,   h_j = relu(W_j h_{j-1} + c_j)  (j = 1..L),   s = W_out h_L + c_out
    loss = mean over a mini-batch of  logsumexp(s) - s[y]     (cross-entropy)

trained by Adam on shuffled mini-batches. PyTorch is imported only when a model is
trained, so ``import maxplus`` (and this module) never imports torch.

Defaults (one hidden layer of 64 units, 100 epochs, batch 16, lr 1e-3) train Iris in
well under a second on one CPU thread.

**Standard LMM training** (:func:`train_lmm_adam`): the same max-plus network as the
subgradient trainer (an :class:`maxplus.LMM` or any ``Linear → (MaxPlus | MinPlus)+``
stack) trained the way one trains any network: the *mean* cross-entropy of shuffled
mini-batches, gradients by autograd, Adam. Each tropical layer gathers its selected
candidate (lowest index on ties, :func:`maxplus.torch_reference.tropical_layer`), so
the gradient reaching the parameters is the same sparse subgradient, summed over a
batch instead of taken at the worst sample.
"""

from __future__ import annotations

import numbers
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_positive_float as _check_positive
from ._validation import check_positive_int as _check_int

__all__ = ["LMMAdamResult", "MLPResult", "accuracy", "train_lmm_adam", "train_mlp"]

TORCH_INSTALL_HINT = (
    "the MLP baseline needs PyTorch: pip install torch (CPU build: see noxfile.py), "
    "or `pip install maxplus[torch]`"
)
DTYPES = ("float32", "float64")


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is installed in the test env
        raise ImportError(TORCH_INSTALL_HINT) from exc
    return torch


def accuracy(y_true, y_pred) -> float:
    """Fraction of positions where ``y_pred`` equals ``y_true`` (both 1-D, same length)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D, got shapes {y_true.shape} and {y_pred.shape}"
        )
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("y_true is empty: accuracy is undefined")
    return float(np.mean(y_true == y_pred))


@dataclass
class MLPResult:
    """A trained MLP.

    ``model`` is the ``torch.nn.Sequential``; ``history`` holds per-epoch lists
    ``"loss"`` (mean training cross-entropy over the epoch's mini-batches) and
    ``"seconds"`` (wall time since training started, at the end of each epoch);
    ``train_seconds`` is the total training time.
    """

    model: object
    n_features: int
    n_classes: int
    dtype: str
    history: dict = field(default_factory=dict)
    train_seconds: float = 0.0

    def scores(self, X) -> np.ndarray:
        """Class scores (logits), float array (N, K)."""
        torch = _torch()
        X = _as_features("X", X, self.n_features)
        with torch.no_grad():
            out = self.model(torch.as_tensor(X, dtype=getattr(torch, self.dtype)))
        return out.numpy()

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the scores, (N, K), rows summing to 1."""
        s = self.scores(X).astype(np.float64)
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """Predicted classes, int64 (N,): the highest score, lowest index on ties."""
        return np.argmax(self.scores(X), axis=1).astype(np.int64)

    def score(self, X, y) -> float:
        """Accuracy on ``(X, y)``."""
        return accuracy(y, self.predict(X))


def train_mlp(
    X_train,
    y_train,
    hidden=(64,),
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 16,
    seed: int = 0,
    dtype: str = "float32",
    max_seconds: float | None = None,
    n_classes: int | None = None,
    threads: int | None = 1,
) -> MLPResult:
    """Train a ReLU MLP with cross-entropy and Adam on CPU; returns an :class:`MLPResult`.

    ``X_train`` (N, d) real, finite; ``y_train`` (N,) integers in ``0..K-1`` with
    ``K = n_classes`` (default ``max(y_train) + 1``). ``hidden`` lists the hidden layer
    widths (``()`` gives multinomial logistic regression). Each epoch visits every sample
    once in a seeded random order, in mini-batches of ``batch_size``. Training stops
    after ``epochs`` epochs, or after the first epoch that ends past ``max_seconds``.

    Deterministic for a ``seed``: weights and shuffles come from a seeded generator
    inside ``torch.random.fork_rng`` (the caller's global RNG state is left alone), and
    torch runs on ``threads`` intra-op threads (1 by default; restored afterwards;
    ``None`` keeps the current setting).
    """
    torch = _torch()
    hidden = _check_hidden(hidden)
    epochs, batch_size, seed, lr, max_seconds, threads = _check_adam_options(
        epochs, batch_size, seed, lr, max_seconds, threads
    )
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {DTYPES}")
    X = _check_samples("X_train", "y_train", X_train, y_train)
    y, n_classes = _as_labels("y_train", y_train, n_classes)

    torch_dtype = getattr(torch, dtype)
    with _num_threads(torch, threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build_mlp(torch, X.shape[1], hidden, n_classes).to(torch_dtype)
        Xt = torch.as_tensor(X, dtype=torch_dtype)
        yt = torch.as_tensor(y)
        loss_fn = torch.nn.CrossEntropyLoss()
        history, elapsed = _adam_epochs(
            torch, list(model.parameters()), lambda batch: loss_fn(model(Xt[batch]), yt[batch]),
            len(yt), lr, epochs, batch_size, seed, max_seconds,
        )
    model.eval()
    return MLPResult(model, X.shape[1], n_classes, dtype, history, elapsed)


# --------------------------------------------------------------------------- standard LMM


@dataclass
class LMMAdamResult:
    """A max-plus network trained by Adam on the mean loss.

    ``model`` is a :class:`maxplus.network.Sequential` (an :class:`maxplus.LMM` when
    one was trained) holding the final parameters, evaluated by the package's own
    forward pass; ``history`` holds per-epoch lists ``"loss"`` (mean mini-batch
    cross-entropy) and ``"seconds"`` (wall time since training started);
    ``train_seconds`` is the total training time.
    """

    model: object
    history: dict = field(default_factory=dict)
    train_seconds: float = 0.0

    def predict(self, X) -> np.ndarray:
        """Predicted classes, int64 (N,)."""
        return np.asarray(self.model.predict(X)).astype(np.int64)

    def score(self, X, y) -> float:
        """Accuracy on ``(X, y)``."""
        return accuracy(y, self.predict(X))


def train_lmm_adam(
    model_or_sizes,
    X,
    y,
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    *,
    impl: str = "plain",
    dtype: str = "float32",
    max_seconds: float | None = None,
    n_classes: int | None = None,
    threads: int | None = 1,
) -> LMMAdamResult:
    """Standard LMM training: mean cross-entropy over mini-batches, autograd, Adam.

    ``model_or_sizes`` is either a max-plus network (a :class:`maxplus.LMM` or
    :class:`maxplus.network.Sequential`, left untouched: training starts from a copy
    of its parameters) or the hidden widths ``(h1, h2)`` of a fresh
    ``LMM(d, h1, h2, K, seed=seed, dtype=dtype)``. ``X`` (N, d) real and finite, ``y``
    (N,) integers in ``0..K-1`` (``K = n_classes``, default the model's classes or
    ``max(y) + 1``). Each epoch visits every sample once in a seeded random order, in
    mini-batches of ``batch_size``; training stops after ``epochs`` epochs or after
    the first epoch that ends past ``max_seconds``. ``impl`` picks the tropical layers
    of :mod:`maxplus.torch_reference` (``"plain"`` broadcasting or
    ``"tropical_gemm"``). Deterministic for a ``seed`` (as :func:`train_mlp`).
    """
    torch = _torch()
    from .network import LMM, Sequential
    from .torch_reference import IMPLEMENTATIONS, TorchNetwork, torch_losses

    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown impl {impl!r}; expected one of {IMPLEMENTATIONS}")
    epochs, batch_size, seed, lr, max_seconds, threads = _check_adam_options(
        epochs, batch_size, seed, lr, max_seconds, threads
    )
    X = _check_samples("X", "y", X, y)
    if isinstance(model_or_sizes, Sequential):
        model = model_or_sizes.copy()
        if model.backend != "numpy":
            raise ValueError("train_lmm_adam trains NumPy-backed models; got a CuPy model")
        if X.shape[1] != model.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features but the model expects {model.n_features}"
            )
        labels, _ = _as_labels("y", y, model.n_classes if n_classes is None else n_classes)
        if n_classes is not None and n_classes != model.n_classes:
            raise ValueError(f"n_classes={n_classes} but the model has {model.n_classes}")
    else:
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {DTYPES}")
        h1, h2 = _check_lmm_sizes(model_or_sizes)
        labels, n_classes = _as_labels("y", y, n_classes)
        model = LMM(X.shape[1], h1, h2, n_classes, seed=seed, dtype=dtype)

    with _num_threads(torch, threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # Train the copy's own arrays in place: the returned model is the iterate.
        net = TorchNetwork(model, impl, share=True)
        Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=model.dtype))
        yt = torch.as_tensor(labels)

        def batch_loss(batch):
            return torch_losses(net.scores(Xt[batch]), yt[batch], "cross_entropy").mean()

        history, elapsed = _adam_epochs(
            torch, net.params, batch_loss, len(yt), lr, epochs, batch_size, seed, max_seconds
        )
    return LMMAdamResult(model, history, elapsed)


def _check_lmm_sizes(sizes) -> tuple[int, int]:
    try:
        widths = tuple(sizes)
    except TypeError:
        raise TypeError(
            f"model_or_sizes must be a maxplus network or hidden widths (h1, h2), got {sizes!r}"
        ) from None
    if len(widths) != 2:
        raise ValueError(f"model_or_sizes as widths must be (h1, h2), got {sizes!r}")
    return tuple(_check_int("hidden width", h, minimum=1) for h in widths)


# --------------------------------------------------------------------------- helpers


def _adam_epochs(torch, params, batch_loss, n, lr, epochs, batch_size, seed, max_seconds):
    """Adam on ``params`` over ``epochs`` seeded shuffles of ``range(n)`` in mini-batches;
    ``batch_loss(indices)`` is the mean loss of a batch. Stops after the first epoch that
    ends past ``max_seconds``. Returns ``(history, seconds)``, ``history`` holding per-epoch
    ``"loss"`` (sample-weighted mean of the batch losses) and ``"seconds"``."""
    optimizer = torch.optim.Adam(params, lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    history = {"loss": [], "seconds": []}
    start = time.perf_counter()
    elapsed = 0.0
    for _ in range(epochs):
        order = torch.randperm(n, generator=shuffle)
        total = 0.0
        for lo in range(0, n, batch_size):
            batch = order[lo : lo + batch_size]
            optimizer.zero_grad()
            loss = batch_loss(batch)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        elapsed = time.perf_counter() - start
        history["loss"].append(total / n)
        history["seconds"].append(elapsed)
        if max_seconds is not None and elapsed > max_seconds:
            break
    return history, elapsed


def _check_adam_options(epochs, batch_size, seed, lr, max_seconds, threads):
    """The validated ``(epochs, batch_size, seed, lr, max_seconds, threads)``."""
    epochs = _check_int("epochs", epochs, minimum=1)
    batch_size = _check_int("batch_size", batch_size, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    lr = _check_positive("lr", lr)
    if max_seconds is not None:
        max_seconds = _check_positive("max_seconds", max_seconds)
    if threads is not None:
        threads = _check_int("threads", threads, minimum=1)
    return epochs, batch_size, seed, lr, max_seconds, threads


def _check_samples(x_name: str, y_name: str, X, y):  # noqa: N803
    """``X`` as finite real features, checked to have one label in ``y`` per sample."""
    X = _as_features(x_name, X)  # noqa: N806
    n_labels = len(np.atleast_1d(np.asarray(y)))
    if len(X) != n_labels:
        raise ValueError(f"{x_name} has {len(X)} samples but {y_name} has {n_labels} labels")
    if len(X) == 0:
        raise ValueError(f"{x_name} is empty: nothing to train on")
    return X


def _build_mlp(torch, n_features: int, hidden: tuple[int, ...], n_classes: int):
    layers, width = [], n_features
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, n_classes))
    return torch.nn.Sequential(*layers)


@contextmanager
def _num_threads(torch, threads: int | None):
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        widths = tuple(hidden)
    except TypeError:
        raise TypeError(f"hidden must be a sequence of layer widths, got {hidden!r}") from None
    return tuple(_check_int("hidden width", h, minimum=1) for h in widths)


def _as_features(name: str, X, n_features: int | None = None) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or inf")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features; the model was trained on {n_features}")
    return X


def _as_labels(name: str, y, n_classes: int | None) -> tuple[np.ndarray, int]:
    """Non-empty labels as int64 and the number of classes K (default max + 1)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class labels 0..K-1, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"{name} must hold labels >= 0, found {y.min()}")
    if n_classes is None:
        n_classes = int(y.max()) + 1
        if n_classes < 2:
            raise ValueError(f"{name} must hold at least 2 classes (labels 0..K-1), got only 0")
    else:
        n_classes = _check_int("n_classes", n_classes, minimum=2)
        if y.max() >= n_classes:
            raise ValueError(
                f"{name} holds label {y.max()}, out of range for n_classes={n_classes}"
            )
    return y, n_classes
