"""The operator master secret and what is derived from it.

    PRK            = HKDF-Extract(salt=HKDF_SALT, ikm=master)             (RFC 5869)
    salt(account)  = HKDF-Expand(PRK, SALT_INFO || u64 epoch || id, 32)
    shuffle key    = HKDF-Expand(PRK, SHUFFLE_INFO || u64 epoch, 32)

Salts are fresh every epoch (the epoch is in the info), so leaf hashes of one
account are unlinkable across epochs. Leaf positions are a Fisher-Yates
shuffle of 0..2^depth-1 driven by SHAKE-256(shuffle key): the first
``accounts`` positions go to the accounts in snapshot order, the rest are
padding. Blindings are never derived: they come from ``secrets``.

The master secret is 32 random bytes, stored as hex in a 0600 file
(``zksolv keygen``) or given in ``$ZKSOLV_OPERATOR_KEY``. There is no default.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
from array import array
from pathlib import Path

from zksolv.errors import InputError

KEY_ENV = "ZKSOLV_OPERATOR_KEY"
MASTER_BYTES = 32
HKDF_SALT = b"zksolv/hkdf-salt/v1"
SALT_INFO = b"zksolv/account-salt/v1"
SHUFFLE_INFO = b"zksolv/leaf-shuffle/v1"


def hkdf_extract(ikm: bytes, salt: bytes = HKDF_SALT) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int = 32) -> bytes:
    out = b""
    block = b""
    i = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def account_salt(prk: bytes, epoch: int, account_id: str) -> bytes:
    return hkdf_expand(prk, SALT_INFO + struct.pack(">Q", epoch) + account_id.encode("utf-8"))


def shuffle_key(prk: bytes, epoch: int) -> bytes:
    return hkdf_expand(prk, SHUFFLE_INFO + struct.pack(">Q", epoch))


def keyed_permutation(key: bytes, size: int) -> array:
    """Fisher-Yates over 0..size-1 with 64-bit draws from SHAKE-256(key)
    (modulo bias below 2^-31 for size <= 2^32, irrelevant for hiding positions)."""
    perm = array("I", range(size))
    stream = hashlib.shake_256(b"zksolv/shuffle-stream/v1" + key).digest(8 * max(size, 1))
    draws = array("Q")
    draws.frombytes(stream)
    for i in range(size - 1, 0, -1):
        j = draws[i] % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def generate_master_key() -> bytes:
    return secrets.token_bytes(MASTER_BYTES)


def write_master_key(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (mode 0600) holding a fresh secret in hex; never overwrite."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise InputError(str(p), "exists; refusing to overwrite an operator key") from exc
    except OSError as exc:
        raise InputError(str(p), f"cannot create: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as f:
        f.write(generate_master_key().hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return p


def parse_master_key(text: str, where: str) -> bytes:
    s = text.strip()
    try:
        key = bytes.fromhex(s)
    except ValueError as exc:
        raise InputError(where, "operator key must be 64 hex digits") from exc
    if len(key) != MASTER_BYTES:
        raise InputError(where, f"operator key must be {MASTER_BYTES} bytes (64 hex digits)")
    return key


def load_master_key(path: str | os.PathLike[str] | None) -> bytes:
    """From ``path`` if given, else from ``$ZKSOLV_OPERATOR_KEY``; else an error."""
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(str(p), f"cannot read operator key ({exc})") from exc
        return parse_master_key(text, str(p))
    env = os.environ.get(KEY_ENV)
    if env:
        return parse_master_key(env, f"${KEY_ENV}")
    raise InputError(
        "--key", f"no operator key: pass --key FILE or set ${KEY_ENV} (create one: zksolv keygen)"
    )
