"""Writing a simulation run to disk, atomically.

Layout of ``OUT/``::

    epoch-000001/        one snapshot per epoch (header.json, accounts.csv),
    epoch-000002/        written with zksolv.snapshot.write_snapshot
    ...
    metrics.csv          one row per epoch (columns: docs/engine.md)
    metrics.json         {"run": {...}, "epochs": [...rows...]}
    metrics.png          chart of the metrics over time (needs matplotlib)

Everything is written into a temporary sibling directory that is renamed to
``OUT`` only when complete: a failure or an interrupt leaves nothing at
``OUT``. Output depends only on the scenario, the account and epoch counts
and the seed: the same inputs give the same bytes.

With an :class:`EpochHook` (``zksolv simulate --prove`` proves each epoch as
soon as its snapshot is written, before the next epoch is simulated) the
work done per epoch is worth keeping, so the run is written in place
instead, epoch by epoch: each snapshot atomically, then the hook, then
``metrics.csv`` and ``metrics.json`` rewritten atomically (temporary name,
rename) to cover the epochs done so far (``run.complete`` false until the
last), the chart at the end. An interrupt or a failure leaves ``OUT`` holding
a consistent prefix of the run: every epoch ``metrics.json`` lists has its
snapshot and whatever the hook made of it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zksolv.engine.simulator import EpochResult, Simulation
from zksolv.errors import InputError
from zksolv.snapshot import write_snapshot

ROW_CHUNK = 65_536


def account_ids(n: int) -> list[str]:
    width = max(7, len(str(n)))
    return [f"acct-{i:0{width}d}" for i in range(1, n + 1)]


def claim_rows(ids: list[str], amounts: np.ndarray) -> Iterator[tuple[str, list[int]]]:
    """Stream (account_id, amounts) in chunks so 10^6 rows never become
    10^6 Python lists at once."""
    for start in range(0, len(ids), ROW_CHUNK):
        block = amounts[start:start + ROW_CHUNK].tolist()
        yield from zip(ids[start:start + ROW_CHUNK], block, strict=True)


def check_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(str(out), "output exists and is not an empty directory; "
                         "choose a new --out")


def write_metrics_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    path.write_text(buf.getvalue(), encoding="utf-8")


def _usd(value: float, _pos: object = None) -> str:
    """Axis labels people read: 12.3M, 450k, -5M."""
    a = abs(value)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def engine_failures(rows: list[dict[str, Any]]) -> dict[str, int | None]:
    """Where the engine itself failed, apart from where a proof is refused:
    the first epoch that ends with the insurance fund empty after bad debt
    was recognised (``insurance_exhausted_epoch``), and the first epoch with
    a stalled liquidation (``first_stalled_epoch``); None if never."""
    exhausted = stalled = None
    bad = 0.0
    for r in rows:
        bad += r["bad_debt_usd"]
        if exhausted is None and bad > 0 and r["insurance_fund_usd"] <= 0:
            exhausted = r["epoch"]
        if stalled is None and r["stalled"] > 0:
            stalled = r["epoch"]
    return {"insurance_exhausted_epoch": exhausted, "first_stalled_epoch": stalled}


def refused_epochs(rows: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """The refused epochs (by ``simulate --prove``'s prover if it ran, else
    as the engine judges the snapshots), split into holes and dust: refused
    for less than ``solvency.DUST_QUOTE`` in the quote currency."""
    key = "proof_refused" if rows and "proof_refused" in rows[0] else "insolvent"
    holes: list[int] = []
    dust: list[int] = []
    for r in rows:
        if r[key]:
            (dust if r.get("insolvent_dust") else holes).append(r["epoch"])
    return holes, dust


def metrics_figure(rows: list[dict[str, Any]], title: str) -> Any:
    """The metrics chart as a matplotlib figure (matplotlib must import).

    Four panels, each titled: prices, liquidation counts (symlog, so a few
    dozen liquidations stay visible beside tens of thousands of stalled
    account-steps), losses, and reserves and debts against liabilities as
    the snapshots state them. Refused epochs are shaded on every panel: red
    for a hole, hatched for a rounding residue (dust). Vertical lines mark
    where the engine failed (insurance fund exhausted, first stalled
    liquidation), apart from the refusals. Every legend sits outside the
    plotting area, to the right of its panel; the shading and markers are
    explained once, below the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    epochs = [r["epoch"] for r in rows]
    col = {k: [r[k] for r in rows] for k in rows[0]}
    proved = "proof_refused" in rows[0]  # simulate --prove: what the prover did
    holes, dust = refused_epochs(rows)
    failures = engine_failures(rows)
    fig, axes = plt.subplots(4, 1, figsize=(12, 13), sharex=True, layout="constrained")
    markers = [
        (failures["insurance_exhausted_epoch"], "tab:orange", "-.",
         "engine: insurance fund exhausted"),
        (failures["first_stalled_epoch"], "tab:purple", ":",
         "engine: first stalled liquidation"),
    ]

    def shade(ax: Any) -> None:
        for e in holes:
            ax.axvspan(e - 0.5, e + 0.5, color="tab:red", alpha=0.15, lw=0)
        for e in dust:
            ax.axvspan(e - 0.5, e + 0.5, facecolor="none", edgecolor="tab:olive", hatch="///",
                       lw=0)
        for epoch, color, style, _ in markers:
            if epoch is not None:
                ax.axvline(epoch, color=color, ls=style, lw=1.2)

    def legend(ax: Any) -> None:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)

    ax = axes[0]
    for k in col:
        if k.startswith("oracle_price_"):
            first = col[k][0] or 1.0
            sym = k.removeprefix("oracle_price_")
            ax.plot(epochs, [v / first for v in col[k]], label=f"{sym} oracle")
            mk = f"market_price_{sym}"
            ax.plot(epochs, [v / first for v in col[mk]], ls=":", label=f"{sym} market")
    shade(ax)
    ax.set_title("Prices (relative to the first epoch)", fontsize=9)
    ax.set_ylabel("price / first epoch")
    legend(ax)
    ax = axes[1]
    ax.bar(epochs, col["liquidations"], label="liquidations", color="tab:blue")
    ax.plot(epochs, col["stalled"], label="stalled: account-steps ready to\nliquidate but not "
            "liquidated\n(reward <= gas, or no block space)", color="tab:red", marker=".", ms=3)
    ax.plot(epochs, col["bankruptcies"], label="bankruptcies", color="black", marker=".", ms=3)
    ax.set_yscale("symlog", linthresh=1.0)  # 46 liquidations beside 29,764 stalled
    shade(ax)
    ax.set_title("Liquidations per epoch (symlog scale)", fontsize=9)
    ax.set_ylabel("count per epoch")
    legend(ax)
    ax = axes[2]
    losses = [("bad_debt_usd", "new bad debt"), ("insurance_fund_usd", "insurance fund"),
              ("socialised_loss_usd", "socialised loss"),
              ("uncovered_bad_debt_usd", "uncovered bad debt")]
    if any(col["debts_usd"]):
        losses.append(("unbacked_debt_usd", "unbacked debt: owed, not backed\nby collateral "
                       "(the protocol's loss)"))
    for k, label in losses:
        ax.plot(epochs, col[k], label=label)
    ax.set_yscale("symlog", linthresh=1.0)  # a small fund and a large loss on one axis
    ax.yaxis.set_major_formatter(FuncFormatter(_usd))
    shade(ax)
    ax.set_title("Losses and the insurance fund (USD, symlog scale)", fontsize=9)
    ax.set_ylabel("USD")
    legend(ax)
    ax = axes[3]
    lines = [("collateral_usd", "reserves held\n(as the snapshot states them)"),
             ("liabilities_usd", "liabilities (credits)")]
    if any(col["debts_usd"]):
        lines.append(("debts_usd", "debts backed by collateral\n(as the snapshot states them)"))
    for k, label in lines:
        ax.plot(epochs, col[k], label=label)
    ax.plot(epochs, col["net_assets_usd"], color="black", lw=1.0,
            label="reserves + debts - liabilities")
    if any(col["snapshot_shortfall_usd"]) or any(col["asset_shortfall_usd"]):
        ax.plot(epochs, [-max(a, v) for a, v in zip(col["asset_shortfall_usd"],
                                                    col["snapshot_shortfall_usd"], strict=True)],
                ls="--", color="tab:red",
                label="shortfall (negative: what prove\nfinds missing, per asset or valued)")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.yaxis.set_major_formatter(FuncFormatter(_usd))
    shade(ax)
    ax.set_title("Reserves and debts against liabilities (USD)", fontsize=9)
    ax.set_ylabel("USD")
    ax.set_xlabel("epoch")
    legend(ax)
    verb = "proof refused" if proved else "insolvent: prove refuses (exit 3)"
    keys: list[Any] = [Patch(color="tab:red", alpha=0.15, label=f"{verb}: a hole")]
    if dust:
        keys.append(Patch(facecolor="none", edgecolor="tab:olive", hatch="///",
                          label=f"{verb} for a rounding residue (< 0.01 USD): dust, not a hole"))
    for epoch, color, style, label in markers:
        if epoch is not None:
            keys.append(plt.Line2D([], [], color=color, ls=style, label=f"{label} (epoch {epoch})"))
    fig.legend(handles=keys, loc="outside lower center", ncols=2, fontsize=8)
    fig.suptitle(title)
    return fig


def write_metrics_chart(path: Path, rows: list[dict[str, Any]], title: str) -> bool:
    """Draw the metrics (:func:`metrics_figure`); return False (and write
    nothing) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig = metrics_figure(rows, title)
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return True


def _peak(rows: list[dict[str, Any]], key: str) -> tuple[float, int | None]:
    worst = max(rows, key=lambda r: r[key])
    return worst[key], worst["epoch"] if worst[key] else None


def insolvency_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The epochs whose snapshot ``zksolv prove`` would refuse (exit 3), the
    first of them, those refused for dust only, the peaks (uncovered bad
    debt, unbacked debt, the valued and the per-asset shortfall) with their
    epochs (the end of a run can look healthy after a collapse in the
    middle), and where the engine failed."""
    insolvent = [r["epoch"] for r in rows if r["insolvent"]]
    out: dict[str, Any] = {
        "insolvent_epochs": insolvent,
        "first_insolvent_epoch": insolvent[0] if insolvent else None,
        "insolvent_dust_epochs": [r["epoch"] for r in rows if r["insolvent_dust"]],
    }
    for key in ("uncovered_bad_debt", "unbacked_debt", "snapshot_shortfall", "asset_shortfall"):
        value, epoch = _peak(rows, f"{key}_usd")
        out[f"peak_{key}_usd"] = value
        out[f"peak_{key}_epoch"] = epoch
    out.update(engine_failures(rows))
    return out


def mechanism_summary(sim: Simulation, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Run totals of the mechanisms the scenario turns on, the ratios that
    describe them, and the scenario's published figures beside the run's own."""
    out: dict[str, Any] = {}
    for key in sim.mechanism_counters():
        total = sum(r[key] for r in rows)
        out[f"total_{key}"] = float(total) if key.endswith("_usd") else int(total)
    if sim.auction_mode:
        cleared = out["total_auctions_cleared"]
        worth = out["total_auction_collateral_usd"]
        out["auction_zero_bid_share"] = out["total_auction_zero_bids"] / cleared if cleared else 0.0
        out["auction_clearing_ratio"] = out["total_auction_proceeds_usd"] / worth if worth else 0.0
        out["auctions_open_at_end"] = rows[-1]["auctions_open"]
    if sim.block_capacity:
        out["block_capacity_per_step"] = sim.block_capacity
    summary_so_far = {"total_bad_debt_usd": float(sum(r["bad_debt_usd"] for r in rows)), **out}
    published = []
    for fig in sim.scenario.published:
        this_run = summary_so_far.get(fig.compare)
        published.append({"what": fig.what, "published": fig.value, "unit": fig.unit,
                          "source": fig.source, "compare": fig.compare, "this_run": this_run})
    if published:
        out["published"] = published
    return out


class EpochHook(Protocol):
    """Work done on each epoch of a run as soon as its snapshot is on disk,
    before the next epoch is simulated (``zksolv simulate --prove`` proves
    it). The engine knows nothing of what the hook does."""

    def epoch(self, result: EpochResult, snapshot: Path) -> Mapping[str, Any]:
        """Handle one epoch; return columns to add to its metrics row (the
        same keys every epoch)."""
        ...

    def summary(self) -> Mapping[str, Any]:
        """Fields to add to the run summary, for the epochs handled so far."""
        ...


def run_summary(sim: Simulation, rows: list[dict[str, Any]], *, complete: bool = True
                ) -> dict[str, Any]:
    """The run summary (``metrics.json`` ``run``) of the epochs in ``rows``."""
    sc = sim.scenario
    summary: dict[str, Any] = {
        "scenario": sc.name,
        "scenario_source": sc.source,
        "seed": sim.seed,
        "accounts": sim.n,
        "epochs": sim.epochs,
        "complete": complete,
        "epoch_minutes": sc.epoch_minutes,
        "assets": [a.symbol for a in sc.assets],
        "total_liquidations": int(sum(r["liquidations"] for r in rows)),
        "total_stalled": int(sum(r["stalled"] for r in rows)),
        "total_bad_debt_usd": float(sum(r["bad_debt_usd"] for r in rows)),
        "total_insurance_absorbed_usd": float(sum(r["insurance_absorbed_usd"] for r in rows)),
        "total_socialised_loss_usd": float(sum(r["socialised_loss_usd"] for r in rows)),
        "final_insurance_fund_usd": rows[-1]["insurance_fund_usd"],
        "final_uncovered_bad_debt_usd": rows[-1]["uncovered_bad_debt_usd"],
        **insolvency_summary(rows),
        "final_net_assets_usd": rows[-1]["net_assets_usd"],
        "final_solvency_margin_usd": rows[-1]["solvency_margin_usd"],
        "identity_holds_every_epoch": all(r["identity_residual_units"] == 0 for r in rows),
    }
    if sim.borrowable:
        summary["final_debts_usd"] = rows[-1]["debts_usd"]
    summary.update(mechanism_summary(sim, rows))
    return summary


def _replace(path: Path, write: Callable[[Path], Any]) -> Any:
    """``write`` to a hidden temporary sibling of ``path``, then rename it over
    ``path``: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # the suffix names the format
    try:
        out = write(tmp)
        if tmp.exists():
            os.replace(tmp, path)
        return out
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_metrics(folder: Path, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """``metrics.csv`` and ``metrics.json``, each replaced atomically."""
    _replace(folder / "metrics.csv", lambda p: write_metrics_csv(p, rows))
    _replace(folder / "metrics.json", lambda p: p.write_text(
        json.dumps({"run": summary, "epochs": rows}, indent=1) + "\n", encoding="utf-8"))


def write_run(out: str | os.PathLike[str], sim: Simulation,
              wrap: Callable[[Iterable[EpochResult]], Iterable[EpochResult]] = lambda x: x,
              *, snapshots: bool = True, hook: EpochHook | None = None) -> dict[str, Any]:
    """Run ``sim`` to the end and write everything under ``out``: atomically,
    or with ``hook`` in place, epoch by epoch (see the module docstring).
    ``wrap`` may decorate the epoch iterator (a progress bar). Returns the
    run summary (also stored in metrics.json) and whether the chart was
    drawn (``chart``)."""
    dest = Path(out)
    check_out_dir(dest)
    if hook is not None:
        if not snapshots:
            raise ValueError("an epoch hook needs the snapshots")
        dest.mkdir(parents=True, exist_ok=True)
        return _write_epochs(dest, sim, wrap, snapshots=True, hook=hook)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        summary = _write_epochs(tmp, sim, wrap, snapshots=snapshots, hook=None)
        if dest.exists():
            dest.rmdir()  # empty, checked above
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _write_epochs(folder: Path, sim: Simulation,
                  wrap: Callable[[Iterable[EpochResult]], Iterable[EpochResult]], *,
                  snapshots: bool, hook: EpochHook | None) -> dict[str, Any]:
    ids = account_ids(sim.n) if snapshots else []
    rows: list[dict[str, Any]] = []
    # sim.run() simulates an epoch only when asked for it: the hook's work on
    # epoch N is done before epoch N + 1 is simulated
    for result in wrap(sim.run()):
        row = dict(result.metrics)
        if snapshots:
            snap = write_snapshot(folder / f"epoch-{result.epoch:06d}", result.header,
                                  claim_rows(ids, result.amounts))
            if hook is not None:
                row.update(hook.epoch(result, snap))
        rows.append(row)
        if hook is not None and len(rows) < sim.epochs:
            write_metrics(folder, {**run_summary(sim, rows, complete=False), **hook.summary()},
                          rows)
    summary = run_summary(sim, rows)
    if hook is not None:
        summary.update(hook.summary())
    write_metrics(folder, summary, rows)
    sc = sim.scenario
    summary["chart"] = _replace(folder / "metrics.png", lambda p: write_metrics_chart(
        p, rows, f"{sc.name}: {sim.n} accounts, seed {sim.seed}"))
    return summary
