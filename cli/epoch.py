"""``zksolv keygen | prove | verify | inclusion``: thin commands over
``zksolv.prover`` and ``zksolv.verifier``. Exit codes: 0 ok, 1 invalid,
2 unusable input, 3 insolvent."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from zksolv.cli.common import backend_of, echo_json, progress, reports_errors, status
from zksolv.errors import InputError, VerificationError, ZksolvError
from zksolv.executors import SCHEDULER_HELP, make_executor


def _bar(quiet: bool) -> Any:
    def bar(items: Iterable[Any], total: int, desc: str) -> Iterable[Any]:
        return progress(items, total=total, desc=desc, quiet=quiet)

    return bar


@click.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Key file to create (mode 0600; never overwritten).")
@reports_errors
def keygen(out: str) -> None:
    """Create an operator master secret (32 random bytes, hex, mode 0600)
    and OUT.pub, the operator's public signing key.

    The secret derives each account's per-epoch salt, the keyed shuffle of
    leaf positions and the Ed25519 key that signs every bundle. Keep it
    private and keep it: a chain of bundles has one operator key. Publish
    OUT.pub: auditors and account holders pin it with --operator. Refuses to
    overwrite an existing file.

    \b
    Example:
      zksolv keygen --out operator.key      # writes operator.key and operator.key.pub
    """
    from zksolv.prover.keys import public_key_path, write_master_key

    p, public = write_master_key(out)
    click.echo(f"wrote operator key {p} (mode 0600); keep it secret, keep a backup")
    click.echo(f"operator public key {public.hex()} (in {public_key_path(p)}); publish it")


@click.command()
@click.argument("snapshot", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(), help="Bundle directory to create.")
@click.option("--prev", type=click.Path(), default=None,
              help="Previous epoch's bundle (chains): must verify, be epoch N-1 and be signed "
                   "by the same key.")
@click.option("--allow-gap", "allow_gap", is_flag=True,
              help="Let --prev be any earlier epoch, the last one proven solvent (after an "
                   "epoch was refused or never proven): the epochs between were NOT proven "
                   "solvent, and the new bundle's signed header says so (prev_epoch), so "
                   "every verifier lists them.")
@click.option("--key", "key", type=click.Path(), default=None,
              help="Operator key file (else $ZKSOLV_OPERATOR_KEY).")
@click.option("--reveal-totals", is_flag=True, help="Publish total liabilities and their openings.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores).")
@click.option("--inclusion-db", type=click.Path(), default=None,
              help="Private inclusion database to create (default: in $ZKSOLV_DATA_DIR, "
                   "else ~/.local/share/zksolv/inclusion/, never beside the bundle).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run of this epoch from its work area (same leaf "
                   "positions, salts and blindings; shards already proven are kept). Refused "
                   "if the snapshot, key, previous bundle or options changed. Without a work "
                   "area, starts afresh.")
@click.option("--work-dir", type=click.Path(), default=None,
              help="Private work area (mode 0700) where each proven shard is kept until the "
                   "bundle is published (default: OUT.work next to OUT).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help=SCHEDULER_HELP)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
@reports_errors
def prove(ctx: click.Context, snapshot: str, out: str, prev: str | None, allow_gap: bool,
          key: str | None, reveal_totals: bool, jobs: int | None, inclusion_db: str | None,
          resume: bool, work_dir: str | None, scheduler: str | None, quiet: bool) -> None:
    """Prove the epoch in SNAPSHOT solvent and write a public bundle to OUT.

    SNAPSHOT is a directory with header.json and accounts.csv (see
    docs/snapshot-format.md; `zksolv simulate` writes them). The snapshot is
    checked in full before any proving. The bundle is built in a temporary
    directory, verified, then renamed into place, world-readable. The
    private inclusion database (every balance, blinding and salt; mode 0600)
    goes to --inclusion-db, by default to the zksolv data directory
    ($ZKSOLV_DATA_DIR, else ~/.local/share/zksolv/inclusion/), never beside
    the bundle, so a folder of bundles can be published as it is. Its path
    is printed at the end.

    Amounts are proven in each asset's proof units (header.json
    "proof_decimals", default its decimals): liabilities rounded up, reserves
    down (docs/snapshot-format.md).

    The manifest is signed with the operator key; --prev must be a bundle
    that verifies, one epoch earlier, signed by the same key. After a refused
    epoch, --prev LAST --allow-gap continues the chain from the last epoch
    proven solvent: the new bundle's header names that epoch, so the bundle
    itself declares the epochs between NOT proven solvent (`zksolv watch`
    does this on its own).

    Shards run on local worker processes (--jobs), or with --scheduler on a
    dask.distributed cluster. Workers receive the openings (amounts,
    blindings) of the shards they prove: a cluster's workers must be the
    operator's own machines; use a tls:// scheduler across a network.

    Each proven shard is kept in a private work area (OUT.work, 0700) until
    the bundle is published. After a crash, a kill or Ctrl-C, rerun the same
    command with --resume to continue where it stopped.

    \b
    Exit codes: 0 bundle written; 2 bad input (file:line:field named);
                3 insolvent (shortfall per asset shown, nothing written);
                130 interrupted (work kept: rerun with --resume).
    \b
    Examples:
      zksolv prove run/epoch-000002 --out bundles/2 --prev bundles/1 --key operator.key
      zksolv prove run/epoch-000002 --out bundles/2 --prev bundles/1 --key operator.key --resume
      zksolv prove run/epoch-000005 --out bundles/5 --prev bundles/3 --allow-gap \\
          --key operator.key                   # epoch 4 was refused: a declared gap
      zksolv prove run/epoch-000002 --out bundles/2 --key operator.key \\
          --scheduler tls://prover-0.internal:8786
    """
    from zksolv.prover.epoch import prove_epoch
    from zksolv.prover.keys import load_master_key
    from zksolv.prover.workarea import default_work_dir

    if allow_gap and prev is None:
        raise InputError("--allow-gap", "needs --prev: the bundle the new one links to")
    master = load_master_key(key, warn=lambda msg: click.echo(f"warning: {msg}", err=True))
    status(f"proving {snapshot}" + (f" (first verifying --prev {prev})" if prev else "")
           + " ...", quiet=quiet)
    executor = make_executor(scheduler, jobs or os.cpu_count() or 1) if scheduler else None
    work = Path(work_dir) if work_dir is not None else default_work_dir(Path(out))
    try:
        res = prove_epoch(
            snapshot, out, master_key=master, prev=prev, reveal_totals=reveal_totals,
            jobs=jobs or os.cpu_count() or 1, inclusion_db=inclusion_db,
            backend=backend_of(ctx), progress=_bar(quiet), executor=executor, resume=resume,
            work_dir=work, allow_gap=allow_gap,
        )
    except KeyboardInterrupt:
        if work.exists():
            click.echo(f"interrupted: proven shards are kept in {work} (private); rerun with "
                       "--resume to continue", err=True)
        else:
            click.echo("interrupted: nothing written", err=True)
        sys.exit(130)
    finally:
        if executor is not None:
            executor.close()
    if res.resumed_shards:
        click.echo(f"resumed: {res.resumed_shards} of {res.shards} shards taken from the "
                   "interrupted run", err=True)
    if res.replaced_orphan_db:
        click.echo(f"note: replaced {res.inclusion_db}, left by an interrupted run whose bundle "
                   "was never published", err=True)
    if not quiet:
        click.echo(
            f"epoch {res.epoch}: {res.accounts} accounts in 2^{res.depth} leaves, "
            f"{res.shards} range-proof shards, {res.bundle_bytes} bytes, {res.seconds:.1f} s"
        )
        click.echo(f"bundle     {res.bundle}  (hash {res.bundle_hash.hex()})")
        click.echo(f"chain      {_link_text(res.epoch, res.prev_epoch, res.prev_bundle_hash)}")
        click.echo(f"operator   {res.operator.hex()}")
        click.echo(f"inclusion  {res.inclusion_db}  (private: do not publish)")
    elif inclusion_db is None:
        # the default location is not beside the bundle: say where it went
        click.echo(f"inclusion  {res.inclusion_db}  (private: do not publish)")


def _operator_key(value: str | None) -> bytes | None:
    """--operator: 64 hex digits, or a file holding them (operator.key.pub)."""
    from zksolv.safeio import FileReadError, read_bounded
    from zksolv.verifier.bundle import parse_operator_key

    if value is None:
        return None
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return parse_operator_key(value)
    try:
        data, _ = read_bounded(value, 4096, what="operator public key file")
    except FileReadError as exc:
        raise InputError("--operator", f"{value[:80]!r} is neither 64 hex digits nor a key "
                                       f"file ({exc})") from exc
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InputError(value, "an operator public key file holds 64 hex digits") from exc
    return parse_operator_key(text, value)


def _decimal(value: int, decimals: int) -> str:
    if decimals == 0:
        return str(value)
    whole, frac = divmod(value, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}"


def _asset_lines(assets: Iterable[Any], price_decimals: int) -> list[str]:
    """Each asset's public terms, as the signed header states them."""
    lines = []
    for a in assets:
        line = (
            f"  {a.symbol}: decimals {a.decimals}, price {_decimal(a.price, price_decimals)} "
            f"(raw {a.price} at {price_decimals} price decimals), haircut "
            f"{_decimal(a.haircut_bps, 2)}%, reserves {_decimal(a.reserves, a.decimals)} "
            f"{a.symbol} ({a.reserves} base units)"
        )
        if a.proven_decimals != a.decimals:
            line += (f"; proven at {a.proven_decimals} decimals (liabilities rounded up, "
                     f"reserves {'and debts ' if getattr(a, 'borrowable', False) else ''}down): "
                     f"reserves {_decimal(a.proven_reserves, a.proven_decimals)} {a.symbol}")
        if getattr(a, "borrowable", False):
            line += "; borrowable: debts owed by accounts counted beside the reserves"
        lines.append(line)
    return lines


def _operator_line(operator: bytes, pinned: bool) -> str:
    if pinned:
        return f"operator {operator.hex()} (signature checked; the key you pinned)"
    return (f"operator {operator.hex()} (signature checked; key NOT pinned: pass "
            "--operator PUBKEY to check who published this)")


def _link_text(epoch: int, prev_epoch: int | None, prev_hash: bytes | None, *,
               as_stated: bool = False) -> str:
    """What a bundle's header says it links to, and the gap it declares.
    ``as_stated``: the text says so, for a link taken from the signed header
    and not checked against the bundle it names."""
    from zksolv.circuits.epoch import declared_gap, gap_text

    if prev_epoch is None:
        return "first bundle of its chain (links to no earlier epoch)"
    text = f"links to epoch {prev_epoch}"
    if prev_hash is not None:
        text += f" (bundle {prev_hash.hex()})"
    if as_stated:
        text += " as its signed header states"
    gap = declared_gap(epoch, prev_epoch)
    if gap is not None:
        text += f"; {gap_text(*gap)} NOT proven solvent"
    return text


def holder_link_text(epoch: int, prev_epoch: int | None, prev_hash: bytes | None) -> str:
    """The chain line an account holder is shown (``inclusion verify``, and
    word for word the page's ``linkText``): the link as the signed header
    states it, said to be unchecked. Only ``zksolv verify --chain`` checks
    that the bundle it names exists and is that epoch; without that an
    operator could name epoch - 1 and a made-up hash to hide a gap."""
    text = _link_text(epoch, prev_epoch, prev_hash, as_stated=True)
    if prev_epoch is not None:
        text += "; link not checked here (zksolv verify --chain checks it)"
    return text


def _fail_json(exc: ZksolvError) -> None:
    out: dict[str, Any] = {"valid": False, "exit_code": exc.exit_code, "error": str(exc)}
    if isinstance(exc, VerificationError):
        out["check"] = exc.check
        out["detail"] = exc.detail
    echo_json(out)
    sys.exit(exc.exit_code)


def _bundle_paths(given: tuple[str, ...], chain: tuple[str, ...]) -> list[str]:
    """The bundles to verify, oldest first: --chain links then BUNDLE...; a
    folder of bundles stands for the bundles in it; two or more given as
    arguments are put in epoch order (read from their signed manifests)."""
    from zksolv.circuits import bundle as layout
    from zksolv.verifier.bundle import load_manifest

    paths: list[str] = []
    for g in given:
        p = Path(g)
        if p.is_dir() and not (p / layout.MANIFEST_FILE).exists():
            inside = sorted(str(c) for c in p.iterdir()
                            if c.is_dir() and (c / layout.MANIFEST_FILE).is_file())
            if inside:
                private = [c.name for c in p.iterdir() if c.name.endswith(".sqlite")]
                if private:
                    click.echo(f"warning: {p} also holds {', '.join(sorted(private)[:3])}: "
                               "inclusion databases are PRIVATE, never publish this folder",
                               err=True)
                paths += inside
                continue
        paths.append(g)
    if len(paths) > 1:
        epochs = {q: load_manifest(q)[0].epoch for q in paths}
        paths.sort(key=lambda q: epochs[q])
    return [*chain, *paths]


@click.command()
@click.argument("bundles", metavar="BUNDLE...", nargs=-1, required=True, type=click.Path())
@click.option("--chain", "chain", multiple=True, type=click.Path(),
              help="Earlier bundles, oldest first; BUNDLE is the newest link. Repeatable. "
                   "(Or give every bundle, or their folder, as BUNDLE...: they are put in "
                   "epoch order.)")
@click.option("--epoch", "epoch", type=click.IntRange(0, (1 << 63) - 1), default=None,
              help="Require this epoch number.")
@click.option("--operator", "operator", default=None, metavar="PUBKEY",
              help="The operator's public key (64 hex digits, or a file holding them, "
                   "e.g. operator.key.pub): every bundle must be signed by it.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes for the range proofs (default: all cores).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Check the batches of range proofs on a dask.distributed cluster: "
                   "tcp://HOST:8786, tls://HOST:8786 or local:N (public data only).")
@click.option("--no-gaps", "no_gaps", is_flag=True,
              help="Require no epoch left unproven: fail (chain-epoch) if a bundle's header "
                   "declares a gap (it links to an epoch before N-1) or, in a chain, two "
                   "bundles' epochs are not consecutive.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
@reports_errors
def verify(ctx: click.Context, bundles: tuple[str, ...], chain: tuple[str, ...],
           epoch: int | None, operator: str | None, jobs: int | None, scheduler: str | None,
           no_gaps: bool, as_json: bool, quiet: bool) -> None:
    """Verify BUNDLE, or a chain: several bundles (or a folder of them) are
    sorted by epoch and checked as one chain, as are earlier links given
    with --chain.

    Needs no secret and none of the prover's code: checks the operator's
    signature on the manifest (and with --operator that it is the key you
    pinned), every file's hash, decodes strictly, recomputes every tree node
    from the leaf commitments, batch-verifies every range proof and the
    solvency proofs against the header, and with --chain checks that epochs
    increase, each bundle links to the one before (its hash and epoch) and
    one key signs them all.

    Each bundle's signed header names the epoch it links to. After an epoch
    refused as insolvent or malformed, the next bundle links to the last
    epoch proven solvent and so declares the epochs between NOT proven
    solvent: they are listed, for one bundle alone as for a chain (a valid
    result, with the gaps named); --no-gaps makes any gap a failure
    (chain-epoch). Each asset's decimals, price, haircut and reserves are
    shown: the proofs are about those terms.

    \b
    Exit codes: 0 valid; 1 invalid (the first failing check is named);
                2 unusable input (a path that is not a bundle says what it is).
    \b
    Examples:
      zksolv verify bundles/3 --operator operator.key.pub
      zksolv verify bundles/ --operator operator.key.pub --json     # every epoch, as a chain
      zksolv verify bundles/3 --chain bundles/1 --chain bundles/2
    """
    from zksolv.circuits.epoch import epochs_text
    from zksolv.verifier import chain_gaps, verify_bundle, verify_chain

    backend = backend_of(ctx)
    jobs = jobs or os.cpu_count() or 1
    executor = None
    try:
        pinned = _operator_key(operator)
        paths = _bundle_paths(bundles, chain)
        status(f"verifying {len(paths)} bundle(s), reading and hashing every file ...",
               quiet=quiet or as_json)
        bundle = paths[-1]
        executor = make_executor(scheduler, jobs) if scheduler else None
        if len(paths) > 1:
            reports = verify_chain(paths, backend=backend, expect_operator=pinned,
                                   jobs=jobs, progress=_bar(quiet), executor=executor,
                                   allow_gaps=not no_gaps)
            if epoch is not None and reports[-1].epoch != epoch:
                raise VerificationError(
                    "epoch-mismatch", f"bundle is epoch {reports[-1].epoch}, expected {epoch}"
                )
        else:
            reports = [verify_bundle(bundle, backend=backend, expect_epoch=epoch,
                                     expect_operator=pinned, jobs=jobs, progress=_bar(quiet),
                                     executor=executor, allow_gap=not no_gaps)]
    except ZksolvError as exc:
        if as_json:
            _fail_json(exc)
        raise
    finally:
        if executor is not None:
            executor.close()
    gaps = chain_gaps(reports)
    if as_json:
        # link_checked: the bundle it links to was verified here (given before it)
        echo_json({"valid": True,
                   "bundles": [{**r.to_json(), "link_checked": i > 0}
                               for i, r in enumerate(reports)],
                   "gaps": [{"first": a, "last": b} for a, b in gaps]})
        return
    for i, r in enumerate(reports):
        click.echo(
            f"valid: epoch {r.epoch}, {', '.join(r.symbols)}, 2^{r.depth} leaves, "
            f"{r.shards} shards, {r.seconds:.2f} s"
        )
        click.echo(f"  bundle hash {r.bundle_hash.hex()}")
        click.echo(f"  root hash   {r.root_hash.hex()}")
        link = _link_text(r.epoch, r.prev_epoch, r.prev_bundle_hash)
        if r.prev_epoch is not None:
            link += ("; link checked" if i > 0 else
                     "; link not checked here: give that bundle too (--chain PREV)")
        click.echo(f"  {link}")
    last = reports[-1]
    for line in _asset_lines(last.assets, last.price_decimals):
        click.echo(line)
    click.echo(_operator_line(last.operator, last.operator_pinned))
    if len(reports) > 1:
        click.echo(f"chain valid: epochs {reports[0].epoch}..{reports[-1].epoch}, each linked, "
                   "one operator key")
    for a, b in gaps:
        click.echo(f"gap: {epochs_text(a, b)} NOT proven solvent (the bundle of epoch {b + 1} "
                   f"links to epoch {a - 1})")
    if any(a.borrowable for r in reports for a in r.assets):
        click.echo("margin health: every account's haircut collateral covers its debts "
                   "(a proof per leaf, checked)")
        click.echo("solvent: reserves and proven debts cover liabilities per asset and in value")
        return
    click.echo("solvent: reserves cover liabilities per asset and in value")


@click.group()
def inclusion() -> None:
    """Per-account inclusion proofs: the operator exports one per account;
    the account holder verifies it against the published bundle or root."""


@inclusion.command("export",
                   options_metavar="--db DB (--account ID [--out FILE] | --all --out DIR)")
@click.option("--db", "db", required=True, type=click.Path(), help="Inclusion database.")
@click.option("--account", default=None, help="One account id.")
@click.option("--all", "all_accounts", is_flag=True,
              help="Every account, one file each, into the directory --out.")
@click.option("--out", "out", type=click.Path(), default=None,
              help="Output file (default stdout); with --all the directory to create.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="With --all: worker processes (default: all cores).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, no summary.")
@click.pass_context
@reports_errors
def export(ctx: click.Context, db: str, account: str | None, all_accounts: bool,
           out: str | None, jobs: int | None, quiet: bool) -> None:
    """Write ACCOUNT's inclusion proof as JSON, or with --all every account's
    proof into a new directory (private to the holders: each holds their
    amounts, blindings and salt).

    A proof carries the bundle's signed manifest, so the holder can check it
    against the bundle or just the bundle hash. Files are created mode 0600
    (the --all directory 0700).

    --all reads the database once and checks the whole tree against the
    signed root (which implies every holder's check passes; a sample of
    proofs also runs the holder's own check). Each file is named by the
    account's per-epoch salt, not its id, in one of 256 sub-directories
    (NN/NAME.json): `zksolv inclusion locate --db DB --account ID` prints an
    account's path. The directory is built under a temporary name and
    renamed into place when complete.

    \b
    Examples:
      zksolv inclusion export --db DB --account alice --out alice.json
      zksolv inclusion export --db DB --all --out proofs/epoch-3
    """
    from zksolv.prover.inclusion_db import InclusionDB
    from zksolv.safeio import write_private

    if all_accounts == (account is not None):
        raise InputError("inclusion export", "give exactly one of --account ID or --all")
    store = InclusionDB.open(db)
    try:
        if all_accounts:
            from zksolv.prover.export import export_directory

            if out is None:
                raise InputError("--out", "--all needs --out DIR, the directory to create")
            t0 = time.perf_counter()
            status(f"exporting every proof of {db}: reading and checking the tree ...",
                   quiet=quiet)
            res = export_directory(db, out, backend=backend_of(ctx),
                                   jobs=jobs or os.cpu_count() or 1, progress=_bar(quiet))
            if not quiet:
                click.echo(f"wrote {res.accounts} inclusion proofs of epoch {res.epoch} to {out} "
                           f"in {time.perf_counter() - t0:.1f} s (private: files 0600; each "
                           "holder gets only their own)")
                click.echo(f"checked: the whole tree against the signed root, every opening "
                           f"against its commitment; {res.sampled} proofs also as their holders "
                           "will check them")
                click.echo(f"find an account's file: zksolv inclusion locate --db {db} "
                           "--account ID")
            return
        assert account is not None
        doc = store.export(account)
    finally:
        store.close()
    data = doc.to_bytes()
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    write_private(Path(out), data)


@inclusion.command("locate")
@click.option("--db", "db", required=True, type=click.Path(), help="Inclusion database.")
@click.option("--account", required=True, help="Account id.")
@reports_errors
def locate_cmd(db: str, account: str) -> None:
    """Print the path of ACCOUNT's proof inside an `export --all` directory.

    The path is NN/NAME.json: NAME is the first 32 hex digits of
    SHA-256("zksolv/proof-file/v1" || salt), with salt the account's secret
    per-epoch salt, and NN its first two digits. It reveals no id, changes
    every epoch, and only the database (or the operator key) maps an id to it.
    """
    from zksolv.prover.export import locate
    from zksolv.prover.inclusion_db import InclusionDB

    store = InclusionDB.open(db)
    try:
        click.echo(locate(store, account))
    finally:
        store.close()


def _parse_expect(items: tuple[str, ...]) -> dict[str, int | str]:
    """SYMBOL=AMOUNT, matched whole: a symbol of the bundle grammar and an
    amount of ASCII digits (no '²', no other scripts' digits): base units,
    or tokens when it has a decimal point (``USDC=3989.744384``; checked
    against the asset's decimals once the bundle is read)."""
    from zksolv.safeio import SYMBOL_RE

    out: dict[str, int | str] = {}
    for it in items:
        sym, sep, amt = it.partition("=")
        if not sep or not SYMBOL_RE.fullmatch(sym):
            raise InputError("--expect", f"{it[:60]!r}: use SYMBOL=AMOUNT (base units, or "
                                         "tokens with a decimal point)")
        if sym in out:
            raise InputError("--expect", f"{sym} given twice")
        if "." in amt:
            if not re.fullmatch(r"[0-9]{1,60}\.[0-9]{0,60}", amt):
                raise InputError(f"--expect {sym}", f"{amt[:40]!r} is not a decimal amount")
            out[sym] = amt
        else:
            if not re.fullmatch(r"[0-9]{1,78}", amt):
                raise InputError(f"--expect {sym}", f"amount {amt[:40]!r} is not a "
                                                    "non-negative integer of ASCII digits")
            out[sym] = int(amt)
    return out


@inclusion.command("verify",
                   options_metavar="--account ID (--bundle DIR | --bundle-hash HEX) [OPTIONS]")
@click.argument("proof", type=click.Path())
@click.option("--account", required=True,
              help="Your own account id (required: the proof must be yours).")
@click.option("--bundle", type=click.Path(), default=None,
              help="The epoch's bundle (verified in full).")
@click.option("--bundle-hash", "bundle_hash", default=None, metavar="HEX",
              help="The bundle hash the operator published, instead of the bundle.")
@click.option("--operator", "operator", default=None, metavar="PUBKEY",
              help="The operator's public key (hex, or a file holding it) to pin.")
@click.option("--expect", multiple=True,
              help="SYMBOL=AMOUNT you expect to be owed: base units (USDC=3989744384) or "
                   "tokens with a decimal point (USDC=3989.744384); SYMBOL.debt=AMOUNT what "
                   "you owe (DAI.debt=2500). Repeatable.")
@click.option("--epoch", type=click.IntRange(0, (1 << 63) - 1), default=None,
              help="The epoch you expect.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bars (they show only with --bundle, on a terminal).")
@click.pass_context
@reports_errors
def verify_inclusion_cmd(ctx: click.Context, proof: str, account: str, bundle: str | None,
                         bundle_hash: str | None, operator: str | None,
                         expect: tuple[str, ...], epoch: int | None, as_json: bool,
                         quiet: bool) -> None:
    """Check that PROOF is your account's, that its balance is in the
    epoch's tree and counted in full.

    Checks that the proof names your --account (its leaf hash binds the id),
    that the opening matches the leaf commitment, that the path's sums and
    hashes reach the root, and (with --expect) that the amounts are what you
    are owed (SYM=...) and, in a bundle with borrowable assets, what you owe
    (SYM.debt=...): check your debts too, an overstated debt is a receivable
    the protocol does not have. Asset symbols, their order, decimals, prices and reserves come
    from the bundle's signed manifest, never from labels in the proof file.
    With --bundle the bundle is verified in full, which proves every sibling
    subtree on your path non-negative (their leaves are range-proved); with
    --bundle-hash only, that part is reported as NOT checked.

    \b
    Exit codes: 0 included; 1 not included or not as expected; 2 bad input.
    \b
    Example:
      zksolv inclusion verify alice.json --account alice --bundle bundles/3 \\
          --operator operator.key.pub --expect USDC=1250000
    """
    from zksolv.verifier.inclusion import load_document, verify_inclusion

    try:
        if (bundle is None) == (bundle_hash is None):
            raise InputError("inclusion verify", "give exactly one of --bundle DIR or "
                                                 "--bundle-hash HEX")
        anchor = None
        if bundle_hash is not None:
            if not re.fullmatch(r"[0-9a-fA-F]{64}", bundle_hash):
                raise InputError("--bundle-hash", "a bundle hash is 64 hex digits (32 bytes)")
            anchor = bytes.fromhex(bundle_hash)
        report = verify_inclusion(
            load_document(proof), account_id=account, bundle=bundle, bundle_hash=anchor,
            expect_operator=_operator_key(operator), epoch=epoch, expect=_parse_expect(expect),
            backend=backend_of(ctx), jobs=os.cpu_count() or 1, progress=_bar(quiet or as_json),
        )
    except ZksolvError as exc:
        if as_json:
            _fail_json(exc)
        raise
    if as_json:
        echo_json(report.to_json())
        return
    terms = {a.symbol: a for a in report.assets}
    amounts = ", ".join(
        f"{s}={v} ({_decimal(v, terms[s].proven_decimals)} {s})"
        for s, v in report.amounts.items()
    )
    click.echo(f"valid: account {report.account_id!r} (the id you gave) is in epoch "
               f"{report.epoch}: {amounts}")
    # a holder who owes nothing sees what they always saw; a debt put on
    # their account would show here
    if report.debts is not None and any(report.debts.values()):
        owed = ", ".join(f"{s}.debt={v} ({_decimal(v, terms[s].proven_decimals)} {s})"
                         for s, v in report.debts.items())
        click.echo(f"you owe: {owed} (debts, proven rounded down; check them: an overstated "
                   "debt is a receivable the protocol does not have)")
        own = "covers" if (report.own_margin or 0) >= 0 else "does NOT cover"
        if report.bundle is not None:
            click.echo(f"margin health: your haircut collateral {own} your debts (computed from "
                       f"your opened amounts); every account's margin health is proven and was "
                       f"checked here (your leaf's proof is in shard "
                       f"{report.bundle.shard_of_leaf(report.leaf_index)} of margin.bin)")
        else:
            click.echo(f"margin health: your haircut collateral {own} your debts (computed from "
                       "your opened amounts); the margin-health proofs of every account are "
                       "NOT checked: pass --bundle DIR")
    click.echo(f"bundle hash {report.bundle_hash.hex()}")
    click.echo(f"root {report.root_hash.hex()}")
    click.echo("chain: " + holder_link_text(report.epoch, report.prev_epoch,
                                            report.prev_bundle_hash))
    for line in _asset_lines(report.assets, report.price_decimals):
        click.echo(line)
    click.echo(_operator_line(report.operator, report.operator_pinned))
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
