"""Whether the newest bundle a verifier was given is the newest there is:
its age against ``--max-age``, and snapshots of later epochs in the run
folder beside it that have no bundle (refused, or not proven yet).

Both are warnings, never a verdict: a bundle stays valid when it is old.
Only names are looked at: a later snapshot is a folder ``epoch-NNNNNN``
holding ``header.json`` or ``accounts.csv`` (and no ``manifest.json``),
found among the children of the bundle's folder and of the folder above it
(``simulate --prove`` writes ``RUN/bundles/epoch-NNNNNN`` beside the
snapshots ``RUN/epoch-NNNNNN``); nothing is opened or read, and no folder
below those two is entered (``RUN/private/`` is never looked into).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from zksolv.circuits.epoch import epochs_text, utc_text
from zksolv.errors import InputError

STALE = "stale"
UNPROVEN = "unproven-snapshots"
MAX_ENTRIES = 10_000
_AGE_RE = re.compile(r"([0-9]{1,9})([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_EPOCH_DIR = re.compile(r"epoch-([0-9]{6,19})")


def parse_age(text: str) -> int:
    """``--max-age``: a duration such as ``90s``, ``30m``, ``2h``, ``1d``,
    ``1w``, or several (``1h30m``); seconds."""
    parts = _AGE_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InputError("--max-age", f"{text[:40]!r}: use a duration such as 90s, 30m, 2h, "
                                      "1d, 1w or 1h30m")
    return sum(int(n) * _UNIT[u] for n, u in parts)


def age_text(seconds: int) -> str:
    """A duration for people: ``3 d 4 h``, ``2 h 5 min``, ``40 s``."""
    days, rest = divmod(max(0, seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def stale_warning(path: str, epoch: int, timestamp: int, max_age: int,
                  now: int) -> dict[str, str] | None:
    """A warning when the bundle's epoch is older than ``max_age`` seconds."""
    age = now - timestamp
    if age <= max_age:
        return None
    return {"path": path, "kind": STALE,
            "what": f"the newest bundle given, epoch {epoch}, is the state at "
                    f"{utc_text(timestamp, iso=False)}, {age_text(age)} old: older than "
                    f"--max-age {age_text(max_age)}; a later epoch may exist that was not "
                    "proven or not published"}


def later_snapshots(bundle: str | os.PathLike[str], epoch: int) -> list[dict[str, str]]:
    """One warning per folder beside ``bundle`` (its folder and the one
    above) holding snapshots of epochs after ``epoch``."""
    here = Path(bundle).absolute()
    out: list[dict[str, str]] = []
    for folder in dict.fromkeys((here.parent, here.parent.parent)):
        later = sorted(e for e in _snapshot_epochs(folder) if e > epoch)
        if not later:
            continue
        first, last = later[0], later[-1]
        span = epochs_text(first, last) if len(later) == last - first + 1 else (
            f"epochs {', '.join(str(e) for e in later[:8])}" + (" ..." if len(later) > 8 else ""))
        out.append({"path": str(folder), "kind": UNPROVEN,
                    "what": f"{len(later)} snapshot(s) of later epochs than the newest bundle "
                            f"given (epoch {epoch}): {span}, no bundle given for them (refused "
                            "as insolvent or malformed, or not proven yet): NOT proven solvent"})
    return out


def _snapshot_epochs(folder: Path) -> list[int]:
    epochs: list[int] = []
    try:
        with os.scandir(folder) as it:
            for _, entry in zip(range(MAX_ENTRIES), it, strict=False):
                m = _EPOCH_DIR.fullmatch(entry.name)
                if m is None or not entry.is_dir(follow_symlinks=False):
                    continue
                child = Path(entry.path)
                if (child / "manifest.json").exists():
                    continue   # a bundle
                if (child / "header.json").exists() or (child / "accounts.csv").exists():
                    epochs.append(int(m.group(1)))
    except OSError:
        return epochs
    return epochs
