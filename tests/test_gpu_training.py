"""The GPU trainers (:mod:`maxplus.gpu_training`) and their kernels.

Everywhere (no GPU needed):

* the CPU twins of the kernels (``TwinKernels``) against independent references
  (the CPU kernels, fresh forward passes), ties and ±inf included;
* the whole GPU training algorithm on the twins: sparse and dense iterates agree
  bitwise (exact mode) or within rounding (cached mode) after hundreds of steps,
  the repaired state equals a fresh forward pass after every step, and the
  iterates equal the CPU dense trainer's;
* the CUDA sources themselves, compiled for the CPU and driven by the real
  launchers of ``CudaKernels`` (``EmulatedKernels``), against the twins, bitwise.

With a GPU (``-m gpu``): the CUDA kernels against the twins, and ``mp.fit`` on CuPy
arrays (sparse against dense, the GPU against the CPU).
"""

import zlib

import numba
import numpy as np
import pytest

import maxplus as mp
from maxplus import backend, training
from maxplus.gpu_training import CACHED_MAX_SAMPLES, make_gpu_trainer
from maxplus.kernels import cpu_backward, cpu_linear, cpu_losses, cpu_products
from maxplus.kernels.gpu import Changes, repair_group
from maxplus.kernels.gpu_twin import EmulatedKernels, TwinKernels, host_compiler
from maxplus.network import make_sequential

DTYPES = [np.float32, np.float64]


def seed(*parts):
    return zlib.crc32(repr(parts).encode())


# ------------------------------------------------------------------------- kernel sets


@pytest.fixture(scope="module")
def twin():
    return TwinKernels()


@pytest.fixture(scope="module")
def emulation(tmp_path_factory):
    if host_compiler() is None:
        pytest.skip("no C++ compiler for the host emulation of the CUDA sources")
    return EmulatedKernels(tmp_path_factory.mktemp("training-emulation"))


@pytest.fixture(scope="module")
def cuda():
    if not backend.gpu_available():
        pytest.skip("needs CuPy and a GPU")
    from maxplus.kernels.gpu import CudaKernels

    return CudaKernels()


def dev(kernels, a):
    """``a`` (NumPy) as an array of the kernels' backend (a copy)."""
    return kernels.xp.array(a, copy=True)


def host(kernels, a):
    return kernels.to_host(a)


# ------------------------------------------------------------------- kernel test cases
#
# Each case builds NumPy inputs, runs one kernel method on a kernel set, and returns
# NumPy outputs; the twins are checked against references, and every other kernel set
# (the emulation, the GPU) against the twins.


def linear_case(kernels, dtype, shape, columns=None):
    rng = np.random.default_rng(seed("linear", np.dtype(dtype).name, shape, columns))
    N, d, h = shape  # noqa: N806
    X = rng.standard_normal((N, d)).astype(dtype)  # noqa: N806
    X[rng.random(X.shape) < 0.3] = 0.0  # zeros, which the CPU kernel skips
    W = rng.standard_normal((h, d)).astype(dtype)  # noqa: N806
    b = rng.standard_normal(h).astype(dtype)
    Z = np.full((N, h), 7.0, dtype)  # noqa: N806
    out = {"X": X, "W": W, "b": b}
    Zd = dev(kernels, Z)  # noqa: N806
    if columns is None:
        kernels.linear(dev(kernels, X), dev(kernels, W), dev(kernels, b), Zd)
    else:
        cols = np.asarray(columns, dtype=np.int32)
        old = dev(kernels, np.empty((N, cols.size), dtype))
        kernels.linear(
            dev(kernels, X), dev(kernels, W), dev(kernels, b), Zd, dev(kernels, cols), old
        )
        out["old"] = host(kernels, old)
    out["Z"] = host(kernels, Zd)
    return out


LINEAR_SHAPES = [(1, 1, 1), (70, 20, 67), (130, 33, 5), (3, 100, 129)]


def backward_case(kernels, dtype, shape):
    rng = np.random.default_rng(seed("backward", np.dtype(dtype).name, shape))
    N, d, h = shape  # noqa: N806
    G = np.zeros((N, h), dtype)  # noqa: N806
    rows = rng.choice(N, size=max(1, N // 4), replace=False)
    G[rows] = rng.standard_normal((rows.size, h)).astype(dtype)
    X = rng.standard_normal((N, d)).astype(dtype)  # noqa: N806
    gW, gb = dev(kernels, np.empty((h, d), dtype)), dev(kernels, np.empty(h, dtype))  # noqa: N806
    kernels.linear_backward(dev(kernels, G), dev(kernels, X), gW, gb)
    return {"G": G, "X": X, "grad_W": host(kernels, gW), "grad_b": host(kernels, gb)}


def tropical_values(rng, shape, dtype, kind):
    """``random`` values, or half-integers in [-1.5, 1.5] (``ties``: most outputs tie)."""
    if kind == "random":
        return rng.standard_normal(shape).astype(dtype)
    return (rng.integers(-3, 4, size=shape) * 0.5).astype(dtype)


def top2_case(kernels, dtype, shape, maximize, kind):
    rng = np.random.default_rng(seed("top2", np.dtype(dtype).name, shape, maximize, kind))
    N, n_in, n_out = shape  # noqa: N806
    Hin = tropical_values(rng, (N, n_in), dtype, kind)  # noqa: N806
    WT = tropical_values(rng, (n_in, n_out), dtype, kind)  # noqa: N806
    H, R = dev(kernels, np.empty((N, n_out), dtype)), dev(kernels, np.empty((N, n_out), dtype))  # noqa: N806
    S = dev(kernels, np.empty((N, n_out), np.int32))  # noqa: N806
    kernels.tropical_top2(dev(kernels, Hin), dev(kernels, WT), H, S, R, maximize)
    return {
        "Hin": Hin,
        "WT": WT,
        "H": host(kernels, H),
        "S": host(kernels, S),
        "R": host(kernels, R),
    }


def repair_inputs(dtype, n_out, maximize, kind, shared):
    """A layer state, then a step's changes: some inputs of every sample (the same
    list for all samples when ``shared``, as after the linear layer), improving and
    worsening, and a few weights; one sample changes most of its inputs."""
    rng = np.random.default_rng(seed("repair", np.dtype(dtype).name, n_out, maximize, kind, shared))
    N, n_in = 37, 12  # noqa: N806
    Hin_old = tropical_values(rng, (N, n_in), dtype, kind)  # noqa: N806
    W_old = tropical_values(rng, (n_out, n_in), dtype, kind)  # noqa: N806
    H, S, R = top2_reference(Hin_old, W_old, maximize)  # noqa: N806
    step = (lambda s: rng.integers(-2, 3, size=s) * 0.5) if kind == "ties" else rng.standard_normal
    Hin = Hin_old.copy()  # noqa: N806
    if shared:
        idx = np.sort(rng.choice(n_in, size=3, replace=False)).astype(np.int32)
        count = np.array([idx.size], np.int32)
        Hin[:, idx] += step((N, idx.size)).astype(dtype)
        old = Hin_old[:, idx].copy()
        changes = (count, 0, idx, 0, old, idx.size)
    else:
        counts = rng.integers(0, 4, size=N).astype(np.int32)
        counts[5] = n_in - 1  # most inputs: every output is rescanned
        idx = np.zeros((N, n_in), np.int32)
        old = np.zeros((N, n_in), dtype)
        for n in range(N):
            chosen = np.sort(rng.choice(n_in, size=counts[n], replace=False))
            idx[n, : chosen.size] = chosen
            old[n, : chosen.size] = Hin_old[n, chosen]
            Hin[n, chosen] += step(chosen.size).astype(dtype)
        changes = (counts, 1, idx, n_in, old, n_in)
    W = W_old.copy()  # noqa: N806
    keys = np.sort(rng.choice(n_out * n_in, size=min(4, n_out * n_in), replace=False))
    w_rows, w_cols = (k.astype(np.int32) for k in np.divmod(keys, n_in))
    W[w_rows, w_cols] += step(keys.size).astype(dtype)
    return {"Hin": Hin, "W": W, "H": H, "S": S, "R": R, "changes": changes, "w": (w_rows, w_cols)}


def top2_reference(Hin, W, maximize):  # noqa: N803
    """H, S, R by the CPU kernel."""
    N, n_out = Hin.shape[0], W.shape[0]  # noqa: N806
    H, R = np.empty((N, n_out), Hin.dtype), np.empty((N, n_out), Hin.dtype)  # noqa: N806
    S = np.empty((N, n_out), np.int32)  # noqa: N806
    cpu_products.tropical_product_top2(Hin, np.ascontiguousarray(W.T), H, S, R, maximize)
    return H, S, R


def repair_case(kernels, inputs, maximize):
    c = inputs["changes"]
    N, n_out = inputs["H"].shape  # noqa: N806
    H, S, R = (dev(kernels, inputs[k]) for k in "HSR")  # noqa: N806
    co_count = dev(kernels, np.full(N, -1, np.int32))
    co_idx = dev(kernels, np.full((N, n_out), -1, np.int32))
    co_old = dev(kernels, np.zeros((N, n_out), inputs["H"].dtype))
    counters = dev(kernels, np.zeros(3, kernels.counter_dtype))
    changes = Changes(dev(kernels, c[0]), c[1], dev(kernels, c[2]), c[3], dev(kernels, c[4]), c[5])
    W = inputs["W"]  # noqa: N806
    kernels.repair_layer(
        dev(kernels, inputs["Hin"]), dev(kernels, W), dev(kernels, np.ascontiguousarray(W.T)),
        H, S, R, maximize, changes, dev(kernels, inputs["w"][0]), dev(kernels, inputs["w"][1]),
        co_count, co_idx, co_old, counters,
    )  # fmt: skip
    out = {k: host(kernels, a) for k, a in zip("HSR", (H, S, R), strict=True)}
    out["co_count"], out["co_idx"] = host(kernels, co_count), host(kernels, co_idx)
    out["co_old"] = host(kernels, co_old)
    out["counters"] = host(kernels, counters).astype(np.int64)
    return out


REPAIR_CASES = [
    pytest.param(
        dtype,
        n_out,
        maximize,
        kind,
        shared,
        id=f"{np.dtype(dtype).name}-out{n_out}-{'max' if maximize else 'min'}-{kind}"
        f"-{'shared' if shared else 'per-sample'}",
    )  # fmt: skip
    for dtype in DTYPES
    for n_out in (1, 3, 9, 40)  # lane groups of 1, 4, 16 and 32 (two chunks)
    for maximize in (True, False)
    for kind in ("random", "ties")
    for shared in (True, False)
]


def selection_backward_case(kernels, dtype):
    rng = np.random.default_rng(seed("selection-backward", np.dtype(dtype).name))
    N, n_out, n_in = 29, 11, 7  # noqa: N806
    G = np.zeros((N, n_out), dtype)  # noqa: N806
    G[[3, 8, 20]] = rng.standard_normal((3, n_out)).astype(dtype)
    S = rng.integers(0, n_in, size=(N, n_out)).astype(np.int32)  # noqa: N806
    gW = dev(kernels, np.empty((n_out, n_in), dtype))  # noqa: N806
    G_in = dev(kernels, np.empty((N, n_in), dtype))  # noqa: N806
    kernels.tropical_backward_weights(dev(kernels, G), dev(kernels, S), gW)
    kernels.tropical_backward_inputs(dev(kernels, G), dev(kernels, S), G_in)
    return {"G": G, "S": S, "grad_W": host(kernels, gW), "G_in": host(kernels, G_in)}


def losses_case(kernels, dtype, loss):
    rng = np.random.default_rng(seed("losses", np.dtype(dtype).name, loss))
    N, K = 45, 6  # noqa: N806
    scores = (rng.standard_normal((N, K)) * 3).astype(dtype)
    scores[4] = 1.0  # every class ties
    y = rng.integers(0, K, size=N).astype(np.int64)
    changed = (rng.random(N) < 0.5).astype(np.int32)
    code = cpu_losses.LOSS_CODES[loss]
    L_all = dev(kernels, np.full(N, -1.0))  # noqa: N806
    L_some = dev(kernels, np.full(N, -1.0))  # noqa: N806
    kernels.row_losses(dev(kernels, scores), dev(kernels, y), code, L_all)
    kernels.row_losses(dev(kernels, scores), dev(kernels, y), code, L_some, dev(kernels, changed))
    return {"scores": scores, "y": y, "changed": changed, "all": host(kernels, L_all),
            "some": host(kernels, L_some)}  # fmt: skip


def arithmetic_case(kernels, dtype):
    """The cached column shift and the three parameter updates."""
    rng = np.random.default_rng(seed("arithmetic", np.dtype(dtype).name))
    N, h, d = 33, 10, 6  # noqa: N806
    Z = rng.standard_normal((N, h)).astype(dtype)  # noqa: N806
    cols = np.array([1, 4, 9], np.int32)
    coef = rng.standard_normal((2, 3)).astype(dtype)
    store = rng.standard_normal((5, N)).astype(dtype)
    slots = np.array([3, 0], np.int32)
    Zd, old = dev(kernels, Z), dev(kernels, np.empty((N, 3), dtype))  # noqa: N806
    kernels.shift_columns(Zd, dev(kernels, cols), dev(kernels, coef), dev(kernels, store),
                          dev(kernels, slots), old)  # fmt: skip
    P, G = rng.standard_normal((4, 5)).astype(dtype), rng.standard_normal((4, 5)).astype(dtype)  # noqa: N806
    Pd = dev(kernels, P)  # noqa: N806
    kernels.scale_subtract(Pd, dev(kernels, G), 0.3)
    W, b = rng.standard_normal((h, d)).astype(dtype), rng.standard_normal(h).astype(dtype)  # noqa: N806
    GW, Gb = rng.standard_normal((3, d)).astype(dtype), rng.standard_normal(3).astype(dtype)  # noqa: N806
    Wd, bd = dev(kernels, W), dev(kernels, b)  # noqa: N806
    kernels.update_rows(Wd, bd, dev(kernels, cols), dev(kernels, GW), dev(kernels, Gb), 0.3)
    B = rng.standard_normal((h, d)).astype(dtype)  # noqa: N806
    Bd, BTd = dev(kernels, B), dev(kernels, np.ascontiguousarray(B.T))  # noqa: N806
    er, ec = np.array([0, 2, 9], np.int32), np.array([5, 0, 3], np.int32)
    ev = rng.standard_normal(3).astype(dtype)
    kernels.update_entries(Bd, BTd, dev(kernels, er), dev(kernels, ec), dev(kernels, ev), 0.3)
    return {
        "Z_in": Z, "cols": cols, "coef": coef, "store": store, "slots": slots,
        "Z": host(kernels, Zd), "old": host(kernels, old), "P": host(kernels, Pd),
        "W": host(kernels, Wd), "b": host(kernels, bd), "B": host(kernels, Bd),
        "BT": host(kernels, BTd),
        "inputs": (P, G, W, b, GW, Gb, B, er, ec, ev),
    }  # fmt: skip


def gather_case(kernels):
    rng = np.random.default_rng(seed("gather"))
    arrays = [
        rng.standard_normal((20, 3)).astype(np.float32),
        rng.integers(0, 9, size=(20, 5)).astype(np.int32),
        rng.standard_normal((20, 7)),
    ]
    rows = np.array([17, 2, 9], np.int64)
    out_rows, parts = kernels.gather_rows(dev(kernels, rows), [dev(kernels, a) for a in arrays])
    return rows, arrays, out_rows, parts


def assert_bitwise(a, b, what=""):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, b.dtype, a.shape, b.shape)
    if a.dtype.kind == "f":
        a, b = a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}")
    np.testing.assert_array_equal(a, b, err_msg=what)


def assert_same_outputs(mine, ref):
    """Every output of a case equal bitwise (dicts of arrays, possibly nested)."""
    for key, value in ref.items():
        if isinstance(value, np.ndarray):
            assert_bitwise(mine[key], value, key)


# ------------------------------------------------------------- the twins vs references


@pytest.mark.parametrize("columns", [None, [0, 3, 66, 5]])
@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_linear_equals_cpu_kernel_bitwise(twin, dtype, shape, columns):
    """The fixed-order linear twin equals the CPU kernel bitwise (no FMA on either
    side), and recomputed columns equal the full forward's."""
    if columns is not None:
        columns = [c for c in columns if c < shape[2]]
    out = linear_case(twin, dtype, shape, columns)
    ref = cpu_linear.linear(out["X"], out["W"], out["b"])
    if columns is None:
        assert_bitwise(out["Z"], ref)
    else:
        assert_bitwise(out["Z"][:, columns], ref[:, columns])
        assert np.all(np.delete(out["Z"], columns, axis=1) == 7.0)  # other columns untouched
        assert np.all(out["old"] == 7.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_linear_backward_equals_cpu_kernel_bitwise(twin, dtype):
    out = backward_case(twin, dtype, (50, 9, 13))
    gW, gb = np.empty_like(out["grad_W"]), np.empty_like(out["grad_b"])  # noqa: N806
    cpu_backward.linear_backward(out["G"], out["X"], gW, gb)
    assert_bitwise(out["grad_W"], gW)
    assert_bitwise(out["grad_b"], gb)


@pytest.mark.parametrize("kind", ["random", "ties"])
@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("shape", [(13, 1, 4), (40, 17, 9)], ids=["one-input", "17-inputs"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_top2_equals_cpu_kernel(twin, dtype, shape, maximize, kind):
    """Values, lowest-index selections and runners-up; with one input the runner-up
    is the semiring's zero (-inf for max-plus, +inf for min-plus)."""
    out = top2_case(twin, dtype, shape, maximize, kind)
    H, S, R = top2_reference(out["Hin"], np.ascontiguousarray(out["WT"].T), maximize)  # noqa: N806
    assert_bitwise(out["H"], H)
    assert_bitwise(out["S"], S)
    assert_bitwise(out["R"], R)
    if shape[1] == 1:
        assert np.all(out["R"] == (-np.inf if maximize else np.inf))
        assert np.all(out["S"] == 0)


def assert_valid_repair(out, inputs, maximize):
    """After the repair: values and selections of a fresh forward pass, runner bounds
    that bound every other candidate, and the changed outputs listed in order."""
    Hin, W = inputs["Hin"], inputs["W"]  # noqa: N806
    H, S, _ = top2_reference(Hin, W, maximize)  # noqa: N806
    assert_bitwise(out["H"], H, "H")
    assert_bitwise(out["S"], S, "S")
    cand = Hin[:, None, :] + W[None, :, :]  # (N, out, in)
    np.put_along_axis(cand, S[:, :, None], -np.inf if maximize else np.inf, axis=2)
    others = cand.max(axis=2) if maximize else cand.min(axis=2)
    assert np.all(out["R"] >= others) if maximize else np.all(out["R"] <= others)
    for n in range(H.shape[0]):
        changed = np.flatnonzero(out["H"][n] != inputs["H"][n])
        assert out["co_count"][n] == changed.size
        np.testing.assert_array_equal(out["co_idx"][n, : changed.size], changed)
        assert_bitwise(out["co_old"][n, : changed.size], inputs["H"][n, changed])


@pytest.mark.parametrize("dtype,n_out,maximize,kind,shared", REPAIR_CASES)
def test_twin_repair_equals_fresh_forward(twin, dtype, n_out, maximize, kind, shared):
    inputs = repair_inputs(dtype, n_out, maximize, kind, shared)
    out = repair_case(twin, inputs, maximize)
    assert_valid_repair(out, inputs, maximize)
    assert out["counters"][2] == np.count_nonzero(out["co_count"])


def test_repair_groups_cover_the_warp():
    assert [repair_group(n) for n in (1, 2, 3, 9, 16, 17, 32, 40, 1000)] == [
        1, 2, 4, 16, 16, 32, 32, 32, 32,
    ]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_selection_backward_equals_cpu_kernels(twin, dtype):
    out = selection_backward_case(twin, dtype)
    gW = np.empty_like(out["grad_W"])  # noqa: N806
    G_in = np.empty_like(out["G_in"])  # noqa: N806
    cpu_backward.tropical_backward_weights(out["G"], out["S"], gW)
    cpu_backward.tropical_backward_inputs(out["G"], out["S"], G_in)
    assert_bitwise(out["grad_W"], gW)
    assert_bitwise(out["G_in"], G_in)


@pytest.mark.parametrize("loss", ["cross_entropy", "hinge"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_losses_equal_cpu_kernel(twin, dtype, loss):
    out = losses_case(twin, dtype, loss)
    ref = cpu_losses.row_losses(out["scores"], out["y"], loss)
    assert_bitwise(out["all"], ref)
    some = np.where(out["changed"] > 0, ref, -1.0)
    assert_bitwise(out["some"], some)


@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_arithmetic(twin, dtype):
    out = arithmetic_case(twin, dtype)
    Z, cols = out["Z_in"], out["cols"]  # noqa: N806
    r = out["store"][out["slots"]].astype(np.float64)  # (q, N)
    delta = np.einsum("sc,sn->nc", out["coef"].astype(np.float64), r + 1.0)
    expected = Z.copy()
    expected[:, cols] = (Z[:, cols].astype(np.float64) - delta).astype(dtype)
    np.testing.assert_allclose(out["Z"], expected, rtol=0, atol=4 * np.finfo(dtype).eps)
    assert_bitwise(out["old"], Z[:, cols])
    P, G, W, b, GW, Gb, B, er, ec, ev = out["inputs"]  # noqa: N806
    eta = dtype(0.3)
    assert_bitwise(out["P"], P - eta * G)
    W2, b2 = W.copy(), b.copy()  # noqa: N806
    W2[cols] -= eta * GW
    b2[cols] -= eta * Gb
    assert_bitwise(out["W"], W2)
    assert_bitwise(out["b"], b2)
    B2 = B.copy()  # noqa: N806
    B2[er, ec] -= eta * ev
    assert_bitwise(out["B"], B2)
    assert_bitwise(out["BT"], np.ascontiguousarray(B2.T))


# ------------------------------------------------- the GPU algorithm on the twins


def problem(kind, dtype, seed_value=0):
    """(model, X, y) of a small training problem."""
    rng = np.random.default_rng(seed_value)
    if kind == "iris":
        pytest.importorskip("sklearn")
        X, y = mp.load_iris()  # noqa: N806
        X = (X - X.mean(axis=0)) / X.std(axis=0)  # noqa: N806
        model = mp.LMM(4, 16, 8, 3, seed=seed_value, dtype=dtype)
        return model, X, y
    if kind == "lmm":
        N, d = 90, 6  # noqa: N806
        model = mp.LMM(d, 20, 12, 4, seed=seed_value, dtype=dtype)
    else:  # a deeper stack, with a min-plus layer in the middle
        N, d = 70, 5  # noqa: N806
        model = make_sequential(
            [d, 14, 11, 9, 3], ["MaxPlus", "MinPlus", "MaxPlus"], seed=seed_value, dtype=dtype
        )
    X = rng.standard_normal((N, d))  # noqa: N806
    y = rng.integers(0, model.n_classes, size=N)
    return model, X, y


def trainer_for(kernels, method, model, X, y, loss, exact=False, refresh_every=100):  # noqa: N803
    Xc = dev(kernels, backend.to_numpy(model.check_input(backend.to_numpy(X))))  # noqa: N806
    if not kernels.is_array(model.A if hasattr(model, "A") else model.layers[0].weight):
        raise AssertionError("the model must live on the kernels' backend")
    yc = dev(kernels, np.asarray(y, dtype=np.int64))
    return make_gpu_trainer(
        method, model, Xc, yc, loss, refresh_every=refresh_every, exact=exact, kernels=kernels
    )


def train(kernels, method, model, X, y, *, steps, q=1, loss="cross_entropy", rule="constant",  # noqa: N803
          lr=0.05, exact=False, refresh_every=100, check=None):  # fmt: skip
    """Run the shared subgradient loop on a GPU trainer; ``check(trainer, t)`` after
    every step."""
    trainer = trainer_for(kernels, method, model, X, y, loss, exact, refresh_every)
    callback = None if check is None else (lambda t, F, m: check(trainer, t))
    result = training.run(trainer, model, q, steps, rule, lr, 0.0, False, callback)
    return result, trainer


def host_parameters(model):
    return {name: backend.to_numpy(p) for name, p in model.named_parameters().items()}


def assert_same_iterates(a, b):
    pa, pb = host_parameters(a), host_parameters(b)
    for name in pa:
        assert_bitwise(pa[name], pb[name], name)


def fresh_forward(kernels, trainer):
    """Values and selections of a fresh forward pass with the kernels."""
    xp = kernels.xp
    lin = trainer.model.layers[0]
    Z = xp.empty_like(trainer.Z)  # noqa: N806
    kernels.linear(trainer.X, lin.weight, lin.bias, Z)
    values, selections, Hin = [Z], [None], Z  # noqa: N806
    for state in trainer.layers:
        WT = xp.ascontiguousarray(state.layer.weight.T)  # noqa: N806
        H, S = xp.empty_like(state.H), xp.empty_like(state.S)  # noqa: N806
        kernels.tropical_product(Hin, WT, H, S, state.maximize)
        values.append(H)
        selections.append(S)
        Hin = H  # noqa: N806
    L = xp.empty_like(trainer.L)  # noqa: N806
    kernels.row_losses(values[-1], trainer.y, trainer.code, L)
    return values, selections, L


def state_checker(kernels, *, exact, atol=0.0):
    """A ``check`` for :func:`train`: the sparse trainer's state equals a fresh forward
    pass (bitwise in exact mode), and its runner bounds bound the other candidates."""
    steps = []

    def check(trainer, t):
        values, selections, L = fresh_forward(kernels, trainer)  # noqa: N806
        for i, (mine, fresh) in enumerate(zip(trainer.state_values(), values, strict=True)):
            mine, fresh = host(kernels, mine), host(kernels, fresh)
            if exact:
                assert_bitwise(mine, fresh, f"values[{i}] at step {t}")
            else:
                np.testing.assert_allclose(mine, fresh, rtol=0, atol=atol, err_msg=f"step {t}")
        if exact:
            for i, state in enumerate(trainer.layers, start=1):
                assert_bitwise(host(kernels, state.S), host(kernels, selections[i]), f"S{i}")
            assert_bitwise(host(kernels, trainer.L), host(kernels, L), f"losses at step {t}")
            Hin = host(kernels, trainer.Z)  # noqa: N806
            for state in trainer.layers:
                W = host(kernels, state.layer.weight)  # noqa: N806
                cand = Hin[:, None, :] + W[None]
                S = host(kernels, state.S)  # noqa: N806
                zero = -np.inf if state.maximize else np.inf
                np.put_along_axis(cand, S[:, :, None], zero, axis=2)
                R = host(kernels, state.R)  # noqa: N806
                if state.maximize:
                    assert np.all(R >= cand.max(axis=2)), f"runner bound at step {t}"
                else:
                    assert np.all(R <= cand.min(axis=2)), f"runner bound at step {t}"
                assert_bitwise(host(kernels, state.WT), np.ascontiguousarray(W.T), "WT")
                Hin = host(kernels, state.H)  # noqa: N806
        steps.append(t)

    check.steps = steps
    return check


SPARSE_VS_DENSE = [
    pytest.param("lmm", np.float64, "cross_entropy", 1, "constant", id="lmm-f64-ce-worst"),
    pytest.param("lmm", np.float32, "cross_entropy", 1, "polyak", id="lmm-f32-ce-worst-polyak"),
    pytest.param("deep", np.float64, "hinge", 6, "constant", id="deep-f64-hinge-top6"),
    pytest.param("deep", np.float32, "cross_entropy", 3, "diminishing", id="deep-f32-ce-top3"),
    pytest.param("iris", np.float64, "cross_entropy", 1, "constant", id="iris-f64-ce-worst"),
]


@pytest.mark.parametrize("kind,dtype,loss,q,rule", SPARSE_VS_DENSE)
def test_twin_sparse_equals_dense_bitwise(twin, kind, dtype, loss, q, rule):
    """300 steps: the sparse trainer (exact mode) and the dense trainer produce the
    same iterates, objectives and selected samples, bit for bit."""
    lr = 0.5 if rule == "polyak" else 0.05
    model, X, y = problem(kind, dtype)  # noqa: N806
    dense_model, sparse_model = model.copy(), model.copy()
    kw = {"steps": 300, "q": q, "loss": loss, "rule": rule, "lr": lr}
    dense, _ = train(twin, "dense", dense_model, X, y, **kw)
    sparse, trainer = train(twin, "sparse", sparse_model, X, y, exact=True, **kw)
    assert dense.steps_done == sparse.steps_done == 300
    assert_same_iterates(dense_model, sparse_model)
    assert_same_iterates(dense.best, sparse.best)
    assert dense.history["objective"] == sparse.history["objective"]
    assert dense.history["worst_index"] == sparse.history["worst_index"]
    assert dense.history["step_size"] == sparse.history["step_size"]
    assert sparse.best_objective < sparse.history["objective"][0]  # it trains
    # the sparse step does less work, and counts it
    assert max(sparse.history["flops"]) < min(dense.history["flops"])
    assert sparse.info["changed_samples"] > 0 and sparse.info["compared"] > 0


@pytest.mark.parametrize("kind,dtype", [("lmm", np.float64), ("deep", np.float32)])
def test_twin_sparse_state_equals_fresh_forward_every_step(twin, kind, dtype):
    model, X, y = problem(kind, dtype, seed_value=3)  # noqa: N806
    check = state_checker(twin, exact=True)
    train(twin, "sparse", model, X, y, steps=60, lr=0.1, exact=True, check=check)
    assert check.steps == list(range(60))


def test_twin_cached_mode_stays_close_and_refreshes(twin):
    """Cached mode: rounding drift against a fresh forward stays tiny between
    refreshes, and the iterates stay within rounding of the dense ones."""
    model, X, y = problem("lmm", np.float64, seed_value=5)  # noqa: N806
    dense_model, sparse_model = model.copy(), model.copy()
    train(twin, "dense", dense_model, X, y, steps=200)
    check = state_checker(twin, exact=False, atol=1e-12)
    result, trainer = train(
        twin, "sparse", sparse_model, X, y, steps=200, refresh_every=30, check=check
    )
    assert result.info["refreshes"] == 1 + 200 // 30
    assert result.info["cache_hits"] > 0  # worst samples recur
    a, b = host_parameters(dense_model), host_parameters(sparse_model)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-12, err_msg=name)


def test_twin_cached_mode_with_many_samples_recomputes_columns(twin):
    """More selected samples than the cached repair serves: the changed columns are
    recomputed, and the state stays exact."""
    model, X, y = problem("lmm", np.float64, seed_value=6)  # noqa: N806
    q = CACHED_MAX_SAMPLES + 1
    check = state_checker(twin, exact=True)
    result, _ = train(twin, "sparse", model, X, y, steps=8, q=q, check=check)
    assert result.info["cache_misses"] == 0


@pytest.mark.parametrize("loss", ["cross_entropy", "hinge"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_trainers_equal_cpu_dense_trainer(twin, dtype, loss):
    """The GPU algorithm (on its twins) and the CPU dense trainer: same iterates."""
    model, X, y = problem("lmm", dtype, seed_value=1)  # noqa: N806
    cpu_model, gpu_model = model.copy(), model.copy()
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # tiny kernels: threads cost more than they give
    try:
        mp.fit(cpu_model, X, y, method="dense", steps=60, lr=0.05, loss=loss)
    finally:
        numba.set_num_threads(threads)
    train(twin, "sparse", gpu_model, X, y, steps=60, loss=loss, exact=True)
    assert_same_iterates(cpu_model, gpu_model)


def test_make_gpu_trainer_refuses_arrays_of_another_backend(twin):
    model, X, y = problem("lmm", np.float64)  # noqa: N806
    with pytest.raises(TypeError, match="X is a builtins.list"):
        make_gpu_trainer("sparse", model, X.tolist(), np.asarray(y), "hinge", kernels=twin)
    with pytest.raises(ValueError, match="method"):
        make_gpu_trainer("sideways", model, X, np.asarray(y), "hinge", kernels=twin)


@pytest.mark.skipif(backend.gpu_available(), reason="a GPU is available here")
def test_lmm_on_cupy_without_gpu_fails_at_once():
    with pytest.raises(backend.BackendUnavailableError, match="cupy"):
        mp.LMM(4, 8, 6, 3, backend="cupy")
    with pytest.raises(backend.BackendUnavailableError, match="cupy"):
        make_sequential([4, 8, 3], ["MaxPlus"], backend="cupy")


# ----------------------------------------- the CUDA sources on the CPU, vs the twins


@pytest.mark.parametrize("columns", [None, [0, 3, 66, 5]])
@pytest.mark.parametrize("dtype", DTYPES)
def test_emulated_linear_equals_twin(emulation, twin, dtype, columns):
    shape = (70, 20, 67)
    assert_same_outputs(linear_case(emulation, dtype, shape, columns),
                        linear_case(twin, dtype, shape, columns))  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_emulated_backward_equals_twin(emulation, twin, dtype):
    assert_same_outputs(backward_case(emulation, dtype, (66, 9, 13)),
                        backward_case(twin, dtype, (66, 9, 13)))  # fmt: skip
    assert_same_outputs(selection_backward_case(emulation, dtype),
                        selection_backward_case(twin, dtype))  # fmt: skip


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_emulated_top2_equals_twin(emulation, twin, dtype, maximize):
    for shape in [(13, 1, 4), (40, 17, 9)]:
        assert_same_outputs(top2_case(emulation, dtype, shape, maximize, "ties"),
                            top2_case(twin, dtype, shape, maximize, "ties"))  # fmt: skip


@pytest.mark.parametrize(
    "dtype,n_out,maximize,kind,shared",
    [p for p in REPAIR_CASES if p.values[3] == "ties" or p.values[1] == 40],
)
def test_emulated_repair_equals_twin(emulation, twin, dtype, n_out, maximize, kind, shared):
    """The repair kernel (ballots, lane groups, strides) gives the twin's state, runner
    bounds, changed-output lists and counters, bitwise."""
    inputs = repair_inputs(dtype, n_out, maximize, kind, shared)
    mine = repair_case(emulation, inputs, maximize)
    assert_same_outputs(mine, repair_case(twin, inputs, maximize))
    assert_valid_repair(mine, inputs, maximize)


@pytest.mark.parametrize("dtype", DTYPES)
def test_emulated_losses_arithmetic_gather_equal_twin(emulation, twin, dtype):
    for loss in ("cross_entropy", "hinge"):
        assert_same_outputs(losses_case(emulation, dtype, loss), losses_case(twin, dtype, loss))
    assert_same_outputs(arithmetic_case(emulation, dtype), arithmetic_case(twin, dtype))
    rows, arrays, out_rows, parts = gather_case(emulation)
    np.testing.assert_array_equal(out_rows, rows)
    for a, part in zip(arrays, parts, strict=True):
        assert_bitwise(part, a[rows])


@pytest.mark.parametrize("method,exact", [("dense", False), ("sparse", True), ("sparse", False)])
def test_emulated_trainers_equal_twin_trainers(emulation, twin, method, exact):
    """A short run of each trainer through the real launchers and CUDA sources: the
    same iterates, state and counted FLOPs as on the twins."""
    model, X, y = problem("deep", np.float32, seed_value=2)  # noqa: N806
    X, y = X[:40], y[:40]  # noqa: N806
    runs = []
    for kernels in (emulation, twin):
        m = model.copy()
        runs.append((m, *train(kernels, method, m, X, y, steps=12, q=2, refresh_every=5,
                                exact=exact)))  # fmt: skip
    (m1, r1, t1), (m2, r2, t2) = runs
    assert_same_iterates(m1, m2)
    assert r1.history["flops"] == r2.history["flops"]
    assert r1.history["objective"] == r2.history["objective"]
    if method == "sparse":
        for a, b in zip(t1.state_values(), t2.state_values(), strict=True):
            assert_bitwise(a, b)
        assert_bitwise(t1.L, t2.L)


# ------------------------------------------------------------------------ with a GPU


@pytest.mark.gpu
@pytest.mark.parametrize("columns", [None, [0, 3, 66, 5]])
@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_linear_equals_twin_and_cpu(cuda, twin, dtype, shape, columns):
    if columns is not None:
        columns = [c for c in columns if c < shape[2]]
    out = linear_case(cuda, dtype, shape, columns)
    assert_same_outputs(out, linear_case(twin, dtype, shape, columns))
    if columns is None:  # and the network's forward on CuPy arrays, against the CPU kernel
        cp = cuda.xp
        Z = cp.empty((shape[0], shape[2]), dtype)  # noqa: N806
        from maxplus.kernels.gpu import linear_forward_gpu

        linear_forward_gpu(cp.asarray(out["X"]), cp.asarray(out["W"]), cp.asarray(out["b"]), Z)
        assert_bitwise(Z.get(), cpu_linear.linear(out["X"], out["W"], out["b"]))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_backward_top2_losses_arithmetic_equal_twin(cuda, twin, dtype):
    assert_same_outputs(backward_case(cuda, dtype, (130, 70, 65)),
                        backward_case(twin, dtype, (130, 70, 65)))  # fmt: skip
    assert_same_outputs(selection_backward_case(cuda, dtype), selection_backward_case(twin, dtype))
    for maximize in (True, False):
        for shape in [(13, 1, 4), (40, 17, 9)]:
            for kind in ("random", "ties"):
                assert_same_outputs(top2_case(cuda, dtype, shape, maximize, kind),
                                    top2_case(twin, dtype, shape, maximize, kind))  # fmt: skip
    hinge = losses_case(cuda, dtype, "hinge")
    assert_same_outputs(hinge, losses_case(twin, dtype, "hinge"))
    ce, ce_twin = (
        losses_case(cuda, dtype, "cross_entropy"),
        losses_case(twin, dtype, "cross_entropy"),
    )
    np.testing.assert_allclose(
        ce["all"], ce_twin["all"], rtol=1e-6 if dtype == np.float32 else 1e-14
    )
    assert_same_outputs(arithmetic_case(cuda, dtype), arithmetic_case(twin, dtype))
    rows, arrays, out_rows, parts = gather_case(cuda)
    np.testing.assert_array_equal(out_rows, rows)
    for a, part in zip(arrays, parts, strict=True):
        assert_bitwise(part, a[rows])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,n_out,maximize,kind,shared", REPAIR_CASES)
def test_gpu_repair_equals_twin(cuda, twin, dtype, n_out, maximize, kind, shared):
    inputs = repair_inputs(dtype, n_out, maximize, kind, shared)
    mine = repair_case(cuda, inputs, maximize)
    assert_same_outputs(mine, repair_case(twin, inputs, maximize))
    assert_valid_repair(mine, inputs, maximize)


def cupy_problem(kind, dtype, seed_value=0):
    """A problem with a copy of the model on the GPU (the same parameters)."""
    model, X, y = problem(kind, dtype, seed_value)  # noqa: N806
    cp = backend.require_cupy()
    lin = model.layers[0]
    layers = [mp.Linear(cp.asarray(lin.weight), cp.asarray(lin.bias))]
    for layer in model.layers[1:]:
        layers.append(type(layer)(cp.asarray(layer.weight), layer.maximize))
    if kind == "deep":
        gpu_model = mp.Sequential(layers, backend="cupy")
    else:
        gpu_model = mp.LMM.from_arrays(layers[0].weight, layers[0].bias, *(
            layer.weight for layer in layers[1:]))  # fmt: skip
    return model, gpu_model, X, y


@pytest.mark.gpu
@pytest.mark.parametrize("kind,dtype,loss,q,rule", SPARSE_VS_DENSE)
def test_gpu_fit_sparse_equals_dense_bitwise(cuda, kind, dtype, loss, q, rule):
    """mp.fit on CuPy arrays: sparse (exact) and dense GPU iterates are identical, and
    CuPy arrays come back."""
    _, model, X, y = cupy_problem(kind, dtype)  # noqa: N806
    cp = cuda.xp
    objective = "worst" if q == 1 else ("topq", q)
    lr = 0.5 if rule == "polyak" else 0.05
    kw = {"objective": objective, "steps": 300, "step": rule, "lr": lr, "loss": loss}
    dense_model, sparse_model = model.copy(), model.copy()
    dense = mp.fit(dense_model, cp.asarray(X), cp.asarray(y), method="dense", **kw)
    sparse = mp.fit(sparse_model, cp.asarray(X), cp.asarray(y), method="sparse", exact=True, **kw)
    assert_same_iterates(dense_model, sparse_model)
    assert dense.history["worst_index"] == sparse.history["worst_index"]
    assert all(isinstance(p, cp.ndarray) for p in sparse.best.named_parameters().values())
    assert isinstance(sparse_model.scores(cp.asarray(X)), cp.ndarray)
    cached_model = model.copy()
    mp.fit(cached_model, cp.asarray(X), cp.asarray(y), method="sparse", **kw)
    a, c = host_parameters(dense_model), host_parameters(cached_model)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for name in a:
        np.testing.assert_allclose(a[name], c[name], rtol=0, atol=tol, err_msg=name)


@pytest.mark.gpu
@pytest.mark.parametrize("kind,dtype", [("lmm", np.float64), ("deep", np.float32)])
def test_gpu_sparse_state_equals_fresh_forward_every_step(cuda, kind, dtype):
    _, model, X, y = cupy_problem(kind, dtype, seed_value=3)  # noqa: N806
    check = state_checker(cuda, exact=True)
    train(cuda, "sparse", model, X, y, steps=60, lr=0.1, exact=True, check=check)
    assert check.steps == list(range(60))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_equals_cpu(cuda, dtype):
    """The GPU and the CPU: the same forward pass (values bitwise, selections
    identical), and, with the hinge loss (no exp/log, whose last bits differ between
    the devices), the same iterates bitwise; with cross-entropy, within rounding."""
    cpu_model, gpu_model, X, y = cupy_problem("lmm", dtype, seed_value=4)  # noqa: N806
    cp = cuda.xp
    cpu_fw, gpu_fw = cpu_model.forward(X), gpu_model.forward(cp.asarray(X))
    for a, b in zip(cpu_fw.values, gpu_fw.values, strict=True):
        assert_bitwise(b.get(), a)
    for a, b in zip(cpu_fw.selections[1:], gpu_fw.selections[1:], strict=True):
        np.testing.assert_array_equal(b.get(), a)
    for loss in ("hinge", "cross_entropy"):
        c, g = cpu_model.copy(), gpu_model.copy()
        steps = 200 if loss == "hinge" else 20
        mp.fit(c, X, y, method="dense", steps=steps, lr=0.05, loss=loss)
        mp.fit(g, cp.asarray(X), cp.asarray(y), method="sparse", exact=True, steps=steps,
               lr=0.05, loss=loss)  # fmt: skip
        if loss == "hinge":
            assert_same_iterates(c, g)
        else:
            a, b = host_parameters(c), host_parameters(g)
            for name in a:
                np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-6)
