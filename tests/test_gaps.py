"""A bundle that links past a refused epoch states the gap in its own signed
header (``prev_epoch``): verified alone it reports the epochs that were not
proven solvent, ``--no-gaps`` refuses it, a chain lists the gap, and the
link fields cannot be changed or made to disagree without a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_epoch_support import (
    ASSETS1,
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
from zksolv.circuits import epoch as circ
from zksolv.errors import VerificationError
from zksolv.prover import epoch as prover
from zksolv.verifier.bundle import chain_gaps, verify_bundle, verify_chain


def _hash(bundle: Path) -> str:
    return layout.bundle_hash((bundle / layout.MANIFEST_FILE).read_bytes()).hex()


@pytest.fixture(scope="module")
def gapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """b1, b2 chained; epoch 3 never proven; b4 linked to b2 with --allow-gap;
    b5 linked to b4."""
    d = tmp_path_factory.mktemp("gaps")
    for e in (1, 2, 3, 4, 5):
        make_snapshot(d / f"s{e}", rows_for(3, 1), epoch=e, assets=ASSETS1)
    prove(d / "s1", d / "b1")
    prove(d / "s2", d / "b2", "--prev", str(d / "b1"))
    prove(d / "s4", d / "b4", "--prev", str(d / "b2"), "--allow-gap")
    prove(d / "s5", d / "b5", "--prev", str(d / "b4"))
    return d


def test_prove_needs_allow_gap_to_link_past_an_epoch(gapped: Path, tmp_path: Path) -> None:
    res = run("prove", gapped / "s4", "--out", tmp_path / "b4", "--prev", gapped / "b2",
              "--jobs", "1", "--quiet")
    assert res.exit_code == 2, res.output
    assert "previous bundle is epoch 2; this snapshot is epoch 4" in res.output
    assert "--allow-gap" in res.output and "epoch 3" in res.output
    assert not (tmp_path / "b4").exists()
    # epochs must still increase, gap or not
    res = run("prove", gapped / "s2", "--out", tmp_path / "b2", "--prev", gapped / "b2",
              "--allow-gap", "--jobs", "1", "--quiet")
    assert res.exit_code == 2 and "epochs increase" in res.output, res.output
    res = run("prove", gapped / "s4", "--out", tmp_path / "b4", "--allow-gap", "--quiet")
    assert res.exit_code == 2 and "--allow-gap" in res.output and "--prev" in res.output
    assert not (tmp_path / "b2").exists() and not (tmp_path / "b4").exists()


def test_prove_reports_the_gap(gapped: Path, tmp_path: Path) -> None:
    res = run("prove", gapped / "s5", "--out", tmp_path / "b5", "--prev", gapped / "b2",
              "--allow-gap", "--jobs", "1")
    assert res.exit_code == 0, res.output
    assert (f"chain      links to epoch 2 (bundle {_hash(gapped / 'b2')}); epochs 3..4 were "
            "NOT proven solvent") in res.output


def test_the_header_names_the_linked_epoch(gapped: Path) -> None:
    m1, m2, m4 = (read_manifest(gapped / b) for b in ("b1", "b2", "b4"))
    assert (m1["prev_bundle_hash"], m1["prev_epoch"]) == (None, None)
    assert (m2["prev_bundle_hash"], m2["prev_epoch"]) == (_hash(gapped / "b1"), 1)
    assert (m4["prev_bundle_hash"], m4["prev_epoch"]) == (_hash(gapped / "b2"), 2)
    assert m4["version"] == layout.BUNDLE_VERSION == 4


def test_a_gap_bundle_alone_verifies_and_reports_its_gap(gapped: Path) -> None:
    code, out = verify_json(gapped / "b4")
    assert code == 0, out
    b = out["bundles"][0]
    assert (b["epoch"], b["prev_epoch"], b["prev_bundle_hash"]) == (4, 2, _hash(gapped / "b2"))
    assert b["gap"] == {"first": 3, "last": 3} and b["link_checked"] is False
    assert out["gaps"] == [{"first": 3, "last": 3}]
    text = run("verify", gapped / "b4", "--quiet").output
    assert (f"links to epoch 2 (bundle {_hash(gapped / 'b2')}); epoch 3 was NOT proven solvent; "
            "link not checked here") in text, text
    assert "gap: epoch 3 NOT proven solvent (the bundle of epoch 4 links to epoch 2)" in text
    # a bundle without a gap reports its link, and none
    code, out = verify_json(gapped / "b2")
    assert code == 0 and out["gaps"] == [] and out["bundles"][0]["gap"] is None
    assert out["bundles"][0]["prev_epoch"] == 1
    text = run("verify", gapped / "b1", "--quiet").output
    assert "first bundle of its chain" in text and "gap:" not in text


def test_no_gaps_refuses_a_bundle_that_declares_one(gapped: Path) -> None:
    code, out = verify_json(gapped / "b4", "--no-gaps")
    assert (code, out["check"]) == (1, "chain-epoch"), out
    assert "epoch 3 NOT proven solvent" in out["detail"]
    with pytest.raises(VerificationError) as e:
        verify_bundle(gapped / "b4", allow_gap=False)
    assert e.value.check == "chain-epoch"
    for ok in ("b1", "b2", "b5"):
        code, out = verify_json(gapped / ok, "--no-gaps")
        assert code == 0, (ok, out)


def test_a_chain_with_a_gap_verifies_and_lists_it(gapped: Path) -> None:
    b1, b2, b4, b5 = (gapped / b for b in ("b1", "b2", "b4", "b5"))
    code, out = verify_json(b5, "--chain", b1, "--chain", b2, "--chain", b4)
    assert code == 0, out
    assert out["gaps"] == [{"first": 3, "last": 3}]
    assert [b["link_checked"] for b in out["bundles"]] == [False, True, True, True]
    code, out = verify_json(b5, "--chain", b1, "--chain", b2, "--chain", b4, "--no-gaps")
    assert (code, out["check"]) == (1, "chain-epoch"), out
    # the gap of a chain's first bundle comes from its header
    reports = verify_chain([b4, b5], allow_gaps=True)
    assert chain_gaps(reports) == [(3, 3)]
    with pytest.raises(VerificationError) as e:
        verify_chain([b4, b5])
    assert e.value.check == "chain-epoch"
    assert chain_gaps(verify_chain([b1, b2])) == []
    text = run("verify", b5, "--chain", b1, "--chain", b2, "--chain", b4, "--quiet").output
    assert "gap: epoch 3 NOT proven solvent" in text and "solvent; link checked" in text
    # b5 after b2: b5's header links to epoch 4, not to b2
    code, out = verify_json(b5, "--chain", b2)
    assert (code, out["check"]) == (1, "chain-link"), out


def test_prev_epoch_is_bound_by_signature_and_proofs(gapped: Path, tmp_path: Path) -> None:
    """Another prev_epoch, consistent with the rest: unsigned it breaks the
    signature; re-signed it changes the header digest, so the proofs fail."""
    for src, value in (("b4", 1), ("b4", 0), ("b2", 0)):
        b = copy_bundle(gapped / src, tmp_path / f"{src}-{value}")
        m = read_manifest(b)
        m["prev_epoch"] = value
        (b / layout.MANIFEST_FILE).write_bytes(layout.canonical_json(m))
        code, out = verify_json(b)
        assert (code, out["check"]) == (1, "signature"), out
        write_manifest(b, m)
        code, out = verify_json(b)
        assert (code, out["check"]) == (1, "leaf-range"), (src, value, out)


@pytest.mark.parametrize("src,prev_hash,prev_epoch", [
    ("b1", None, 0),              # an epoch with no bundle to link to
    ("b2", "keep", None),         # a hash without its epoch
    ("b2", None, 1),              # an epoch without its hash
    ("b2", "keep", 2),            # prev_epoch = epoch
    ("b2", "keep", 7),            # prev_epoch after epoch
])
def test_link_fields_that_disagree_are_refused(gapped: Path, tmp_path: Path, src: str,
                                               prev_hash: str | None,
                                               prev_epoch: int | None) -> None:
    b = copy_bundle(gapped / src, tmp_path / "b")
    m = read_manifest(b)
    if prev_hash != "keep":
        m["prev_bundle_hash"] = prev_hash
    m["prev_epoch"] = prev_epoch
    write_manifest(b, m)
    code, out = verify_json(b)
    assert (code, out["check"]) == (1, "manifest-format"), out
    assert "prev_epoch" in out["detail"]


@pytest.mark.parametrize("value", ["2.0", "true", '"2"', "-1", str(1 << 63)])
def test_prev_epoch_has_an_exact_type(gapped: Path, tmp_path: Path, value: str) -> None:
    b = copy_bundle(gapped / "b4", tmp_path / "b")
    raw = (b / layout.MANIFEST_FILE).read_text()
    assert '"prev_epoch": 2,' in raw
    edited = raw.replace('"prev_epoch": 2,', f'"prev_epoch": {value},')
    (b / layout.MANIFEST_FILE).write_text(edited)
    sign_manifest(b)
    code, out = verify_json(b)
    assert (code, out["check"]) == (1, "manifest-format"), out


def test_a_header_whose_epoch_disagrees_with_the_chain(
        gapped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle that names b2 by hash but claims to link to epoch 1 (so
    declares epochs 2..3 not proven, though epoch 2 was): valid alone, with
    the gap it declares; in the chain the link fails [chain-link]."""
    real = prover.check_prev_bundle

    def lying(*args: object, **kwargs: object) -> prover.PrevBundle:
        prev = real(*args, **kwargs)  # type: ignore[arg-type]
        return prover.PrevBundle(prev.bundle_hash, prev.epoch - 1)

    monkeypatch.setattr(prover, "check_prev_bundle", lying)
    liar = tmp_path / "liar"
    prove(gapped / "s4", liar, "--prev", str(gapped / "b2"), "--allow-gap")
    monkeypatch.undo()
    assert read_manifest(liar)["prev_epoch"] == 1
    code, out = verify_json(liar)
    assert code == 0 and out["gaps"] == [{"first": 2, "last": 3}], out
    code, out = verify_json(liar, "--chain", gapped / "b1", "--chain", gapped / "b2")
    assert (code, out["check"]) == (1, "chain-link"), out
    assert "names epoch 1" in out["detail"] and "is epoch 2" in out["detail"]
    code, out = verify_json(liar, "--chain", gapped / "b1")
    assert (code, out["check"]) == (1, "chain-link"), out


def test_the_holder_sees_the_gap(gapped: Path, tmp_path: Path) -> None:
    res = run("inclusion", "export", "--db", gapped / "b4.inclusion.sqlite", "--account",
              "acct-1", "--out", tmp_path / "p.json")
    assert res.exit_code == 0, res.output
    res = run("inclusion", "verify", tmp_path / "p.json", "--account", "acct-1",
              "--bundle-hash", _hash(gapped / "b4"), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["prev_epoch"], out["gap"]) == (2, {"first": 3, "last": 3})
    assert out["prev_bundle_hash"] == _hash(gapped / "b2")
    res = run("inclusion", "verify", tmp_path / "p.json", "--account", "acct-1",
              "--bundle", gapped / "b4")
    assert res.exit_code == 0, res.output
    assert (f"chain: links to epoch 2 (bundle {_hash(gapped / 'b2')}) as its signed header "
            "states; epoch 3 was NOT proven solvent; link not checked here (zksolv verify "
            "--chain checks it)\n") in res.output, res.output


def test_the_holder_is_told_the_link_is_unchecked(
        gapped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator hides the gap of epoch 3 by writing prev_epoch 3 and a
    made-up hash into epoch 4's header. The bundle is valid alone, so the
    holder's check passes; the chain line says the link is only as the header
    states it and names the command that checks it, which then refuses it."""
    made_up = bytes(range(32))
    monkeypatch.setattr(prover, "check_prev_bundle",
                        lambda *args, **kwargs: prover.PrevBundle(made_up, 3))
    liar = tmp_path / "liar"
    prove(gapped / "s4", liar, "--prev", str(gapped / "b2"), "--allow-gap")
    monkeypatch.undo()
    assert (read_manifest(liar)["prev_epoch"], read_manifest(liar)["prev_bundle_hash"]) \
        == (3, made_up.hex())
    res = run("inclusion", "export", "--db", tmp_path / "liar.inclusion.sqlite", "--account",
              "acct-1", "--out", tmp_path / "p.json")
    assert res.exit_code == 0, res.output
    res = run("inclusion", "verify", tmp_path / "p.json", "--account", "acct-1",
              "--bundle", liar)
    assert res.exit_code == 0, res.output
    assert (f"chain: links to epoch 3 (bundle {made_up.hex()}) as its signed header states; "
            "link not checked here (zksolv verify --chain checks it)\n") in res.output, res.output
    code, out = verify_json(liar, "--chain", gapped / "b1", "--chain", gapped / "b2")
    assert (code, out["check"]) == (1, "chain-link"), out


@pytest.mark.parametrize(("epoch", "prev_epoch", "gap", "text"), [
    (1, None, None, None), (7, None, None, None), (4, 3, None, None),
    (4, 2, (3, 3), "epoch 3 was"), (9, 4, (5, 8), "epochs 5..8 were"),
])
def test_declared_gap_and_its_words(epoch: int, prev_epoch: int | None,
                                    gap: tuple[int, int] | None, text: str | None) -> None:
    assert circ.declared_gap(epoch, prev_epoch) == gap
    if gap is not None:
        assert circ.gap_text(*gap) == text
