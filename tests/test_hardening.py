"""Hardening regressions: the account holder's check binds who and what, one
bundle has one hash, hostile files never crash or hang, private files stay
private, and bundles name (and are signed by) their operator.

Each test names the attack it defeats and asserts the specific outcome
(check tag, exit code, message), never just "it failed"."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_epoch_support import (
    ASSETS1,
    KEY_HEX,
    OPERATOR_HEX,
    copy_bundle,
    make_snapshot,
    prove,
    read_manifest,
    rows_for,
    run,
    sign_manifest,
    verify_json,
    write_manifest,
)

from zksolv.circuits import bundle as layout
from zksolv.errors import InputError
from zksolv.prover.keys import public_key_bytes, signing_key
from zksolv.snapshot import Asset

ROOT = Path(__file__).resolve().parent.parent
# USDC with 9 decimals: the holder must be shown that, not assume 6.
ASSETS9 = (Asset("USDC", 9, 100, 10_000, 10**12), Asset("BTC", 8, 6_000_000, 9_000, 10**9))
OTHER_KEY = signing_key(bytes.fromhex("22" * 32))
OTHER_HEX = public_key_bytes(OTHER_KEY).hex()


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A FIFO must never block: any test here taking 60 s has hung."""
    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError("hung (a blocking read?)")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def epoch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two assets, 5 accounts with distinct balances, two accounts with equal
    balances for the identity attack, and a non-ASCII id."""
    d = tmp_path_factory.mktemp("harden")
    rows = [*rows_for(5, 2), ("alice", (5000, 7)), ("bob", (5000, 7)), ("åsa", (1, 2))]
    prove(make_snapshot(d / "snap", rows, epoch=4, assets=ASSETS9), d / "b")
    for acc in ("bob", "alice", "acct-1"):
        res = run("inclusion", "export", "--db", d / "b.inclusion.sqlite", "--account", acc,
                  "--out", d / f"{acc}.json")
        assert res.exit_code == 0, res.output
    return d


def _bundle_hash(bundle: Path) -> str:
    code, out = verify_json(bundle)
    assert code == 0, out
    return str(out["bundles"][0]["bundle_hash"])


def _incl(*args: object) -> tuple[int, dict]:
    res = run("inclusion", "verify", *map(str, args), "--json")
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, json.loads(res.output)


def _units(out: dict) -> dict[str, int]:
    """inclusion verify --json: each asset's amount in proof units."""
    return {sym: a["proof_units"] for sym, a in out["amounts"].items()}


def _one_line_error(res: object, code: int) -> str:
    """The command failed with ``code`` and exactly one line 'error: ...', no traceback."""
    assert res.exit_code == code, res.output  # type: ignore[attr-defined]
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception  # type: ignore[attr-defined]
    lines = [line for line in res.output.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output  # type: ignore[attr-defined]
    return str(lines[0])


# --- 1. the holder's check binds who and what ---------------------------------


def test_holder_must_name_their_account(epoch: Path) -> None:
    """alice is handed bob's proof (equal balances): without --account the
    check refuses to run; with her own id it fails inclusion-account."""
    b = epoch / "b"
    res = run("inclusion", "verify", epoch / "bob.json", "--bundle", b, "--expect", "USDC=5000")
    assert res.exit_code == 2 and "--account" in res.output
    code, out = _incl(epoch / "bob.json", "--account", "alice", "--bundle", b,
                      "--expect", "USDC=5000", "--expect", "BTC=7")
    assert (code, out["check"]) == (1, "inclusion-account")
    code, out = _incl(epoch / "bob.json", "--account", "alice", "--bundle-hash", _bundle_hash(b))
    assert (code, out["check"]) == (1, "inclusion-account")
    code, out = _incl(epoch / "alice.json", "--account", "alice", "--bundle", b,
                      "--expect", "USDC=5000", "--expect", "BTC=7")
    assert code == 0 and out["account_id"] == "alice", out
    # a non-ASCII id, exported to stdout, checks out under its own name only
    res = run("inclusion", "export", "--db", epoch / "b.inclusion.sqlite", "--account", "åsa")
    assert res.exit_code == 0, res.output
    (epoch / "asa.json").write_text(res.output, encoding="utf-8")
    code, out = _incl(epoch / "asa.json", "--account", "åsa", "--bundle-hash", _bundle_hash(b))
    assert code == 0 and _units(out) == {"USDC": 1, "BTC": 2}, out
    code, out = _incl(epoch / "asa.json", "--account", "asa", "--bundle-hash", _bundle_hash(b))
    assert (code, out["check"]) == (1, "inclusion-account")


def _examples(text: str) -> list[str]:
    """Every `inclusion verify` invocation in a text, continuation lines joined."""
    joined = re.sub(r"\\\s*\n\s*", " ", text)
    return [m.group(0) for m in re.finditer(r"inclusion verify [^\n`|]*", joined)
            if not m.group(0).strip().endswith("verify")]


def test_every_documented_example_names_the_account() -> None:
    sources = {p.name: p.read_text() for p in [ROOT / "README.md", *ROOT.glob("docs/*.md")]}
    for argv in (["--help"], ["inclusion", "--help"], ["inclusion", "verify", "--help"]):
        res = run(*argv)
        assert res.exit_code == 0
        sources[" ".join(argv)] = res.output
    found = 0
    for name, text in sources.items():
        for example in _examples(text):
            found += 1
            assert "--account" in example, (name, example)
    assert found >= 4


def test_asset_labels_come_from_the_signed_manifest(epoch: Path, tmp_path: Path) -> None:
    """The operator swaps the asset columns (or relabels one) in the manifest
    the proof carries, even re-signing it: the proof bytes bind the bundle
    hash, so the check fails; a label field of its own is refused."""
    bundle_hash = _bundle_hash(epoch / "b")
    doc = json.loads((epoch / "alice.json").read_text())
    m = json.loads(doc["manifest"])
    for edit in ("swap", "relabel"):
        forged = dict(m)
        if edit == "swap":
            forged["assets"] = list(reversed(m["assets"]))
        else:
            forged["assets"] = [dict(m["assets"][0], symbol="DOGE"), m["assets"][1]]
        raw = layout.canonical_json(forged)
        bad = dict(doc, manifest=raw.decode())
        (tmp_path / "p.json").write_text(json.dumps(bad))
        code, out = _incl(tmp_path / "p.json", "--account", "alice", "--bundle-hash", bundle_hash)
        assert (code, out["check"]) == (1, "inclusion-bundle"), (edit, out)
    (tmp_path / "p.json").write_text(json.dumps(dict(doc, assets=["BTC", "USDC"])))
    code, out = _incl(tmp_path / "p.json", "--account", "alice", "--bundle-hash", bundle_hash)
    assert (code, out["check"]) == (1, "inclusion-format")
    assert "unknown field `assets`" in out["detail"]
    # the genuine proof: amounts labelled by the manifest's own column order
    code, out = _incl(epoch / "alice.json", "--account", "alice", "--bundle-hash", bundle_hash,
                      "--expect", "USDC=5000", "--expect", "BTC=7")
    assert code == 0 and _units(out) == {"USDC": 5000, "BTC": 7}, out
    assert out["siblings_nonnegative"] == "unchecked"


def test_duplicate_symbol_bundle_is_refused(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle whose header lists USDC twice (made by a prover whose reader
    and self-check are bypassed): every proof in it is valid, the verifier
    still refuses it."""
    from zksolv import snapshot
    from zksolv.prover import epoch as prover

    dup = (ASSETS1[0], ASSETS1[0])
    snap = make_snapshot(tmp_path / "s", rows_for(3, 2), assets=ASSETS9)
    real = snapshot.open_snapshot(snap)
    forged = snapshot.Snapshot(real.path, snapshot.SnapshotHeader(
        real.header.epoch, real.header.timestamp, real.header.price_decimals, dup,
        real.header.account_count))
    (snap / "accounts.csv").write_text((snap / "accounts.csv").read_text().replace(
        "account_id,USDC,BTC", "account_id,USD,USD"))
    monkeypatch.setattr(prover, "open_snapshot", lambda path: forged)
    monkeypatch.setattr(prover, "verify_bundle", lambda *a, **k: None)
    monkeypatch.setattr(prover.InclusionDB, "finish", lambda *a, **k: None)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 0, res.output
    monkeypatch.undo()
    code, out = verify_json(tmp_path / "b")
    assert (code, out["check"]) == (1, "manifest-format"), out
    assert "duplicate asset 'USD'" in out["detail"]


def test_terms_are_shown(epoch: Path) -> None:
    """USDC has 9 decimals in this header: verify and inclusion verify say so,
    with its price and reserves, in text and JSON."""
    b = epoch / "b"
    code, out = verify_json(b)
    usdc = out["bundles"][0]["assets"][0]
    assert usdc == {"symbol": "USDC", "decimals": 9, "proof_decimals": 9, "price": 100,
                    "price_decimals": 2, "haircut_bps": 10_000, "reserves": 10**12,
                    "proven_reserves": 10**12, "rounding": "liabilities-up/reserves-down"}
    res = run("verify", b)
    assert res.exit_code == 0
    assert "USDC: decimals 9, price 1.00 (raw 100 at 2 price decimals), haircut 100.00%, " \
           "reserves 1000.000000000 USDC (1000000000000 base units)" in res.output
    assert "BTC: decimals 8, price 60000.00" in res.output
    res = run("inclusion", "verify", epoch / "alice.json", "--account", "alice", "--bundle", b)
    assert res.exit_code == 0, res.output
    assert "\n  USDC 0.000005000 (5000 units of 10^-9 USDC)\n" in res.output
    assert "USDC: decimals 9" in res.output and "reserves 1000.000000000 USDC" in res.output


# --- 2. one bundle, one hash ----------------------------------------------------


@pytest.mark.parametrize("edit", [
    ("version", lambda m: m.__setitem__("version", 2.0)),
    ("version", lambda m: m.__setitem__("version", True)),
    ("bits", lambda m: m["statements"]["leaf_range"].__setitem__("bits", 64.0)),
    ("bits", lambda m: m["statements"]["solvency_valued"].__setitem__("bits", 128.0)),
    ("epoch", lambda m: m.__setitem__("epoch", 4.0)),
    ("reveal_totals", lambda m: m.__setitem__("reveal_totals", 0)),
    ("depth", lambda m: m["tree"].__setitem__("depth", 3.0)),
], ids=lambda e: e[0] if isinstance(e, tuple) else str(e))
def test_exact_json_types(epoch: Path, tmp_path: Path, edit: tuple) -> None:
    """Each value equal in Python (2 == 2.0 == ... , 1 == True) but another
    JSON type, re-signed by the operator: refused, so no second bundle hash."""
    work = copy_bundle(epoch / "b", tmp_path / "b")
    m = read_manifest(work)
    edit[1](m)
    write_manifest(work, m)
    code, out = verify_json(work)
    assert (code, out["check"]) == (1, "manifest-format"), out
    assert "Expected" in out["detail"]


def test_non_canonical_manifest(epoch: Path, tmp_path: Path) -> None:
    """Same values, other bytes (indentation, key order, escapes, a duplicate
    key), re-signed: manifest-canonical."""
    work = copy_bundle(epoch / "b", tmp_path / "b")
    m = read_manifest(work)
    raw = layout.canonical_json(m)
    variants = [
        json.dumps(m, indent=4, sort_keys=True).encode() + b"\n",
        json.dumps(dict(reversed(list(m.items()))), indent=2).encode() + b"\n",
        raw.replace(b'"USDC"', b'"\\u0055SDC"'),
        raw.replace(b'{\n  "assets"', b'{\n  "epoch": 9,\n  "assets"', 1),
    ]
    for bad in variants:
        (work / layout.MANIFEST_FILE).write_bytes(bad)
        sign_manifest(work)
        code, out = verify_json(work)
        assert (code, out["check"]) == (1, "manifest-canonical"), (bad[:60], out)


# --- 3. hostile files -------------------------------------------------------------


def _fifo(path: Path) -> Path:
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mkfifo(path)
    return path


def _sparse(path: Path, size: int = 3 << 30) -> Path:
    if path.exists() or path.is_symlink():
        path.unlink()
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _zero(path: Path) -> Path:
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize("kind", ["fifo", "zero", "huge"])
def test_hostile_bundle_files(epoch: Path, tmp_path: Path, kind: str) -> None:
    make = {"fifo": _fifo, "zero": _zero, "huge": _sparse}[kind]
    why = {"fifo": "a FIFO", "zero": "a character device", "huge": "bytes"}[kind]
    tags = {layout.MANIFEST_FILE: "manifest-missing", layout.SIGNATURE_FILE: "signature",
            **{n: "manifest-hash" for n in layout.DATA_FILES}}
    for name, tag in tags.items():
        work = copy_bundle(epoch / "b", tmp_path / f"{kind}-{name}")
        make(work / name)
        code, out = verify_json(work)
        assert (code, out["check"]) == (1, tag), (name, out)
        assert why in out["detail"], (name, out)


@pytest.mark.parametrize("kind", ["fifo", "zero", "huge"])
def test_hostile_inputs_everywhere_else(epoch: Path, tmp_path: Path, kind: str) -> None:
    """header.json, accounts.csv, --key, inclusion JSON, --operator file and the
    inclusion database as FIFO, /dev/zero or a 3 GiB file: exit 2, one line."""
    make = {"fifo": _fifo, "zero": _zero, "huge": _sparse}[kind]
    why = {"fifo": "a FIFO", "zero": "a character device", "huge": "at most"}[kind]
    for name in ("header.json", "accounts.csv"):
        snap = make_snapshot(tmp_path / f"s-{name}", rows_for(2, 1), assets=ASSETS1)
        make(snap / name)
        res = run("prove", snap, "--out", tmp_path / f"o-{name}", "--jobs", "1", "--quiet")
        if kind == "huge" and name == "accounts.csv":
            # no size bound on the body (it streams), but a line of zero bytes
            # longer than the format allows is refused at once
            assert "line longer than" in _one_line_error(res, 2)
            continue
        assert why in _one_line_error(res, 2), name
    snap = make_snapshot(tmp_path / "s", rows_for(2, 1), assets=ASSETS1)
    key = make(tmp_path / "op.key")
    res = run("prove", snap, "--out", tmp_path / "o", "--key", key, "--jobs", "1", "--quiet")
    assert why in _one_line_error(res, 2)
    proof = make(tmp_path / "proof.json")
    res = run("inclusion", "verify", proof, "--account", "alice", "--bundle", epoch / "b")
    assert why in _one_line_error(res, 2)
    res = run("verify", epoch / "b", "--operator", make(tmp_path / "op.pub"))
    assert why in _one_line_error(res, 2)
    if kind != "huge":  # a large database is legitimate
        res = run("inclusion", "export", "--db", make(tmp_path / "x.sqlite"), "--account", "a")
        assert why in _one_line_error(res, 2)


def test_long_integers_deep_nesting_surrogates(epoch: Path, tmp_path: Path) -> None:
    big = "9" * 5000
    # manifest.json (re-signed): a 5000-digit epoch
    work = copy_bundle(epoch / "b", tmp_path / "b")
    raw = layout.canonical_json(read_manifest(work))
    long_epoch = raw.replace(b'"epoch": 4', f'"epoch": {big}'.encode())
    (work / layout.MANIFEST_FILE).write_bytes(long_epoch)
    sign_manifest(work)
    code, out = verify_json(work)
    assert (code, out["check"]) == (1, "manifest-format"), out
    # a lone surrogate, or a trailing newline, as a symbol (re-signed)
    for symbol in (b'"\\ud800"', b'"BTC\\n"'):
        (work / layout.MANIFEST_FILE).write_bytes(raw.replace(b'"BTC"', symbol))
        sign_manifest(work)
        code, out = verify_json(work)
        assert (code, out["check"]) == (1, "manifest-format"), out
    # header.json: long integer, 10^5-deep nesting, lone surrogate, "USD\n"
    snap = make_snapshot(tmp_path / "s", rows_for(2, 1), assets=ASSETS1)
    header = (snap / "header.json").read_text()
    cases = {
        "price": header.replace('"price": 100', f'"price": {big}'),
        "deep": header.replace('"timestamp"', '"x": ' + "[" * 100_000 + "]" * 100_000
                               + ', "timestamp"'),
        "deep-top": "[" * 100_000 + "]" * 100_000,
        "surrogate": header.replace('"USD"', '"\\ud800"'),
        "newline": header.replace('"USD"', '"USD\\n"'),
    }
    for name, text in cases.items():
        (snap / "header.json").write_text(text)
        res = run("prove", snap, "--out", tmp_path / "o", "--jobs", "1", "--quiet")
        assert "header.json" in _one_line_error(res, 2), name
    # accounts.csv: a 5000-digit amount, Unicode digits, an id with a newline
    snap = make_snapshot(tmp_path / "s2", rows_for(2, 1), assets=ASSETS1)
    for body, why in ((f"account_id,USD\nacct-0,{big}\nacct-1,5\n", "line longer than"),
                      ("account_id,USD\nacct-0," + "0" * 300 + "1\nacct-1,5\n", None),
                      ("account_id,USD\nacct-0,٥٠٠٠\nacct-1,5\n", "not a non-negative"),
                      ("account_id,USD\nacct-0,²\nacct-1,5\n", "not a non-negative"),
                      ('account_id,USD\n"acct\r0",1\nacct-1,5\n', "control character")):
        (snap / "accounts.csv").write_text(body, encoding="utf-8", newline="")
        out = tmp_path / f"o-{len(body)}"
        res = run("prove", snap, "--out", out, "--jobs", "1", "--quiet")
        if why is None:  # leading zeros are still the number 1
            assert res.exit_code == 0, res.output
            continue
        assert why in _one_line_error(res, 2), body
    # inclusion JSON: a 5000-digit epoch, a surrogate id
    doc = (epoch / "alice.json").read_text()
    for text in (re.sub(r'"epoch":4', f'"epoch":{big}', doc),
                 doc.replace('"account_id":"alice"', '"account_id":"\\ud800"')):
        assert text != doc
        (tmp_path / "p.json").write_text(text)
        code, out = _incl(tmp_path / "p.json", "--account", "alice", "--bundle", epoch / "b")
        assert (code, out["check"]) == (1, "inclusion-format"), out


@pytest.mark.parametrize("expect", ["USDC=²", "USDC=٥٠٠٠", "USDC=5000\n", "USDC\n=5000",
                                    "USDC=" + "9" * 5000, "USDC=18446744073709551616",
                                    "USDC=-1", "USDC=+5000", "USDC= 5000"])
def test_expect_is_ascii_digits_matched_whole(epoch: Path, expect: str) -> None:
    res = run("inclusion", "verify", epoch / "alice.json", "--account", "alice",
              "--bundle-hash", _bundle_hash(epoch / "b"), "--expect", expect)
    assert "--expect" in _one_line_error(res, 2)


@pytest.mark.parametrize("manifest", [{}, {"epoch": "x"}, {"epoch": [1]}, {"epoch": 1.5},
                                      {"epoch": 1.0}, True, None], ids=str)
def test_prev_must_be_a_bundle_that_verifies(epoch: Path, tmp_path: Path,
                                             manifest: object) -> None:
    """--prev whose manifest is canonical JSON but not a bundle (a traceback,
    or 1.5 read as epoch 1 and linked), or a corrupt bundle whose manifest is
    consistent and signed: exit 2, one line, nothing written."""
    prev = copy_bundle(epoch / "b", tmp_path / "prev")
    if manifest is None:
        data = bytearray((prev / layout.LEAVES_FILE).read_bytes())
        data[100] ^= 1
        (prev / layout.LEAVES_FILE).write_bytes(bytes(data))
        write_manifest(prev, read_manifest(prev))
        this_epoch = 5
    else:
        (prev / layout.MANIFEST_FILE).write_bytes(layout.canonical_json(manifest))
        sign_manifest(prev)
        this_epoch = 2
    snap = make_snapshot(tmp_path / "s", rows_for(2, 1), epoch=this_epoch, assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "o", "--prev", prev, "--jobs", "1", "--quiet")
    assert "previous bundle does not verify" in _one_line_error(res, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prev", "s"]


def test_prev_by_another_operator_is_refused(epoch: Path, tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "s", rows_for(2, 1), epoch=5, assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "o", "--prev", epoch / "b", "--jobs", "1",
              "--quiet", "--key", _key_file(tmp_path, "22" * 32))
    assert "one operator key" in _one_line_error(res, 2)


def _key_file(d: Path, hex_: str) -> Path:
    p = d / "other.key"
    p.write_text(hex_ + "\n")
    p.chmod(0o600)
    return p


@pytest.mark.parametrize("change", ["grow", "same-count"])
def test_accounts_changing_between_passes(tmp_path: Path, change: str) -> None:
    """The prover reads accounts.csv twice; a file that changes in between
    (grows past the padded tree: an IndexError before; or keeps its row count
    and totals but moves amounts: silently proven before) is refused and
    nothing is written."""
    from zksolv.prover.epoch import prove_epoch

    snap = make_snapshot(tmp_path / "s", rows_for(5, 1), assets=ASSETS1)
    accounts = snap / "accounts.csv"

    def progress(items: object, total: int, desc: str) -> Iterator[object]:
        yield from items  # type: ignore[misc]
        if desc == "validate":
            text = accounts.read_text()
            if change == "grow":
                accounts.write_text(text + "".join(f"late-{i},1\n" for i in range(10)))
            else:
                accounts.write_text(text.replace("acct-0,1000", "acct-0,2000")
                                    .replace("acct-1,2000", "acct-1,1000"))

    with pytest.raises(InputError, match="changed while being proven"):
        prove_epoch(snap, tmp_path / "b", master_key=bytes.fromhex(KEY_HEX), progress=progress,
                    inclusion_db=tmp_path / "b.inclusion.sqlite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_export_from_a_tampered_database(epoch: Path, tmp_path: Path) -> None:
    edits = {
        "meta k": "UPDATE meta SET value='x' WHERE key='k'",
        "meta depth": "UPDATE meta SET value='99' WHERE key='depth'",
        "meta epoch": "UPDATE meta SET value='" + "9" * 5000 + "' WHERE key='epoch'",
        "no manifest": "DELETE FROM meta WHERE key='manifest'",
        "bundle hash": "UPDATE meta SET value='zz' WHERE key='bundle_hash'",
        "amounts": "UPDATE leaves SET amounts=x'00' WHERE account_id='alice'",
        "amount value": "UPDATE leaves SET amounts=zeroblob(16) WHERE account_id='alice'",
        "blinding": "UPDATE leaves SET blindings=x'" + "ff" * 64 + "' WHERE account_id='alice'",
        "salt": "UPDATE leaves SET salt=NULL WHERE account_id='alice'",
        "index": "UPDATE leaves SET idx=idx+100000 WHERE account_id='alice'",
        "node gone": "DELETE FROM nodes WHERE level=0",
        "node size": "UPDATE nodes SET data=x'00' WHERE level=1",
        "node bytes": "UPDATE nodes SET data=zeroblob(length(data)) WHERE level=2",
        "table gone": "DROP TABLE nodes",
    }
    for name, sql in edits.items():
        db = tmp_path / f"{name}.sqlite"
        db.write_bytes((epoch / "b.inclusion.sqlite").read_bytes())
        con = sqlite3.connect(db)
        con.execute(sql)
        con.commit()
        con.close()
        res = run("inclusion", "export", "--db", db, "--account", "alice")
        assert "corrupt or tampered" in _one_line_error(res, 2), name


# --- 4. private files stay private ---------------------------------------------------


def test_export_is_private_and_never_follows_a_planted_symlink(epoch: Path,
                                                               tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (tmp_path / ".alice.json.tmp").symlink_to(victim)  # the old fixed temporary name
    out = tmp_path / "alice.json"
    res = run("inclusion", "export", "--db", epoch / "b.inclusion.sqlite", "--account", "alice",
              "--out", out)
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert victim.read_text() == "keep me\n"
    # a symlink at the destination itself is replaced, not written through
    out.unlink()
    out.symlink_to(victim)
    res = run("inclusion", "export", "--db", epoch / "b.inclusion.sqlite", "--account", "alice",
              "--out", out)
    assert res.exit_code == 0 and not out.is_symlink()
    assert victim.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".alice.json.tmp", "alice.json",
                                                          "victim"]


def test_bundle_public_and_key_warning(tmp_path: Path) -> None:
    key = tmp_path / "op.key"
    res = run("keygen", "--out", key)
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pub = tmp_path / "op.key.pub"
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert pub.read_text().strip() in res.output
    key.chmod(0o644)
    snap = make_snapshot(tmp_path / "s", rows_for(2, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--key", key, "--jobs", "1", "--quiet")
    assert res.exit_code == 0, res.output
    assert f"warning: operator key file {key} is readable by others (mode 0644)" in res.output
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o755
    for f in (tmp_path / "b").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
    assert stat.S_IMODE((tmp_path / "b.inclusion.sqlite").stat().st_mode) == 0o600
    # the bundle is signed by the key keygen printed
    code, out = verify_json(tmp_path / "b", "--operator", pub)
    assert code == 0 and out["bundles"][0]["operator"] == pub.read_text().strip()


def test_rerun_recovers_after_a_kill_between_the_renames(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The database is renamed into place, then the process dies before the
    bundle's rename: a rerun replaces the orphan database and publishes."""
    from zksolv.prover import epoch as prover

    class Killed(BaseException):
        pass

    real_rename = os.rename

    def rename(src: object, dst: object) -> None:
        if Path(str(dst)) == tmp_path / "b":
            raise Killed()
        real_rename(src, dst)  # type: ignore[arg-type]

    snap = make_snapshot(tmp_path / "s", rows_for(3, 1), assets=ASSETS1)
    monkeypatch.setattr(prover.os, "rename", rename)
    with pytest.raises(Killed):
        prover.prove_epoch(snap, tmp_path / "b", master_key=bytes.fromhex(KEY_HEX),
                           inclusion_db=tmp_path / "b.inclusion.sqlite")
    monkeypatch.undo()
    assert (tmp_path / "b.inclusion.sqlite").exists() and not (tmp_path / "b").exists()
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 0, res.output
    assert "replaced" in res.output and "interrupted run" in res.output
    res = run("inclusion", "export", "--db", tmp_path / "b.inclusion.sqlite", "--account",
              "acct-1", "--out", tmp_path / "p.json")
    assert res.exit_code == 0, res.output
    code, out = _incl(tmp_path / "p.json", "--account", "acct-1", "--bundle", tmp_path / "b")
    assert code == 0, out
    # a database next to a published bundle is never replaced
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 2 and "exists" in res.output


# --- 5. who published this bundle ---------------------------------------------------


def test_operator_pinning(epoch: Path, tmp_path: Path) -> None:
    b = epoch / "b"
    code, out = verify_json(b, "--operator", OPERATOR_HEX)
    assert code == 0 and out["bundles"][0]["operator_pinned"] is True
    code, out = verify_json(b)
    assert code == 0 and out["bundles"][0]["operator_pinned"] is False
    res = run("verify", b)
    assert "key NOT pinned" in res.output
    code, out = verify_json(b, "--operator", OTHER_HEX)
    assert (code, out["check"]) == (1, "operator-mismatch")
    code, out = _incl(epoch / "alice.json", "--account", "alice", "--bundle-hash",
                      _bundle_hash(b), "--operator", OTHER_HEX)
    assert (code, out["check"]) == (1, "operator-mismatch")
    res = run("verify", b, "--operator", "xyz")
    assert "--operator" in _one_line_error(res, 2)


def test_someone_else_cannot_publish_in_the_operators_name(epoch: Path, tmp_path: Path) -> None:
    # signed by another key, naming the operator: bad signature
    work = copy_bundle(epoch / "b", tmp_path / "b")
    sign_manifest(work, OTHER_KEY)
    code, out = verify_json(work)
    assert (code, out["check"]) == (1, "signature")
    # the operator's proofs re-published under another key: the proofs are
    # bound to the operator key through the header digest
    m = read_manifest(work)
    m["operator"] = OTHER_HEX
    write_manifest(work, m, resign=False)
    sign_manifest(work, OTHER_KEY)
    code, out = verify_json(work)
    assert (code, out["check"]) == (1, "leaf-range"), out
    # no signature at all
    (work / layout.SIGNATURE_FILE).unlink()
    code, out = verify_json(work)
    assert (code, out["check"]) == (1, "signature")


def test_chain_has_one_operator(tmp_path: Path) -> None:
    """Epoch 2 by another operator, linked to epoch 1 by the first operator
    (made by bypassing the prover's own check): chain-operator."""
    other = _key_file(tmp_path, "22" * 32)
    prove(make_snapshot(tmp_path / "s1", rows_for(2, 1), epoch=1, assets=ASSETS1), tmp_path / "a1")
    prove(make_snapshot(tmp_path / "s2", rows_for(2, 1), epoch=2, assets=ASSETS1),
          tmp_path / "o2", "--key", other)
    code, out = verify_json(tmp_path / "o2", "--chain", tmp_path / "a1")
    assert (code, out["check"]) == (1, "chain-operator"), out


def test_hostile_scenario_files(tmp_path: Path) -> None:
    """The simulator's scenario file is read the same way: FIFO, device,
    oversize, deep nesting and long integers give exit 2 and one line."""
    cases = {
        "fifo": (_fifo(tmp_path / "a.toml"), "a FIFO"),
        "zero": (_zero(tmp_path / "b.toml"), "a character device"),
        "huge": (_sparse(tmp_path / "c.toml"), "at most"),
    }
    deep = tmp_path / "d.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    cases["deep"] = (deep, "nested too deeply")
    long = tmp_path / "e.toml"
    long.write_text("x = " + "9" * 5000 + "\n")
    cases["long"] = (long, "invalid TOML")
    for name, (path, why) in cases.items():
        res = run("simulate", "--scenario", path, "--accounts", "10", "--epochs", "1",
                  "--out", tmp_path / f"run-{name}")
        assert why in _one_line_error(res, 2), name
