"""``zksolv bench soak``: prove shards for a long time and check every one.

Runs ``zksolv.prover.soak`` on every core: each task proves a few shards on
the fast core and checks each leaf commitment, subtree node and proof on the
reference backend. A mismatch stops the run (``--keep-going`` does not) and
is written as a reproducer, ``OUT/fault-SEED-CASE.json``; ``--replay FILE``
runs that case again. ``OUT/soak.json`` holds the running totals, rewritten
after every task, so a run stopped any way leaves its count behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import click
import msgspec

from zksolv.cli.common import echo_json, reports_errors
from zksolv.core import mcl
from zksolv.errors import InputError
from zksolv.executors import die_with_parent
from zksolv.prover import soak
from zksolv.safeio import decode_json, read_bounded, write_atomic

REPRODUCER_LIMIT = 1 << 22


class Reproducer(msgspec.Struct, forbid_unknown_fields=False):
    format: str
    seed: str
    case: int
    assets: int
    leaves: int
    fast: str
    reference: str
    inputs_sha256: str
    margin: bool = False
    cases: int = 1


def _seed(text: str | None) -> bytes:
    if text is None:
        return secrets.token_bytes(16)
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise click.BadParameter("not hex", param_hint="--seed") from None
    if not 1 <= len(seed) <= 64:
        raise click.BadParameter("1 to 64 bytes of hex", param_hint="--seed")
    return seed


def _conditions(jobs: int, loads: list[float]) -> dict[str, Any]:
    return {
        "jobs": jobs,
        "cpus": os.cpu_count(),
        "load_1min_min": min(loads) if loads else None,
        "load_1min_median": statistics.median(loads) if loads else None,
        "load_1min_max": max(loads) if loads else None,
    }


def _write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), mode=0o644)


def _replay(path: Path, times: int, as_json: bool) -> None:
    raw, _ = read_bounded(path, REPRODUCER_LIMIT, what="soak reproducer")
    rep = decode_json(raw, Reproducer, fail=lambda why: InputError(str(path), why))
    if rep.format != soak.REPRODUCER_FORMAT:
        raise InputError(str(path), f"format {rep.format!r}, expected {soak.REPRODUCER_FORMAT!r}")
    try:
        spec = soak.SoakSpec(bytes.fromhex(rep.seed), rep.assets, rep.leaves, rep.fast,
                             rep.reference, rep.margin)
    except ValueError as exc:
        raise InputError(str(path), str(exc)) from exc
    if not 0 <= rep.case <= soak.MAX_CASE:
        raise InputError(f"{path}: $.case", f"{rep.case} is not a case number (0 to "
                         f"{soak.MAX_CASE})")
    if not 1 <= rep.cases <= 64:
        raise InputError(f"{path}: $.cases", f"{rep.cases} cases; a span is 1 to 64 cases")
    for name in (spec.fast, spec.reference):
        if name == "mcl" and not mcl.available():
            raise InputError(str(path), f"names the mcl backend, which cannot be loaded here: "
                             f"{mcl.library_error()}")
    job, _ = soak.case_job(spec, rep.case)
    if soak.inputs_digest(job) != rep.inputs_sha256:
        raise InputError(str(path), "this zksolv derives other inputs from the seed and case "
                         "(inputs_sha256 differs): the reproducer comes from another version")
    soak.warm(spec)
    faults = soak.replay(spec, rep.case, times, rep.cases)
    out = {"case": rep.case, "cases": rep.cases, "runs": times,
           "faults": [dataclasses.asdict(f) for f in faults]}
    if as_json:
        echo_json(out)
        return
    span = "" if rep.cases == 1 else f" (with the {rep.cases - 1} after it, as one task)"
    click.echo(f"case {rep.case}{span}: {times} runs, {len(faults)} faults seen")
    for f in faults:
        click.echo(f"  {f.check}: {f.detail} (repeated: {f.repeated}; first difference: "
                   f"{f.first_difference})")


def _worker_init() -> None:
    """A soak worker: dies with its parent, ignores SIGINT (Ctrl-C reaches
    the whole process group; the parent stops the run and the running tasks
    finish) and keeps SIGTERM's default, which the pool uses to end its
    workers. A SIGTERM sent to the whole group ends them too: the parent,
    stopping by then, does not count that as a finding."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _restored(handlers: dict[signal.Signals, Any]) -> Iterator[None]:
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@click.command("soak")
@click.option("--minutes", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Stop submitting cases after this long (running tasks finish).")
@click.option("--cases", type=click.IntRange(min=1), default=None,
              help="Stop after this many cases instead (or whichever comes first).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: every core].")
@click.option("--batch", type=click.IntRange(min=1, max=64), default=8, show_default=True,
              help="Cases per task; their proofs are also checked as one batch.")
@click.option("--leaves", type=int, default=256, show_default=True,
              help="Leaves per shard (a power of two), as in an epoch.")
@click.option("--assets", type=click.IntRange(1, 8), default=None,
              help="Assets per leaf [default: 1; with --margin 2].")
@click.option("--margin", is_flag=True,
              help="Lending shards: the last asset is borrowable, so each shard also "
                   "proves its debts (64-bit) and every leaf's margin health (128-bit).")
@click.option("--seed", default=None, help="Hex seed of the cases [default: random]; "
              "a case is fully determined by the seed and its index.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("soak"), show_default=True,
              help="Folder for soak.json (running totals) and fault reproducers.")
@click.option("--keep-going", is_flag=True, help="Do not stop at the first fault.")
@click.option("--replay", "replay_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Run the case of a reproducer again instead.")
@click.option("--times", type=click.IntRange(min=1), default=3, show_default=True,
              help="With --replay: how many times.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@reports_errors
def soak_cmd(minutes: float, cases: int | None, jobs: int | None, batch: int, leaves: int,
             assets: int | None, margin: bool, seed: str | None, out_dir: Path, keep_going: bool,
             replay_file: Path | None, times: int, as_json: bool) -> None:
    """Prove shards on the fast core for a while and check every result.

    Each case is a shard of LEAVES leaves (values zero, tiny, single bits,
    2^64 - 1 and uniform 64-bit, in a fixed mix) proven exactly as an epoch
    proves it, with randomness derived from the seed. Checked independently
    on the reference backend (arkworks): every leaf commitment, every
    subtree node, every proof; on the fast backend: the proof's own
    equation and the task's batch equation. Exit 0 with no fault, 1 when a
    fault was seen (its reproducer path is printed).

    \b
    Examples:
      zksolv bench soak --minutes 120           # both cores, two hours
      zksolv bench soak --cases 64 --jobs 1 --json
      zksolv bench soak --replay soak/fault-SEED-CASE.json --times 10
    """
    if replay_file is not None:
        _replay(replay_file, times, as_json)
        return
    try:
        spec = soak.SoakSpec(_seed(seed), assets or (2 if margin else 1), leaves,
                             margin=margin)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not mcl.available():
        raise InputError("mcl", f"the fast core cannot be loaded here: {mcl.library_error()}")
    jobs = jobs or os.cpu_count() or 1
    out_dir.mkdir(parents=True, exist_ok=True)
    soak.warm(spec)
    deadline = time.monotonic() + 60 * minutes
    t_start = time.monotonic()
    loads: list[float] = []
    done = 0
    faults: list[soak.Fault] = []
    kept: list[str] = []
    spent: dict[str, list[float]] = {}
    next_case = 0
    last_line = 0.0
    broken = False

    def status() -> dict[str, Any]:
        return {
            "seed": spec.seed.hex(), "assets": spec.assets, "leaves": leaves,
            "margin": margin,
            "fast": spec.fast, "reference": spec.reference,
            **soak.summarize(done, faults, time.monotonic() - t_start),
            "conditions": _conditions(jobs, loads),
            "seconds_per_case": {k: round(statistics.median(v), 4) for k, v in spent.items()},
            "reproducers": kept,
        }

    def more() -> bool:
        if faults and not keep_going:
            return False
        if cases is not None and next_case >= cases:
            return False
        return time.monotonic() < deadline

    stopping: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if not stopping:
            click.echo("soak: stopping; the running tasks finish and are counted", err=True)
        stopping.append(signum)

    def record(report: soak.TaskReport) -> None:
        nonlocal done
        done += report.count
        loads.append(round(os.getloadavg()[0], 2))
        for key, secs in report.seconds.items():
            spent.setdefault(key, []).append(secs / max(report.count, 1))
        for fault in report.faults:
            faults.append(fault)
            cond = {**_conditions(jobs, loads[-1:]), "pid": report.pid if report.pid > 0 else None,
                    "elapsed_s": round(time.monotonic() - t_start, 1)}
            name = out_dir / f"fault-{spec.seed.hex()}-{fault.case}.json"
            _write_json(name, soak.reproducer(spec, fault, cond))
            kept.append(str(name))
            click.echo(f"soak: FAULT in case {fault.case}: {fault.check}: {fault.detail}; "
                       f"reproducer {name}", err=True)
        _write_json(out_dir / "soak.json", status())

    # SIGTERM (a scheduler's stop, kill) stops the run as Ctrl-C does: no new
    # task, the running ones finish and count, totals written. SIGINT is
    # caught even where the shell that started the soak in the background
    # ignored it, so `kill -INT` stops it the same way.
    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    ctx = multiprocessing.get_context("fork")
    with _restored(before), ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                                initializer=_worker_init) as pool:
        running: dict[Future[soak.TaskReport], tuple[int, int]] = {}
        while True:
            while not stopping and not broken and more() and len(running) < 2 * jobs:
                count = batch if cases is None else min(batch, cases - next_case)
                try:
                    task = pool.submit(soak.run_cases, spec, next_case, count)
                except BrokenProcessPool:
                    broken = True
                    break
                running[task] = (next_case, count)
                next_case += count
            if not running:
                break
            finished, _ = wait(list(running), timeout=1, return_when=FIRST_COMPLETED)
            for fut in finished:
                first, count = running.pop(fut)
                try:
                    record(fut.result())
                except BrokenProcessPool as exc:
                    # a crash in the C library ends the worker process, and the
                    # pool with it: one finding (the task that was running;
                    # the others in flight are not run), none once stopping
                    if not broken and not stopping:
                        record(soak.TaskReport(first, 0, -1, faults=[soak.Fault(
                            first, "worker-died", f"a worker process ended during the task "
                            f"of cases {first}..{first + count - 1}: {exc}", span=count)]))
                    broken = True
                except Exception as exc:  # noqa: BLE001 - the task's own error is a finding
                    record(soak.TaskReport(first, 0, -1, faults=[soak.Fault(
                        first, "error", f"the task of cases {first}..{first + count - 1} "
                        f"raised {type(exc).__name__}: {exc}", span=count)]))
            now = time.monotonic()
            if now - last_line >= 30:
                last_line = now
                left = max(0.0, (deadline - now) / 60)
                click.echo(f"soak: {done:,} cases, {len(faults)} faults, {left:.1f} min left, "
                           f"load {os.getloadavg()[0]:.2f}", err=True)
    if stopping:
        click.echo(f"soak: stopped after {done:,} cases", err=True)
    if broken:
        click.echo(f"soak: the worker pool broke after {done:,} cases; stopped", err=True)
    result = status()
    _write_json(out_dir / "soak.json", result)
    if as_json:
        echo_json(result)
    else:
        rate = "-" if not done else f"{len(faults)}/{done:,}"
        click.echo(f"{'cases checked':<28}{done:,}")
        click.echo(f"{'faults':<28}{rate}")
        click.echo(f"{'wall time':<28}{result['seconds']:.0f} s on {jobs} processes")
        for key, secs in result["seconds_per_case"].items():
            click.echo(f"{'  ' + key + ' s/case (median)':<28}{secs:.3f}")
        c = result["conditions"]
        if loads:
            click.echo(f"{'load (1 min) min/med/max':<28}{c['load_1min_min']:.2f} / "
                       f"{c['load_1min_median']:.2f} / {c['load_1min_max']:.2f}")
        click.echo(f"{'seed':<28}{spec.seed.hex()}")
        for path in kept:
            click.echo(f"reproducer: {path}")
    if faults:
        sys.exit(1)
