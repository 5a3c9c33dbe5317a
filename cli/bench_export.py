"""``zksolv bench export``: ``inclusion export --all`` on a synthetic
inclusion database of N accounts (one asset).

The database is built as the prover builds it (openings, leaf commitments,
every tree node, a signed manifest naming the root) but without the range
proofs, which export never reads: a 2^20-account database takes a couple of
minutes instead of hours. The figure is the wall time of the one-pass
export (checks and files), the old way's cost per account (one
``InclusionDB.export``, which runs the holder's check) for comparison, and
the bytes written."""

from __future__ import annotations

import os
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import click

from zksolv.cli.common import backend_of, echo_json, reports_errors


def synthetic_database(path: Path, accounts: int, backend: object) -> None:
    """An inclusion database of ``accounts`` accounts (epoch 1, one asset)."""
    from zksolv.circuits import bundle as layout
    from zksolv.circuits import epoch as circ
    from zksolv.core.field import random_scalars
    from zksolv.core.pedersen import commit_many
    from zksolv.prover import keys
    from zksolv.prover.epoch import build_manifest
    from zksolv.prover.inclusion_db import InclusionDB

    be = backend  # a zksolv.core.group.Backend
    master = keys.generate_master_key()
    signer = keys.signing_key(master)
    prk = keys.hkdf_extract(master)
    depth = circ.depth_for(accounts)
    leaves = 1 << depth
    epoch = 1
    rng = random.Random(1)
    values = [rng.randrange(1 << 40) if i < accounts else 0 for i in range(leaves)]
    blinds = random_scalars(leaves)
    ids = [f"acct-{i:08d}" for i in range(accounts)]
    salts = [keys.account_salt(prk, epoch, acc) for acc in ids]
    hashes = [circ.leaf_hash(epoch, acc, s) for acc, s in zip(ids, salts, strict=True)]
    hashes += [secrets.token_bytes(32) for _ in range(leaves - accounts)]
    points = commit_many(be, values, blinds)  # type: ignore[arg-type]
    enc = be.encode_many(points)  # type: ignore[attr-defined]
    asset = circ.AssetTerms("USD", 6, 100, 10_000, (1 << 64) - 1)
    header = circ.EpochHeader(epoch, 1_700_000_001, 2, (asset,), None, None, depth,
                              circ.shard_leaves_for(depth, 1), False,
                              keys.public_key_bytes(signer))
    db = InclusionDB.create(path, k=1, depth=depth, epoch=epoch, symbols=("USD",))
    db.insert_leaves(
        (i, ids[i] if i < accounts else None, (values[i],), (blinds[i],),
         salts[i] if i < accounts else None, hashes[i])
        for i in range(leaves)
    )
    db.insert_level(0, 0, [e + h for e, h in zip(enc, hashes, strict=True)])
    level: circ.Level = ([[p] for p in points], list(enc), hashes)
    for lvl, level in enumerate(circ.tree_levels(be, 1, level), start=1):  # type: ignore[arg-type]  # noqa: B020
        db.insert_level(lvl, 0, [c + h for c, h in zip(level[1], level[2], strict=True)])
    root_hash, root_enc = level[2][0], [level[1][0]]
    fake = {"sha256": "00" * 32, "bytes": 0}
    files = {layout.LEAVES_FILE: fake, layout.RANGE_FILE: fake, layout.SOLVENCY_FILE: fake}
    manifest = build_manifest(header, root_hash, root_enc, files, totals=None)  # type: ignore[arg-type]
    raw = layout.manifest_bytes(manifest)
    bhash = layout.bundle_hash(raw)
    db.finish(bundle_hash=bhash, root_hash=root_hash, accounts=accounts, manifest=raw,
              signature=signer.sign(layout.signature_message(bhash)))
    db.close()


@click.command()
@click.option("--accounts", type=click.IntRange(min=1), default=1 << 12, show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=20, show_default=True,
              help="One-account exports to time, for comparison.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores).")
@click.option("--dir", "where", type=click.Path(file_okay=False), default=None,
              help="Where to build the database and the files (a temporary directory "
                   "inside it, removed afterwards; default: the system's temporary "
                   "directory). The file system decides much of the time.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@reports_errors
def export(ctx: click.Context, accounts: int, samples: int, jobs: int | None,
           where: str | None, as_json: bool) -> None:
    """Export every proof of a synthetic N-account database in one pass.

    Reports the wall time of `inclusion export --all` (checks, files and the
    final flush to disk), the CPU time it used in user and kernel mode (the
    kernel's share is file creation), and one account at a time for
    comparison."""
    from zksolv.prover.export import export_directory
    from zksolv.prover.inclusion_db import InclusionDB

    backend = backend_of(ctx)
    jobs = jobs or os.cpu_count() or 1
    if where is not None:
        Path(where).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zksolv-bench-", dir=where) as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        synthetic_database(root / "db.sqlite", accounts, backend)
        t_build = time.perf_counter() - t0
        db = InclusionDB.open(root / "db.sqlite")
        try:
            c0, t0 = os.times(), time.perf_counter()
            count = export_directory(root / "db.sqlite", root / "proofs", backend=backend,
                                     jobs=jobs).accounts
            t_export = time.perf_counter() - t0
            c1 = os.times()
            user = c1.user - c0.user + c1.children_user - c0.children_user
            system = c1.system - c0.system + c1.children_system - c0.children_system
            size = sum(f.stat().st_size for d in os.scandir(root / "proofs")
                       for f in os.scandir(d.path))
            rng = random.Random(3)
            one = []
            for i in rng.sample(range(accounts), min(samples, accounts)):
                t0 = time.perf_counter()
                db.export(f"acct-{i:08d}")
                one.append(time.perf_counter() - t0)
        finally:
            db.close()
    per_one = statistics.median(one)
    out = {
        "accounts": accounts, "files": count, "build_s": round(t_build, 2),
        "export_s": round(t_export, 2), "us_per_account": round(t_export / count * 1e6, 1),
        "cpu_user_s": round(user, 2), "cpu_system_s": round(system, 2),
        "load_avg_1m": round(os.getloadavg()[0], 2), "directory": str(Path(tmp).parent),
        "bytes": size, "one_account_export_ms": round(per_one * 1e3, 2),
        "one_by_one_extrapolated_s": round(per_one * accounts, 1), "backend": backend.name,
        "jobs": jobs,
    }
    if as_json:
        echo_json(out)
        return
    click.echo(f"export --all of {accounts} accounts ({backend.name}, {jobs} jobs): "
               f"{t_export:.1f} s, "
               f"{out['us_per_account']} us per account, {size / 2**20:.0f} MiB in {count} files")
    click.echo(f"  CPU: {user:.1f} s user, {system:.1f} s kernel (file creation) "
               f"in {out['directory']}")
    click.echo(f"  one account at a time: {per_one * 1e3:.2f} ms each (median), "
               f"{per_one * accounts:.0f} s for all")
    click.echo(f"  (synthetic database built in {t_build:.1f} s, not counted)")
