"""Proof units: an 18-decimal token proven at fewer decimals, liabilities
rounded up and reserves rounded down, the rounding bound into the header
the verifier and the holder check; shortfalls in tokens and quote currency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_epoch_support import make_snapshot, prove, read_manifest, run, verify_json, write_manifest

from zksolv import units
from zksolv.circuits import epoch as circ
from zksolv.errors import InputError
from zksolv.snapshot import Asset, SnapshotHeader, open_snapshot, write_snapshot

ETH = 10**18
# 1500 ETH of reserves: 1.5e21 base units, beyond 2^64 (the old cap was ~18.4 ETH).
ASSETS = (
    Asset("USDC", 6, 100, 10_000, 10**12),
    Asset("ETH", 18, 250_000, 9_000, 1500 * ETH + 999, proof_decimals=9),
)
ROWS = [
    ("alice", (3_989_744_384, 20 * ETH + 1)),    # 20 ETH + 1 wei: proven as 20.000000001
    ("bob", (0, 1000 * ETH)),
    ("carol", (7, 0)),
]


@given(st.integers(0, 10**40), st.integers(0, 30))
def test_rounding_is_conservative(amount: int, shift: int) -> None:
    scale = 10**shift
    up, down = units.liability_units(amount, scale), units.reserve_units(amount, scale)
    assert up * scale >= amount > (up - 1) * scale or amount == up == 0
    assert down * scale <= amount < (down + 1) * scale


def test_tokens_parse_and_format() -> None:
    assert units.parse_tokens("3989.744384", 6) == 3_989_744_384
    assert units.parse_tokens("20", 18) == 20 * ETH
    assert units.parse_tokens("1.0000001", 6) is None      # more decimals than the asset
    assert units.parse_tokens("1,250,000", 6) is None
    assert units.format_tokens(20 * ETH + 1, 18) == "20.000000000000000001"
    assert units.format_grouped(16_600_000_123, 3) == "16,600,000.12"


@pytest.fixture(scope="module")
def eth_epoch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("units")
    prove(make_snapshot(d / "snap", ROWS, assets=ASSETS), d / "b")
    for acc, _ in ROWS:
        res = run("inclusion", "export", "--db", d / "b.inclusion.sqlite", "--account", acc,
                  "--out", d / f"{acc}.json")
        assert res.exit_code == 0, res.output
    return d


def test_eighteen_decimals_prove_and_verify(eth_epoch: Path) -> None:
    code, out = verify_json(eth_epoch / "b")
    assert code == 0, out
    eth = out["bundles"][0]["assets"][1]
    assert eth["reserves"] == 1500 * ETH + 999             # the exact assertion, published
    assert eth["proof_decimals"] == 9
    assert eth["proven_reserves"] == 1500 * 10**9          # rounded down by the verifier
    assert eth["rounding"] == "liabilities-up/reserves-down"
    m = read_manifest(eth_epoch / "b")
    assert m["version"] == 4 and m["rounding"] == "liabilities-up/reserves-down"
    text = run("verify", eth_epoch / "b").output
    assert "ETH: decimals 18" in text and "proven at 9 decimals" in text


def test_holder_sees_rounded_up_amount(eth_epoch: Path) -> None:
    d = eth_epoch
    res = run("inclusion", "verify", d / "alice.json", "--account", "alice", "--bundle", d / "b",
              "--expect", "ETH=20.000000000000000001", "--expect", "USDC=3989.744384", "--json")
    assert res.exit_code == 0, res.output
    eth = json.loads(res.output)["amounts"]["ETH"]
    assert eth["proof_units"] == 20 * 10**9 + 1   # ceil, in 10^-9 ETH
    assert (eth["proof_decimals"], eth["decimals"], eth["tokens"], eth["unit"]) == (
        9, 18, "20.000000001", "10^-9 ETH")
    # in base units too; and a wrong expectation names both sides in tokens
    res = run("inclusion", "verify", d / "alice.json", "--account", "alice", "--bundle", d / "b",
              "--expect", f"ETH={20 * ETH + 1}")
    assert res.exit_code == 0, res.output
    # tokens first, the unit named: never read as 20,000,000,001 ETH
    assert ("\n  ETH 20.000000001 (20000000001 units of 10^-9 ETH, rounded up; the token has "
            "18 decimals)\n") in res.output, res.output
    assert f"\n  as you expected: ETH 20.000000001 (--expect ETH={20 * ETH + 1})\n" in res.output
    res = run("inclusion", "verify", d / "alice.json", "--account", "alice", "--bundle", d / "b",
              "--expect", "ETH=20.0", "--json")
    out = json.loads(res.output)
    assert (res.exit_code, out["check"]) == (1, "inclusion-amount")
    assert "20.000000001 ETH" in out["detail"] and "20.000000000000000000 ETH" in out["detail"]
    # a plain integer is base units, and the message says what it read
    res = run("inclusion", "verify", d / "alice.json", "--account", "alice", "--bundle", d / "b",
              "--expect", "ETH=20")
    assert res.exit_code == 1 and "0.000000000000000020 ETH (20 base units)" in res.output


def test_rounding_is_bound_into_the_proofs(eth_epoch: Path, tmp_path: Path) -> None:
    """Another proof_decimals or other exact reserves (same rounded value)
    change the header digest: every proof breaks."""
    import shutil

    for edit in (lambda a: a.__setitem__("proof_decimals", 8),
                 lambda a: a.__setitem__("reserves", a["reserves"] + 1)):
        b = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        shutil.copytree(eth_epoch / "b", b)
        m = read_manifest(b)
        edit(m["assets"][1])
        write_manifest(b, m)
        code, out = verify_json(b)
        assert code == 1 and out["check"] in {"leaf-range", "solvency-asset"}, out


def test_header_digest_covers_proof_decimals() -> None:
    base = circ.EpochHeader(1, 2, 2, (circ.AssetTerms("ETH", 18, 1, 10_000, 5 * ETH, 9),),
                            None, None, 4, 16, False, bytes(32))
    other = circ.EpochHeader(1, 2, 2, (circ.AssetTerms("ETH", 18, 1, 10_000, 5 * ETH, 10),),
                             None, None, 4, 16, False, bytes(32))
    assert base.digest() != other.digest()
    assert base.assets[0].proven_reserves == 5 * 10**9


def test_value_that_does_not_fit_suggests_proof_decimals(tmp_path: Path) -> None:
    plain = (Asset("ETH", 18, 250_000, 9_000, 1500 * ETH),)
    snap = tmp_path / "s"
    snap.mkdir()
    header = SnapshotHeader(1, 1, 2, plain, 1).to_json()
    (snap / "header.json").write_text(json.dumps(header))
    (snap / "accounts.csv").write_text("account_id,ETH\na,1\n")
    with pytest.raises(InputError) as e:
        open_snapshot(snap)
    assert e.value.where.endswith("header.json.assets[0].reserves")
    assert "1500.000000000000000000 ETH" in e.value.reason
    assert '"proof_decimals": 16' in e.value.reason
    # an account amount likewise (reserves made to fit)
    header["assets"][0]["proof_decimals"] = 9
    (snap / "header.json").write_text(json.dumps(header))
    (snap / "accounts.csv").write_text(f"account_id,ETH\na,{10**35}\n")
    with pytest.raises(InputError) as e:
        list(open_snapshot(snap).iter_accounts())
    assert e.value.where.endswith("accounts.csv:2:ETH")
    assert "exceeds 2^64 - 1 proof units at proof_decimals 9" in e.value.reason
    assert '"proof_decimals": 2' in e.value.reason
    # proof_decimals finer than decimals is refused
    header["assets"][0]["proof_decimals"] = 19
    (snap / "header.json").write_text(json.dumps(header))
    with pytest.raises(InputError, match="proof_decimals 19 is more than decimals 18"):
        open_snapshot(snap)


def test_rounding_can_refuse_but_never_accept_an_insolvent_epoch(tmp_path: Path) -> None:
    """Exactly solvent, but three accounts each rounded up by almost a whole
    proof unit exceed the reserves rounded down: refused (exit 3), with the
    shortfall in tokens, quote currency and base units, rounding named."""
    assets = (Asset("ETH", 18, 250_000, 10_000, 3 * 10**9 + 3, proof_decimals=9),)
    rows = [(f"a{i}", (10**9 + 1,)) for i in range(3)]   # each 1e9+1 wei -> 2 gwei-units
    snap = make_snapshot(tmp_path / "s", rows, assets=assets)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 3, res.output
    assert "ETH short by 0.000000003 ETH = less than 0.01 in the quote currency" in res.output
    assert "(3000000000 base units;" in res.output
    assert "after rounding to 9 proof decimals" in res.output
    assert not (tmp_path / "b").exists()


def test_shortfall_in_people_units(tmp_path: Path) -> None:
    assets = (Asset("USDC", 6, 100, 10_000, 1_000_000_000),           # 1,000 USDC held
              Asset("ETH", 18, 250_000, 9_000, 2 * ETH, proof_decimals=9))
    rows = [("a", (1_500_000_000, ETH))]                                # 1,500 USDC owed
    snap = make_snapshot(tmp_path / "s", rows, assets=assets)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 3, res.output
    assert ("USDC short by 500.000000 USDC = 500.00 in the quote currency "
            "(500000000 base units; reserves 1000.000000, owed 1500.000000 USDC)") in res.output
    # valued: 1000 + 0.9 * 2 * 2500 = 5500 held vs 1500 + 2500 = 4000 owed: covered
    assert "valued" not in res.output


def test_write_snapshot_round_trips_proof_decimals(tmp_path: Path) -> None:
    header = SnapshotHeader(1, 1, 2, ASSETS, len(ROWS))
    snap = write_snapshot(tmp_path / "s", header, ROWS)
    opened = open_snapshot(snap)
    assert opened.header == header
    assert list(opened.iter_proof_amounts()) == [
        ("alice", (3_989_744_384, 20 * 10**9 + 1)), ("bob", (0, 1000 * 10**9)), ("carol", (7, 0))
    ]


def test_readable_fields_are_checked_against_the_binary_part(eth_epoch: Path,
                                                             tmp_path: Path) -> None:
    d = eth_epoch
    doc = json.loads((d / "alice.json").read_text())
    code, out = verify_json(d / "b")
    root, bundle_hash = out["bundles"][0]["root_hash"], out["bundles"][0]["bundle_hash"]
    assert doc["bundle_hash"] == bundle_hash and doc["root_hash"] == root
    assert doc["amounts"] == [
        {"symbol": "USDC", "decimals": 6, "proof_decimals": 6, "proof_units": 3_989_744_384,
         "tokens": "3989.744384"},
        {"symbol": "ETH", "decimals": 18, "proof_decimals": 9, "proof_units": 20 * 10**9 + 1,
         "tokens": "20.000000001"},
    ]
    # `verify` prints the whole root hash, pasteable
    assert f"root hash   {root}" in run("verify", d / "b").output

    def edited(change: object) -> tuple[int, dict]:
        text = json.loads((d / "alice.json").read_text())
        change(text)  # type: ignore[operator]
        path = tmp_path / "p.json"
        path.write_text(json.dumps(text))
        res = run("inclusion", "verify", path, "--account", "alice", "--bundle-hash",
                  bundle_hash, "--json")
        return res.exit_code, json.loads(res.output)

    for change in (
        lambda t: t["amounts"][1].__setitem__("tokens", "200.000000001"),
        lambda t: t["amounts"][0].__setitem__("proof_units", 1),
        lambda t: t["amounts"].reverse(),
        lambda t: t["amounts"][1].__setitem__("proof_decimals", 18),
        lambda t: t.__setitem__("root_hash", "00" * 32),
        lambda t: t.__setitem__("bundle_hash", "00" * 32),
    ):
        code, out = edited(change)
        assert (code, out["check"]) == (1, "inclusion-labels"), out
    # a document without the readable fields (as issued before) still verifies
    code, out = edited(lambda t: [t.pop(k) for k in ("amounts", "root_hash", "bundle_hash")])
    assert code == 0, out
