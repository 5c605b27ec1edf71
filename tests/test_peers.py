"""The tropical products of :mod:`maxplus.peers`, their timing, and the roof of
:mod:`maxplus.roof` (speed is never asserted: only what is computed and counted)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from maxplus import peers, roof
from maxplus.products import naive_tropical_matmul


def tie_heavy_operands(dtype):
    """Small integer values: many ties, so the lowest-index rule is exercised."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 3, (37, 50)).astype(dtype), rng.integers(0, 3, (50, 29)).astype(dtype)


# ------------------------------------------------------------------------ the products


@pytest.mark.parametrize("name", peers.CPU_PRODUCTS)
@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_products_agree_with_the_reference(name, maximize, dtype, monkeypatch):
    # A tiny chunk budget makes the broadcasting baselines cross chunk boundaries.
    monkeypatch.setattr(peers, "CHUNK_BYTES", 3 * 50 * 29 * 8)
    try:
        product = peers.get_product(name, maximize=maximize)
    except peers.PeerUnavailableError as exc:
        pytest.skip(str(exc))
    A, B = tie_heavy_operands(dtype)
    C, I = peers.to_numpy_result(product(*product.prepare(A, B)))
    C_ref, I_ref = naive_tropical_matmul(A, B, maximize=maximize)
    assert C.shape == I.shape == (37, 29)
    assert C.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(C, C_ref)
    np.testing.assert_array_equal(I, I_ref)


def test_unknown_product_is_named():
    with pytest.raises(ValueError, match="product name must be one of"):
        peers.get_product("blas")


def test_a_missing_package_is_unavailable_and_skips_asv_benchmarks():
    with pytest.raises(peers.PeerUnavailableError, match="no_such_package_here"):
        peers.require_module("no_such_package_here")
    assert issubclass(peers.PeerUnavailableError, NotImplementedError)  # asv's skip


def test_available_products_say_why_one_is_missing(monkeypatch):
    def missing(name):
        raise peers.PeerUnavailableError(f"{name} is not installed (test)")

    monkeypatch.setattr(peers, "require_module", missing)
    found = peers.available_products(("maxplus", "tropical-gemm", "numpy"))
    assert found["maxplus"] is None and found["numpy"] is None
    assert "tropical_gemm is not installed" in found["tropical-gemm"]


def test_chunk_rows_bounds_the_temporary():
    assert peers.chunk_rows(784, 256, 4, budget=16 * 2**20) == 20
    assert peers.chunk_rows(784, 256, 4, budget=1) == 1


def test_operands_are_seeded_and_pairs_counted():
    A, B = peers.random_operands((3, 4, 5), "float64")
    A2, _ = peers.random_operands((3, 4, 5), "float64")
    assert A.shape == (3, 4) and B.shape == (4, 5) and np.array_equal(A, A2)
    assert peers.pairs((3, 4, 5)) == 60
    assert peers.gpairs_per_second((1000, 1000, 1000), 0.5) == pytest.approx(2.0)


# ------------------------------------------------------------------------------ timing


def test_interleaved_medians_times_every_call():
    counts = {"a": 0, "b": 0}

    def call(name):
        counts[name] += 1

    medians = peers.interleaved_medians(
        {"a": lambda: call("a"), "b": lambda: call("b")},
        repeats=3,
        warmup=2,
        pause=0,
        min_sample=0,
    )
    assert counts == {"a": 5, "b": 5}
    assert set(medians) == {"a", "b"} and all(t >= 0 for t in medians.values())
    with pytest.raises(ValueError, match="repeats"):
        peers.interleaved_medians({"a": lambda: None}, repeats=0)


def test_interleaved_medians_batch_quick_calls_and_report_per_call():
    calls = []

    def nap():
        calls.append(1)
        time.sleep(0.001)

    medians = peers.interleaved_medians({"nap": nap}, repeats=3, pause=0, min_sample=0.05)
    assert len(calls) > 1 + 3  # several calls per sample
    assert 0.001 <= medians["nap"] < 0.025  # per call; a whole sample lasts >= 0.05 s


# --------------------------------------------------------------------------- the roof


@pytest.mark.parametrize("maximize", [True, False])
def test_roof_computes_its_block_and_covers_the_pairs(maximize):
    l1_roof = roof.L1Roof(100_000, maximize=maximize, threads=2)
    l1_roof()
    l1_roof.check()
    assert l1_roof.pairs >= 100_000
    l1_roof.x[0, 0, 0] += 1
    with pytest.raises(AssertionError):
        l1_roof.check()


def test_roof_refuses_no_pairs():
    with pytest.raises(ValueError, match="pairs must be >= 1"):
        roof.L1Roof(0)


# ---------------------------------------------------------------------- the comparison


def test_compare_products_times_everyone_and_checks_agreement():
    contenders = [p for p, why in peers.available_products().items() if why is None]
    others = tuple(p for p in contenders if p != peers.OURS)
    result = peers.compare_products((24, 16, 20), peers=others, repeats=1, warmup=1)
    assert list(result.seconds) == [peers.OURS, *others, peers.ROOF]
    assert result.all_agree() and set(result.agreement) == set(others)
    assert result.roof_pairs >= 24 * 16 * 20
    ours = 24 * 16 * 20 / result.seconds[peers.OURS] / 1e9
    assert result.gpairs(peers.OURS) == pytest.approx(ours)
    assert result.roof_fraction == pytest.approx(
        result.gpairs(peers.OURS) / result.gpairs(peers.ROOF)
    )
    for peer in others:
        assert result.speedup_over(peer) == pytest.approx(
            result.seconds[peer] / result.seconds[peers.OURS]
        )
    text = result.report()
    assert "G pairs/s" in text and "L1 roof" in text and "DIFFERENT" not in text


def test_a_disagreeing_peer_is_reported():
    result = peers.ProductComparison(
        shape=(2, 2, 2), dtype="float32", maximize=True, repeats=1, threads=1,
        seconds={"maxplus": 1.0, "numpy": 2.0}, agreement={"numpy": (True, False)},
    )  # fmt: skip
    assert not result.all_agree()
    assert "indices DIFFERENT" in result.report()
    assert result.speedup_over("numpy") == 2.0
