"""``zksolv simulate``: run the margin-engine simulator and write one snapshot
per epoch plus a metrics table and chart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zksolv.cli.common import progress, reports_errors
from zksolv.engine.output import check_out_dir, write_run
from zksolv.engine.scenario import builtin_names, load_scenario
from zksolv.engine.simulator import EpochResult, Simulation
from zksolv.errors import InputError

if TYPE_CHECKING:
    from zksolv.prover.run import ChainProver, EpochProof


@click.command(context_settings={"max_content_width": 100})
@click.option("--scenario", "scenario_name", required=True, metavar="NAME|FILE",
              help=f"A built-in scenario name ({', '.join(builtin_names())}) or the path "
                   "of a scenario TOML file.")
@click.option("--accounts", type=click.IntRange(1, 10_000_000), default=None,
              help="Number of accounts (default: the scenario's 'accounts').")
@click.option("--epochs", type=click.IntRange(1, 100_000), default=None,
              help="Number of epochs to run (default: the scenario's 'epochs').")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory; must not exist (or be empty). Written atomically "
                   "(with --prove: in place, epoch by epoch).")
@click.option("--seed", type=click.IntRange(0, (1 << 63) - 1), default=None,
              help="Random seed (default: the scenario's 'seed'). Same seed, same bytes.")
@click.option("--no-snapshots", is_flag=True,
              help="Write only the metrics, not the per-epoch snapshots.")
@click.option("--prove", "prove_epochs", is_flag=True,
              help="Prove each epoch as soon as it is simulated, as one chain, into "
                   "OUT/bundles/ (needs --key or $ZKSOLV_OPERATOR_KEY). An epoch the prover "
                   "refuses (insolvent) gets no bundle; the next bundle links to the last "
                   "epoch proven solvent and declares the gap. Refused epochs are marked in "
                   "the metrics and the chart.")
@click.option("--key", "key", type=click.Path(), default=None,
              help="Operator key file for --prove (else $ZKSOLV_OPERATOR_KEY).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes for --prove (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no summary.")
@click.pass_context
@reports_errors
def simulate(ctx: click.Context, scenario_name: str, accounts: int | None, epochs: int | None,
             out_dir: str, seed: int | None, no_snapshots: bool, prove_epochs: bool,
             key: str | None, jobs: int | None, quiet: bool) -> None:
    """Replay how a margin engine behaves (and fails) under a scenario.

    The simulator models a cross-margin perpetual-futures protocol: accounts
    post several collateral assets (haircut by liquidity) and hold leveraged
    positions; an oracle reports prices late; liquidators close unhealthy
    accounts only when their reward beats the gas cost, and their selling moves
    a finite order book. Bad debt falls on the insurance fund, then on
    profitable accounts. Scenarios can also switch on Dutch collateral auctions
    with keepers, vAMM execution, isolated margin, priority-fee liquidation in
    limited block space and collateral bridged from a second chain.

    \b
    Writes to OUT:
      epoch-000001/ ...  one solvency snapshot per epoch (docs/snapshot-format.md):
                         what the protocol owes each account, reserves, prices, haircuts;
                         with loans (auctions, borrowers) also each borrower's debt, as
                         far as its collateral backs it (the rest is the protocol's loss)
      metrics.csv/json   per epoch: liquidations, stalled liquidations, bad debt,
                         insurance fund, socialised loss, collateral, debts, liabilities,
                         the proven margin and whether prove refuses the epoch
      metrics.png        a chart of the same: refusals (a hole, or dust), and where the
                         engine failed (insurance fund exhausted, first stalled liquidation)

    With --prove each epoch is proven as soon as its snapshot is written,
    before the next one is simulated, and a line per epoch says what the
    prover did. Bundles go to OUT/bundles/ (public: publish that folder
    only), inclusion databases and work areas to OUT/private/ (0700). OUT
    itself holds the snapshots (every account's balances): never publish
    it. A refused epoch leaves a gap that the next bundle's signed header
    declares, so `zksolv verify OUT/bundles` checks one chain and lists the
    epochs NOT proven solvent. The run is then written in
    place, epoch by epoch: after Ctrl-C (exit 130), OUT keeps every epoch
    done, its bundle, and metrics covering them.

    \b
    Examples:
      zksolv simulate --scenario calm --accounts 10000 --epochs 24 --out run-calm
      zksolv simulate --scenario crash-2020-03 --out run-crash --seed 7
      zksolv prove run-crash/epoch-000048 --out bundle/ --key operator.key
      zksolv simulate --scenario cascade --accounts 200 --epochs 12 --out run \\
          --prove --key operator.key && zksolv verify run/bundles

    Scenario files are TOML; copy a built-in one from zksolv/engine/scenarios/
    and see docs/engine.md for every field. A bad file is refused with the file
    and field named, exit code 2.
    """
    master = None
    if prove_epochs:
        from zksolv.prover.keys import load_master_key

        if no_snapshots:
            raise InputError("--prove", "needs the snapshots: drop --no-snapshots")
        master = load_master_key(key, warn=lambda msg: click.echo(f"warning: {msg}", err=True))
    sc = load_scenario(scenario_name)
    out = Path(out_dir)
    check_out_dir(out)
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "not a directory")
    sim = Simulation(sc, accounts=accounts, epochs=epochs, seed=seed)
    if master is not None:
        summary = _simulate_and_prove(ctx, out, sim, master, jobs, quiet)
    else:
        summary = write_run(out, sim, lambda it: progress(it, total=sim.epochs, desc="epochs",
                                                          quiet=quiet),
                            snapshots=not no_snapshots)
    if quiet:
        return
    click.echo(f"scenario          {summary['scenario']} ({summary['scenario_source']})")
    click.echo(f"accounts, epochs  {summary['accounts']}, {summary['epochs']}  "
               f"seed {summary['seed']}")
    click.echo(f"liquidations      {summary['total_liquidations']} "
               f"(stalled, gas > reward: {summary['total_stalled']})")
    click.echo(f"bad debt          {summary['total_bad_debt_usd']:,.2f} USD "
               f"(insurance absorbed {summary['total_insurance_absorbed_usd']:,.2f}, "
               f"socialised {summary['total_socialised_loss_usd']:,.2f})")
    click.echo(f"insurance fund    {summary['final_insurance_fund_usd']:,.2f} USD at the end")
    click.echo(f"uncovered         {summary['final_uncovered_bad_debt_usd']:,.2f} USD at the end"
               + (f", peak {summary['peak_uncovered_bad_debt_usd']:,.2f} USD at epoch "
                  f"{summary['peak_uncovered_bad_debt_epoch']}"
                  if summary["peak_uncovered_bad_debt_epoch"] else ""))
    for line in insolvency_lines(summary):
        click.echo(line)
    if "proof_refused_epochs" in summary:
        for line in _proof_lines(summary, out):
            click.echo(line)
    holds = summary["identity_holds_every_epoch"]
    click.echo(f"identity          {'holds every epoch' if holds else 'BROKEN'}")
    for line in mechanism_lines(summary):
        click.echo(line)
    if not summary["chart"]:
        click.echo("chart             skipped: matplotlib is not installed "
                   "(pip install matplotlib); CSV and JSON written")
    click.echo(f"written           {out}/ (builtin scenarios: {', '.join(builtin_names())})")


def insolvency_lines(summary: dict[str, Any]) -> list[str]:
    """The summary's lines on solvency: the refused epochs and how far the
    worst was short, dust apart from holes, debts and where the engine
    failed."""
    lines = []
    insolvent = summary["insolvent_epochs"]
    if insolvent:
        shown = ", ".join(map(str, insolvent[:12])) + (" ..." if len(insolvent) > 12 else "")
        worst = []
        if summary["peak_snapshot_shortfall_epoch"] is not None:
            worst.append(f"worst valued shortfall {summary['peak_snapshot_shortfall_usd']:,.2f} "
                         f"USD at epoch {summary['peak_snapshot_shortfall_epoch']}")
        if summary["peak_asset_shortfall_epoch"] is not None:
            worst.append(f"worst per-asset shortfall {summary['peak_asset_shortfall_usd']:,.2f} "
                         f"USD at epoch {summary['peak_asset_shortfall_epoch']}")
        if summary["peak_snapshot_shortfall_epoch"] is None:
            worst.append("short in some asset only: in value, reserves covered liabilities")
        lines.append(f"insolvent epochs  {len(insolvent)} of {summary['epochs']}, first "
                     f"{summary['first_insolvent_epoch']} (prove refuses them, exit 3): {shown}; "
                     + "; ".join(worst))
        dust = summary["insolvent_dust_epochs"]
        if dust:
            lines.append(f"  of which dust   {', '.join(map(str, dust[:12]))}: short by less "
                         "than 0.01 USD, a rounding residue, not a hole")
    else:
        lines.append("insolvent epochs  none: every snapshot is provable")
    if summary.get("final_debts_usd") is not None:
        unbacked = summary["peak_unbacked_debt_epoch"]
        lines.append(f"debts             {summary['final_debts_usd']:,.2f} USD owed by borrowers "
                     "and backed by their collateral at the end (snapshot debts)"
                     + (f"; unbacked (the protocol's loss) peak "
                        f"{summary['peak_unbacked_debt_usd']:,.2f} USD at epoch {unbacked}"
                        if unbacked is not None else "; none unbacked"))
    failed = []
    if summary["insurance_exhausted_epoch"] is not None:
        failed.append(f"insurance fund exhausted at epoch {summary['insurance_exhausted_epoch']}")
    if summary["first_stalled_epoch"] is not None:
        failed.append(f"first stalled liquidation at epoch {summary['first_stalled_epoch']}")
    lines.append("engine failures   " + ("; ".join(failed) if failed else "none"))
    return lines


def _figure(value: object, unit: str) -> str:
    if not isinstance(value, int | float):
        return "not measured in this run"
    if unit == "USD":
        return f"{value:,.0f} USD"
    if unit == "fraction":
        return f"{100.0 * value:.1f} %"
    return f"{value:,.4g} {unit}".rstrip()


def mechanism_lines(summary: dict[str, Any]) -> list[str]:
    """Summary lines for the mechanisms a run turned on, and the published
    figures its scenario states beside the run's own."""
    lines = []
    if "total_auctions_started" in summary:
        lines.append(
            f"auctions          {summary['total_auctions_started']} started, "
            f"{summary['total_auctions_cleared']} cleared, "
            f"{summary['auctions_open_at_end']} open at the end")
        lines.append(
            f"                  collateral worth {summary['total_auction_collateral_usd']:,.2f} "
            f"USD sold for {summary['total_auction_proceeds_usd']:,.2f} "
            f"({100.0 * summary['auction_clearing_ratio']:.1f} % of market)")
        lines.append(
            f"                  near-zero bids: {summary['total_auction_zero_bids']} "
            f"({100.0 * summary['auction_zero_bid_share']:.1f} % of clearings), collateral "
            f"worth {summary['total_auction_zero_bid_collateral_usd']:,.2f} USD")
    if "total_priority_fees_usd" in summary:
        lines.append(
            f"liquidators took  {summary['total_liquidator_rewards_usd']:,.2f} USD of penalties "
            f"(priority fees {summary['total_priority_fees_usd']:,.2f}, gas "
            f"{summary['total_liquidator_gas_usd']:,.2f}, kept "
            f"{summary['total_liquidator_profit_usd']:,.2f})")
        lines.append(
            f"protocol got      {summary['total_protocol_recovered_usd']:,.2f} USD of penalties; "
            f"{summary['total_queued']} account-steps queued for block space "
            f"({summary['block_capacity_per_step']} liquidations per step)")
    if "total_bridge_sent" in summary:
        lines.append(
            f"bridge            {summary['total_bridge_sent']} top-ups sent, "
            f"{summary['total_bridge_arrived']} landed; "
            f"{summary['total_inflight_liquidations']} liquidations while collateral was "
            "in flight")
    for fig in summary.get("published", []):
        lines.append(f"published         {fig['what']}: {_figure(fig['published'], fig['unit'])}")
        lines.append(f"  this run        {_figure(fig['this_run'], fig['unit'])} "
                     f"({fig['compare']}; a shape to compare, not a fit)")
    return lines


def _proof_lines(summary: dict[str, Any], out: Path) -> list[str]:
    """The summary's lines about what the prover did."""
    from zksolv.circuits.epoch import epochs_text

    refused = summary["proof_refused_epochs"]
    lines = [f"proved            {summary['proven_epochs']} of {summary['epochs']} epochs, "
             f"one chain, into {out / 'bundles'}/ (publish that folder only; private "
             f"databases in {out / 'private'}/)"]
    if refused:
        lines.append(f"refused by prove  {', '.join(map(str, refused[:12]))}"
                     f"{' ...' if len(refused) > 12 else ''}: no bundle (insolvent)")
    first = summary["chain_first_epoch"]
    if first is not None and first > 1:
        lines.append(f"chain starts      at epoch {first}: {epochs_text(1, first - 1)} refused "
                     "before any bundle")
    for g in summary["proof_gaps"]:
        text = epochs_text(g["first"], g["last"])
        lines.append(f"gap in the chain  {text} NOT proven solvent, declared by the bundle of "
                     f"epoch {g['last'] + 1} (it links to epoch {g['first'] - 1})")
    if summary["proven_epochs"]:
        lines.append(f"check the chain   zksolv verify {out / 'bundles'}")
    return lines


def _epoch_line(result: EpochResult, rec: EpochProof) -> str:
    """What happened to one epoch, as it happens."""
    from zksolv.circuits.epoch import epochs_text

    m = result.metrics
    what = (f"epoch {rec.epoch}: simulated ({m['liquidations']} liquidations, bad debt "
            f"{m['bad_debt_usd']:,.2f} USD), ")
    if rec.refused:
        return what + f"proof REFUSED: {rec.reason}"
    what += f"proven in {rec.seconds:.1f} s"
    if rec.gap is not None:
        what += (f", links to epoch {rec.prev_epoch}: its header declares "
                 f"{epochs_text(*rec.gap)} NOT proven solvent")
    elif rec.prev_epoch is None and rec.epoch > 1:
        what += ", first bundle of the chain"
    return what


class _ProveEachEpoch:
    """The engine's epoch hook for --prove: prove each epoch as soon as its
    snapshot is written, say what happened, add the prover's columns."""

    def __init__(self, prover: ChainProver, quiet: bool) -> None:
        self.prover = prover
        self.quiet = quiet

    def epoch(self, result: EpochResult, snapshot: Path) -> dict[str, int]:
        from zksolv.prover.run import row_columns

        rec = self.prover.prove(result.epoch, snapshot)
        if not self.quiet:
            click.echo(_epoch_line(result, rec), err=True)
        return row_columns(rec)

    def summary(self) -> dict[str, Any]:
        return self.prover.summary()


def _simulate_and_prove(ctx: click.Context, out: Path, sim: Simulation, master: bytes,
                        jobs: int | None, quiet: bool) -> dict[str, Any]:
    """``--prove``: simulate and prove epoch by epoch (the run written in
    place); Ctrl-C keeps what is done and exits 130."""
    import os
    import sys

    from zksolv.cli.common import backend_of
    from zksolv.prover.run import ChainProver

    def bar(items: Any, total: int, desc: str) -> Any:
        return progress(items, total=total, desc=desc, quiet=quiet)

    prover = ChainProver(out, master, backend=backend_of(ctx), jobs=jobs or os.cpu_count() or 1,
                         progress=bar)
    try:
        return write_run(out, sim, hook=_ProveEachEpoch(prover, quiet))
    except KeyboardInterrupt:
        done = prover.records
        click.echo(f"interrupted: {out} keeps epochs 1..{done[-1].epoch} (snapshots, bundles, "
                   "metrics.json covering them)" if done else
                   f"interrupted before any epoch was proven: {out} holds no bundle", err=True)
        nxt = done[-1].epoch + 1 if done else 1
        paths = prover.paths(nxt)
        if paths["work_dir"].exists():
            last = prover.last_bundle
            link = "" if last is None else f" --prev {last.bundle} --allow-gap"
            click.echo(f"epoch {nxt} was being proven; to finish its bundle: zksolv prove "
                       f"{paths['snapshot']} --out {paths['bundle']}{link} --key KEY "
                       f"--inclusion-db {paths['inclusion_db']} --work-dir {paths['work_dir']} "
                       "--resume", err=True)
        sys.exit(130)
