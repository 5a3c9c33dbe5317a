"""Ownership of a reserve address for one epoch: an EIP-712 typed statement.

Each account holding reserves signs, with its own key, the statement

    ReserveOwnership(address holder,uint256 blockNumber,bytes32 blockHash,
                     uint64 epoch,bytes32 operator)

(one line, no spaces but the one between each type and its name)
under the domain ``EIP712Domain(string name,string version,uint256 chainId)``
with ``name = "zksolv reserves"``, ``version = "1"`` and the chain's id (no
``verifyingContract``: no contract is involved). ``operator`` is the
operator's Ed25519 public key (32 bytes), so a signature binds the chain, the
block the balances were read at, the epoch and the operator: it can neither
be replayed in another epoch nor lent to another operator.

The digest signed is EIP-712's

    digest = keccak256(0x19 || 0x01 || domainSeparator || hashStruct(statement))
    domainSeparator = keccak256(DOMAIN_TYPEHASH || keccak256("zksolv reserves")
                                || keccak256("1") || uint256(chainId))
    hashStruct = keccak256(STATEMENT_TYPEHASH || uint256(holder) || uint256(blockNumber)
                           || blockHash || uint256(epoch) || operator)

with each field a 32-byte word (the address left-padded with zeros), and
``*_TYPEHASH`` the keccak256 of the type strings above.

A signature is 65 bytes ``r || s || v`` (v = 27 or 28), recovered strictly:
r and s in [1, n-1] and s <= n/2 (EIP-2: the other half is the same
signature mirrored, refused so that each statement has one signature), else
``SignatureError``. A contract holder (EIP-1271) is asked about the same
digest by ``zksolv.chain.rpc.RpcClient.is_valid_signature``.

eth-keys (from the ``zksolv[chain]`` extra) signs and recovers; keccak256
comes from eth-hash. Both are imported on first use. eth-keys runs on
libsecp256k1 through coincurve (in the extra too; ~0.2 ms a recovery) and
falls back to its pure-Python backend (~13 ms) where coincurve does not
install; ``reference=True`` takes the pure-Python path on purpose, and the
tests recover every signature both ways.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import Any

from zksolv.errors import ChainExtraMissing, InputError, SignatureError
from zksolv.safeio import read_key_text

DOMAIN_NAME = "zksolv reserves"
DOMAIN_VERSION = "1"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId)"
STATEMENT_NAME = "ReserveOwnership"
STATEMENT_TYPE = ("ReserveOwnership(address holder,uint256 blockNumber,bytes32 blockHash,"
                  "uint64 epoch,bytes32 operator)")
STATEMENT_FIELDS = (("holder", "address"), ("blockNumber", "uint256"),
                    ("blockHash", "bytes32"), ("epoch", "uint64"), ("operator", "bytes32"))

# secp256k1's group order
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SIGNATURE_BYTES = 65
MAX_KEY_FILE_BYTES = 256
_KEY_RE = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")


@functools.cache
def _keccak() -> Callable[[bytes], bytes]:
    try:
        from eth_hash.auto import keccak
    except ImportError as exc:
        raise ChainExtraMissing("EIP-712 (keccak256)") from exc
    return keccak  # type: ignore[no-any-return]


def keccak256(data: bytes) -> bytes:
    return _keccak()(data)


@functools.cache
def _keys() -> Any:
    try:
        from eth_keys import keys
    except ImportError as exc:
        raise ChainExtraMissing("Ethereum signatures") from exc
    return keys


@functools.cache
def _backend(reference: bool) -> Any:
    """eth-keys' backend: libsecp256k1 (coincurve) when installed, unless
    ``reference``; else its pure-Python one."""
    _keys()
    from eth_keys.backends import NativeECCBackend
    if not reference:
        try:
            from eth_keys.backends import CoinCurveECCBackend
            return CoinCurveECCBackend()
        except ImportError:  # coincurve missing: the pure-Python backend
            pass
    return NativeECCBackend()


def backend_name(*, reference: bool = False) -> str:
    """``"coincurve"`` or ``"native"``: which backend recovers signatures."""
    return "native" if type(_backend(reference)).__name__ == "NativeECCBackend" else "coincurve"


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _uint(value: object, bits: int, low: int = 0) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and low <= value < 2**bits)


def _check(chain_id: int, holder: bytes, block_number: int, block_hash: bytes, epoch: int,
           operator: bytes) -> None:
    if not _uint(chain_id, 256, 1):
        raise ValueError("chain_id must be in [1, 2^256)")
    if not (isinstance(holder, bytes) and len(holder) == 20):
        raise ValueError("holder must be a 20-byte address")
    if not _uint(block_number, 256):
        raise ValueError("block_number must be in [0, 2^256)")
    if not (isinstance(block_hash, bytes) and len(block_hash) == 32):
        raise ValueError("block_hash must be 32 bytes")
    if not _uint(epoch, 64):
        raise ValueError("epoch must be a uint64")
    if not (isinstance(operator, bytes) and len(operator) == 32):
        raise ValueError("operator must be the 32-byte Ed25519 public key")


@functools.cache
def domain_separator(chain_id: int) -> bytes:
    """EIP-712 ``domainSeparator`` of the zksolv reserves domain on ``chain_id``."""
    if not _uint(chain_id, 256, 1):
        raise ValueError("chain_id must be in [1, 2^256)")
    return keccak256(keccak256(DOMAIN_TYPE.encode()) + keccak256(DOMAIN_NAME.encode())
                     + keccak256(DOMAIN_VERSION.encode()) + _word(chain_id))


def struct_hash(*, holder: bytes, block_number: int, block_hash: bytes, epoch: int,
                operator: bytes) -> bytes:
    """EIP-712 ``hashStruct`` of one ReserveOwnership statement."""
    return keccak256(keccak256(STATEMENT_TYPE.encode()) + bytes(12) + holder
                     + _word(block_number) + block_hash + _word(epoch) + operator)


def digest(*, chain_id: int, holder: bytes, block_number: int, block_hash: bytes, epoch: int,
           operator: bytes) -> bytes:
    """The 32-byte EIP-712 digest an account (or an EIP-1271 contract's
    owner) signs to say it holds reserves for this operator and epoch."""
    _check(chain_id, holder, block_number, block_hash, epoch, operator)
    return keccak256(b"\x19\x01" + domain_separator(chain_id)
                     + struct_hash(holder=holder, block_number=block_number,
                                   block_hash=block_hash, epoch=epoch, operator=operator))


def typed_data(*, chain_id: int, holder: bytes, block_number: int, block_hash: bytes,
               epoch: int, operator: bytes) -> dict[str, Any]:
    """The statement as EIP-712 JSON, the shape ``eth_signTypedData_v4`` and
    hardware wallets take. Integers are JSON numbers; addresses and bytes are
    lowercase ``0x`` hex."""
    _check(chain_id, holder, block_number, block_hash, epoch, operator)
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"},
                             {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}],
            STATEMENT_NAME: [{"name": n, "type": t} for n, t in STATEMENT_FIELDS],
        },
        "primaryType": STATEMENT_NAME,
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id},
        "message": {
            "holder": "0x" + holder.hex(),
            "blockNumber": block_number,
            "blockHash": "0x" + block_hash.hex(),
            "epoch": epoch,
            "operator": "0x" + operator.hex(),
        },
    }


def _private_key(eth_private_key: bytes) -> Any:
    if not (isinstance(eth_private_key, bytes) and len(eth_private_key) == 32):
        raise ValueError("an Ethereum private key is 32 bytes")
    if not 0 < int.from_bytes(eth_private_key, "big") < SECP256K1_N:
        raise ValueError("an Ethereum private key is in [1, n-1]")
    return _keys().PrivateKey(eth_private_key, backend=_backend(False))


def address_of(eth_private_key: bytes) -> bytes:
    """The 20-byte address of a secp256k1 private key."""
    return bytes(_private_key(eth_private_key).public_key.to_canonical_address())


def sign_digest(eth_private_key: bytes, message_digest: bytes) -> bytes:
    """A 65-byte signature r || s || v (v = 27 or 28, low s) over a 32-byte
    digest, with RFC 6979 deterministic nonces."""
    if len(message_digest) != 32:
        raise ValueError("the digest is 32 bytes")
    sig = _private_key(eth_private_key).sign_msg_hash(message_digest)
    r, s, v = sig.r, sig.s, sig.v
    if s > SECP256K1_N // 2:  # eth-keys signs low-s already; kept as a bound
        s, v = SECP256K1_N - s, 1 - v
    return _word(r) + _word(s) + bytes([27 + v])


def sign(eth_private_key: bytes, *, chain_id: int, holder: bytes, block_number: int,
         block_hash: bytes, epoch: int, operator: bytes) -> bytes:
    """Sign the statement (65 bytes r || s || v). The key must be the
    holder's: signing for another address is refused."""
    if address_of(eth_private_key) != holder:
        raise InputError("--eth-key", f"this key is 0x{address_of(eth_private_key).hex()}, "
                                      f"not the holder 0x{holder.hex()}")
    return sign_digest(eth_private_key, digest(chain_id=chain_id, holder=holder,
                                               block_number=block_number,
                                               block_hash=block_hash, epoch=epoch,
                                               operator=operator))


def recover_digest(signature: bytes, message_digest: bytes, *, reference: bool = False) -> bytes:
    """The 20-byte address whose key made ``signature`` over ``message_digest``;
    a ``SignatureError`` for any signature that is not strict (see above).
    ``reference`` recovers on the pure-Python backend."""
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        got = len(signature) if isinstance(signature, bytes) else type(signature).__name__
        raise SignatureError(f"a signature is {SIGNATURE_BYTES} bytes r || s || v, got {got}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise SignatureError(f"v is {v}, not 27 or 28")
    if not 0 < r < SECP256K1_N:
        raise SignatureError("r is zero or not below the curve order")
    if not 0 < s <= SECP256K1_N // 2:
        raise SignatureError("s is zero or in the upper half of the curve order (EIP-2 "
                             "allows only the low one)")
    keys = _keys()
    try:
        public = keys.Signature(vrs=(v - 27, r, s), backend=_backend(reference)
                                ).recover_public_key_from_msg_hash(message_digest)
    except Exception as exc:  # eth-keys raises BadSignature and others: all are refusals
        raise SignatureError(f"no public key recovers from it ({type(exc).__name__})") from exc
    return bytes(public.to_canonical_address())


def recover(signature: bytes, *, chain_id: int, holder: bytes, block_number: int,
            block_hash: bytes, epoch: int, operator: bytes) -> bytes:
    """The address that signed this statement with ``signature``. Equal to
    ``holder`` exactly when the holder signed this very statement; a
    signature over another chain, block, epoch or operator recovers to some
    other address."""
    return recover_digest(signature, digest(chain_id=chain_id, holder=holder,
                                            block_number=block_number, block_hash=block_hash,
                                            epoch=epoch, operator=operator))


def parse_eth_key(text: str, where: str) -> bytes:
    """A secp256k1 private key from 64 hex digits, with or without ``0x``,
    matched whole (one trailing newline allowed), in [1, n-1]."""
    body = text[:-1] if text.endswith("\n") else text
    body = body[:-1] if body.endswith("\r") else body
    m = _KEY_RE.fullmatch(body)
    if m is None:
        raise InputError(where, "an Ethereum key file holds 64 hex digits (optionally 0x), "
                                "nothing else")
    key = bytes.fromhex(m.group(1))
    if not 0 < int.from_bytes(key, "big") < SECP256K1_N:
        raise InputError(where, "the Ethereum key is zero or not below the curve order")
    return key


def load_eth_key(path: str | os.PathLike[str],
                 warn: Callable[[str], None] | None = None) -> bytes:
    """The 32-byte secp256k1 key in the file ``path`` (a regular file of at
    most 256 bytes: ``0x`` + 64 hex digits or 64 hex digits, one trailing
    newline allowed). ``warn`` is told if the file is readable by group or
    others, as for the operator's key."""
    text = read_key_text(path, MAX_KEY_FILE_BYTES, what="Ethereum key file", warn=warn,
                         not_ascii="an Ethereum key file holds 64 hex digits (optionally "
                                   "0x), nothing else")
    return parse_eth_key(text, str(path))
