"""The statements, defined once and shared by prover and verifier
(installed as ``zksolv.circuits``)."""
