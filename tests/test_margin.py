"""Margin accounts (snapshot version 2, bundle version 5): debts in the leaves,
every leaf's margin health proven, debts counted beside reserves. By
adversary: an unhealthy account, a forged unhealthy leaf, a debt moved into a
credit column, Maxwell-Todd on the debt sums, dummy accounts with fake debt,
and every changed public input against the health proofs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from margin_support import (
    DAI,
    ETH,
    MARGIN_ASSETS,
    MARGIN_ROWS,
    lying_about_health,
    margin_snapshot,
)
from test_epoch_support import (
    copy_bundle,
    make_snapshot,
    prove,
    read_manifest,
    run,
    verify_json,
    write_manifest,
)

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.core import rangeproof
from zksolv.core.generators import generators
from zksolv.core.group import POINT_BYTES, get_backend
from zksolv.errors import InsolventError, VerificationError
from zksolv.prover import epoch as prover
from zksolv.prover.shards import ShardJob, ShardResult, prove_shard
from zksolv.site import words
from zksolv.snapshot import Asset
from zksolv.verifier import verify_bundle


@pytest.fixture(scope="module")
def lending(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("margin")
    prove(margin_snapshot(d / "snap"), d / "bundle")
    return d, d / "bundle"


def _tag(bundle: Path) -> str:
    with pytest.raises(VerificationError) as ei:
        verify_bundle(bundle)
    return ei.value.check


def test_lending_epoch_proves_and_verifies(lending: tuple[Path, Path]) -> None:
    _, bundle = lending
    m = read_manifest(bundle)
    assert m["version"] == 5 and m["rounding"] == "liabilities-up/reserves-down/debts-down"
    assert [a.get("borrowable") for a in m["assets"]] == [None, True]
    assert len(m["tree"]["root_commitments"]) == 3          # ETH, DAI, DAI.debt
    assert m["statements"]["margin_health"] == {"id": "zksolv/circuit/margin-health/v1",
                                                "bits": 128}
    assert sorted(m["files"]) == ["leaves.bin", "margin.bin", "range.bin", "solvency.bin"]
    text = run("verify", bundle).output
    assert "margin health: every account's haircut collateral covers its debts" in text
    assert "borrowable: debts owed by accounts counted beside the reserves" in text
    code, out = verify_json(bundle)
    assert code == 0, out
    assert out["bundles"][0]["assets"][1]["borrowable"] is True
    checks = out["bundles"][0]["checks"]
    assert checks.index("leaf-range") < checks.index("debt-range") < checks.index(
        "margin-health") < checks.index("solvency-asset")
    # sizes as docs/bundle-format.md states them (S = 64 for m = 3)
    assert m["tree"]["shard_leaves"] == 4 and m["tree"]["leaves"] == 4
    assert (bundle / "leaves.bin").stat().st_size == 4 * (3 * 48 + 32)
    assert layout.margin_proof_sizes(64, 1) == (1504, 1600)


def test_credit_only_snapshot_still_makes_version_4(tmp_path: Path) -> None:
    assets = tuple(Asset(a.symbol, a.decimals, a.price, a.haircut_bps, a.reserves * 10,
                         a.proof_decimals) for a in MARGIN_ASSETS)
    rows = [(acc, (v[0], v[1])) for acc, v in MARGIN_ROWS]
    prove(make_snapshot(tmp_path / "s", rows, assets=assets), tmp_path / "b")
    m = read_manifest(tmp_path / "b")
    assert m["version"] == 4 and "margin_health" not in m["statements"]
    assert "margin.bin" not in m["files"] and len(m["tree"]["root_commitments"]) == 2


def test_unhealthy_account_is_refused_with_id_and_shortfall(tmp_path: Path) -> None:
    rows = [*MARGIN_ROWS, ("underwater", (ETH, 0, 2_100 * DAI))]   # covers 2000
    res = run("prove", margin_snapshot(tmp_path / "s", rows), "--out", tmp_path / "b")
    assert res.exit_code == 3, res.output
    assert "account 'underwater' short by 100.00 in the quote currency" in res.output
    assert "never as a receivable" in res.output
    assert not (tmp_path / "b").exists()
    assert not list(tmp_path.glob(".b*")) and not (tmp_path / "b.inclusion.sqlite").exists()


def test_debts_count_beside_reserves(tmp_path: Path) -> None:
    """DAI reserves 1000 against 3000 owed to savers: covered only because
    the borrower's 2500 DAI debt counts, so the same epoch without the debt
    column is refused."""
    with pytest.raises(InsolventError, match="DAI short by 2000"):
        prover.check_snapshot(make_snapshot(
            tmp_path / "nodebt", [(a, v[:2]) for a, v in MARGIN_ROWS],
            assets=tuple(Asset(a.symbol, a.decimals, a.price, a.haircut_bps, a.reserves,
                               a.proof_decimals) for a in MARGIN_ASSETS)))
    checked, _ = prover.check_snapshot(margin_snapshot(tmp_path / "debt"))
    assert checked.totals[2] == 2_500 * 10**6 + 0      # debts rounded down: 3e-18 DAI is 0


def _forge_unhealthy(tmp_path: Path) -> Path:
    rows = [*MARGIN_ROWS, ("underwater", (ETH, 0, 2_100 * DAI))]
    res = run("prove", margin_snapshot(tmp_path / "s", rows), "--out", tmp_path / "b")
    assert res.exit_code == 3
    with lying_about_health():
        prove(tmp_path / "s", tmp_path / "b")
    return tmp_path / "b"


def test_forged_unhealthy_leaf_fails_margin_health(tmp_path: Path) -> None:
    """An operator that proves an underwater account anyway: every other
    check passes (solvency included), the health proof cannot."""
    bundle = _forge_unhealthy(tmp_path)
    with pytest.raises(VerificationError) as ei:
        verify_bundle(bundle)
    assert ei.value.check == "margin-health"
    assert "margin-health proof does not verify" in str(ei.value)
    code, out = verify_json(bundle)
    assert code == 1 and out["check"] == "margin-health"


def test_debt_moved_into_credit_column_fails(lending: tuple[Path, Path], tmp_path: Path) -> None:
    """Swap a leaf's DAI and DAI.debt commitments (its debt relabelled as a
    credit and back) and rebuild the root honestly from the leaves, re-signed:
    the range proofs are bound to the commitments of each column."""
    _, bundle = lending
    work = copy_bundle(bundle, tmp_path / "b")
    rec = 3 * POINT_BYTES + 32
    data = bytearray((work / "leaves.bin").read_bytes())
    for leaf in range(len(data) // rec):
        base = leaf * rec
        credit, debt = data[base + 48 : base + 96], data[base + 96 : base + 144]
        data[base + 48 : base + 96], data[base + 96 : base + 144] = debt, credit
    (work / "leaves.bin").write_bytes(bytes(data))
    backend = get_backend()
    leaves = [bytes(data[i * rec : (i + 1) * rec]) for i in range(len(data) // rec)]
    pts = [[backend.decode(r[j * 48 : (j + 1) * 48]) for j in range(3)] for r in leaves]
    root = circ.tree_root(backend, 3, (pts, [r[:144] for r in leaves], [r[144:] for r in leaves]))
    m = read_manifest(work)
    m["tree"]["root_hash"] = root[2][0].hex()
    m["tree"]["root_commitments"] = [backend.encode(p).hex() for p in root[0][0]]
    write_manifest(work, m)
    assert _tag(work) == "leaf-range"


def test_maxwell_todd_on_debt_sums(lending: tuple[Path, Path], tmp_path: Path) -> None:
    """A root whose debt commitment is more than the sum of the leaves'
    debts (an inflated receivable): the verifier recomputes the root."""
    _, bundle = lending
    work = copy_bundle(bundle, tmp_path / "b")
    backend = get_backend()
    m = read_manifest(work)
    debt_root = backend.decode(bytes.fromhex(m["tree"]["root_commitments"][2]))
    inflated = backend.add(debt_root, backend.mul(generators(backend).g, 10**9))
    m["tree"]["root_commitments"][2] = backend.encode(inflated).hex()
    write_manifest(work, m)
    assert _tag(work) == "tree-root"


@pytest.mark.parametrize(
    ("edit", "tag"),
    [
        (lambda m: m["assets"][1].pop("borrowable"), "manifest-format"),
        (lambda m: m["assets"][0].__setitem__("borrowable", False), "manifest-canonical"),
        (lambda m: m.__setitem__("version", 4), "manifest-format"),
        (lambda m: m["statements"].pop("margin_health"), "manifest-format"),
        (lambda m: m.__setitem__("rounding", "liabilities-up/reserves-down"), "manifest-format"),
        (lambda m: m["files"].pop("margin.bin"), "manifest-format"),
        (lambda m: m["statements"]["margin_health"].__setitem__("bits", 64), "suite-mismatch"),
    ],
)
def test_version_5_manifest_rules(lending: tuple[Path, Path], tmp_path: Path, edit,
                                  tag: str) -> None:
    _, bundle = lending
    work = copy_bundle(bundle, tmp_path / "b")
    m = read_manifest(work)
    edit(m)
    write_manifest(work, m)
    assert _tag(work) == tag


def test_margin_file_flipped_byte(lending: tuple[Path, Path], tmp_path: Path) -> None:
    _, bundle = lending
    work = copy_bundle(bundle, tmp_path / "b")
    path = work / "margin.bin"
    data = bytearray(path.read_bytes())
    data[1504 + 200] ^= 1          # inside the health proof's L/R points
    path.write_bytes(bytes(data))
    assert _tag(work) == "manifest-hash"
    write_manifest(work, read_manifest(work))
    assert _tag(work) in ("margin-health",)


# --- dummy accounts ------------------------------------------------------------------------

DUMMY_ASSETS = (
    Asset("ETH", 18, 250_000, 8_000, 100 * ETH, proof_decimals=9),
    Asset("DAI", 18, 100, 10_000, 1_000 * DAI, proof_decimals=6, borrowable=True),
)
# savers are owed 1500 DAI against 1000 held: short in DAI, but the ETH
# surplus (100 held, 10 owed) covers it in value
SHORT_IN_DAI = [("saver", (0, 1_500 * DAI, 0)), ("eth", (10 * ETH, 0, 0))]


def _valued(snapshot: Path) -> int:
    """The valued margin as the prover computes it (whether or not the epoch
    is refused per asset)."""
    from zksolv.prover.shortfall import asset_terms
    from zksolv.snapshot import open_snapshot

    snap = open_snapshot(snapshot)
    assets = asset_terms(snap.header)
    coef = circ.valued_coefficients(assets, 1)
    cols = circ.column_layout(assets)
    total = coef.reserve_value(assets)
    for _, values in snap.iter_proof_amounts():
        total += sum((coef.liability[j] if debt else -coef.liability[j]) * v
                     for (j, debt), v in zip(cols, values, strict=True))
    return total


def test_dummy_moves_reserves_between_assets(tmp_path: Path) -> None:
    """Per asset, a dummy that borrows 600 DAI against 0.3 ETH (healthy:
    covers 600) moves apparent reserves from ETH to DAI: the per-asset
    statement passes where the honest epoch was short in DAI. That is all
    the per-asset statement means with debts; the valued margin, the one
    that says the protocol is solvent, went down."""
    honest = make_snapshot(tmp_path / "honest", SHORT_IN_DAI, assets=DUMMY_ASSETS)
    with pytest.raises(InsolventError, match="DAI short by 500"):
        prover.check_snapshot(honest)
    dummy = [*SHORT_IN_DAI, ("dummy", (3 * ETH // 10, 0, 600 * DAI))]
    dressed = make_snapshot(tmp_path / "dressed", dummy, assets=DUMMY_ASSETS)
    prover.check_snapshot(dressed)              # passes per asset and in value
    assert _valued(dressed) < _valued(honest)
    prove(dressed, tmp_path / "b")
    assert verify_json(tmp_path / "b")[0] == 0


def test_dummy_cannot_inflate_the_valued_margin(tmp_path: Path) -> None:
    """Insolvent in value: a dummy with the largest debt its fake collateral
    allows (health exactly 0) still leaves the epoch refused."""
    # covered per asset (10 ETH, 1000 DAI held and owed), short in value:
    # the ETH reserves count at 80 %
    rows = [("saver", (0, 1_000 * DAI, 0)), ("eth", (10 * ETH, 0, 0))]
    short = make_snapshot(tmp_path / "short", rows, assets=MARGIN_ASSETS)
    with pytest.raises(InsolventError, match="^epoch 1 is insolvent: valued"):
        prover.check_snapshot(short)
    dummy = [*rows, ("dummy", (10 * ETH, 0, 20_000 * DAI))]             # 10 ETH cover 20000
    dressed = make_snapshot(tmp_path / "dressed", dummy, assets=MARGIN_ASSETS)
    with pytest.raises(InsolventError, match="valued"):
        prover.check_snapshot(dressed)
    assert _valued(dressed) < _valued(short)


@settings(max_examples=60)
@given(eth=st.integers(0, 10**6), dai=st.integers(0, 10**6), debt_frac=st.fractions(0, 1))
def test_no_healthy_dummy_raises_the_valued_margin(tmp_path_factory: pytest.TempPathFactory,
                                                   eth: int, dai: int, debt_frac) -> None:
    """For any dummy whose health holds, valued(with) <= valued(without)."""
    d = tmp_path_factory.mktemp("dummy")
    base = make_snapshot(d / "base", SHORT_IN_DAI, assets=DUMMY_ASSETS)
    credit_eth, credit_dai = eth * 10**9, dai * 10**12      # whole proof units
    cover = credit_eth * 2_000 + credit_dai        # DAI base units: ETH at 2500, 80 %
    debt = int(cover * debt_frac) // 10**12 * 10**12
    rows = [*SHORT_IN_DAI, ("dummy", (credit_eth, credit_dai, debt))]
    dressed = make_snapshot(d / "dressed", rows, assets=DUMMY_ASSETS)
    assert _valued(dressed) <= _valued(base)


# --- the health proofs against every changed public input ----------------------------------

def _shard(backend) -> tuple[circ.EpochHeader, ShardJob, ShardResult]:
    assets = tuple(circ.AssetTerms(a.symbol, a.decimals, a.price, a.haircut_bps, a.reserves,
                                   a.proof_decimals, a.borrowable) for a in MARGIN_ASSETS)
    header = circ.EpochHeader(1, 2, 2, assets, None, None, 2, 4, False, b"\x01" * 32)
    values = (2 * 10**9, 0, 2_500 * 10**6, 0, 3_000 * 10**6, 0, 10**9, 0, 0, 0, 7, 3)
    blinds = tuple(range(11, 23))
    job = ShardJob(backend.name, header, header.digest(), 0, values, blinds,
                   tuple(bytes([i]) * 32 for i in range(4)))
    return header, job, prove_shard(job)


def test_every_changed_public_input_breaks_the_health_proof() -> None:
    backend = get_backend()
    header, job, res = _shard(backend)
    rec = 3 * POINT_BYTES + 32
    leaves = [res.leaf_records[i * rec : (i + 1) * rec] for i in range(4)]
    commits = [r[j * 48 : (j + 1) * 48] for r in leaves for j in range(3)]
    pts = [[backend.decode(r[j * 48 : (j + 1) * 48]) for j in range(3)] for r in leaves]
    coef = circ.valued_coefficients(header.assets, header.depth)
    health = backend.encode_many(circ.health_commitments(backend, header, coef, pts))
    debt_len, _ = layout.margin_proof_sizes(4, 1)
    proof = rangeproof.RangeProof.from_bytes(res.margin_proof[debt_len:])
    good = circ.health_statement(header, job.digest, 0, health)
    rangeproof.verify(good, proof, backend=backend)
    debt_pf = rangeproof.RangeProof.from_bytes(res.margin_proof[:debt_len])
    rangeproof.verify(circ.debt_statement(header, job.digest, 0, commits), debt_pf,
                      backend=backend)

    def header_with(**kw) -> circ.EpochHeader:
        fields = dict(header.__dict__)
        fields.update(kw)
        return circ.EpochHeader(**fields)

    other_asset = (header.assets[0], circ.AssetTerms("DAI", 18, 101, 10_000, 10**21, 6, True))
    not_lent = (header.assets[0], circ.AssetTerms("DAI", 18, 100, 10_000, 10**21, 6, False))
    changed = {
        "epoch": circ.health_statement(header, header_with(epoch=2).digest(), 0, health),
        "reserves": circ.health_statement(header, header_with(assets=(
            header.assets[0], circ.AssetTerms("DAI", 18, 100, 10_000, 10**21 + 1, 6, True)
        )).digest(), 0, health),
        "borrowable flag": circ.health_statement(
            header, header_with(assets=not_lent).digest(), 0, health),
        "price (other weights)": circ.health_statement(
            header, header_with(assets=other_asset).digest(), 0,
            backend.encode_many(circ.health_commitments(
                backend, header_with(assets=other_asset),
                circ.valued_coefficients(other_asset, 2), pts))),
        "shard": circ.health_statement(header, job.digest, 1, health),
        "statement id": rangeproof.RangeStatement(circ.DEBT_RANGE_ID, tuple(health), 128,
                                                  good.context),
        "bits": rangeproof.RangeStatement(circ.MARGIN_HEALTH_ID, tuple(health), 64,
                                          good.context),
        "a commitment": circ.health_statement(header, job.digest, 0,
                                              [health[1], health[0], *health[2:]]),
    }
    for what, statement in changed.items():
        with pytest.raises(VerificationError):
            rangeproof.verify(statement, proof, backend=backend)
        assert statement != good, what


def test_shard_result_round_trip_with_margin_proofs() -> None:
    backend = get_backend()
    header, _, res = _shard(backend)
    data = res.to_bytes()
    sizes = layout.margin_proof_sizes(4, 1)
    back = ShardResult.from_bytes(data, shard=0, node_size=3 * 48 + 32, leaves=4,
                                  proof_size=layout.leaf_proof_size(4, 2),
                                  margin_size=sum(sizes))
    assert back == res
    with pytest.raises(ValueError):
        ShardResult.from_bytes(data, shard=0, node_size=3 * 48 + 32, leaves=4,
                               proof_size=layout.leaf_proof_size(4, 2))


def test_margin_vector_index_is_json(tmp_path: Path) -> None:
    # the snapshot header the tests use round-trips as version 2
    snap = margin_snapshot(tmp_path / "s")
    assert json.loads((snap / "header.json").read_text())["version"] == 2


# --- the holder ----------------------------------------------------------------------------

def test_holder_sees_debts_and_margin_health(lending: tuple[Path, Path]) -> None:
    d, bundle = lending
    db = d / "bundle.inclusion.sqlite"
    pf = d / "borrower.json"
    assert run("inclusion", "export", "--db", db, "--account", "borrower",
               "--out", pf).exit_code == 0
    doc = json.loads(pf.read_text())
    assert [a["symbol"] for a in doc["amounts"]] == ["ETH", "DAI", "DAI.debt"]
    assert doc["amounts"][2]["proof_units"] == 2_500 * 10**6
    res = run("inclusion", "verify", pf, "--account", "borrower", "--bundle", bundle,
              "--expect", "ETH=2.0", "--expect", "DAI.debt=2500000000000000000000", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert {s: a["proof_units"] for s, a in rep["amounts"].items()} == {"ETH": 2 * 10**9, "DAI": 0}
    assert rep["debts"] == {"DAI": {"proof_units": 2_500 * 10**6, "proof_decimals": 6,
                                    "decimals": 18, "unit": "10^-6 DAI",
                                    "tokens": "2500.000000"}}
    assert rep["margin_health"]["proof"] == "proven" and rep["margin_health"]["own_margin_holds"]
    assert {"debt-range", "margin-health"} <= set(rep["checked"]) and rep["not_checked"] == []
    res = run("inclusion", "verify", pf, "--account", "borrower", "--bundle", bundle,
              "--expect", "DAI.debt=2500.0")
    assert res.exit_code == 0, res.output
    assert ("\n  you owe DAI 2500.000000 (2500000000 units of 10^-6 DAI, rounded down; the token "
            "has 18 decimals)\n") in res.output, res.output
    assert "  as you expected: DAI.debt 2500.000000 (--expect DAI.debt=2500.0)" in res.output
    assert "every account's margin health is proven and was checked here" in res.output
    assert f"  - {words.passed('margin-health')}\n" in res.output
    assert f"  - {words.passed('debt-range')}\n" in res.output
    res = run("inclusion", "verify", pf, "--account", "borrower", "--bundle-hash",
              rep["bundle_hash"])
    assert res.exit_code == 0 and "margin-health proofs of every account are NOT checked" in (
        res.output)
    assert words.unchecked("margin-health") in res.output.split("\nNOT checked: ")[1]
    code, out = verify_json_inclusion(pf, "borrower", rep["bundle_hash"])
    assert code == 0 and out["not_checked"] == ["range", "debt-range", "margin-health",
                                                "solvency"], out
    assert "margin-health" not in out["checked"]
    # an overstated debt is caught by the holder's own expectation (debts round down)
    res = run("inclusion", "verify", pf, "--account", "borrower", "--bundle", bundle,
              "--expect", "DAI.debt=2499.999999", "--json")
    assert res.exit_code == 1 and json.loads(res.output)["check"] == "inclusion-amount"
    assert "DAI.debt: proof shows a debt of 2500.000000 DAI" in json.loads(res.output)["detail"]


def verify_json_inclusion(pf: Path, account: str, bundle_hash: str) -> tuple[int, dict]:
    res = run("inclusion", "verify", pf, "--account", account, "--bundle-hash", bundle_hash,
              "--json")
    return res.exit_code, json.loads(res.output)


def test_holder_who_owes_nothing_sees_no_debt_lines(lending: tuple[Path, Path]) -> None:
    d, bundle = lending
    pf = d / "saver.json"
    assert run("inclusion", "export", "--db", d / "bundle.inclusion.sqlite", "--account",
               "saver", "--out", pf).exit_code == 0
    res = run("inclusion", "verify", pf, "--account", "saver", "--bundle", bundle,
              "--expect", "DAI=3000.0", "--expect", "DAI.debt=0")
    assert res.exit_code == 0, res.output
    assert "you owe" not in res.output and "margin health" not in res.output


def test_reveal_totals_is_refused_with_debts(tmp_path: Path) -> None:
    res = run("prove", margin_snapshot(tmp_path / "s"), "--out", tmp_path / "b",
              "--reveal-totals")
    assert res.exit_code == 2 and "reveals no totals" in res.output
    assert not (tmp_path / "b").exists()


def test_work_area_keeps_margin_proofs(tmp_path: Path) -> None:
    """A resumed run reads a kept shard back with its margin proofs; a shard
    kept without them (or with other sizes) is proven again."""
    from zksolv.prover.workarea import WorkArea

    backend = get_backend()
    _, _, res = _shard(backend)
    work = WorkArea(tmp_path / "w")
    work.create()
    work.save_shard(res)
    sizes = dict(node_size=3 * 48 + 32, leaves=4, proof_size=layout.leaf_proof_size(4, 2))
    assert work.load_shard(0, **sizes, margin_size=sum(layout.margin_proof_sizes(4, 1))) == res
    assert work.load_shard(0, **sizes) is None


def test_weights_out_of_bounds_fail_before_the_shards(lending: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """A re-signed manifest whose prices make the weights wrap mod r is
    refused as solvency-bounds, never a traceback in a shard worker."""
    _, bundle = lending
    work = copy_bundle(bundle, tmp_path / "b")
    m = read_manifest(work)
    m["assets"][0]["price"] = 2**64 - 1
    m["assets"][0]["decimals"] = m["assets"][0]["proof_decimals"] = 0
    m["assets"][1]["decimals"] = m["assets"][1]["proof_decimals"] = 30
    m["assets"][1]["reserves"] = 0
    m["assets"][0]["reserves"] = 1         # valued reserves of 2^177 > 2^128
    write_manifest(work, m)
    assert _tag(work) == "solvency-bounds"


def test_export_all_carries_debts(lending: tuple[Path, Path], tmp_path: Path) -> None:
    d, bundle = lending
    out = tmp_path / "all"
    res = run("inclusion", "export", "--db", d / "bundle.inclusion.sqlite", "--all",
              "--out", out)
    assert res.exit_code == 0, res.output
    docs = {json.loads(f.read_text())["account_id"]: json.loads(f.read_text())
            for f in out.rglob("*.json")}
    assert sorted(docs) == sorted(acc for acc, _ in MARGIN_ROWS)
    for acc, values in MARGIN_ROWS:
        cols = [(a["symbol"], a["proof_units"]) for a in docs[acc]["amounts"]]
        assert [c for c, _ in cols] == ["ETH", "DAI", "DAI.debt"]
        assert cols[2][1] == values[2] // 10**12          # the debt, rounded down


# --- workers are not trusted: every column and the margin proofs' shape ---------------------

@pytest.mark.parametrize("method", ["combination", "direct"])
def test_shard_check_covers_debts_and_margin_proofs(method: str) -> None:
    """The client's check of a worker's result opens all m columns of every
    leaf (a changed debt commitment is named by its column) and parses the
    margin proofs (missing, cut short or not canonical: refused)."""
    import dataclasses

    from zksolv.prover.shardcheck import ShardMismatch, check_result

    backend = get_backend()
    _, job, res = _shard(backend)
    check_result(backend, job, res, method=method)
    rec = 3 * POINT_BYTES + 32
    # leaf 1's DAI.debt commitment replaced by leaf 0's (a valid point)
    recs = bytearray(res.leaf_records)
    recs[rec + 2 * 48 : rec + 3 * 48] = res.leaf_records[2 * 48 : 3 * 48]
    with pytest.raises(ShardMismatch, match="leaf 1 column DAI.debt|worker-opening"):
        check_result(backend, job, dataclasses.replace(res, leaf_records=bytes(recs)),
                     method=method)
    debt_len, health_len = layout.margin_proof_sizes(4, 1)
    bad_scalar = b"\xff" * 32
    for margin, why in ((b"", "margin proofs of the wrong size"),
                        (res.margin_proof[:-1], "margin proofs of the wrong size"),
                        (res.margin_proof[: debt_len - 32] + bad_scalar
                         + res.margin_proof[debt_len:], "debt range proof does not parse"),
                        (res.margin_proof[:-32] + bad_scalar,
                         "margin-health proof does not parse")):
        with pytest.raises(ShardMismatch, match=why):
            check_result(backend, job, dataclasses.replace(res, margin_proof=margin),
                         method=method)
    assert len(res.margin_proof) == debt_len + health_len


def test_resume_discards_a_kept_shard_whose_debts_differ(tmp_path: Path) -> None:
    """check_kept_shards (resume) checks a kept margin shard's debt columns
    against the leaves database's openings: another run's file is discarded."""
    from zksolv.prover.shardcheck import check_kept_shards

    backend = get_backend()
    header, job, res = _shard(backend)
    other = ShardJob(job.backend, header, job.digest, 0,
                     (*job.values[:-1], job.values[-1] + 1), job.blindings, job.hashes)
    gone: list[int] = []
    kept = check_kept_shards(backend, [other], lambda s: (res, b"d" * 32), gone.append)
    assert gone == [0] and kept.digests == {}
    kept = check_kept_shards(backend, [job], lambda s: (res, b"d" * 32), gone.append)
    assert kept.digests == {0: b"d" * 32}


# --- zksolv serve serves margin.bin of a version 5 bundle -----------------------------------

def test_serve_serves_margin_bin_of_a_version_5_bundle(lending: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    """margin.bin is one of a bundle's data files: served when the manifest
    lists it (version 5), 404 from a folder whose manifest does not."""
    import os
    import shutil
    import urllib.error
    import urllib.request

    from zksolv.site import serving

    _, bundle = lending
    root = tmp_path / "pub"
    for name in ("v5", "v4"):
        dst = root / name
        dst.mkdir(parents=True)
        for f in ("manifest.json", "manifest.sig", *layout.DATA_FILES_MARGIN):
            shutil.copyfile(bundle / f, dst / f)
            os.chmod(dst / f, 0o644)
        os.chmod(dst, 0o755)
    os.chmod(root, 0o755)
    m = json.loads((bundle / "manifest.json").read_bytes())
    del m["files"]["margin.bin"]
    (root / "v4" / "manifest.json").write_text(json.dumps(m))

    def get(url: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=20) as r:  # noqa: S310 - local server
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""

    with serving(root) as url:
        assert get(url + "v5/margin.bin") == (200, (bundle / "margin.bin").read_bytes())
        assert get(url + "v5/range.bin")[0] == 200
        assert get(url + "v4/margin.bin")[0] == 404
        assert get(url + "v4/leaves.bin")[0] == 200
