"""The backup repository on disk, and the pure decisions about it (which backups a restore
needs, what a prune may remove).

Layout under ``WEDSYNC_BACKUP_DIR`` (default ``<data dir>/backups``), directories 0700 and
files 0600:

    wal/                      WAL segments archived by the server (basic_archive)
    base/<id>/                a physical backup (pg_basebackup, plain format, with manifest)
    base/<id>.dump            a logical export (pg_dump -Fc) of a managed database
    meta/<id>.json            what is known of a backup: kind, parent, times, LSNs, status,
                              the content fingerprint

A backup is ``complete`` only once its metadata says so; it is written as ``running`` (with
the writing process's pid) before anything is copied, so one interrupted by a crash or a
``kill -9`` is listed as ``interrupted``, never as good.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from wedsync_db.embedded import pid_alive
from wedsync_db.errors import BackupError

Kind = Literal["full", "incremental", "logical"]
Status = Literal["running", "complete", "failed", "interrupted"]

DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class TableFingerprint:
    """Row count and an order-independent 64-bit hash sum of one table's rows."""

    table: str
    rows: int
    hash_sum: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class BackupMeta:
    """What the repository knows about one backup."""

    id: str
    kind: Kind
    status: Status
    started_at: datetime
    database: str
    server_version: int
    parent: str | None = None
    finished_at: datetime | None = None
    start_lsn: str | None = None
    end_lsn: str | None = None
    start_wal: str | None = None
    timeline: int | None = None
    # the restore point created right after the fingerprint, and the fingerprint itself
    restore_point: str | None = None
    fingerprint: tuple[TableFingerprint, ...] = ()
    size_bytes: int | None = None
    pid: int | None = None
    actor: str | None = None
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def good(self) -> bool:
        """Complete, so a restore may start from it."""
        return self.status == "complete"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        data["fingerprint"] = [f.to_dict() for f in self.fingerprint]
        data["details"] = dict(self.details)
        data["good"] = self.good
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackupMeta:
        """Read back what :meth:`to_dict` wrote."""
        values = dict(data)
        values.pop("good", None)
        for key in ("started_at", "finished_at"):
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key])
        values["fingerprint"] = tuple(TableFingerprint(**f) for f in values.get("fingerprint", ()))
        values["details"] = dict(values.get("details") or {})
        return cls(**values)


class RepositoryBusy(BackupError):
    """Another backup command holds the repository."""


def new_backup_id(now: datetime) -> str:
    """Sortable and unique: the UTC start time and a random suffix."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class Repository:
    """The files of one backup repository."""

    def __init__(self, root: Path, *, owner: tuple[int, int] | None = None) -> None:
        self.root = root.expanduser().absolute()
        # the server's OS account when it is not ours (the embedded server run by root):
        # it writes the WAL archive and reads restored data directories
        self.owner = owner

    @property
    def wal_dir(self) -> Path:
        return self.root / "wal"

    @property
    def base_dir(self) -> Path:
        return self.root / "base"

    @property
    def meta_dir(self) -> Path:
        return self.root / "meta"

    def ensure(self) -> None:
        """Create the layout with private permissions (the WAL archive owned by the server)."""
        for directory in (self.root, self.base_dir, self.meta_dir):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(DIR_MODE)
        if not self.wal_dir.exists():
            self.wal_dir.mkdir()
            self.wal_dir.chmod(DIR_MODE)
        if self.owner is not None:
            uid, gid = self.owner
            os.chown(self.wal_dir, uid, gid)
        if self.wal_dir.stat().st_uid != os.geteuid():
            # the server account must reach the archive through the repository root
            self.root.chmod(0o711)

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool, wait: float = 60.0) -> Iterator[None]:
        """Taking, verifying and restoring backups share the repository; a prune (which
        deletes) has it alone. Waits up to ``wait`` seconds, then says who holds it."""
        self.ensure()
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, mode)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        what = "any other backup command" if exclusive else "a prune"
                        raise RepositoryBusy(
                            f"the backup repository {self.root} is in use by {what}: waited "
                            f"{wait:g}s; try again when it has finished"
                        ) from None
                    time.sleep(0.2)
            yield
        finally:
            os.close(fd)  # releases the lock

    def backup_path(self, meta: BackupMeta) -> Path:
        if meta.kind == "logical":
            return self.base_dir / f"{meta.id}.dump"
        return self.base_dir / meta.id

    def save(self, meta: BackupMeta) -> None:
        """Write the metadata atomically (a crash leaves the previous version)."""
        path = self.meta_dir / f"{meta.id}.json"
        tmp = path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w") as fh:
            json.dump(meta.to_dict(), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def load(self, backup_id: str) -> BackupMeta:
        path = self.meta_dir / f"{backup_id}.json"
        try:
            meta = BackupMeta.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            known = ", ".join(m.id for m in self.all()) or "none"
            raise KeyError(f"no backup {backup_id!r} in {self.root} (known: {known})") from None
        return _with_liveness(meta)

    def all(self) -> list[BackupMeta]:
        """Every backup, oldest first; a ``running`` one whose process is gone is
        ``interrupted``."""
        if not self.meta_dir.exists():
            return []
        out = []
        for path in sorted(self.meta_dir.glob("*.json")):
            try:
                out.append(_with_liveness(BackupMeta.from_dict(json.loads(path.read_text()))))
            except (OSError, ValueError, TypeError, KeyError):
                continue
        return sorted(out, key=lambda m: m.started_at)

    def remove(self, meta: BackupMeta) -> None:
        import shutil

        path = self.backup_path(meta)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        (self.meta_dir / f"{meta.id}.json").unlink(missing_ok=True)

    def wal_segments(self) -> list[str]:
        """Archived WAL segment names (history and partial files left out), sorted."""
        if not self.wal_dir.exists():
            return []
        return sorted(p.name for p in self.wal_dir.iterdir() if _is_segment(p.name))


def _with_liveness(meta: BackupMeta) -> BackupMeta:
    if meta.status == "running" and (meta.pid is None or not pid_alive(meta.pid)):
        return replace(meta, status="interrupted")
    return meta


def _is_segment(name: str) -> bool:
    return len(name) == 24 and all(c in "0123456789ABCDEF" for c in name)


# --- pure decisions ---------------------------------------------------------------------------
def chain(backups: Sequence[BackupMeta], target: BackupMeta) -> list[BackupMeta]:
    """The full backup and the incrementals a restore of ``target`` combines, oldest first."""
    by_id = {b.id: b for b in backups}
    out = [target]
    while out[0].kind == "incremental":
        parent = by_id.get(out[0].parent or "")
        if parent is None or not parent.good:
            raise ValueError(
                f"backup {target.id} needs {out[0].parent}, which is missing or not complete"
            )
        out.insert(0, parent)
    return out


def backup_for(backups: Sequence[BackupMeta], to: datetime | None) -> BackupMeta:
    """The newest complete physical backup that finished at or before ``to`` (None: the
    newest), whose chain is complete."""
    good = [b for b in backups if b.good and b.kind != "logical" and b.finished_at is not None]
    if to is not None:
        good = [b for b in good if b.finished_at is not None and b.finished_at <= to]
    for candidate in sorted(good, key=lambda b: b.finished_at or b.started_at, reverse=True):
        try:
            chain(backups, candidate)
        except ValueError:
            continue
        return candidate
    when = f" that finished by {to.isoformat()}" if to is not None else ""
    raise LookupError(f"no complete backup{when} to restore from")


@dataclass(frozen=True)
class PrunePlan:
    """What a prune removes and keeps, and the oldest WAL segment still needed."""

    remove: tuple[BackupMeta, ...]
    keep: tuple[BackupMeta, ...]
    oldest_wal_needed: str | None
    wal_remove: tuple[str, ...]


def prune_plan(
    backups: Sequence[BackupMeta],
    segments: Iterable[str],
    *,
    now: datetime,
    retention_days: int,
) -> PrunePlan:
    """Keep every point in time of the last ``retention_days`` restorable: the backups that
    finished within the window, the newest full one (with its chain) from before the window
    that a restore to the window's start begins from, and every WAL segment from that backup's
    start on. Interrupted and failed backups go; logical exports follow the same window."""
    cutoff = now - timedelta(days=retention_days)
    physical = [b for b in backups if b.kind != "logical"]
    good = [b for b in physical if b.good]
    keep: set[str] = set()
    recent = [b for b in good if (b.finished_at or b.started_at) >= cutoff]
    older = [b for b in good if (b.finished_at or b.started_at) < cutoff]
    anchor = max(older, key=lambda b: b.finished_at or b.started_at, default=None)
    for b in [*recent, *([anchor] if anchor else [])]:
        try:
            keep.update(x.id for x in chain(backups, b))
        except ValueError:
            keep.add(b.id)
    # a running backup is never removed
    keep.update(b.id for b in backups if b.status == "running")
    for b in backups:
        if b.kind == "logical" and b.good and (b.finished_at or b.started_at) >= cutoff:
            keep.add(b.id)
    kept = [b for b in backups if b.id in keep]
    removed = [b for b in backups if b.id not in keep]
    starts = [b.start_wal for b in kept if b.kind != "logical" and b.start_wal]
    oldest = min(starts) if starts else None
    wal_remove = tuple(s for s in segments if oldest is not None and s[8:] < oldest[8:])
    return PrunePlan(tuple(removed), tuple(kept), oldest, wal_remove)
