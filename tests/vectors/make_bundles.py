"""Regenerate the published bundle test vectors under tests/vectors/bundles/.

    python tests/vectors/make_bundles.py            # every vector
    python tests/vectors/make_bundles.py --margin   # only the margin-* vectors

Writes a small valid chain (epochs 1 and 2, four accounts, two assets, one
with proof_decimals) signed by the test operator key, an epoch 4 linked to
epoch 2 with a declared gap (epoch 3 never proven), and from them one bundle
per way of being invalid, each changed in one place and then re-hashed and
re-signed where needed, so that exactly the named check fails first.
``index.json`` lists every vector: its directory (or chain of directories),
the pinned operator key if any, whether gaps are refused (``no_gaps``, as
``zksolv verify --no-gaps``), and the expected outcome: ``"valid"`` with the
gaps the headers declare (``gaps``), or the failing check's tag
(docs/epoch.md, *Verifier checks*). An independent verifier should reach the
same outcome on each; ``tests/test_vectors.py`` holds ours to it. Proving
uses fresh randomness, so regenerating gives other bytes with the same
outcomes; the committed files are the published ones.

The ``margin-*`` vectors are bundles of version 5 (a borrowable asset: ETH
collateral, DAI lent): a valid one, and invalid ones for the margin checks.
``--margin`` rewrites only those, keeping every other published vector's
bytes.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from margin_support import lying_about_health, margin_snapshot  # noqa: E402
from test_epoch_support import (  # noqa: E402
    OPERATOR_HEX,
    copy_bundle,
    make_snapshot,
    prove,
    read_manifest,
    sign_manifest,
    write_manifest,
)

from zksolv.circuits import bundle as layout  # noqa: E402
from zksolv.prover import epoch as prover  # noqa: E402
from zksolv.snapshot import Asset  # noqa: E402

OUT = HERE / "bundles"
ASSETS = (Asset("USDC", 6, 100, 10_000, 10**10),
          Asset("ETH", 18, 250_000, 9_000, 40 * 10**18, proof_decimals=9))
ROWS = [("alice", (1_250_000_000, 2 * 10**18 + 1)), ("bob", (0, 10**18)),
        ("carol", (3_000_000, 0)), ("dave", (7, 5))]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


Add = Callable[..., None]


def _adder(vectors: list[dict[str, object]]) -> Add:
    def add(name: str, expect: str, what: str, *, chain: list[str] | None = None,
            operator: str | None = None, no_gaps: bool = False,
            gaps: Sequence[tuple[int, int]] = ()) -> None:
        vectors.append({"name": name, "bundles": chain or [name], "operator": operator,
                        "no_gaps": no_gaps, "expect": expect,
                        "gaps": [{"first": a, "last": b} for a, b in gaps]
                        if expect == "valid" else None,
                        "what": what})
    return add


def margin_vectors(add: Add) -> None:
    """The version 5 vectors (margin-*), written into OUT."""
    for old in OUT.glob("margin-*"):
        shutil.rmtree(old)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        prove(margin_snapshot(t / "m1", epoch=5), OUT / "margin-valid")
        underwater = [("borrower", (2 * 10**18, 0, 2_500 * 10**18)),
                      ("saver", (0, 3_000 * 10**18, 0)),
                      ("underwater", (10**18, 0, 2_100 * 10**18))]
        with lying_about_health():
            prove(margin_snapshot(t / "m2", underwater, epoch=5), OUT / "margin-health")
    for p in OUT.glob("*.inclusion.sqlite"):
        p.unlink()
    add("margin-valid", "valid", "a valid version 5 bundle: ETH collateral, DAI borrowable "
        "(columns ETH, DAI, DAI.debt), a borrower, savers and an account owing nothing",
        operator=OPERATOR_HEX)
    add("margin-health", "margin-health", "an account owing 2100 DAI against 1 ETH (covers "
        "2000) proven anyway by a prover that skips its own checks: every other check passes, "
        "the shard's margin-health proof does not")
    base = OUT / "margin-valid"
    m3 = layout.leaf_record_size(3)

    b = copy_bundle(base, OUT / "margin-debt-flipped")
    data = bytearray((b / layout.LEAVES_FILE).read_bytes())
    data[96:144], data[48:96] = data[48:96], data[96:144]
    (b / layout.LEAVES_FILE).write_bytes(bytes(data))
    _reroot(b, 3)
    add("margin-debt-flipped", "leaf-range", "leaf 0's DAI and DAI.debt commitments swapped "
        "(a debt relabelled as a credit), the root rebuilt from the leaves and re-signed: the "
        "range proofs are bound to each column's commitments")

    b = copy_bundle(base, OUT / "margin-debt-range")
    debt_len, _ = layout.margin_proof_sizes(4, 1)
    _flip(b / layout.MARGIN_FILE, debt_len - 40)
    write_manifest(b, read_manifest(b))
    add("margin-debt-range", "debt-range", "a byte of the shard's debt range proof changed, "
        "re-hashed")

    b = copy_bundle(base, OUT / "margin-health-flipped")
    _flip(b / layout.MARGIN_FILE, (b / layout.MARGIN_FILE).stat().st_size - 40)
    write_manifest(b, read_manifest(b))
    add("margin-health-flipped", "margin-health", "a byte of the shard's margin-health proof "
        "changed, re-hashed")

    b = copy_bundle(base, OUT / "margin-debt-root")
    m = read_manifest(b)
    m["tree"]["root_commitments"][1], m["tree"]["root_commitments"][2] = (
        m["tree"]["root_commitments"][2], m["tree"]["root_commitments"][1])
    write_manifest(b, m)
    add("margin-debt-root", "tree-root", "the root's DAI and DAI.debt commitments swapped in "
        "the manifest, re-signed")

    b = copy_bundle(base, OUT / "margin-not-borrowable")
    m = read_manifest(b)
    del m["assets"][1]["borrowable"]
    write_manifest(b, m)
    add("margin-not-borrowable", "manifest-format", "DAI no longer declared borrowable in a "
        "version 5 manifest, re-signed")

    b = copy_bundle(base, OUT / "margin-reserves-raised")
    m = read_manifest(b)
    m["assets"][1]["reserves"] += 10**12     # one more proof unit of DAI
    write_manifest(b, m)
    add("margin-reserves-raised", "leaf-range", "DAI reserves raised after proving, re-signed: "
        "the header digest changes, so the first proof checked fails")
    assert m3 == 3 * 48 + 32


def _reroot(bundle: Path, columns: int) -> None:
    """Rebuild the manifest's root from leaves.bin as they now are, re-signed."""
    from zksolv.circuits import epoch as circ
    from zksolv.core.group import get_backend

    backend = get_backend()
    rec = layout.leaf_record_size(columns)
    data = (bundle / layout.LEAVES_FILE).read_bytes()
    leaves = [data[i : i + rec] for i in range(0, len(data), rec)]
    cpart = columns * 48
    pts = [[backend.decode(r[j * 48 : (j + 1) * 48]) for j in range(columns)] for r in leaves]
    root = circ.tree_root(backend, columns, (pts, [r[:cpart] for r in leaves],
                                             [r[cpart:] for r in leaves]))
    m = read_manifest(bundle)
    m["tree"]["root_hash"] = root[2][0].hex()
    m["tree"]["root_commitments"] = [backend.encode(p).hex() for p in root[0][0]]
    write_manifest(bundle, m)


def _write_index(vectors: list[dict[str, object]]) -> None:
    (OUT / "index.json").write_text(json.dumps(
        {"operator": OPERATOR_HEX, "format": "zksolv-bundle", "version": layout.BUNDLE_VERSION,
         "versions": [layout.BUNDLE_VERSION, layout.BUNDLE_VERSION_MARGIN],
         "vectors": vectors}, indent=1) + "\n")


def main_margin() -> None:
    """Only the margin-* vectors: every other entry of index.json is kept."""
    index = json.loads((OUT / "index.json").read_text())
    vectors = [v for v in index["vectors"] if not str(v["name"]).startswith("margin-")]
    margin_vectors(_adder(vectors))
    _write_index(vectors)


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    vectors: list[dict[str, object]] = []
    add = _adder(vectors)

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        prove(make_snapshot(t / "s1", ROWS, epoch=1, assets=ASSETS), OUT / "valid-epoch1")
        prove(make_snapshot(t / "s2", ROWS, epoch=2, assets=ASSETS), OUT / "valid-epoch2",
              "--prev", str(OUT / "valid-epoch1"))
        prove(make_snapshot(t / "s2b", ROWS, epoch=2, assets=ASSETS), OUT / "unlinked-epoch2")
        prove(make_snapshot(t / "s3", ROWS, epoch=3, assets=ASSETS), OUT / "valid-totals",
              "--reveal-totals")
        prove(make_snapshot(t / "s4", ROWS, epoch=4, assets=ASSETS), OUT / "valid-gap-epoch4",
              "--prev", str(OUT / "valid-epoch2"), "--allow-gap")
        # A header that names epoch 2's bundle by hash but claims to link to
        # epoch 1: only a prover that lies writes it (signed, proofs valid).
        real = prover.check_prev_bundle

        def lying(*args: object, **kwargs: object) -> prover.PrevBundle:
            prev = real(*args, **kwargs)  # type: ignore[arg-type]
            return prover.PrevBundle(prev.bundle_hash, prev.epoch - 1)

        prover.check_prev_bundle = lying  # type: ignore[assignment]
        try:
            prove(make_snapshot(t / "s3m", ROWS, epoch=3, assets=ASSETS),
                  OUT / "misdeclared-epoch3", "--prev", str(OUT / "valid-epoch2"),
                  "--allow-gap")
        finally:
            prover.check_prev_bundle = real
    for p in OUT.glob("*.inclusion.sqlite"):
        p.unlink()
    base = OUT / "valid-epoch1"
    add("valid-epoch1", "valid", "a valid bundle, epoch 1", operator=OPERATOR_HEX)
    add("valid-epoch2", "valid", "a valid bundle, epoch 2, linked to epoch 1")
    add("valid-chain", "valid", "epochs 1 and 2 as a chain",
        chain=["valid-epoch1", "valid-epoch2"])
    add("valid-totals", "valid", "a valid bundle that reveals its totals")
    add("valid-gap-epoch4", "valid", "a valid bundle, epoch 4, linked to epoch 2: its header "
        "declares epoch 3 not proven solvent (a gap, listed)", gaps=[(3, 3)])
    add("valid-gap-chain", "valid", "epochs 1, 2 and 4 as a chain, epoch 3 listed as a gap",
        chain=["valid-epoch1", "valid-epoch2", "valid-gap-epoch4"], gaps=[(3, 3)])

    def variant(name: str) -> Path:
        return copy_bundle(base, OUT / name)

    b = variant("manifest-missing")
    (b / layout.MANIFEST_FILE).unlink()
    add("manifest-missing", "manifest-missing", "manifest.json deleted")

    b = variant("manifest-format")
    m = read_manifest(b)
    (b / layout.MANIFEST_FILE).write_text(
        layout.canonical_json(m).decode().replace(f'"version": {layout.BUNDLE_VERSION}',
                                                  f'"version": {layout.BUNDLE_VERSION}.0'))
    sign_manifest(b)
    add("manifest-format", "manifest-format",
        f"version written {layout.BUNDLE_VERSION}.0 (a float), re-signed")

    b = variant("manifest-canonical")
    (b / layout.MANIFEST_FILE).write_text(json.dumps(read_manifest(b), indent=1))
    sign_manifest(b)
    add("manifest-canonical", "manifest-canonical", "same manifest, other indentation, re-signed")

    b = variant("suite-mismatch")
    m = read_manifest(b)
    m["suite"]["hash"] = "blake3"
    write_manifest(b, m)
    add("suite-mismatch", "suite-mismatch", "suite.hash changed, re-signed")

    b = variant("signature")
    _flip(b / layout.SIGNATURE_FILE, 0)
    add("signature", "signature", "one bit of manifest.sig flipped")

    b = variant("operator-mismatch")
    add("operator-mismatch", "operator-mismatch", "valid, but another operator key is pinned",
        operator="00" * 32)

    b = variant("manifest-hash")
    _flip(b / layout.RANGE_FILE, 100)
    add("manifest-hash", "manifest-hash", "a byte of range.bin flipped, manifest unchanged")

    b = variant("bundle-shape")
    whole = (b / layout.LEAVES_FILE).read_bytes()
    (b / layout.LEAVES_FILE).write_bytes(whole[: -layout.leaf_record_size(2)])
    write_manifest(b, read_manifest(b))
    add("bundle-shape", "bundle-shape", "the last leaf record cut from leaves.bin, re-hashed")

    b = variant("leaf-encoding")
    data = bytearray((b / layout.LEAVES_FILE).read_bytes())
    data[0:48] = b"\xff" * 48
    (b / layout.LEAVES_FILE).write_bytes(bytes(data))
    write_manifest(b, read_manifest(b))
    add("leaf-encoding", "leaf-encoding", "leaf 0's first commitment is not a point, re-hashed")

    b = variant("tree-root")
    rec = layout.leaf_record_size(2)
    data = bytearray((b / layout.LEAVES_FILE).read_bytes())
    data[0:rec], data[rec : 2 * rec] = data[rec : 2 * rec], data[0:rec]
    (b / layout.LEAVES_FILE).write_bytes(bytes(data))
    write_manifest(b, read_manifest(b))
    add("tree-root", "tree-root", "leaves 0 and 1 swapped, re-hashed")

    b = variant("leaf-range")
    _flip(b / layout.RANGE_FILE, 5)  # inside the proof's point A: still a point? see test
    write_manifest(b, read_manifest(b))
    add("leaf-range", "leaf-range", "a byte of the shard range proof changed, re-hashed")

    b = variant("solvency-asset")
    asset_len, _ = layout.solvency_sizes(2)
    _flip(b / layout.SOLVENCY_FILE, asset_len - 40)
    write_manifest(b, read_manifest(b))
    add("solvency-asset", "solvency-asset", "a byte of the per-asset solvency proof changed")

    b = variant("solvency-valued")
    size = (b / layout.SOLVENCY_FILE).stat().st_size
    _flip(b / layout.SOLVENCY_FILE, size - 40)
    write_manifest(b, read_manifest(b))
    add("solvency-valued", "solvency-valued", "a byte of the valued solvency proof changed")

    b = copy_bundle(OUT / "valid-totals", OUT / "totals-opening")
    m = read_manifest(b)
    m["totals"][0]["liabilities"] += 1
    write_manifest(b, m)
    add("totals-opening", "totals-opening", "a revealed total one unit off, re-signed")

    b = variant("reserves-raised")
    m = read_manifest(b)
    m["assets"][1]["reserves"] += 10**9  # one more proof unit of ETH
    write_manifest(b, m)
    add("reserves-raised", "leaf-range",
        "reserves raised after proving, re-signed: the header digest changes, so the first "
        "proof checked (the leaf range proofs) fails")

    b = variant("prev-epoch-without-hash")
    m = read_manifest(b)
    m["prev_epoch"] = 0
    write_manifest(b, m)
    add("prev-epoch-without-hash", "manifest-format",
        "prev_epoch 0 set on a bundle whose prev_bundle_hash is null, re-signed")

    b = copy_bundle(OUT / "valid-epoch2", OUT / "prev-epoch-edited")
    m = read_manifest(b)
    m["prev_epoch"] = 0
    write_manifest(b, m)
    add("prev-epoch-edited", "leaf-range",
        "prev_epoch changed from 1 to 0 (as if epoch 1 were a gap), re-signed: the header "
        "digest changes, so the leaf range proofs fail")

    add("chain-epoch", "chain-epoch", "a chain given newest first",
        chain=["valid-epoch2", "valid-epoch1"])
    add("gap-refused", "chain-epoch", "the epoch-4 bundle, whose header declares epoch 3 not "
        "proven solvent, verified with no gaps allowed", chain=["valid-gap-epoch4"],
        no_gaps=True)
    add("gap-refused-chain", "chain-epoch", "epochs 1, 2 and 4 as a chain with no gaps allowed",
        chain=["valid-epoch1", "valid-epoch2", "valid-gap-epoch4"], no_gaps=True)
    add("chain-link", "chain-link", "epoch 2 proven without --prev: not linked to epoch 1",
        chain=["valid-epoch1", "unlinked-epoch2"])
    add("chain-link-prev-epoch", "chain-link",
        "epoch 3 names epoch 2's bundle by hash but its header says it links to epoch 1: "
        "alone it is valid and declares epoch 2 a gap; after epoch 2 in a chain the link fails",
        chain=["valid-epoch1", "valid-epoch2", "misdeclared-epoch3"])
    add("misdeclared-epoch3", "valid", "the epoch-3 bundle of chain-link-prev-epoch alone: "
        "valid, with the gap its header declares (epoch 2)", gaps=[(2, 2)])
    margin_vectors(add)
    _write_index(vectors)


if __name__ == "__main__":
    main_margin() if sys.argv[1:] == ["--margin"] else main()
