"""The ``zksolv`` command. Each subcommand lives in its own module under
``zksolv.cli`` and is imported only when used, so ``zksolv --help`` is fast.

Exit codes everywhere: 0 success, 1 invalid proof or bundle, 2 unusable
input, 3 insolvent epoch (see ``zksolv.errors``).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from zksolv import __version__, gencache
from zksolv.cli.common import LazyGroup
from zksolv.core.group import BACKEND_ENV, BACKENDS
from zksolv.errors import ZksolvError

# name -> (module under zksolv.cli, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("demo", "demo", "Run the whole pipeline on a built-in example."),
    "docs": ("docs", "docs", "The format, protocol and auditing documents."),
    "bench": ("bench", "bench", "Benchmarks: range proofs, epochs, engine."),
    "keygen": ("epoch", "keygen", "Create an operator master secret file."),
    "prove": ("epoch", "prove", "Prove an epoch snapshot solvent; write a bundle."),
    "verify": ("epoch", "verify", "Verify a bundle or a chain of bundles."),
    "inclusion": ("epoch", "inclusion", "Export or verify per-account inclusion proofs."),
    "simulate": ("simulate", "simulate", "Run the margin-engine simulator; write snapshots."),
    "snapshot": ("snapshot", "snapshot", "Check a snapshot: every error in one run."),
    "site": ("site", "site", "Write the account holder's page (static files) to publish."),
    "serve": ("site", "serve", "Serve bundles and the holder's page on localhost."),
    "watch": ("watch", "watch", "Prove each new epoch snapshot as it appears."),
    "reserves": ("reserves", "reserves",
                 "Reserves read from the chain: fetch, sign, import, check."),
    "publish": ("registry", "publish", "Post a bundle to the on-chain registry."),
    "registry": ("registry", "registry", "The on-chain registry: deploy, register, check."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zksolv")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    envvar=BACKEND_ENV,
    default=None,
    help=(
        "Group backend: mcl (fast vector core; the default where it loads), arkworks "
        "(reference; the default elsewhere) or py_ecc (pure-Python reference). Proofs "
        f"verify across all three. Also ${BACKEND_ENV}."
    ),
)
@click.pass_context
def cli(ctx: click.Context, backend: str | None) -> None:
    """zksolv: zero-knowledge solvency proofs for margin engines.

    After each margin-engine epoch, prove that the collateral a protocol holds
    covers what it owes its accounts, without revealing any balance.

    \b
    Typical flow:
      zksolv keygen --out operator.key          # and operator.key.pub, to publish
      zksolv snapshot check SNAPSHOT_DIR          # every error at once, no key
      zksolv reserves fetch SNAPSHOT_DIR --rpc URL # reserves read from a chain (if the
                                                  # header names reserve_sources), then
                                                  # reserves sign: see zksolv reserves --help
      zksolv prove SNAPSHOT_DIR --out bundle/ --key operator.key
      zksolv verify bundle/ --operator operator.key.pub
      zksolv inclusion verify proof.json --account alice --bundle bundle/ \\
          --operator operator.key.pub

    Formats, protocol and what a bundle proves: `zksolv docs`.
    """
    ctx.ensure_object(dict)
    ctx.obj["backend"] = backend
    gencache.install()


def hoist_global_options(argv: list[str]) -> list[str]:
    """Global options work wherever they are written: ``zksolv verify B
    --backend py_ecc`` is ``zksolv --backend py_ecc verify B``. (Nothing after
    a ``--`` is touched.)"""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest += argv[i:]
            break
        if a == "--backend" and i + 1 < len(argv):
            front += argv[i : i + 2]
            i += 2
            continue
        if a.startswith("--backend="):
            front.append(a)
        else:
            rest.append(a)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> Any:
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    try:
        return cli.main(args=args, prog_name="zksolv", standalone_mode=True)
    except ZksolvError as exc:  # pragma: no cover - commands catch their own
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
