"""A Merlin-style Fiat-Shamir transcript.

The API follows merlin: ``Transcript(label)``, ``append_message(label, msg)``,
``challenge_bytes(label, n)``. The caller owns the transcript, so protocols
compose: a statement is absorbed first, then each prover message, and every
challenge depends on everything absorbed before it.

Construction (documented in ``docs/protocol.md`` section "Transcript"): one
SHAKE-256 sponge absorbs framed operations

    frame(op, label, data) = op (1 byte) || len(label) (u32 LE) || label
                             || len(data) (u64 LE) || data

with ``op`` = 0x01 for the protocol label, 0x02 for a message, 0x03 for a
challenge request. A challenge of ``n`` bytes squeezes a copy of the sponge
after absorbing ``frame(0x03, label, n as u64 LE)`` and then absorbs the
output back (``frame(0x04, label, output)``), ratcheting the state so that two
challenges under the same label differ. Length framing makes the encoding
injective: no two different sequences of operations absorb the same bytes.
"""

from __future__ import annotations

import hashlib
import struct

from zksolv.core.field import R

TRANSCRIPT_DOMAIN = b"zksolv-transcript-v1"

_OP_PROTOCOL = 0x01
_OP_MESSAGE = 0x02
_OP_CHALLENGE = 0x03
_OP_RATCHET = 0x04


def _frame(op: int, label: bytes, data: bytes) -> bytes:
    return bytes([op]) + struct.pack("<I", len(label)) + label + struct.pack("<Q", len(data)) + data


class Transcript:
    """Labelled, length-framed Fiat-Shamir transcript over SHAKE-256."""

    __slots__ = ("_sponge",)

    def __init__(self, label: bytes) -> None:
        self._sponge = hashlib.shake_256()
        self._sponge.update(_frame(_OP_PROTOCOL, TRANSCRIPT_DOMAIN, label))

    def append_message(self, label: bytes, message: bytes) -> None:
        self._sponge.update(_frame(_OP_MESSAGE, label, bytes(message)))

    def append_u64(self, label: bytes, value: int) -> None:
        self.append_message(label, struct.pack("<Q", value))

    def challenge_bytes(self, label: bytes, n: int) -> bytes:
        self._sponge.update(_frame(_OP_CHALLENGE, label, struct.pack("<Q", n)))
        out = self._sponge.copy().digest(n)
        self._sponge.update(_frame(_OP_RATCHET, label, out))
        return out

    def challenge_scalar(self, label: bytes) -> int:
        """A nonzero scalar: 64 bytes reduced mod r (bias < 2^-256)."""
        while True:
            k = int.from_bytes(self.challenge_bytes(label, 64), "little") % R
            if k:
                return k

    def challenge_short(self, label: bytes) -> int:
        """A nonzero 128-bit challenge, for the inner-product folding rounds
        (as in Halo-style IPAs): half the cost of a full-width multiplication
        on every folded generator, soundness error ~2^-128 per round."""
        while True:
            k = int.from_bytes(self.challenge_bytes(label, 16), "little")
            if k:
                return k

    def fork(self) -> Transcript:
        """An independent copy (used by tests to probe alternative paths)."""
        t = Transcript.__new__(Transcript)
        t._sponge = self._sponge.copy()
        return t
