"""The prover: snapshot -> Merkle-sum tree -> bundle + inclusion database.
The only part of zksolv that sees the operator secret and the balances."""
