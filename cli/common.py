"""Helpers shared by the command modules: backend lookup, error reporting,
progress bars, JSON output."""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import click

from zksolv.core.group import Backend, get_backend
from zksolv.errors import ZksolvError

T = TypeVar("T")


class LazyGroup(click.Group):
    """A click group whose commands live in modules under ``zksolv.cli`` and
    are imported only when used. ``commands`` maps a name to (module,
    attribute, one-line help)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = self.lazy.get(name)
        if entry is None:
            return None
        module, attr, _ = entry
        mod = importlib.import_module(f"zksolv.cli.{module}")
        cmd: click.Command = getattr(mod, attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def backend_of(ctx: click.Context) -> Backend:
    root = ctx.find_root()
    name = (root.obj or {}).get("backend")
    return get_backend(name)


def reports_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ZksolvError into one clear line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ZksolvError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def progress(items: Iterable[T], *, total: int | None, desc: str, quiet: bool) -> Iterator[T]:
    """A tqdm bar on stderr, only when stderr is a terminal and not quiet."""
    if quiet or not sys.stderr.isatty():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, unit="it", leave=False, file=sys.stderr)


def status(message: str, *, quiet: bool) -> None:
    """One line on stderr saying what starts now, where a progress bar would
    show (a terminal, not quiet): no blank screen before the first bar."""
    if not quiet and sys.stderr.isatty():
        click.echo(message, err=True)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))
