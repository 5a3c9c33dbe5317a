"""``zksolv keygen | prove | verify | inclusion``: thin commands over
``zksolv.prover`` and ``zksolv.verifier``. Exit codes: 0 ok, 1 invalid,
2 unusable input, 3 insolvent."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from zksolv.cli.common import backend_of, echo_json, progress, reports_errors
from zksolv.errors import InputError, VerificationError, ZksolvError


def _bar(quiet: bool) -> Any:
    def bar(items: Iterable[Any], total: int, desc: str) -> Iterable[Any]:
        return progress(items, total=total, desc=desc, quiet=quiet)

    return bar


@click.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Key file to create (mode 0600; never overwritten).")
@reports_errors
def keygen(out: str) -> None:
    """Create an operator master secret (32 random bytes, hex, mode 0600).

    The secret derives each account's per-epoch salt and the keyed shuffle
    of leaf positions. Keep it private and keep it: without it no later
    epoch links to the same salts. Refuses to overwrite an existing file.

    \b
    Example:
      zksolv keygen --out operator.key
    """
    from zksolv.prover.keys import write_master_key

    p = write_master_key(out)
    click.echo(f"wrote operator key {p} (mode 0600); keep it secret, keep a backup")


@click.command()
@click.argument("snapshot", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(), help="Bundle directory to create.")
@click.option("--prev", type=click.Path(), default=None, help="Previous epoch's bundle (chains).")
@click.option("--key", "key", type=click.Path(), default=None,
              help="Operator key file (else $ZKSOLV_OPERATOR_KEY).")
@click.option("--reveal-totals", is_flag=True, help="Publish total liabilities and their openings.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores).")
@click.option("--inclusion-db", type=click.Path(), default=None,
              help="Private inclusion database (default: OUT.inclusion.sqlite next to OUT).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
@reports_errors
def prove(ctx: click.Context, snapshot: str, out: str, prev: str | None, key: str | None,
          reveal_totals: bool, jobs: int | None, inclusion_db: str | None, quiet: bool) -> None:
    """Prove the epoch in SNAPSHOT solvent and write a public bundle to OUT.

    SNAPSHOT is a directory with header.json and accounts.csv (see
    docs/snapshot-format.md; `zksolv simulate` writes them). The snapshot is
    checked in full before any proving. The bundle is built in a temporary
    directory, verified, then renamed into place; the private inclusion
    database goes next to it (or to --inclusion-db).

    \b
    Exit codes: 0 bundle written; 2 bad input (file:line:field named);
                3 insolvent (shortfall per asset shown, nothing written).
    \b
    Example:
      zksolv prove run/epoch-000002 --out bundles/2 --prev bundles/1 --key operator.key
    """
    from zksolv.prover.epoch import prove_epoch
    from zksolv.prover.keys import load_master_key

    master = load_master_key(key)
    res = prove_epoch(
        snapshot, out, master_key=master, prev=prev, reveal_totals=reveal_totals,
        jobs=jobs or os.cpu_count() or 1, inclusion_db=inclusion_db,
        backend=backend_of(ctx), progress=_bar(quiet),
    )
    if not quiet:
        click.echo(
            f"epoch {res.epoch}: {res.accounts} accounts in 2^{res.depth} leaves, "
            f"{res.shards} range-proof shards, {res.bundle_bytes} bytes, {res.seconds:.1f} s"
        )
        click.echo(f"bundle     {res.bundle}  (hash {res.bundle_hash.hex()})")
        click.echo(f"inclusion  {res.inclusion_db}  (private: do not publish)")


def _fail_json(exc: ZksolvError) -> None:
    out: dict[str, Any] = {"valid": False, "exit_code": exc.exit_code, "error": str(exc)}
    if isinstance(exc, VerificationError):
        out["check"] = exc.check
        out["detail"] = exc.detail
    echo_json(out)
    sys.exit(exc.exit_code)


@click.command()
@click.argument("bundle", type=click.Path())
@click.option("--chain", "chain", multiple=True, type=click.Path(),
              help="Earlier bundles, oldest first; BUNDLE is the newest link. Repeatable.")
@click.option("--epoch", "epoch", type=int, default=None, help="Require this epoch number.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes for the range proofs (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
@reports_errors
def verify(ctx: click.Context, bundle: str, chain: tuple[str, ...], epoch: int | None,
           jobs: int | None, as_json: bool, quiet: bool) -> None:
    """Verify BUNDLE (and the chain of earlier bundles given with --chain).

    Needs no secret and none of the prover's code: checks every file's hash,
    decodes strictly, recomputes every tree node from the leaf commitments,
    batch-verifies every range proof and the solvency proofs against the
    header, and with --chain checks that epochs are consecutive and linked.

    \b
    Exit codes: 0 valid; 1 invalid (the first failing check is named);
                2 unusable input.
    \b
    Example:
      zksolv verify bundles/3 --chain bundles/1 --chain bundles/2 --json
    """
    from zksolv.verifier import verify_bundle, verify_chain

    backend = backend_of(ctx)
    jobs = jobs or os.cpu_count() or 1
    try:
        if chain:
            reports = verify_chain([*chain, bundle], backend=backend, jobs=jobs,
                                   progress=_bar(quiet))
            if epoch is not None and reports[-1].epoch != epoch:
                raise VerificationError(
                    "epoch-mismatch", f"bundle is epoch {reports[-1].epoch}, expected {epoch}"
                )
        else:
            reports = [verify_bundle(bundle, backend=backend, expect_epoch=epoch, jobs=jobs,
                                     progress=_bar(quiet))]
    except ZksolvError as exc:
        if as_json:
            _fail_json(exc)
        raise
    if as_json:
        echo_json({"valid": True, "bundles": [r.to_json() for r in reports]})
        return
    for r in reports:
        click.echo(
            f"valid: epoch {r.epoch}, {', '.join(r.symbols)}, 2^{r.depth} leaves, "
            f"{r.shards} shards, root {r.root_hash.hex()[:16]}…, {r.seconds:.2f} s"
        )
    if len(reports) > 1:
        click.echo(f"chain valid: epochs {reports[0].epoch}..{reports[-1].epoch}, each linked")
    click.echo("solvent: reserves cover liabilities per asset and in value")


@click.group()
def inclusion() -> None:
    """Per-account inclusion proofs: the operator exports one per account;
    the account holder verifies it against the published bundle or root."""


@inclusion.command("export")
@click.option("--db", "db", required=True, type=click.Path(), help="Inclusion database.")
@click.option("--account", required=True, help="Account id.")
@click.option("--out", "out", type=click.Path(), default=None, help="Output file (default stdout).")
@reports_errors
def export(db: str, account: str, out: str | None) -> None:
    """Write ACCOUNT's inclusion proof as JSON (private to that holder: it
    holds their amounts, blindings and salt).

    \b
    Example:
      zksolv inclusion export --db bundles/3.inclusion.sqlite --account alice --out alice.json
    """
    from zksolv.prover.inclusion_db import InclusionDB
    from zksolv.verifier.inclusion import InclusionDocument

    store = InclusionDB.open(db)
    try:
        proof = store.export(account)
        symbols = tuple(json.loads(store.meta("symbols")))
    finally:
        store.close()
    text = json.dumps(InclusionDocument(proof, symbols).to_json(), separators=(",", ":")) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    p = Path(out)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, p)


def _parse_expect(items: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for it in items:
        sym, sep, amt = it.partition("=")
        if not sep or not sym or not amt.isdigit():
            raise InputError("--expect", f"{it!r}: use SYMBOL=AMOUNT (base units)")
        out[sym] = int(amt)
    return out


@inclusion.command("verify")
@click.argument("proof", type=click.Path())
@click.option("--bundle", type=click.Path(), default=None,
              help="The epoch's bundle (verified in full).")
@click.option("--root", "root", default=None, help="Root hash (hex) instead of a bundle.")
@click.option("--expect", multiple=True, help="SYMBOL=AMOUNT you expect to be owed. Repeatable.")
@click.option("--account", default=None, help="Your account id.")
@click.option("--epoch", type=int, default=None, help="The epoch you expect.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.pass_context
@reports_errors
def verify_inclusion_cmd(ctx: click.Context, proof: str, bundle: str | None, root: str | None,
                         expect: tuple[str, ...], account: str | None, epoch: int | None,
                         as_json: bool) -> None:
    """Check that PROOF's balance is in the epoch's tree and counted in full.

    Checks that the opening matches the leaf commitment, that the path's
    sums and hashes reach the root, and (with --expect) that the amounts are
    what you are owed. With --bundle the bundle is verified in full, which
    proves every sibling subtree on your path non-negative (their leaves are
    range-proved); with --root only, that part is reported as unchecked.

    \b
    Exit codes: 0 included; 1 not included or not as expected; 2 bad input.
    \b
    Example:
      zksolv inclusion verify alice.json --bundle bundles/3 --expect USDC=1250000
    """
    from zksolv.verifier.inclusion import load_document, verify_inclusion

    try:
        if (bundle is None) == (root is None):
            raise InputError("inclusion verify", "give exactly one of --bundle DIR or --root HEX")
        root_hash = None
        if root is not None:
            try:
                root_hash = bytes.fromhex(root)
            except ValueError as exc:
                raise InputError("--root", "not hex") from exc
            if len(root_hash) != 32:
                raise InputError("--root", "a root hash is 32 bytes (64 hex digits)")
        report = verify_inclusion(
            load_document(proof), bundle=bundle, root_hash=root_hash, epoch=epoch,
            account_id=account, expect=_parse_expect(expect), backend=backend_of(ctx),
            jobs=os.cpu_count() or 1,
        )
    except ZksolvError as exc:
        if as_json:
            _fail_json(exc)
        raise
    if as_json:
        echo_json(report.to_json())
        return
    amounts = ", ".join(f"{s}={v}" for s, v in report.amounts.items())
    click.echo(f"valid: account {report.account_id!r} is in epoch {report.epoch} ({amounts})")
    click.echo(f"root {report.root_hash.hex()}")
    if report.bundle is not None:
        b = report.bundle
        click.echo(
            f"bundle verified in full: your leaf is in range-proof shard "
            f"{b.shard_of_leaf(report.leaf_index)}; every sibling on your path is a subtree of "
            f"leaves range-proved non-negative (shards listed with --json) and every node was "
            "recomputed from those leaves, so nothing on your path subtracts from your balance"
        )
    else:
        click.echo(
            "root reached; sibling non-negativity NOT checked: pass --bundle DIR to verify "
            "the leaf range proofs that cover your path"
        )


