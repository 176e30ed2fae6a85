"""Migration files on disk and the pure comparison of files with applied history."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from wedsync_db.errors import MigrationFileError
from wedsync_db.jsonable import JsonRecord, json_as, tenths
from wedsync_db.migrate.lint.parsed import FILE_PATTERN, ParsedFile, decode, parse_file

BUILTIN = "builtin"


@dataclass(frozen=True)
class MigrationFile:
    """One versioned SQL file."""

    version: str
    name: str
    directory: str
    path: str
    sql: str
    checksum: str

    @property
    def filename(self) -> str:
        return f"{self.version}_{self.name}.sql"

    @property
    def number(self) -> int:
        return int(self.version)

    @cached_property
    def parsed(self) -> ParsedFile:
        """Directives and statements, parsed on first use and shared by plan, lint and apply."""
        return parse_file(self.sql, name=self.path)


@dataclass(frozen=True)
class AppliedMigration(JsonRecord):
    """A row of ops.schema_migrations."""

    version: str
    name: str
    directory: str
    checksum: str
    applied_at: datetime
    applied_by: str
    duration_ms: float = field(metadata=json_as(tenths))
    mode: str


DriftKind = Literal["changed", "missing", "out-of-order"]


@dataclass(frozen=True)
class Drift(JsonRecord):
    """A disagreement between history and files that stops `apply`."""

    kind: DriftKind
    version: str
    name: str
    message: str


def checksum(sql: str) -> str:
    """sha256 of the file's bytes (UTF-8), hex."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def builtin_directory() -> Traversable:
    """The migrations shipped inside the package."""
    return resources.files("wedsync_db.migrations")


def _read_dir(directory: Traversable, label: str) -> list[MigrationFile]:
    files: list[MigrationFile] = []
    if not directory.is_dir():
        raise MigrationFileError(
            f"migration directory {label} does not exist or is not a directory"
        )
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        match = FILE_PATTERN.match(entry.name)
        if not match:
            raise MigrationFileError(
                f"{label}/{entry.name}: migration files must be named NNNN_name.sql "
                "(digits, underscore, lower-case name)"
            )
        text = decode(entry.read_bytes(), name=f"{label}/{entry.name}")
        files.append(
            MigrationFile(
                version=match.group(1),
                name=match.group(2),
                directory=label,
                path=f"{label}/{entry.name}",
                sql=text,
                checksum=checksum(text),
            )
        )
    return files


def discover(
    extra_dirs: Sequence[Path] = (), *, include_builtin: bool = True
) -> list[MigrationFile]:
    """All migration files ordered by version; versions must be unique across directories."""
    found: list[MigrationFile] = []
    if include_builtin:
        found += _read_dir(builtin_directory(), BUILTIN)
    for d in extra_dirs:
        found += _read_dir(Path(d), str(d))
    by_version: dict[int, MigrationFile] = {}
    for f in found:
        other = by_version.get(f.number)
        if other is not None:
            raise MigrationFileError(
                f"version {f.version} is used twice: {other.path} and {f.path}; "
                "renumber one of them (`wedsync-db migrate new` picks the next free number)"
            )
        by_version[f.number] = f
    return [by_version[n] for n in sorted(by_version)]


def detect_drift(
    files: Iterable[MigrationFile], applied: Iterable[AppliedMigration]
) -> list[Drift]:
    """Edited or missing applied files, and pending files older than the newest applied one."""
    by_version = {f.number: f for f in files}
    applied_list = sorted(applied, key=lambda a: int(a.version))
    drift: list[Drift] = []
    applied_numbers = set()
    for a in applied_list:
        n = int(a.version)
        applied_numbers.add(n)
        f = by_version.get(n)
        if f is None:
            drift.append(
                Drift(
                    "missing",
                    a.version,
                    a.name,
                    f"{a.version}_{a.name}.sql was applied on {a.applied_at:%Y-%m-%d} but is no "
                    f"longer in {a.directory}; restore the file (history cannot be rewritten "
                    "by deleting files)",
                )
            )
        elif f.checksum != a.checksum:
            drift.append(
                Drift(
                    "changed",
                    a.version,
                    a.name,
                    f"{f.path} changed after it was applied (sha256 {a.checksum[:12]}… is now "
                    f"{f.checksum[:12]}…); revert the edit and add a new migration, or "
                    f"after review run `wedsync-db migrate repair {a.version} --reason …` "
                    "to record the new checksum",
                )
            )
    newest = max(applied_numbers, default=-1)
    for n, f in sorted(by_version.items()):
        if n not in applied_numbers and n < newest:
            drift.append(
                Drift(
                    "out-of-order",
                    f.version,
                    f.name,
                    f"{f.path} is pending but older than the newest applied migration "
                    f"({newest:04d}); renumber it after the newest applied version",
                )
            )
    return drift


def pending(
    files: Iterable[MigrationFile], applied: Iterable[AppliedMigration]
) -> list[MigrationFile]:
    """Files not yet applied, in version order."""
    done = {int(a.version) for a in applied}
    return sorted((f for f in files if f.number not in done), key=lambda f: f.number)


def next_version(files: Iterable[MigrationFile]) -> str:
    """The next free version number, zero-padded to four digits."""
    return f"{max((f.number for f in files), default=0) + 1:04d}"
