"""The reserves commands at an operator's scale: `reserves sign` with many
keys in one command (repeated --eth-key, --eth-key-dir), progress of a long
`reserves fetch`, and `verify --rpc` recovering each signature once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reserves_support import eth_address, sourced_snapshot, write_evidence
from test_chain_evidence import scene  # noqa: F401  (the fixture)
from test_epoch_support import OPERATOR_HEX, run
from test_reserves_chain import funded  # noqa: F401  (the fixture)

from zksolv.errors import ChainError

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


# -- progress of a long fetch ------------------------------------------------------------


def test_count_progress_drives_a_bar_to_its_end() -> None:
    from zksolv.progress import count_progress

    seen: list[int] = []
    opened: list[tuple[int, str]] = []

    def bar(items: Iterable[int], total: int, desc: str) -> Iterator[int]:
        opened.append((total, desc))
        for x in items:
            seen.append(x)
            yield x

    assert count_progress(None, "balances") is None
    on_count = count_progress(bar, "balances")
    assert on_count is not None
    for done in (0, 100, 200, 250):
        on_count(done, 250)
    assert opened == [(250, "balances")] and seen == list(range(250))


def _many_holders(n: int) -> list[tuple[str, str]]:
    return [("0x" + f"{i + 1:040x}", "declared") for i in range(n)]


def test_fetch_reports_each_batch(chain: Any) -> None:
    from zksolv.chain import evidence
    from zksolv.chain.rpc import RpcClient

    holders = tuple(evidence.HolderSource(bytes.fromhex(a[2:]), "declared")
                    for a, _ in _many_holders(250))
    sources = evidence.ReserveSources(31337, None, (
        evidence.AssetSource("ETH", None, holders),
        evidence.AssetSource("WETH", bytes.fromhex("ee" * 20), holders[:3])))
    calls: list[tuple[int, int]] = []
    block = chain.block_number()
    with RpcClient(chain.url, max_batch=100) as client:
        # the token is no contract: its read fails after the native batches reported
        with pytest.raises(ChainError, match="answered nothing"):
            evidence.fetch(client, sources, block=block,
                           progress=lambda d, t: calls.append((d, t)))
        assert calls == [(0, 253), (100, 253), (200, 253), (250, 253)], calls
        calls.clear()
        native = evidence.ReserveSources(31337, None, sources.assets[:1])
        with_bar = evidence.fetch(client, native, block=block,
                                  progress=lambda d, t: calls.append((d, t)))
        assert calls == [(0, 250), (100, 250), (200, 250), (250, 250)], calls
        assert with_bar == evidence.fetch(client, native, block=block)


def test_reserves_fetch_shows_progress_on_a_terminal_only(tmp_path: Path, chain: Any) -> None:
    from test_cold_cache_progress import on_terminal

    cache = str(tmp_path / "cache")
    snap = sourced_snapshot(tmp_path / "snap", _many_holders(250))
    block = str(chain.block_number())
    args = ["reserves", "fetch", str(snap), "--rpc", chain.url, "--block", block]
    code, screen, _ = on_terminal(args, cache, tmp_path)
    assert code == 0, screen
    assert "reading 250 balance(s) of 1 asset(s)" in screen and "balances:" in screen, screen
    assert "| 0/250 " in screen, screen       # counts drawn as tqdm redraws (fast here)
    code, screen, _ = on_terminal([*args, "-q"], cache, tmp_path)
    assert code == 0 and "balances:" not in screen and "reading" not in screen, screen
    code, screen, stdout = on_terminal([*args, "--json"], cache, tmp_path)
    assert code == 0 and "balances:" not in screen, screen
    assert json.loads(stdout)["block_number"] == int(block)


# -- verify --rpc recovers each signature once --------------------------------------------


def _tampered(s: Any) -> dict[str, Any]:
    """The evidence cases the checks must catch, on the real node."""
    from dataclasses import replace

    from test_chain_evidence import EPOCH, OPERATOR, honest, set_balance, set_signature

    from zksolv.chain import evidence as ev
    from zksolv.chain import ownership

    fork = s.node.snapshot()
    s.node.mine(1)
    reorged = ev.fetch(s.client, s.sources, block=s.node.block_number())
    s.node.revert(fork)
    s.node.send({"to": "0x" + "ee" * 20, "value": 1})   # another block at that height
    from test_chain_evidence import signed

    reorged = signed(s, reorged)
    good = honest(s)
    stmt = dict(chain_id=31337, holder=s.a1, block_number=good.block_number,
                block_hash=good.block_hash, epoch=EPOCH, operator=OPERATOR)
    wallet_digest = ev.statement_digest(good, s.wallet, epoch=EPOCH, operator=OPERATOR)
    return {
        "honest": good,
        "inflated": set_balance(good, "USDC", s.a1, 1_000_000_001),
        "other key": set_signature(good, s.a1, ownership.sign_digest(
            s.k2, ownership.digest(**stmt))),
        "other epoch": set_signature(good, s.a1, ownership.sign(s.k1, **{**stmt,
                                                                        "epoch": EPOCH - 1})),
        "other operator": set_signature(good, s.a1, ownership.sign(
            s.k1, **{**stmt, "operator": b"\x01" * 32})),
        "missing": set_signature(good, s.a2, None),
        "wallet other key": set_signature(good, s.wallet,
                                          ownership.sign_digest(s.k1, wallet_digest)),
        "inflated and other key": set_balance(set_signature(good, s.a1, ownership.sign_digest(
            s.k2, ownership.digest(**stmt))), "ETH", s.a2, 10**30),
        "reorg": reorged,
        "another chain": replace(good, chain_id=1),
    }


def test_node_checks_find_what_the_online_check_found(scene: Any) -> None:  # noqa: F811
    """check_offline + check_node (what verify --rpc and reserves check --rpc
    now run) finds exactly what check_online (offline checks repeated) finds,
    on every tampered case; verify's verdict, the first finding in tag order
    once the offline ones are none, is therefore the same."""
    from test_chain_evidence import EPOCH, OPERATOR

    from zksolv.chain import evidence as ev

    s = scene
    cases = _tampered(s)
    kw: dict[str, Any] = {"epoch": EPOCH, "operator": OPERATOR, "epoch_timestamp": None}
    seen_tags = set()
    for name, evidence in cases.items():
        offline = ev.check_offline(evidence, epoch=EPOCH, operator=OPERATOR)
        node = ev.check_node(s.client, evidence, **kw)
        reference = ev.check_online(s.client, evidence, **kw)
        if node and node[0].tag == "reserves-chain":
            assert reference == node, name          # another chain: that finding alone
        else:
            assert reference == offline + node, name
        seen_tags |= {f.tag for f in reference}
        assert (reference == []) == (name == "honest"), (name, reference)
    assert seen_tags == set(ev.TAGS)


def test_verify_rpc_recovers_each_signature_once(tmp_path: Path, chain: Any,
                                                funded: dict[str, Any],  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Two accounts sign (one holds two assets: one statement): verify --rpc
    and reserves check --rpc recover two signatures, not four."""
    from test_epoch_support import verify_json
    from test_reserves_chain import _honest

    from zksolv.chain import ownership

    bundle, _ = _honest(tmp_path, chain, funded)
    calls: list[bytes] = []
    real = ownership.recover_digest

    def counted(signature: bytes, digest: bytes, **kw: Any) -> bytes:
        calls.append(signature)
        return real(signature, digest, **kw)

    monkeypatch.setattr(ownership, "recover_digest", counted)
    code, out = verify_json(bundle, "--rpc", chain.url)
    assert code == 0, out
    assert len(calls) == len(set(calls)) == 2, len(calls)
    calls.clear()
    assert run("reserves", "check", tmp_path / "snap1", "--rpc", chain.url).exit_code == 0
    assert len(calls) == len(set(calls)) == 2, len(calls)
