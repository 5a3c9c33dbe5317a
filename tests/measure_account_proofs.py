"""A measurement, not part of the bundle format: EIP-1186 account proofs
(``eth_getProof``) for native balances, checked against the block's
stateRoot, so that a verifier would need only a trusted block header instead
of a node keeping state at the pinned block.

Run: ``python tests/measure_account_proofs.py [--accounts 10000] [--holders 100]``
(starts its own anvil; needs ``npm ci --prefix tests/js``). It fills the
state with ACCOUNTS funded accounts (the depth of the state trie grows with
log16 of the number of accounts: a dev chain's few accounts would flatter
the sizes), fetches HOLDERS proofs at one block, checks each against the
block's stateRoot with the walk below (Merkle-Patricia trie, hex-prefix
paths, keccak-256 node references), compares every proven balance with
``eth_getBalance`` at that block, and reports bytes per address (alone, and
shared nodes counted once across the holders), fetch and check times, and
that a flipped byte or another address's proof is refused.

The walk is a reference written from the Yellow Paper (appendix D, the
modified Merkle-Patricia trie); the ``trie`` package's
``HexaryTrie.get_from_proof`` would do the same.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import rlp
from eth_hash.auto import keccak

sys.path.insert(0, str(Path(__file__).parent))
import chain_node  # noqa: E402


class ProofError(ValueError):
    pass


def _nibbles(data: bytes) -> list[int]:
    out = []
    for b in data:
        out += [b >> 4, b & 15]
    return out


def _hex_prefix(encoded: bytes) -> tuple[list[int], bool]:
    """(path nibbles, is_leaf) of a leaf or extension node's first item."""
    if not encoded:
        raise ProofError("empty hex-prefix path")
    flag = encoded[0] >> 4
    if flag not in (0, 1, 2, 3):
        raise ProofError(f"hex-prefix flag {flag}")
    nib = _nibbles(encoded)
    path = nib[1:] if flag & 1 else nib[2:]
    if not flag & 1 and nib[1] != 0:
        raise ProofError("even hex-prefix path with a non-zero pad")
    return path, bool(flag & 2)


def verify_account_proof(state_root: bytes, address: bytes,
                         proof: list[bytes]) -> list[bytes] | None:
    """The account [nonce, balance, storageRoot, codeHash] (RLP items) that
    ``proof`` proves at ``state_root``, or None if it proves the address
    absent. Every node must be the one its parent references (keccak-256 of
    its RLP, or embedded when under 32 bytes), in order from the root."""
    key = _nibbles(keccak(address))
    ref: Any = state_root
    pos = 0
    nodes = iter(proof)
    while True:
        if isinstance(ref, bytes):
            if len(ref) != 32:
                raise ProofError(f"reference of {len(ref)} bytes")
            raw = next(nodes, None)
            if raw is None:
                raise ProofError("proof ends before the path does")
            if keccak(raw) != ref:
                raise ProofError("a node does not hash to its parent's reference")
            node = rlp.decode(raw)
        else:
            node = ref                      # embedded (under 32 bytes)
        if not isinstance(node, list):
            raise ProofError("a node is not a list")
        if len(node) == 17:
            if pos == len(key):
                raise ProofError("a branch at the end of a 64-nibble key")
            child = node[key[pos]]
            pos += 1
            if child == b"":
                if next(nodes, None) is not None:
                    _extra()
                return None
            ref = child
        elif len(node) == 2:
            path, leaf = _hex_prefix(node[0])
            if leaf:
                if next(nodes, None) is not None:
                    _extra()
                if key[pos:] != path:
                    return None             # another key's leaf: absence proven
                account = rlp.decode(node[1])
                if not (isinstance(account, list) and len(account) == 4):
                    raise ProofError("an account is four items")
                return list(account)
            if key[pos:pos + len(path)] != path:
                if next(nodes, None) is not None:
                    _extra()
                return None
            pos += len(path)
            ref = node[1]
        else:
            raise ProofError(f"a node of {len(node)} items")


def _extra() -> NoReturn:
    raise ProofError("nodes after the end of the path")


def _batch(node: chain_node.AnvilNode, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    out = chain_node._post(node.url, [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                                      for i, (m, p) in enumerate(calls)], 120.0)
    by_id = {a["id"]: a for a in out}
    return [by_id[i]["result"] for i in range(len(calls))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--holders", type=int, default=100)
    args = ap.parse_args()
    exe = chain_node.anvil_path()
    if exe is None:
        sys.exit("anvil not found: npm ci --prefix tests/js")
    node = chain_node.AnvilNode(exe)
    try:
        addrs = ["0x" + keccak(b"holder %d" % i)[:20].hex() for i in range(args.accounts)]
        for start in range(0, len(addrs), 1000):
            _batch(node, [("anvil_setBalance", [a, hex(10**18 + i)])
                          for i, a in enumerate(addrs[start:start + 1000], start)])
        node.mine(1)
        block = node.block("latest")
        tag = block["number"]
        root = bytes.fromhex(block["stateRoot"][2:])
        holders = addrs[:args.holders]
        t = time.perf_counter()
        proofs = _batch(node, [("eth_getProof", [a, [], tag]) for a in holders])
        t_proofs = time.perf_counter() - t
        t = time.perf_counter()
        balances = _batch(node, [("eth_getBalance", [a, tag]) for a in holders])
        t_balances = time.perf_counter() - t
        raw = [[bytes.fromhex(n[2:]) for n in p["accountProof"]] for p in proofs]
        t = time.perf_counter()
        proven = [verify_account_proof(root, bytes.fromhex(a[2:]), nodes)
                  for a, nodes in zip(holders, raw, strict=True)]
        t_verify = time.perf_counter() - t
        for acct, bal in zip(proven, balances, strict=True):
            assert acct is not None and int.from_bytes(acct[1], "big") == int(bal, 16)
        sizes = [sum(len(n) for n in nodes) for nodes in raw]
        shared = {n for nodes in raw for n in nodes}
        depth = [len(nodes) for nodes in raw]
        # tampering: a flipped byte in the leaf, another address's proof
        bad = [*raw[0][:-1], raw[0][-1][:-1] + bytes([raw[0][-1][-1] ^ 1])]
        try:
            verify_account_proof(root, bytes.fromhex(holders[0][2:]), bad)
            refused_flip = False
        except ProofError:
            refused_flip = True
        try:
            other = ("proves an account (WRONG)" if verify_account_proof(
                root, bytes.fromhex(holders[0][2:]), raw[1]) is not None else "proves absence")
        except ProofError as exc:
            other = f"refused ({exc})"
        absent = _batch(node, [("eth_getProof", ["0x" + "ab" * 20, [], tag])])[0]
        none = verify_account_proof(root, b"\xab" * 20,
                                    [bytes.fromhex(n[2:]) for n in absent["accountProof"]])
        n = len(holders)
        print(f"state: {args.accounts} funded accounts (+ anvil's own), block {int(tag, 16)}")
        print(f"proof depth: {min(depth)}..{max(depth)} nodes per address")
        print(f"bytes per address: {sum(sizes) / n:.0f} alone (min {min(sizes)}, max "
              f"{max(sizes)}); {sum(len(x) for x in shared) / n:.0f} with shared nodes "
              f"counted once across {n} addresses ({len(shared)} distinct nodes)")
        print(f"fetch: {n} proofs {t_proofs * 1000:.0f} ms (one batch) vs {n} balances "
              f"{t_balances * 1000:.0f} ms")
        print(f"verify: {t_verify * 1e6 / n:.0f} us per address ({t_verify * 1000:.1f} ms for "
              f"{n}); every proven balance equals eth_getBalance")
        print(f"tampering: flipped byte refused {refused_flip}; another address's proof "
              f"{other}; an absent address proven absent {none is None}")
    finally:
        node.stop()


if __name__ == "__main__":
    main()
