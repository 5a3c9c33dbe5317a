"""``zksolv bench range``: range-proof speed on one core.

Figures (medians over ``--repeat`` runs, n = 64 unless stated), first on the
default backend (mcl where it loads), then the same figures on the arkworks
reference path in the same run, prefixed ``arkworks_``:

- prove ms per value at m = 1, 16, 256;
- verify ms for one proof at m = 1 and m = 16 (decoding included);
- batch-verify ms per value for 64 proofs of m = 16 (decoding included);
- proof bytes at each m;
- where one m = 256 proof's time goes (``profile_m256``: MSM, generator
  folds, encodings, transcript hashing, scalar arithmetic), from the profiler;
- py_ecc (second reference backend) prove and verify at n = 8, m = 1;
- one-time generator work (derivation or the verified cache), reported apart.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import click

from zksolv.cli.common import backend_of, echo_json
from zksolv.core import rangeproof as rp
from zksolv.core.field import random_scalar
from zksolv.core.generators import generators
from zksolv.core.group import Backend, get_backend
from zksolv.core.pedersen import commit

TARGETS = {
    "prove_ms_per_value_m256": 7.0,
    "prove_ms_per_value_m1": 16.0,
    "verify_ms_m1": 4.0,
    "batch_verify_ms_per_value": 0.25,
}


Case = tuple[rp.RangeStatement, list[int], list[int]]


def _statement(backend: Backend, m: int, bits: int) -> Case:
    values = [random_scalar() % (1 << bits) for _ in range(m)]
    blindings = [random_scalar() for _ in range(m)]
    commitments = tuple(
        backend.encode(commit(backend, v, g)) for v, g in zip(values, blindings, strict=True)
    )
    statement = rp.RangeStatement(b"zksolv/bench/range/v1", commitments, bits, b"bench")
    return statement, values, blindings


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _profile_split(backend: Backend, case: Case) -> dict[str, float]:
    """Where one proof's time goes: the profiler's own time per function,
    grouped into MSM, generator folds, encodings, transcript hashing and
    the rest (scalar arithmetic in Python), as fractions of the whole."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    rp.prove(*case, backend=backend)
    prof.disable()
    groups = {"msm": 0.0, "folds": 0.0, "encode": 0.0, "hashing": 0.0, "scalars": 0.0}
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    for (filename, _, func), (_, _, tottime, _, _) in stats.items():
        if "multiexp" in func or func in ("msm_into", "msm") and "fold" not in filename:
            groups["msm"] += tottime
        elif func in ("mul_each", "mul_each_by", "add_each", "add_halves", "fold", "mul", "add",
                      "sum", "neg"):
            groups["folds"] += tottime
        elif func in ("encode", "encode_many", "encode_all") or "compressed" in func:
            groups["encode"] += tottime
        elif "transcript" in filename or "shake" in func or func in ("update", "digest", "copy"):
            groups["hashing"] += tottime
        else:
            groups["scalars"] += tottime
    total = sum(groups.values()) or 1.0
    return {k: round(v / total, 3) for k, v in groups.items()}


def _measure(backend: Backend, repeat: int, batch_proofs: int, big_m: int, bits: int,
             say: Callable[[str], None], prefix: str, out: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    generators(backend).vectors(bits * big_m)
    out[f"{prefix}generator_derivation_s"] = round(time.perf_counter() - t0, 2)

    for m in (1, 16, big_m):
        say(f"{backend.name}: prove m={m} ...")
        statement, values, blindings = _statement(backend, m, bits)
        proofs: list[rp.RangeProof] = []

        def prove_once(case: Case = (statement, values, blindings), sink=proofs) -> None:
            sink.append(rp.prove(*case, backend=backend))

        ms = _median_ms(prove_once, repeat if m < big_m else max(1, min(repeat, 3)))
        out[f"{prefix}prove_ms_per_value_m{m}"] = round(ms / m, 2)
        out[f"proof_bytes_m{m}"] = len(proofs[0].to_bytes())
        if m in (1, 16):
            data = proofs[0].to_bytes()

            def verify_once(st: rp.RangeStatement = statement, data: bytes = data) -> None:
                rp.verify(st, rp.RangeProof.from_bytes(data), backend=backend)

            ms = _median_ms(verify_once, max(repeat, 5))
            out[f"{prefix}verify_ms_m{m}"] = round(ms, 2)
        if m == big_m:
            out[f"{prefix}profile_m{m}"] = _profile_split(backend, (statement, values, blindings))

    say(f"{backend.name}: batch of {batch_proofs} proofs of m=16 ...")
    batch = []
    for _ in range(batch_proofs):
        statement, values, blindings = _statement(backend, 16, bits)
        proof = rp.prove(statement, values, blindings, backend=backend)
        batch.append((statement, proof.to_bytes()))

    def batch_once() -> None:
        rp.batch_verify([(st, rp.RangeProof.from_bytes(b)) for st, b in batch], backend=backend)

    ms = _median_ms(batch_once, repeat)
    out[f"{prefix}batch_verify_ms_total"] = round(ms, 1)
    out[f"{prefix}batch_verify_ms_per_value"] = round(ms / (16 * batch_proofs), 3)


def run(repeat: int, batch_proofs: int, big_m: int, say: Callable[[str], None],
        reference: bool = True, backend: Backend | None = None) -> dict[str, Any]:
    fast = backend or get_backend()
    bits = 64
    out: dict[str, Any] = {"backend": fast.name, "bits": bits, "repeat": repeat,
                           "batch_proofs": batch_proofs}
    out["generators_derived"] = 2 * bits * big_m
    _measure(fast, repeat, batch_proofs, big_m, bits, say, "", out)
    if reference and fast.name != "arkworks":
        # The reference path in the same run, so the figures compare on
        # equal terms (same machine load).
        _measure(get_backend("arkworks"), max(1, min(repeat, 3)), batch_proofs, big_m, bits,
                 say, "arkworks_", out)

    say("py_ecc reference n=8 m=1 ...")
    ref = get_backend("py_ecc")
    generators(ref).vectors(8)
    statement, values, blindings = _statement(ref, 1, 8)
    ref_proofs: list[rp.RangeProof] = []

    def ref_prove() -> None:
        ref_proofs.append(rp.prove(statement, values, blindings, backend=ref))

    out["py_ecc_prove_ms_n8_m1"] = round(_median_ms(ref_prove, 1), 1)
    out["py_ecc_verify_ms_n8_m1"] = round(
        _median_ms(lambda: rp.verify(statement, ref_proofs[0], backend=ref), 1), 1
    )
    out["targets"] = TARGETS
    out["meets_targets"] = {k: out[k] <= v for k, v in TARGETS.items() if k in out}
    return out


@click.command("range")
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True,
              help="Runs per figure (median).")
@click.option("--batch-proofs", type=click.IntRange(min=1), default=64, show_default=True,
              help="Proofs in the batch.")
@click.option("--big-m", type=click.IntRange(min=2, max=1 << 16), default=256, show_default=True,
              help="Largest aggregation measured (values per proof).")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Also measure the arkworks reference path in the same run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def range_(ctx: click.Context, repeat: int, batch_proofs: int, big_m: int, reference: bool,
           as_json: bool) -> None:
    """Range-proof benchmark on one core (default backend and the arkworks
    reference, n=64; py_ecc at n=8).

    Takes a few minutes at the defaults; --big-m 64 --batch-proofs 16
    --repeat 3 gives a quick look. Choose the fast path's backend with the
    global --backend option."""
    say = (lambda s: None) if as_json else (lambda s: click.echo(s, err=True))
    out = run(repeat, batch_proofs, big_m, say, reference, backend_of(ctx))
    if as_json:
        echo_json(out)
        return
    rows = [
        (k, "  ".join(f"{g} {f:.0%}" for g, f in v.items()) if isinstance(v, dict) else v)
        for k, v in out.items()
        if k not in ("targets", "meets_targets")
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        target = TARGETS.get(k)
        mark = f"   (target <= {target})" if target is not None else ""
        click.echo(f"{k:<{width}}  {v}{mark}")
