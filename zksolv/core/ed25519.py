"""The rules an Ed25519 operator key and signature must meet before the
signature is checked (RFC 8032 strict decoding, no small-order key, S < L).

edwards25519 (RFC 8032 §5.1, RFC 7748 §4.1):

    -x^2 + y^2 = 1 + d·x^2·y^2 over GF(p),  p = 2^255 - 19,  d = -121665/121666
    L = 2^252 + 27742317777372353535851937790883648493   (order of the base point)
    the group has order 8·L; its eight points of order dividing 8 are the
    small-order points (the identity (0, 1) among them)

A public key is 32 bytes: y little-endian in the low 255 bits, the sign
(low bit) of x in the top bit. zksolv accepts a key only if

[key-canonical]   y < p, the point decodes (x^2 = (y^2 - 1)/(d·y^2 + 1) has a
                  root in GF(p)) and x = 0 comes with sign bit 0: the decoding
                  of RFC 8032 §5.1.3, strictly, so each key has one encoding;
[key-small-order] [8]A is not the identity: A is none of the eight
                  small-order points. Under such a key (the identity
                  ``01 00..00`` say) the signature R = identity, S = 0 verifies
                  for every message, so it would sign anything for anyone.

and a signature R || S only if

[sig-scalar]      S, little-endian, is < L (RFC 8032 §5.1.7, step 1).

OpenSSL (through ``cryptography``) refuses S >= L itself and compares R with
the encoding it computes, so a non-canonical R never verifies; it accepts
non-canonical and small-order keys (y = p + 1 encodes the identity too).
The checks here run first, on every key zksolv reads, so the rule does not
depend on the library's version; then the signature itself is OpenSSL's
(cofactorless: [S]B = R + [k]A).
"""

from __future__ import annotations

from zksolv.errors import FormatError

P = (1 << 255) - 19
L = (1 << 252) + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, -1, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)   # a square root of -1 mod p
KEY_BYTES = 32
SIGNATURE_BYTES = 64

Point = tuple[int, int]
IDENTITY: Point = (0, 1)


def decode_point(data: bytes) -> Point:
    """[key-canonical] Decode 32 bytes to (x, y) as RFC 8032 §5.1.3 says,
    refusing y >= p and x = 0 with the sign bit set."""
    if len(data) != KEY_BYTES:
        raise FormatError(f"an Ed25519 public key is {KEY_BYTES} bytes, got {len(data)}")
    n = int.from_bytes(data, "little")
    sign, y = n >> 255, n & ((1 << 255) - 1)
    if y >= P:
        raise FormatError("non-canonical Ed25519 point encoding (y >= p)")
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P != 0:
        if (v * x * x + u) % P != 0:
            raise FormatError("not an Ed25519 point (no x for this y)")
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        raise FormatError("non-canonical Ed25519 point encoding (x = 0 with the sign bit set)")
    if x & 1 != sign:
        x = P - x
    return x, y


def add(a: Point, b: Point) -> Point:
    """Edwards addition (complete: d is not a square mod p)."""
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + y1 * x2) * pow(1 + t, -1, P) % P,
            (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P)


def has_small_order(point: Point) -> bool:
    """[key-small-order] True if [8]point is the identity."""
    q = point
    for _ in range(3):
        q = add(q, q)
    return q == IDENTITY


def check_public_key(data: bytes) -> None:
    """Raise ``FormatError`` unless ``data`` is a canonical encoding of a
    point that is not of small order [key-canonical] [key-small-order]."""
    point = decode_point(data)
    if has_small_order(point):
        raise FormatError("small-order Ed25519 public key (it signs any message: "
                          "R = identity, S = 0 verifies under it)")


def check_signature_encoding(signature: bytes) -> None:
    """[sig-scalar] 64 bytes whose S half is < L."""
    if len(signature) != SIGNATURE_BYTES:
        raise FormatError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes, "
                          f"got {len(signature)}")
    if int.from_bytes(signature[32:], "little") >= L:
        raise FormatError("Ed25519 signature scalar S is not below L")
