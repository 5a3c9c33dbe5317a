"""The words an account holder reads, one wording per check tag, shared by
the page (which fetches ``words.json``) and ``zksolv inclusion verify``
(which reads the same file, shipped as package data, through this module).

``words.json`` holds, per tag, ``passed`` (what the check established, for
a list of checks that passed), ``failed`` (what a failure means) and
``next`` (what to do, as keys of ``next``); ``verdict`` the headings;
``unchecked`` what a check did not cover, by key (``range``, ``debt-range``,
``margin-health``, ``solvency``, ``signature-browser``, ``chain-link``, and
for reserves ``reserves-asserted`` (versions 4 and 5), ``reserves-balances``
and ``reserves-contracts`` (version 6: they need a node)).
docs/epoch.md states the format.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

WORDS_FILE = "words.json"


@functools.cache
def holder_words() -> dict[str, Any]:
    """The shipped words.json, decoded (it is the package's own file)."""
    data = resources.files(__package__ or "zksolv.site").joinpath(WORDS_FILE).read_bytes()
    words: dict[str, Any] = json.loads(data)
    return words


def passed(tag: str) -> str:
    """What a passed check established, in words (the tag if unknown)."""
    entry = holder_words()["checks"].get(tag)
    return str(entry["passed"]) if entry else tag


def failure(tag: str) -> tuple[str, list[str]]:
    """What a failed check means, and what to do next (sentences)."""
    words = holder_words()
    entry = words["checks"].get(tag) or words["unknown"]
    return str(entry["failed"]), [str(words["next"][k]) for k in entry["next"]]


def unchecked(key: str) -> str:
    """What a check did not cover (``range``, ``debt-range``, ``margin-health``,
    ``solvency``, ...), in words."""
    return str(holder_words()["unchecked"][key])


def verdict(key: str) -> str:
    return str(holder_words()["verdict"][key])
