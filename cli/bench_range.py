"""``zksolv bench range``: range-proof speed on one core.

Figures (medians over ``--repeat`` runs, arkworks, n = 64 unless stated):

- prove ms per value at m = 1, 16, 256;
- verify ms for one proof at m = 1 and m = 16 (decoding included);
- batch-verify ms per value for 64 proofs of m = 16 (decoding included);
- proof bytes at each m;
- the largest m again with the arkworks-only reference folder (when the mcl
  folder is in use), for a same-run comparison;
- py_ecc (reference backend) prove and verify at n = 8, m = 1;
- one-time generator derivation, reported apart from the figures above.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import click

from zksolv.cli.common import echo_json
from zksolv.core import fold
from zksolv.core import rangeproof as rp
from zksolv.core.field import random_scalar
from zksolv.core.generators import generators
from zksolv.core.group import Backend, get_backend
from zksolv.core.pedersen import commit

TARGETS = {
    "prove_ms_per_value_m256": 20.0,
    "verify_ms_m1": 10.0,
    "batch_verify_ms_per_value": 1.0,
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


def run(repeat: int, batch_proofs: int, big_m: int, say: Callable[[str], None]) -> dict[str, Any]:
    ark = get_backend("arkworks")
    bits = 64
    out: dict[str, Any] = {"backend": "arkworks", "bits": bits, "repeat": repeat}

    t0 = time.perf_counter()
    generators(ark).vectors(bits * big_m)
    out["generator_derivation_s"] = round(time.perf_counter() - t0, 2)
    out["generators_derived"] = 2 * bits * big_m

    for m in (1, 16, big_m):
        say(f"prove m={m} ...")
        statement, values, blindings = _statement(ark, m, bits)
        proofs: list[rp.RangeProof] = []

        def prove_once(case: Case = (statement, values, blindings), sink=proofs) -> None:
            sink.append(rp.prove(*case, backend=ark))

        ms = _median_ms(prove_once, repeat if m < big_m else max(1, min(repeat, 3)))
        out[f"prove_ms_per_value_m{m}"] = round(ms / m, 2)
        out[f"proof_bytes_m{m}"] = len(proofs[0].to_bytes())
        if m in (1, 16):
            data = proofs[0].to_bytes()

            def verify_once(st: rp.RangeStatement = statement, data: bytes = data) -> None:
                rp.verify(st, rp.RangeProof.from_bytes(data), backend=ark)

            ms = _median_ms(verify_once, max(repeat, 5))
            out[f"verify_ms_m{m}"] = round(ms, 2)

    if fold._pymcl() is not None:
        # The same prover with the arkworks-only reference folder, in this run,
        # so the two figures compare on equal terms.
        say(f"prove m={big_m} with the reference folder ...")
        statement, values, blindings = _statement(ark, big_m, bits)
        previous = os.environ.get(fold.FOLDER_ENV)
        os.environ[fold.FOLDER_ENV] = "generic"
        try:
            ms = _median_ms(
                lambda: rp.prove(statement, values, blindings, backend=ark), min(repeat, 2)
            )
        finally:
            if previous is None:
                del os.environ[fold.FOLDER_ENV]
            else:
                os.environ[fold.FOLDER_ENV] = previous
        out[f"prove_ms_per_value_m{big_m}_reference_folder"] = round(ms / big_m, 2)
    out["folder"] = "mcl" if fold._pymcl() is not None else "generic"

    say(f"batch of {batch_proofs} proofs of m=16 ...")
    batch = []
    for _ in range(batch_proofs):
        statement, values, blindings = _statement(ark, 16, bits)
        batch.append((statement, rp.prove(statement, values, blindings, backend=ark).to_bytes()))

    def batch_once() -> None:
        rp.batch_verify([(st, rp.RangeProof.from_bytes(b)) for st, b in batch], backend=ark)

    ms = _median_ms(batch_once, repeat)
    out["batch_proofs"] = batch_proofs
    out["batch_verify_ms_total"] = round(ms, 1)
    out["batch_verify_ms_per_value"] = round(ms / (16 * batch_proofs), 3)

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
@click.option("--repeat", default=5, show_default=True, help="Runs per figure (median).")
@click.option("--batch-proofs", default=64, show_default=True, help="Proofs in the batch.")
@click.option("--big-m", default=256, show_default=True, help="Largest aggregation measured.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def range_(repeat: int, batch_proofs: int, big_m: int, as_json: bool) -> None:
    """Range-proof benchmark on one core (arkworks, n=64; py_ecc at n=8).

    Takes a few minutes at the defaults; --big-m 64 --batch-proofs 16
    --repeat 3 gives a quick look."""
    say = (lambda s: None) if as_json else (lambda s: click.echo(s, err=True))
    out = run(repeat, batch_proofs, big_m, say)
    if as_json:
        echo_json(out)
        return
    rows = [(k, v) for k, v in out.items() if not isinstance(v, dict)]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        target = TARGETS.get(k)
        mark = f"   (target <= {target})" if target is not None else ""
        click.echo(f"{k:<{width}}  {v}{mark}")
