"""End to end through the CLI: snapshot -> prove -> verify -> inclusion for
every account; refusals (bad input, insolvency, missing key); both backends."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from test_epoch_support import (
    ASSETS1,
    ASSETS2,
    make_snapshot,
    prove,
    read_manifest,
    rows_for,
    run,
    verify_json,
    work_area,
    write_manifest,
)

from zksolv.snapshot import Asset


@pytest.fixture(scope="module")
def epoch16(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list]:
    d = tmp_path_factory.mktemp("e2e")
    rows = rows_for(13, 2)
    snap = make_snapshot(d / "snap", rows, epoch=7)
    prove(snap, d / "bundle")
    return d, d / "bundle", rows


def test_prove_verify_and_every_inclusion(epoch16: tuple[Path, Path, list]) -> None:
    d, bundle, rows = epoch16
    assert sorted(os.listdir(bundle)) == ["leaves.bin", "manifest.json", "manifest.sig",
                                          "range.bin", "solvency.bin"]
    db = d / "bundle.inclusion.sqlite"
    assert db.is_file() and stat.S_IMODE(db.stat().st_mode) == 0o600
    code, out = verify_json(bundle)
    assert code == 0 and out["valid"] and out["bundles"][0]["epoch"] == 7
    assert out["bundles"][0]["leaves"] == 16  # 13 accounts padded to 2^4
    res = run("verify", bundle)
    assert res.exit_code == 0 and "solvent" in res.output
    m = read_manifest(bundle)
    assert m["totals"] is None  # hidden by default
    for acc, amounts in rows:
        pf = d / f"{acc}.json"
        res = run("inclusion", "export", "--db", db, "--account", acc, "--out", pf)
        assert res.exit_code == 0, res.output
        # the proof itself stays under 3000 bytes; the signed manifest rides along
        enclosed = len(json.dumps(json.loads(pf.read_text())["manifest"]))
        assert pf.stat().st_size - enclosed < 3000
        assert stat.S_IMODE(pf.stat().st_mode) == 0o600
        res = run("inclusion", "verify", pf, "--bundle", bundle, "--account", acc,
                  "--expect", f"USDC={amounts[0]}", "--expect", f"BTC={amounts[1]}", "--json")
        assert res.exit_code == 0, res.output
        rep = json.loads(res.output)
        assert rep["siblings_nonnegative"] == "proven"
        assert {s: a["proof_units"] for s, a in rep["amounts"].items()} == {
                "USDC": amounts[0], "BTC": amounts[1]}
        assert len(rep["sibling_coverage"]) == 4
        res = run("inclusion", "verify", pf, "--account", acc, "--bundle-hash",
                  out["bundles"][0]["bundle_hash"])
        assert res.exit_code == 0 and "NOT checked" in res.output, res.output


def test_reveal_totals(tmp_path: Path) -> None:
    rows = rows_for(5, 1)
    snap = make_snapshot(tmp_path / "snap", rows, assets=ASSETS1)
    prove(snap, tmp_path / "b", "--reveal-totals")
    m = read_manifest(tmp_path / "b")
    assert m["totals"][0]["liabilities"] == sum(v[0] for _, v in rows)
    code, out = verify_json(tmp_path / "b")
    assert code == 0, out
    # a wrong revealed total is caught
    from test_epoch_support import write_manifest

    m["totals"][0]["liabilities"] += 1
    write_manifest(tmp_path / "b", m)
    code, out = verify_json(tmp_path / "b")
    assert (code, out["check"]) == (1, "totals-opening")


def test_negative_amount_refused(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(4, 2))
    lines = (snap / "accounts.csv").read_text().splitlines()
    lines[3] = "acct-2,-5,7"
    (snap / "accounts.csv").write_text("\n".join(lines) + "\n")
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 2
    assert "accounts.csv:4:USDC" in res.output and "negative" in res.output
    assert not (tmp_path / "b").exists()
    assert not (tmp_path / "b.inclusion.sqlite").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["snap"]


def test_insolvent_exit_3_and_no_bundle(tmp_path: Path) -> None:
    assets = (Asset("USDC", 6, 100, 10_000, 1000), ASSETS2[1])
    snap = make_snapshot(tmp_path / "snap", rows_for(4, 2), assets=assets)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 3
    assert "insolvent" in res.output and "USDC short by" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]


def test_valued_insolvency_exit_3(tmp_path: Path) -> None:
    # every asset covered in units, but the haircut makes the valued total short
    owed = 10**6
    assets = (Asset("USDC", 6, 100, 5_000, owed),)
    snap = make_snapshot(tmp_path / "snap", [("a", (owed,))], assets=assets)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 3 and "valued" in res.output
    assert not (tmp_path / "b").exists()


def test_missing_key_and_keygen(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from zksolv.cli.main import cli

    snap = make_snapshot(tmp_path / "snap", rows_for(2, 2))
    res = CliRunner().invoke(cli, ["prove", str(snap), "--out", str(tmp_path / "b")],
                             env={"ZKSOLV_OPERATOR_KEY": ""})
    assert res.exit_code == 2 and "operator key" in res.output
    key = tmp_path / "op.key"
    res = run("keygen", "--out", key)
    assert res.exit_code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) == 64
    res = run("keygen", "--out", key)
    assert res.exit_code == 2 and "refusing" in res.output
    res = run("prove", snap, "--out", tmp_path / "b", "--key", key, "--jobs", "1", "--quiet")
    assert res.exit_code == 0, res.output


def test_existing_output_refused(epoch16: tuple[Path, Path, list], tmp_path: Path) -> None:
    d, bundle, _ = epoch16
    res = run("prove", d / "snap", "--out", bundle, "--jobs", "1", "--quiet")
    assert res.exit_code == 2 and "exists" in res.output


def test_parallel_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards proven in two worker processes. The shard size is shrunk (for
    prover and verifier alike) so the test stays fast."""
    from zksolv.circuits import epoch as circ

    monkeypatch.setattr(circ, "SHARD_VALUES", 16)
    snap = make_snapshot(tmp_path / "snap", rows_for(50, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "2", "--quiet")
    assert res.exit_code == 0, res.output
    m = read_manifest(tmp_path / "b")
    assert m["tree"]["shards"] == 4
    # verification in two worker processes as well: 6 proofs in 3 batches
    from zksolv.verifier import bundle as vb

    monkeypatch.setattr(vb, "BATCH_PROOFS", 2)
    code, out = verify_json(tmp_path / "b", "--jobs", "2")
    assert code == 0, out
    # swap two shard proofs: each is valid, but not for its own shard
    rb = (tmp_path / "b" / "range.bin").read_bytes()
    n = len(rb) // 4
    (tmp_path / "b" / "range.bin").write_bytes(rb[2 * n : 3 * n] + rb[n : 2 * n] + rb[:n]
                                               + rb[3 * n :])
    write_manifest(tmp_path / "b", m)
    code, out = verify_json(tmp_path / "b", "--jobs", "2")
    assert (code, out["check"]) == (1, "leaf-range") and "shard 0" in out["detail"], out


def test_py_ecc_backend_tiny_epoch(tmp_path: Path, epoch16: tuple[Path, Path, list]) -> None:
    """The reference backend proves and verifies, and verifies an arkworks bundle."""
    snap = make_snapshot(tmp_path / "snap", [("alice", (5,)), ("bob", (7,))], assets=ASSETS1)
    prove(snap, tmp_path / "b", backend="py_ecc")
    code, out = verify_json(tmp_path / "b", backend="py_ecc")
    assert code == 0, out
    code, out = verify_json(tmp_path / "b", backend="arkworks")
    assert code == 0, out
    res = run("inclusion", "export", "--db", tmp_path / "b.inclusion.sqlite", "--account",
              "bob", "--out", tmp_path / "bob.json")
    assert res.exit_code == 0
    bundle_hash = out["bundles"][0]["bundle_hash"]
    res = run("inclusion", "verify", tmp_path / "bob.json", "--account", "bob", "--bundle-hash",
              bundle_hash, "--expect", "USD=7", backend="py_ecc")
    assert res.exit_code == 0, res.output


def test_bundles_verify_across_the_fast_and_reference_paths(
    tmp_path: Path, epoch16: tuple[Path, Path, list]
) -> None:
    """A bundle from the default (fast) path verifies on arkworks; one from
    arkworks verifies on the default path."""
    _, bundle, rows = epoch16
    code, out = verify_json(bundle, backend="arkworks")
    assert code == 0, out
    snap = make_snapshot(tmp_path / "snap", rows[:5], epoch=3)
    prove(snap, tmp_path / "b", backend="arkworks")
    code, out = verify_json(tmp_path / "b")
    assert code == 0, out


def test_without_mcl_everything_runs_on_the_reference_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where mcl cannot load (another CPU, a Python without a pymcl wheel),
    the default backend is arkworks and the whole flow still works."""
    from zksolv.core import group, mcl

    monkeypatch.setattr(mcl, "_library", lambda: mcl.MclUnavailable("not on this platform"))
    assert not mcl.available()
    assert group.default_backend_name() == "arkworks"
    assert group.get_backend().name == "arkworks"
    with pytest.raises(mcl.MclUnavailable, match="not on this platform"):
        mcl.library()
    snap = make_snapshot(tmp_path / "snap", [("alice", (5,)), ("bob", (7,))], assets=ASSETS1)
    prove(snap, tmp_path / "b")
    code, out = verify_json(tmp_path / "b")
    assert code == 0, out


def test_demo_small(tmp_path: Path) -> None:
    res = run("demo", "--accounts", "20", "--assets", "2", "--jobs", "1", "--quiet",
              "--keep", tmp_path / "demo")
    assert res.exit_code == 0, res.output
    assert "solvent" in res.output and "inclusion" in res.output
    code, out = verify_json(tmp_path / "demo" / "bundle")
    assert code == 0, out


def test_crash_midway_keeps_only_the_private_work_area(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the shards are proven (here: writing the manifest)
    removes the temporary bundle and database; nothing looks like a bundle.
    The private work area (0700, files 0600) stays, and --resume finishes."""
    from zksolv.prover import epoch as prover

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash")

    real = prover.build_manifest
    monkeypatch.setattr(prover, "build_manifest", boom)
    snap = make_snapshot(tmp_path / "snap", rows_for(3, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code != 0 and isinstance(res.exception, RuntimeError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]
    work = work_area(tmp_path / "b")
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    for f in work.rglob("*"):
        assert stat.S_IMODE(f.stat().st_mode) == (0o700 if f.is_dir() else 0o600), f
    # without --resume the work area is not silently discarded
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 2 and "--resume" in res.output
    monkeypatch.setattr(prover, "build_manifest", real)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--resume")
    assert res.exit_code == 0, res.output
    assert "resumed: 1 of 1 shards" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "b.inclusion.sqlite", "snap"]
    code, out = verify_json(tmp_path / "b")
    assert code == 0, out
