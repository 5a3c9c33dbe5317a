"""The command line around the core: help, version, backend choice, the
range benchmark's JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from zksolv import __version__
from zksolv.cli.main import cli


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("demo", "prove", "verify", "inclusion", "keygen", "simulate", "bench"):
        assert name in result.output
    assert "ZKSOLV_BACKEND" in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_unknown_backend_is_refused_with_exit_2() -> None:
    result = CliRunner().invoke(cli, ["--backend", "openssl", "bench", "--help"])
    assert result.exit_code == 2
    assert "openssl" in result.output


def test_backend_from_environment_is_validated() -> None:
    result = CliRunner().invoke(cli, ["bench", "--help"], env={"ZKSOLV_BACKEND": "nope"})
    assert result.exit_code == 2


def test_bench_range_json_has_every_figure() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "range", "--json", "--big-m", "2", "--batch-proofs", "2", "--repeat", "1"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    for key in (
        "prove_ms_per_value_m1",
        "prove_ms_per_value_m16",
        "prove_ms_per_value_m2",
        "verify_ms_m1",
        "verify_ms_m16",
        "batch_verify_ms_per_value",
        "proof_bytes_m1",
        "py_ecc_prove_ms_n8_m1",
        "py_ecc_verify_ms_n8_m1",
    ):
        assert figures[key] > 0, key
    assert figures["proof_bytes_m1"] == 928
    split = figures["profile_m2"]
    assert set(split) == {"msm", "folds", "encode", "hashing", "scalars"}
    assert abs(sum(split.values()) - 1) < 0.01
    if figures["backend"] != "arkworks":
        # the reference path, measured in the same run
        assert figures["arkworks_prove_ms_per_value_m2"] > 0
        assert figures["arkworks_batch_verify_ms_per_value"] > 0
