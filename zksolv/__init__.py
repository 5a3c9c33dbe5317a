"""zksolv: zero-knowledge solvency proofs for margin engines.

Layers (each a subpackage):

- ``zksolv.core``: group, field, generators, transcript, Pedersen commitments,
  range proofs. Pure; no I/O.
- ``zksolv.circuits``: the statements proven, with their stable identifiers.
- ``zksolv.prover``: epoch snapshot -> proof bundle and inclusion proofs.
- ``zksolv.verifier``: bundle -> accept, or a typed reason. Imports core and
  circuits only.
- ``zksolv.engine``: the margin-engine simulator. Knows nothing of proofs.
- ``zksolv.cli``: the ``zksolv`` command.
"""

__version__ = "0.1.0"
