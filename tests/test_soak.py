"""The shard soak (``zksolv bench soak``) catches a wrong result of the fast
core, names the check and the operation, and keeps a reproducer that runs
again: tested by injecting faults into the mcl layer, once and always."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from zksolv.cli.main import cli
from zksolv.core import fold, mcl
from zksolv.prover import soak

pytestmark = pytest.mark.skipif(not mcl.available(), reason="mcl not loadable here")

SPEC = soak.SoakSpec(seed=b"soak-test", leaves=4)


def _soak(*args: str | Path) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["bench", "soak", *map(str, args)])
    return res.exit_code, res.output


def test_a_case_is_determined_by_seed_and_index() -> None:
    a, _ = soak.case_job(SPEC, 3)
    b, _ = soak.case_job(SPEC, 3)
    c, _ = soak.case_job(SPEC, 4)
    assert soak.inputs_digest(a) == soak.inputs_digest(b) != soak.inputs_digest(c)
    many = [v for i in range(40) for v in soak.case_job(SPEC, i)[0].values]
    assert all(0 <= v < 1 << 64 for v in many)
    assert {0, (1 << 64) - 1} <= set(many)  # the edges are in the mix


def test_a_clean_soak_checks_every_case_and_leaves_its_totals(tmp_path: Path) -> None:
    code, out = _soak("--cases", "3", "--batch", "2", "--leaves", "4", "--jobs", "1",
                      "--out", tmp_path, "--json")
    assert code == 0, out
    totals = json.loads((tmp_path / "soak.json").read_text())
    assert totals["cases"] == 3 and totals["faults"] == 0 and totals["reproducers"] == []
    assert set(totals["seconds_per_case"]) == {"prove", "checks", "batch"}


def test_a_one_off_fault_in_a_commitment_is_caught_kept_and_does_not_repeat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = mcl.mul_each
    calls = [0]

    def once(points: mcl.G1Vec, start: int, count: int, scalars: bytes) -> None:
        real(points, start, count, scalars)
        calls[0] += 1
        if calls[0] == 1:  # the first batched multiplication: leaf values times g
            points.copy_in(start, points, start + 1, 1)

    monkeypatch.setattr(mcl, "mul_each", once)
    code, out = _soak("--cases", "2", "--batch", "2", "--leaves", "4", "--jobs", "1",
                      "--seed", "00ff", "--out", tmp_path)
    assert code == 1, out
    assert "FAULT in case 0: commitment: leaf 0 differs" in out
    kept = tmp_path / "fault-00ff-0.json"
    rep = json.loads(kept.read_text())
    assert rep["check"] == "commitment" and rep["repeated"] is False
    # traced in the faulty run: its statement, not its proof, parts from the reference's
    assert rep["first_difference"] == "statement commitment 0"
    assert rep["also"] == ["proof-self"] and rep["cases"] == 1
    assert len(rep["values"]) == 4 and rep["inputs_sha256"]
    monkeypatch.setattr(mcl, "mul_each", real)
    code, out = _soak("--replay", kept, "--times", "2", "--json")
    assert code == 0, out
    assert json.loads(out) == {"case": 0, "cases": 1, "runs": 2, "faults": []}


def test_a_fault_that_repeats_is_traced_to_its_inner_product_round(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = fold.BufferFolder.cross_terms

    def swapped(self, a, b, tau, cw, U):  # type: ignore[no-untyped-def]
        L, R = real(self, a, b, tau, cw, U)
        return (R, L) if len(a) == 8 else (L, R)

    monkeypatch.setattr(fold.BufferFolder, "cross_terms", swapped)
    report = soak.run_cases(SPEC, 5, 2)
    assert [f.case for f in report.faults] == [5, 6]
    first = report.faults[0]
    assert first.check == "proof-self" and first.repeated is True
    # 4 leaves x 64 bits: N = 256, and n = 8 in round 5
    assert first.first_difference == "L[5] (inner-product round 5)"


def test_a_hostile_reproducer_is_refused_with_its_reason(tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    base = {"format": soak.REPRODUCER_FORMAT, "seed": "00", "case": 0, "assets": 1,
            "leaves": 4, "fast": "mcl", "reference": "arkworks", "inputs_sha256": "00"}
    for change, words in (({"case": 1.0}, "Expected `int`"),
                          ({"format": "other"}, "format 'other'"),
                          ({"leaves": 3}, "power of two"),
                          ({"case": -1}, "$.case: -1 is not a case number"),
                          ({"case": 1 << 64}, "is not a case number (0 to"),
                          ({"fast": "foo"}, "unknown backend 'foo'"),
                          ({}, "another version")):
        bad.write_text(json.dumps({**base, **change}))
        code, out = _soak("--replay", bad)
        assert code == 2 and words in out, out
        assert "Traceback" not in out


def test_a_margin_case_has_healthy_debts_and_checks_its_health_commitments(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from zksolv.circuits import epoch as circ

    spec = soak.SoakSpec(seed=b"margin", leaves=8, margin=True, assets=2)
    job, _ = soak.case_job(spec, 0)
    header = job.header
    coef = circ.valued_coefficients(header.assets, header.depth)
    rows = [job.values[i * header.m : (i + 1) * header.m] for i in range(8)]
    assert all(circ.health_value(header, coef, r) >= 0 for r in rows)
    assert any(r[-1] for r in rows)  # some leaves do owe
    assert soak.run_cases(spec, 0, 1).faults == []
    real = circ.health_commitments

    def shifted(backend, hdr, cf, leaves):  # type: ignore[no-untyped-def]
        pts = real(backend, hdr, cf, leaves)
        return pts if backend.name != "mcl" else [pts[1], pts[0], *pts[2:]]

    monkeypatch.setattr(circ, "health_commitments", shifted)
    (fault,) = soak.run_cases(spec, 0, 1).faults
    assert fault.check == "commitment" and fault.repeated is True
    assert fault.detail == "margin-health commitment 0 differs"


def test_an_error_or_a_dead_worker_is_a_finding_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    real = soak._prove

    def raising(spec, case):  # type: ignore[no-untyped-def]
        if case == 1:
            raise RuntimeError("mclBnG1_serialize failed")
        return real(spec, case)

    monkeypatch.setattr(soak, "_prove", raising)
    report = soak.run_cases(SPEC, 0, 2)
    (fault,) = report.faults
    assert (fault.case, fault.check, fault.repeated) == (1, "error", True)
    assert fault.detail.startswith("RuntimeError: mclBnG1_serialize failed")

    monkeypatch.setattr(soak, "_prove", lambda spec, case: os._exit(3))  # a crash in C
    code, out = _soak("--cases", "2", "--batch", "2", "--leaves", "4", "--jobs", "1",
                      "--seed", "0d", "--out", tmp_path)
    assert code == 1 and "FAULT in case 0: worker-died" in out, out
    assert "Traceback" not in out
    assert json.loads((tmp_path / "fault-0d-0.json").read_text())["check"] == "worker-died"


def test_sigterm_stops_the_soak_with_its_totals_written(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "zksolv.cli.main", "bench", "soak", "--minutes", "5",
         "--leaves", "4", "--batch", "1", "--jobs", "1", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "soak.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "soak: stopped after" in err and "Traceback" not in err
    totals = json.loads((tmp_path / "soak.json").read_text())
    assert totals["cases"] >= 1 and totals["faults"] == 0
    assert f"cases checked               {totals['cases']}" in out


def test_a_margin_case_puts_one_leaf_in_eight_at_health_exactly_zero() -> None:
    from zksolv.circuits import epoch as circ

    spec = soak.SoakSpec(seed=b"edges", leaves=256, margin=True, assets=2)
    job, _ = soak.case_job(spec, 0)
    coef = circ.valued_coefficients(job.header.assets, job.header.depth)
    m = job.header.m
    health = [circ.health_value(job.header, coef, job.values[i * m : (i + 1) * m])
              for i in range(256)]
    assert min(health) == 0
    assert 16 <= sum(h == 0 for h in health) <= 64  # about 32, and not every leaf


def test_a_batch_that_fails_while_each_case_holds_is_a_finding_of_the_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = soak._hold

    def batch_only(backend, pairs):  # type: ignore[no-untyped-def]
        return real(backend, pairs) and (len(pairs) == 1 or backend.name != "arkworks")

    monkeypatch.setattr(soak, "_hold", batch_only)
    (fault,) = soak.run_cases(SPEC, 10, 2).faults
    assert (fault.case, fault.span, fault.check, fault.repeated) == (
        10, 2, "proof-reference", True)
    assert "cases 10..11 failed on the arkworks backend; each case alone holds" in fault.detail
