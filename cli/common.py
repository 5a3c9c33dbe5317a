"""Helpers shared by the command modules: backend lookup, error reporting,
progress bars, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import click

from zksolv.core.group import Backend, get_backend
from zksolv.errors import ZksolvError

T = TypeVar("T")


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


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))
