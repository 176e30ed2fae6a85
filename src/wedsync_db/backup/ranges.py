"""Fingerprints by block range, and which ranges a later backup may take over unread (pure).

A table's fingerprint is a count and a sum of row hashes, so it is also the sum of the same
over ranges of its blocks. A backup records each range's count and sum with the WAL position
read just before its snapshot (the *layout*); the next backup reads only the ranges with a
block the server has written to since, as PostgreSQL's WAL summaries (``summarize_wal``, 17
and later) list them, and takes the others' sums over.

Why an unwritten range holds the same rows in both snapshots: its pages are byte for byte the
pages of the earlier moment (every change to a page of a permanent table is in the WAL, hint
bits aside, which change no row's visibility), so every row in them was written by a
transaction that had its id before that moment. If no transaction with an id was running as
the earlier snapshot was taken (*quiet*: none in its list, none running right after it, and
nothing completed in between; a snapshot's own list leaves out the running transactions above
its newest completed one), each of those had committed or aborted by then, for good: each row
is visible in the later snapshot exactly when it was in the earlier one. A layout is recorded
only for a quiet snapshot.

Which ranges stand is decided per table by a key over everything besides its pages that
decides its rows' hashes: its storage (a rewrite, a TRUNCATE or VACUUM FULL gives it new
files), its columns (names, types, type modifiers, collations, the value a column added
without a rewrite reads as) and how each is hashed. An enum label renamed changes the text
of a value without a write to the table: when the labels differ, nothing is taken over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# blocks per range: 128 MiB of 8 KiB pages (a table smaller than that is one range)
RANGE_BLOCKS = 16384
MOD = 2**64


def lsn_value(lsn: str) -> int:
    """A pg_lsn's text ('16/B374D848') as a number."""
    high, _, low = lsn.partition("/")
    if not low:
        raise ValueError(f"not an LSN: {lsn!r}")
    return (int(high, 16) << 32) + int(low, 16)


def sql_mod(total: int) -> int:
    """``total % 2^64`` as PostgreSQL's numeric computes it (the sign of the dividend)."""
    rest = abs(total) % MOD
    return -rest if total < 0 else rest


def snapshot_quiet(snapshot: str) -> bool:
    """Whether a pg_snapshot's text ('xmin:xmax:xip,…') lists no transaction in progress (not
    enough for quiet on its own: see the module docstring)."""
    parts = snapshot.split(":")
    return len(parts) == 3 and parts[2] == ""


def block_ranges(blocks: int, per_range: int = RANGE_BLOCKS) -> list[tuple[int, int | None]]:
    """The ranges [start, end) a table of ``blocks`` blocks is read in; the last is open (a
    row the snapshot sees cannot be past the size read after it, but an open end costs
    nothing)."""
    count = max(1, -(-blocks // per_range))
    return [(i * per_range, (i + 1) * per_range if i < count - 1 else None) for i in range(count)]


@dataclass(frozen=True)
class Touched:
    """The blocks of one relation written in an interval of the WAL: by range index, and the
    smallest length it was cut to (every block from there on counts as written)."""

    ranges: frozenset[int] = frozenset()
    limit: int | None = None

    def hits(self, start: int, end: int | None, per_range: int) -> bool:
        """Whether a block of [start, end) was written."""
        if self.limit is not None and (end is None or self.limit < end):
            return True
        first = start // per_range
        if end is None:
            return any(i >= first for i in self.ranges)
        last = (end - 1) // per_range
        return any(first <= i <= last for i in self.ranges)


def touched_by_relation(rows: Iterable[Sequence[Any]]) -> dict[int, Touched]:
    """Fold ``(relfilenode, range index, limit block or None)`` rows into one Touched each."""
    ranges: dict[int, set[int]] = {}
    limits: dict[int, int] = {}
    for node, index, limit in rows:
        ranges.setdefault(int(node), set()).add(int(index))
        if limit is not None:
            limits[int(node)] = min(int(limit), limits.get(int(node), int(limit)))
    return {n: Touched(frozenset(r), limits.get(n)) for n, r in ranges.items()}


def summaries_covering(
    files: Sequence[tuple[int, int]], start: int, end: int
) -> list[tuple[int, int]] | None:
    """The WAL summary files ``(start, end)`` (one timeline) that together cover [start, end),
    or None when some of it is not summarized (yet, or any longer)."""
    chosen: list[tuple[int, int]] = []
    reached = start
    for lo, hi in sorted(files):
        if hi <= reached:
            continue
        if lo > reached:
            return None
        chosen.append((lo, hi))
        reached = hi
        if reached >= end:
            return chosen
    return chosen if reached >= end and chosen else None


@dataclass(frozen=True)
class RangeSum:
    """Count and raw (unreduced) hash sum of the rows in blocks [start, end)."""

    start: int
    end: int | None
    rows: int
    total: int


@dataclass(frozen=True)
class TableLayout:
    key: str
    ranges: tuple[RangeSum, ...]


@dataclass(frozen=True)
class Position:
    """Where a snapshot stands: the WAL position read just before it, on which timeline of
    which server and database."""

    lsn: str
    timeline: int
    system: str
    database_oid: int


@dataclass(frozen=True)
class Layout:
    """A backup's fingerprint by range, and the position its snapshot was taken at."""

    position: Position
    method: str
    per_range: int
    # a digest of every enum label then
    labels: str
    tables: Mapping[str, TableLayout] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lsn": self.position.lsn,
            "timeline": self.position.timeline,
            "system": self.position.system,
            "database_oid": self.position.database_oid,
            "method": self.method,
            "range_blocks": self.per_range,
            "enum_labels": self.labels,
            "tables": {
                name: {
                    "key": t.key,
                    "ranges": [[r.start, r.end, r.rows, str(r.total)] for r in t.ranges],
                }
                for name, t in self.tables.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layout:
        return cls(
            position=Position(
                str(data["lsn"]),
                int(data["timeline"]),
                str(data["system"]),
                int(data["database_oid"]),
            ),
            method=str(data["method"]),
            per_range=int(data["range_blocks"]),
            labels=str(data["enum_labels"]),
            tables={
                str(name): TableLayout(
                    str(t["key"]),
                    tuple(
                        RangeSum(int(a), None if b is None else int(b), int(n), int(s))
                        for a, b, n, s in t["ranges"]
                    ),
                )
                for name, t in dict(data["tables"]).items()
            },
        )


def table_key(*parts: object) -> str:
    """A digest of what decides a table's rows' hashes besides its pages."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def reusable(
    previous: TableLayout | None,
    key: str,
    start: int,
    end: int | None,
    touched: Touched | None,
    per_range: int,
) -> RangeSum | None:
    """The previous backup's sum for range [start, end) of a table, when it still stands."""
    if previous is None or previous.key != key:
        return None
    # ranges are laid out by block_ranges: range i starts at block i * per_range
    index = start // per_range
    if index >= len(previous.ranges):
        return None
    r = previous.ranges[index]
    if (r.start, r.end) != (start, end):
        return None
    if touched is not None and touched.hits(start, end, per_range):
        return None
    return r
