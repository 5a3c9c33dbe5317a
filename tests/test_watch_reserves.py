"""``zksolv watch`` and reserves read from a chain: a snapshot whose header
names reserve sources is complete only with reserves.json fetched and signed
by every holder that signs. Until then it waits (one line naming what is
missing and the command that supplies it) and is looked at again; evidence
that is not its own, or a signature that does not recover, is refused as
malformed, as prove refuses it, and looked at again when reserves.json
changes. With --rpc (a real node) the watch reads the reserves itself at the
block derived from the header's window, once per epoch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reserves_support import ETH_KEYS, eth_address, sourced_snapshot, write_evidence
from test_epoch_support import OPERATOR_HEX, run, verify_json

from zksolv.prover.keys import public_key_bytes, signing_key
from zksolv.prover.watch import status_location

ETH = 10**18
K0, K1 = ETH_KEYS
A0, A1 = eth_address(K0), eth_address(K1)
OTHER_OPERATOR = public_key_bytes(signing_key(bytes.fromhex("22" * 32))).hex()


def _status(out: Path) -> list[dict[str, Any]]:
    path = status_location(out)
    return json.loads(path.read_text())["epochs"] if path.exists() else []


def _key(tmp: Path, i: int) -> Path:
    p = tmp / f"eth{i}.key"
    p.write_text(ETH_KEYS[i] + "\n")
    p.chmod(0o600)
    return p


def _watch(watched: Path, out: Path, *extra: str) -> str:
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1", "--interval", "0.1",
              *extra)
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    return str(res.output)


def test_a_sourced_snapshot_waits_for_its_evidence_then_its_signatures(tmp_path: Path) -> None:
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    snap = sourced_snapshot(watched / "epoch-000001", [(A0, "account"), (A1, "account")])
    text = _watch(watched, out)
    assert ("epoch-000001: skipped, waiting for reserves.json (the header names reserve "
            f"sources): read the balances with zksolv reserves fetch {snap} --rpc URL --block N "
            "(looked at again on the next scan)") in text, text
    assert "REFUSED" not in text and _status(out) == []

    write_evidence(snap, [(A0, "account", 2 * ETH), (A1, "account", ETH)])
    text = _watch(watched, out)
    assert (f"epoch-000001: skipped, waiting for 2 ownership signature(s) in reserves.json: "
            f"ETH {A0} (account), ETH {A1} (account): zksolv reserves sign {snap} --eth-key "
            f"FILE --operator {OPERATOR_HEX} (or reserves typed-data, then reserves import) "
            "(looked at again on the next scan)") in text, text
    assert _status(out) == []

    res = run("reserves", "sign", snap, "--eth-key", _key(tmp_path, 0), "--operator",
              OPERATOR_HEX)
    assert res.exit_code == 0, res.output
    text = _watch(watched, out)
    assert f"waiting for 1 ownership signature(s) in reserves.json: ETH {A1} (account)" in text
    assert _status(out) == []

    res = run("reserves", "sign", snap, "--eth-key", _key(tmp_path, 1), "--operator",
              OPERATOR_HEX)
    assert res.exit_code == 0, res.output
    text = _watch(watched, out)
    assert "epoch 1: proven solvent" in text, text
    assert [(e["epoch"], e["status"]) for e in _status(out)] == [(1, "proven")]
    manifest = json.loads((out / "epoch-000001" / "manifest.json").read_text())
    assert manifest["version"] == 6 and manifest["assets"][0]["reserves"] == 3 * ETH
    code, rep = verify_json(out / "epoch-000001")
    assert code == 0, rep


def test_one_line_per_change_while_waiting(tmp_path: Path) -> None:
    """A watch that keeps running says a waiting snapshot's line once, and
    again only when what is missing changes."""
    from test_epoch_support import KEY_HEX

    from zksolv.prover.watch import Watcher

    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    snap = sourced_snapshot(watched / "epoch-000001", [(A0, "account"), (A1, "account")])
    lines: list[str] = []
    watcher = Watcher(watched, out, bytes.fromhex(KEY_HEX), log=lines.append)
    try:
        for _ in range(3):
            watcher.once()
        assert len(lines) == 1 and "waiting for reserves.json" in lines[0], lines
        write_evidence(snap, [(A0, "account", 2 * ETH), (A1, "account", ETH)])
        for _ in range(3):
            watcher.once()
        assert len(lines) == 2 and "waiting for 2 ownership signature(s)" in lines[1], lines
    finally:
        watcher.close()


def test_evidence_that_is_not_the_snapshots_is_refused_then_retried_when_it_changes(
        tmp_path: Path) -> None:
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    snap = sourced_snapshot(watched / "epoch-000001", [(A0, "account")])
    # another epoch's evidence: refused as prove refuses it, not waited for
    write_evidence(snap, [(A0, "account", 3 * ETH)], epoch=2)
    text = _watch(watched, out)
    assert "epoch 1 (epoch-000001): REFUSED, malformed (exit 2)" in text, text
    st = _status(out)
    assert "reserves.json is for epoch 2, the header is epoch 1" in st[0]["reason"], st
    assert st[0]["fingerprint"].count("/") == 2          # reserves.json is part of it
    assert _watch(watched, out) == ""                    # unchanged: stays refused

    # this epoch's evidence, but signed for another operator: the signature
    # does not recover for this watch's key (prove's reserves-signature)
    write_evidence(snap, [(A0, "account", 3 * ETH)])
    res = run("reserves", "sign", snap, "--eth-key", _key(tmp_path, 0), "--operator",
              OTHER_OPERATOR)
    assert res.exit_code == 0, res.output
    text = _watch(watched, out)
    assert "REFUSED, malformed" in text, text
    assert f"signed for operator {OTHER_OPERATOR}" in _status(out)[-1]["reason"]
    doc = json.loads((snap / "reserves.json").read_text())
    doc["operator"] = OPERATOR_HEX                       # the record edited, not re-signed
    (snap / "reserves.json").write_text(json.dumps(doc))
    text = _watch(watched, out)
    assert "REFUSED, malformed" in text, text
    assert "[reserves-signature]" in _status(out)[-1]["reason"], _status(out)[-1]

    res = run("reserves", "sign", snap, "--eth-key", _key(tmp_path, 0), "--operator",
              OPERATOR_HEX)
    assert res.exit_code == 0, res.output
    text = _watch(watched, out)
    assert "epoch 1: proven solvent" in text, text
    assert [e["status"] for e in _status(out)] == ["malformed"] * 3 + ["proven"]


def test_a_reserves_file_caught_mid_write_is_judged_over_two_looks(tmp_path: Path) -> None:
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    snap = sourced_snapshot(watched / "epoch-000001", [(A0, "account")])
    (snap / "reserves.json").write_text('{"format": "zksolv-reserves", "vers')
    text = _watch(watched, out)
    assert "refused as malformed if unchanged on the next look" in text, text
    assert "epoch 1 (epoch-000001): REFUSED, malformed (exit 2)" in text, text


def test_a_waiting_epoch_before_the_last_handled_is_out_of_order(
        tmp_path: Path) -> None:
    """Waiting for reserves never holds back what the watch can already say:
    an epoch at or before the last one handled is recorded out-of-order."""
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    snap2 = sourced_snapshot(watched / "epoch-000002", [(A0, "account")], epoch=2)
    write_evidence(snap2, [(A0, "account", 3 * ETH)], epoch=2)
    res = run("reserves", "sign", snap2, "--eth-key", _key(tmp_path, 0), "--operator",
              OPERATOR_HEX)
    assert res.exit_code == 0, res.output
    assert "epoch 2: proven solvent" in _watch(watched, out)
    sourced_snapshot(watched / "epoch-000001", [(A0, "account")])
    text = _watch(watched, out)
    assert "epoch 1 (epoch-000001): REFUSED, out-of-order" in text, text


# -- with a node: the watch reads the reserves itself --------------------------------


@pytest.fixture
def funded(chain: Any) -> Any:
    chain.send({"to": A1, "value": 5 * ETH})
    return chain


def test_watch_reads_the_reserves_at_the_derived_block_once(tmp_path: Path,
                                                           funded: Any) -> None:
    chain = funded
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    t = int(chain.block("latest")["timestamp"], 16) + 100
    snap = sourced_snapshot(watched / "epoch-000001", [(A0, "account"), (A1, "account")],
                            window=4)
    hp = snap / "header.json"
    header = json.loads(hp.read_text())
    header["timestamp"] = t
    hp.write_text(json.dumps(header))
    # a block the operator picks (no window) is never read by the watch
    plain = sourced_snapshot(watched / "epoch-000002", [(A0, "account")], epoch=2)

    text = _watch(watched, out, "--rpc", chain.url)
    assert ("epoch-000001: skipped, waiting for reserves.json: reading it failed: "
            "eth_getBlockByNumber at") in text and "the window has not begun" in text, text
    assert not (snap / "reserves.json").exists()
    assert "--block N" in text and not (plain / "reserves.json").exists()

    chain.mine(12, interval=20)
    text = _watch(watched, out, "--rpc", chain.url)
    doc = json.loads((snap / "reserves.json").read_text())
    ev = doc["evidence"]
    assert (f"epoch-000001: read epoch 1's reserves at block {ev['block_number']} "
            f"({ev['block_hash']}, derived from window block {ev['window']['first_number']})"
            ) in text, text
    assert "waiting for 2 ownership signature(s)" in text, text
    assert doc["operator"] is None and ev["window"]["length"] == 4
    fetched = json.loads(status_location(out).read_text())["reserves_fetched"]
    assert fetched == [{"snapshot": "epoch-000001", "epoch": 1,
                        "block_number": ev["block_number"], "block_hash": ev["block_hash"]}]

    # gone after the watch read it: not read again (another block could be
    # chosen by removing the file until one suits); the line says so
    (snap / "reserves.json").unlink()
    chain.mine(3)
    text = _watch(watched, out, "--rpc", chain.url)
    assert (f"reserves.json is gone since this watch read epoch 1's reserves at block "
            f"{ev['block_number']}") in text, text
    assert not (snap / "reserves.json").exists()
    res = run("reserves", "fetch", snap, "--rpc", chain.url, "--json")   # by hand
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["block_number"] == ev["block_number"]

    for i in (0, 1):
        res = run("reserves", "sign", snap, "--eth-key", _key(tmp_path, i), "--operator",
                  OPERATOR_HEX)
        assert res.exit_code == 0, res.output
    text = _watch(watched, out, "--rpc", chain.url)
    assert "epoch 1: proven solvent" in text, text
    code, rep = verify_json(out / "epoch-000001", "--rpc", chain.url)
    assert code == 0, rep
    assert json.loads(status_location(out).read_text())["reserves_fetched"] == fetched


def test_watch_without_rpc_writes_the_status_file_earlier_versions_read(
        tmp_path: Path) -> None:
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    snap = sourced_snapshot(watched / "epoch-000001", [(A0, "account")])
    write_evidence(snap, [(A0, "account", 3 * ETH)], epoch=5)
    _watch(watched, out)
    assert set(json.loads(status_location(out).read_text())) == {"format", "version",
                                                                 "epochs"}


def test_reserves_held_only_by_declared_contracts_need_no_signing(tmp_path: Path) -> None:
    """Every holder declared (the protocol's own vaults): nothing to sign,
    so the fetched evidence is complete; watch proves it at once."""
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    vaults = ["0x" + "d1" * 20, "0x" + "d2" * 20]
    snap = sourced_snapshot(watched / "epoch-000001", [(v, "declared") for v in vaults])
    write_evidence(snap, [(v, "declared", 2 * ETH) for v in vaults])
    text = _watch(watched, out)
    assert "epoch 1: proven solvent" in text, text
    code, rep = verify_json(out / "epoch-000001")
    assert code == 0, rep
