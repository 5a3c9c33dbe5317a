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

from zksolv.circuits import bundle as layout
from zksolv.circuits.inclusion import InclusionProof
from zksolv.cli.site import generator_table
from zksolv.core.generators import generators
from zksolv.core.group import get_backend
from zksolv.core.transcript import Transcript
from zksolv.errors import VerificationError
from zksolv.verifier.bundle import verify_bundle

BUNDLE_VECTORS = Path(__file__).parent / "vectors" / "bundles"


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


def _verdict(bundle: Path) -> str:
    try:
        verify_bundle(bundle)
    except VerificationError as exc:
        return exc.check
    return "valid"


def bundle_cases(epochs: Path, shards: Path, work: Path) -> list[dict[str, Any]]:
    """Bundles, the holder's shard and inclusion proof, and what the page
    must find: ``expect`` the CLI's verdict, ``page`` the page's failing tag
    where it differs (it checks other things: see each ``why``)."""

    def case(name: str, bundle: Path, doc: str, *, sample: int = 0, bind: bool = True,
             page: str | None = None, why: str = "") -> dict[str, Any]:
        text = (bundle.parent / doc).read_text()
        pf = InclusionProof.from_bytes(bytes.fromhex(json.loads(text)["proof"]))
        m = json.loads((bundle / layout.MANIFEST_FILE).read_text())
        return {"name": name, "dir": str(bundle), "inclusion": text if bind else None,
                "shard": pf.leaf_index // m["tree"]["shard_leaves"], "sample": sample,
                "expect": _verdict(bundle), "page": page or _verdict(bundle), "why": why}

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
    return cases


def write_proof_vectors(path: Path, epochs: Path, shards: Path, *, seed: int = 11) -> Path:
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
        "bundles": bundle_cases(epochs, shards, work),
        "bundleVectors": str(BUNDLE_VECTORS),
    }
    path.write_text(json.dumps(data))
    return path
