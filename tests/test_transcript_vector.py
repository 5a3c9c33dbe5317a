"""The worked transcript example (tests/vectors/transcript_v1.json,
docs/protocol.md §5 "Transcript of a range proof"): what an independent
verifier absorbs for one small proof, and the challenges that result."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
from pathlib import Path

VECTORS = Path(__file__).parent / "vectors"
EXAMPLE = json.loads((VECTORS / "transcript_v1.json").read_text())
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


def _maker():
    spec = importlib.util.spec_from_file_location("make_transcript",
                                                  VECTORS / "make_transcript.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _frame(op: int, label: bytes, data: bytes) -> bytes:
    # as docs/protocol.md §3 states it, written here without zksolv's code
    return bytes([op]) + struct.pack("<I", len(label)) + label + struct.pack("<Q", len(data)) + data


def test_frames_and_challenges_follow_the_document() -> None:
    """Hash the listed operations as §3 says: each frame is the documented
    framing of (op, label, data), each challenge is SHAKE-256 of everything
    absorbed so far, and the ratchet frame absorbs it back under the same
    label; the labels and their order are the table's."""
    sponge = hashlib.shake_256()
    ops = EXAMPLE["operations"]
    drawn = []
    for i, op in enumerate(ops):
        label, data = op["label"].encode("ascii"), bytes.fromhex(op["data"])
        assert bytes.fromhex(op["frame"]) == _frame(op["op"], label, data), i
        if op["op"] == 4:
            prev = ops[i - 1]
            assert prev["op"] == 3 and prev["label"] == op["label"]
            n = struct.unpack("<Q", bytes.fromhex(prev["data"]))[0]
            assert sponge.copy().digest(n) == data, f"challenge {op['label']} at {i}"
            drawn.append((op["label"], data))
        sponge.update(bytes.fromhex(op["frame"]))
    assert [(c["label"], bytes.fromhex(c["bytes"])) for c in EXAMPLE["challenges"]] == drawn
    for c in EXAMPLE["challenges"]:
        v = int.from_bytes(bytes.fromhex(c["bytes"]), "little")
        assert int(c["value"]) == (v % R if c["kind"] == "scalar" else v) != 0
    # the table's order for m = 1, n = 8 (N = 8: three y, three rounds)
    assert ops[0]["label"] == "zksolv-transcript-v1"
    assert bytes.fromhex(ops[0]["data"]) == b"zksolv/range-proof"
    labels = [o["label"] for o in ops if o["op"] in (2, 3)]
    assert labels == ["scheme", "statement-id", "generator-set", "n", "m", "context", "V",
                      "A", "S", "y", "y", "y", "z", "T1", "T2", "x", "t_hat", "tau_x", "mu",
                      "w", *["L", "R", "u"] * 3]
    msg = {o["label"]: bytes.fromhex(o["data"]) for o in ops if o["op"] == 2}
    assert msg["n"] == (8).to_bytes(8, "little") and msg["m"] == (1).to_bytes(8, "little")
    assert msg["scheme"] == b"zksolv/range/bulletproofs-aggregated/v1"
    assert msg["generator-set"] == b"zksolv/generators/bls12381g1-sswu-ro/v1"
    # proof points are absorbed as the bytes in the proof, scalars as 32 bytes LE
    proof = bytes.fromhex(EXAMPLE["source"]["proof"])
    assert msg["A"] == proof[:48] and msg["T2"] == proof[144:192]
    assert msg["t_hat"] == proof[192:224] and msg["mu"] == proof[256:288]


def test_our_verifier_absorbs_exactly_these_frames() -> None:
    mod = _maker()
    assert mod.build() == EXAMPLE
    assert mod.render() == (VECTORS / "transcript_v1.json").read_bytes()
