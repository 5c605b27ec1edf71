"""The audit of the sparse trainer's synchronisations (``maxplus.sync_audit``)."""

from __future__ import annotations

import numpy as np
import pytest

import maxplus as mp
from maxplus.dense import DenseTrainer
from maxplus.sparse import SparseTrainer
from maxplus.sync_audit import FIELDS, SyncAudit, audit_syncs
from maxplus.training import run

STACKS = {
    "lmm": ([5, 12, 8, 3], ["MinPlus", "MaxPlus"]),
    "deep": ([5, 10, 8, 6, 4], ["MaxPlus", "MinPlus", "MaxPlus"]),
}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("q", [1, 4])
def test_every_sample_that_reaches_the_top_is_synchronised(stack, exact, q):
    """``needed`` counts the waiting samples whose fresh loss reaches the q-th largest:
    a sound loss bound synchronises each of them, and its stored value reaches."""
    sizes, kinds = STACKS[stack]
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, sizes[0]))
    y = rng.integers(0, sizes[-1], 200)
    model = mp.make_sequential(sizes, kinds, seed=3, dtype="float64")
    audit = SyncAudit(SparseTrainer(model, X, y, "cross_entropy", exact=exact, refresh_every=30))
    run(audit, model, q, 60, "constant", 0.05, 0.0, False, None)
    records = {name: np.asarray(values) for name, values in audit.records.items()}
    assert set(records) == set(FIELDS) and all(v.size == 61 for v in records.values())
    assert (records["needed"] >= 1).any() and (records["synced"] < 200).any()
    assert (records["synced"] >= records["needed"]).all()
    assert (records["reached"] >= records["needed"]).all()
    assert (records["bound"] >= records["uniform"]).all()


def test_audit_syncs_reports_each_step():
    X, y = mp.load_dataset("iris")
    r = audit_syncs(X, y, lr=0.01, steps=4, sizes=(16, 8), warmup=1)
    assert set(r) == set(FIELDS) and all(v.shape == (4,) for v in r.values())
    assert (r["synced"] >= r["needed"]).all()
    with pytest.raises(ValueError, match="steps"):
        audit_syncs(X, y, lr=0.01, steps=0, sizes=(16, 8))
    with pytest.raises(ValueError, match="lr"):
        audit_syncs(X, y, lr=-1.0, steps=2, sizes=(16, 8))


def test_only_the_cpu_sparse_trainer_is_audited():
    X, y = mp.load_dataset("iris")
    model = mp.LMM(4, 8, 4, 3, seed=0, dtype="float64")
    with pytest.raises(TypeError, match="sparse trainer"):
        SyncAudit(DenseTrainer(model, X, y, "cross_entropy"))
