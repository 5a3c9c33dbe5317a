"""``zksolv docs``: the format and protocol documents shipped with the package."""

from __future__ import annotations

from importlib import resources

import click

from zksolv.cli.common import reports_errors
from zksolv.errors import InputError


def _docs() -> dict[str, str]:
    folder = resources.files("zksolv") / "docs"
    if not folder.is_dir():
        return {}
    return {p.name.removesuffix(".md"): str(p) for p in sorted(folder.iterdir(),
                                                                key=lambda p: p.name)
            if p.name.endswith(".md")}


@click.command()
@click.argument("name", required=False)
@reports_errors
def docs(name: str | None) -> None:
    """List the documents installed with zksolv (formats, protocol, auditing)
    and where its test vectors are, or print the document called NAME.

    \b
    Examples:
      zksolv docs                 # names and paths
      zksolv docs auditing        # what a bundle proves and how to check it
      zksolv docs bundle-format   # every byte of a bundle and of the epoch header
    """
    found = _docs()
    if not found:
        raise InputError("docs", "no documents installed with this copy of zksolv")
    if name is None:
        for n, path in found.items():
            click.echo(f"{n:16} {path}")
        vectors = resources.files("zksolv") / "vectors"
        if vectors.is_dir():
            click.echo(f"{'vectors':16} {vectors}  (test vectors: bundles/index.json, "
                       "spec/index.json, transcript_v1.json, rangeproof_v1.json)")
        return
    key = name.removesuffix(".md")
    if key not in found:
        raise InputError("docs", f"no document {name!r}; there are: {', '.join(found)}")
    click.echo((resources.files("zksolv") / "docs" / f"{key}.md").read_text(encoding="utf-8"),
               nl=False)
