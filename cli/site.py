"""``zksolv site | serve``: the account holder's page (``zksolv.site``)."""

from __future__ import annotations

import urllib.parse
from typing import Any

import click

from zksolv.cli.common import reports_errors

# The generator table the page's proof checks read (zksolv/site/generators.js
# pins each chunk's SHA-256): the CLI's verified generator cache chunks, all
# of them (2 x 32 768 bases, 6.3 MB).
TABLE_CHUNKS = 32


def generator_table(chunks: int = TABLE_CHUNKS) -> dict[str, bytes]:
    """The page's generator table files by site path
    (``generators/chunk-NNNN.bin``): chunk c is G_i x||y, H_i x||y for i in
    [1024c, 1024(c+1)), affine and big-endian, derived by hash-to-curve (or
    read from the verified cache) and hashed by the page against its pins."""
    from zksolv import gencache
    from zksolv.core.generators import CHUNK, chunk_bytes, generators
    from zksolv.core.group import get_backend

    gencache.install()
    backend = get_backend()
    G, H = generators(backend).vectors(chunks * CHUNK)
    out = {}
    for c in range(chunks):
        pts = [p for i in range(c * CHUNK, (c + 1) * CHUNK) for p in (G[i], H[i])]
        out[f"generators/chunk-{c:04d}.bin"] = chunk_bytes(backend.to_affine(pts))
    return out


def _named_registry(registry: str | None, rpc: str | None, chain_id: int | None) -> Any:
    """The registry the page asks (``--registry --rpc --chain-id``), or None."""
    from zksolv.site import site_registry

    named = [v is not None for v in (registry, rpc, chain_id)]
    if any(named) and not all(named):
        raise click.UsageError("--registry, --rpc and --chain-id go together: "
                               "give all three or none")
    if registry is not None and rpc is not None and chain_id is not None:
        return site_registry(registry, rpc, chain_id)
    return None


@click.command("site")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--registry", "registry", metavar="ADDR", default=None,
              help="The public registry your bundles are posted to (with --rpc and --chain-id).")
@click.option("--rpc", metavar="URL", default=None,
              help="A node's JSON-RPC URL the page asks whether the bundle is posted.")
@click.option("--chain-id", type=int, default=None, help="The chain id that node must answer.")
@reports_errors
def site(out_dir: str, registry: str | None, rpc: str | None, chain_id: int | None) -> None:
    """Write the account holder's page into OUT_DIR: static HTML, CSS and
    JavaScript modules, no server code, no build step.

    Publish OUT_DIR with your bundles on one site. A holder opens
    index.html?bundle=PATH (PATH the bundle's directory, relative to the
    page), gives their inclusion proof and account id, and the page checks in
    the browser that their balance reaches the bundle's signed root, and, in
    a Web Worker, the range proof of their shard, a random sample of the
    other shards' and the solvency proofs. It fetches that bundle's files
    (the records it checks, by HTTP Range where the server allows) and the
    generator table written here (generators/, 6.3 MB), nothing else.

    \b
    Example:
      zksolv site public/
      cp -r bundles/42 public/bundles/42     # manifest.json, manifest.sig, ...
      # holders open https://example.com/proofs/index.html?bundle=bundles/42

    With --registry ADDR --rpc URL --chain-id N (all three or none) the page
    also asks that node whether the bundle is the one posted for its epoch
    in that registry (registry.json; the page's policy allows that one
    origin) and shows the command that asks the holder's own node.
    """
    from zksolv.site import write_site

    for path in write_site(out_dir, generator_table(), _named_registry(registry, rpc, chain_id)):
        click.echo(str(path))
    click.echo("publish these beside your bundles; holders open index.html?bundle=PATH "
               "(PATH: a bundle directory, relative to the page)", err=True)


@click.command("serve")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; the default serves this machine only.")
@click.option("--registry", "registry", metavar="ADDR", default=None,
              help="The public registry your bundles are posted to (with --rpc and --chain-id).")
@click.option("--rpc", metavar="URL", default=None,
              help="A node's JSON-RPC URL the page asks whether the bundle is posted.")
@click.option("--chain-id", type=int, default=None, help="The chain id that node must answer.")
@reports_errors
def serve(directory: str, port: int, host: str, registry: str | None, rpc: str | None,
          chain_id: int | None) -> None:
    """Serve the account holder's page and the bundles under DIRECTORY on
    localhost, to try the page. Stop with Ctrl-C.

    \b
    Served (GET and HEAD), and nothing else:
      /  /index.html  /app.js ...   the page's files (from zksolv itself)
      /PATH/FILE                    for each bundle folder PATH under DIRECTORY,
                                    FILE one of manifest.json, manifest.sig and
                                    the data files the manifest lists
                                    (leaves.bin, range.bin, solvency.bin)

    A bundle folder is one whose manifest.json names the bundle format and
    lists its data files. Every folder below DIRECTORY on the way to the file
    must be readable by others (o+rx) and not hidden, and the file a regular
    file (not a symlink) readable by others; a folder symlink must stay inside
    DIRECTORY. Everything else is 404: snapshots (header.json,
    accounts.csv), work areas, inclusion databases, keys, metrics, hidden
    files, folder listings, and bundles inside a private folder.

    A request whose Host header is not this address and port (or
    localhost:PORT) gets 421, so no other site can read these files through
    DNS rebinding. A client must send its request within 10 s; 8 threads
    answer requests; at most 128 connections are open at once.

    \b
    With --registry ADDR --rpc URL --chain-id N (all three or none) the page
    also asks that node whether the bundle is posted, as `zksolv site` sets
    it up (registry.json, and that node's origin in the page's policy).

    \b
    Example:
      zksolv serve bundles/ --port 8000
      # open http://127.0.0.1:8000/?bundle=42
    """
    from zksolv.site import base_url, make_server

    server = make_server(directory, host=host, port=port, extra=generator_table(),
                         registry=_named_registry(registry, rpc, chain_id))
    url = base_url(server)
    click.echo(f"serving {directory} and the holder's page at {url} (Ctrl-C to stop)", err=True)
    bundles = server.bundles(limit=21)
    for name in bundles[:20]:
        query = "." if name == "." else urllib.parse.quote(name)
        click.echo(f"  bundle {name}: {url}?bundle={query}", err=True)
    if len(bundles) > 20:
        click.echo("  ...", err=True)
    if not bundles:
        click.echo("  no bundle is served from this folder (see zksolv serve --help)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
