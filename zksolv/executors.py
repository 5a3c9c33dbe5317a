"""Where independent tasks (the prover's shards, the verifier's batches of
shards) run: in this process, on forked local worker processes (the embedded
default: nothing to start), or on a ``dask.distributed`` cluster the operator
owns.

Every executor has three methods:

- ``map_unordered(fn, items)`` yields ``(index, fn(item))`` as results
  complete, keeping at most a bounded window of tasks in flight, so memory
  stays bounded whatever the number of items. Callers that need order (the
  bundle's files are written in shard order) re-order what they receive.
- ``map_attributed(fn, items)`` is the same with the worker that ran each
  task: ``(index, result, worker)``, ``worker`` as the executor knows it (a
  Dask worker's address, as the scheduler records who holds the result; a
  local process's pid). The prover checks every shard result against what
  it sent (``zksolv.prover.shardcheck``) and names the worker of one that
  does not match.
- ``run_elsewhere(fn, item, avoid)`` runs one task again away from the
  worker ``avoid``: on Dask on another worker (restricted with ``workers=``,
  never back on ``avoid``, which then gets no further tasks of this
  executor); locally in this process. It returns ``(result, worker)``, or
  None when there is nowhere else (a cluster whose every worker is
  distrusted).

On Dask:

- an item travels to a worker with its task and nothing else does: the
  caller builds items that hold only what one task needs;
- each worker installs the verified generator cache once, when it joins
  (``zksolv.gencache.install`` in a worker plugin), and derives or loads the
  generators on its first task; they are never shipped;
- a worker that dies mid-task costs only its tasks: the scheduler runs them
  again elsewhere (Dask's own retry of tasks lost with a worker);
- every worker must run the client's zksolv: the plugin compares the
  worker's ``code_identity`` (version and a SHA-256 of the Python sources)
  with the client's when it joins; a worker that differs refuses every task,
  and one that differs when the client connects stops the run at once
  (exit 2, naming the worker);
- client <-> scheduler <-> worker traffic is protected by Dask's own
  security settings: ``distributed.security.Security``, or Dask's config
  (``distributed.comm.tls.*``, e.g. ``DASK_DISTRIBUTED__COMM__TLS__CA_FILE``)
  with a ``tls://`` scheduler address.

The prover's tasks carry account openings (amounts, blindings): a cluster's
workers must be the operator's own machines. Dask is imported only when a
Dask executor is made.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import multiprocessing
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from zksolv.errors import InputError, ProverFault

T = TypeVar("T")
R = TypeVar("R")

SCHEDULER_HELP = (
    "Run the work on a dask.distributed cluster: tcp://HOST:8786 or tls://HOST:8786 (TLS "
    "settings from Dask's config, distributed.comm.tls.*), or local:N to start a local "
    "cluster of N worker processes. Workers receive account openings (amounts and "
    "blindings) of the shards they prove: they must be the operator's own machines."
)

_PR_SET_PDEATHSIG = 1
_LOCAL = re.compile(r"local:([1-9][0-9]{0,3})")
_REMOTE = re.compile(r"(tcp|tls|inproc|ucx)://[^\s]{1,250}")


class Executor(Protocol):
    """Runs ``fn`` over items; yields ``(index, result)`` as they complete
    (see the module docstring for the three methods)."""

    name: str

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[int, R]]:
        ...

    def map_attributed(self, fn: Callable[[T], R], items: Iterable[T]
                       ) -> Iterator[tuple[int, R, str]]:
        ...

    def run_elsewhere(self, fn: Callable[[T], R], item: T, avoid: str) -> tuple[R, str] | None:
        ...

    def close(self) -> None:
        ...


def this_process() -> str:
    """The name of the client's own process as a worker."""
    return f"this process (pid {os.getpid()})"


class InProcess:
    """Every task in this process, in order (one core; the reference path)."""

    name = "in-process"

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[int, R]]:
        for i, item in enumerate(items):
            yield i, fn(item)

    def map_attributed(self, fn: Callable[[T], R], items: Iterable[T]
                       ) -> Iterator[tuple[int, R, str]]:
        for i, res in self.map_unordered(fn, items):
            yield i, res, this_process()

    def run_elsewhere(self, fn: Callable[[T], R], item: T, avoid: str) -> tuple[R, str] | None:
        # one process: the task runs once more, here
        return fn(item), this_process()

    def close(self) -> None:
        pass


def _with_pid(fn: Callable[[T], R], item: T) -> tuple[int, R]:
    """A task in a local worker process, with the pid that ran it."""
    return os.getpid(), fn(item)


class LocalProcesses:
    """Forked worker processes on this machine (the default). Whatever the
    parent prepared before ``map_unordered`` (derived generators) the
    workers inherit; at most ``2 * workers`` tasks are in flight."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.name = f"local processes ({self.workers})"

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[int, R]]:
        for i, res, _ in self.map_attributed(fn, items):
            yield i, res

    def map_attributed(self, fn: Callable[[T], R], items: Iterable[T]
                       ) -> Iterator[tuple[int, R, str]]:
        if self.workers == 1:
            yield from InProcess().map_attributed(fn, items)
            return
        ctx = multiprocessing.get_context("fork")
        task = functools.partial(_with_pid, fn)
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                 initializer=die_with_parent) as pool:
            running: dict[Future[tuple[int, R]], int] = {}
            for i, item in enumerate(items):
                running[pool.submit(task, item)] = i
                if len(running) >= 2 * self.workers:
                    for j, (pid, res) in _drain(running, FIRST_COMPLETED):
                        yield j, res, f"local process {pid}"
            while running:
                for j, (pid, res) in _drain(running, FIRST_COMPLETED):
                    yield j, res, f"local process {pid}"

    def run_elsewhere(self, fn: Callable[[T], R], item: T, avoid: str) -> tuple[R, str] | None:
        # the pool's processes are forks of this one: once more, here
        return fn(item), this_process()

    def close(self) -> None:
        pass


def die_with_parent() -> None:
    """In a forked worker: ask Linux to kill this process when its parent
    dies (a parent killed with SIGKILL cannot stop its workers, which would
    otherwise wait forever on their inherited pipes). Elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request
        os._exit(1)


def _drain(running: dict[Future[R], int], how: str) -> Iterator[tuple[int, R]]:
    done, _ = wait(list(running), return_when=how)
    for fut in done:
        i = running.pop(fut)
        yield i, fut.result()


@functools.cache
def code_identity() -> str:
    """``VERSION+DIGEST`` of this zksolv: its version and ``source_digest`` of
    the installed package. Two processes that agree on it prove and verify
    with the same code."""
    import zksolv

    root = os.path.dirname(os.path.abspath(zksolv.__file__))
    return f"{zksolv.__version__}+{source_digest(root)}"


def source_digest(root: str) -> str:
    """16 hex digits of SHA-256 over every ``*.py`` under ``root`` (symbolic
    links followed), each as its relative path and bytes, in path order."""
    files = []
    for here, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        files += [os.path.join(here, n) for n in names if n.endswith(".py")]
    h = hashlib.sha256()
    for path in sorted(files, key=lambda f: os.path.relpath(f, root)):
        rel = os.path.relpath(path, root).replace(os.sep, "/").encode()
        with open(path, "rb") as f:
            data = f.read()
        h.update(len(rel).to_bytes(4, "big") + rel + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:16]


# On a Dask worker: why it refuses tasks (its zksolv is not the client's).
_MISMATCH: str | None = None


def _checked_task(fn: Callable[[T], R], item: T) -> R:
    """A task on a Dask worker, run only if the worker's zksolv is the client's."""
    if _MISMATCH is not None:
        raise InputError("--scheduler", _MISMATCH)
    return fn(item)


def _worker_setup(expected: str) -> Any:
    """The worker plugin (built lazily: only here is Dask imported)."""
    from distributed import WorkerPlugin

    class ZksolvWorkerSetup(WorkerPlugin):  # type: ignore[misc]
        name = "zksolv-setup"

        def __init__(self, expected: str) -> None:
            self.expected = expected

        def setup(self, worker: Any) -> None:
            # This class travels by value; the worker's own modules are
            # imported here, so the identity is the worker's code, not ours.
            from zksolv import executors, gencache

            mine = executors.code_identity()
            if mine != self.expected:
                executors._MISMATCH = (f"worker {worker.address} runs zksolv {mine}, the client "
                                       f"{self.expected}: install the same zksolv on every "
                                       "worker")
                raise RuntimeError(executors._MISMATCH)
            executors._MISMATCH = None
            gencache.install()

    return ZksolvWorkerSetup(expected)


class DaskCluster:
    """Tasks on a ``dask.distributed`` cluster. ``address`` is a scheduler
    (``tcp://HOST:8786``, ``tls://HOST:8786``) or ``local:N``, which starts a
    LocalCluster of N single-threaded worker processes for trying it out.
    ``security`` is a ``distributed.security.Security`` (default: Dask's
    config)."""

    def __init__(self, address: str, *, security: Any = None,
                 window_per_worker: int = 2) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise InputError("--scheduler", f"dask.distributed is not installed ({exc})") from exc
        self.address = address
        self.window_per_worker = window_per_worker
        self._cluster: Any = None
        # workers that returned a result the client refused: no further tasks
        self.distrusted: set[str] = set()
        local = _LOCAL.fullmatch(address)
        try:
            if local:
                n = int(local.group(1))
                kwargs: dict[str, Any] = {}
                if security is not None:
                    kwargs = {"security": security, "protocol": "tls://"}
                self._cluster = LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                    **kwargs,
                )
                self.client = Client(self._cluster, security=security)
            elif _REMOTE.fullmatch(address):
                self.client = (Client(address, security=security)
                               if security is not None else Client(address))
            else:
                raise InputError("--scheduler", f"{address!r}: use tcp://HOST:PORT, "
                                 "tls://HOST:PORT or local:N")
        except InputError:
            raise
        except (OSError, TimeoutError) as exc:
            self.close()
            raise InputError("--scheduler", f"cannot reach the Dask scheduler at {address} "
                             f"({exc})") from exc
        try:
            self.client.register_plugin(_worker_setup(code_identity()), name="zksolv-setup")
        except Exception as exc:  # a worker's setup failed: its reason, as the worker said
            self.close()
            raise InputError("--scheduler", f"a worker could not be set up: {exc}") from exc
        self.name = f"dask {address}"

    def workers(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def _submit(self, fn: Callable[[T], R], item: T) -> Any:
        """One task, on any worker not distrusted."""
        distrusted = self.distrusted
        if not distrusted:
            return self.client.submit(_checked_task, fn, item, pure=False)
        allowed = [w for w in self.client.scheduler_info()["workers"] if w not in distrusted]
        if not allowed:
            raise ProverFault(f"every worker of the cluster at {self.address} returned a shard "
                              f"result the client refused ({', '.join(sorted(distrusted))})")
        return self.client.submit(_checked_task, fn, item, pure=False, workers=allowed,
                                  allow_other_workers=False)

    def _worker_of(self, fut: Any) -> str:
        """The worker holding ``fut``'s result, as the scheduler records it."""
        holders = self.client.who_has(fut).get(fut.key, ())
        return ", ".join(sorted(holders)) or "a worker the scheduler no longer knows"

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[int, R]]:
        for i, res, _ in self._map(fn, items, attributed=False):
            yield i, res

    def map_attributed(self, fn: Callable[[T], R], items: Iterable[T]
                       ) -> Iterator[tuple[int, R, str]]:
        return self._map(fn, items, attributed=True)

    def _map(self, fn: Callable[[T], R], items: Iterable[T], *, attributed: bool
             ) -> Iterator[tuple[int, R, str]]:
        from distributed import as_completed

        window = self.window_per_worker * self.workers()
        index: dict[Any, int] = {}
        it = iter(enumerate(items))
        pending = as_completed(with_results=False)
        for i, item in it:
            fut = self._submit(fn, item)
            index[fut.key] = i
            pending.add(fut)
            if len(index) >= window:
                break
        for fut in pending:
            i = index.pop(fut.key)
            result = fut.result()
            worker = self._worker_of(fut) if attributed else ""
            fut.release()
            yield i, result, worker
            nxt = next(it, None)
            if nxt is not None:
                new = self._submit(fn, nxt[1])
                index[new.key] = nxt[0]
                pending.add(new)

    def run_elsewhere(self, fn: Callable[[T], R], item: T, avoid: str) -> tuple[R, str] | None:
        """``fn(item)`` on a worker other than ``avoid`` (and any worker
        distrusted before); ``avoid`` gets no further task of this executor.
        None if no such worker is connected."""
        self.distrusted.add(avoid)
        allowed = [w for w in self.client.scheduler_info()["workers"]
                   if w not in self.distrusted]
        if not allowed:
            return None
        fut = self.client.submit(_checked_task, fn, item, pure=False, workers=allowed,
                                 allow_other_workers=False)
        try:
            return fut.result(), self._worker_of(fut)
        finally:
            fut.release()

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(scheduler: str | None, jobs: int, *, security: Any = None) -> Executor:
    """``scheduler`` None: local processes (``jobs`` of them); else Dask."""
    if scheduler is None:
        return LocalProcesses(jobs)
    return DaskCluster(scheduler, security=security)
