"""Write tests/vectors/transcript_v1.json: the worked example of
docs/protocol.md §3 and §5 (table "Transcript of a range proof").

    python tests/vectors/make_transcript.py

It takes the first proof of ``rangeproof_v1.json`` (one 8-bit value, m = 1,
so N = 8 and three inner-product rounds), verifies it while recording every
operation the verifier's transcript performs, and writes, in order, each
operation (op, label, data) with the exact frame bytes absorbed, and each
challenge drawn: the squeezed bytes and the integer they give (the
64-byte scalars reduced mod r, the 16-byte short challenges as they are).
``tests/test_transcript_vector.py`` checks the file three ways: the frames
hashed by SHAKE-256 as the document states (no zksolv code) give the listed
challenges; our verifier's transcript absorbs exactly these frames; and
regenerating gives the same bytes. The output is deterministic.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from zksolv.core import rangeproof as rp  # noqa: E402
from zksolv.core import transcript as tr  # noqa: E402
from zksolv.core.field import R  # noqa: E402

OUT = HERE / "transcript_v1.json"
SOURCE = HERE / "rangeproof_v1.json"
OP_NAMES = {1: "protocol", 2: "message", 3: "challenge-request", 4: "ratchet"}


class _Recording(tr.Transcript):
    """A transcript that logs every frame it absorbs (``log`` shared by
    every copy made of it)."""

    __slots__ = ("log",)
    current: list[dict[str, Any]] = []

    def __init__(self, label: bytes) -> None:
        self.log = _Recording.current
        self.log.append(_entry(tr._OP_PROTOCOL, tr.TRANSCRIPT_DOMAIN, label))
        super().__init__(label)

    def append_message(self, label: bytes, message: bytes) -> None:
        self.log.append(_entry(tr._OP_MESSAGE, label, bytes(message)))
        super().append_message(label, message)

    def challenge_bytes(self, label: bytes, n: int) -> bytes:
        self.log.append(_entry(tr._OP_CHALLENGE, label, struct.pack("<Q", n)))
        out = super().challenge_bytes(label, n)
        self.log.append(_entry(tr._OP_RATCHET, label, out))
        return out


def _entry(op: int, label: bytes, data: bytes) -> dict[str, Any]:
    return {"op": op, "kind": OP_NAMES[op], "label": label.decode("ascii"),
            "data": data.hex(), "frame": tr._frame(op, label, data).hex()}


def record(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations the verifier performs on ``case`` (a rangeproof_v1 case)."""
    statement = rp.RangeStatement(bytes.fromhex(case["statement_id"]),
                                  tuple(bytes.fromhex(c) for c in case["commitments"]),
                                  case["bits"], bytes.fromhex(case["context"]))
    proof = rp.RangeProof.from_bytes(bytes.fromhex(case["proof"]))
    _Recording.current = []
    saved = rp.Transcript
    rp.Transcript = _Recording  # type: ignore[misc]
    try:
        rp.verify(statement, proof)
    finally:
        rp.Transcript = saved  # type: ignore[misc]
    return _Recording.current


def challenges(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each challenge drawn: label, bytes and value (scalar or short)."""
    out = []
    for op in ops:
        if op["op"] != 4:
            continue
        raw = bytes.fromhex(op["data"])
        value = int.from_bytes(raw, "little")
        out.append({"label": op["label"], "bytes": op["data"],
                    "kind": "scalar" if len(raw) == 64 else "short",
                    "value": str(value % R if len(raw) == 64 else value)})
    return out


def build() -> dict[str, Any]:
    case = json.loads(SOURCE.read_text())["cases"][0]
    ops = record(case)
    return {
        "format": "zksolv-transcript-example",
        "version": 1,
        "source": {"file": "rangeproof_v1.json", "case": 0, "bits": case["bits"],
                   "m": len(case["commitments"]), "statement_id": case["statement_id"],
                   "context": case["context"], "commitments": case["commitments"],
                   "proof": case["proof"]},
        "operations": ops,
        "challenges": challenges(ops),
    }


def render() -> bytes:
    return (json.dumps(build(), indent=1) + "\n").encode()


if __name__ == "__main__":
    OUT.write_bytes(render())
    print(f"wrote {OUT}")
