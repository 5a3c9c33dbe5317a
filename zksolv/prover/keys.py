"""The operator master secret and what is derived from it.

    PRK            = HKDF-Extract(salt=HKDF_SALT, ikm=master)             (RFC 5869)
    salt(account)  = HKDF-Expand(PRK, SALT_INFO || u64 epoch || id, 32)
    shuffle key    = HKDF-Expand(PRK, SHUFFLE_INFO || u64 epoch, 32)
    signing seed   = HKDF-Expand(PRK, SIGNING_INFO, 32)      Ed25519 (RFC 8032)

Salts are fresh every epoch (the epoch is in the info), so leaf hashes of one
account are unlinkable across epochs. Leaf positions are a Fisher-Yates
shuffle of 0..2^depth-1 driven by SHAKE-256(shuffle key): the first
``accounts`` positions go to the accounts in snapshot order, the rest are
padding. Blindings are never derived: they come from ``secrets``.

The master secret is 32 random bytes, stored as hex in a 0600 file
(``zksolv keygen``) or given in ``$ZKSOLV_OPERATOR_KEY``. There is no default.
The Ed25519 signing key that signs every manifest is derived from it, so one
file holds the operator's whole identity; its public key is what auditors and
account holders pin (``--operator``). ``keygen`` writes it beside the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import struct
from array import array
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from zksolv.core import ed25519
from zksolv.errors import FormatError, InputError, ProverFault
from zksolv.safeio import read_key_text, write_private

KEY_ENV = "ZKSOLV_OPERATOR_KEY"
MASTER_BYTES = 32
HKDF_SALT = b"zksolv/hkdf-salt/v1"
SALT_INFO = b"zksolv/account-salt/v1"
SHUFFLE_INFO = b"zksolv/leaf-shuffle/v1"
SIGNING_INFO = b"zksolv/operator-signing-key/v1"
# 64 hex digits and a newline; anything much larger is not a key file.
MAX_KEY_FILE_BYTES = 4096


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


def signing_key(master: bytes) -> Ed25519PrivateKey:
    """The operator's Ed25519 signing key, derived from the master secret."""
    seed = hkdf_expand(hkdf_extract(master), SIGNING_INFO)
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    """The raw public key, checked as every verifier checks it (canonical,
    not of small order: ``core/ed25519.py``). A key derived from a seed is
    [a]B with B of prime order, so the check cannot fail; if it ever did,
    nothing would be signed with that key."""
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        ed25519.check_public_key(public)
    except FormatError as exc:
        raise ProverFault(f"the derived operator public key {public.hex()} is unusable: "
                          f"{exc}") from exc
    return public


def public_key_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".pub")


def write_master_key(path: str | os.PathLike[str]) -> tuple[Path, bytes]:
    """Create ``path`` (mode 0600, exclusive, never overwriting) holding a
    fresh secret in hex, and ``path.pub`` holding the hex of the operator's
    public signing key. Returns (path, public key)."""
    p = Path(path)
    if p.exists() or p.is_symlink():
        raise InputError(str(p), "exists; refusing to overwrite an operator key")
    master = generate_master_key()
    write_private(p, (master.hex() + "\n").encode("ascii"), overwrite=False)
    public = public_key_bytes(signing_key(master))
    pub = public_key_path(p)
    tmp = pub.with_name(f".{pub.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(public.hex() + "\n")
    os.replace(tmp, pub)
    return p, public


def parse_master_key(text: str, where: str) -> bytes:
    s = text.strip()
    if len(s) != 2 * MASTER_BYTES or not all(c in "0123456789abcdefABCDEF" for c in s):
        raise InputError(where, f"operator key must be {MASTER_BYTES} bytes (64 hex digits)")
    return bytes.fromhex(s)


_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


def load_master_key(path: str | os.PathLike[str] | None,
                    warn: Callable[[str], None] | None = None) -> bytes:
    """From the key file ``path`` (``--key``) if given, else from
    ``$ZKSOLV_OPERATOR_KEY``, which holds either the 64 hex digits or the
    path of a key file (the same file ``--key`` takes); else an error.
    ``warn`` is told if the key file is readable by group or others."""
    if path is None:
        env = os.environ.get(KEY_ENV)
        if not env:
            raise InputError("--key", f"no operator key: pass --key FILE or set ${KEY_ENV} to "
                                      "the key or its file (create one: zksolv keygen)")
        if re.fullmatch(r"[0-9a-fA-F]+", env.strip()):  # hex (of any length: say so)
            return parse_master_key(env, f"${KEY_ENV}")
        path = env
    p = Path(path)
    if _HEX_KEY.fullmatch(str(path)) and not p.exists():
        raise InputError("--key", "--key takes the key FILE, not the key itself (a secret "
                                  "on the command line is visible to other users); put the "
                                  f"hex in ${KEY_ENV} or in a file (zksolv keygen)")
    text = read_key_text(p, MAX_KEY_FILE_BYTES, what="operator key file", warn=warn,
                         not_ascii="operator key must be 64 hex digits")
    return parse_master_key(text, str(p))
