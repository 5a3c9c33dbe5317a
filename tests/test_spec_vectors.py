"""The vectors of tests/vectors/spec/ (make_spec_vectors.py): each reaches
the outcome its index states through the command line, in both anchor
modes for inclusion proofs; the header digests are SHA-256 of the header
bytes the manifest gives. The page's verdicts: tests/js/vectors.test.mjs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_epoch_support import run, verify_json

from zksolv.circuits import bundle as layout
from zksolv.verifier.bundle import check_manifest

VECTORS = Path(__file__).parent / "vectors"

INDEX = json.loads((VECTORS / "spec" / "index.json").read_text())


def test_every_case_the_docs_name_has_a_vector() -> None:
    names = {v["name"] for v in INDEX["bundles"]}
    assert names >= {"manifest-bom", "depth-0", "depth-33", "root-blinding-noncanonical",
                     "all-prices-0", "haircut-0"}
    chain = {v["expect"] for v in INDEX["bundles"] if v["name"].startswith("chain-")}
    assert chain >= {"valid", "reserves-balance", "reserves-signature", "reserves-block",
                     "manifest-format"}
    kinds = {v["expect"] for v in INDEX["inclusion"]}
    assert kinds >= {"valid", "signature", "inclusion-format", "inclusion-bundle",
                     "inclusion-account", "inclusion-shape", "inclusion-encoding",
                     "inclusion-root", "inclusion-labels"}
    assert len(INDEX["header_digests"]) >= 3


@pytest.mark.parametrize("vector", INDEX["bundles"], ids=lambda v: v["name"])
def test_bundle_vector(vector: dict) -> None:
    code, out = verify_json(VECTORS / vector["bundle"])
    if vector["expect"] == "valid":
        assert code == 0, out
    else:
        assert (code, out["check"]) == (1, vector["expect"]), (vector["name"], out)


@pytest.mark.parametrize("vector", INDEX["inclusion"], ids=lambda v: v["name"])
@pytest.mark.parametrize("mode", ["--bundle", "--bundle-hash"])
def test_inclusion_vector(vector: dict, mode: str) -> None:
    """One verdict per document: the same outcome and tag in both modes."""
    anchor = (VECTORS / vector["bundle"]) if mode == "--bundle" else vector["bundle_hash"]
    res = run("inclusion", "verify", VECTORS / vector["document"], "--account",
              vector["account"], mode, anchor, "--json")
    out = json.loads(res.output)
    if vector["expect"] == "valid":
        assert res.exit_code == 0 and out["included"], out
        assert out["complete"] == (mode == "--bundle")
    else:
        assert (res.exit_code, out["check"]) == (1, vector["expect"]), (vector["name"], out)


def test_header_digests() -> None:
    """D = SHA-256(header bytes), the header bytes built from the manifest
    (docs/bundle-format.md, Epoch header)."""
    for v in INDEX["header_digests"]:
        d = VECTORS / v["bundle"]
        parsed = check_manifest((d / layout.MANIFEST_FILE).read_bytes(),
                                (d / layout.SIGNATURE_FILE).read_bytes())
        header = bytes.fromhex(v["header"])
        assert parsed.header.to_bytes() == header, v["bundle"]
        assert hashlib.sha256(header).hexdigest() == v["digest"]
        version = json.loads((d / layout.MANIFEST_FILE).read_text())["version"]
        assert header.startswith(b"zksolv/epoch-header/v%d" % version)
        if version == 6:   # ends with SHA-256 of chain_reserves (bundle-format.md)
            m = json.loads((d / layout.MANIFEST_FILE).read_text())
            assert header[-32:] == hashlib.sha256(layout.canonical_json(
                m["chain_reserves"])).digest()
