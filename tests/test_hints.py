"""Unusable input says what it is and exits 2; a misordered chain fails
before any bundle is verified in full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_epoch_support import ASSETS1, make_snapshot, prove, rows_for, run

from zksolv.errors import InputError, VerificationError
from zksolv.verifier import bundle as vb


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hints")
    rows = rows_for(6, 1)
    (d / "bundles").mkdir()
    prove(make_snapshot(d / "s1", rows, epoch=1, assets=ASSETS1), d / "bundles" / "1")
    prove(make_snapshot(d / "s2", rows, epoch=2, assets=ASSETS1), d / "bundles" / "2",
          "--prev", str(d / "bundles" / "1"))
    return d


def test_verify_a_snapshot_folder(chain: Path) -> None:
    res = run("verify", chain / "s1")
    assert res.exit_code == 2, res.output
    assert "a snapshot, not a bundle" in res.output and "zksolv prove" in res.output
    res = run("verify", chain / "s1", "--json")
    assert res.exit_code == 2 and json.loads(res.output)["exit_code"] == 2


def test_verify_the_private_database(chain: Path) -> None:
    res = run("verify", chain / "bundles" / "1.inclusion.sqlite")
    assert res.exit_code == 2, res.output
    assert "PRIVATE" in res.output and "never publish it" in res.output


def test_verify_a_folder_of_bundles_is_a_chain(chain: Path) -> None:
    """The folder's bundles, in epoch order, as one chain; the private
    databases lying in it are called out."""
    res = run("verify", chain / "bundles")
    assert res.exit_code == 0, res.output
    assert "chain valid: epochs 1..2" in res.output
    for db in ("1.inclusion.sqlite", "2.inclusion.sqlite"):
        assert f"{chain / 'bundles' / db} is PRIVATE, an SQLite database" in res.output
    # given in any order as arguments, too
    res = run("verify", chain / "bundles" / "2", chain / "bundles" / "1", "--json")
    out = json.loads(res.output)
    assert res.exit_code == 0 and [b["epoch"] for b in out["bundles"]] == [1, 2]
    # the library, given the folder, says what it is
    with pytest.raises(InputError, match=r"a folder of bundles \(1, 2\)"):
        vb.verify_bundle(chain / "bundles")


def test_global_options_anywhere() -> None:
    from zksolv.cli.main import hoist_global_options

    assert hoist_global_options(["verify", "B", "--backend", "py_ecc", "--json"]) == [
        "--backend", "py_ecc", "verify", "B", "--json"]
    assert hoist_global_options(["verify", "--backend=mcl", "B"]) == ["--backend=mcl",
                                                                    "verify", "B"]
    assert hoist_global_options(["prove", "--", "--backend"]) == ["prove", "--", "--backend"]


def test_key_file_and_environment_agree(chain: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """$ZKSOLV_OPERATOR_KEY holds the key or the path of its file, like --key
    FILE; the key itself given to --key is refused (visible to other users)."""
    from test_epoch_support import KEY_HEX

    from zksolv.prover.keys import load_master_key

    key = tmp_path / "op.key"
    key.write_text(KEY_HEX + "\n")
    key.chmod(0o600)
    monkeypatch.setenv("ZKSOLV_OPERATOR_KEY", str(key))
    assert load_master_key(None) == bytes.fromhex(KEY_HEX)
    monkeypatch.setenv("ZKSOLV_OPERATOR_KEY", KEY_HEX)
    assert load_master_key(None) == load_master_key(key)
    with pytest.raises(InputError, match="--key takes the key FILE"):
        load_master_key(KEY_HEX)
    monkeypatch.setenv("ZKSOLV_OPERATOR_KEY", "abc")
    with pytest.raises(InputError, match="64 hex digits"):
        load_master_key(None)


def test_verify_an_inclusion_proof_file(chain: Path, tmp_path: Path) -> None:
    pf = tmp_path / "p.json"
    res = run("inclusion", "export", "--db", chain / "bundles" / "1.inclusion.sqlite",
              "--account", "acct-1", "--out", pf)
    assert res.exit_code == 0, res.output
    res = run("verify", pf)
    assert res.exit_code == 2 and "zksolv inclusion verify" in res.output


def test_prove_a_simulator_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_snapshot(run_dir / "epoch-000001", rows_for(2, 1), assets=ASSETS1)
    make_snapshot(run_dir / "epoch-000002", rows_for(2, 1), epoch=2, assets=ASSETS1)
    res = run("prove", run_dir, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 2, res.output
    assert "a simulator run, not a snapshot" in res.output
    assert str(run_dir / "epoch-000001") in res.output


def test_misordered_chain_fails_before_full_verification(
        chain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b1, b2 = chain / "bundles" / "1", chain / "bundles" / "2"

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a bundle was verified in full before the order was checked")

    monkeypatch.setattr(vb, "verify_bundle", never)
    with pytest.raises(VerificationError) as e:
        vb.verify_chain([b2, b1])
    assert e.value.check == "chain-epoch" and "oldest first" in e.value.detail
    with pytest.raises(VerificationError) as e:
        vb.verify_chain([b1, b1])
    assert e.value.check == "chain-epoch"
    monkeypatch.undo()
    res = run("verify", b1, "--chain", b2, "--json")
    out = json.loads(res.output)
    assert (res.exit_code, out["check"]) == (1, "chain-epoch")
    res = run("verify", b2, "--chain", b1, "--json")
    assert res.exit_code == 0, res.output
