"""The range-proof interface, so a second scheme can sit beside the first.

A scheme proves that committed values V_j = v_j*g + gamma_j*h lie in
[0, 2^n). Statements (``RangeStatement``) are shared by every scheme; what
differs is the proof type and its bytes. Bundles record the scheme id, and a
verifier looks the scheme up here, so a later scheme (for example base-16
digits in the style of Bulletproofs++) is added by registering it, without
touching callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from zksolv.core import rangeproof
from zksolv.core.group import Backend, Point
from zksolv.core.rangeproof import RangeStatement
from zksolv.errors import FormatError


class RangeProofScheme(Protocol):
    scheme_id: bytes

    def prove(
        self,
        statement: RangeStatement,
        values: Sequence[int],
        blindings: Sequence[int],
        *,
        backend: Backend | None = None,
        rng: Any = None,
    ) -> Any: ...

    def proof_from_bytes(self, data: bytes) -> Any: ...

    def verify(
        self, statement: RangeStatement, proof: Any, *, backend: Backend | None = None
    ) -> None: ...

    def batch_verify(
        self,
        items: Sequence[tuple[RangeStatement, Any]],
        *,
        backend: Backend | None = None,
        decoded: Mapping[bytes, Point] | None = None,
    ) -> None: ...


class _Bulletproofs:
    """Aggregated Bulletproofs (``zksolv.core.rangeproof``)."""

    scheme_id = rangeproof.RANGE_SCHEME_ID

    def prove(self, statement, values, blindings, *, backend=None, rng=None):  # type: ignore[no-untyped-def]
        return rangeproof.prove(statement, values, blindings, backend=backend, rng=rng)

    def proof_from_bytes(self, data: bytes) -> rangeproof.RangeProof:
        return rangeproof.RangeProof.from_bytes(data)

    def verify(self, statement, proof, *, backend=None):  # type: ignore[no-untyped-def]
        rangeproof.verify(statement, proof, backend=backend)

    def batch_verify(self, items, *, backend=None, decoded=None):  # type: ignore[no-untyped-def]
        rangeproof.batch_verify(items, backend=backend, decoded=decoded)


BULLETPROOFS: RangeProofScheme = _Bulletproofs()
SCHEMES: dict[bytes, RangeProofScheme] = {BULLETPROOFS.scheme_id: BULLETPROOFS}
DEFAULT_SCHEME = BULLETPROOFS


def get_scheme(scheme_id: bytes) -> RangeProofScheme:
    """The registered scheme with this id, or ``FormatError``."""
    try:
        return SCHEMES[scheme_id]
    except KeyError:
        raise FormatError(f"unknown range-proof scheme {scheme_id!r}") from None
