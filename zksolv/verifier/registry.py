"""Is this bundle the one its operator posted for its epoch? The check of a
bundle against the on-chain registry (docs/registry.md, *The check*):

[registry-code]     the registry address holds the shipped ZksolvRegistry code
[registry-binding]  some address registered the bundle's operator key with a
                    binding signature that verifies (others are ignored)
[registry-missing]  a validly bound address posted an entry for the epoch
[registry-mismatch] every such entry is this bundle: hash, root, link
[registry-chain]    no validly bound address posted a branch: around the
                    bundle's epoch, its posts agree with the bundle's link and
                    declared gap

The manifest and its signature are checked first (as ``zksolv verify`` does);
the bundle's proofs are not: that is ``zksolv verify``'s work. A node that
cannot be asked is an ``InputError`` (exit 2), a failed check a
``VerificationError`` (exit 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zksolv.chain import registry as reg
from zksolv.chain.solvency import (
    BITS,
    VerifyCall,
    generator_blob,
    next_pow2,
    proof_points,
    uncompressed,
)
from zksolv.circuits import bundle as layout
from zksolv.errors import InputError, VerificationError
from zksolv.safeio import FileReadError, read_bounded
from zksolv.verifier.bundle import check_manifest, load_manifest

# A walk back along another address's posts reads at most this many entries.
MAX_WALK = 4096

CHECKS = ("manifest-format", "manifest-canonical", "suite-mismatch", "signature",
          "registry-code", "registry-binding", "registry-missing", "registry-mismatch",
          "registry-chain")
NOT_CHECKED = (
    "the bundle's proofs (zksolv verify checks them)",
    "that the node answers from the real chain (ask a node you trust)",
)


@dataclass(frozen=True)
class RegistryReport:
    path: str
    chain_id: int
    registry: bytes
    epoch: int
    bundle_hash: bytes
    operator: bytes                       # the Ed25519 key that signed the bundle
    bound: tuple[bytes, ...]              # addresses with a valid binding to it
    unbound: tuple[bytes, ...]            # addresses that claimed it without one
    posts: tuple[reg.Entry, ...]          # this epoch's entries, from bound addresses
    gap: tuple[int, int] | None
    checks: tuple[str, ...] = field(default=CHECKS)

    @property
    def solvent_on_chain(self) -> bool:
        """The registry checked this bundle's solvency proofs (proveSolvent)."""
        return any(e.solvent for e in self.posts)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "chain_id": self.chain_id,
            "registry": reg.hex_address(self.registry), "epoch": self.epoch,
            "bundle_hash": self.bundle_hash.hex(), "operator": self.operator.hex(),
            "bound_addresses": [reg.hex_address(a) for a in self.bound],
            "ignored_addresses": [reg.hex_address(a) for a in self.unbound],
            "posts": [e.to_json() for e in self.posts],
            "solvent_on_chain": self.solvent_on_chain,
            "gap": None if self.gap is None else {"first": self.gap[0], "last": self.gap[1]},
            "checks": list(self.checks), "not_checked": list(NOT_CHECKED),
        }


def _fail(check: str, detail: str) -> VerificationError:
    return VerificationError(check, detail)


def read_signed_manifest(path: str | os.PathLike[str]) -> tuple[Any, bytes]:
    """(the parsed manifest, its bytes), the signature checked."""
    _, raw = load_manifest(path)
    try:
        sig, _ = read_bounded(Path(path) / layout.SIGNATURE_FILE, layout.SIGNATURE_BYTES,
                              what="manifest signature", exact=layout.SIGNATURE_BYTES)
    except FileReadError as exc:
        raise _fail("signature", str(exc)) from exc
    return check_manifest(raw, sig), raw


def verify_call(path: str | os.PathLike[str], *, solvency: bytes | None = None,
                points_from: str | os.PathLike[str] | None = None,
                backend: Any = None) -> VerifyCall:
    """The arguments of ZksolvSolvencyVerifier.verify (and proveSolvent) for
    the bundle at ``path``, its manifest's signature checked
    (docs/onchain-verifier.md). ``solvency`` replaces solvency.bin's bytes
    and ``points_from`` takes the uncompressed points from another bundle's
    solvency.bin (tests: a compressed point that does not decode)."""
    parsed, _ = read_signed_manifest(path)
    header = parsed.header
    asset_len, valued_len = layout.solvency_sizes(header.k)
    if solvency is None:
        solvency, _ = read_bounded(Path(path) / layout.SOLVENCY_FILE, asset_len + valued_len,
                                   what="solvency proofs", exact=asset_len + valued_len)
    source = solvency if points_from is None else (Path(points_from) / layout.SOLVENCY_FILE
                                                   ).read_bytes()
    points = proof_points(source[:asset_len]) + proof_points(source[asset_len:])
    roots = b"".join(c + uncompressed(c) for c in parsed.root_commitments)
    n = BITS * next_pow2(header.k)
    return VerifyCall(header.to_bytes(), parsed.root_hash, roots, solvency, points,
                      generator_blob(n, backend), header.k)


def bundle_post(parsed: Any) -> reg.BundlePost:
    """What the registry must hold for a bundle (``read_signed_manifest``'s
    first value)."""
    import hashlib

    header = parsed.header
    return reg.BundlePost(header.epoch, parsed.bundle_hash, parsed.root_hash, header.digest(),
                          hashlib.sha256(b"".join(parsed.root_commitments)).digest(),
                          header.prev_bundle_hash, header.prev_epoch)


def bound_addresses(registry: reg.Registry, chain_id: int,
                    key: bytes) -> tuple[list[bytes], list[bytes]]:
    """(addresses bound to ``key`` by a valid signature, addresses that
    registered ``key`` without one)."""
    bound: list[bytes] = []
    unbound: list[bytes] = []
    for address in registry.registrants(key):
        b = registry.binding(address)
        ok = (b is not None and b.key == key and reg.binding_signature_valid(
            key, b.signature, chain_id, registry.address, address))
        (bound if ok else unbound).append(address)
    return bound, unbound


def _walk(registry: reg.Registry, address: bytes, epoch: int, bundle_hash: bytes,
          prev_hash: bytes | None, prev_epoch: int | None) -> None:
    """[registry-chain] Along ``address``'s posts, from its latest back to
    below the bundle's previous epoch: nothing posted inside the bundle's
    declared gap, and the entry at its previous epoch (if posted) is the
    bundle it links to."""
    latest = registry.latest_epoch(address)
    floor = -1 if prev_epoch is None else prev_epoch
    cur = None if latest is None else registry.entry(address, latest)
    steps = 0
    while cur is not None and cur.epoch >= floor:
        steps += 1
        if steps > MAX_WALK:
            raise InputError(registry.where, f"{reg.hex_address(address)}, also bound to this "
                             f"key, has more than {MAX_WALK} posts after epoch {floor}; the "
                             "check of its branch would read them all and stops here "
                             "(incomplete, not a failure)")
        where = f"{reg.hex_address(address)}'s post for epoch {cur.epoch}"
        if prev_epoch is not None and cur.epoch == prev_epoch and cur.bundle_hash != prev_hash:
            raise _fail("registry-chain", f"{where} is bundle {cur.bundle_hash.hex()}, but this "
                                          f"bundle links to {prev_hash.hex() if prev_hash else ''} "
                                          "for that epoch: two histories")
        if floor < cur.epoch < epoch:
            raise _fail("registry-chain", f"{where} (bundle {cur.bundle_hash.hex()}) lies "
                                          f"between this bundle's epoch {epoch} and the epoch "
                                          f"{floor} it links to: another branch"
                        if prev_epoch is not None else
                        f"{where} (bundle {cur.bundle_hash.hex()}) comes before this "
                        f"bundle's epoch {epoch}, which links to no earlier bundle: "
                        "another branch")
        if cur.prev_epoch is None:
            break
        cur = registry.entry(address, cur.prev_epoch)


def check_bundle(path: str | os.PathLike[str], registry: reg.Registry) -> RegistryReport:
    """Check the bundle at ``path`` against ``registry``; raise
    ``VerificationError`` naming the first failing check."""
    parsed, _ = read_signed_manifest(path)
    header = parsed.header
    expected = bundle_post(parsed)
    key, epoch, bundle_hash = header.operator, header.epoch, parsed.bundle_hash
    prev_hash, prev_epoch = header.prev_bundle_hash, header.prev_epoch
    chain_id = registry.chain_id()
    problem = registry.code_problem() or registry.verifier().code_problem()
    if problem is not None:
        raise _fail("registry-code", problem)
    bound, unbound = bound_addresses(registry, chain_id, key)
    if not bound:
        raise _fail("registry-binding",
                    f"no address has registered operator key {key.hex()} with a binding "
                    f"signature valid for chain {chain_id} and registry "
                    f"{reg.hex_address(registry.address)}"
                    + (f" ({len(unbound)} registration(s) of that key, none valid: "
                       f"{', '.join(reg.hex_address(a) for a in unbound[:5])})"
                       if unbound else ""))
    posts = [e for a in bound if (e := registry.entry(a, epoch)) is not None]
    if not posts:
        raise _fail("registry-missing",
                    f"epoch {epoch} has no post from operator key {key.hex()} (bound to "
                    f"{', '.join(reg.hex_address(a) for a in bound)}): this bundle "
                    f"{bundle_hash.hex()} is not in the public log")
    for e in posts:
        if e.bundle_hash != bundle_hash:
            raise _fail("registry-mismatch",
                        f"{reg.hex_address(e.operator)} posted bundle {e.bundle_hash.hex()} for "
                        f"epoch {epoch} (block {e.block}); this bundle is "
                        f"{bundle_hash.hex()}: two bundles for one epoch")
        if not e.matches(expected):
            raise _fail("registry-mismatch",
                        f"{reg.hex_address(e.operator)}'s post for epoch {epoch} has this "
                        "bundle's hash but another root hash, header digest, root "
                        "commitments or link than the bundle")
    # an address that posted this bundle has, by the contract's rules, no
    # other post between the bundle and the epoch it links to
    posted_by = {e.operator for e in posts}
    for address in bound:
        if address in posted_by:
            continue
        _walk(registry, address, epoch, bundle_hash, prev_hash, prev_epoch)
    from zksolv.circuits.epoch import declared_gap

    return RegistryReport(str(path), chain_id, registry.address, epoch, bundle_hash, key,
                          tuple(bound), tuple(unbound), tuple(posts),
                          declared_gap(epoch, prev_epoch))


@dataclass(frozen=True)
class History:
    """Every post of the accounts bound to one operator key, newest first per
    account, and what they disagree on."""

    operator: bytes
    bound: tuple[bytes, ...]
    unbound: tuple[bytes, ...]
    posts: dict[bytes, tuple[reg.Entry, ...]]
    # (tag, epoch, detail): registry-mismatch (two bundles for an epoch),
    # registry-chain (a post inside another account's declared gap)
    conflicts: tuple[tuple[str, int, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "operator": self.operator.hex(),
            "bound_addresses": [reg.hex_address(a) for a in self.bound],
            "ignored_addresses": [reg.hex_address(a) for a in self.unbound],
            "posts": {reg.hex_address(a): [e.to_json() for e in entries]
                      for a, entries in self.posts.items()},
            "conflicts": [{"check": tag, "epoch": epoch, "detail": detail}
                          for tag, epoch, detail in self.conflicts],
        }


def history(registry: reg.Registry, key: bytes, *, limit: int = MAX_WALK) -> History:
    """The posts of every account validly bound to ``key``, each walked back
    from its latest post along the links (at most ``limit`` per account), and
    the conflicts between accounts: two bundle hashes for one epoch, or a post
    inside an epoch range another account's bundle declares not proven."""
    chain_id = registry.chain_id()
    problem = registry.code_problem() or registry.verifier().code_problem()
    if problem is not None:
        raise _fail("registry-code", problem)
    bound, unbound = bound_addresses(registry, chain_id, key)
    posts: dict[bytes, tuple[reg.Entry, ...]] = {}
    for address in bound:
        entries: list[reg.Entry] = []
        latest = registry.latest_epoch(address)
        cur = None if latest is None else registry.entry(address, latest)
        while cur is not None:
            if len(entries) == limit:
                raise InputError(registry.where, f"{reg.hex_address(address)} has more than "
                                 f"{limit} posts; not all read")
            entries.append(cur)
            cur = None if cur.prev_epoch is None else registry.entry(address, cur.prev_epoch)
        posts[address] = tuple(entries)
    conflicts: list[tuple[str, int, str]] = []
    by_epoch: dict[int, dict[bytes, reg.Entry]] = {}
    for posted in posts.values():
        for e in posted:
            by_epoch.setdefault(e.epoch, {}).setdefault(e.bundle_hash, e)
    for epoch in sorted(by_epoch):
        if len(by_epoch[epoch]) > 1:
            shown = ", ".join(f"{h.hex()} by {reg.hex_address(e.operator)}"
                              for h, e in by_epoch[epoch].items())
            conflicts.append(("registry-mismatch", epoch,
                              f"two bundles for epoch {epoch}: {shown}"))
    for posted in posts.values():
        for e in posted:
            if not e.gap or e.prev_epoch is None:
                continue
            for epoch in sorted(by_epoch):
                if e.prev_epoch < epoch < e.epoch:
                    others = ", ".join(reg.hex_address(x.operator)
                                       for x in by_epoch[epoch].values())
                    conflicts.append(("registry-chain", epoch,
                                      f"epoch {epoch} is posted (by {others}) but "
                                      f"{reg.hex_address(e.operator)}'s epoch {e.epoch} "
                                      f"declares it not proven solvent: two histories"))
    return History(key, tuple(bound), tuple(unbound), posts, tuple(conflicts))
