"""Vectors for the page's proof checks (zksolv/site/proofcheck.js and the
modules under it), written by the Python package for tests/js/proofs.test.mjs
(run by tests/test_site_js.py): the generator table, transcripts with their
challenges, and bundles with the verdict ``zksolv verify`` gives each."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from test_epoch_support import read_manifest, write_manifest

from zksolv.circuits import bundle as layout
from zksolv.circuits.inclusion import InclusionProof
from zksolv.cli.site import generator_table
from zksolv.core.generators import generators
from zksolv.core.group import get_backend
from zksolv.core.transcript import Transcript
from zksolv.errors import VerificationError
from zksolv.verifier import margin as margin_check
from zksolv.verifier.bundle import check_manifest, verify_bundle

BUNDLE_VECTORS = Path(__file__).parent / "vectors" / "bundles"
SPEC_VECTORS = Path(__file__).parent / "vectors" / "spec"


def write_table(folder: Path) -> Path:
    """The generator table as ``zksolv site`` writes it."""
    for name, data in generator_table().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def transcript_vectors(rng: random.Random) -> list[dict[str, Any]]:
    """Random sequences of messages and challenges, with Python's outputs."""
    out = []
    for case in range(12):
        label = rng.randbytes(rng.randrange(0, 40))
        t = Transcript(label)
        ops: list[dict[str, Any]] = []
        for _ in range(rng.randrange(1, 12)):
            kind = rng.choice(["message", "u64", "bytes", "scalar", "short"])
            lab = rng.randbytes(rng.randrange(0, 20))
            if kind == "message":
                msg = rng.randbytes(rng.choice([0, 1, 48, 135, 136, 137, 300]))
                t.append_message(lab, msg)
                ops.append({"op": kind, "label": lab.hex(), "data": msg.hex()})
            elif kind == "u64":
                v = rng.randrange(1 << 64)
                t.append_u64(lab, v)
                ops.append({"op": kind, "label": lab.hex(), "value": str(v)})
            elif kind == "bytes":
                n = rng.choice([1, 16, 64, 200])
                ops.append({"op": kind, "label": lab.hex(), "n": n,
                            "out": t.challenge_bytes(lab, n).hex()})
            elif kind == "scalar":
                ops.append({"op": kind, "label": lab.hex(), "out": str(t.challenge_scalar(lab))})
            else:
                ops.append({"op": kind, "label": lab.hex(), "out": str(t.challenge_short(lab))})
        out.append({"case": case, "label": label.hex(), "ops": ops})
    return out


def _verdict(bundle: Path) -> tuple[str, str]:
    """``zksolv verify``'s verdict: its tag and detail, or ("valid", "")."""
    try:
        verify_bundle(bundle)
    except VerificationError as exc:
        return exc.check, exc.detail
    return "valid", ""


def bundle_cases(epochs: Path, shards: Path, work: Path,
                 margin: Path | None = None) -> list[dict[str, Any]]:
    """Bundles, the holder's shard and inclusion proof, and what the page
    must find: ``expect`` the CLI's verdict (``detail`` its detail), ``page``
    the page's first failing tag where it differs (it checks other things:
    see each ``why``). ``margin``: the lending bundles (conftest
    ``site_margin``), version 5."""

    def case(name: str, bundle: Path, doc: str, *, sample: int = 0, bind: bool = True,
             page: str | None = None, why: str = "") -> dict[str, Any]:
        text = (bundle.parent / doc).read_text()
        pf = InclusionProof.from_bytes(bytes.fromhex(json.loads(text)["proof"]))
        m = json.loads((bundle / layout.MANIFEST_FILE).read_text())
        expect, detail = _verdict(bundle)
        header = check_manifest((bundle / layout.MANIFEST_FILE).read_bytes(),
                                (bundle / layout.SIGNATURE_FILE).read_bytes()).header
        return {"name": name, "dir": str(bundle), "inclusion": text if bind else None,
                "shard": pf.leaf_index // m["tree"]["shard_leaves"], "sample": sample,
                "version": m["version"], "expect": expect, "detail": detail,
                "header": header.to_bytes().hex(), "page": page or expect, "why": why}

    cases = [
        case("one asset, epoch 2", epochs / "b2", "acct-4-e2.json"),
        case("two assets", epochs / "m3", "acct-4-m3.json"),
        case("four shards, all sampled", shards / "s5", "acct-0-s5.json", sample=3),
        case("four shards, another holder", shards / "s5", "acct-200-s5.json", sample=1),
        # (the proof of acct-0 names the genuine bundle: only its shard is used)
        case("forged last shard, all sampled", shards / "s5-forged", "acct-0-s5.json", sample=3,
             bind=False),
    ]
    # The operator serves a leaves.bin other than the one the signed
    # manifest lists (two leaves of the holder's shard swapped): the CLI
    # refuses the file's hash; the page, which fetches only the shard's
    # records, finds they do not reach the root through the holder's path.
    swapped = shutil.copytree(epochs / "b2", work / "b2-swapped")
    rec = layout.leaf_record_size(1)
    data = bytearray((swapped / layout.LEAVES_FILE).read_bytes())
    data[0:rec], data[rec:2 * rec] = data[rec:2 * rec], data[0:rec]
    (swapped / layout.LEAVES_FILE).write_bytes(bytes(data))
    shutil.copy(epochs / "acct-4-e2.json", work / "acct-4-e2.json")
    cases.append(case("leaves swapped, manifest unchanged", swapped, "acct-4-e2.json",
                      page="tree-root", why="the page hashes no whole file"))
    if margin is not None:
        cases += margin_cases(margin, work, case)
    return cases


def margin_cases(d: Path, work: Path, case: Any) -> list[dict[str, Any]]:
    """Version 5 (a lending protocol, four shards): valid bundles, an
    account whose debt its collateral does not cover (proven by a prover
    without its checks), and margin.bin altered and re-signed: a byte of a
    debt range proof, a byte of a margin-health proof, two shards' records
    swapped. Each altered bundle is checked from shard 0 with every other
    shard in the sample, so the page must find what ``zksolv verify`` finds."""
    cases = [
        case("lending, four shards, all sampled", d / "l6", "borrower-0-l6.json", sample=3),
        case("lending, a saver, one sampled", d / "l6", "saver-1-l6.json", sample=1),
        case("lending, the underwater account's own shard", d / "l6-forged",
             "underwater-l6-forged.json"),
        case("lending, an underwater account in the sample", d / "l6-forged",
             "borrower-0-l6-forged.json", sample=3),
    ]
    manifest = check_manifest((d / "l6" / layout.MANIFEST_FILE).read_bytes(),
                              (d / "l6" / layout.SIGNATURE_FILE).read_bytes())
    header = manifest.header
    record = margin_check.record_size(header)
    debt_len, _ = layout.margin_proof_sizes(header.shard_leaves, header.m - header.k)
    shutil.copy(d / "borrower-0-l6.json", work / "borrower-0-l6.json")

    def altered(name: str, edit: Any) -> Path:
        bundle = shutil.copytree(d / "l6", work / name)
        data = bytearray((bundle / layout.MARGIN_FILE).read_bytes())
        edit(data)
        (bundle / layout.MARGIN_FILE).write_bytes(bytes(data))
        write_manifest(bundle, read_manifest(bundle))
        return bundle

    def flip(at: int) -> Any:
        def edit(data: bytearray) -> None:
            data[at] ^= 0x01
        return edit

    def swap(a: int, b: int) -> Any:
        def edit(data: bytearray) -> None:
            ra, rb = data[a * record : (a + 1) * record], data[b * record : (b + 1) * record]
            data[a * record : (a + 1) * record], data[b * record : (b + 1) * record] = rb, ra
        return edit

    last = header.shards - 1
    for name, edit in [
        # the scalar a of the last shard's debt range proof, then of its
        # margin-health proof (each proof ends with a, b: 32 bytes each)
        ("l6-debt-flipped", flip(last * record + debt_len - 40)),
        ("l6-health-flipped", flip((last + 1) * record - 40)),
        ("l6-margin-swapped", swap(1, 2)),
    ]:
        cases.append(case(f"lending, {name}", altered(name, edit), "borrower-0-l6.json",
                          sample=3, bind=False))
    return cases


def write_proof_vectors(path: Path, epochs: Path, shards: Path, margin: Path | None = None, *,
                        seed: int = 11) -> Path:
    rng = random.Random(seed)
    work = path.parent / "proof-vectors"
    work.mkdir(exist_ok=True)
    table = write_table(work / "site")
    gens = generators(get_backend())
    backend = get_backend()
    data = {
        "table": str(table),
        "bases": {name: backend.encode(getattr(gens, name)).hex() for name in ("g", "h", "u")},
        "transcripts": transcript_vectors(rng),
        "bundles": bundle_cases(epochs, shards, work, margin),
        "bundleVectors": str(BUNDLE_VECTORS),
        "specVectors": str(SPEC_VECTORS),
    }
    path.write_text(json.dumps(data))
    return path
