"""Aggregated Bulletproofs range proofs over BLS12-381 G1.

Relation (docs/protocol.md, "Range proof"): for public commitments
V_0..V_{m-1}, bit width n in {8, 16, 32, 64, 128}, the prover knows
(v_j, gamma_j) with

    V_j = v_j*g + gamma_j*h   and   0 <= v_j < 2^n        for every j.

m may be any positive integer: internally the values are padded to
M = next power of two with v = 0, gamma = 0 (so V = identity, which the
verifier inserts itself). N = n*M generator pairs are used.

Protocol (Bunz et al. 2018, section 4.3, with the inner-product argument of
section 3 and the changes below; tags in brackets are the names the notes
and the verifier use):

    A  = alpha*h + <a_L, G> + <a_R, H>        a_L bits, a_R = a_L - 1
    S  = rho*h + <s_L, G> + <s_R, H>
    y_1 .. y_log2(N) (short, 128-bit), z  <- transcript
    w_i = prod_k y_k^bit_k(i)                 bit_k(i): the k-th bit of i from the top
    l(X) = (a_L - z*1) + s_L*X
    r(X) = w o (a_R + z*1 + s_R*X) + sum_j z^(2+j) * (0..0 || 2^n || 0..0)_j
    t(X) = <l(X), r(X)> = t0 + t1*X + t2*X^2
    T1 = t1*g + tau1*h,  T2 = t2*g + tau2*h
    x     <- transcript
    tau_x = tau2*x^2 + tau1*x + sum_j z^(2+j)*gamma_j
    mu    = alpha + rho*x
    t_hat = <l(x), r(x)>
    xi    <- transcript (label "w");  Q = xi*u   (xi is not the weights w_i)
    inner-product argument for P = <l, G> + <r, H'> + t_hat*Q, H'_i = w_i^-1*H_i

    [range-t]   t_hat*g + tau_x*h = sum_j z^(2+j) V_j + delta(y,z)*g + x*T1 + x^2*T2,
                delta(y,z) = (z - z^2)*prod_k(1 + y_k) - (2^n - 1)*sum_{j<M} z^(3+j)
    [range-ipa] a*G_f + b*H'_f + a*b*Q = P + sum_k (u_k^-1 L_k + u_k R_k)

The constraint weights are the tensor w_i of log2(N) independent 128-bit
challenges, not the powers y^i of standard Bulletproofs (y^N replaced by w
in the derivation of t(X)).

Inner-product rounds use 128-bit challenges u_k and the fold
a' = a_lo + u*a_hi, b' = b_lo + u^-1*b_hi, G' = G_lo + u^-1*G_hi,
H' = H_lo + u*H_hi. The prover keeps G' as sigma*(u*G_lo + G_hi) so each
folded G costs one 128-bit multiplication, and keeps the w_i^-1 factors of
H' in scalars (round k folds the bit whose weight is y_k). L and R are
single large MSMs. The verifier checks both
equations, with a random weight between them, in one multi-scalar
multiplication; ``batch_verify`` sums many proofs' equations with weights
drawn from ``secrets`` after the proofs are fixed.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zksolv.core.field import (
    R,
    batch_inv,
    inner_product,
    powers,
    random_scalar,
    random_scalars,
    scalar_from_bytes,
    scalar_to_bytes,
)
from zksolv.core.fold import Folder, make_folder
from zksolv.core.generators import GENERATOR_SET_ID, generators
from zksolv.core.group import POINT_BYTES, Backend, Point, get_backend
from zksolv.core.transcript import Transcript
from zksolv.errors import FormatError, InvalidBitsize, ValueOutOfRange, VerificationError

RANGE_SCHEME_ID = b"zksolv/range/bulletproofs-aggregated/v1"
TRANSCRIPT_LABEL = b"zksolv/range-proof"
ALLOWED_BITS = (8, 16, 32, 64, 128)
MAX_AGGREGATION = 1 << 16

_FIXED_POINTS = 4  # A, S, T1, T2
_FIXED_SCALARS = 5  # t_hat, tau_x, mu, a, b


def _next_pow2(m: int) -> int:
    return 1 << (m - 1).bit_length()


def tensor(factors: Sequence[int], start: int = 1) -> list[int]:
    """The 2^k products start * prod_k factors[k]^bit_k(i), bit 0 of the
    factor list being the top bit of i: round k of the inner-product
    argument splits the k-th bit from the top."""
    out = [start % R]
    for f in factors:
        out = [v for base in out for v in (base, base * f % R)]
    return out


def _weight_challenges(t: Transcript, N: int) -> list[int]:
    """The constraint weights y_1..y_log2(N): weight_i = prod_k y_k^bit_k(i).

    A tensor of independent 128-bit challenges instead of the powers y^i:
    a nonzero constraint vector survives the weighted sum with probability at
    most log2(N)/2^128 (Schwartz-Zippel on a multilinear polynomial), and the
    ratio between the two halves folded in round k is the short y_k, so the
    prover folds H with 128-bit multiplications only."""
    return [t.challenge_short(b"y") for _ in range(N.bit_length() - 1)]


def check_bits(n: int) -> None:
    if n not in ALLOWED_BITS:
        raise InvalidBitsize(f"bit width {n} not in {ALLOWED_BITS}")


@dataclass(frozen=True)
class RangeStatement:
    """What a range proof is about: every field goes into the transcript
    before the first challenge.

    ``statement_id`` names the circuit (``zksolv.circuits``), ``commitments``
    are the 48-byte encodings of V_0..V_{m-1}, ``bits`` is n, ``context`` is
    caller data bound to the proof (an epoch header digest, a shard index).
    """

    statement_id: bytes
    commitments: tuple[bytes, ...]
    bits: int
    context: bytes = b""

    @property
    def m(self) -> int:
        return len(self.commitments)

    @property
    def rounds(self) -> int:
        """Number of inner-product rounds, log2(n * next_pow2(m))."""
        return (self.bits * _next_pow2(self.m)).bit_length() - 1

    def validate(self) -> None:
        check_bits(self.bits)
        if not 1 <= self.m <= MAX_AGGREGATION:
            raise FormatError(f"range statement: m={self.m} outside [1, {MAX_AGGREGATION}]")
        for j, c in enumerate(self.commitments):
            if len(c) != POINT_BYTES:
                raise FormatError(f"range statement: commitment {j} is not {POINT_BYTES} bytes")

    def transcript(self) -> Transcript:
        """A fresh transcript with the whole statement absorbed."""
        t = Transcript(TRANSCRIPT_LABEL)
        t.append_message(b"scheme", RANGE_SCHEME_ID)
        t.append_message(b"statement-id", self.statement_id)
        t.append_message(b"generator-set", GENERATOR_SET_ID)
        t.append_u64(b"n", self.bits)
        t.append_u64(b"m", self.m)
        t.append_message(b"context", self.context)
        for c in self.commitments:
            t.append_message(b"V", c)
        return t


@dataclass(frozen=True)
class RangeProof:
    """An aggregated range proof. Byte layout (``to_bytes``), fixed width:

    ====== ========= ==========================================
    field  bytes     commits to / is
    ====== ========= ==========================================
    A      48        alpha*h + <a_L, G> + <a_R, H> (the bits)
    S      48        rho*h + <s_L, G> + <s_R, H> (the masks)
    T1     48        t1*g + tau1*h
    T2     48        t2*g + tau2*h
    t_hat  32        <l(x), r(x)>
    tau_x  32        blinding of t_hat
    mu     32        alpha + rho*x
    L_k    48 each   k = 1..rounds, left cross terms
    R_k    48 each   right cross terms (interleaved L_1 R_1 L_2 R_2 ...)
    a, b   32 each   the folded vectors' final entries
    ====== ========= ==========================================

    Total 352 + 96*rounds bytes (928 for one 64-bit value).
    """

    A: bytes
    S: bytes
    T1: bytes
    T2: bytes
    t_hat: int
    tau_x: int
    mu: int
    L: tuple[bytes, ...]
    R: tuple[bytes, ...]
    a: int
    b: int

    @property
    def rounds(self) -> int:
        return len(self.L)

    def to_bytes(self) -> bytes:
        parts = [self.A, self.S, self.T1, self.T2]
        parts += [scalar_to_bytes(k) for k in (self.t_hat, self.tau_x, self.mu)]
        for lk, rk in zip(self.L, self.R, strict=True):
            parts += [lk, rk]
        parts += [scalar_to_bytes(self.a), scalar_to_bytes(self.b)]
        return b"".join(parts)

    @classmethod
    def size(cls, rounds: int) -> int:
        return _FIXED_POINTS * POINT_BYTES + _FIXED_SCALARS * 32 + 2 * rounds * POINT_BYTES

    @classmethod
    def from_bytes(cls, data: bytes) -> RangeProof:
        """Strict structural decoding: the length must be 352 + 96k, every
        scalar canonical. Points are checked (curve, subgroup) on verify."""
        data = bytes(data)
        base = cls.size(0)
        if len(data) < base or (len(data) - base) % (2 * POINT_BYTES):
            raise FormatError(f"range proof: length {len(data)} is not 352 + 96k")
        rounds = (len(data) - base) // (2 * POINT_BYTES)
        if rounds > 32:
            raise FormatError(f"range proof: {rounds} rounds is more than any statement allows")
        pos = 0

        def take(k: int) -> bytes:
            nonlocal pos
            chunk = data[pos : pos + k]
            pos += k
            return chunk

        A, S, T1, T2 = (take(POINT_BYTES) for _ in range(4))
        t_hat = scalar_from_bytes(take(32), what="range proof t_hat")
        tau_x = scalar_from_bytes(take(32), what="range proof tau_x")
        mu = scalar_from_bytes(take(32), what="range proof mu")
        L, Rr = [], []
        for _ in range(rounds):
            L.append(take(POINT_BYTES))
            Rr.append(take(POINT_BYTES))
        a = scalar_from_bytes(take(32), what="range proof a")
        b = scalar_from_bytes(take(32), what="range proof b")
        return cls(A, S, T1, T2, t_hat, tau_x, mu, tuple(L), tuple(Rr), a, b)


def _check_values(values: Sequence[int], n: int) -> None:
    for j, v in enumerate(values):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < (1 << n):
            raise ValueOutOfRange(f"value {j} is outside [0, 2^{n})")


def prove(
    statement: RangeStatement,
    values: Sequence[int],
    blindings: Sequence[int],
    *,
    backend: Backend | None = None,
    rng: Any = None,
) -> RangeProof:
    """Prove that each committed value lies in [0, 2^n).

    ``values[j]``, ``blindings[j]`` open ``statement.commitments[j]``. A
    mismatched opening produces a proof that does not verify. ``rng``
    (anything with ``randrange``) makes the proof deterministic for tests;
    by default randomness comes from ``secrets``.
    """
    backend = backend or get_backend()
    statement.validate()
    n, m = statement.bits, statement.m
    if len(values) != m or len(blindings) != m:
        raise ValueError("prove: need one value and one blinding per commitment")
    _check_values(values, n)
    M = _next_pow2(m)
    N = n * M
    vals = list(values) + [0] * (M - m)
    gams = [g % R for g in blindings] + [0] * (M - m)

    gens = generators(backend)
    G_all, H_all = gens.vectors(N)
    G, H = G_all[:N], H_all[:N]
    t = statement.transcript()

    # A from point additions: a_L = 1 selects G_i, a_L = 0 selects -H_i,
    # so A = alpha*h + sum_{bit set} G_i - sum_{bit clear} H_i.
    alpha = random_scalar(rng)
    a_L = [(v >> i) & 1 for v in vals for i in range(n)]
    ones = backend.sum([G[i] for i, bit in enumerate(a_L) if bit])
    zeros = backend.sum([H[i] for i, bit in enumerate(a_L) if not bit])
    A_pt = backend.add(backend.add(ones, backend.neg(zeros)), backend.mul(gens.h, alpha))
    rho = random_scalar(rng)
    s_L = random_scalars(N, rng)
    s_R = random_scalars(N, rng)
    S_pt = backend.msm([*G, *H, gens.h], [*s_L, *s_R, rho])
    A_b, S_b = backend.encode(A_pt), backend.encode(S_pt)
    t.append_message(b"A", A_b)
    t.append_message(b"S", S_b)
    ys = _weight_challenges(t, N)
    z = t.challenge_scalar(b"z")

    w_vec = tensor(ys)
    z_pow = powers(z, M + 2)  # z^(2+j) = z_pow[2+j]
    l0 = [(bit - z) % R for bit in a_L]
    # r0_k = w_k*(a_R_k + z) + z^(2+j)*2^i and r1_k = w_k*s_R_k, k = j*n + i;
    # a_R_k + z is z - 1 or z.
    z_or_z1 = (z - 1, z)
    z_terms = [z_pow[2 + j] << i for j in range(M) for i in range(n)]
    r0 = [
        (wk * z_or_z1[bit] + zt) % R for wk, bit, zt in zip(w_vec, a_L, z_terms, strict=True)
    ]
    r1 = [wk * sr % R for wk, sr in zip(w_vec, s_R, strict=True)]
    t1 = (inner_product(l0, r1) + inner_product(s_L, r0)) % R
    t2 = inner_product(s_L, r1)
    tau1, tau2 = random_scalar(rng), random_scalar(rng)
    T1_b = backend.encode(backend.msm([gens.g, gens.h], [t1, tau1]))
    T2_b = backend.encode(backend.msm([gens.g, gens.h], [t2, tau2]))
    t.append_message(b"T1", T1_b)
    t.append_message(b"T2", T2_b)
    x = t.challenge_scalar(b"x")

    l_vec = [(a + x * b) % R for a, b in zip(l0, s_L, strict=True)]
    r_vec = [(a + x * b) % R for a, b in zip(r0, r1, strict=True)]
    t_hat = inner_product(l_vec, r_vec)
    tau_x = (tau2 * x * x + tau1 * x + sum(z_pow[2 + j] * gams[j] for j in range(M))) % R
    mu = (alpha + rho * x) % R
    t.append_message(b"t_hat", scalar_to_bytes(t_hat))
    t.append_message(b"tau_x", scalar_to_bytes(tau_x))
    t.append_message(b"mu", scalar_to_bytes(mu))
    w = t.challenge_scalar(b"w")

    folder = make_folder(backend, G, H)
    L, Rr, a_fin, b_fin = _ipa_prove(backend, t, gens.u, w, folder, ys, l_vec, r_vec)
    return RangeProof(A_b, S_b, T1_b, T2_b, t_hat, tau_x, mu, L, Rr, a_fin, b_fin)


def _ipa_prove(
    backend: Backend,
    t: Transcript,
    U: Point,
    w: int,
    folder: Folder,
    ys: list[int],
    a: list[int],
    b: list[int],
) -> tuple[tuple[bytes, ...], tuple[bytes, ...], int, int]:
    """Inner-product argument for P = <a, G> + <b, H'> + <a,b>*w*U with
    H'_i = weight_i^-1 * H_i.

    ``folder`` holds the generators as G' = sigma*Ghat, H'_j = eta*tau_j*Hhat_j
    and computes L and R, one multi-scalar multiplication each
    (``zksolv.core.fold``).
    """
    n = len(a)
    tau = tensor(batch_inv(ys))
    L_out: list[bytes] = []
    R_out: list[bytes] = []
    for y_k in ys:
        h = n // 2
        c_L = inner_product(a[:h], b[h:n])
        c_R = inner_product(a[h:n], b[:h])
        L_pt, R_pt = folder.cross_terms(a, b, tau, (c_L * w % R, c_R * w % R), U)
        L_b, R_b = backend.encode(L_pt), backend.encode(R_pt)
        L_out.append(L_b)
        R_out.append(R_b)
        t.append_message(b"L", L_b)
        t.append_message(b"R", R_b)
        u = t.challenge_short(b"u")
        u_inv = pow(u, -1, R)
        a = [(lo + u * hi) % R for lo, hi in zip(a[:h], a[h:n], strict=True)]
        b = [(lo + u_inv * hi) % R for lo, hi in zip(b[:h], b[h:n], strict=True)]
        if h > 1:
            folder.fold(u, u_inv, y_k, pow(y_k, -1, R))
        n = h
    return tuple(L_out), tuple(R_out), a[0], b[0]


# --------------------------------------------------------------------------
# Verification


@dataclass
class _Equation:
    """One proof's combined check as coefficients: on the shared bases
    (G_i, H_i, g, h, u) and on the proof's own points."""

    G: list[int]
    H: list[int]
    g: int
    h: int
    u: int
    points: list[Point]
    scalars: list[int]


def _equation(
    backend: Backend,
    statement: RangeStatement,
    proof: RangeProof,
    weight: int,
    c: int,
    decoded: Mapping[bytes, Point] | None = None,
) -> _Equation:
    statement.validate()
    n, m = statement.bits, statement.m
    M = _next_pow2(m)
    N = n * M
    rounds = statement.rounds
    if proof.rounds != rounds:
        raise VerificationError(
            "range-shape", f"proof has {proof.rounds} rounds, statement needs {rounds}"
        )
    dec = backend.decode
    known = decoded or {}
    V = [
        known[cb] if cb in known else dec(cb, what=f"commitment V[{j}]")
        for j, cb in enumerate(statement.commitments)
    ]
    A = dec(proof.A, what="range proof A")
    S = dec(proof.S, what="range proof S")
    T1 = dec(proof.T1, what="range proof T1", allow_identity=True)
    T2 = dec(proof.T2, what="range proof T2", allow_identity=True)
    Ls = [dec(p, what=f"range proof L[{k}]", allow_identity=True) for k, p in enumerate(proof.L)]
    Rs = [dec(p, what=f"range proof R[{k}]", allow_identity=True) for k, p in enumerate(proof.R)]

    t = statement.transcript()
    t.append_message(b"A", proof.A)
    t.append_message(b"S", proof.S)
    ys = _weight_challenges(t, N)
    z = t.challenge_scalar(b"z")
    t.append_message(b"T1", proof.T1)
    t.append_message(b"T2", proof.T2)
    x = t.challenge_scalar(b"x")
    t.append_message(b"t_hat", scalar_to_bytes(proof.t_hat))
    t.append_message(b"tau_x", scalar_to_bytes(proof.tau_x))
    t.append_message(b"mu", scalar_to_bytes(proof.mu))
    w = t.challenge_scalar(b"w")
    us = []
    for lk, rk in zip(proof.L, proof.R, strict=True):
        t.append_message(b"L", lk)
        t.append_message(b"R", rk)
        us.append(t.challenge_short(b"u"))
    inverses = batch_inv(us + ys)
    u_invs, y_invs = inverses[: len(us)], inverses[len(us) :]

    # G_f = sum_i s_i G_i with s_i = prod_k u_k^-bit_k(i); the final H'
    # coefficient on H_i is b * prod_k (u_k / y_k)^bit_k(i).
    a, b = proof.a, proof.b
    wz = weight * z % R
    z_pow = powers(z, M + 3)
    sum_w = 1
    for y_k in ys:
        sum_w = sum_w * (1 + y_k) % R
    sum_2 = (1 << n) - 1
    delta = ((z - z_pow[2]) * sum_w - sum_2 * sum(z_pow[3 + j] for j in range(M))) % R
    # Position k = j*n + i (value j, bit i). Every tensor over the log2(N)
    # challenges is the outer product of a tensor over the first log2(M)
    # (the value index j) and one over the last log2(n) (the bit index i),
    # so the N coefficients cost two or three products each:
    #   G_k = weight*(a*s_k + z),                s = tensor(u^-1)
    #   H_k = weight*(b*(s^-1 w^-1)_k - z^(2+j)*2^i*w^-1_k - z)
    top = M.bit_length() - 1
    uy = [uk * yi % R for uk, yi in zip(us, y_invs, strict=True)]
    s_top, s_bot = tensor(u_invs[:top], weight * a), tensor(u_invs[top:])
    f_top, f_bot = tensor(uy[:top], weight * b), tensor(uy[top:])
    w_top, w_bot = tensor(y_invs[:top]), tensor(y_invs[top:])
    zw_top = [weight * z_pow[2 + j] * wt % R for j, wt in enumerate(w_top)]
    two_w_bot = [wb << i for i, wb in enumerate(w_bot)]
    G_coef = [(st * sb + wz) % R for st in s_top for sb in s_bot]
    H_coef = [
        (ft * fb - zt * tb - wz) % R
        for ft, zt in zip(f_top, zw_top, strict=True)
        for fb, tb in zip(f_bot, two_w_bot, strict=True)
    ]
    wc = weight * c % R
    points = [A, S, T1, T2, *V, *Ls, *Rs]
    scalars = [
        -weight,
        -weight * x,
        -wc * x,
        -wc * x * x,
        *(-wc * z_pow[2 + j] for j in range(m)),
        *(-weight * ui for ui in u_invs),
        *(-weight * uk for uk in us),
    ]
    return _Equation(
        G=G_coef,
        H=H_coef,
        g=wc * (proof.t_hat - delta) % R,
        h=weight * (proof.mu + c * proof.tau_x) % R,
        u=weight * w * (a * b - proof.t_hat) % R,
        points=points,
        scalars=scalars,
    )


def _check(backend: Backend, equations: list[_Equation]) -> bool:
    gens = generators(backend)
    N = max(len(e.G) for e in equations)
    G, H = gens.vectors(N)
    G_coef = [0] * N
    H_coef = [0] * N
    g = h = u = 0
    points: list[Point] = []
    scalars: list[int] = []
    for e in equations:
        if len(e.G) == N:
            G_coef = [x + y for x, y in zip(G_coef, e.G, strict=True)]
            H_coef = [x + y for x, y in zip(H_coef, e.H, strict=True)]
        else:
            for i, v in enumerate(e.G):
                G_coef[i] += v
            for i, v in enumerate(e.H):
                H_coef[i] += v
        g += e.g
        h += e.h
        u += e.u
        points += e.points
        scalars += e.scalars
    return backend.msm_is_identity(
        [*G[:N], *H[:N], gens.g, gens.h, gens.u, *points],
        [*G_coef, *H_coef, g, h, u, *scalars],
    )


# Rejections by a fast backend that the reference backend then accepted
# (see ``_confirmed_by_reference``); a diagnostic, never a verdict.
FAST_PATH_DISAGREEMENTS = [0]


def _confirmed_by_reference(backend: Backend, statement: RangeStatement,
                            proof: RangeProof) -> bool:
    """Whether a rejection by ``backend`` stands. A rejection on the mcl
    vector core is repeated on the arkworks reference path before it is
    reported: an acceptance needs the combined equation to reach the
    identity, which no computational fault produces except with negligible
    probability, but a fault can turn a valid proof into a rejection."""
    if backend.name != "mcl":
        return True
    ref = get_backend("arkworks")
    eq = _equation(ref, statement, proof, 1, random_scalar())
    if _check(ref, [eq]):
        FAST_PATH_DISAGREEMENTS[0] += 1
        return False
    return True


def verify(statement: RangeStatement, proof: RangeProof, *, backend: Backend | None = None) -> None:
    """Raise ``VerificationError`` (or ``FormatError`` for undecodable
    points) unless ``proof`` proves ``statement``. Returns None on success."""
    backend = backend or get_backend()
    # c separates [range-t] from [range-ipa]; any nonzero c not chosen by the
    # prover works, so it comes from secrets like the batch weights.
    eq = _equation(backend, statement, proof, 1, random_scalar())
    if not _check(backend, [eq]) and _confirmed_by_reference(backend, statement, proof):
        raise VerificationError("range-equation", "[range-t]/[range-ipa] do not hold")


def batch_verify(
    items: Sequence[tuple[RangeStatement, RangeProof]],
    *,
    backend: Backend | None = None,
    decoded: Mapping[bytes, Point] | None = None,
) -> None:
    """Verify many proofs (any mix of n and m) in one multi-scalar
    multiplication; if that fails, each proof on its own (``find_invalid``).
    Each proof's equation is weighted by an independent 128-bit random
    scalar from ``secrets``, drawn after the proofs are fixed, so a bad proof
    survives with probability about 2^-128.

    Raises ``VerificationError`` naming no single culprit when some proof
    is invalid; ``batch_find_invalid`` returns the culprit instead.

    ``decoded`` maps commitment encodings to points the caller has already
    decoded with ``backend.decode`` (all checks), so a verifier that decoded
    the leaf commitments for the tree does not pay for it twice.
    """
    if batch_find_invalid(items, backend=backend, decoded=decoded) is not None:
        raise VerificationError("range-batch", f"batch of {len(items)} proofs does not verify")


def batch_find_invalid(
    items: Sequence[tuple[RangeStatement, RangeProof]],
    *,
    backend: Backend | None = None,
    decoded: Mapping[bytes, Point] | None = None,
) -> int | None:
    """``batch_verify``'s work, returning the index of the first invalid
    proof (or None) instead of raising, so a caller that must name the
    culprit does not verify the proofs one by one a second time.
    Undecodable points still raise ``FormatError``."""
    backend = backend or get_backend()
    if equations_hold(items, backend=backend, decoded=decoded):
        return None
    # The batch equation failed: it holds for valid proofs whatever the
    # weights, so some proof is invalid, or the computation was faulty.
    # Only a proof that fails on its own (confirmed on the reference path)
    # makes the batch fail.
    return find_invalid(items, backend=backend)


def equations_hold(
    items: Sequence[tuple[RangeStatement, RangeProof]],
    *,
    backend: Backend | None = None,
    decoded: Mapping[bytes, Point] | None = None,
) -> bool:
    """Whether the proofs' combined equation (``batch_verify``'s one
    multi-scalar multiplication, fresh random weights) reaches the identity
    on ``backend``: the raw computation, with no settling proof by proof and
    no confirmation on the reference path. For diagnostics of a backend (the
    shard soak); a verifier calls ``verify`` or ``batch_verify``."""
    backend = backend or get_backend()
    if not items:
        return True
    eqs = [
        _equation(backend, st, pf, secrets.randbits(128) | 1, random_scalar(), decoded)
        for st, pf in items
    ]
    return _check(backend, eqs)


def find_invalid(
    items: Sequence[tuple[RangeStatement, RangeProof]], *, backend: Backend | None = None
) -> int | None:
    """Index of the first proof that fails on its own, or None."""
    for i, (st, pf) in enumerate(items):
        try:
            verify(st, pf, backend=backend)
        except (VerificationError, FormatError):
            return i
    return None
