"""``zksolv site | serve``: the account holder's page (``zksolv.site``)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

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


@click.command("site")
@click.argument("out_dir", type=click.Path(file_okay=False))
@reports_errors
def site(out_dir: str) -> None:
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
    """
    from zksolv.site import write_site

    for path in write_site(out_dir, generator_table()):
        click.echo(str(path))
    click.echo("publish these beside your bundles; holders open index.html?bundle=PATH "
               "(PATH: a bundle directory, relative to the page)", err=True)


@click.command("serve")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; the default serves this machine only.")
@reports_errors
def serve(directory: str, port: int, host: str) -> None:
    """Serve DIRECTORY (a folder of bundles) and the account holder's page on
    localhost, to try the page. Stop with Ctrl-C.

    The page is at / (index.html); DIRECTORY's files under their own paths.
    Only files readable by others are served: the private inclusion database
    and keys (mode 0600) are not, nor hidden files.

    \b
    Example:
      zksolv serve bundles/ --port 8000
      # open http://127.0.0.1:8000/?bundle=42
    """
    from zksolv.site import make_server

    server = make_server(directory, host=host, port=port, extra=generator_table())
    url = f"http://{host}:{server.server_address[1]}/"
    click.echo(f"serving {directory} and the holder's page at {url} (Ctrl-C to stop)", err=True)
    bundles = sorted(p.parent.relative_to(directory).as_posix()
                     for p in Path(directory).glob("**/manifest.json"))
    for name in bundles[:20]:
        click.echo(f"  bundle {name}: {url}?bundle={urllib.parse.quote(name)}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
