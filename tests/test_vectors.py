"""The published bundle vectors (tests/vectors/bundles/, index.json): each
valid one verifies, each invalid one fails with exactly the check it names.
They are what an independent verifier runs against (docs/auditing.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zksolv.errors import VerificationError
from zksolv.verifier.bundle import chain_gaps, verify_chain

DIR = Path(__file__).parent / "vectors" / "bundles"
INDEX = json.loads((DIR / "index.json").read_text())


def test_every_check_has_a_vector() -> None:
    assert INDEX["version"] == 4 and INDEX["versions"] == [4, 5]
    tags = {v["expect"] for v in INDEX["vectors"]}
    assert tags >= {"valid", "manifest-missing", "manifest-format", "manifest-canonical",
                    "suite-mismatch", "signature", "operator-mismatch", "bundle-shape",
                    "manifest-hash", "leaf-encoding", "tree-root", "totals-opening",
                    "leaf-range", "solvency-asset", "solvency-valued", "chain-epoch",
                    "chain-link", "debt-range", "margin-health"}


def test_margin_vectors_are_version_5() -> None:
    """The margin-* vectors are bundles of a protocol that lends (version 5),
    valid and invalid, beside the version 4 ones."""
    by_name = {v["name"]: v for v in INDEX["vectors"]}
    for name in ("margin-valid", "margin-health", "margin-debt-flipped"):
        manifest = json.loads((DIR / name / "manifest.json").read_text())
        assert manifest["version"] == 5 and manifest["assets"][1]["borrowable"] is True
    assert by_name["margin-valid"]["expect"] == "valid"
    assert by_name["margin-health"]["expect"] == "margin-health"
    assert by_name["margin-debt-flipped"]["expect"] == "leaf-range"
    assert json.loads((DIR / "valid-epoch1" / "manifest.json").read_text())["version"] == 4


@pytest.mark.parametrize("vector", INDEX["vectors"], ids=lambda v: v["name"])
def test_vector(vector: dict) -> None:
    """As ``zksolv verify``: gaps allowed and listed, unless ``no_gaps``."""
    paths = [DIR / b for b in vector["bundles"]]
    pinned = bytes.fromhex(vector["operator"]) if vector["operator"] else None
    allow_gaps = not vector["no_gaps"]
    if vector["expect"] == "valid":
        reports = verify_chain(paths, expect_operator=pinned, allow_gaps=allow_gaps)
        assert [r.path for r in reports] == [str(p) for p in paths]
        assert [{"first": a, "last": b} for a, b in chain_gaps(reports)] == vector["gaps"]
        return
    with pytest.raises(VerificationError) as e:
        verify_chain(paths, expect_operator=pinned, allow_gaps=allow_gaps)
    assert e.value.check == vector["expect"], (vector["name"], str(e.value))


def test_gap_vectors() -> None:
    """The vectors show a declared gap both ways: listed, and refused."""
    by_name = {v["name"]: v for v in INDEX["vectors"]}
    assert by_name["valid-gap-epoch4"]["gaps"] == [{"first": 3, "last": 3}]
    assert by_name["gap-refused"]["no_gaps"] and by_name["gap-refused"]["expect"] == "chain-epoch"
    assert by_name["chain-link-prev-epoch"]["expect"] == "chain-link"


def test_docs_ship_with_the_package() -> None:
    from click.testing import CliRunner

    from zksolv.cli.main import cli

    res = CliRunner().invoke(cli, ["docs"])
    assert res.exit_code == 0 and "auditing" in res.output and "bundle-format" in res.output
    listing = res.output
    res = CliRunner().invoke(cli, ["docs", "auditing"])
    assert res.exit_code == 0 and "Prices and haircuts are the operator's assertions" in res.output
    vectors = [line for line in listing.splitlines() if line.startswith("vectors ")]
    assert len(vectors) == 1, res.output
    where = Path(vectors[0].split()[1])
    for name in ("bundles/index.json", "spec/index.json", "transcript_v1.json"):
        assert (where / name).is_file(), name
    res = CliRunner().invoke(cli, ["docs", "nope"])
    assert res.exit_code == 2 and "there are:" in res.output


def _documented_order() -> list[str]:
    """The tags of docs/epoch.md's "Verifier checks" table, top to bottom."""
    text = (Path(__file__).parent.parent / "docs" / "epoch.md").read_text()
    section = text[text.index("## Verifier checks"):]
    table = section[section.index("| tag | check |"):]
    rows = []
    for line in table.splitlines()[2:]:
        if not line.startswith("| `"):
            break
        rows.append(line.split("`")[1])
    return rows


def _is_subsequence(seq: list[str], order: list[str]) -> bool:
    it = iter(order)
    return all(any(tag == o for o in it) for tag in seq)


def test_checks_run_in_the_documented_order(tmp_path: Path) -> None:
    """The verifier's steps are the documented list, in its order: a valid
    bundle's checks follow it, every invalid vector's tag is in it, and a
    bundle failing an earlier step too (its signature broken) is reported
    with that earlier step whatever later step it also fails."""
    import shutil

    order = _documented_order()
    assert order[:3] == ["manifest-missing", "manifest-format", "manifest-canonical"]
    report = verify_chain([DIR / "valid-totals"], allow_gaps=True)[0]
    assert _is_subsequence(list(report.checks), order), (report.checks, order)
    later = []
    for v in INDEX["vectors"]:
        if v["expect"] != "valid":
            assert v["expect"] in order, v["name"]
        if (len(v["bundles"]) == 1 and v["expect"] in order
                and order.index(v["expect"]) > order.index("signature")):
            later.append(v)
    assert {v["expect"] for v in later} >= {"bundle-shape", "manifest-hash", "tree-root",
                                            "leaf-range", "solvency-asset", "totals-opening"}
    for v in later:
        work = tmp_path / v["name"]
        shutil.copytree(DIR / v["bundles"][0], work)
        sig = bytearray((work / "manifest.sig").read_bytes())
        sig[0] ^= 1
        (work / "manifest.sig").write_bytes(bytes(sig))
        with pytest.raises(VerificationError) as e:
            verify_chain([work], allow_gaps=True)
        assert e.value.check == "signature", (v["name"], str(e.value))
