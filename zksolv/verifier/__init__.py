"""The verifier: bundles, chains and inclusion proofs, from public data only.

It imports ``zksolv.core``, ``zksolv.circuits`` and ``zksolv.errors`` — never
the prover, the engine or the command line (import-linter contract)."""

from .bundle import BundleReport, chain_gaps, load_manifest, verify_bundle, verify_chain
from .inclusion import InclusionDocument, InclusionReport, load_document, verify_inclusion

__all__ = [
    "BundleReport", "InclusionDocument", "InclusionReport", "chain_gaps", "load_document",
    "load_manifest", "verify_bundle", "verify_chain", "verify_inclusion",
]
