"""``zksolv watch``: prove each new epoch snapshot as it appears."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from zksolv.cli.common import backend_of, progress, reports_errors
from zksolv.errors import InputError
from zksolv.executors import SCHEDULER_HELP, make_executor


@click.command()
@click.argument("snapshots", type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for the bundles (epoch-NNNNNN). Nothing private goes there: "
                   "their inclusion databases and work areas and the status file go to the "
                   "private data directory ($ZKSOLV_DATA_DIR, else ~/.local/share/zksolv).")
@click.option("--key", "key", type=click.Path(), default=None,
              help="Operator key file (else $ZKSOLV_OPERATOR_KEY).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help=SCHEDULER_HELP)
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between looks at SNAPSHOTS (and, with --once, between the "
                   "two looks a snapshot that does not decode gets).")
@click.option("--once", is_flag=True, help="Prove what is there now, then exit.")
@click.option("--rpc", default=None, metavar="URL",
              help="Read the reserves of a snapshot that names reserve sources with a "
                   "block_window and has no reserves.json yet, at the block derived from "
                   "the chain (as `zksolv reserves fetch` does), once per epoch. Signing "
                   "stays the holders' (zksolv reserves sign).")
@click.option("--rpc-timeout", type=click.FloatRange(0.1, 600), default=10.0,
              show_default=True, help="Seconds allowed per RPC call.")
@click.pass_context
@reports_errors
def watch(ctx: click.Context, snapshots: str, out: str, key: str | None, jobs: int | None,
          scheduler: str | None, interval: float, once: bool, rpc: str | None,
          rpc_timeout: float) -> None:
    """Prove every new epoch snapshot in SNAPSHOTS, in epoch order, chaining
    each bundle to the last one proven.

    One watcher per OUT: it holds a lock on OUT/.zksolv-watch.lock (pid,
    host, start time) while it runs; a second watcher, or a `zksolv prove
    --out OUT/...`, exits 2 naming it. The lock dies with its process: a
    killed watcher blocks nobody.

    A snapshot is proven once it is complete: header.json and accounts.csv
    present and readable, header.json decodes, and accounts.csv ends with a
    newline and holds at least account_count rows after its column header
    (docs/snapshot-format.md: an engine writing in place, not by rename, may
    write the files in any order). Until then,
    and for any entry that cannot be read now (a symlink loop, permission
    denied, gone since listed), one line says so and the next scan looks
    again. Only a complete snapshot is refused as malformed; a header.json
    that does not decode (or a file that is not a regular file) only once
    unchanged over two looks (--once looks twice, --interval apart). A
    refused snapshot whose files change is looked at again.

    A snapshot whose header names reserve_sources is complete only with its
    reserves.json fetched and signed by every holder that signs: until then
    one line says what is missing and the command that supplies it (zksolv
    reserves fetch / sign), and the next scan looks again. Evidence that is
    not this snapshot's (another epoch, chain or operator) or a signature
    that does not recover is refused as malformed, as prove refuses it, and
    looked at again when reserves.json changes. With --rpc, the watch reads
    the reserves itself when the header names a block_window (the block is
    derived from the chain, so it picks nothing), once per epoch: recorded
    in the status file, never read again at another block; without a
    window the block is the operator's to choose (reserves fetch --block N).
    The holders still sign.

    A refused epoch (insolvent: exit 3, malformed: exit 2) is never skipped
    silently: one log line, and an entry in the status file (private, mode
    0600, machine-readable: epoch, status, exit code, reason; in the data
    directory, DATA_DIR/watch/NAME.HASH.watch-status.json, NAME.HASH from
    OUT's absolute path; its path is printed at the start); watching goes
    on, and the next bundle links to the last epoch proven solvent: its
    signed header declares the epochs between NOT proven solvent, so `zksolv
    verify` lists the gap, for that bundle alone as for the chain (as `prove
    --prev LAST --allow-gap` would). Ctrl-C or SIGTERM stops it (exit 130);
    rerunning the same command resumes, an interrupted epoch included.

    \b
    Example:
      zksolv simulate --accounts 1000 --epochs 24 --out run/ &
      zksolv watch run/ --out bundles/ --key operator.key
    """
    from zksolv.prover.keys import load_master_key
    from zksolv.prover.watch import Watcher

    master = load_master_key(key, warn=lambda msg: click.echo(f"warning: {msg}", err=True))
    folder = Path(snapshots)
    jobs = jobs or os.cpu_count() or 1
    executor = make_executor(scheduler, jobs) if scheduler else None

    def bar(items, total, desc):  # type: ignore[no-untyped-def]
        return progress(items, total=total, desc=desc, quiet=False)

    fetch_reserves = None
    if rpc is not None:
        from zksolv.prover.reserves import fetch_reserves as fetch
        from zksolv.snapshot import Snapshot

        def fetch_reserves(snap: Snapshot) -> Any:
            return fetch(snap, rpc, timeout=rpc_timeout)

        from zksolv import chain

        if not chain.available():
            raise InputError("--rpc", "reading reserves from a chain needs the chain extra: "
                                      "install zksolv[chain]")
    watcher = Watcher(folder, Path(out), master, jobs=jobs, executor=executor,
                      backend=backend_of(ctx), progress=bar,
                      log=lambda line: click.echo(line, err=True),
                      fetch_reserves=fetch_reserves)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    before: dict[signal.Signals, Any] = {}
    try:
        watcher.lock()
        if once:
            if folder.is_dir():
                try:
                    watcher.once(settle=interval)
                except OSError as exc:
                    raise InputError(str(folder), f"scan failed: {exc.strerror or exc}") from exc
            return
        # Ctrl-C or a service manager's SIGTERM stop it cleanly, even when it
        # was started from a shell that ignores SIGINT in background jobs.
        for sig in (signal.SIGINT, signal.SIGTERM):
            before[sig] = signal.signal(sig, stop)
        click.echo(f"watching {folder} (every {interval:g} s; Ctrl-C to stop); status in "
                   f"{watcher.status_path} (private)", err=True)
        watcher.run(interval=interval, stop=lambda: False)
    except KeyboardInterrupt:
        click.echo("stopped; run the same command again to continue", err=True)
        sys.exit(130)
    finally:
        watcher.close()
        for sig, handler in before.items():
            signal.signal(sig, handler)
        if executor is not None:
            executor.close()
