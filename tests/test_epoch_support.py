"""Shared helpers for the epoch tests: tiny snapshots, proving through the
CLI, and rewriting a bundle the way an attacker would (fixing the manifest's
hashes so only the cryptographic checks can catch the change)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from click.testing import CliRunner, Result

from zksolv.circuits import bundle as layout
from zksolv.cli.main import cli
from zksolv.prover.keys import public_key_bytes, signing_key
from zksolv.snapshot import Asset, SnapshotHeader, write_snapshot

KEY_HEX = "11" * 32
# The operator key the tests prove with; an attacker in these tests may also
# hold it (re-signing a rewritten manifest), so that only the cryptographic
# checks can catch a change.
SIGNER = signing_key(bytes.fromhex(KEY_HEX))
OPERATOR_HEX = public_key_bytes(SIGNER).hex()

ASSETS2 = (
    Asset("USDC", 6, 100, 10_000, 10**12),
    Asset("BTC", 8, 6_000_000, 9_000, 10**9),
)
ASSETS1 = (Asset("USD", 6, 100, 10_000, 10**12),)


def rows_for(n: int, k: int, *, scale: int = 1000) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"acct-{i}", tuple((i + 1) * scale * (j + 1) + j for j in range(k))) for i in range(n)]


def make_snapshot(path: Path, rows: Sequence[tuple[str, Sequence[int]]], *, epoch: int = 1,
                  assets: tuple[Asset, ...] = ASSETS2) -> Path:
    header = SnapshotHeader(epoch, 1_700_000_000 + epoch, 2, assets, len(rows))
    return write_snapshot(path, header, [(a, tuple(v)) for a, v in rows])


def run(*args: str | Path, backend: str | None = None) -> Result:
    """The CLI in-process. ``prove`` without --inclusion-db keeps its
    database beside the bundle (OUT.inclusion.sqlite) in these tests, not in
    the user's data directory."""
    argv = ([f"--backend={backend}"] if backend else []) + [str(a) for a in args]
    if args and args[0] == "prove" and "--out" in argv and "--inclusion-db" not in argv:
        out = Path(str(args[list(map(str, args)).index("--out") + 1]))
        argv += ["--inclusion-db", str(out.parent / f"{out.name}.inclusion.sqlite")]
    return CliRunner().invoke(cli, argv, env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})


def work_area(out: Path) -> Path:
    """Where ``prove --out OUT`` keeps its private work area by default (in
    the private data directory, named after OUT's absolute path)."""
    from zksolv.prover.workarea import default_work_dir

    return default_work_dir(out)


def prove(snapshot: Path, out: Path, *extra: str | Path, backend: str | None = None) -> Result:
    res = run("prove", snapshot, "--out", out, "--jobs", "1", "--quiet", *extra, backend=backend)
    assert res.exit_code == 0, res.output
    return res


def verify_json(bundle: Path, *extra: str | Path, backend: str | None = None) -> tuple[int, dict]:
    res = run("verify", bundle, "--json", *extra, backend=backend)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, json.loads(res.output)


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def read_manifest(bundle: Path) -> dict:
    return json.loads((bundle / layout.MANIFEST_FILE).read_text())


def sign_manifest(bundle: Path, signer: object = SIGNER) -> None:
    """Sign the bundle's manifest.json as it is now (``signer`` an Ed25519 key)."""
    raw = (bundle / layout.MANIFEST_FILE).read_bytes()
    message = layout.signature_message(hashlib.sha256(raw).digest())
    (bundle / layout.SIGNATURE_FILE).write_bytes(signer.sign(message))  # type: ignore[attr-defined]


def write_manifest(bundle: Path, manifest: dict, *, rehash: bool = True,
                   resign: bool = True) -> None:
    """Write ``manifest`` canonically, first refreshing every file's hash,
    then re-sign it with the operator key."""
    if rehash:
        for name in layout.DATA_FILES_MARGIN:
            if name not in manifest["files"]:
                continue
            data = (bundle / name).read_bytes()
            manifest["files"][name] = {
                "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)
            }
    (bundle / layout.MANIFEST_FILE).write_bytes(layout.canonical_json(manifest))
    if resign:
        sign_manifest(bundle)
