"""Shards and verification batches on a dask.distributed cluster: the same
bundle format, over TCP and over TLS, and a worker killed mid-epoch costs
only its tasks. Clusters here are LocalClusters on this machine (loopback)."""

from __future__ import annotations

import datetime
import os
import pickle
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import distributed
import pytest
from test_epoch_support import (
    ASSETS1,
    KEY_HEX,
    make_snapshot,
    read_manifest,
    rows_for,
    run,
    verify_json,
    work_area,
)

from zksolv.circuits import epoch as circ
from zksolv.errors import InputError
from zksolv.executors import DaskCluster
from zksolv.prover.epoch import prove_epoch
from zksolv.verifier import verify_bundle


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(circ, "SHARD_VALUES", 16)


def test_prove_and_verify_with_a_local_cluster(tmp_path: Path, small_shards: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(50, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--scheduler", "local:2", "--quiet")
    assert res.exit_code == 0, res.output
    assert read_manifest(tmp_path / "b")["tree"]["shards"] == 4
    assert not work_area(tmp_path / "b").exists()
    from zksolv.verifier import bundle as vb

    monkeypatch.setattr(vb, "BATCH_PROOFS", 2)
    code, out = verify_json(tmp_path / "b", "--scheduler", "local:2")
    assert code == 0, out
    code, out = verify_json(tmp_path / "b", "--jobs", "1")
    assert code == 0, out
    res = run("inclusion", "export", "--db", tmp_path / "b.inclusion.sqlite", "--account",
              "acct-7", "--out", tmp_path / "p.json")
    assert res.exit_code == 0, res.output
    res = run("inclusion", "verify", tmp_path / "p.json", "--account", "acct-7", "--bundle",
              tmp_path / "b", "--expect", "USD=8000")
    assert res.exit_code == 0, res.output


def test_a_worker_running_other_zksolv_code_is_refused(
        tmp_path: Path, small_shards: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers (separate processes) hash their own zksolv sources; a
    client whose code differs is refused before any task runs, naming the
    worker and both identities; and a worker that differs refuses tasks."""
    from zksolv import executors

    real = executors.code_identity()
    monkeypatch.setattr(executors, "code_identity", lambda: "0.0.0+other")
    snap = make_snapshot(tmp_path / "snap", rows_for(20, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--scheduler", "local:1", "--quiet")
    assert res.exit_code == 2, res.output
    assert f"runs zksolv {real}, the client 0.0.0+other" in res.output
    assert "install the same zksolv on every worker" in res.output
    assert not (tmp_path / "b").exists()
    monkeypatch.setattr(executors, "_MISMATCH", "worker w runs zksolv x, the client y")
    with pytest.raises(InputError, match="worker w runs zksolv x"):
        executors._checked_task(len, [1])
    monkeypatch.setattr(executors, "_MISMATCH", None)
    assert executors._checked_task(len, [1]) == 1


def test_code_identity_covers_every_source_file(tmp_path: Path) -> None:
    """The identity is the same in a fresh process, and changes with any
    Python source of the package, including the statement code reached
    through the package's links and a file in a sub-package."""
    import shutil
    import subprocess
    import sys

    import zksolv
    from zksolv import executors

    here = executors.code_identity()
    other = subprocess.run([sys.executable, "-c", "from zksolv.executors import code_identity;"
                            "print(code_identity())"], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == here
    root = Path(zksolv.__file__).parent
    assert here == f"{zksolv.__version__}+{executors.source_digest(str(root))}"
    copy = tmp_path / "zksolv"
    shutil.copytree(root, copy, symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__"))
    digests = {executors.source_digest(str(copy))}
    assert digests == {here.split("+")[1]}  # a copy of the same sources
    for rel in ("circuits/epoch.py", "core/rangeproof.py", "prover/export.py"):
        f = copy / rel
        f.write_bytes(f.read_bytes() + b"\n")
        digests.add(executors.source_digest(str(copy)))
    (copy / "extra.py").write_text("")
    digests.add(executors.source_digest(str(copy)))
    assert len(digests) == 5


def test_bad_scheduler_address_is_refused(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(3, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--scheduler", "http://x", "--quiet")
    assert res.exit_code == 2 and "--scheduler" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]


def test_help_says_workers_see_openings() -> None:
    text = " ".join(run("prove", "--help").output.split())
    assert "--scheduler" in text and "must be the operator's own machines" in text
    assert "--resume" in text


def test_a_shard_job_carries_only_its_shard(tmp_path: Path, small_shards: None) -> None:
    """What travels to a worker: one shard's openings and the header, a few
    kB, the same for every shard whatever the epoch's size."""
    from zksolv.core.group import get_backend
    from zksolv.prover import epoch as prover
    from zksolv.prover.inclusion_db import InclusionDB

    sizes = []
    for n in (20, 200):
        snap = make_snapshot(tmp_path / f"s{n}", rows_for(n, 1), assets=ASSETS1)
        checked, _ = prover.check_snapshot(snap)
        header = prover.epoch_header(checked, prev=None, reveal_totals=False,
                                     operator=b"\x01" * 32)
        db = InclusionDB.create(tmp_path / f"l{n}.sqlite", k=1, depth=checked.depth, epoch=1,
                                symbols=("USD",))
        prover.assign_leaves(checked, header, bytes.fromhex(KEY_HEX), db)
        jobs = list(prover.shard_jobs(db, header, get_backend(), range(header.shards)))
        assert [j.shard for j in jobs] == list(range(header.shards))
        for j in jobs:
            assert len(j.values) == len(j.blindings) == 16 and len(j.hashes) == 16
        sizes.append(max(len(pickle.dumps(j, protocol=5)) for j in jobs))
        db.close()
    # the same size (up to the width of the amounts), 10x the accounts or not
    assert max(sizes) < 4096 and abs(sizes[0] - sizes[1]) < 0.05 * sizes[0]


def _tls_security(tmp: Path) -> Any:
    """A CA and one certificate for the scheduler, workers and client, made
    here with `cryptography` (nothing fetched, nothing kept)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from distributed.security import Security

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zksolv test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_file, 0o600)
    files = {"tls_ca_file": str(ca_file)}
    for role in ("client", "scheduler", "worker"):
        files[f"tls_{role}_cert"] = str(cert_file)
        files[f"tls_{role}_key"] = str(key_file)
    return Security(require_encryption=True, **files)


def test_prove_over_tls(tmp_path: Path, small_shards: None) -> None:
    security = _tls_security(tmp_path)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       protocol="tls://", security=security,
                                       dashboard_address=None)
    try:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        # without the certificates the scheduler is not reachable
        with pytest.raises((OSError, TimeoutError)):
            distributed.Client(address.replace("tls://", "tcp://"), timeout="3s")
        snap = make_snapshot(tmp_path / "snap", rows_for(40, 1), assets=ASSETS1)
        executor = DaskCluster(address, security=security)
        try:
            prove_epoch(snap, tmp_path / "b", master_key=bytes.fromhex(KEY_HEX),
                        executor=executor)
            # workers installed the verified generator cache (once, on joining)
            from zksolv import gencache

            def store_folder() -> str | None:
                from zksolv.core import generators

                store = generators._STORE[0]
                return None if store is None else str(store.folder)  # type: ignore[attr-defined]

            expected = gencache.cache_dir()
            folders = executor.client.run(store_folder)
            assert set(folders.values()) == {None if expected is None else str(expected)}
            report = verify_bundle(tmp_path / "b", executor=executor)
            assert report.shards == 4
        finally:
            executor.close()
    finally:
        cluster.close()
    assert verify_json(tmp_path / "b")[0] == 0


def test_a_worker_killed_mid_epoch_costs_only_its_tasks(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(circ, "SHARD_VALUES", 8)
    snap = make_snapshot(tmp_path / "snap", rows_for(120, 1), assets=ASSETS1)  # 16 shards
    executor = DaskCluster("local:2")
    killed: list[int] = []

    def progress(items: Iterable[Any], total: int, desc: str) -> Iterator[Any]:
        for n, item in enumerate(items):
            if desc == "prove shards" and n == 2 and not killed:
                busy = {w for w, keys in executor.client.processing().items() if keys}
                pids = executor.client.run(os.getpid)
                victim = sorted(busy)[0] if busy else sorted(pids)[0]
                os.kill(pids[victim], signal.SIGKILL)
                killed.append(pids[victim])
            yield item

    try:
        res = prove_epoch(snap, tmp_path / "b", master_key=bytes.fromhex(KEY_HEX),
                          executor=executor, progress=progress)
        assert res.shards == 16 and killed
        # the nanny restarted the worker: two workers again, neither the killed pid
        executor.client.wait_for_workers(2, timeout=60)
        assert killed[0] not in executor.client.run(os.getpid).values()
    finally:
        executor.close()
    code, out = verify_json(tmp_path / "b")
    assert code == 0, out
