"""The verifier against tampered bundles: each attack must fail with its
specific check tag, exit code 1, and never a traceback."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from test_epoch_support import (
    ASSETS1,
    OPERATOR_HEX,
    copy_bundle,
    make_snapshot,
    prove,
    read_manifest,
    rows_for,
    run,
    verify_json,
    write_manifest,
)

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.core import rangeproof
from zksolv.core.field import R
from zksolv.core.generators import generators
from zksolv.core.group import POINT_BYTES, get_backend
from zksolv.errors import VerificationError
from zksolv.verifier import verify_bundle
from zksolv.verifier.bundle import recompute_root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list]:
    d = tmp_path_factory.mktemp("adv")
    rows = rows_for(6, 1)
    prove(make_snapshot(d / "snap", rows, epoch=3, assets=ASSETS1), d / "bundle")
    return d, d / "bundle", rows


def _tag(bundle: Path) -> str:
    with pytest.raises(VerificationError) as ei:
        verify_bundle(bundle)
    return ei.value.check


def test_flipped_byte_in_every_file(tiny: tuple[Path, Path, list], tmp_path: Path) -> None:
    """Every byte of every file (XOR 0x01, the subtlest flip for JSON digits)."""
    _, bundle, _ = tiny
    work = copy_bundle(bundle, tmp_path / "b")
    seen: set[str] = set()
    for name in (layout.MANIFEST_FILE, layout.SIGNATURE_FILE, *layout.DATA_FILES):
        path = work / name
        original = path.read_bytes()
        for pos in range(len(original)):
            bad = bytearray(original)
            bad[pos] ^= 0x01
            path.write_bytes(bytes(bad))
            code, out = verify_json(work)
            assert code == 1 and out["valid"] is False, (name, pos, out)
            if name == layout.SIGNATURE_FILE:
                assert out["check"] == "signature", (pos, out)
            seen.add(out["check"])
        path.write_bytes(original)
    # the typed decoding catches most flips in the manifest before the canonical
    # check (test_non_canonical_manifest covers that one)
    assert {"manifest-hash", "manifest-format", "signature"} <= seen
    code, _ = verify_json(work)
    assert code == 0


def test_flipped_byte_with_rehashed_manifest(tiny: tuple[Path, Path, list],
                                             tmp_path: Path) -> None:
    """An attacker who also fixes the manifest hashes is caught by the proofs."""
    _, bundle, _ = tiny
    work = copy_bundle(bundle, tmp_path / "b")
    manifest = read_manifest(work)
    rng = random.Random(7)
    expect = {layout.LEAVES_FILE: {"leaf-encoding", "tree-root"},
              layout.RANGE_FILE: {"leaf-range"},
              layout.SOLVENCY_FILE: {"solvency-asset", "solvency-valued"}}
    for name in layout.DATA_FILES:
        path = work / name
        original = path.read_bytes()
        for pos in rng.sample(range(len(original)), 20):
            bad = bytearray(original)
            bad[pos] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(bad))
            write_manifest(work, manifest)
            code, out = verify_json(work)
            assert code == 1, (name, pos)
            assert out["check"] in expect[name], (name, pos, out)
        path.write_bytes(original)
    write_manifest(work, manifest)
    assert verify_json(work)[0] == 0


def test_truncated_files(tiny: tuple[Path, Path, list], tmp_path: Path) -> None:
    _, bundle, _ = tiny
    for name in (layout.MANIFEST_FILE, *layout.DATA_FILES):
        for cut in (0, 1, 47):
            work = copy_bundle(bundle, tmp_path / f"{name}-{cut}")
            data = (work / name).read_bytes()
            (work / name).write_bytes(data[: len(data) - cut - 1] if cut else b"")
            code, out = verify_json(work)
            assert code == 1, (name, cut, out)
            if name != layout.MANIFEST_FILE:
                assert out["check"] == "manifest-hash"
                write_manifest(work, read_manifest(work))
                code, out = verify_json(work)
                assert (code, out["check"]) == (1, "bundle-shape"), (name, cut)
    work = copy_bundle(bundle, tmp_path / "nomanifest")
    (work / layout.MANIFEST_FILE).unlink()
    code, out = verify_json(work)
    assert (code, out["check"]) == (1, "manifest-missing")
    res = run("verify", tmp_path / "does-not-exist")
    assert res.exit_code == 2


def _leaves(bundle: Path, k: int) -> tuple[list, list, list]:
    backend = get_backend("arkworks")
    rec = layout.leaf_record_size(k)
    data = (bundle / layout.LEAVES_FILE).read_bytes()
    enc = [data[i : i + k * POINT_BYTES] for i in range(0, len(data), rec)]
    hs = [data[i + k * POINT_BYTES : i + rec] for i in range(0, len(data), rec)]
    pts = [[backend.decode(e[j * 48 : (j + 1) * 48]) for j in range(k)] for e in enc]
    return enc, hs, pts


def test_leaf_plus_one_with_tree_recomputed(tiny: tuple[Path, Path, list],
                                            tmp_path: Path) -> None:
    """Replace one leaf commitment by C + g (value + 1), recompute every sum and
    hash up to the root and publish that root: the leaf range proof fails."""
    _, bundle, _ = tiny
    work = copy_bundle(bundle, tmp_path / "b")
    backend = get_backend("arkworks")
    g = generators(backend).g
    enc, hs, pts = _leaves(work, 1)
    pts[5] = [backend.add(pts[5][0], g)]
    enc[5] = backend.encode(pts[5][0])
    (work / layout.LEAVES_FILE).write_bytes(b"".join(e + h for e, h in zip(enc, hs, strict=True)))
    roots, root_hash = recompute_root(backend, 1, pts, enc, hs)
    m = read_manifest(work)
    m["tree"]["root_hash"] = root_hash.hex()
    m["tree"]["root_commitments"] = [backend.encode(roots[0]).hex()]
    write_manifest(work, m)
    assert _tag(work) == "leaf-range"


def test_maxwell_todd_root_not_sum(tiny: tuple[Path, Path, list], tmp_path: Path) -> None:
    """Publish a root commitment smaller than the sum of its children (hiding
    1000 units of liabilities), with solvency proofs honestly re-proven for
    that smaller root: the recomputed root catches it."""
    d, bundle, rows = tiny
    work = copy_bundle(bundle, tmp_path / "b")
    backend = get_backend("arkworks")
    gens = generators(backend)
    import sqlite3

    con = sqlite3.connect(d / "bundle.inclusion.sqlite")
    gamma = sum(int.from_bytes(b, "little") for (b,) in con.execute("SELECT blindings FROM leaves"))
    con.close()
    total = sum(v[0] for _, v in rows) - 1000
    m = read_manifest(work)
    true_root = backend.decode(bytes.fromhex(m["tree"]["root_commitments"][0]))
    fake_root = backend.add(true_root, backend.mul(gens.g, -1000))
    assert backend.eq(fake_root, backend.msm([gens.g, gens.h], [total, gamma]))
    m["tree"]["root_commitments"] = [backend.encode(fake_root).hex()]
    header = circ.EpochHeader(3, 1_700_000_003, 2, (circ.AssetTerms("USD", 6, 100, 10_000,
                              10**12),), None, None, 3, 8, False, bytes.fromhex(OPERATOR_HEX))
    digest = header.digest()
    root_hash = bytes.fromhex(m["tree"]["root_hash"])
    margin = circ.asset_margins(backend, gens.g, header.assets, [fake_root])
    st = circ.asset_statement(digest, root_hash, [backend.encode(margin[0])])
    pf1 = rangeproof.prove(st, [10**12 - total], [-gamma % R], backend=backend)
    coef = circ.valued_coefficients(header.assets, 3)
    vm = circ.valued_margin(backend, gens.g, header.assets, coef, [fake_root])
    vst = circ.valued_statement(digest, root_hash, backend.encode(vm))
    value = coef.reserve[0] * 10**12 - coef.liability[0] * total
    pf2 = rangeproof.prove(vst, [value], [-coef.liability[0] * gamma % R], backend=backend)
    # the forged solvency proofs are valid for the forged root...
    rangeproof.verify(st, pf1, backend=backend)
    rangeproof.verify(vst, pf2, backend=backend)
    (work / layout.SOLVENCY_FILE).write_bytes(pf1.to_bytes() + pf2.to_bytes())
    write_manifest(work, m)
    # ...but the root is not the sum of its children
    assert _tag(work) == "tree-root"


def test_changed_public_inputs_break_proofs(tiny: tuple[Path, Path, list],
                                            tmp_path: Path) -> None:
    """Epoch k presented as k+1, other reserves, a forged previous hash: the
    transcripts absorb the header, so the proofs no longer verify."""
    _, bundle, _ = tiny
    edits = {
        "epoch": lambda m: m.__setitem__("epoch", m["epoch"] + 1),
        "reserves": lambda m: m["assets"][0].__setitem__("reserves", 10**12 + 1),
        "prev": lambda m: m.update(prev_bundle_hash="ab" * 32, prev_epoch=m["epoch"] - 1),
        "timestamp": lambda m: m.__setitem__("timestamp", 5),
        "price": lambda m: m["assets"][0].__setitem__("price", 101),
        "haircut": lambda m: m["assets"][0].__setitem__("haircut_bps", 9_999),
        "decimals": lambda m: m["assets"][0].__setitem__("decimals", 7),
        "symbol": lambda m: m["assets"][0].__setitem__("symbol", "USDT"),
        "price_decimals": lambda m: m.__setitem__("price_decimals", 3),
    }
    for name, edit in edits.items():
        work = copy_bundle(bundle, tmp_path / name)
        m = read_manifest(work)
        edit(m)
        write_manifest(work, m)
        assert _tag(work) in {"leaf-range", "solvency-asset"}, name
    code, out = verify_json(bundle, "--epoch", "4")
    assert (code, out["check"]) == (1, "epoch-mismatch")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("chain")
    out = []
    for e in (1, 2, 3):
        snap = make_snapshot(d / f"s{e}", rows_for(3 + e, 1), epoch=e, assets=ASSETS1)
        extra = ("--prev", str(out[-1])) if out else ()
        prove(snap, d / f"b{e}", *extra)
        out.append(d / f"b{e}")
    return out


def test_chain_valid(chain: list[Path]) -> None:
    b1, b2, b3 = chain
    res = run("verify", b3, "--chain", b1, "--chain", b2, "--json")
    assert res.exit_code == 0, res.output


def test_chain_missing_or_reordered(chain: list[Path]) -> None:
    b1, b2, b3 = chain
    # a bundle left out: epochs still increase, but b3 links to b2, not b1
    code, out = verify_json(b3, "--chain", b1)
    assert (code, out["check"]) == (1, "chain-link")
    code, out = verify_json(b3, "--chain", b1, "--no-gaps")
    assert (code, out["check"]) == (1, "chain-epoch")
    code, out = verify_json(b3, "--chain", b2, "--chain", b1)
    assert (code, out["check"]) == (1, "chain-epoch")
    code, out = verify_json(b2, "--chain", b1, "--chain", b3)
    assert (code, out["check"]) == (1, "chain-link")
    code, out = verify_json(b2, "--chain", b1, "--chain", b3, "--no-gaps")
    assert (code, out["check"]) == (1, "chain-epoch")
    code, out = verify_json(b3, "--chain", b1, "--chain", b2, "--epoch", "4")
    assert (code, out["check"]) == (1, "epoch-mismatch")


def test_chain_link_to_other_history(chain: list[Path], tmp_path: Path) -> None:
    """Epoch 2 re-proven on top of a different epoch 1: consecutive epochs,
    wrong link."""
    b1, b2, _ = chain
    other1 = tmp_path / "other1"
    prove(make_snapshot(tmp_path / "s1", rows_for(5, 1), epoch=1, assets=ASSETS1), other1)
    code, out = verify_json(b2, "--chain", other1)
    assert (code, out["check"]) == (1, "chain-link")


def test_prev_epoch_must_be_consecutive(chain: list[Path], tmp_path: Path) -> None:
    b1, _, _ = chain
    snap = make_snapshot(tmp_path / "s", rows_for(3, 1), epoch=5, assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--prev", b1, "--jobs", "1", "--quiet")
    assert res.exit_code == 2 and "epoch 1" in res.output
    assert not (tmp_path / "b").exists()
