"""The reserves commands at an operator's scale: `reserves sign` with many
keys in one command (repeated --eth-key, --eth-key-dir), progress of a long
`reserves fetch`, and `verify --rpc` recovering each signature once."""

from __future__ import annotations

import json
from pathlib import Path

from reserves_support import eth_address, sourced_snapshot, write_evidence
from test_epoch_support import OPERATOR_HEX, run

ETH = 10**18
KEYS = [f"{i:02x}" * 32 for i in (0x21, 0x22, 0x23, 0x24)]
ADDRS = [eth_address(k) for k in KEYS]
DECLARED = "0x" + "dd" * 20


def _key(path: Path, key_hex: str) -> Path:
    path.write_text(key_hex + "\n")
    path.chmod(0o600)
    return path


def _snapshot(tmp: Path) -> Path:
    """ETH held by the first three keys' addresses and a declared vault."""
    holders = [(a, "account") for a in ADDRS[:3]] + [(DECLARED, "declared")]
    snap = sourced_snapshot(tmp / "snap", holders)
    write_evidence(snap, [(a, k, ETH) for a, k in holders])
    return snap


def test_one_sign_command_signs_for_every_key_given(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path)
    keydir = tmp_path / "keys"
    keydir.mkdir()
    _key(keydir / "b.key", KEYS[1])
    _key(keydir / "unused.key", KEYS[3])          # holds nothing here: a warning
    (keydir / "README").write_text("not a key, not named *.key: left alone\n")
    _key(keydir / ".hidden.key", "zz")             # hidden: left alone
    res = run("reserves", "sign", snap, "--eth-key", _key(tmp_path / "a.key", KEYS[0]),
              "--eth-key-dir", keydir, "--operator", OPERATOR_HEX)
    assert res.exit_code == 0, res.output
    assert "signed 2 holding(s) of 2 address(es) for epoch 1" in res.output
    assert f"warning: {keydir / 'unused.key'}: its address {ADDRS[3]} holds none" in res.output
    assert f"still unsigned: 1 holding(s): ETH {ADDRS[2]} (account)" in res.output, res.output
    doc = json.loads((snap / "reserves.json").read_text())
    sigs = {h["address"]: h["signature"] for h in doc["evidence"]["assets"][0]["holdings"]}
    assert sigs[ADDRS[0]] and sigs[ADDRS[1]] and sigs[ADDRS[2]] is None and sigs[DECLARED] is None
    # what was signed recovers; what is missing is listed, not a failure
    res = run("reserves", "check", snap, "--json")
    out = json.loads(res.output)
    assert res.exit_code == 2 and out["findings"] == [], out
    assert [m["address"] for m in out["missing"]] == [ADDRS[2]]

    res = run("reserves", "sign", snap, "--eth-key", _key(tmp_path / "c.key", KEYS[2]),
              "--operator", OPERATOR_HEX, "--json")
    out = json.loads(res.output)
    assert res.exit_code == 0 and out["missing"] == [] and out["unused_keys"] == [], out
    assert run("reserves", "check", snap).exit_code == 0
    # the earlier signatures were kept
    doc = json.loads((snap / "reserves.json").read_text())
    assert {h["address"]: h["signature"] for h in doc["evidence"]["assets"][0]["holdings"]
            }[ADDRS[0]] == sigs[ADDRS[0]]


def test_sign_refuses_keys_that_hold_nothing_or_are_not_keys(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path)
    before = (snap / "reserves.json").read_bytes()
    res = run("reserves", "sign", snap, "--eth-key", _key(tmp_path / "x.key", KEYS[3]),
              "--eth-key", _key(tmp_path / "y.key", "31" * 32), "--operator", OPERATOR_HEX)
    assert res.exit_code == 2 and "none of the 2 keys' addresses" in res.output, res.output
    keydir = tmp_path / "keys"
    keydir.mkdir()
    _key(keydir / "a.key", KEYS[0])
    (keydir / "broken.key").write_text("not hex\n")
    (keydir / "broken.key").chmod(0o600)
    res = run("reserves", "sign", snap, "--eth-key-dir", keydir, "--operator", OPERATOR_HEX)
    assert res.exit_code == 2 and "broken.key" in res.output, res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run("reserves", "sign", snap, "--eth-key-dir", empty, "--operator", OPERATOR_HEX)
    assert res.exit_code == 2 and "no *.key file in it" in res.output, res.output
    res = run("reserves", "sign", snap, "--operator", OPERATOR_HEX)
    assert res.exit_code == 2 and "--eth-key-dir" in res.output, res.output
    assert (snap / "reserves.json").read_bytes() == before     # nothing written
    assert "Traceback" not in res.output
