"""Every error zksolv raises on purpose, in one place.

Each class carries an exit code so the command line maps failures the same
way everywhere:

==========  ==========================================================
exit code   meaning
==========  ==========================================================
0           success (proof valid, bundle written)
1           a proof or bundle was checked and is invalid (or the prover's
            own check of a proof it made kept failing, or a worker's shard
            result did not match what it was sent: ``ProverFault``)
2           unusable input: bad file, bad option, bad encoding
3           the epoch is insolvent: no bundle claiming solvency written
==========  ==========================================================
"""

from __future__ import annotations


class ZksolvError(Exception):
    """Base class of every error zksolv raises deliberately."""

    exit_code = 2


class FormatError(ZksolvError):
    """Bytes or a file that do not decode: wrong length, non-canonical
    encoding, point off the curve or outside the subgroup, forbidden identity,
    truncated or malformed structure."""

    exit_code = 1


class VerificationError(ZksolvError):
    """A well-formed proof that does not verify. ``check`` names the equation
    or step that failed (the tags used in ``docs/``)."""

    exit_code = 1

    def __init__(self, check: str, detail: str = "") -> None:
        self.check = check
        self.detail = detail
        super().__init__(f"{check}: {detail}" if detail else check)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # picklable, so a worker process can report it
        return type(self), (self.check, self.detail)


class InvalidBitsize(ZksolvError):
    """A range-proof bit width outside {8, 16, 32, 64, 128}."""


class ValueOutOfRange(ZksolvError):
    """The prover was asked to prove a value outside [0, 2^n)."""


class InputError(ZksolvError):
    """Bad user input (snapshot, option, key file). ``where`` names the file
    and line or field."""

    exit_code = 2

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}" if where else reason)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # picklable, so a worker process can report it
        return type(self), (self.where, self.reason)


class InsolventError(ZksolvError):
    """The epoch's reserves do not cover its liabilities. ``lines``: the
    shortfall as people read it, one line each; ``report``: the same as
    numbers (``zksolv.prover.shortfall.ShortfallReport``), when known."""

    exit_code = 3

    def __init__(self, message: str, *, lines: tuple[str, ...] = (),
                 report: object | None = None) -> None:
        super().__init__(message)
        self.lines = lines
        self.report = report


class ProverFault(ZksolvError):
    """The prover's own check of a proof it made failed repeatedly: a fault
    in the computation, never the input's. Nothing is published."""

    exit_code = 1


class WorkerFault(ProverFault):
    """A worker (a local process, a Dask worker) returned a shard result that
    does not match the job it was sent: another shard's index, leaf
    commitments that do not open to the amounts and blindings the client
    sent, leaf hashes or subtree nodes that are not the client's. ``worker``
    names it as the executor knows it (a Dask worker's address, a local
    process's pid), ``shard`` is the shard it was asked to prove (None: a
    result for no task the client gave). Nothing is published."""

    def __init__(self, worker: str, shard: int | None, reason: str) -> None:
        self.worker = worker
        self.shard = shard
        self.reason = reason
        where = "" if shard is None else f"shard {shard}: "
        super().__init__(f"worker {worker}: {where}{reason}")

    def __reduce__(self) -> tuple[type, tuple[str, int | None, str]]:
        return type(self), (self.worker, self.shard, self.reason)


class ChainError(InputError):
    """A JSON-RPC node that cannot be used: unreachable, too slow, an answer
    too large, malformed or of the wrong type, an error where a value was
    needed, another chain than the one named (``zksolv.chain.rpc``). It names
    the RPC ``method`` and the node's ``url`` (without credentials: scheme,
    host and port only). Never a finding about the reserves themselves."""

    def __init__(self, method: str, url: str, reason: str) -> None:
        self.method = method
        self.url = url
        super().__init__(f"{method} at {url}", reason)

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:  # type: ignore[override]
        return type(self), (self.method, self.url, self.reason)


class ChainExtraMissing(InputError):
    """A chain operation was asked for but the ``zksolv[chain]`` extra
    (eth-account, httpx) is not installed."""

    def __init__(self, what: str) -> None:
        super().__init__(what, "needs the chain extra: pip install 'zksolv[chain]'")

    def __reduce__(self) -> tuple[type, tuple[str]]:  # type: ignore[override]
        return type(self), (self.where,)


class SignatureError(FormatError):
    """An Ethereum signature that does not decode strictly: not 65 bytes
    r || s || v, v not 27 or 28, r or s zero or not below the curve order, s
    in the upper half (EIP-2), or no public key recoverable from it."""
