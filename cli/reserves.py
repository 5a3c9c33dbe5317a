"""``zksolv reserves``: reserves read from the chain, for a snapshot whose
header names reserve sources (docs/snapshot-format.md, *Reserve sources*).

fetch → sign (or typed-data → import) → prove. Every write of reserves.json
is atomic (temporary file, rename). Chain work needs the ``chain`` extra
(``zksolv.chain``), imported only when a command runs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from zksolv.cli.common import echo_json, reports_errors, status
from zksolv.errors import InputError

RPC_HELP = ("The node's JSON-RPC URL (http:// or https://), e.g. http://127.0.0.1:8545: an "
            "archive node, or one that keeps state at the block read.")
EXTRA = "install zksolv[chain]"


@click.group()
def reserves() -> None:
    """Reserves read from the chain, checked by anyone against their own node.

    When a snapshot's header.json names reserve sources (chain id, tokens,
    holding addresses: docs/snapshot-format.md), the sourced assets'
    reserves are not typed in: they are read at one block and signed for
    the epoch by every holding account, then go into the bundle (version 6)
    where any verifier re-checks them (`zksolv verify BUNDLE --rpc URL`).

    \b
    The flow, per epoch:
      1. zksolv reserves fetch SNAPSHOT --rpc URL      # balances at a pinned block
                                                      # (--block N, or derived from
                                                      #  the header's block_window)
      2. zksolv reserves sign SNAPSHOT --eth-key FILE --operator operator.key.pub
                                                      # --eth-key repeatable, or
                                                      # --eth-key-dir DIR; or, for
                                                      # a hardware wallet:
         zksolv reserves typed-data SNAPSHOT --address 0x... --operator operator.key.pub -o td.json
         (sign td.json with eth_signTypedData_v4), then
         zksolv reserves import SNAPSHOT sigs.json --operator operator.key.pub
      3. zksolv reserves check SNAPSHOT [--rpc URL]   # what is there, what is missing
      4. zksolv prove SNAPSHOT --out bundle/ --key operator.key
      5. zksolv verify bundle/ --rpc URL              # anyone, against their own node

    The signatures bind chain id, block number and hash, epoch, holder
    address and the operator's Ed25519 public key (EIP-712): they cannot be
    replayed in another epoch or lent to another operator.
    """


def _chain(*names: str) -> Any:
    """The zksolv.chain modules named (evidence, ownership, rpc)."""
    import importlib

    try:
        chain = importlib.import_module("zksolv.chain")
        mods = [importlib.import_module(f"zksolv.chain.{n}") for n in names]
    except ImportError as exc:
        raise InputError("zksolv reserves", f"needs the chain extra: {EXTRA} ({exc})") from exc
    if not chain.available():
        raise InputError("zksolv reserves", f"needs the chain extra: {EXTRA}")
    return mods[0] if len(mods) == 1 else mods


def _open(path: str) -> Any:
    from zksolv.snapshot import open_snapshot

    snap = open_snapshot(path)
    if snap.header.reserve_sources is None:
        raise InputError(str(snap.path / "header.json"),
                         "names no reserve_sources: its reserves are asserted, nothing to read "
                         "from a chain (docs/snapshot-format.md, Reserve sources)")
    return snap


def _evidence_doc(snap: Any) -> Any:
    from zksolv.snapshot import evidence_problem

    doc = snap.load_reserves()
    if doc is None:
        raise InputError(str(snap.path), "no reserves.json yet: zksolv reserves fetch "
                                         "SNAPSHOT --rpc URL")
    problem = evidence_problem(snap.header, doc)
    if problem is not None:
        raise InputError(str(snap.reserves_path), f"{problem}: fetch again (zksolv reserves "
                                                  "fetch SNAPSHOT --rpc URL)")
    return doc


def _operator(operator: str | None, operator_key: str | None) -> bytes:
    """The operator's Ed25519 public key: --operator (64 hex digits or a
    .pub file), else derived from the operator key file the prover uses."""
    from zksolv.cli.epoch import _operator_key

    if operator is not None and operator_key is not None:
        raise InputError("--operator", "give --operator or --operator-key, not both")
    if operator is not None:
        key = _operator_key(operator)
        assert key is not None
        return key
    from zksolv.prover import keys

    try:
        master = keys.load_master_key(operator_key,
                                      warn=lambda m: click.echo(f"warning: {m}", err=True))
    except InputError as exc:
        raise InputError("--operator", "the operator's public key is needed (the signatures "
                                       "name it): give --operator operator.key.pub, or "
                                       f"--operator-key (else $ZKSOLV_OPERATOR_KEY): {exc}"
                         ) from exc
    return keys.public_key_bytes(keys.signing_key(master))


def _statement(doc: Any, epoch: int, operator: bytes, address: str) -> dict[str, Any]:
    """The EIP-712 statement's values for one holder, as zksolv.chain.ownership takes them."""
    ev = doc.evidence
    return {"chain_id": ev.chain_id, "holder": bytes.fromhex(address[2:]),
            "block_number": ev.block_number, "block_hash": bytes.fromhex(ev.block_hash[2:]),
            "epoch": epoch, "operator": operator}


def _save(snap: Any, doc: Any) -> None:
    from zksolv.snapshot import write_reserves_file

    write_reserves_file(snap, doc)


def _signed(doc: Any, operator: bytes, signatures: dict[tuple[str, str], str]) -> Any:
    import msgspec

    from zksolv.reserves_format import with_signatures, without_signatures

    evidence = doc.evidence
    if doc.operator is not None and doc.operator != operator.hex():
        # signatures for another operator key are worthless for this one
        evidence = without_signatures(evidence)
    return msgspec.structs.replace(doc, operator=operator.hex(),
                                   evidence=with_signatures(evidence, signatures))


def _state(snap: Any, doc: Any) -> dict[str, Any]:
    """What reserves.json holds, for people and scripts."""
    from zksolv.reserves_format import token_text

    h = snap.header
    src = h.reserve_sources
    out: dict[str, Any] = {
        "snapshot": str(snap.path), "epoch": h.epoch, "chain_id": src.chain_id,
        "block_window": src.window_length, "fetched": doc is not None,
    }
    if doc is None:
        out["assets"] = [{"symbol": a.symbol, "token": token_text(a.token),
                          "holders": len(a.holders)} for a in src.assets]
        return out
    ev = doc.evidence
    out.update(block_number=ev.block_number, block_hash=ev.block_hash, operator=doc.operator,
               missing=[{"symbol": s, "address": a, "kind": k}
                        for s, a, k in ev.missing_signatures()])
    out["assets"] = [{"symbol": a.symbol, "token": a.token, "total": a.total(),
                      "holdings": [{"address": x.address, "kind": x.kind, "balance": x.balance,
                                    "signed": x.signature is not None} for x in a.holdings]}
                     for a in ev.assets]
    return out


def _echo_state(state: dict[str, Any], decimals: dict[str, int]) -> None:
    from zksolv import units

    win = state["block_window"]
    click.echo(f"reserve sources: chain {state['chain_id']}, "
               + (f"block derived from a window of {win} blocks after the epoch"
                  if win else "block chosen by the operator at fetch (--block N)"))
    if not state["fetched"]:
        for a in state["assets"]:
            click.echo(f"  {a['symbol']}: token {a['token']}, {a['holders']} holder(s)")
        click.echo("evidence: NOT fetched (zksolv reserves fetch SNAPSHOT --rpc URL)")
        return
    click.echo(f"evidence: block {state['block_number']} {state['block_hash']}")
    for a in state["assets"]:
        d = decimals[a["symbol"]]
        click.echo(f"  {a['symbol']} ({a['token']}): {units.format_tokens(a['total'], d)} "
                   f"{a['symbol']} = {a['total']} base units")
        for x in a["holdings"]:
            sig = ("declared (no signature)" if x["kind"] == "declared"
                   else "signed" if x["signed"] else "signature MISSING")
            click.echo(f"    {x['address']} {x['kind']:<8} {x['balance']}  {sig}")
    if state["missing"]:
        click.echo(f"signatures: {len(state['missing'])} missing (zksolv reserves sign / "
                   "typed-data + import); prove refuses until every holder has signed")
    else:
        click.echo(f"signatures: complete, for operator {state['operator']}")


@reserves.command("fetch")
@click.argument("snapshot", type=click.Path())
@click.option("--rpc", required=True, metavar="URL", help=RPC_HELP)
@click.option("--block", type=click.IntRange(0, (1 << 63) - 1), default=None,
              help="Read at this block number: required unless the header names a "
                   "block_window, and refused when it does (the block is then derived from "
                   "the chain, so that nobody picks it).")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True,
              help="Seconds allowed per RPC call.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@reports_errors
def fetch(snapshot: str, rpc: str, block: int | None, timeout: float, as_json: bool,
          quiet: bool) -> None:
    """Read every sourced balance of SNAPSHOT at one block, pinned by its
    hash (EIP-1898), and write the evidence to SNAPSHOT/reserves.json
    (replacing any earlier one: its signatures were for another reading).

    \b
    Exit codes: 0 written; 2 unusable input or an unreachable/hostile node.
    \b
    Examples:
      zksolv reserves fetch run/epoch-000009 --rpc http://127.0.0.1:8545 --block 19000000
      zksolv reserves fetch run/epoch-000009 --rpc http://127.0.0.1:8545   # window in header
    """
    from zksolv.cli.common import progress
    from zksolv.progress import count_progress
    from zksolv.prover.reserves import fetch_reserves

    snap = _open(snapshot)
    h = snap.header
    src = h.reserve_sources
    if block is not None and src.window_length is not None:
        raise InputError("--block", "the header names a block_window: the reserves block is "
                                    "derived from the chain, not chosen (leave --block out)")
    _chain("evidence", "rpc")
    holders = sum(len(a.holders) for a in src.assets)
    status(f"reading {holders} balance(s) of {len(src.assets)} asset(s) from {rpc} ...",
           quiet=quiet or as_json)

    def bar(items: Any, total: int, desc: str) -> Any:
        return progress(items, total=total, desc=desc, quiet=quiet or as_json)

    doc = fetch_reserves(snap, rpc, block=block, timeout=timeout,
                         progress=count_progress(bar, "balances"))
    _save(snap, doc)
    state = _state(snap, doc)
    if as_json:
        echo_json(state)
        return
    _echo_state(state, {a.symbol: a.decimals for a in h.assets})
    click.echo(f"wrote {snap.reserves_path}: now zksolv reserves sign {snapshot} --eth-key FILE")


_operator_options = [
    click.option("--operator", "operator", default=None, metavar="PUBKEY",
                 help="The operator's Ed25519 public key (64 hex digits, or operator.key.pub): "
                      "the signatures name it."),
    click.option("--operator-key", "operator_key", type=click.Path(), default=None,
                 help="Or the operator key file `prove --key` uses (else "
                      "$ZKSOLV_OPERATOR_KEY); only its public key is used."),
]


def _with_operator(fn: Any) -> Any:
    for opt in reversed(_operator_options):
        fn = opt(fn)
    return fn


KEY_SUFFIX = ".key"
MAX_KEY_FILES = 100_000


def _key_files(eth_keys: tuple[str, ...], key_dir: str | None) -> list[str]:
    """--eth-key files, then DIR/*.key (sorted; hidden files and other names
    left out, anything else named *.key must be a key file)."""
    import os

    files = list(eth_keys)
    if key_dir is not None:
        try:
            with os.scandir(key_dir) as it:
                names = sorted(e.name for e in it
                               if e.name.endswith(KEY_SUFFIX) and not e.name.startswith("."))
        except OSError as exc:
            raise InputError(key_dir, f"cannot list: {exc.strerror or exc}") from exc
        if not names:
            raise InputError(key_dir, f"no *{KEY_SUFFIX} file in it")
        if len(names) > MAX_KEY_FILES:
            raise InputError(key_dir, f"{len(names)} key files, more than {MAX_KEY_FILES}")
        files += [os.path.join(key_dir, n) for n in names]
    if not files:
        raise InputError("--eth-key", "give the holders' keys: --eth-key FILE (repeatable) "
                                      "or --eth-key-dir DIR")
    return files


@reserves.command("sign")
@click.argument("snapshot", type=click.Path())
@click.option("--eth-key", "eth_keys", multiple=True, type=click.Path(),
              help="A file holding one holder's secp256k1 private key (64 hex digits, mode "
                   "0600). Repeatable.")
@click.option("--eth-key-dir", "key_dir", type=click.Path(file_okay=False), default=None,
              help="Also every *.key file in this folder (one key each).")
@_with_operator
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@reports_errors
def sign(snapshot: str, eth_keys: tuple[str, ...], key_dir: str | None, operator: str | None,
         operator_key: str | None, as_json: bool) -> None:
    """Sign, with each key given, the ownership statement of every holder of
    SNAPSHOT's evidence whose address is that key's (EIP-712: chain, block,
    epoch, address, operator key), in one pass and one write of
    reserves.json; then say which holders are still unsigned. A key that
    holds nothing is a warning (an error if no key holds anything).

    \b
    Examples:
      zksolv reserves sign run/epoch-000009 --eth-key hot.key --operator operator.key.pub
      zksolv reserves sign run/epoch-000009 --eth-key-dir keys/ --operator operator.key.pub
    """
    ownership = _chain("ownership")
    snap = _open(snapshot)
    doc = _evidence_doc(snap)
    op = _operator(operator, operator_key)
    files = _key_files(eth_keys, key_dir)
    warn = lambda m: click.echo(f"warning: {m}", err=True)  # noqa: E731
    keys: dict[str, tuple[str, bytes]] = {}        # address -> (file, key)
    for path in files:
        key = ownership.load_eth_key(path, warn)
        keys.setdefault("0x" + bytes(ownership.address_of(key)).hex(), (path, key))
    signatures: dict[str, str] = {}                # one statement per holder, whatever the asset
    found: dict[tuple[str, str], str] = {}
    for a in doc.evidence.assets:
        for x in a.holdings:
            if x.address not in keys:
                continue
            if x.kind != "account":
                raise InputError(keys[x.address][0],
                                 f"{x.address} is a {x.kind} holder of {a.symbol}: only "
                                 "accounts sign with a key (a contract: typed-data, then "
                                 "import its EIP-1271 signature)")
            if x.address not in signatures:
                sig = ownership.sign(keys[x.address][1],
                                     **_statement(doc, snap.header.epoch, op, x.address))
                signatures[x.address] = "0x" + bytes(sig).hex()
            found[(a.symbol, x.address)] = signatures[x.address]
    unused = [(path, addr) for addr, (path, _) in keys.items() if addr not in signatures]
    if not found:
        path, addr = unused[0]
        if len(keys) == 1:
            raise InputError(path, f"its address {addr} holds none of the sourced assets "
                                   "(header.json reserve_sources)")
        raise InputError("--eth-key", f"none of the {len(keys)} keys' addresses ({addr}, ...) "
                                      "holds any of the sourced assets (header.json "
                                      "reserve_sources)")
    for path, addr in unused:
        warn(f"{path}: its address {addr} holds none of the sourced assets")
    new = _signed(doc, op, found)
    _save(snap, new)
    state = _state(snap, new)
    if as_json:
        echo_json({**state, "signed": [{"symbol": s, "address": a} for s, a in found],
                   "unused_keys": [{"file": p, "address": a} for p, a in unused]})
        return
    click.echo(f"signed {len(found)} holding(s) of {len(signatures)} address(es) for epoch "
               f"{snap.header.epoch}, operator {op.hex()}")
    _echo_state(state, {a.symbol: a.decimals for a in snap.header.assets})
    missing = state["missing"]
    if missing:
        shown = ", ".join(f"{m['symbol']} {m['address']} ({m['kind']})" for m in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        click.echo(f"still unsigned: {len(missing)} holding(s): {shown}{more}")


@reserves.command("typed-data")
@click.argument("snapshot", type=click.Path())
@click.option("--address", required=True, metavar="0x...",
              help="The holder whose statement to write.")
@_with_operator
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON here (atomically) instead of standard output.")
@reports_errors
def typed_data(snapshot: str, address: str, operator: str | None, operator_key: str | None,
               out: str | None) -> None:
    """Write the EIP-712 typed data (eth_signTypedData_v4 JSON) that holder
    --address signs for SNAPSHOT's evidence: for a hardware wallet or a
    contract's owners. Bring the signature back with `zksolv reserves import`.
    """
    import re

    from zksolv.safeio import write_atomic

    ownership = _chain("ownership")
    snap = _open(snapshot)
    doc = _evidence_doc(snap)
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        raise InputError("--address", "an address is 0x and 40 hex digits")
    addr = address.lower()
    if not any(x.address == addr for a in doc.evidence.assets for x in a.holdings):
        raise InputError("--address", f"{addr} is not a holder in the evidence")
    op = _operator(operator, operator_key)
    data = ownership.typed_data(**_statement(doc, snap.header.epoch, op, addr))
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomic(out, text.encode(), mode=0o644)
    click.echo(f"wrote {out}: sign it with eth_signTypedData_v4, then zksolv reserves import "
               f"{snapshot} SIGS.json", err=True)


@reserves.command("import")
@click.argument("snapshot", type=click.Path())
@click.argument("signatures", metavar="SIGS.json", type=click.Path())
@_with_operator
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@reports_errors
def import_(snapshot: str, signatures: str, operator: str | None, operator_key: str | None,
            as_json: bool) -> None:
    """Add signatures made elsewhere (from typed-data) to SNAPSHOT's
    evidence. SIGS.json: {"signatures": [{"address": "0x...", "signature":
    "0x..."}]}. An account's signature must recover to its address for this
    epoch and operator (else nothing is written); a contract's is checked
    by its EIP-1271 call (reserves check --rpc, verify --rpc).
    """
    from zksolv.reserves_format import (
        MAX_SIGNATURES_BYTES,
        SignaturesFile,
        signed_only,
        to_evidence,
    )
    from zksolv.safeio import decode_json, read_bounded

    evidence_mod = _chain("evidence")
    snap = _open(snapshot)
    doc = _evidence_doc(snap)
    op = _operator(operator, operator_key)
    data, _ = read_bounded(signatures, MAX_SIGNATURES_BYTES, what="signatures file")
    sigs = decode_json(data, SignaturesFile,
                       fail=lambda why: InputError(signatures, why.replace("`", "'")))
    kinds = {(x.address): x.kind for a in doc.evidence.assets for x in a.holdings}
    found: dict[tuple[str, str], str] = {}
    for i, s in enumerate(sigs.signatures):
        addr = s.address.lower()
        if addr not in kinds:
            raise InputError(f"{signatures}: signatures[{i}]", f"{addr} is not a holder in the "
                                                                "evidence")
        if kinds[addr] == "declared":
            raise InputError(f"{signatures}: signatures[{i}]", f"{addr} is declared: it takes "
                                                                "no signature")
        for a in doc.evidence.assets:
            for x in a.holdings:
                if x.address == addr:
                    found[(a.symbol, addr)] = s.signature.lower()
    try:
        new = _signed(doc, op, found)
    except ValueError as exc:  # HoldingJSON: a signature of the wrong size for its holder
        raise InputError(signatures, f"unusable signature: {exc}") from exc
    findings = evidence_mod.check_offline(to_evidence(signed_only(new.evidence)),
                                          epoch=snap.header.epoch, operator=op)
    if findings:
        f = findings[0]
        raise InputError(signatures, f"{f.where}: {f.detail} (nothing written)")
    _save(snap, new)
    state = _state(snap, new)
    if as_json:
        echo_json({**state, "imported": len(found)})
        return
    click.echo(f"imported {len(found)} signature(s)")
    _echo_state(state, {a.symbol: a.decimals for a in snap.header.assets})


@reserves.command("check")
@click.argument("snapshot", type=click.Path())
@click.option("--rpc", default=None, metavar="URL",
              help="Also re-read every balance, the block hash and the contract signatures "
                   "from this node.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@reports_errors
def check(snapshot: str, rpc: str | None, as_json: bool) -> None:
    """Say what SNAPSHOT's reserve evidence holds: sources, the block read,
    each holding's balance and whether it is signed; with --rpc, whether the
    node agrees. Writes nothing.

    \b
    Exit codes: 0 complete (and, with --rpc, the node agrees); 1 the node
                disagrees or a signature does not recover; 2 unusable input
                or incomplete evidence (missing signatures, nothing fetched).
    """
    from zksolv.reserves_format import signed_only, to_evidence
    from zksolv.snapshot import evidence_problem

    snap = _open(snapshot)
    doc = snap.load_reserves()
    if doc is not None and evidence_problem(snap.header, doc) is not None:
        raise InputError(str(snap.reserves_path),
                         f"{evidence_problem(snap.header, doc)}: fetch again (zksolv "
                         "reserves fetch SNAPSHOT --rpc URL)")
    state = _state(snap, doc)
    findings: list[Any] = []
    if doc is not None and (doc.operator is not None or rpc is not None):
        evidence_mod = _chain("evidence")
        # no operator yet: no signature either, so none is checked (the key
        # only enters the statement the signatures are checked against)
        op = bytes(32) if doc.operator is None else bytes.fromhex(doc.operator)
        # the missing signatures are listed above, not reported as failures
        unsigned = {evidence_mod.holder_where(sym, bytes.fromhex(addr[2:]))
                    for sym, addr, _ in doc.evidence.missing_signatures()}
        found = list(evidence_mod.check_offline(to_evidence(signed_only(doc.evidence)),
                                                epoch=snap.header.epoch, operator=op))
        if rpc is not None:
            with _chain("rpc").RpcClient(rpc) as client:
                found += evidence_mod.check_node(client, to_evidence(doc.evidence),
                                                 epoch=snap.header.epoch, operator=op,
                                                 epoch_timestamp=snap.header.timestamp)
        seen: set[tuple[str, str, str]] = set()
        for f in found:
            key = (f.tag, f.where, f.detail)
            if key in seen or (f.tag == "reserves-signature" and f.where in unsigned):
                continue
            seen.add(key)
            findings.append(f)
    state["findings"] = [{"tag": f.tag, "where": f.where, "detail": f.detail} for f in findings]
    state["node_checked"] = rpc is not None and doc is not None
    if as_json:
        echo_json(state)
    else:
        _echo_state(state, {a.symbol: a.decimals for a in snap.header.assets})
        for f in findings:
            click.echo(f"FAILED {f.tag}: {f.where}: {f.detail}")
        if rpc is not None and doc is not None and not findings:
            click.echo("node: chain id, block hash and every balance agree")
    if findings:
        sys.exit(1)
    if doc is None or state.get("missing"):
        sys.exit(2)
