"""The private work area of an epoch being proven: what a resumed run needs.

A folder (mode 0700) in the private data directory, by default
``DATA_DIR/work/NAME.HASH.work`` (``default_work_dir``: the same NAME.HASH
as the default inclusion database, so ``prove --resume`` with the same
--out finds it), never inside the bundle nor beside it in the folder that
holds it (a folder of bundles gets published), holding, all mode 0600::

    leaves.sqlite   the leaf assignment: every leaf's position, amounts,
                    blindings, salt and hash (the inclusion database's
                    ``leaves`` table), written once, then only read
    state.json      what the run is bound to: the snapshot (SHA-256 of
                    header.json and of the accounts as read), the operator
                    key, the previous bundle's hash, --reveal-totals, the
                    header digest; and the totals and root blindings
                    (sum of the blindings) the solvency proofs need
    shards/NNNNNNNN.bin   one file per proven shard (``ShardResult.to_bytes``
                    then its SHA-256), written as each shard completes

``leaves.sqlite`` is complete before ``state.json`` is written; a run killed
before that starts afresh. A shard file is written under a temporary name,
fsynced and renamed, so it is whole or absent; one that does not check is
proven again from the same openings. On resume every shard file is checked
against ``leaves.sqlite`` before it is used (``shardcheck``: its leaf
commitments must open to the stored amounts and blindings, its leaf hashes
and subtree nodes must be this assignment's); a file that does not (another
run's shards) is removed, named in a line, and its shard proven again.
``zksolv prove --resume`` reuses the assignment (same positions, salts and
blindings) and every shard file that checks, and refuses a work area bound
to another snapshot, key, previous bundle or options, naming which. A
published bundle removes its work area.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

import msgspec

from zksolv.errors import InputError
from zksolv.safeio import decode_json, make_private_dirs, read_bounded, write_private

from .inclusion_db import location_name, private_data_folder
from .shards import ShardResult

FORMAT = "zksolv-work"
VERSION = 1
STATE_FILE = "state.json"
LEAVES_FILE = "leaves.sqlite"
SHARDS_DIR = "shards"
MAX_STATE_BYTES = 1 << 20
MAX_SHARD_FILE_BYTES = 1 << 28
_SHARD_NAME = re.compile(r"([0-9]{8})\.bin")


class RunState(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    format: str
    version: int
    epoch: int
    snapshot_header_sha256: str
    snapshot_accounts_sha256: str
    operator: str
    prev_bundle_hash: str | None
    reveal_totals: bool
    header_digest: str
    accounts: int
    totals: list[int]
    root_blindings: list[str]


def default_work_dir(out: Path) -> Path:
    """``DATA_DIR/work/NAME.HASH.work`` for the bundle at ``out`` (see
    ``inclusion_db.location_name``); the folder ``DATA_DIR/work`` is made
    0700."""
    return private_data_folder("work") / f"{location_name(out)}.work"


def exposed_by(path: Path, out: Path) -> bool:
    """True if ``path`` is inside the bundle ``out`` or beside it, directly
    in the folder that holds it: a place that gets published."""
    where, bundle = path.resolve(), out.resolve()
    return (where.is_relative_to(bundle) or where.parent == bundle.parent
            or where == bundle.parent)


def legacy_work_dir(out: Path) -> Path:
    """Where earlier versions kept the work area: ``OUT.work``, beside the
    bundle, in a folder that gets published."""
    return out.parent / f"{out.name}.work"


def adopt_legacy(out: Path, work: WorkArea, *, resume: bool) -> bool:
    """Move an interrupted run's work area from where an earlier version
    kept it (``legacy_work_dir``) to ``work``, so that nothing private stays
    beside the bundle; only with ``resume`` (a plain run refuses, naming
    it). True if one was moved."""
    old = legacy_work_dir(out)
    if work.exists() or old.is_symlink() or not old.is_dir():
        return False
    if not resume:
        raise InputError(str(old), "an interrupted run of this epoch (an earlier zksolv "
                         "version) left its work area here, beside the bundle: continue it "
                         "with --resume (it moves to the private data directory), or remove "
                         "it to start afresh")
    WorkArea(old).check_private()
    try:
        make_private_dirs(work.path.parent)
        shutil.move(old, work.path)
    except OSError as exc:
        raise InputError(str(old), f"cannot move the work area to {work.path}: "
                         f"{exc.strerror or exc}") from exc
    return True


class ResumeRefused(InputError):
    """The work area belongs to another run (snapshot, key, previous bundle
    or options changed)."""


class WorkArea:
    def __init__(self, path: Path) -> None:
        self.path = path

    # --- lifecycle -----------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists() or self.path.is_symlink()

    def create(self) -> None:
        """A new, empty, private folder (refuses an existing one)."""
        try:
            make_private_dirs(self.path.parent)
            os.mkdir(self.path, 0o700)
            os.chmod(self.path, 0o700)
            os.mkdir(self.path / SHARDS_DIR, 0o700)
        except FileExistsError as exc:
            raise InputError(str(self.path), "work area exists") from exc
        except OSError as exc:
            raise InputError(str(self.path), f"cannot create the work area: "
                             f"{exc.strerror or exc}") from exc

    def check_private(self) -> None:
        """A work area we would resume from: a real folder of ours, 0700."""
        try:
            st = os.lstat(self.path)
        except OSError as exc:
            raise InputError(str(self.path), f"cannot read the work area: "
                             f"{exc.strerror or exc}") from exc
        if not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) & 0o077:
            raise InputError(str(self.path), "the work area must be a folder of mode 0700")
        if st.st_uid != os.getuid():
            raise InputError(str(self.path), "the work area belongs to another user")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def reset(self) -> None:
        """Empty a work area whose assignment never completed."""
        self.remove()
        self.create()

    # --- the leaf assignment -------------------------------------------------

    @property
    def leaves_path(self) -> Path:
        return self.path / LEAVES_FILE

    def new_leaves_path(self) -> Path:
        """A fresh private file to build the assignment in (renamed by
        ``commit_leaves``)."""
        fd, name = tempfile.mkstemp(prefix=f".{LEAVES_FILE}.", suffix=".tmp", dir=self.path)
        os.fchmod(fd, 0o600)
        os.close(fd)
        return Path(name)

    def commit_leaves(self, built: Path, state: RunState) -> None:
        with open(built, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(built, self.leaves_path)
        write_private(self.path / STATE_FILE, msgspec.json.encode(state))

    def state(self) -> RunState | None:
        """The recorded state, or None if the assignment never completed."""
        p = self.path / STATE_FILE
        if not p.exists() or not self.leaves_path.is_file():
            return None
        raw, _ = read_bounded(p, MAX_STATE_BYTES, what="work-area state")

        def fail(reason: str) -> InputError:
            return InputError(str(p), f"not a zksolv work-area state: {reason}")

        st = decode_json(raw, RunState, fail=fail)
        if st.format != FORMAT or st.version != VERSION:
            raise fail(f"format {st.format!r} version {st.version}")
        return st

    # --- shards --------------------------------------------------------------

    def _shard_path(self, shard: int) -> Path:
        return self.path / SHARDS_DIR / f"{shard:08d}.bin"

    def save_shard(self, res: ShardResult) -> bytes:
        """Persist a (checked) result; returns the file's digest (its last 32
        bytes, the SHA-256 of the rest)."""
        body = res.to_bytes()
        digest = hashlib.sha256(body).digest()
        write_private(self._shard_path(res.shard), body + digest)
        return digest

    def read_shard(self, shard: int, *, node_size: int, leaves: int,
                   proof_size: int, margin_size: int = 0) -> tuple[ShardResult, bytes] | None:
        """The persisted result of ``shard`` and its file's digest, or None
        if absent or damaged. Whether it is this run's result is the
        caller's check (``shardcheck.check_kept_shards``)."""
        p = self._shard_path(shard)
        try:
            raw, _ = read_bounded(p, MAX_SHARD_FILE_BYTES, what="shard result")
        except InputError:
            return None
        body, check = raw[:-32], raw[-32:]
        if len(raw) < 32 or hashlib.sha256(body).digest() != check:
            return None
        try:
            res = ShardResult.from_bytes(body, shard=shard, node_size=node_size, leaves=leaves,
                                         proof_size=proof_size, margin_size=margin_size)
        except ValueError:
            return None
        return res, check

    def load_shard(self, shard: int, *, node_size: int, leaves: int,
                   proof_size: int, margin_size: int = 0) -> ShardResult | None:
        """The persisted result of ``shard``, or None if absent or damaged."""
        got = self.read_shard(shard, node_size=node_size, leaves=leaves, proof_size=proof_size,
                              margin_size=margin_size)
        return None if got is None else got[0]

    def discard_shard(self, shard: int) -> None:
        """Remove a shard file that is not this run's (it is proven again)."""
        self._shard_path(shard).unlink(missing_ok=True)

    def proven_shards(self, shards: int) -> list[int]:
        """Shard numbers with a file present (in range), sorted."""
        out = []
        try:
            names = os.listdir(self.path / SHARDS_DIR)
        except OSError:
            return []
        for name in names:
            m = _SHARD_NAME.fullmatch(name)
            if m and int(m.group(1)) < shards:
                out.append(int(m.group(1)))
        return sorted(out)


def file_sha256(path: Path, limit: int, what: str) -> str:
    raw, _ = read_bounded(path, limit, what=what)
    return hashlib.sha256(raw).hexdigest()


def compare(recorded: RunState, current: RunState, where: Path) -> None:
    """Refuse to resume ``recorded`` as ``current``, naming what changed."""
    reasons = []
    if (recorded.snapshot_header_sha256 != current.snapshot_header_sha256
            or recorded.snapshot_accounts_sha256 != current.snapshot_accounts_sha256
            or recorded.epoch != current.epoch or recorded.accounts != current.accounts):
        reasons.append("the snapshot changed (header.json or accounts.csv differ from the "
                       "interrupted run's)")
    if recorded.operator != current.operator:
        reasons.append(f"the operator key changed (the interrupted run used operator "
                       f"{recorded.operator}, this key is {current.operator})")
    if recorded.prev_bundle_hash != current.prev_bundle_hash:
        reasons.append(f"the previous bundle changed (hash {recorded.prev_bundle_hash}, "
                       f"now {current.prev_bundle_hash})")
    if recorded.reveal_totals != current.reveal_totals:
        reasons.append("--reveal-totals differs from the interrupted run")
    if not reasons and recorded.header_digest != current.header_digest:
        reasons.append("the epoch header differs from the interrupted run's")
    if reasons:
        raise ResumeRefused(str(where), "cannot resume: " + "; ".join(reasons)
                            + ". Restore them, or remove the work area to start afresh")
