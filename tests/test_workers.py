"""Workers are not trusted: every shard result is checked against the
openings the client sent before it is kept (the shard's identity, its leaf
commitments by one random linear combination, its subtree nodes); a result
that does not match is a WorkerFault naming the worker, the shard is proven
again elsewhere, and a second bad result stops the run with nothing
published. On resume, shard files that are not this run's are discarded and
proven again.

The hostile workers here are fake executors around the real prove function
(they move 500 units between two accounts of a shard and prove that
honestly, or answer with another shard's result), and one Dask worker whose
prove function is replaced in its own process."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_epoch_support import ASSETS1, KEY_HEX, make_snapshot, rows_for, run, verify_json

from zksolv.circuits import epoch as circ
from zksolv.core import mcl
from zksolv.core.group import Backend, get_backend
from zksolv.errors import ProverFault, WorkerFault
from zksolv.prover import epoch as pe
from zksolv.prover import shardcheck
from zksolv.prover.inclusion_db import InclusionDB
from zksolv.prover.shards import ShardJob, ShardResult, prove_shard

SHARD_VALUES = 16          # 40 accounts -> 64 leaves, 4 shards of 16
MASTER = bytes.fromhex(KEY_HEX)
EVIL = "tcp://10.0.0.66:40001"
OTHER = "tcp://10.0.0.7:40001"


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(circ, "SHARD_VALUES", SHARD_VALUES)


def moved(job: ShardJob, units: int = 500) -> ShardJob:
    """The job with ``units`` moved from one account of the shard to
    another (the shard's sum unchanged): what a hostile worker proves."""
    funded = [i for i, v in enumerate(job.values) if v >= units]
    assert len(funded) >= 2, "the shard needs two accounts"
    a, b = funded[:2]
    values = list(job.values)
    values[a] -= units
    values[b] += units
    return dataclasses.replace(job, values=tuple(values))


class FakeCluster:
    """An executor whose workers are named like Dask's; ``answer(job)`` is
    what the worker that gets ``job`` returns (it runs the real prover),
    ``again(job)`` what the worker ``run_elsewhere`` finds returns (None:
    there is no other worker)."""

    name = "fake cluster"

    def __init__(self, answer: Callable[[ShardJob], tuple[Any, str]],
                 again: Callable[[ShardJob], tuple[Any, str]] | None) -> None:
        self.answer, self.again = answer, again
        self.avoided: list[str] = []

    def map_attributed(self, fn: Callable[[Any], Any], items: Iterable[Any]
                       ) -> Iterator[tuple[int, Any, str]]:
        for i, job in enumerate(items):
            res, worker = self.answer(job)
            yield i, res, worker

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]
                      ) -> Iterator[tuple[int, Any]]:
        for i, res, _ in self.map_attributed(fn, items):
            yield i, res

    def run_elsewhere(self, fn: Callable[[Any], Any], item: Any, avoid: str
                      ) -> tuple[Any, str] | None:
        self.avoided.append(avoid)
        return None if self.again is None else self.again(item)

    def close(self) -> None:
        pass


def hostile_on(shard: int) -> Callable[[ShardJob], tuple[Any, str]]:
    def answer(job: ShardJob) -> tuple[Any, str]:
        if job.shard == shard:
            return prove_shard(moved(job)), EVIL
        return prove_shard(job), OTHER
    return answer


def honest(job: ShardJob) -> tuple[Any, str]:
    return prove_shard(job), OTHER


def _prove(tmp: Path, snap: Path, executor: Any, name: str = "b", **kw: Any) -> pe.ProveResult:
    return pe.prove_epoch(snap, tmp / name, master_key=MASTER, executor=executor,
                          inclusion_db=tmp / f"{name}.inclusion.sqlite",
                          work_dir=tmp / "private" / f"{name}.work", **kw)


def _nothing_published(tmp: Path, name: str = "b") -> None:
    assert not (tmp / name).exists()
    assert not (tmp / f"{name}.inclusion.sqlite").exists()
    assert not [p for p in tmp.iterdir() if ".tmp-" in p.name]


def _holder_checks(tmp: Path, bundle: Path, db: Path, rows: list[tuple[str, tuple[int, ...]]]
                   ) -> None:
    """The database matches the bundle: every leaf commitment published is
    v*g + r*h for the amount and blinding the database holds; and a few
    accounts' inclusion proofs export and verify with their own amounts."""
    from zksolv.circuits import bundle as layout
    from zksolv.core.pedersen import commit_many

    backend = get_backend()
    with sqlite3.connect(db) as conn:
        leaves = conn.execute("SELECT amounts, blindings FROM leaves ORDER BY idx").fetchall()
    values = [int.from_bytes(a, "big") for a, _ in leaves]
    blindings = [int.from_bytes(b, "little") for _, b in leaves]
    published = (bundle / layout.LEAVES_FILE).read_bytes()
    rec = layout.leaf_record_size(1)
    assert [published[i * rec : i * rec + 48] for i in range(len(leaves))] == \
        backend.encode_many(commit_many(backend, values, blindings))
    for acc, amounts in rows[:3]:
        res = run("inclusion", "export", "--db", db, "--account", acc, "--out",
                  tmp / f"{acc}.json")
        assert res.exit_code == 0, res.output
        res = run("inclusion", "verify", tmp / f"{acc}.json", "--account", acc, "--bundle",
                  bundle, "--expect", f"USD={amounts[0]}")
        assert res.exit_code == 0, res.output


# --- the check itself: both methods, honest and tampered results -----------------


def _jobs(tmp: Path, backend: Backend, n: int = 40) -> list[ShardJob]:
    snap = make_snapshot(tmp / "snap", rows_for(n, 1), assets=ASSETS1)
    checked, _ = pe.check_snapshot(snap)
    header = pe.epoch_header(checked, prev=None, reveal_totals=False, operator=b"\x01" * 32)
    db = InclusionDB.create(tmp / "leaves.sqlite", k=1, depth=checked.depth, epoch=1,
                            symbols=("USD",))
    pe.assign_leaves(checked, header, MASTER, db)
    jobs = list(pe.shard_jobs(db, header, backend, range(header.shards)))
    db.close()
    return jobs


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def _tampered(job: ShardJob, honest_res: ShardResult, other: ShardResult) -> dict[str, Any]:
    """Results that are not ``job``'s, each one way."""
    rec = 48 + 32
    r = honest_res.leaf_records
    swapped = r[rec : rec + 48] + r[48:rec] + r[:48] + r[rec + 48 :]
    off_subgroup = _off_subgroup_point()
    levels = list(honest_res.levels)
    levels[1] = (_flip(levels[1][0], 60), *levels[1][1:])
    return {
        "moved 500 units": prove_shard(moved(job)),
        "another shard's result": other,
        "shard index": dataclasses.replace(honest_res, shard=job.shard + 1),
        "commitments of two leaves swapped": dataclasses.replace(honest_res,
                                                                 leaf_records=swapped),
        "commitment off the subgroup": dataclasses.replace(
            honest_res, leaf_records=off_subgroup + r[48:]),
        "identity commitment": dataclasses.replace(
            honest_res, leaf_records=bytes([0xC0]) + bytes(47) + r[48:]),
        "leaf hash": dataclasses.replace(honest_res, leaf_records=_flip(r, 50)),
        "subtree node hash": dataclasses.replace(honest_res, levels=tuple(levels)),
        "too few levels": dataclasses.replace(honest_res, levels=honest_res.levels[:-1]),
        "attempts": dataclasses.replace(honest_res, attempts=10**9),
        "range proof size": dataclasses.replace(honest_res, proof=honest_res.proof[:-1]),
        "not a result": ("shard", job.shard),
    }


def _off_subgroup_point() -> bytes:
    """A canonical compressed point on the curve, outside the prime-order
    subgroup (x found by search; the cofactor's smallest prime is 3)."""
    from py_ecc.optimized_bls12_381 import FQ, b, is_inf, multiply
    from py_ecc.optimized_bls12_381 import curve_order as r

    from zksolv.core.group import P

    x = 1
    while True:
        y2 = FQ(x) ** 3 + b
        y = y2 ** ((P + 1) // 4)
        if y * y == y2 and not is_inf(multiply((FQ(x), y, FQ.one()), r)):
            flag = 0x20 if int(y) > (P - 1) // 2 else 0
            enc = bytearray(x.to_bytes(48, "big"))
            enc[0] |= 0x80 | flag
            return bytes(enc)
        x += 1


BACKENDS = [pytest.param("mcl", marks=pytest.mark.skipif(not mcl.available(),
                                                          reason="mcl not loadable")),
            "arkworks"]


@pytest.mark.parametrize("name", BACKENDS)
def test_combination_and_direct_recomputation_agree(tmp_path: Path, small_shards: None,
                                                   name: str) -> None:
    """The differential test: the random linear combination and the
    per-leaf recomputation accept the honest result and refuse every
    tampered one, each for a reason naming the leaf or part."""
    backend = get_backend(name)
    jobs = _jobs(tmp_path, backend)
    job = jobs[1]
    res = prove_shard(job)
    for method in shardcheck.METHODS:
        shardcheck.check_result(backend, job, res, method=method)
    for what, bad in _tampered(job, res, prove_shard(jobs[0])).items():
        reasons = []
        for method in shardcheck.METHODS:
            with pytest.raises(shardcheck.ShardMismatch) as info:
                shardcheck.check_result(backend, job, bad, method=method)
            reasons.append(info.value.reason)
        assert reasons[0] == reasons[1] or what in (
            "commitment off the subgroup", "identity commitment"), (what, reasons)
        if what == "moved 500 units":
            # the first leaf whose commitment differs is named, never an amount
            assert "[worker-opening]" in reasons[1] and "leaf " in reasons[1]
            assert "500" not in reasons[1]
        if what == "shard index":
            assert f"shard {job.shard + 1}" in reasons[0]


def test_the_weights_are_fresh_128_bit_draws(tmp_path: Path, small_shards: None) -> None:
    """One weight of 128 bits per commitment, drawn when the result is
    checked; with every weight zero (a broken source) the combination would
    pass a tampered result: the weights are what the check rests on."""
    backend = get_backend()
    job = _jobs(tmp_path, backend)[2]
    bad = prove_shard(moved(job))
    drawn: list[int] = []

    def counting(bits: int) -> int:
        drawn.append(bits)
        return 1 + len(drawn)

    with pytest.raises(shardcheck.ShardMismatch):
        shardcheck.check_result(backend, job, bad, randbits=counting)
    assert drawn == [shardcheck.WEIGHT_BITS] * SHARD_VALUES
    # zero weights make the combination blind; the reference still refuses
    shardcheck._combination(backend, job, [bad.leaf_records[i * 80 : i * 80 + 48]
                                            for i in range(SHARD_VALUES)], lambda _: 0)
    with pytest.raises(shardcheck.ShardMismatch):
        shardcheck.check_result(backend, job, bad, method="direct")


# --- a hostile worker during `prove` ----------------------------------------------


def test_a_worker_that_moves_500_units_is_named_and_nothing_is_published(
        tmp_path: Path, small_shards: None) -> None:
    """The worker proves shard 1 honestly for amounts it changed (500 units
    from one account to another): its result is refused, naming it; with
    nowhere else to prove the shard, the run stops (exit 1 through the
    command) and nothing is published; the work area keeps only checked
    shards, and a resume on honest workers publishes a bundle the
    database matches."""
    rows = rows_for(40, 1)
    snap = make_snapshot(tmp_path / "snap", rows, assets=ASSETS1)
    cluster = FakeCluster(hostile_on(1), again=None)
    with pytest.raises(WorkerFault) as info:
        _prove(tmp_path, snap, cluster)
    fault = info.value
    assert isinstance(fault, ProverFault) and fault.exit_code == 1
    assert fault.worker == EVIL and fault.shard == 1
    assert f"worker {EVIL}: shard 1: leaf " in str(fault)
    assert "[worker-opening]" in str(fault)
    assert "no other worker" in str(fault)
    assert cluster.avoided == [EVIL]
    _nothing_published(tmp_path)
    kept = sorted(p.name for p in (tmp_path / "private" / "b.work" / "shards").iterdir())
    assert "00000001.bin" not in kept and kept  # shard 0 was kept; shard 1 never written

    res = _prove(tmp_path, snap, FakeCluster(honest, again=None), resume=True)
    assert res.resumed_shards == len(kept) and res.worker_faults == ()
    assert verify_json(tmp_path / "b")[0] == 0
    _holder_checks(tmp_path, tmp_path / "b", tmp_path / "b.inclusion.sqlite", rows)


def test_a_refused_shard_is_proven_again_elsewhere(tmp_path: Path, small_shards: None) -> None:
    """The same hostile worker, and another worker to prove the shard
    again: the bundle verifies, names the refused worker, and every holder
    finds their own amount in it."""
    rows = rows_for(40, 1)
    snap = make_snapshot(tmp_path / "snap", rows, assets=ASSETS1)
    cluster = FakeCluster(hostile_on(1), again=honest)
    res = _prove(tmp_path, snap, cluster)
    assert cluster.avoided == [EVIL]
    assert len(res.worker_faults) == 1 and f"worker {EVIL}: shard 1" in res.worker_faults[0]
    assert verify_json(tmp_path / "b")[0] == 0
    _holder_checks(tmp_path, tmp_path / "b", tmp_path / "b.inclusion.sqlite", rows)


def test_a_second_bad_result_stops_the_run(tmp_path: Path, small_shards: None) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(40, 1), assets=ASSETS1)

    def evil_too(job: ShardJob) -> tuple[Any, str]:
        return prove_shard(moved(job)), "tcp://10.0.0.67:40001"

    with pytest.raises(WorkerFault) as info:
        _prove(tmp_path, snap, FakeCluster(hostile_on(2), again=evil_too))
    assert info.value.worker == "tcp://10.0.0.67:40001" and info.value.shard == 2
    assert f"after worker {EVIL}'s result was refused" in str(info.value)
    _nothing_published(tmp_path)


def test_the_command_exits_1_naming_the_worker(tmp_path: Path, small_shards: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(40, 1), assets=ASSETS1)
    monkeypatch.setattr(pe, "LocalProcesses", lambda jobs: FakeCluster(hostile_on(0), None))
    res = run("prove", snap, "--out", tmp_path / "b", "--work-dir", tmp_path / "private" / "w",
              "--jobs", "1", "--quiet")
    assert res.exit_code == 1, res.output
    assert f"worker {EVIL}: shard 0: leaf" in res.output
    assert "Traceback" not in res.output
    _nothing_published(tmp_path)
    # a shard refused and proven again: the command says so
    monkeypatch.setattr(pe, "LocalProcesses", lambda jobs: FakeCluster(hostile_on(0), honest))
    res = run("prove", snap, "--out", tmp_path / "b2", "--work-dir", tmp_path / "private" / "w2",
              "--jobs", "1", "--quiet")
    assert res.exit_code == 0, res.output
    assert f"warning: shard result refused: worker {EVIL}: shard 0" in res.output
    assert verify_json(tmp_path / "b2")[0] == 0


# --- a worker answering for the wrong shard ---------------------------------------


def test_a_worker_returning_shard_0_twice_is_named(tmp_path: Path, small_shards: None) -> None:
    """Asked for shard 1, the worker returns shard 0's (valid) result again:
    a WorkerFault naming it, not 'shard 1 was never proven'; proven again
    elsewhere, the bundle verifies."""
    snap = make_snapshot(tmp_path / "snap", rows_for(40, 1), assets=ASSETS1)
    first: dict[str, ShardResult] = {}

    def answer(job: ShardJob) -> tuple[Any, str]:
        if job.shard == 0:
            first["r"] = prove_shard(job)
            return first["r"], OTHER
        if job.shard == 1:
            return first["r"], EVIL
        return prove_shard(job), OTHER

    with pytest.raises(WorkerFault) as info:
        _prove(tmp_path, snap, FakeCluster(answer, again=lambda job: (first["r"], EVIL)))
    assert info.value.worker == EVIL and info.value.shard == 1
    assert "returned a result for shard 0, not for the shard it was sent" in str(info.value)
    _nothing_published(tmp_path)
    shutil.rmtree(tmp_path / "private" / "b.work")
    res = _prove(tmp_path, snap, FakeCluster(answer, again=honest))
    assert "returned a result for shard 0" in res.worker_faults[0]
    assert verify_json(tmp_path / "b")[0] == 0


def test_a_task_answered_twice_is_refused(tmp_path: Path, small_shards: None) -> None:
    """An executor that reports one task twice (or a task never asked)."""
    snap = make_snapshot(tmp_path / "snap", rows_for(40, 1), assets=ASSETS1)

    class Twice(FakeCluster):
        def map_attributed(self, fn: Callable[[Any], Any], items: Iterable[Any]
                           ) -> Iterator[tuple[int, Any, str]]:
            for i, job in enumerate(items):
                res = prove_shard(job)
                yield i, res, OTHER
                if i == 0:
                    yield i, res, EVIL

    with pytest.raises(WorkerFault) as info:
        _prove(tmp_path, snap, Twice(honest, again=honest))
    assert info.value.worker == EVIL and info.value.shard is None
    assert "task 0, which was never asked or was answered already" in str(info.value)
    _nothing_published(tmp_path)


# --- resume over another run's shard files ------------------------------------------


class Lost(Exception):
    """The cluster went away (not a zksolv error: the work area is kept)."""


def _interrupted(tmp: Path, snap: Path, name: str, after: int) -> None:
    """A run that proves shards 0 .. after-1 and stops (after every shard:
    before the solvency proofs)."""
    def answer(job: ShardJob) -> tuple[Any, str]:
        if job.shard >= after:
            raise Lost
        return prove_shard(job), OTHER

    def lost(*args: Any) -> bytes:
        raise Lost

    with pytest.MonkeyPatch.context() as mp, pytest.raises(Lost):
        mp.setattr(pe, "prove_solvency", lost)
        _prove(tmp, snap, FakeCluster(answer, again=None), name=name)


def test_resume_discards_another_runs_shard_files(tmp_path: Path, small_shards: None) -> None:
    """Two interrupted runs of one snapshot (same header, other blindings);
    run b resumed with run c's shard files in its work area: they are
    discarded with a line and proven again, and the bundle is the one b's
    database matches (every holder's check passes)."""
    rows = rows_for(40, 1)
    snap = make_snapshot(tmp_path / "snap", rows, assets=ASSETS1)
    _interrupted(tmp_path, snap, "b", 1)
    _interrupted(tmp_path, snap, "c", 3)
    private = tmp_path / "private"
    ours, theirs = private / "b.work" / "shards", private / "c.work" / "shards"
    assert sorted(p.name for p in ours.iterdir()) == ["00000000.bin"]
    for f in theirs.iterdir():
        shutil.copyfile(f, ours / f.name)        # shard 0 replaced, 1 and 2 added
    res = run("prove", snap, "--out", tmp_path / "b",
              "--work-dir", tmp_path / "private" / "b.work",
              "--inclusion-db", tmp_path / "b.inclusion.sqlite", "--jobs", "1", "--resume")
    assert res.exit_code == 0, res.output
    for s in (0, 1, 2):
        assert f"discarded: shard {s}'s file in the work area is not this run's" in res.output
    assert "is not this run's (leaf " in res.output and "resumed:" not in res.output
    assert verify_json(tmp_path / "b")[0] == 0
    _holder_checks(tmp_path, tmp_path / "b", tmp_path / "b.inclusion.sqlite", rows)
    # the leaves are b's own assignment, as the interrupted run made it
    with sqlite3.connect(tmp_path / "b.inclusion.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM leaves").fetchone()[0] == 64


def test_resume_keeps_its_own_shard_files(tmp_path: Path, small_shards: None) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(40, 1), assets=ASSETS1)
    _interrupted(tmp_path, snap, "b", 2)
    res = _prove(tmp_path, snap, FakeCluster(honest, again=None), resume=True)
    assert res.resumed_shards == 2 and res.discarded_shards == ()
    assert verify_json(tmp_path / "b")[0] == 0


def test_resume_refuses_a_work_area_that_mixes_two_runs(tmp_path: Path,
                                                        small_shards: None) -> None:
    """Run c's state and shard files over run b's leaves database: refused
    before any proving (exit 2, naming the work area, which is kept), never
    a bundle the database does not match."""
    snap = make_snapshot(tmp_path / "snap", rows_for(40, 1), assets=ASSETS1)
    _interrupted(tmp_path, snap, "b", 1)
    _interrupted(tmp_path, snap, "c", 4)
    private = tmp_path / "private"
    shutil.copyfile(private / "b.work" / "leaves.sqlite", private / "c.work" / "leaves.sqlite")
    res = run("prove", snap, "--out", tmp_path / "c", "--work-dir", private / "c.work",
              "--inclusion-db", tmp_path / "c.inclusion.sqlite", "--jobs", "1", "--resume")
    assert res.exit_code == 2, res.output
    assert f"{tmp_path / 'private' / 'c.work'}: cannot resume" in res.output
    assert "the work area mixes two runs" in res.output
    _nothing_published(tmp_path, "c")
    assert (tmp_path / "private" / "c.work" / "state.json").exists()


# --- a hostile Dask worker ------------------------------------------------------------


def _install_hostile_prover() -> None:
    """Run in one Dask worker's process: its prove function (looked up by
    name when a task's function arrives) moves 500 units between two
    accounts of the shard and proves that honestly."""
    from zksolv.prover import shards

    real = shards.prove_shard

    def hostile(job: ShardJob) -> ShardResult:
        funded = [i for i, v in enumerate(job.values) if v >= 500]
        if len(funded) < 2:
            return real(job)
        values = list(job.values)
        values[funded[0]] -= 500
        values[funded[1]] += 500
        return real(dataclasses.replace(job, values=tuple(values)))

    shards.prove_shard = hostile  # type: ignore[assignment]


def test_a_hostile_dask_worker_is_named_and_avoided(tmp_path: Path, small_shards: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers, one hostile (its own prove function replaced in its
    process); the first task is sent to it. Its result is refused naming
    its address, the shard is proven on the other worker, the hostile one
    gets no further task, and the bundle is the one the database matches."""
    from zksolv import executors

    rows = rows_for(40, 1)
    snap = make_snapshot(tmp_path / "snap", rows, assets=ASSETS1)
    executor = executors.DaskCluster("local:2")
    try:
        victim = sorted(executor.client.scheduler_info()["workers"])[0]
        executor.client.run(_install_hostile_prover, workers=[victim])
        real_submit = executor._submit
        first = [True]

        def submit(fn: Callable[[Any], Any], item: Any) -> Any:
            if first[0]:
                first[0] = False
                return executor.client.submit(executors._checked_task, fn, item, pure=False,
                                              workers=[victim], allow_other_workers=False)
            return real_submit(fn, item)

        monkeypatch.setattr(executor, "_submit", submit)
        res = _prove(tmp_path, snap, executor)
        assert res.worker_faults, "the hostile worker's result was accepted"
        assert all(f.startswith(f"worker {victim}: shard ") and "[worker-opening]" in f
                   for f in res.worker_faults), res.worker_faults
        assert executor.distrusted == {victim}
    finally:
        executor.close()
    assert verify_json(tmp_path / "b")[0] == 0
    _holder_checks(tmp_path, tmp_path / "b", tmp_path / "b.inclusion.sqlite", rows[:5])
