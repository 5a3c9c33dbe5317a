"""``zksolv bench engine``: speed and memory of the margin-engine simulator.

Two measurements:

- speed: a scenario at ``--accounts`` x ``--epochs`` (default 10^5 x 100,
  target <= 60 s), timed separately for the simulation alone and for the full
  run with every epoch snapshot and the metrics written to a temporary
  directory (deleted afterwards);
- memory: a run at ``--memory-accounts`` (default 10^6, target <= 2 GB peak)
  for ``--memory-epochs`` epochs, snapshots included, in a fresh child process
  whose peak resident set size is read with ``resource.getrusage``;
- with ``--mechanisms``: for each liquidation mechanism (auctions, vAMM,
  isolated margin, block space, bridge), its built-in scenario at the same
  size, simulated with the mechanism on and with it switched off (the ratio is
  its cost), and written in full with it on (against the same 60 s target).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from zksolv.cli.common import echo_json, reports_errors

if TYPE_CHECKING:
    from zksolv.engine.scenario import Scenario

SPEED_TARGET_S = 60.0
MEMORY_TARGET_MB = 2048.0

_CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
from zksolv.engine.output import write_run
from zksolv.engine.scenario import load_scenario
from zksolv.engine.simulator import Simulation
scenario, accounts, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    sim = Simulation(load_scenario(scenario), accounts=accounts, epochs=epochs)
    write_run(Path(tmp) / "run", sim)
elapsed = time.perf_counter() - t0
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_kib": peak_kib, "seconds": elapsed}))
"""


def _memory_run(scenario: str, accounts: int, epochs: int) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, scenario, str(accounts), str(epochs)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise click.ClickException(f"memory run failed: {proc.stderr.strip().splitlines()[-1:]}")
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _timed(sc: Scenario, accounts: int, epochs: int, write: bool) -> float:
    """Seconds to build and run a simulation (and write it, if ``write``)."""
    from zksolv.engine.output import write_run
    from zksolv.engine.simulator import Simulation

    t0 = time.perf_counter()
    sim = Simulation(sc, accounts=accounts, epochs=epochs)
    if write:
        with tempfile.TemporaryDirectory() as tmp:
            write_run(Path(tmp) / "run", sim)
    else:
        for _ in sim.run():
            pass
    return time.perf_counter() - t0


def _mechanism_runs(accounts: int, epochs: int, no_write: bool) -> dict[str, object]:
    """Seconds per mechanism: simulated on and off, and written in full with it on."""
    from zksolv.engine.scenario import MECHANISM_SCENARIOS, load_scenario, without_mechanism

    out: dict[str, object] = {}
    for mechanism, name in MECHANISM_SCENARIOS:
        sc = load_scenario(name)
        on = _timed(sc, accounts, epochs, False)
        off = _timed(without_mechanism(sc, mechanism), accounts, epochs, False)
        out[f"{mechanism}_scenario"] = name
        out[f"{mechanism}_simulate_seconds"] = round(on, 3)
        out[f"{mechanism}_off_simulate_seconds"] = round(off, 3)
        out[f"{mechanism}_cost_ratio"] = round(on / off, 3)
        if not no_write:
            full = _timed(sc, accounts, epochs, True)
            out[f"{mechanism}_simulate_and_write_seconds"] = round(full, 3)
            out[f"{mechanism}_speed_target_met"] = full <= SPEED_TARGET_S
    return out


@click.command()
@click.option("--scenario", default="crash-2020-03", show_default=True,
              help="Built-in scenario name or scenario file to run.")
@click.option("--accounts", type=click.IntRange(1), default=100_000, show_default=True,
              help="Accounts for the speed run.")
@click.option("--epochs", type=click.IntRange(1), default=100, show_default=True,
              help="Epochs for the speed run.")
@click.option("--memory-accounts", type=click.IntRange(0), default=1_000_000,
              show_default=True, help="Accounts for the memory run (0 skips it).")
@click.option("--memory-epochs", type=click.IntRange(1), default=3, show_default=True,
              help="Epochs for the memory run (snapshots written).")
@click.option("--no-write", is_flag=True, help="Time the simulation only, write nothing.")
@click.option("--mechanisms", is_flag=True,
              help="Also time each liquidation mechanism's scenario, on and off (slow: about "
                   "three speed runs per mechanism).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@reports_errors
def engine(scenario: str, accounts: int, epochs: int, memory_accounts: int,
           memory_epochs: int, no_write: bool, mechanisms: bool, as_json: bool) -> None:
    """Time the simulator at ACCOUNTS x EPOCHS and measure peak memory at
    MEMORY-ACCOUNTS. Quick run: --accounts 10000 --epochs 10 --memory-accounts 0."""
    from zksolv.engine.output import write_run
    from zksolv.engine.scenario import load_scenario
    from zksolv.engine.simulator import Simulation

    sc = load_scenario(scenario)
    t0 = time.perf_counter()
    sim = Simulation(sc, accounts=accounts, epochs=epochs)
    for _ in sim.run():
        pass
    simulate_s = time.perf_counter() - t0
    result: dict[str, object] = {
        "scenario": sc.name,
        "speed_accounts": accounts,
        "speed_epochs": epochs,
        "steps_per_epoch": sc.steps_per_epoch,
        "simulate_seconds": round(simulate_s, 3),
        "simulate_account_epochs_per_second": round(accounts * epochs / simulate_s),
        "speed_target_seconds": SPEED_TARGET_S,
    }
    if not no_write:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_run(Path(tmp) / "run", Simulation(sc, accounts=accounts, epochs=epochs))
            full_s = time.perf_counter() - t0
        result["simulate_and_write_seconds"] = round(full_s, 3)
        result["speed_target_met"] = full_s <= SPEED_TARGET_S
    else:
        result["speed_target_met"] = simulate_s <= SPEED_TARGET_S
    if mechanisms:
        result.update(_mechanism_runs(accounts, epochs, no_write))
    if memory_accounts:
        mem = _memory_run(scenario, memory_accounts, memory_epochs)
        peak_mb = mem["peak_kib"] / 1024.0
        result.update({
            "memory_accounts": memory_accounts,
            "memory_epochs": memory_epochs,
            "memory_run_seconds": round(mem["seconds"], 3),
            "memory_peak_rss_mb": round(peak_mb, 1),
            "memory_target_mb": MEMORY_TARGET_MB,
            "memory_target_met": peak_mb <= MEMORY_TARGET_MB,
        })
    result["this_process_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    if as_json:
        echo_json(result)
        return
    click.echo(f"{'measure':38s} {'value':>14s}")
    for key, value in result.items():
        click.echo(f"{key:38s} {value!s:>14s}")
