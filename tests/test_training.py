"""The sparse trainer produces the iterates of dense backpropagation and autograd.

Iterates are compared by their parameters (float64). ``exact=True`` keeps the
sparse state bitwise equal to a fresh forward pass, and the sparse and dense
trainers then agree bitwise; the cached mode agrees to rounding.
"""

import numba as nb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import maxplus as mp
from maxplus.dense import DenseTrainer
from maxplus.kernels.ordered_keys import INF_KEY, key_value, lesser_key, order_key
from maxplus.objectives import top_q
from maxplus.sparse import RECOMPUTE_BELOW, LayerState, RecomputedLayer, SparseTrainer
from maxplus.step_log import StepLog
from maxplus.torch_reference import autograd_gradient, torch_fit

STACKS = {
    "maxplus": ([5, 9, 3], ["MaxPlus"]),
    "lmm": ([5, 12, 8, 3], ["MinPlus", "MaxPlus"]),
    "deep": ([5, 10, 8, 6, 4], ["MaxPlus", "MinPlus", "MaxPlus"]),
}
OBJECTIVES = ["worst", ("topq", 6), "mean"]


def problem(seed, sizes, n=90, ties=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0]))
    if ties:
        X = np.round(2 * X) / 2
    y = rng.integers(0, sizes[-1], n)
    return X, y


def params_of(model):
    return {name: a.copy() for name, a in model.named_parameters().items()}


def assert_params_equal(a, b, atol=0.0):
    for name in a:
        if atol == 0.0:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("objective", OBJECTIVES, ids=str)
@pytest.mark.parametrize("loss", ["cross_entropy", "hinge"])
def test_sparse_dense_and_autograd_iterates_agree(stack, objective, loss):
    sizes, kinds = STACKS[stack]
    X, y = problem(7, sizes)
    start = mp.make_sequential(sizes, kinds, seed=3, dtype="float64")
    runs = {}
    for method, exact in [("dense", False), ("sparse", True), ("sparse", False)]:
        model = start.copy()
        mp.fit(
            model,
            X,
            y,
            objective=objective,
            method=method,
            steps=200,
            lr=0.05,
            loss=loss,
            exact=exact,
            refresh_every=37,
        )
        runs[method, exact] = params_of(model)
    assert_params_equal(runs["sparse", True], runs["dense", False])
    assert_params_equal(runs["sparse", False], runs["dense", False], atol=1e-12)
    reference, _, _ = torch_fit(start, X, y, objective=objective, steps=200, lr=0.05, loss=loss)
    assert_params_equal(runs["dense", False], reference, atol=1e-9)
    # the runs really moved: a test of equal iterates must not compare still models
    assert (
        max(np.abs(runs["dense", False][n] - start.named_parameters()[n]).max() for n in reference)
        > 1e-2
    )


@pytest.mark.parametrize("step,lr", [("diminishing", 0.2), ("polyak", 0.5)])
def test_step_rules_match_autograd(step, lr):
    sizes, kinds = STACKS["lmm"]
    X, y = problem(11, sizes)
    start = mp.make_sequential(sizes, kinds, seed=5, dtype="float64")
    model = start.copy()
    result = mp.fit(model, X, y, method="sparse", steps=300, step=step, lr=lr, target=0.1)
    reference, objectives, _ = torch_fit(start, X, y, steps=300, step=step, lr=lr, target=0.1)
    assert_params_equal(params_of(model), reference, atol=1e-9)
    np.testing.assert_allclose(result.history["objective"], objectives, rtol=0, atol=1e-10)


def test_tropical_gemm_autograd_is_the_same_reference():
    sizes, kinds = STACKS["lmm"]
    X, y = problem(2, sizes)
    start = mp.make_sequential(sizes, kinds, seed=1, dtype="float64")
    plain, _, _ = torch_fit(start, X, y, steps=100, lr=0.05, impl="plain")
    gemm, _, _ = torch_fit(start, X, y, steps=100, lr=0.05, impl="tropical_gemm")
    assert_params_equal(plain, gemm, atol=1e-9)


def test_iris_iterates_agree_after_many_steps():
    X, y = mp.load_iris()
    X = mp.Standardizer().fit_transform(X)
    start = mp.LMM(4, 16, 8, 3, seed=0, dtype="float64")
    sparse, dense = start.copy(), start.copy()
    mp.fit(sparse, X, y, method="sparse", steps=500, lr=0.05, exact=True)
    mp.fit(dense, X, y, method="dense", steps=500, lr=0.05)
    assert_params_equal(params_of(sparse), params_of(dense))
    reference, _, _ = torch_fit(start, X, y, steps=500, lr=0.05)
    assert_params_equal(params_of(sparse), reference, atol=1e-9)


def check_bounds(state, Hin):  # noqa: N803
    """The stored bounds of one tropical layer certify what the repair skips:

    * ``R3 + Dr`` bounds the goodness of every candidate neither selected nor a
      runner-up;
    * ``T − Dt`` bounds how good an input may become before one of its candidates
      could beat an output that does not select it;
    * ``T3`` bounds how good it may become before one of its candidates could pass
      the ``R3 + Dr`` of an output for which it is neither selected nor listed.
    """
    sign = 1.0 if state.maximize else -1.0
    W = state.layer.weight  # noqa: N806
    N, n_out = state.H.shape  # noqa: N806
    n_in = W.shape[1]
    seconds = state.S2.reshape(N, n_out, -1)
    goodness = sign * (W[None, :, :] + Hin[:, None, :])  # (N, n_out, n_in)
    inputs = np.arange(n_in)
    selected = state.S[:, :, None] == inputs
    listed = (seconds[:, :, :, None] == inputs).any(axis=2)
    r3 = (state.R3 + state.Dr[:, None])[:, :, None]
    assert np.all(np.where(selected | listed, -np.inf, goodness) <= r3)
    assert np.all(seconds != state.S[:, :, None])
    gap = sign * state.H[:, :, None] - sign * W[None, :, :]  # how far g(h_i) may rise
    t = np.where(selected, np.inf, gap).min(axis=1)
    assert np.all(state.T - state.Dt[:, None] <= t)
    t3 = np.where(selected | listed, np.inf, r3 - sign * W[None, :, :]).min(axis=1)
    assert np.all(state.T3 <= t3)


def check_state(trainer, model, X, exact):
    """The repaired state against a fresh forward pass (after bringing every sample
    up to date with the cached updates, without the exact refresh)."""
    trainer.synchronize(refresh=False)
    fresh = model.forward(X)
    Z = trainer.state_values()[0]
    if exact:
        np.testing.assert_array_equal(Z, fresh.values[0])
    else:
        assert np.max(np.abs(Z - fresh.values[0])) <= trainer.drift_bound()
    # the tropical state is exact given the stored linear outputs
    Hin = Z
    for i, layer in enumerate(model.layers[1:], start=1):
        values, selections = layer.forward(Hin, np)
        np.testing.assert_array_equal(trainer.state_values()[i], values)
        np.testing.assert_array_equal(trainer.selections[i], selections)
        if isinstance(trainer.layers[i - 1], LayerState):  # else recomputed: no bounds
            check_bounds(trainer.layers[i - 1], Hin)
        Hin = values
    if exact:
        np.testing.assert_array_equal(
            trainer.losses(), DenseTrainer(model, X, trainer.y, trainer.loss).losses()
        )


def train_checking_the_state(
    sizes, kinds, exact, ties, dtype, recompute_below, *, data_seed, model_seed, n, steps
):
    """Sparse steps on the top two losses, the repaired state checked against a fresh
    forward pass before each step and after the last (``recompute_below``: see
    :class:`maxplus.sparse.SparseTrainer`; 0 repairs every layer)."""
    X, y = problem(data_seed, sizes, n=n, ties=ties)
    X = X.astype(dtype)
    model = mp.make_sequential(sizes, kinds, seed=model_seed, dtype=dtype)
    if ties:  # weights on a grid: exact ties between candidates are frequent
        for layer in model.layers:
            layer.weight[...] = np.round(8 * layer.weight) / 8
    trainer = SparseTrainer(
        model, X, y, "cross_entropy", exact=exact, refresh_every=23, recompute_below=recompute_below
    )
    kinds = [type(state) for state in trainer.layers]
    assert kinds[0] is LayerState  # the first tropical layer is always repaired
    assert (RecomputedLayer in kinds) == (recompute_below > 0)  # both kinds are tested
    for _ in range(steps):
        check_state(trainer, model, X, exact)
        rows = top_q(trainer.losses(2), 2)
        trainer.apply(0.05, trainer.gradient(rows, 2))
    check_state(trainer, model, X, exact)


#: Every layer repaired, and the layers after the first recomputed (the default).
RECOMPUTE = {"repaired": 0, "recomputed": RECOMPUTE_BELOW}


@pytest.mark.parametrize("stack", [s for s in STACKS if s != "maxplus"])
@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("later", RECOMPUTE)
def test_repaired_state_equals_a_fresh_forward_after_every_step(stack, exact, ties, dtype, later):
    sizes, kinds = STACKS[stack]
    train_checking_the_state(
        sizes, kinds, exact, ties, dtype, RECOMPUTE[later], data_seed=13, model_seed=2, n=90,
        steps=150,
    )  # fmt: skip


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_repaired_state_equals_a_fresh_forward_with_one_tropical_layer(exact, ties, dtype):
    sizes, kinds = STACKS["maxplus"]
    train_checking_the_state(
        sizes, kinds, exact, ties, dtype, 0, data_seed=13, model_seed=2, n=90, steps=150
    )


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("later", RECOMPUTE)
def test_repaired_state_equals_a_fresh_forward_in_layers_of_many_outputs(exact, ties, later):
    """A min-plus layer of 40 inputs and 24 outputs, wider than the stacks above:
    the takeover pass's vectorised loop runs over several vectors of outputs and a
    remainder; recomputed, the second layer's loop over 24 inputs has a remainder too."""
    sizes, kinds = [5, 40, 24, 3], ["MinPlus", "MaxPlus"]
    train_checking_the_state(
        sizes, kinds, exact, ties, "float64", RECOMPUTE[later], data_seed=17, model_seed=6,
        n=120, steps=120,
    )  # fmt: skip


@pytest.mark.parametrize("stack", STACKS)
def test_refresh_makes_the_cached_state_a_fresh_forward_bitwise(stack):
    """A refresh recomputes only the linear columns moved since the last one; the
    state is then bitwise a fresh forward pass, and so are the losses."""
    sizes, kinds = STACKS[stack]
    X, y = problem(5, sizes)
    model = mp.make_sequential(sizes, kinds, seed=1, dtype="float64")
    trainer = SparseTrainer(model, X, y, "cross_entropy", refresh_every=37)
    for step in range(100):
        rows = top_q(trainer.losses(3), 3)
        trainer.apply(0.05, trainer.gradient(rows, 3))
        if step % 9 == 0:
            trainer.synchronize(refresh=True)
            fresh = model.forward(X)
            for stored, value in zip(trainer.state_values(), fresh.values, strict=True):
                np.testing.assert_array_equal(stored, value)
            for stored, chosen in zip(trainer.selections[1:], fresh.selections[1:], strict=True):
                np.testing.assert_array_equal(stored, chosen)
            np.testing.assert_array_equal(
                trainer.losses(), DenseTrainer(model, X, y, "cross_entropy").losses()
            )
    assert trainer.info()["refreshes"] == 12  # each restarts the count to the periodic one


@pytest.mark.parametrize("width", [None, 7])
def test_last_moves_lists_each_key_once_in_the_order_of_its_last_move(width):
    """The log's moved keys: each once, ordered by the step after which it last moved
    (within a step, as listed; a key listed twice in a step takes its later place),
    as a dict that re-inserts a key on each move orders them; split into rows and
    columns with a width. Hundreds of steps, so that the arrays grow, larger keys
    later (the key places grow), and a clear() half-way."""
    from maxplus.step_log import LastMoves

    rng = np.random.default_rng(0 if width is None else width)
    moves, order = LastMoves(width), {}
    for t in range(300):
        if t == 150:  # cleared (a refresh) and used again
            moves.clear()
            order = {}
        keys = rng.integers(0, 40 if t < 100 else 300, size=rng.integers(0, 6))  # more keys later
        moves.add(keys, t)
        for key in keys.tolist():
            order.pop(key, None)
            order[key] = t
        if t % 37 == 0 or t == 299:
            expected = np.array(list(order), dtype=np.int64)
            got = moves.arrays()
            np.testing.assert_array_equal(got[-1], np.array(list(order.values())))
            if width is None:
                np.testing.assert_array_equal(got[0], expected)
            else:
                np.testing.assert_array_equal(got[0] * width + got[1], expected)
                assert got[1].size == 0 or got[1].max() < width


@pytest.mark.parametrize("exact", [False, True])
def test_catch_up_lists_only_the_columns_whose_value_changed(exact):
    """A logged move that rounds to nothing (here a zero coefficient) is brought up to
    date (``visited``) but not listed: nothing downstream of it changed."""
    from maxplus.kernels.cpu_linear import catch_up, linear, sample_products

    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 4)).astype(np.float32)
    W, b = rng.standard_normal((3, 4)).astype(np.float32), np.zeros(3, np.float32)
    Z = linear(X, W, b)
    before = Z.copy()
    coefs = np.array([[0.0], [0.5]], dtype=np.float32)  # columns 0 and 2 of step 0
    cols = np.array([0, 2])
    W[cols] -= coefs * X[1]
    b[cols] -= coefs[:, 0]
    products = np.empty((1, 5))
    sample_products(np.ascontiguousarray(X.T), X[1:2], products)
    count, visited = np.zeros(5, np.int64), np.zeros(5, np.int64)
    idx, old = np.empty((5, 3), np.int64), np.empty((5, 3), np.float32)
    batch, first = np.arange(5), np.zeros(5, np.int64)
    step_ptr, step_rows = np.array([0, 2]), np.zeros((1, 1), np.int64)
    catch_up(
        Z, X, W, b, exact, batch, first, step_ptr, cols, coefs, step_rows, products,
        count, idx, old, visited, 2,
    )  # fmt: skip
    changed = Z[:, 2] != before[:, 2]
    assert changed.any() and np.array_equal(Z[:, 0], before[:, 0])
    np.testing.assert_array_equal(visited, 2)
    np.testing.assert_array_equal(count, changed.astype(np.int64))
    for n in np.flatnonzero(changed):
        assert idx[n, 0] == 2 and old[n, 0] == before[n, 2]


@pytest.mark.parametrize("n_cols", [1, 31, 32, 33, 70])
def test_refresh_columns_equal_the_full_forward_and_list_what_changed(n_cols):
    """A refresh recomputes the listed columns of ``Z`` (zero-padded to the kernel's
    width) bitwise as the full forward pass, leaves the others, and lists per sample
    exactly the columns whose value changed, in order, with their old values."""
    from maxplus.kernels.cpu_linear import linear, padded_columns, refresh_columns

    rng = np.random.default_rng(n_cols)
    N, d, h = 140, 37, 80  # noqa: N806
    X = rng.standard_normal((N, d)).astype(np.float32)
    X[rng.random((N, d)) < 0.6] = 0.0
    X[5] = 0.0  # a sample with no non-zero feature
    W, b = rng.standard_normal((h, d)).astype(np.float32), rng.standard_normal(h).astype(np.float32)
    Z = linear(X, W, b)
    cols = np.sort(rng.choice(h, n_cols, replace=False))
    moved = cols[::2]  # the other listed columns did not move: nothing of theirs changes
    W[moved] += np.float32(1e-3) * rng.standard_normal((moved.size, d)).astype(np.float32)
    b[moved] -= np.float32(1e-3)
    before = Z.copy()
    count = np.zeros(N, np.int64)
    idx, old = np.empty((N, n_cols), np.int64), np.empty((N, n_cols), np.float32)
    WT, bias = padded_columns(W, b, cols)
    assert WT.shape[1] % 32 == 0 and WT.shape[1] >= n_cols
    refresh_columns(X, WT, bias, cols, Z, count, idx, old)
    np.testing.assert_array_equal(Z, linear(X, W, b))
    for n in range(N):
        changed = cols[Z[n, cols] != before[n, cols]]
        np.testing.assert_array_equal(idx[n, : count[n]], changed)
        np.testing.assert_array_equal(old[n, : count[n]], before[n, changed])
    np.testing.assert_array_equal(idx[5, : count[5]], moved)  # z = b there: every moved one


@pytest.mark.parametrize("n", [1, 4, 7, 9, 1100])
@pytest.mark.parametrize("k", [1, 3])
def test_sample_products_sum_each_row_in_feature_order(n, k):
    """The cached products ``X x_s`` are float64 sums in increasing feature order,
    bitwise, whichever block of samples is summed side by side and however many
    ``x_s`` at once; the zero features of ``x_s``, skipped, change no bit (negative
    ``X`` included)."""
    from maxplus.kernels.cpu_linear import sample_products

    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, 13)).astype(np.float32)
    V = rng.standard_normal((k, 13)).astype(np.float32)
    V[:, ::3] = 0.0
    X[:, 1::4] = 0.0
    out = np.empty((k, n))
    sample_products(np.ascontiguousarray(X.T), V, out)
    for s in range(k):
        expected = np.zeros(n)
        for i in range(13):
            expected += X[:, i].astype(np.float64) * np.float64(V[s, i])
        np.testing.assert_array_equal(out[s], expected)


@nb.njit
def keys_and_least(a):
    """The order keys of ``a`` and the value of the least."""
    keys = np.empty(a.shape[0], dtype=np.int64)
    least = INF_KEY
    for j in range(a.shape[0]):
        keys[j] = order_key(a[j])
        least = lesser_key(least, keys[j])
    return keys, key_value(least)


@settings(deadline=None)  # the first example compiles the kernel
@given(
    st.lists(
        st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, 5e-324, -5e-324]),
        max_size=40,
    )
)
def test_order_keys_order_as_the_floats_and_give_back_their_minimum_bitwise(values):
    """The repair's vectorised minima: keys compare as the values do (``-0.0`` just
    below ``+0.0``), and the least key is the minimum, bitwise (``+inf`` for none)."""
    a = np.array(values, dtype=np.float64)
    keys, least = keys_and_least(a)
    for u, ku in zip(a, keys, strict=True):
        for v, kv in zip(a, keys, strict=True):
            assert (ku < kv) == (u < v or (u == v == 0.0 and np.signbit(u) and not np.signbit(v)))
    expected = np.min(a, initial=np.inf)
    assert least == expected
    if a.size and expected == 0.0:
        assert np.signbit(least) == any(np.signbit(a[a == 0.0]))


def test_product_cache_computes_each_missing_product_once_and_drops_the_oldest():
    from maxplus.sparse import ProductCache

    X = np.random.default_rng(0).standard_normal((9, 5)).astype(np.float32)
    cache = ProductCache(X, max_bytes=3 * 8 * 9)  # room for three products
    first = cache.get([4, 2, 4])
    assert (cache.misses, cache.hits) == (2, 1) and first[0] is first[2]
    for s, r in zip([4, 2, 4], first, strict=True):
        np.testing.assert_allclose(r, X.astype(np.float64) @ X[s].astype(np.float64), rtol=1e-12)
    cache.get([7])
    cache.get([5])  # a fourth product: the least recently used (2) goes
    assert list(cache.entries) == [4, 7, 5] and cache.misses == 4


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_takeover_check_is_the_takeover_pass_in_the_layers_precision(maximize, dtype):
    """``takeover_check`` against ``takeover_pass`` for every (sample, input) of a
    layer, half its values on a coarse grid (ties, signed zeros), the input's value
    moved up, down or kept: the same outputs taken over, and the same threshold minimum, bitwise in
    float64 and within half a float32 unit in its last place in float32 (which the
    stored threshold's margin covers)."""
    from maxplus.kernels.cpu_repair import takeover_check, takeover_pass
    from maxplus.sparse import LayerState

    rng = np.random.default_rng(5)
    n_out, n_in, N = 9, 12, 20  # noqa: N806
    W = (np.round(rng.standard_normal((n_out, n_in)) * 2) / 2).astype(dtype)  # noqa: N806
    W[0, :2] = [-0.0, 0.0]
    W[n_out // 2 :] = rng.standard_normal((n_out - n_out // 2, n_in)) * 3  # off the grid
    layer = (mp.MaxPlus if maximize else mp.MinPlus)(W)
    Hin = (np.round(rng.standard_normal((N, n_in)) * 2) / 2).astype(dtype)  # noqa: N806
    Hin[::2, 0] = -0.0
    Hin[1::2] = rng.standard_normal((N // 2, n_in)) * 3  # off the grid: gaps round
    state = LayerState(layer, Hin)
    H, S, S2 = state.H, state.S, state.S2  # noqa: N806
    rounded = 0
    for n in range(N):
        for i in range(n_in):
            for shift in (-1.0, 0.0, 0.7):
                hi = Hin.dtype.type(Hin[n, i] + shift)
                take_pass, take_check = np.zeros(n_out, bool), np.zeros(n_out, bool)
                any_pass, t_pass, _ = takeover_pass(
                    state.WT, H, S, S2, state.R3.copy(), n, i, hi, 0.0, maximize, take_pass
                )
                any_check, t_check = takeover_check(state.WT, H, S, n, i, hi, maximize, take_check)
                assert any_check == any_pass
                if any_pass:
                    np.testing.assert_array_equal(take_check, take_pass)
                if dtype == "float64" or not np.isfinite(t_pass):
                    assert t_check == t_pass and np.signbit(t_check) == np.signbit(t_pass)
                else:
                    assert abs(t_check - t_pass) <= 0.5 * np.spacing(np.float32(abs(t_pass)))
                    rounded += t_check != t_pass
    assert dtype == "float64" or rounded > 0  # the float32 gaps did round


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("n_in", [3, 5, 6, 7, 40])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_rescan_ranks_every_candidate_as_its_definition_says(maximize, n_in, dtype):
    """``rescan_row``: the best candidate, the next ``SECONDS`` in order (goodness,
    then the lower index on ties), ``-1`` where there are fewer, and the bound for the
    rest: the best of the others, moved ``HEADROOM`` of the way to the last listed;
    ties are frequent (values on a coarse grid, with signed zeros and infinities).
    float32 ranks by integer keys, float64 by insertion."""
    from maxplus.kernels.cpu_repair import HEADROOM, SECONDS, rescan_row

    rng = np.random.default_rng(n_in)
    n_out, N = 7, 30  # noqa: N806
    W = (np.round(rng.standard_normal((n_out, n_in)) * 2) / 2).astype(dtype)  # noqa: N806
    Hin = (np.round(rng.standard_normal((N, n_in)) * 2) / 2).astype(dtype)  # noqa: N806
    W[0, :2], Hin[::3, 0], Hin[1::3, 1] = [-0.0, 0.0], -0.0, 0.0  # noqa: N806
    W[1, -1] = -np.inf  # a candidate of goodness -inf (or +inf) in output 1
    S2 = np.zeros((N, n_out * SECONDS), dtype=np.int16)  # noqa: N806
    top_g, top_i = np.empty(SECONDS + 1), np.empty(SECONDS + 1, dtype=np.int64)
    keys = np.empty(n_in, dtype=np.int64)
    sign = 1.0 if maximize else -1.0
    for n in range(N):
        for j in range(n_out):
            value, best, rest = rescan_row(W, Hin, n, j, maximize, S2, top_g, top_i, keys)
            goodness = sign * (W[j] + Hin[n]).astype(np.float64)
            order = sorted(range(n_in), key=lambda i: (-goodness[i], i))
            assert best == order[0] and value == W[j, best] + Hin[n, best]
            listed = order[1 : SECONDS + 1]
            expected = listed + [-1] * (SECONDS - len(listed))
            assert S2[n, j * SECONDS : (j + 1) * SECONDS].tolist() == expected
            others = goodness[order[SECONDS + 1]] if n_in > SECONDS + 1 else -np.inf
            if others > -np.inf:
                last = goodness[order[SECONDS]]
                assert rest == others + HEADROOM * (last - others)
            else:
                assert rest == -np.inf


def rescan_arguments(N, n_out, n_in, dtype):  # noqa: N803
    """The runner bounds (unknown), their accumulators, the samples' calm flags and
    the output lists that ``rescan_layer`` takes for ``N`` samples of a layer
    ``n_out × n_in``."""
    R2, V = np.full((N, n_out), np.inf), np.zeros((N, n_out))  # noqa: N806
    co = np.zeros(N, np.int64), np.empty((N, n_out), np.int64), np.empty((N, n_out), dtype)
    return R2, V, np.zeros(N, np.bool_), co, np.zeros((N, 6), np.int64)


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_in", [1, 7, 40])
def test_a_recomputed_layer_selects_as_a_fresh_forward_pass(maximize, dtype, n_in):
    """``rescan_layer`` against the layer's forward pass, bitwise, on a coarse grid
    (ties everywhere) with signed zeros: ``-0.0`` ties with ``+0.0`` (the lower input
    wins and its own zero is kept). It brings up to date only samples whose inputs
    or weights changed and lists the outputs that changed."""
    from maxplus.kernels.cpu_rescan import rescan_layer

    rng = np.random.default_rng(n_in)
    n_out, N = 6, 50  # noqa: N806
    layer = (mp.MaxPlus if maximize else mp.MinPlus)(
        (np.round(rng.standard_normal((n_out, n_in)) * 2) / 2).astype(dtype)
    )
    Hin = (np.round(rng.standard_normal((N, n_in)) * 2) / 2).astype(dtype)  # noqa: N806
    H, S = layer.forward(Hin, np)  # noqa: N806 - the state the trainer starts from
    S = S.astype(np.int16)  # noqa: N806
    R2, V, calm, (co_count, co_idx, co_old), work = rescan_arguments(N, n_out, n_in, dtype)  # noqa: N806

    old_H, old_S = H.copy(), S.copy()  # noqa: N806
    before = Hin.copy()
    Hin[1::3] += 0.5  # samples 1, 4, 7, ... changed; of the batch, only some
    if n_in > 1:  # output 0 ties -0.0 with +0.0: sample 4 in that order, sample 10 reversed
        layer.weight[0, :2] = [-0.0, -0.0]
        Hin[[4, 10]] = -10.0 if maximize else 10.0
        Hin[4, :2], Hin[10, :2] = [-0.0, 0.0], [0.0, -0.0]
    batch = np.arange(0, N, 2)
    count = np.where(batch % 3 == 1, n_in, 0)
    idx = np.tile(np.arange(n_in), (batch.size, 1))
    no_rises = np.zeros((1, n_out))
    rescan_layer(Hin, layer.weight, H, S, R2, V, calm, maximize, batch, count, idx, before[batch],
                 np.empty(0, np.int64), np.zeros(batch.size, np.int64), no_rises, 1e-6,
                 co_count, co_idx, co_old, work, 2)  # fmt: skip
    values, selections = layer.forward(Hin, np)
    if n_in > 1:
        assert S[4, 0] == S[10, 0] == 0 and np.signbit(H[4, 0]) and not np.signbit(H[10, 0])
    for b, n in enumerate(batch):
        if count[b]:
            np.testing.assert_array_equal(H[n], values[n])
            np.testing.assert_array_equal(np.signbit(H[n]), np.signbit(values[n]))
            np.testing.assert_array_equal(S[n], selections[n])
            assert work[n].sum() == n_out * n_in  # recomputed whole: one pass an output
        else:
            np.testing.assert_array_equal(H[n], old_H[n])
            np.testing.assert_array_equal(S[n], old_S[n])
            assert work[n].sum() == 0
        moved = np.flatnonzero(H[n] != old_H[n])
        np.testing.assert_array_equal(co_idx[b, : co_count[b]], moved)
        np.testing.assert_array_equal(co_old[b, : co_count[b]], old_H[n, moved])
    assert co_count.sum() > 0
    # a weight moved at logged step 3: the samples synchronised before it are brought
    # up to date, those after it wait
    layer.weight[0, 0] += 4.0 if maximize else -4.0  # input 0 takes output 0 over
    first = np.where(batch % 4 == 0, 2, 5)
    rises = np.zeros((6, n_out))
    rises[4:, 0] = 4.0  # the rise of row 0, logged at step 3
    rescan_layer(Hin, layer.weight, H, S, R2, V, calm, maximize, batch, np.zeros_like(count), idx,
                 before[batch], np.array([3]), first, rises, 1e-6,
                 co_count, co_idx, co_old, work, 2)  # fmt: skip
    values, _ = layer.forward(Hin, np)
    for b, n in enumerate(batch):
        stale = first[b] <= 3
        if stale:
            np.testing.assert_array_equal(H[n], values[n])
        assert (co_count[b] > 0) <= stale
    waiting = batch[first > 3]  # not brought up to date: some of them are stale
    assert any(co_count[: batch.size][first <= 3] > 0)
    assert any(H[waiting, 0] != values[waiting, 0])


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_in", [1, 64])
def test_a_recomputed_layer_keeps_selections_its_runner_bounds_certify(maximize, dtype, n_in):
    """Rounds of small moves on a coarse grid (ties everywhere): some inputs rise or
    fall, some weights rise or fall with each row's largest rise logged, and half of
    the samples are brought up to date. After every round those equal a fresh
    forward pass bitwise. Among the outputs of samples checked with known bounds,
    the three ways an output is kept up to date all happen: kept (its selection
    beats the bound), taken over by a risen input without a rescan, and rescanned."""
    from maxplus.kernels.cpu_rescan import CHECK_COST, rescan_layer

    def run():
        rng = np.random.default_rng(100 + n_in)
        n_out, N, grid = 5, 40, 0.25  # noqa: N806
        W = (np.round(rng.standard_normal((n_out, n_in)) * 4) * grid).astype(dtype)  # noqa: N806
        layer = (mp.MaxPlus if maximize else mp.MinPlus)(W)
        Hin = (np.round(rng.standard_normal((N, n_in)) * 4) * grid).astype(dtype)  # noqa: N806
        H, S = layer.forward(Hin, np)  # noqa: N806
        S = S.astype(np.int16)  # noqa: N806
        R2, V, calm, (co_count, co_idx, co_old), work = rescan_arguments(N, n_out, n_in, dtype)  # noqa: N806
        sign = 1.0 if maximize else -1.0
        rise_sums, moves, synced = [np.zeros(n_out)], [], np.zeros(N, np.int64)
        kept = taken = rescanned = 0
        seen = Hin.copy()  # the inputs each sample was last brought up to date with
        for step in range(40):
            # weights: two entries move by one grid step either way
            rows = rng.integers(0, n_out, 2)
            cols = rng.integers(0, n_in, 2)
            delta = rng.choice([-grid, grid], 2).astype(dtype)
            rise = np.zeros(n_out)
            for r, c, d in zip(rows, cols, delta, strict=True):
                layer.weight[r, c] += d
                rise[r] = max(rise[r], sign * d)
            rise_sums.append(rise_sums[-1] + rise)
            moves.append(step)
            # inputs: a fifth of the samples move one input by one to eight grid steps
            for n in np.flatnonzero(rng.random(N) < 0.2):
                Hin[n, rng.integers(0, n_in)] += rng.choice([-8, -2, -1, 1, 2, 8]) * grid
            # half of the samples are brought up to date with every change since
            batch = np.flatnonzero(rng.random(N) < 0.5)
            differ = Hin[batch] != seen[batch]
            count = differ.sum(axis=1)
            idx = np.zeros((batch.size, n_in), np.int64)
            old = np.zeros((batch.size, n_in), dtype)
            for b, n in enumerate(batch):
                changed = np.flatnonzero(differ[b])
                idx[b, : changed.size], old[b, : changed.size] = changed, seen[n, changed]
            old_S = S[batch].copy()  # noqa: N806
            # checked with every bound known: then its work tells how many it rescanned
            known = calm[batch] & (R2[batch] != np.inf).all(axis=1) & (count * CHECK_COST <= n_in)
            work[:] = 0
            rescan_layer(Hin, layer.weight, H, S, R2, V, calm, maximize, batch, count, idx, old,
                         np.array(moves), synced[batch], np.array(rise_sums), 1e-9,
                         co_count, co_idx, co_old, work, 2)  # fmt: skip
            synced[batch], seen[batch] = step + 1, Hin[batch]
            values, selections = layer.forward(Hin, np)
            if not np.array_equal(S[batch], selections[batch]) or not np.array_equal(
                H[batch], values[batch]
            ):
                return None
            for b in np.flatnonzero(known):
                n = batch[b]
                moved = idx[b, : count[b]]
                risen = np.count_nonzero(sign * Hin[n, moved] > sign * old[b, : count[b]])
                rescans, rest = divmod(work[n].sum() - count[b] - n_out * (1 + risen), 2 * n_in)
                assert rest == 0
                switched = np.count_nonzero(S[n] != old_S[b])
                rescanned += rescans
                taken += max(0, switched - rescans)
                kept += n_out - max(switched, rescans)
        return kept, taken, rescanned

    counts = run()
    assert counts is not None, "a sample brought up to date differs from a fresh forward pass"
    kept, taken, rescanned = counts
    assert kept > 0
    if n_in > 1:  # (one input: nothing to rescan or take over)
        assert taken > 0 and rescanned > 0


def selection_after_a_weight_rise(maximize, logged):
    """One output, input 1 ahead of input 0 by 1, brought up to date twice (its runner
    bound is then known); the weight of input 0 rises by 2 at logged step 2, the rise
    logged or not. Returns the selection once brought up to date again."""
    from maxplus.kernels.cpu_rescan import rescan_layer

    sign = 1.0 if maximize else -1.0
    layer = (mp.MaxPlus if maximize else mp.MinPlus)(np.zeros((1, 2)))
    Hin = np.array([[0.0, sign]])  # noqa: N806
    H, S = layer.forward(Hin, np)  # noqa: N806
    R2, V, calm, (co_count, co_idx, co_old), work = rescan_arguments(1, 1, 2, np.float64)  # noqa: N806
    none = np.zeros((1, 1), np.int64)
    rises = np.zeros((4, 1))
    for step in range(3):
        if step == 2:
            assert S[0, 0] == 1 and R2[0, 0] != np.inf
            layer.weight[0, 0] += 2 * sign
            rises[3] = 2.0 if logged else 0.0
        rescan_layer(Hin, layer.weight, H, S, R2, V, calm, maximize, none[0], none[0], none,
                     none.astype(float), np.arange(3), np.array([step]), rises, 1e-9,
                     co_count, co_idx, co_old, work, 2)  # fmt: skip
    return S[0, 0]


@pytest.mark.parametrize("maximize", [True, False])
def test_a_recomputed_layer_sees_a_weight_rise_through_the_logged_rises(maximize):
    """Once an output's runner bound is known, a weight rise that makes another input
    the best switches the output, and leaves it stale if the rise is not logged: the
    bound is all that sees it."""
    assert selection_after_a_weight_rise(maximize, logged=True) == 0
    assert selection_after_a_weight_rise(maximize, logged=False) == 1


def test_state_indices_take_the_narrowest_type_that_holds_them():
    from maxplus.sparse import index_dtype

    assert index_dtype(512) == np.int16
    assert index_dtype(2**15 - 1) == np.int16
    assert index_dtype(2**15) == np.int32


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("loss", ["cross_entropy", "hinge"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_waiting_sample_stays_under_its_loss_bound(stack, exact, loss, dtype):
    """Brought up to date, a sample that waited has a loss at most its stored loss plus
    its bound and the rounding margin; samples do wait, and some losses do rise."""
    sizes, kinds = STACKS[stack]
    X, y = problem(7, sizes, n=300)
    X = X.astype(dtype)
    model = mp.make_sequential(sizes, kinds, seed=3, dtype=dtype)
    trainer = SparseTrainer(model, X, y, loss, exact=exact, refresh_every=10**6)
    waited = rose = 0
    for step in range(150):
        rows = top_q(trainer.losses(1), 1)
        trainer.apply(0.05, trainer.gradient(rows, 1))
        if step % 10 == 9:
            if step % 20 == 9:
                trainer.tighten()
            waiting = trainer.bound > 0
            stored = trainer.L.copy()
            ceiling = stored + trainer.bound + trainer.rounding_margins()[0]
            trainer.synchronize(refresh=False)
            assert np.all(trainer.L[waiting] <= ceiling[waiting])
            waited += int(waiting.sum())
            rose += int(np.sum(trainer.L[waiting] > stored[waiting]))
    assert waited > 0 and rose > 0


def move_one_linear_unit(trainer, X, unit, source, coef):  # noqa: N803
    """Apply a step that moves only linear unit ``unit``, along sample ``source``
    with coefficient ``coef`` (no tropical weight moves)."""
    from maxplus.gradients import SparseGradient, TropicalEntries

    empty = TropicalEntries(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    g = SparseGradient(
        np.array([unit]),
        coef * X[[source]],
        np.array([coef]),
        [empty] * len(trainer.layers),
        np.array([source]),
        np.array([[coef]]),
    )
    trainer.apply(1.0, g)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_move_of_one_linear_unit_stays_under_the_loss_bounds(stack, sign):
    """One linear unit moved far, every sample waiting: only the first tropical layer's
    selected units can pass a rise (min-plus) or a fall (max-plus) on, so samples that
    do not select it get a bound without that move, and their losses keep under it;
    the other direction does raise losses of samples that do not select it."""
    sizes, kinds = STACKS[stack]
    X, y = problem(11, sizes, n=400)
    model = mp.make_sequential(sizes, kinds, seed=4, dtype="float64")
    trainer = SparseTrainer(model, X, y, "cross_entropy", refresh_every=10**6)
    first = trainer.layers[0]
    unit, source, coef = 1, 0, sign * 0.5
    unselected = first.head[:, unit] < 0
    stored = trainer.L.copy()
    move_one_linear_unit(trainer, X, unit, source, coef)
    trainer.tighten()
    move = -coef * (X @ X[source] + 1.0)  # Δz of the moved unit, per sample
    ceiling = stored + trainer.bound + trainer.rounding_margins()[0]
    trainer.synchronize(refresh=False)
    assert np.all(trainer.L <= ceiling)
    passed_on = move > 0 if first.maximize else move < 0  # the direction not restricted
    spared = unselected & ~passed_on
    assert spared.sum() > 0 and np.all(trainer.bound[spared] == 0)  # synchronised now
    assert np.all(ceiling[spared] - stored[spared] < np.abs(move[spared]))
    risen = trainer.L - stored > 1e-9
    assert np.any(risen & unselected & passed_on)


@pytest.mark.parametrize("stack", STACKS)
def test_a_small_move_of_an_unselected_unit_is_absorbed_before_its_thresholds(stack):
    """A small move of one linear unit: samples whose first tropical layer does not
    select it and whose takeover thresholds are far enough get no bound for it in
    either direction; the losses keep under the bounds."""
    sizes, kinds = STACKS[stack]
    X, y = problem(11, sizes, n=400)
    model = mp.make_sequential(sizes, kinds, seed=4, dtype="float64")
    trainer = SparseTrainer(model, X, y, "cross_entropy", refresh_every=10**6)
    unit, source = 1, 0
    unselected = trainer.layers[0].head[:, unit] < 0
    stored = trainer.L.copy()
    for coef in (1e-3, -1e-3, 2e-3):  # back and forth: the unit ends where it went farthest
        move_one_linear_unit(trainer, X, unit, source, coef)
    unknown = trainer.bound.copy()
    trainer.tighten()
    assert np.all(trainer.bound <= unknown)
    move = np.abs(1e-3 * (X @ X[source] + 1.0))  # half the unit's move
    ceiling = stored + trainer.bound + trainer.rounding_margins()[0]
    absorbed = unselected & (ceiling - stored < move)
    assert absorbed.sum() > 0
    trainer.synchronize(refresh=False)
    assert np.all(trainer.L <= ceiling)


def moved_units_entry(cols, coef, n_samples):
    """A step that moved the linear units ``cols`` only (for the log)."""
    from maxplus.sparse import LogEntry

    products = [np.zeros(n_samples)] * coef.shape[0]
    empty = [np.zeros(0, np.int64)]
    return LogEntry(cols, coef, products, empty, empty, np.zeros(1), np.zeros(1), [np.zeros(3)])


class LossBoundsReference:
    """:class:`maxplus.loss_bounds.LossBounds` in NumPy, unit by unit (see
    :mod:`maxplus.kernels.cpu_bounds`)."""

    def __init__(self, head, T, Dt, Z, sign, margin):  # noqa: N803
        N, n_in = head.shape  # noqa: N806
        self.sign = sign
        self.room_at = np.where(head >= 0, -np.inf, T - Dt[:, None] - sign * Z - margin)
        self.gain = np.zeros((N, n_in))
        self.known = np.zeros((N, n_in), dtype=bool)
        self.unchecked = np.zeros((N, n_in), dtype=bool)
        self.worse, self.better, self.rival = np.zeros(N), np.zeros(N), np.zeros(N)
        self.unknown_worse, self.unknown_better = np.zeros(N), np.zeros(N)
        self.room, self.uniform = np.full(N, np.inf), 0.0

    def fold(self, m, rows):
        g, at = self.gain[rows, m], self.room_at[rows, m]
        selected = at == -np.inf
        self.worse[rows] = np.where(selected, np.maximum(self.worse[rows], -g), self.worse[rows])
        self.better[rows] = np.where(selected, np.maximum(self.better[rows], g), self.better[rows])
        rival = ~selected & (g > 0)
        self.rival[rows] = np.where(rival, np.maximum(self.rival[rows], g), self.rival[rows])
        self.room[rows] = np.where(rival, np.minimum(self.room[rows], at - g), self.room[rows])

    def step(self, cols, dz, extra):
        for k, m in enumerate(cols):
            self.known[self.gain[:, m] == 0, m] = False
            self.gain[:, m] += self.sign * dz[:, k]
            self.unchecked[:, m] = True
            unknown = ~self.known[:, m]
            g = self.gain[:, m]
            self.unknown_worse[unknown] = np.maximum(self.unknown_worse, -g)[unknown]
            self.unknown_better[unknown] = np.maximum(self.unknown_better, g)[unknown]
            self.fold(m, np.flatnonzero(~unknown))
        self.uniform += extra

    def resolve(self):
        for m in np.flatnonzero(self.unchecked.any(axis=0)):
            self.fold(m, np.flatnonzero(self.unchecked[:, m]))
        self.known |= self.unchecked
        self.unchecked[:] = False
        self.unknown_worse[:] = self.unknown_better[:] = 0.0

    @property
    def bound(self):
        w = np.maximum(self.worse, self.unknown_worse)
        b = np.maximum(self.better, self.unknown_better)
        counted = self.room <= w + 2 * self.uniform
        return self.uniform + w + np.where(counted, np.maximum(b, self.rival), b)


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("q", [1, 3])
def test_loss_bound_kernels_match_their_definition(maximize, q):
    """Units moving back and forth, some samples selecting them, some with thresholds
    near: the kernels' bounds and moves equal a NumPy reference step by step, before
    and after resolving what the first tropical layer selects, which tightens some."""
    from maxplus.loss_bounds import LossBounds

    rng = np.random.default_rng(8)
    N, n_in = 300, 40  # noqa: N806
    head = np.where(rng.random((N, n_in)) < 0.3, 2, -1).astype(np.int16)
    Z = rng.standard_normal((N, n_in)).astype(np.float32)  # noqa: N806
    sign = 1.0 if maximize else -1.0
    T = sign * Z + rng.exponential(0.05, (N, n_in))  # noqa: N806
    Dt = rng.exponential(0.01, N)  # noqa: N806
    log = StepLog(N, [n_in], [3], np.float32)
    bounds = LossBounds(N, n_in)
    reference = LossBoundsReference(head, T, Dt, Z, sign, 1e-6)
    first_layer = type("Layer", (), dict(head=head, T=T, Dt=Dt, maximize=maximize, margin=1e-6))
    tightened = 0
    for step in range(10):
        # three units (one at a time); the last step six (four at once, then two, for
        # q = 1: earlier, they would leave no rival uncounted for the check at the end)
        cols = rng.choice([1, 5, 6, 17, 30, 33], size=6 if step == 9 else 3, replace=False)
        coef = (0.02 * rng.standard_normal((q, cols.size))).astype(np.float32)
        products = rng.standard_normal((q, N)) * 3
        products[:, :5] = -1.0  # r + 1 = 0: no move
        largest = bounds.add_step(maximize, cols, coef, products, 1e-3)
        dz = -np.einsum("sk,sn->nk", coef.astype(np.float64), products + 1.0)
        bound_on_dz = np.sum(np.abs(coef).max(axis=1) * np.abs(products + 1).max(axis=1))
        assert largest == pytest.approx(bound_on_dz, rel=1e-12) and largest >= np.abs(dz).max()
        reference.step(cols, dz, 1e-3)
        log.append(moved_units_entry(cols, coef, N), samples=[0] * q)
        np.testing.assert_allclose(bounds.bound, reference.bound, rtol=1e-12, atol=1e-15)
        if step in (3, 4, 8):
            before = bounds.bound.copy()
            bounds.resolve(np.arange(N), log, first_layer, Z)
            reference.resolve()
            np.testing.assert_allclose(bounds.bound, reference.bound, rtol=1e-12, atol=1e-15)
            tightened += int(np.sum(bounds.bound < before))
    np.testing.assert_allclose(bounds.moved, reference.gain.T, rtol=1e-12, atol=1e-15)
    assert tightened > 0
    rival, room = bounds.acc[4], bounds.acc[5]
    counted = room <= bounds.acc[2] + 2 * bounds.acc[1]
    assert np.any(counted & (rival > 0)) and np.any(~counted & (rival > 0))
    bounds.reset(np.arange(0, N, 2), 0)
    assert np.all(bounds.bound[::2] == 0) and np.all(bounds.acc[5][::2] == np.inf)


def test_cached_drift_bound_is_meaningful():
    sizes, kinds = STACKS["lmm"]
    X, y = problem(3, sizes)
    model = mp.make_sequential(sizes, kinds, seed=2, dtype="float64")
    trainer = SparseTrainer(model, X, y, "cross_entropy", refresh_every=10**6)
    for _ in range(200):
        rows = top_q(trainer.losses(1), 1)
        trainer.apply(0.05, trainer.gradient(rows, 1))
    trainer.synchronize(refresh=False)
    drift = np.max(np.abs(trainer.Z - model.forward(X).values[0]))
    assert 0 < drift <= trainer.drift_bound() < 1e-9


def test_subgradient_is_the_short_tree_of_autograd():
    X, y = mp.load_mnist5k()
    X, y = X[:200], y[:200]
    model = mp.LMM(784, 64, 32, 10, seed=0, dtype="float64")
    trainer = SparseTrainer(model, X, y, "cross_entropy")
    rows = top_q(trainer.losses(1), 1)
    g = trainer.gradient(rows, 1)
    K, d = 10, 784
    assert g.nnz <= 2 * K + K * (d + 1)
    auto = autograd_gradient(model, X, y, objective="worst")
    for name, dense in g.to_dense(model).items():
        np.testing.assert_allclose(dense, auto[name], rtol=0, atol=1e-12, err_msg=name)
        assert np.count_nonzero(auto[name]) <= np.count_nonzero(dense) + 0  # autograd is as sparse


@pytest.mark.parametrize("q", [1, 3])
def test_subgradient_size_bound_per_selected_sample(q):
    for stack, (sizes, kinds) in STACKS.items():
        X, y = problem(4, sizes)
        model = mp.make_sequential(sizes, kinds, seed=0, dtype="float64")
        trainer = SparseTrainer(model, X, y, "cross_entropy")
        g = trainer.gradient(top_q(trainer.losses(q), q), q)
        K, d, depth = sizes[-1], sizes[0], len(kinds)
        assert g.nnz <= q * (depth * K + K * (d + 1)), stack
        assert g.linear_rows.size <= q * K


def test_dense_flops_formula_by_hand():
    model = mp.LMM(3, 4, 2, 5, seed=0)
    N = 7
    forward = 2 * N * 3 * 4 + N * 4 + 2 * N * 4 * 2 + 2 * N * 2 * 5 + N * 5 * 5
    backward = 2 * N * 2 + 2 * N * 5 + 2 * N * 3 * 4 + N * 4
    update = 2 * (4 * 3 + 4 + 2 * 4 + 5 * 2)
    assert mp.flops.dense_step_flops(model, N) == forward + backward + update


def test_repair_flops_count_each_layers_work_by_its_own_widths():
    """Per tropical layer (n_in inputs, n_out outputs): 2 per output that followed its
    input, 4 n_out per takeover pass, 3 per swap, 2 n_in per rescan, 2 per candidate
    recomputed. The layers here are of three widths, all repaired."""
    sizes, kinds = STACKS["deep"]
    X, y = problem(3, sizes)
    model = mp.make_sequential(sizes, kinds, seed=4, dtype="float64")
    trainer = SparseTrainer(model, X, y, "cross_entropy", recompute_below=0)
    widths = [layer.weight.shape for layer in model.layers[1:]]
    assert len(set(widths)) == 3
    passes = np.zeros(len(widths), dtype=np.int64)
    for _ in range(40):
        rows = top_q(trainer.losses(2), 2)
        trainer.apply(0.3, trainer.gradient(rows, 2))
        trainer.synchronize(refresh=False)
        expected = 0
        for (n_out, n_in), work in zip(widths, trainer.last_work, strict=True):
            followed, takeovers, swaps, rescans, _, recomputed = work.tolist()
            expected += 2 * followed + 4 * n_out * takeovers + 3 * swaps + 2 * n_in * rescans
            expected += 2 * recomputed
        assert trainer.repair_flops() == expected
        passes += trainer.last_work[:, 1]
    assert (passes > 0).all()  # every layer's passes were counted by its width


def test_history_flops_and_best_iterate():
    sizes, kinds = STACKS["lmm"]
    X, y = problem(5, sizes)
    for method in ("dense", "sparse"):
        model = mp.make_sequential(sizes, kinds, seed=1, dtype="float64")
        result = mp.fit(model, X, y, method=method, steps=120, lr=0.2)
        history = result.history
        assert all(len(v) == 120 for v in history.values())
        dense_flops = mp.flops.dense_step_flops(model, len(X))
        if method == "dense":
            assert set(history["flops"]) == {dense_flops}
        else:  # on 90 samples most are synchronised at every step, yet fewer FLOPs
            assert all(f > 0 for f in history["flops"])
            assert np.median(history["flops"]) < dense_flops
        objectives = history["objective"] + [result.final_objective]
        assert result.best_objective == min(objectives)
        assert objectives[result.best_step] == result.best_objective
        check = mp.fit(result.best.copy(), X, y, method="dense", steps=1, lr=1e-9)
        assert check.history["objective"][0] == pytest.approx(result.best_objective, abs=1e-12)


def test_keyboard_interrupt_leaves_a_complete_iterate(monkeypatch):
    import signal

    sizes, kinds = STACKS["lmm"]
    X, y = problem(6, sizes)
    start = mp.make_sequential(sizes, kinds, seed=1, dtype="float64")
    model = start.copy()
    from maxplus import sparse

    calls = {"n": 0}
    original = sparse.SparseTrainer.update

    def interrupted(self, eta, g):
        calls["n"] += 1
        steps = original(self, eta, g)
        if calls["n"] == 5:  # Ctrl-C arrives in the middle of the 5th update
            signal.raise_signal(signal.SIGINT)
        return steps

    monkeypatch.setattr(sparse.SparseTrainer, "update", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mp.fit(model, X, y, method="sparse", steps=50, lr=0.1)
    reference = start.copy()
    mp.fit(reference, X, y, method="dense", steps=5, lr=0.1)
    assert_params_equal(params_of(model), params_of(reference), atol=1e-12)


def test_keyboard_interrupt_outside_an_update_stops_at_once_and_handlers_are_restored(
    monkeypatch,
):
    """Ctrl-C while the losses are computed is not held back (the step stops there,
    with no update half done), and the SIGINT handler is the caller's again after
    the fit, also after an interrupt."""
    import signal

    from maxplus import sparse

    sizes, kinds = STACKS["lmm"]
    X, y = problem(6, sizes)
    model = mp.make_sequential(sizes, kinds, seed=1, dtype="float64")
    before = params_of(model)
    original = sparse.SparseTrainer.losses
    calls = {"n": 0}

    def interrupted(self, q=None):
        calls["n"] += 1
        if calls["n"] == 1:
            signal.raise_signal(signal.SIGINT)
        return original(self, q)

    monkeypatch.setattr(sparse.SparseTrainer, "losses", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        mp.fit(model, X, y, method="sparse", steps=5, lr=0.1)
    assert calls["n"] == 1 and signal.getsignal(signal.SIGINT) is handler
    assert_params_equal(params_of(model), before, atol=0)
    mp.fit(model, X, y, method="sparse", steps=2, lr=0.1)
    assert signal.getsignal(signal.SIGINT) is handler


def test_progress_bar_reports_the_objective(capsys):
    sizes, kinds = STACKS["maxplus"]
    X, y = problem(1, sizes)
    mp.fit(mp.make_sequential(sizes, kinds, seed=0), X, y, steps=5, progress=True)
    assert "objective" in capsys.readouterr().err


def test_save_and_load_round_trip(tmp_path):
    model = mp.LMM(4, 6, 5, 3, seed=2)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = mp.Sequential.load(path)
    assert isinstance(loaded, mp.LMM)
    assert_params_equal(params_of(model), params_of(loaded))
    deep = mp.make_sequential([4, 6, 5, 3], ["MaxPlus", "MaxPlus"], dtype="float64")
    deep.save(tmp_path / "deep.npz")
    again = mp.Sequential.load(tmp_path / "deep.npz")
    assert [layer.kind for layer in again.layers] == ["Linear", "MaxPlus", "MaxPlus"]
    assert again.dtype == np.float64


def test_loading_refuses_bad_files(tmp_path):
    from maxplus.io import ModelFileError

    model = mp.LMM(4, 6, 5, 3, seed=2)
    good = dict(np.load(_saved(model, tmp_path / "good.npz")))
    cases = {
        "missing": {k: v for k, v in good.items() if k != "2.weight"},
        "shape": {**good, "1.weight": np.zeros((5, 7), np.float32)},
        "dtype": {**good, "0.bias": good["0.bias"].astype(np.float64)},
        "kinds": {**good, "__kinds__": np.array(["Linear", "Softmax", "MaxPlus"])},
        "format": {**good, "__format__": np.array("other")},
    }
    for name, arrays in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        with pytest.raises(ModelFileError, match=str(path.name)):
            mp.Sequential.load(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ModelFileError, match="junk.npz"):
        mp.Sequential.load(tmp_path / "junk.npz")
    obj = tmp_path / "object.npz"
    np.savez(obj, **{**good, "0.weight": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ModelFileError):
        mp.Sequential.load(obj)


def _saved(model, path):
    model.save(path)
    return path


@pytest.mark.parametrize(
    "kwargs,exc,message",
    [
        ({"y": np.zeros(5, int)}, ValueError, "X has 20 samples but y has 5"),
        ({"y": np.full(20, 3)}, ValueError, "label 3 outside 0..2"),
        ({"y": np.full(20, -1)}, ValueError, "label -1 outside"),
        ({"y": np.full(20, 0.5)}, ValueError, "integer class labels"),
        ({"X": np.full((20, 4), np.nan)}, ValueError, "X contains NaN"),
        ({"X": np.full((20, 4), np.inf)}, ValueError, r"X contains \+inf"),
        ({"X": np.zeros((20, 5))}, ValueError, "5 features but the model expects 4"),
        ({"X": np.zeros(20)}, ValueError, "X must be a 2-D"),
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"steps": 2.5}, TypeError, "steps must be an integer"),
        ({"lr": 0.0}, ValueError, "lr must be a finite number > 0"),
        ({"lr": -1.0}, ValueError, "lr must be"),
        ({"objective": ("topq", 0)}, ValueError, "1 <= q <= N = 20"),
        ({"objective": ("topq", 21)}, ValueError, "q = 21"),
        ({"objective": ("topq", 1.5)}, ValueError, "fraction 0 < q <= 1"),
        ({"objective": ("topq", "3")}, TypeError, "integer q or a fraction"),
        ({"objective": "median"}, ValueError, "unknown objective"),
        ({"method": "fast"}, ValueError, "unknown method"),
        ({"step": "adam"}, ValueError, "unknown step"),
        ({"loss": "mse"}, ValueError, "unknown loss"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(kwargs, exc, message):
    model = mp.LMM(4, 6, 5, 3, seed=0)
    before = params_of(model)
    args = {"X": np.zeros((20, 4)), "y": np.zeros(20, int), **kwargs}
    X, y = args.pop("X"), args.pop("y")
    X_before = np.array(X, copy=True)
    with pytest.raises(exc, match=message):
        mp.fit(model, X, y, **args)
    assert_params_equal(before, params_of(model))
    np.testing.assert_array_equal(X, X_before)


def test_topq_fraction_and_clipping():
    from maxplus.objectives import parse_objective

    assert parse_objective(("topq", 0.1), 50) == 5
    assert parse_objective(("topq", 0.001), 50) == 1
    assert parse_objective(("topq", 1.0), 50) == 50
    assert parse_objective(("topq", 70), 50, clip=True) == 50
    X, y = np.random.default_rng(0).standard_normal((20, 4)), np.arange(20) % 3
    result = mp.fit(mp.LMM(4, 6, 5, 3, seed=0), X, y, objective=("topq", 0.25), steps=3)
    direct = mp.fit(mp.LMM(4, 6, 5, 3, seed=0), X, y, objective=("topq", 5), steps=3)
    assert result.history["objective"] == direct.history["objective"]


def test_empty_data_is_refused():
    with pytest.raises(ValueError, match="empty"):
        mp.fit(mp.LMM(4, 6, 5, 3), np.zeros((0, 4)), np.zeros(0, int))


def test_fit_does_not_modify_the_data():
    X, y = problem(1, [4, 6, 5, 3], n=30)
    X32 = X.astype(np.float32)
    X_before, y_before = X32.copy(), y.copy()
    mp.fit(mp.LMM(4, 6, 5, 3), X32, y, steps=20, method="sparse")
    np.testing.assert_array_equal(X32, X_before)
    np.testing.assert_array_equal(y, y_before)


def test_models_survive_a_pickle_round_trip():
    """scikit-learn's clone and joblib copy estimators by pickle; the model rebuilds its
    array namespace (a module) from the backend's name."""
    import pickle

    model = mp.LMM(4, 6, 5, 3, seed=0)
    copy = pickle.loads(pickle.dumps(model))
    X = np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
    assert type(copy) is type(model) and copy.xp is model.xp
    np.testing.assert_array_equal(copy.scores(X), model.scores(X))
