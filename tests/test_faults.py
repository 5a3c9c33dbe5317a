"""A computational fault never publishes a bad proof and never rejects a
good one: the prover checks each shard proof and proves it again; a
verifier's rejection on the mcl vector core is confirmed on the arkworks
reference path; a failed batch is settled proof by proof."""

from __future__ import annotations

import pytest
from rangeproof_util import make_proof

from zksolv.core import mcl
from zksolv.core import rangeproof as rp
from zksolv.core.group import get_backend
from zksolv.errors import ProverFault, VerificationError

needs_mcl = pytest.mark.skipif(not mcl.available(), reason="mcl not loadable here")


def _bad_copy(proof: rp.RangeProof) -> rp.RangeProof:
    return rp.RangeProof(proof.A, proof.S, proof.T1, proof.T2, proof.t_hat, proof.tau_x,
                         (proof.mu + 1) % rp.R, proof.L, proof.R, proof.a, proof.b)


def test_a_failed_batch_equation_is_settled_proof_by_proof(monkeypatch) -> None:
    backend = get_backend()
    good = [make_proof(backend, [i, i + 1], 8)[:2] for i in range(3)]
    real = rp._check
    calls = []

    def faulty(be, eqs):  # the first (batch) computation goes wrong
        calls.append(len(eqs))
        return False if len(calls) == 1 else real(be, eqs)

    monkeypatch.setattr(rp, "_check", faulty)
    rp.batch_verify(good, backend=backend)  # accepted: every proof verifies alone
    assert calls[0] == 3 and len(calls) >= 4
    monkeypatch.setattr(rp, "_check", real)
    st, pf = good[1]
    with pytest.raises(VerificationError, match="range-batch"):
        rp.batch_verify([good[0], (st, _bad_copy(pf)), good[2]], backend=backend)
    assert rp.find_invalid([good[0], (st, _bad_copy(pf)), good[2]], backend=backend) == 1


@needs_mcl
def test_a_rejection_on_the_vector_core_is_confirmed_on_the_reference(monkeypatch) -> None:
    fast = get_backend("mcl")
    st, pf, _ = make_proof(fast, [7], 16)
    monkeypatch.setattr(type(fast), "msm_is_identity", lambda self, pts, ks: False)
    before = rp.FAST_PATH_DISAGREEMENTS[0]
    rp.verify(st, pf, backend=fast)  # the reference accepts: not rejected
    assert rp.FAST_PATH_DISAGREEMENTS[0] == before + 1
    with pytest.raises(VerificationError, match="range-equation"):
        rp.verify(st, _bad_copy(pf), backend=fast)  # both reject: rejected


def test_the_prover_proves_a_shard_again_when_its_check_fails(tmp_path, monkeypatch) -> None:
    from test_epoch_support import ASSETS1, make_snapshot, rows_for, run, verify_json

    from zksolv.prover import epoch as pe

    real = pe.rangeproof.prove
    made = []

    def flaky(statement, values, blindings, **kw):
        proof = real(statement, values, blindings, **kw)
        made.append(statement.context)
        return _bad_copy(proof) if len(made) == 1 else proof

    monkeypatch.setattr(pe.rangeproof, "prove", flaky)
    snap = make_snapshot(tmp_path / "snap", rows_for(5, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 0, res.output
    assert made[0] == made[1]  # the first shard, proven twice
    assert "warning: 1 shard proof(s) failed the worker's own check" in res.output
    code, out = verify_json(tmp_path / "b")
    assert code == 0, out


def test_a_shard_that_never_checks_stops_the_epoch_and_publishes_nothing(
    tmp_path, monkeypatch
) -> None:
    from test_epoch_support import ASSETS1, make_snapshot, rows_for, run

    from zksolv.prover import epoch as pe

    real = pe.rangeproof.prove
    monkeypatch.setattr(pe.rangeproof, "prove", lambda *a, **kw: _bad_copy(real(*a, **kw)))
    snap = make_snapshot(tmp_path / "snap", rows_for(5, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == ProverFault.exit_code
    assert "failed the prover's own check 3 times" in res.output
    assert not (tmp_path / "b").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


@needs_mcl
def test_the_workers_check_reads_commitments_from_their_encodings(monkeypatch) -> None:
    """Two leaves' encodings swapped once (a fault in an encoding, not in a
    point): the points still open to the amounts, so a check on the computed
    points passes, but every verifier decodes the encodings and refuses. The
    worker's own check must see what they see, and prove the shard again."""
    from zksolv.prover import shards, soak

    job, _ = soak.case_job(soak.SoakSpec(seed=b"encodings", leaves=4), 0)
    backend = get_backend(job.backend)
    honest = shards.prove_shard(job)
    real = type(backend).encode_many
    calls = []

    def swapped_once(self, points):  # type: ignore[no-untyped-def]
        out = real(self, points)
        calls.append(len(points))
        if len(calls) == 1:
            out[0], out[1] = out[1], out[0]
        return out

    monkeypatch.setattr(type(backend), "encode_many", swapped_once)
    res = shards.prove_shard(job)
    assert calls[0] == 4 and res.attempts == 2
    assert res.leaf_records == honest.leaf_records


def test_the_vector_core_is_loaded_once_however_many_threads_ask(monkeypatch) -> None:
    import threading
    import time

    calls = []

    def slow_load():  # type: ignore[no-untyped-def]
        calls.append(1)
        time.sleep(0.05)  # the window in which a second thread would start loading too
        return mcl.MclUnavailable("test")

    monkeypatch.setattr(mcl, "_LOADED", [])
    monkeypatch.setattr(mcl, "_load", slow_load)
    threads = [threading.Thread(target=mcl.available) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and mcl.library_error() == "test"
