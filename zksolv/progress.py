"""Progress on long work, shared by the prover and the verifier.

A ``Progress`` wraps an iterable as it is consumed: ``bar(items, total,
desc)`` yields the items (the command line passes a tqdm bar on stderr, on a
terminal and without -q; library callers pass nothing). ``derive_progress``
turns one into the callback ``GeneratorSet.vectors`` reports a cold
generator cache with, so the seconds spent deriving generators by
hash-to-curve show as a bar, not a blank screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from zksolv.core.generators import DeriveProgress, has_chunk_store

T = TypeVar("T")
Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


def no_progress(items: Iterable[T], total: int, desc: str) -> Iterable[T]:
    """A ``Progress`` that shows nothing (library callers)."""
    return items


def derive_text() -> str:
    """What deriving generators is, in a progress bar's words (short: the
    bar and its counts must fit in 80 columns)."""
    if has_chunk_store():
        return "deriving generators (first run only)"  # cached for later runs
    return "deriving generators (cache off)"


def derive_progress(bar: Progress | None) -> DeriveProgress | None:
    """``on_derive(done, total)`` for ``GeneratorSet.vectors`` that drives
    ``bar`` over the ``total`` chunks to derive: the bar starts at 0 and
    moves one step per chunk."""
    if bar is None:
        return None
    ticks: list[Iterator[Any]] = []

    def on_derive(done: int, total: int) -> None:
        if done == 0:
            ticks[:] = [iter(bar(range(total), total, derive_text()))]
        if ticks:
            next(ticks[0], None)  # the last step ends the iteration: the bar closes

    return on_derive


def count_progress(bar: Progress | None, desc: str) -> Callable[[int, int], None] | None:
    """``on_count(done, total)`` (the chain's fetch reports balances read so
    far) that drives ``bar`` over ``total`` steps: it starts at ``done ==
    0`` and moves ``done`` minus the last count each call."""
    if bar is None:
        return None
    state: list[Any] = []          # [iterator over the bar, steps taken]

    def on_count(done: int, total: int) -> None:
        if not state:
            state[:] = [iter(bar(range(total), total, desc)), 0]
        ticks, taken = state
        for _ in range(max(done - taken, 0)):
            next(ticks, None)
        state[1] = max(done, taken)
        if done >= total:
            next(ticks, None)      # past the last item: the bar closes

    return on_count
