"""The calldata of the on-chain solvency verifier (ZksolvSolvencyVerifier,
docs/onchain-verifier.md): a bundle's epoch header bytes, root commitments,
solvency proofs and the generators, every point both compressed (ZCash, what
the transcript absorbs) and uncompressed (EIP-2537: x and y, 64 bytes each,
big-endian; the identity is 128 zero bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

from zksolv.core.generators import generators
from zksolv.core.group import Backend, P, get_backend
from zksolv.errors import FormatError

POINT_BYTES = 128
BITS = 128
MAX_ASSETS = 16   # the largest per-asset proof the verifier takes (N = 2048)


def uncompressed(compressed: bytes) -> bytes:
    """The EIP-2537 encoding of a 48-byte compressed point (x < p and on
    the curve checked here; the subgroup is the precompile's check)."""
    if len(compressed) != 48 or not compressed[0] & 0x80:
        raise FormatError("not a compressed point")
    if compressed[0] & 0x40:
        return bytes(POINT_BYTES)
    x = int.from_bytes(bytes([compressed[0] & 0x1F]) + compressed[1:], "big")
    if x >= P:
        raise FormatError("point x not below p")
    y2 = (pow(x, 3, P) + 4) % P
    y = pow(y2, (P + 1) // 4, P)
    if y * y % P != y2:
        raise FormatError("point not on the curve")
    if bool(compressed[0] & 0x20) != (y > (P - 1) // 2):
        y = P - y
    return x.to_bytes(64, "big") + y.to_bytes(64, "big")


def generator_blob(n: int, backend: Backend | None = None) -> bytes:
    """g, h, u, then G_i, H_i for i < n, uncompressed (the verifier's `gens`)."""
    backend = backend or get_backend()
    gens = generators(backend)
    G, H = gens.vectors(n)
    out = [uncompressed(backend.encode(p)) for p in (gens.g, gens.h, gens.u)]
    for gi, hi in zip(G[:n], H[:n], strict=True):
        out.append(uncompressed(backend.encode(gi)))
        out.append(uncompressed(backend.encode(hi)))
    return b"".join(out)


def generators_hash(n: int, backend: Backend | None = None) -> bytes:
    from eth_utils import keccak

    return keccak(generator_blob(n, backend))


def proof_points(proof: bytes) -> bytes:
    """The uncompressed A, S, T1, T2, L_1, R_1, ... of a range proof's bytes
    (protocol.md §5: A S T1 T2, three scalars, L R pairs, two scalars)."""
    rounds = (len(proof) - 352) // 96
    if len(proof) != 352 + 96 * rounds:
        raise FormatError("range proof length")
    points = [proof[48 * i:48 * (i + 1)] for i in range(4)]
    for k in range(rounds):
        at = 288 + 96 * k
        points += [proof[at:at + 48], proof[at + 48:at + 96]]
    return b"".join(uncompressed(p) for p in points)


@dataclass(frozen=True)
class VerifyCall:
    """The arguments of ZksolvSolvencyVerifier.verify for one bundle."""

    header: bytes
    root_hash: bytes
    roots: bytes
    solvency: bytes
    points: bytes
    gens: bytes
    assets: int

    def args(self) -> list[object]:
        return [self.header, self.root_hash, self.roots, self.solvency, self.points, self.gens]


def next_pow2(v: int) -> int:
    p = 1
    while p < v:
        p <<= 1
    return p
