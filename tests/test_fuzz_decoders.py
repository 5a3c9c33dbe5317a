"""Fuzzing every decoder of untrusted bytes: the manifest and its signature,
the bundle's data files (points, range proofs), the snapshot header and rows,
the inclusion proof (JSON and bytes), scalars, key files and command-line
values. Inputs are random bytes and random mutations (flips, insertions,
deletions, truncations) of valid encodings. The only exceptions allowed to
escape are zksolv's typed errors (``ZksolvError``): never a ValueError,
IndexError, RecursionError, MemoryError, UnicodeError or a hang.

Runs in CI on a bounded budget: ``ZKSOLV_FUZZ_EXAMPLES`` examples per
decoder (default 150; raise it for a longer local run, e.g. 20000).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_epoch_support import ASSETS1, SIGNER, make_snapshot, prove, rows_for, run

from zksolv.circuits import bundle as layout
from zksolv.circuits.inclusion import InclusionProof
from zksolv.core.field import scalar_from_bytes
from zksolv.core.group import POINT_BYTES, get_backend
from zksolv.core.rangeproof import RangeProof
from zksolv.errors import ZksolvError
from zksolv.prover.keys import parse_master_key
from zksolv.snapshot import SnapshotHeader, parse_header
from zksolv.verifier.bundle import check_manifest, parse_operator_key
from zksolv.verifier.inclusion import parse_document

EXAMPLES = int(os.environ.get("ZKSOLV_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Valid encodings to mutate: one tiny bundle and one inclusion proof."""
    d = tmp_path_factory.mktemp("fuzz")
    snap = make_snapshot(d / "s", rows_for(3, 1), assets=ASSETS1)
    prove(snap, d / "b")
    res = run("inclusion", "export", "--db", d / "b.inclusion.sqlite", "--account", "acct-1",
              "--out", d / "p.json")
    assert res.exit_code == 0, res.output
    doc = (d / "p.json").read_bytes()
    return {
        "manifest": (d / "b" / layout.MANIFEST_FILE).read_bytes(),
        "signature": (d / "b" / layout.SIGNATURE_FILE).read_bytes(),
        "range": (d / "b" / layout.RANGE_FILE).read_bytes(),
        "leaves": (d / "b" / layout.LEAVES_FILE).read_bytes(),
        "header": (snap / "header.json").read_bytes(),
        "accounts": (snap / "accounts.csv").read_bytes(),
        "document": doc,
        "proof": bytes.fromhex(json.loads(doc)["proof"]),
    }


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few random edits: flips, overwrites, inserts, deletes,
    or a truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from(b'0 9.-e"\\[]{}:,\nE+\x00\xff\xc3'))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


# JSON values of every type, including floats equal to integers, booleans,
# integers beyond 64 and 128 bits and strings with lone surrogates.
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**140, 2**140),
              st.floats(allow_nan=False, allow_infinity=False),
              st.text(st.characters(), max_size=20), st.just("USD\n"), st.just("\ud800")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8,
)


@st.composite
def json_mutated(draw: st.DrawFn, seed: bytes) -> object:
    """The JSON object in ``seed`` with one value (anywhere) replaced by a
    JSON value of any type, or one key removed or added."""
    obj = json.loads(seed)
    paths: list[tuple[object, ...]] = []

    def walk(o: object, path: tuple[object, ...]) -> None:
        paths.append(path)
        if isinstance(o, dict):
            for k, v in o.items():
                walk(v, (*path, k))
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(v, (*path, i))

    walk(obj, ())
    path = draw(st.sampled_from(paths))
    if not path:
        return draw(JSON_VALUES)
    parent = obj
    for step in path[:-1]:
        parent = parent[step]  # type: ignore[index]
    op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    if op == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif op == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    else:
        parent[path[-1]] = draw(JSON_VALUES)  # type: ignore[index]
    return obj


def _either(seed: bytes, max_size: int = 512) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=max_size), mutated(seed),
                     json_mutated(seed).map(lambda o: json.dumps(o).encode())
                     if seed[:1] == b"{" else mutated(seed))


def _typed_only(fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except ZksolvError:
        pass


@FUZZ
@given(data=st.data())
def test_manifest_and_signature(seeds: dict[str, bytes], data: st.DataObject) -> None:
    raw = data.draw(_either(seeds["manifest"]))
    sig = data.draw(st.one_of(st.just(seeds["signature"]), mutated(seeds["signature"])))
    _typed_only(check_manifest, raw, sig)


@FUZZ
@given(data=st.data())
def test_manifest_signed_and_canonical(seeds: dict[str, bytes], data: st.DataObject) -> None:
    """Canonical, correctly signed manifests with one value of any type
    anywhere: they reach every check past the signature."""
    obj = data.draw(json_mutated(seeds["manifest"]))
    try:
        raw = layout.canonical_json(obj)
    except UnicodeEncodeError:  # cannot be written as canonical bytes at all
        return
    message = layout.signature_message(hashlib.sha256(raw).digest())
    _typed_only(check_manifest, raw, SIGNER.sign(message))


@FUZZ
@given(data=st.data())
def test_range_proof_bytes(seeds: dict[str, bytes], data: st.DataObject) -> None:
    _typed_only(RangeProof.from_bytes, data.draw(_either(seeds["range"], 2048)))


@FUZZ
@given(data=st.data())
def test_leaf_points(seeds: dict[str, bytes], data: st.DataObject) -> None:
    backend = get_backend("arkworks")
    chunk = data.draw(st.one_of(st.binary(min_size=POINT_BYTES, max_size=POINT_BYTES),
                                mutated(seeds["leaves"][:POINT_BYTES])))
    _typed_only(backend.decode, chunk)


@FUZZ
@given(raw=st.binary(min_size=32, max_size=32))
def test_scalars(raw: bytes) -> None:
    _typed_only(scalar_from_bytes, raw)


@FUZZ
@given(data=st.data())
def test_snapshot_header(seeds: dict[str, bytes], data: st.DataObject) -> None:
    _typed_only(parse_header, data.draw(_either(seeds["header"])), "header.json")


@FUZZ
@given(data=st.data())
def test_snapshot_rows(seeds: dict[str, bytes], data: st.DataObject,
                       tmp_path_factory: pytest.TempPathFactory) -> None:
    from zksolv.snapshot import Snapshot

    d = tmp_path_factory.mktemp("rows", numbered=True)
    (d / "accounts.csv").write_bytes(data.draw(_either(seeds["accounts"])))
    header = parse_header(seeds["header"], "header.json")
    assert isinstance(header, SnapshotHeader)
    _typed_only(lambda: list(Snapshot(Path(d), header).iter_accounts()))


@FUZZ
@given(data=st.data())
def test_inclusion_document(seeds: dict[str, bytes], data: st.DataObject) -> None:
    _typed_only(parse_document, data.draw(_either(seeds["document"], 1024)))


@FUZZ
@given(data=st.data())
def test_inclusion_proof_bytes(seeds: dict[str, bytes], data: st.DataObject) -> None:
    _typed_only(InclusionProof.from_bytes, data.draw(_either(seeds["proof"])))


@FUZZ
@given(text=st.text(max_size=80))
def test_key_and_command_line_values(text: str) -> None:
    from zksolv.cli.epoch import _parse_expect

    _typed_only(parse_master_key, text, "key")
    _typed_only(parse_operator_key, text)
    _typed_only(_parse_expect, (text,))
    _typed_only(_parse_expect, ("USD=" + text,))
