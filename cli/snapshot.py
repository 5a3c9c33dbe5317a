"""``zksolv snapshot check``: every problem of a snapshot in one run, and a
preview of its solvency, with no key."""

from __future__ import annotations

import sys
from typing import Any

import click

from zksolv.cli.common import echo_json, reports_errors


@click.group()
def snapshot() -> None:
    """Epoch snapshots (docs/snapshot-format.md)."""


@snapshot.command("check")
@click.argument("path", metavar="SNAPSHOT", type=click.Path())
@click.option("--max-errors", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Stop after this many errors.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@reports_errors
def check(path: str, max_errors: int, as_json: bool) -> None:
    """Check SNAPSHOT (a directory with header.json and accounts.csv) and
    report every error, up to --max-errors, each as FILE:LINE:FIELD: REASON.
    Header and row errors come together: after an error in a header field
    the rows do not need (a price, a haircut, the reserves, the epoch) the
    rows are read too; when the header does not give the columns (not JSON,
    a bad symbol, decimals or account_count) the output says the rows were
    not checked, and why (--json: "rows_checked", "rows_not_checked").

    Needs no key and writes nothing. `prove` stops at the first error; this
    goes on to the end, so a snapshot exported from a spreadsheet is fixed in
    one round. A UTF-8 byte-order mark and blank lines at the end are
    accepted; thousands separators ("1,250,000") and decimal amounts are
    explained. For a well-formed snapshot it shows each asset's liabilities
    and reserves as they would be proven (proof_decimals, liabilities
    rounded up, reserves down) and whether each asset and the valued total
    are covered, before `prove` is run. An insolvent one is broken down:
    each short asset in tokens, quote units and base units, and a valued
    shortfall per asset (haircut reserves against valued liabilities, in
    quote units: the currency header.json's prices are in). --json gives
    the same as numbers in "shortfall" (integers; valued figures in
    10^-price_decimals quote units).

    \b
    Exit codes: 0 well formed (even if insolvent: `prove` then exits 3);
                2 errors found.
    \b
    Example:
      zksolv snapshot check run/epoch-000009
    """
    from zksolv import units
    from zksolv.prover.shortfall import asset_terms, shortfall_report, shortfalls
    from zksolv.snapshot import check_snapshot

    res = check_snapshot(path, max_errors=max_errors)
    errors = [{"where": e.where, "reason": e.reason} for e in res.errors]
    out: dict[str, Any] = {"valid": res.ok, "path": str(res.path), "errors": errors,
                           "truncated": res.truncated,
                           "rows_checked": res.rows_not_checked is None,
                           "rows_not_checked": res.rows_not_checked}
    short: list[str] = []
    header = res.header
    sources: dict[str, Any] | None = None
    if res.ok and header is not None and header.reserve_sources is not None:
        header, sources, problem = _sourced(res.path, header)
        if problem is not None:
            errors.append({"where": problem.where, "reason": problem.reason})
            out["valid"] = False
        out["reserve_sources"] = sources
    if out["valid"] and header is not None:
        terms = asset_terms(header)
        short = shortfalls(terms, res.owed_proof_units, header.price_decimals,
                           res.debts_proof_units)
        report = shortfall_report(terms, res.owed_proof_units, header.price_decimals,
                                  res.debts_proof_units)
        if header.borrowable:
            short += _unhealthy(path, terms, header.price_decimals, res.accounts)
        out.update(
            epoch=header.epoch, accounts=res.accounts, solvent=not short, shortfalls=short,
            shortfall=report.to_json(),
            assets=[
                {"symbol": a.symbol, "decimals": a.decimals, "proof_decimals": a.proven_decimals,
                 "owed": owed, "owed_proof_units": proof, "reserves": a.reserves,
                 "proven_reserves": a.proven_reserves,
                 "owed_tokens": units.format_tokens(owed, a.decimals),
                 "reserves_tokens": units.format_tokens(a.reserves, a.decimals),
                 "borrowable": b.borrowable, "debts": debt, "debts_proof_units": debt_proof,
                 "debts_tokens": units.format_tokens(debt, a.decimals)}
                for a, b, owed, proof, debt, debt_proof in zip(
                    terms, header.assets, res.owed, res.owed_proof_units, res.debts,
                    res.debts_proof_units, strict=True)
            ],
        )
    if as_json:
        echo_json(out)
    else:
        for e in res.errors:
            click.echo(f"error: {e}")
        if sources is not None:
            from zksolv.cli.reserves import _echo_state

            assert header is not None
            _echo_state(sources, {a.symbol: a.decimals for a in header.assets})
        for extra in errors[len(res.errors):]:
            click.echo(f"error: {extra['where']}: {extra['reason']}")
        if res.rows_not_checked is not None:
            click.echo(f"note: {res.rows_not_checked}; fix it and run this again")
        if errors:
            more = f" (stopped at --max-errors {max_errors})" if res.truncated else ""
            click.echo(f"{len(errors)} error(s) in {path}{more}", err=True)
        elif header is not None and "assets" in out:
            click.echo(f"ok: {path}: epoch {header.epoch}, {res.accounts} accounts")
            for a in out["assets"]:
                pd = a["proof_decimals"]
                lent = f", owed by accounts {a['debts_tokens']}" if a["borrowable"] else ""
                line = (f"  {a['symbol']}: owed {a['owed_tokens']}{lent}, reserves "
                        f"{a['reserves_tokens']} {a['symbol']}")
                if pd != a["decimals"]:
                    lent = (f", owed by accounts "
                            f"{units.format_tokens(a['debts_proof_units'], pd)}"
                            if a["borrowable"] else "")
                    line += (f"; proven at {pd} decimals: owed "
                             f"{units.format_tokens(a['owed_proof_units'], pd)}{lent}, reserves "
                             f"{units.format_tokens(a['proven_reserves'], pd)}")
                click.echo(line)
            if sources is not None and not sources["fetched"]:
                click.echo("note: the sourced assets' reserves are not fetched yet: counted as "
                           "0 here (zksolv reserves fetch SNAPSHOT --rpc URL)")
            if short:
                click.echo("insolvent as it stands (prove would exit 3):")
                for line in short:
                    click.echo(f"  {line}")
            else:
                click.echo("solvent: reserves cover liabilities per asset and in value"
                           + (" (debts owed by accounts counted beside reserves; every "
                              "account's collateral covers its debts)"
                              if header.borrowable else ""))
    if not out["valid"]:
        sys.exit(2)


def _sourced(path: Any, header: Any) -> tuple[Any, dict[str, Any], Any]:
    """A header with reserve sources: the header with the evidence's sums
    (when reserves.json is there and matches), the evidence's state, and the
    problem with reserves.json (an InputError) or None."""
    from zksolv.cli.reserves import _state
    from zksolv.errors import InputError
    from zksolv.snapshot import Snapshot, evidence_problem, with_chain_reserves

    snap = Snapshot(path, header)
    try:
        doc = snap.load_reserves()
        if doc is not None and evidence_problem(header, doc) is None:
            header = with_chain_reserves(header, doc, str(snap.reserves_path))
        elif doc is not None:
            raise InputError(str(snap.reserves_path),
                             f"{evidence_problem(header, doc)}: zksolv reserves fetch again")
    except InputError as exc:
        return header, _state(snap, None), exc
    return header, _state(snap, doc), None


def _unhealthy(path: str, terms: Any, price_decimals: int, accounts: int) -> list[str]:
    """The margin-health refusal ``prove`` would give (a second pass over a
    well-formed snapshot), as one shortfall line; empty if every account's
    haircut collateral covers its debts."""
    from zksolv.circuits import epoch as circ
    from zksolv.errors import InsolventError
    from zksolv.prover.shortfall import HealthCheck
    from zksolv.snapshot import open_snapshot

    snap = open_snapshot(path)
    coef = circ.valued_coefficients(terms, circ.depth_for(accounts))
    health = HealthCheck(terms, coef, price_decimals)
    for acc, values in snap.iter_proof_amounts():
        health.add(acc, values)
    try:
        health.refuse(snap.header.epoch)
    except InsolventError as exc:
        return [str(exc)]
    return []
