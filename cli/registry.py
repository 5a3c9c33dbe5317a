"""``zksolv registry`` (deploy, register, check) and ``zksolv publish``: the
public log of bundles on chain (docs/registry.md). Transactions are signed
here, with the key file given, and sent to the node given; nothing is signed
by the node."""

from __future__ import annotations

import sys
from typing import Any

import click

from zksolv.cli.common import backend_of, echo_json, reports_errors
from zksolv.errors import InputError, VerificationError, ZksolvError

RPC_HELP = "The Ethereum JSON-RPC node (http:// or https://)."
WAIT_HELP = "Seconds to wait for the transaction's receipt."


def _rpc(url: str, timeout: float) -> Any:
    from zksolv import chain
    from zksolv.chain.rpc import RpcClient
    from zksolv.errors import ChainExtraMissing

    if not chain.available():
        raise ChainExtraMissing("zksolv registry and zksolv publish")
    return RpcClient(url, timeout=timeout)


def _registry(url: str, address: str, timeout: float) -> Any:
    from zksolv.chain import registry as reg

    return reg.Registry(_rpc(url, timeout), reg.parse_address(address, "--registry"))


def registry_client(url: str, address: str, timeout: float = 30.0) -> Any:
    """The registry at ``address`` through the node at ``url`` (zksolv verify
    --registry)."""
    return _registry(url, address, timeout)


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _eth_key(path: str) -> bytes:
    from zksolv.chain.ownership import load_eth_key

    return load_eth_key(path, warn=_warn)


def _gas(receipt: dict[str, Any]) -> str:
    used = receipt.get("gasUsed")
    return str(int(used, 16)) if isinstance(used, str) and used.startswith("0x") else "?"


def _common(fn: Any) -> Any:
    fn = click.option("--timeout", type=click.FloatRange(0.1, 600), default=30.0,
                      show_default=True, help="Seconds allowed for each call to the node.")(fn)
    return click.option("--rpc", "rpc_url", required=True, metavar="URL", help=RPC_HELP)(fn)


@click.group()
def registry() -> None:
    """The on-chain registry of bundles: one per operator and epoch.

    \b
      zksolv registry deploy --rpc URL --eth-key FILE            # once, anyone
      zksolv registry register --rpc URL --registry ADDR --eth-key FILE --key operator.key
      zksolv publish BUNDLE --rpc URL --registry ADDR --eth-key FILE   # each epoch
      zksolv registry check BUNDLE --rpc URL --registry ADDR     # anyone
      zksolv registry prove-solvent BUNDLE --rpc URL --registry ADDR --eth-key FILE
      zksolv registry history --operator PUBKEY --rpc URL --registry ADDR  # no bundle needed

    What it adds and what it does not: `zksolv docs registry`, `zksolv docs auditing`.
    """


@registry.command()
@_common
@click.option("--eth-key", "eth_key", required=True, type=click.Path(dir_okay=False),
              help="File holding the deploying account's private key (hex, mode 0600).")
@click.option("--wait", type=click.FloatRange(1, 3600), default=120.0, show_default=True,
              help=WAIT_HELP)
@reports_errors
def deploy(rpc_url: str, timeout: float, eth_key: str, wait: float) -> None:
    """Deploy the registry and solvency verifier contracts shipped with zksolv.

    Prints the registry's address: what publish, check and the holders need.
    """
    from zksolv.chain import registry as reg

    rpc = _rpc(rpc_url, timeout)
    address, verifier, gas = reg.deploy(rpc, _eth_key(eth_key), wait=wait)
    click.echo(f"registry deployed at {reg.hex_address(address)} on {rpc.url}, with its "
               f"solvency verifier at {reg.hex_address(verifier)} (gas {gas})")


@registry.command()
@_common
@click.option("--registry", "registry_address", required=True, metavar="ADDR",
              help="The registry contract's address.")
@click.option("--eth-key", "eth_key", required=True, type=click.Path(dir_okay=False),
              help="File holding the operator account's private key (hex, mode 0600).")
@click.option("--key", "key", type=click.Path(), default=None,
              help="The operator key file (zksolv keygen); default $ZKSOLV_OPERATOR_KEY.")
@click.option("--wait", type=click.FloatRange(1, 3600), default=120.0, show_default=True,
              help=WAIT_HELP)
@reports_errors
def register(rpc_url: str, timeout: float, registry_address: str, eth_key: str,
             key: str | None, wait: float) -> None:
    """Bind the account of --eth-key to the operator key that signs the bundles.

    The operator key signs the binding statement (chain id, registry, account;
    docs/registry.md) and the account stores it on the registry, once.
    """
    from zksolv.chain import registry as reg
    from zksolv.prover import keys

    r = _registry(rpc_url, registry_address, timeout)
    r.check_code()
    eth = _eth_key(eth_key)
    me = reg.eth_address(eth)
    signer = keys.signing_key(keys.load_master_key(key, warn=_warn))
    public = keys.public_key_bytes(signer)
    existing = r.binding(me)
    if existing is not None:
        if existing.key != public:
            raise InputError("--eth-key", f"{reg.hex_address(me)} is already registered on "
                             f"this registry with operator key {existing.key.hex()}; a "
                             "registration never changes: use another account")
        click.echo(f"{reg.hex_address(me)} is already registered with operator key "
                   f"{public.hex()} (block {existing.block}): nothing to do")
        return
    statement = reg.binding_statement(r.chain_id(), r.address, me)
    receipt = r.register(eth, public, signer.sign(statement), wait=wait)
    click.echo(f"registered {reg.hex_address(me)} for operator key {public.hex()} on "
               f"registry {reg.hex_address(r.address)} (block "
               f"{int(receipt['blockNumber'], 16)}, gas {_gas(receipt)})")


@click.command()
@click.argument("bundle", type=click.Path())
@_common
@click.option("--registry", "registry_address", required=True, metavar="ADDR",
              help="The registry contract's address.")
@click.option("--eth-key", "eth_key", required=True, type=click.Path(dir_okay=False),
              help="File holding the registered operator account's private key (hex, 0600).")
@click.option("--wait", type=click.FloatRange(1, 3600), default=120.0, show_default=True,
              help=WAIT_HELP)
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=None,
              help="Worker processes for verifying the bundle first (default: all cores).")
@click.option("--prove-solvent", is_flag=True,
              help="Also check the solvency proofs on chain and record the entry solvent "
                   "(millions of gas: docs/onchain-verifier.md).")
@click.pass_context
@reports_errors
def publish(ctx: click.Context, bundle: str, rpc_url: str, timeout: float,
            registry_address: str, eth_key: str, wait: float, jobs: int | None,
            prove_solvent: bool) -> None:
    """Post BUNDLE to the registry as its operator's bundle for its epoch.

    The bundle is verified in full first. Refused, naming both hashes, if the
    account already posted another bundle for that epoch; re-running it for
    the same bundle does nothing. With --prove-solvent the registry then checks
    the bundle's solvency proofs itself and records "solvent" for the entry.
    Exit 0 posted (or already posted), 1 another bundle is posted for the
    epoch or BUNDLE does not verify, 2 unusable input or node.
    """
    import os

    from zksolv.chain import registry as reg
    from zksolv.verifier.bundle import verify_bundle
    from zksolv.verifier.registry import bundle_post, read_signed_manifest

    r = _registry(rpc_url, registry_address, timeout)
    eth = _eth_key(eth_key)
    me = reg.eth_address(eth)
    r.check_code()
    binding = r.binding(me)
    if binding is None:
        raise InputError("--eth-key", f"{reg.hex_address(me)} is not registered on this "
                         "registry: zksolv registry register first")
    report = verify_bundle(bundle, backend=backend_of(ctx), jobs=jobs or os.cpu_count() or 1)
    if binding.key != report.operator:
        raise InputError(bundle, f"signed by operator key {report.operator.hex()}, but "
                         f"{reg.hex_address(me)} is registered for {binding.key.hex()}")
    if not reg.binding_signature_valid(binding.key, binding.signature, r.chain_id(),
                                       r.address, me):
        raise InputError("--eth-key", f"{reg.hex_address(me)}'s registration carries no "
                         "valid signature of the operator key: verifiers ignore its posts")
    epoch = report.epoch
    parsed, _ = read_signed_manifest(bundle)
    post = bundle_post(parsed)
    posted = r.entry(me, epoch)
    if posted is not None:
        if posted.matches(post):
            click.echo(f"epoch {epoch}: bundle {report.bundle_hash.hex()} is already posted "
                       f"by {reg.hex_address(me)} (block {posted.block})"
                       + ("" if prove_solvent else ": nothing to do"))
            if prove_solvent:
                _prove_solvent(r, eth, me, bundle, posted, wait)
            return
        raise VerificationError(
            "registry-mismatch",
            f"epoch {epoch} already has bundle {posted.bundle_hash.hex()} posted by "
            f"{reg.hex_address(me)} (block {posted.block}); refusing to post "
            f"{report.bundle_hash.hex()}: one bundle per epoch, and entries never change")
    latest = r.latest_epoch(me)
    if latest is not None:
        last = r.entry(me, latest)
        if epoch < latest:
            raise InputError(bundle, f"epoch {epoch} is before {reg.hex_address(me)}'s latest "
                             f"post, epoch {latest}: epochs only increase")
        if last is not None and (report.prev_bundle_hash != last.bundle_hash
                                 or report.prev_epoch != latest):
            linked = report.prev_bundle_hash.hex() if report.prev_bundle_hash else "no bundle"
            raise InputError(bundle, f"links to epoch {report.prev_epoch} ({linked}), "
                             f"but the latest post is epoch {latest} "
                             f"({last.bundle_hash.hex()}): every post links to the one before")
    receipt = r.post(eth, post, wait=wait)
    gap = report.gap
    click.echo(f"posted epoch {epoch}: bundle {report.bundle_hash.hex()} by "
               f"{reg.hex_address(me)} on registry {reg.hex_address(r.address)} (block "
               f"{int(receipt['blockNumber'], 16)}, gas {_gas(receipt)})"
               + (f"; it declares epochs {gap[0]}..{gap[1]} not proven solvent" if gap else ""))
    if prove_solvent:
        entry = r.entry(me, epoch)
        assert entry is not None
        _prove_solvent(r, eth, me, bundle, entry, wait)


def _prove_solvent(r: Any, eth: bytes, operator: bytes, bundle: str, entry: Any,
                   wait: float) -> None:
    from zksolv.chain import registry as reg
    from zksolv.verifier.registry import verify_call

    if entry.solvent:
        click.echo(f"epoch {entry.epoch}: already recorded solvent on chain: nothing to do")
        return
    call = verify_call(bundle)
    args = [call.header, call.roots, call.solvency, call.points, call.gens]
    receipt = r.prove_solvent(eth, operator, entry.epoch, args, wait=max(wait, 600.0))
    click.echo(f"epoch {entry.epoch}: solvency proofs checked on chain and recorded for "
               f"{reg.hex_address(operator)} (block {int(receipt['blockNumber'], 16)}, gas "
               f"{_gas(receipt)})")


@registry.command("prove-solvent")
@click.argument("bundle", type=click.Path())
@_common
@click.option("--registry", "registry_address", required=True, metavar="ADDR",
              help="The registry contract's address.")
@click.option("--eth-key", "eth_key", required=True, type=click.Path(dir_okay=False),
              help="File holding the private key of the account that pays (any account).")
@click.option("--wait", type=click.FloatRange(1, 3600), default=600.0, show_default=True,
              help=WAIT_HELP)
@reports_errors
def prove_solvent_command(bundle: str, rpc_url: str, timeout: float, registry_address: str,
                          eth_key: str, wait: float) -> None:
    """Have the registry check BUNDLE's solvency proofs on chain.

    Anyone may send it, for a bundle that is posted (registry check passes):
    the registry verifies the per-asset and valued solvency proofs against the
    posted header digest, root hash and root commitments, and records the
    entry solvent (isSolvent(operator, epoch) then answers true).
    """
    from zksolv.verifier.registry import check_bundle

    r = _registry(rpc_url, registry_address, timeout)
    report = check_bundle(bundle, r)
    eth = _eth_key(eth_key)
    for e in report.posts:
        _prove_solvent(r, eth, e.operator, bundle, e, wait)


@registry.command()
@click.argument("bundle", type=click.Path())
@_common
@click.option("--registry", "registry_address", required=True, metavar="ADDR",
              help="The registry contract's address.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@reports_errors
def check(bundle: str, rpc_url: str, timeout: float, registry_address: str,
          as_json: bool) -> None:
    """Check that BUNDLE is the bundle its operator posted for its epoch.

    The manifest's signature is checked, then the registry: the operator key
    is bound to an account by a valid signature, that account posted this
    bundle for the epoch, and no account bound to the key posted another one
    or another branch of the chain. The proofs are not checked here
    (zksolv verify). Exit 0 posted, 1 a check failed (its tag: registry-missing,
    registry-mismatch, registry-binding, registry-chain, registry-code), 2
    unusable input or an unreachable node.
    """
    from zksolv.chain import registry as reg
    from zksolv.verifier.registry import NOT_CHECKED, check_bundle

    try:
        report = check_bundle(bundle, _registry(rpc_url, registry_address, timeout))
    except ZksolvError as exc:
        if as_json:
            out: dict[str, Any] = {"posted": False, "exit_code": exc.exit_code,
                                   "error": str(exc)}
            if isinstance(exc, VerificationError):
                out["check"] = exc.check
                out["detail"] = exc.detail
            echo_json(out)
            sys.exit(exc.exit_code)
        raise
    if as_json:
        echo_json({"posted": True, **report.to_json()})
        return
    for e in report.posts:
        click.echo(f"posted: epoch {report.epoch}, bundle {report.bundle_hash.hex()}, by "
                   f"{reg.hex_address(e.operator)} (block {e.block}) on registry "
                   f"{reg.hex_address(report.registry)}, chain {report.chain_id}")
    gap = report.gap
    if gap is not None:
        click.echo(f"gap: the bundle declares epochs {gap[0]}..{gap[1]} NOT proven solvent "
                   "(posted as such)")
    click.echo("solvency proofs checked on chain by the registry: "
               + ("yes (isSolvent)" if report.solvent_on_chain else
                  "no (zksolv registry prove-solvent records it)"))
    click.echo(f"operator key {report.operator.hex()} bound to "
               f"{', '.join(reg.hex_address(a) for a in report.bound)}; no other bundle or "
               "branch posted for it")
    if report.unbound:
        click.echo(f"ignored: {len(report.unbound)} registration(s) of this key without a "
                   "valid binding signature: "
                   + ", ".join(reg.hex_address(a) for a in report.unbound[:5]))
    click.echo("not checked: " + "; ".join(NOT_CHECKED))


@registry.command()
@_common
@click.option("--registry", "registry_address", required=True, metavar="ADDR",
              help="The registry contract's address.")
@click.option("--operator", "operator", required=True, metavar="PUBKEY",
              help="The operator's Ed25519 public key (64 hex digits, operator.key.pub).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@reports_errors
def history(rpc_url: str, timeout: float, registry_address: str, operator: str,
            as_json: bool) -> None:
    """Every post of an operator, from the chain alone; split views flagged.

    Reads the accounts validly bound to the operator key and walks each one's
    posts back along their links. Two bundles for one epoch
    (registry-mismatch) or a post inside an epoch range another post declares
    not proven (registry-chain) exit 1; no bundle is needed.
    """
    from zksolv.chain import registry as reg
    from zksolv.verifier.bundle import parse_operator_key
    from zksolv.verifier.registry import history as read_history

    key = parse_operator_key(operator)
    h = read_history(_registry(rpc_url, registry_address, timeout), key)
    if as_json:
        echo_json({"consistent": not h.conflicts, **h.to_json()})
    else:
        click.echo(f"operator key {key.hex()}: {len(h.bound)} bound account(s)"
                   + (f", {len(h.unbound)} registration(s) without a valid signature ignored"
                      if h.unbound else ""))
        for address, entries in h.posts.items():
            click.echo(f"{reg.hex_address(address)}: {len(entries)} post(s)")
            for e in reversed(entries):
                gap = (f", declares epochs {e.prev_epoch + 1}..{e.epoch - 1} not proven"
                       if e.gap and e.prev_epoch is not None else "")
                solvent = ", solvent on chain" if e.solvent else ""
                click.echo(f"  epoch {e.epoch}: bundle {e.bundle_hash.hex()} (block "
                           f"{e.block}{gap}{solvent})")
        for tag, _, detail in h.conflicts:
            click.echo(f"{tag}: {detail}")
        if not h.conflicts:
            click.echo("consistent: one bundle per epoch, one history")
    if h.conflicts:
        sys.exit(1)
