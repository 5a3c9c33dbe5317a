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
from zksolv.errors import InputError, InsolventError, VerificationError, ZksolvError
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
                   "else ~/.local/share/zksolv/inclusion/, never beside the bundle; a FILE "
                   "in the bundle's folder is warned about: do not publish that folder).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run of this epoch from its work area (same leaf "
                   "positions, salts and blindings; shards already proven are kept). Refused "
                   "if the snapshot, key, previous bundle or options changed. Without a work "
                   "area, starts afresh.")
@click.option("--work-dir", type=click.Path(), default=None,
              help="Private work area (mode 0700) where each proven shard is kept until the "
                   "bundle is published (default: in the private data directory, "
                   "DATA_DIR/work/NAME.HASH.work, named after OUT's absolute path). Refused "
                   "inside OUT or beside it in OUT's folder.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help=SCHEDULER_HELP)
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bars and one result line: the epoch, the bundle and its hash, "
                   "the inclusion database's path.")
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
    the bundle. Its path is printed at the end, with -q too (`zksolv
    inclusion db --bundle OUT` finds it again). Nothing private is ever
    written inside OUT or beside it in OUT's folder, even by a run that is
    killed, so a folder of bundles can be published as it is (unless you
    put --inclusion-db there yourself).

    Amounts are proven in each asset's proof units (header.json
    "proof_decimals", default its decimals): liabilities rounded up, reserves
    down (docs/snapshot-format.md).

    A snapshot whose header names reserve_sources is proven only with its
    complete evidence (SNAPSHOT/reserves.json: `zksolv reserves fetch`, then
    every holder's signature for this operator key: `zksolv reserves sign` or
    `import`); the sourced assets' reserves are the evidence's sums and the
    evidence goes into the signed manifest (bundle version 6), where any
    verifier re-checks it (`zksolv verify --rpc`). Missing, incomplete,
    another epoch's, another chain's or another operator's evidence, or an
    account signature that does not recover, is exit 2 naming the command
    that fixes it.

    The manifest is signed with the operator key; --prev must be a bundle
    that verifies, one epoch earlier, signed by the same key. After a refused
    epoch, --prev LAST --allow-gap continues the chain from the last epoch
    proven solvent: the new bundle's header names that epoch, so the bundle
    itself declares the epochs between NOT proven solvent (`zksolv watch`
    does this on its own).

    Shards run on local worker processes (--jobs), or with --scheduler on a
    dask.distributed cluster. Workers receive the openings (amounts,
    blindings) of the shards they prove: a cluster's workers must be the
    operator's own machines; use a tls:// scheduler across a network. Every
    shard result is checked against the openings sent before it is kept; a
    worker whose result does not match is named and the shard proven again
    elsewhere (exit 1, nothing published, if that fails too).

    Each proven shard is kept in a private work area (0700, in the data
    directory: DATA_DIR/work/NAME.HASH.work, NAME.HASH as for the inclusion
    database, derived from OUT's absolute path) until the bundle is
    published. After a crash, a kill or Ctrl-C, rerun the same command (the
    same OUT) with --resume to continue where it stopped.

    \b
    Exit codes: 0 bundle written; 1 a shard result refused twice (the
                worker named; nothing published); 2 bad input (file:line:field named);
                (for an error in the snapshot, `zksolv snapshot check
                SNAPSHOT` is named: it lists every error in one run);
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
    from zksolv.prover.folderlock import lock_for_prove
    from zksolv.prover.keys import load_master_key
    from zksolv.prover.workarea import default_work_dir, exposed_by

    if allow_gap and prev is None:
        raise InputError("--allow-gap", "needs --prev: the bundle the new one links to")
    master = load_master_key(key, warn=lambda msg: click.echo(f"warning: {msg}", err=True))
    # a watcher proving into OUT's folder is the only writer there (exit 2 naming it)
    folder_lock = lock_for_prove(Path(out))
    status(f"proving {snapshot}" + (f" (first verifying --prev {prev})" if prev else "")
           + " ...", quiet=quiet)
    executor = make_executor(scheduler, jobs or os.cpu_count() or 1) if scheduler else None
    work = Path(work_dir) if work_dir is not None else default_work_dir(Path(out))
    try:
        res = prove_epoch(
            snapshot, out, master_key=master, prev=prev, reveal_totals=reveal_totals,
            jobs=jobs or os.cpu_count() or 1, inclusion_db=inclusion_db,
            backend=backend_of(ctx), progress=_bar(quiet), executor=executor, resume=resume,
            work_dir=work_dir, allow_gap=allow_gap,
        )
    except InsolventError as exc:
        if not exc.lines:
            raise
        click.echo(f"error: {str(exc).split(':', 1)[0]}; nothing written. Shortfall:", err=True)
        for line in exc.lines:
            click.echo(f"  {line}", err=True)
        sys.exit(exc.exit_code)
    except InputError as exc:
        hint = _snapshot_check_hint(exc, snapshot)
        if hint is None:
            raise
        click.echo(f"error: {exc} ({hint})", err=True)   # one line, as every error
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if work.exists():
            click.echo(f"interrupted: proven shards are kept in {work} (private); rerun with "
                       "--resume to continue", err=True)
        else:
            click.echo("interrupted: nothing written", err=True)
        sys.exit(130)
    finally:
        folder_lock.release()
        if executor is not None:
            executor.close()
    for shard, why in res.discarded_shards:
        click.echo(f"discarded: shard {shard}'s file in the work area is not this run's "
                   f"({why}); proven again", err=True)
    if res.resumed_shards:
        click.echo(f"resumed: {res.resumed_shards} of {res.shards} shards taken from the "
                   "interrupted run", err=True)
    for fault in res.worker_faults:
        click.echo(f"warning: shard result refused: {fault}; the shard was proven again "
                   "elsewhere and checked", err=True)
    if res.shard_retries:
        click.echo(f"warning: {res.shard_retries} shard proof(s) failed the worker's own check "
                   "and were proven again (each retry is a computational fault: please report "
                   "it, with `zksolv bench soak` output if you can)", err=True)
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
    else:
        # -q hides the bars, never the result: what to publish and what to keep
        click.echo(f"epoch {res.epoch}: bundle {res.bundle} (hash {res.bundle_hash.hex()}); "
                   f"inclusion database {res.inclusion_db} (private: do not publish)")
    if inclusion_db is not None and exposed_by(Path(inclusion_db), Path(out)):
        click.echo(f"warning: --inclusion-db {inclusion_db} is in the folder that holds the "
                   f"bundle: that database is PRIVATE, never publish {Path(out).parent}/ as "
                   "it is (leave --inclusion-db out: the private data directory)", err=True)


def _snapshot_check_hint(exc: InputError, snapshot: str) -> str | None:
    """For an error in the snapshot's files (prove stops at the first): the
    command that lists every error in one run."""
    from zksolv.prover.epoch import PrevBundleError
    from zksolv.snapshot import HEADER_FILE

    root = Path(snapshot)
    if isinstance(exc, PrevBundleError) or not (root / HEADER_FILE).is_file():
        return None   # not a snapshot's error, or not a snapshot (the error says what it is)
    if exc.where.endswith(":assets") or not (
            exc.where == str(root) or exc.where.startswith(str(root / "x")[:-1])):
        return None
    return (f"prove stops at the first error; `zksolv snapshot check {snapshot}` lists every "
            "error of the snapshot in one run")


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


def _fail_json(exc: ZksolvError, warnings: list[dict[str, str]] | None = None) -> None:
    out: dict[str, Any] = {"valid": False, "exit_code": exc.exit_code, "error": str(exc)}
    if isinstance(exc, VerificationError):
        out["check"] = exc.check
        out["detail"] = exc.detail
    if warnings is not None:
        out["warnings"] = warnings
    echo_json(out)
    sys.exit(exc.exit_code)


def _registry_reports(paths: list[str], registry: Any) -> list[Any]:
    """Each bundle (verified already) checked against the registry's posts."""
    from zksolv.verifier.registry import check_bundle

    return [check_bundle(p, registry) for p in paths]


def _registry_lines(posted: list[Any]) -> list[str]:
    if not posted:
        return []
    from zksolv.chain.rpc import hex_address
    from zksolv.verifier.registry import NOT_CHECKED

    first = posted[0]
    lines = [f"registry {hex_address(first.registry)} on chain {first.chain_id}: "
             f"{'every bundle' if len(posted) > 1 else 'the bundle'} posted for its epoch by "
             f"{', '.join(hex_address(a) for a in first.bound)} (bound to the operator key), "
             "no other bundle or branch posted for that key"]
    solvent = [r.epoch for r in posted if r.solvent_on_chain]
    lines.append("  solvency proofs also checked on chain by the registry: "
                 + (", ".join(f"epoch {e}" for e in solvent) if solvent else "none"))
    lines.append("  registry: not checked: " + NOT_CHECKED[1])
    return lines


SCAN_INCOMPLETE = "scan-incomplete"
FRESHNESS_KINDS = ("stale", "unproven-snapshots")
MAX_AGE_HELP = ("Warn when the newest bundle's epoch (its header's timestamp) is older than "
                "AGE: 90s, 30m, 2h, 1d, 1w or 1h30m. Never changes the verdict.")


def _freshness_warnings(newest: str, epoch: int, timestamp: int,
                        max_age: int | None) -> list[dict[str, str]]:
    """Is the newest bundle given the newest there is: older than --max-age,
    or later snapshots beside it without a bundle (``zksolv.freshness``)."""
    from zksolv import freshness

    out = freshness.later_snapshots(newest, epoch)
    if max_age is not None:
        stale = freshness.stale_warning(newest, epoch, timestamp, max_age, int(time.time()))
        if stale is not None:
            out.insert(0, stale)
    return out


def _echo_freshness(warnings: list[dict[str, str]]) -> None:
    for w in warnings:
        click.echo(f"warning: {w['path']}: {w['what']}", err=True)


def _private_warnings(paths: Iterable[str]) -> list[dict[str, str]]:
    """What is private in the folders given to ``verify`` (``private_scan``):
    one entry per item, {"path", "kind", "what"}, and a ``scan-incomplete``
    entry for a folder not looked through in full."""
    from zksolv.private_scan import scan

    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for given in paths:
        res = scan(given)
        for item in res.items:
            if str(item.path) not in seen:
                seen.add(str(item.path))
                out.append(item.to_json())
        if not res.complete:
            unread = ", ".join(str(u) for u in res.unread[:3])
            out.append({"path": given, "kind": SCAN_INCOMPLETE,
                        "what": "not every entry was checked for private files ("
                                + (f"cannot read {unread}" if unread else "too many entries")
                                + ")"})
    return out


def _echo_private_warnings(warnings: list[dict[str, str]]) -> None:
    for w in warnings:
        if w["kind"] == SCAN_INCOMPLETE:
            click.echo(f"warning: {w['path']}: {w['what']}", err=True)
        else:
            click.echo(f"warning: {w['path']} is PRIVATE, {w['what']}: never publish the "
                       "folder that holds it", err=True)


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
@click.option("--max-age", "max_age", default=None, metavar="AGE", help=MAX_AGE_HELP)
@click.option("--rpc", "rpc", default=None, metavar="URL",
              help="A node of the chain a version 6 bundle's reserves are on (your own, e.g. "
                   "http://127.0.0.1:8545; it must keep state at the reserves block): re-read "
                   "every balance at the pinned block hash, check that hash is on the node's "
                   "chain and make the contract holders' EIP-1271 calls. Without it balances "
                   "are NOT checked (the output says so).")
@click.option("--registry", "registry_address", default=None, metavar="ADDR",
              help="The public registry contract (on the chain of --rpc, which it needs): "
                   "each bundle must be the one its operator posted for its epoch, with no "
                   "other bundle or branch posted by an address bound to the key "
                   "(registry-missing, registry-mismatch, registry-chain, registry-binding, "
                   "registry-code).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
@reports_errors
def verify(ctx: click.Context, bundles: tuple[str, ...], chain: tuple[str, ...],
           epoch: int | None, operator: str | None, jobs: int | None, scheduler: str | None,
           no_gaps: bool, max_age: str | None, rpc: str | None, registry_address: str | None,
           as_json: bool, quiet: bool) -> None:
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

    Reserves: in a version 4 or 5 bundle they are the operator's assertion
    ("reserves asserted"). A version 6 bundle carries their evidence from
    the chain (balances at a pinned block, holders' EIP-712 ownership
    signatures for this epoch and operator): the sums and the account
    signatures are checked here (signatures need the chain extra: install
    zksolv[chain]); with --rpc URL every balance, the block hash and the
    contract holders' signatures are re-checked against that node
    (reserves-chain, reserves-block, reserves-balance, reserves-signature).
    --json: "reserves" per bundle, per asset "balances": "checked",
    "not-checked" or "asserted". A node that cannot be reached or answers
    nonsense exits 2 with one line naming the call.

    Split views: with --registry ADDR (and --rpc) each bundle is checked,
    after its proofs, against the operator's posts in the public registry
    (docs/registry.md): posted for its epoch by an address bound to the
    operator key, and no other bundle or branch posted for that key.
    Without it nothing says whether others were shown the same bundle.
    --json: "registry" per bundle.

    Each folder given is also looked through for anything private beside
    the bundles (a prover work area, an SQLite database, a snapshot, a key
    file, inclusion proofs): each is named in a warning (--json:
    "warnings", a list of {path, kind, what}). Warnings never change the
    verdict or the exit code.

    Each bundle's epoch is shown with its time (the header's timestamp;
    --json: "timestamp", "time_utc"). Two more warnings say when the newest
    bundle given may not be the newest there is: --max-age AGE, when its
    epoch is older than AGE (kind "stale"); and, always, when snapshots of
    later epochs (folders epoch-NNNNNN with header.json or accounts.csv)
    lie in the bundle's folder or the one above it, as `simulate --prove`
    and a `watch` whose --out is inside its snapshots' folder leave them,
    with no bundle given for them (kind "unproven-snapshots": refused, or
    not proven yet). Only names are looked at.

    \b
    Exit codes: 0 valid; 1 invalid (the first failing check is named);
                2 unusable input (a path that is not a bundle says what it is).
    \b
    Examples:
      zksolv verify bundles/3 --operator operator.key.pub
      zksolv verify bundles/ --operator operator.key.pub --json     # every epoch, as a chain
      zksolv verify bundles/3 --chain bundles/1 --chain bundles/2
      zksolv verify run/bundles --max-age 2h          # warn if the newest epoch is older
      zksolv verify bundles/9 --rpc http://127.0.0.1:8545   # reserves re-read from your node
      zksolv verify bundles/ --rpc URL --registry 0x5FbD…      # and each bundle the one posted
    """
    from zksolv.circuits.epoch import epochs_text, utc_text
    from zksolv.freshness import parse_age
    from zksolv.verifier import chain_gaps, verify_bundle, verify_chain

    backend = backend_of(ctx)
    jobs = jobs or os.cpu_count() or 1
    executor = None
    # what the folders hold besides bundles: warned about, never a verdict
    warnings = _private_warnings([*chain, *bundles])
    if not as_json:
        _echo_private_warnings(warnings)
    registry: Any = None
    try:
        if registry_address is not None:
            if rpc is None:
                raise InputError("--registry", "needs --rpc URL: a node of the registry's chain")
            from zksolv.cli.registry import registry_client

            # a malformed address is refused before any proof is checked
            registry = registry_client(rpc, registry_address)
        age_limit = None if max_age is None else parse_age(max_age)
        pinned = _operator_key(operator)
        paths = _bundle_paths(bundles, chain)
        status(f"verifying {len(paths)} bundle(s), reading and hashing every file ...",
               quiet=quiet or as_json)
        bundle = paths[-1]
        executor = make_executor(scheduler, jobs) if scheduler else None
        if len(paths) > 1:
            reports = verify_chain(paths, backend=backend, expect_operator=pinned,
                                   jobs=jobs, progress=_bar(quiet), executor=executor,
                                   allow_gaps=not no_gaps, rpc=rpc)
            if epoch is not None and reports[-1].epoch != epoch:
                raise VerificationError(
                    "epoch-mismatch", f"bundle is epoch {reports[-1].epoch}, expected {epoch}"
                )
        else:
            reports = [verify_bundle(bundle, backend=backend, expect_epoch=epoch,
                                     expect_operator=pinned, jobs=jobs, progress=_bar(quiet),
                                     executor=executor, allow_gap=not no_gaps, rpc=rpc)]
        posted = [] if registry is None else _registry_reports(paths, registry)
    except ZksolvError as exc:
        if as_json:
            _fail_json(exc, warnings)
        raise
    finally:
        if executor is not None:
            executor.close()
        if registry is not None:
            registry.rpc.close()
    gaps = chain_gaps(reports)
    fresh = _freshness_warnings(paths[-1], reports[-1].epoch, reports[-1].timestamp, age_limit)
    warnings += fresh
    if as_json:
        # link_checked: the bundle it links to was verified here (given before it)
        echo_json({"valid": True,
                   "bundles": [{**r.to_json(), "link_checked": i > 0,
                                **({"registry": posted[i].to_json()} if posted else {})}
                               for i, r in enumerate(reports)],
                   "gaps": [{"first": a, "last": b} for a, b in gaps],
                   "warnings": warnings})
        return
    for i, r in enumerate(reports):
        click.echo(
            f"valid: epoch {r.epoch}, the state at {utc_text(r.timestamp, iso=False)}, "
            f"{', '.join(r.symbols)}, 2^{r.depth} leaves, {r.shards} shards, {r.seconds:.2f} s"
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
    if last.reserves is not None:
        for line in last.reserves.lines():
            click.echo(line)
    click.echo(_operator_line(last.operator, last.operator_pinned))
    for line in _registry_lines(posted):
        click.echo(line)
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
    _echo_freshness(fresh)
    private = [w for w in warnings if w["kind"] not in (SCAN_INCOMPLETE, *FRESHNESS_KINDS)]
    if private:
        click.echo(f"warning: {len(private)} private item(s) in the folders given (listed "
                   "above): move them out before publishing", err=True)


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
                           f"--account ID --dir {out}")
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
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="The directory `inclusion export --all --out DIR` wrote: print the full "
                   "path DIR/NN/NAME.json (and check that the file is there).")
@reports_errors
def locate_cmd(db: str, account: str, directory: str | None) -> None:
    """Print the path of ACCOUNT's proof inside the directory `zksolv
    inclusion export --db DB --all --out DIR` wrote: NN/NAME.json, relative
    to that DIR; with --dir DIR, the full path DIR/NN/NAME.json.

    NAME is the first 32 hex digits of SHA-256("zksolv/proof-file/v1" ||
    salt), with salt the account's secret per-epoch salt, and NN its first
    two digits. It reveals no id, changes every epoch, and only the database
    (or the operator key) maps an id to it.

    \b
    Exit codes: 0 printed; 2 no such account, or with --dir no such file.
    \b
    Examples:
      zksolv inclusion locate --db DB --account alice                  # NN/NAME.json
      zksolv inclusion locate --db DB --account alice --dir proofs/epoch-3
    """
    from zksolv.prover.export import locate
    from zksolv.prover.inclusion_db import InclusionDB

    store = InclusionDB.open(db)
    try:
        rel = locate(store, account)
    finally:
        store.close()
    if directory is None:
        click.echo(rel)
        return
    full = Path(directory) / rel
    if not full.is_file():
        raise InputError(str(full), f"no such file: is {directory} the directory `inclusion "
                                    "export --all` wrote from this database?")
    click.echo(str(full))


@inclusion.command("db", options_metavar="(--bundle DIR | --bundle-hash HEX) [--in FOLDER]...")
@click.option("--bundle", type=click.Path(), default=None,
              help="The bundle whose database to find (its hash is read from its manifest).")
@click.option("--bundle-hash", "bundle_hash", default=None, metavar="HEX",
              help="The bundle hash (64 hex digits) whose database to find.")
@click.option("--in", "folders", multiple=True, type=click.Path(file_okay=False),
              help="Also look in this folder (e.g. a simulator run's RUN/private, or where "
                   "--inclusion-db put one). Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@reports_errors
def db_cmd(bundle: str | None, bundle_hash: str | None, folders: tuple[str, ...],
           as_json: bool) -> None:
    """Find the private inclusion database of a bundle and print its path.

    Looks through DATA_DIR/inclusion (DATA_DIR: $ZKSOLV_DATA_DIR, else
    $XDG_DATA_HOME/zksolv, else ~/.local/share/zksolv), where `prove` and
    `watch` put databases by default, and each --in FOLDER: every
    *.sqlite file there is opened read-only and the bundle hash it was
    finished with compared (unfinished databases are skipped). Prints each
    match, one path a line. Nothing is written.

    \b
    Exit codes: 0 found; 2 none found (the folders searched are named), or
                bad input.
    \b
    Examples:
      zksolv inclusion db --bundle bundles/epoch-000003
      zksolv inclusion db --bundle-hash 3f2a...e9 --in run/private
    """
    from zksolv.circuits import bundle as layout
    from zksolv.prover.inclusion_db import find_databases
    from zksolv.verifier.bundle import load_manifest

    if (bundle is None) == (bundle_hash is None):
        raise InputError("inclusion db", "give exactly one of --bundle DIR or --bundle-hash HEX")
    if bundle_hash is not None:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", bundle_hash):
            raise InputError("--bundle-hash", "a bundle hash is 64 hex digits (32 bytes)")
        wanted = bytes.fromhex(bundle_hash)
    else:
        assert bundle is not None
        wanted = layout.bundle_hash(load_manifest(bundle)[1])
    found, searched = find_databases(wanted, [Path(f) for f in folders])
    if as_json:
        echo_json({"bundle_hash": wanted.hex(), "databases": [str(p) for p in found],
                   "searched": [str(p) for p in searched]})
        if not found:
            sys.exit(2)
        return
    if not found:
        raise InputError("inclusion db", f"no inclusion database of bundle {wanted.hex()} in "
                         + ", ".join(str(p) for p in searched)
                         + " (one made with --inclusion-db FILE elsewhere: add --in FOLDER)")
    for p in found:
        click.echo(str(p))


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
@click.option("--max-age", "max_age", default=None, metavar="AGE",
              help="Warn when the epoch (its header's timestamp) is older than AGE: 90s, "
                   "30m, 2h, 1d, 1w or 1h30m. Never changes the result.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bars (they show only with --bundle, on a terminal).")
@click.pass_context
@reports_errors
def verify_inclusion_cmd(ctx: click.Context, proof: str, account: str, bundle: str | None,
                         bundle_hash: str | None, operator: str | None,
                         expect: tuple[str, ...], epoch: int | None, max_age: str | None,
                         as_json: bool, quiet: bool) -> None:
    """Check that PROOF is your account's, that its balance is in the
    epoch's tree and counted in full.

    Checks that the proof names your --account (its leaf hash binds the id),
    that the opening matches the leaf commitment, that the path's sums and
    hashes reach the root, and (with --expect) that the amounts are what you
    are owed (SYM=...) and, in a bundle with borrowable assets, what you owe
    (SYM.debt=...): check your debts too, an overstated debt is a receivable
    the protocol does not have (a passing --expect is confirmed). Asset
    symbols, their order, decimals, prices and reserves come from the
    bundle's signed manifest, never from labels in the proof file.

    \b
    What each anchor checks:
      --bundle DIR       the bundle verified in full, as `zksolv verify` does:
                         every range proof (so every sibling subtree on your
                         path is non-negative) and the solvency proofs.
      --bundle-hash HEX  the signed manifest only (its hash, signature,
                         revealed totals): your balance reaches the signed
                         root, but the range and solvency proofs are NOT
                         checked, and the output says so.

    Amounts are shown in tokens first, with the unit the proof counts in
    (ETH 0.000053090 (53090 units of 10^-9 ETH)). --json labels each amount
    (proof_units, proof_decimals, tokens) and lists what was checked and
    what was not ("complete" is true only with --bundle), and "warnings":
    with --max-age AGE, an epoch older than AGE (kind "stale"); with
    --bundle, snapshots of later epochs beside the bundle that have no
    bundle there (kind "unproven-snapshots"), as for `zksolv verify`. Each
    is also a "warning:" line. The epoch's time is always shown (--json:
    "timestamp", "time_utc"). A failure says
    what it means and what to do, in the page's words (one file for both,
    zksolv/site/words.json).

    \b
    Exit codes: 0 included (what was and was not checked is listed);
                1 not included or not as expected; 2 bad input.
    \b
    Example:
      zksolv inclusion verify alice.json --account alice --bundle bundles/3 \
          --operator operator.key.pub --expect USDC=1250000
    """
    from zksolv.circuits.epoch import utc_text
    from zksolv.freshness import later_snapshots, parse_age, stale_warning
    from zksolv.site import words
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
        expected = _parse_expect(expect)
        age_limit = None if max_age is None else parse_age(max_age)
        report = verify_inclusion(
            load_document(proof), account_id=account, bundle=bundle, bundle_hash=anchor,
            expect_operator=_operator_key(operator), epoch=epoch, expect=expected,
            backend=backend_of(ctx), jobs=os.cpu_count() or 1, progress=_bar(quiet or as_json),
        )
    except VerificationError as exc:
        meaning, steps = words.failure(exc.check)
        if as_json:
            echo_json({"valid": False, "included": False, "exit_code": exc.exit_code,
                       "error": str(exc), "check": exc.check, "detail": exc.detail,
                       "meaning": meaning, "next": steps})
            sys.exit(exc.exit_code)
        click.echo(f"error: {exc}", err=True)
        click.echo(f"what it means: {meaning}", err=True)
        for step in steps:
            click.echo(f"what to do: {step}", err=True)
        sys.exit(exc.exit_code)
    except ZksolvError as exc:
        if as_json:
            _fail_json(exc)
        raise
    fresh: list[dict[str, str]] = []
    if age_limit is not None:
        stale = stale_warning(bundle or proof, report.epoch, report.timestamp, age_limit,
                              int(time.time()))
        fresh += [stale] if stale is not None else []
    if bundle is not None:
        fresh += later_snapshots(bundle, report.epoch)
    if as_json:
        echo_json({**report.to_json(), "warnings": fresh})
        return
    terms = {a.symbol: a for a in report.assets}
    click.echo(f"included: account {report.account_id!r} (the id you gave) is in epoch "
               f"{report.epoch}, the state at {utc_text(report.timestamp, iso=False)}"
               + ("" if report.complete else "; range and solvency proofs NOT checked"))
    for sym, v in report.amounts.items():
        click.echo(f"  {_amount_text(terms[sym], v)}")
    # a holder who owes nothing sees what they always saw; a debt put on
    # their account would show here
    owes = report.debts is not None and any(report.debts.values())
    if owes:
        assert report.debts is not None
        for sym, v in report.debts.items():
            click.echo(f"  you owe {_amount_text(terms[sym], v, debt=True)}")
    for name, want in expected.items():
        sym, debt = _expect_column(name, report.debts)
        v = (report.debts or {})[sym] if debt else report.amounts[sym]
        click.echo(f"  as you expected: {name} {_decimal(v, terms[sym].proven_decimals)}"
                   f" (--expect {name}={want})")
    if owes:
        click.echo("your debts are proven rounded down; check them: an overstated debt is a "
                   "receivable the protocol does not have")
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
    click.echo("checked:")
    for tag in report.checks:
        click.echo(f"  - {words.passed(tag)}")
    if report.not_checked:
        click.echo("NOT checked: " + "; ".join(words.unchecked(k) for k in report.not_checked)
                   + ". Pass --bundle DIR to verify the bundle in full (what `zksolv verify "
                   "DIR` checks).")
    click.echo(f"bundle hash {report.bundle_hash.hex()}")
    click.echo(f"root {report.root_hash.hex()}")
    click.echo("chain: " + holder_link_text(report.epoch, report.prev_epoch,
                                            report.prev_bundle_hash))
    for line in _asset_lines(report.assets, report.price_decimals):
        click.echo(line)
    if report.totals is None:
        click.echo("  totals hidden by the operator")
    else:
        for a, total in zip(report.assets, report.totals, strict=True):
            click.echo(f"  {a.symbol}: {_coverage_text(a, total)}")
    click.echo(_operator_line(report.operator, report.operator_pinned))
    if report.bundle is not None:
        b = report.bundle
        click.echo(
            f"bundle verified in full: your leaf is in range-proof shard "
            f"{b.shard_of_leaf(report.leaf_index)}; every sibling on your path is a subtree of "
            f"leaves range-proved non-negative (shards listed with --json) and every node was "
            "recomputed from those leaves, so nothing on your path subtracts from your balance"
        )
    _echo_freshness(fresh)


def _amount_text(asset: Any, units: int, *, debt: bool = False) -> str:
    """Tokens first, then the proof units they are, named:
    ``ETH 0.000053090 (53090 units of 10^-9 ETH, rounded up; the token has 18
    decimals)``; a debt (``debt``) is rounded down."""
    pd = asset.proven_decimals
    text = f"{asset.symbol} {_decimal(units, pd)} ({units} units of 10^-{pd} {asset.symbol}"
    if pd != asset.decimals:
        text += (f", rounded {'down' if debt else 'up'}; the token has {asset.decimals} "
                 "decimals")
    return text + ")"


def _expect_column(name: str, debts: dict[str, int] | None) -> tuple[str, bool]:
    """An --expect name's asset symbol and whether it names a debt
    (``SYM.debt`` of a borrowable asset), as the verifier reads it."""
    from zksolv.circuits.epoch import DEBT_SUFFIX

    base = name[: -len(DEBT_SUFFIX)]
    if debts is not None and name.endswith(DEBT_SUFFIX) and base in debts:
        return base, True
    return name, False


def _coverage_text(asset: Any, total: int) -> str:
    """A revealed total owed in one asset against its proven reserves."""
    pd = asset.proven_decimals
    owed = (f"owed {_decimal(total, pd)} {asset.symbol} in total (revealed; it opens the "
            "root commitment)")
    if total == 0:
        return owed + "; nothing owed"
    return owed + f"; reserves cover {asset.proven_reserves * 100 / total:,.2f}% of it"
