"""Reading an import file (pure, no database): its encoding and dialect, its header as fields,
and its rows as staging records, streamed at constant memory.

A file is read twice: :func:`examine` hashes it and finds an encoding that decodes all of it
(UTF-8 with or without BOM, UTF-16 with a BOM, else Windows-1252), then :func:`staged_chunks`
parses it into CSV text for COPY, chunk by chunk. A problem with one row (too many cells, a
cell too long, a date that is not one) becomes that row's error; a problem with the file (not
text, no header, a required column missing, a duplicate column) refuses the whole file.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from wedsync_db.errors import ImportRefused

if TYPE_CHECKING:
    from _csv import Reader
from wedsync_db.imports.fields import IGNORE, Kind

DateOrder = Literal["dmy", "mdy"]

READ_BLOCK = 1 << 20
SAMPLE_BYTES = 64 * 1024
# the longest cell stored (longer ones are that row's error); the longest one read at all
MAX_CELL_CHARS = 10_000
MAX_FIELD_CHARS = 32 * 1024 * 1024
# how much of a bad value an error keeps
ERROR_VALUE_CHARS = 80
# rows per chunk of COPY text
CHUNK_ROWS = 5_000
DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class FileFacts:
    """What the first pass learnt: the content hash, the size and an encoding that decodes
    the whole file."""

    sha256: str
    size: int
    encoding: str


def examine(binary: IO[bytes]) -> FileFacts:
    """Hash the file and find its encoding in one pass (a second one for Windows-1252);
    ``ImportRefused`` when no supported encoding decodes it. Leaves the file at its start."""
    binary.seek(0)
    head = binary.read(4)
    binary.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
    digest = hashlib.sha256()
    size = 0
    decoder = codecs.getincrementaldecoder(encoding)()
    failed: UnicodeDecodeError | None = None
    while block := binary.read(READ_BLOCK):
        digest.update(block)
        if failed is None:
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                failed = UnicodeDecodeError(
                    exc.encoding, exc.object, exc.start + size, exc.end + size, exc.reason
                )
        size += len(block)
    if failed is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            failed = exc
    if failed is not None:
        if encoding != "utf-8" or not _decodes(binary, "cp1252"):
            binary.seek(0)
            raise ImportRefused(
                f"the file is not text in a supported encoding: byte offset {failed.start} is "
                f"not valid {'UTF-8' if encoding == 'utf-8' else encoding.upper()} "
                "(nor Windows-1252); save it as CSV UTF-8 and import it again"
            )
        encoding = "cp1252"
    binary.seek(0)
    return FileFacts(sha256=digest.hexdigest(), size=size, encoding=encoding)


def _decodes(binary: IO[bytes], encoding: str) -> bool:
    binary.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while block := binary.read(READ_BLOCK):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class Dialect:
    """How the file is written: its delimiter, and whether an Excel ``sep=`` line leads."""

    delimiter: str
    sep_line: bool = False


def sniff(sample: str) -> Dialect:
    """The delimiter of a file from its first line: Excel's ``sep=;`` when present, else the
    candidate (, ; tab |) found most often outside quotes (a comma on a tie)."""
    first = sample.split("\n", 1)[0].rstrip("\r")
    if first.lower().startswith("sep=") and len(first) == 5:
        return Dialect(first[4], sep_line=True)
    unquoted = re.sub(r'"[^"]*"', "", first)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return Dialect(best if counts[best] else ",")


@dataclass(frozen=True)
class ColumnPlan:
    """Which column fills which field: ``sources[i]`` is the column index of ``kind.fields[i]``
    (None: the file has no such column), ``joined`` two columns that make one field."""

    headers: tuple[str, ...]
    sources: tuple[int | None, ...]
    joined: tuple[int, int, int] | None
    mapping: dict[str, str]
    ignored: tuple[str, ...]

    @property
    def present(self) -> list[str]:
        """The fields the file fills (a re-import changes only these)."""
        return [
            f
            for i, f in enumerate(self.fields)
            if self.sources[i] is not None or (self.joined and self.joined[2] == i)
        ]

    fields: tuple[str, ...] = ()


def parse_map(items: Sequence[str]) -> dict[str, str]:
    """``col=field`` items of ``--map`` (col a header, or ``#N`` for the Nth column)."""
    out: dict[str, str] = {}
    for item in items:
        column, sep, target = item.rpartition("=")
        if not sep or not column.strip() or not target.strip():
            raise ImportRefused(f"--map {item!r}: expected COLUMN=FIELD (or COLUMN=ignore)")
        out[column.strip()] = target.strip()
    return out


def plan_columns(kind: Kind, headers: Sequence[str], explicit: Mapping[str, str]) -> ColumnPlan:
    """The fields the header's columns fill: the explicit map first, then the aliases.
    ``ImportRefused`` names a required column missing, a field filled twice, or a map entry
    that names no column or no field."""
    names = tuple(h.strip() for h in headers)
    wanted: dict[int, str] = {}
    by_name = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
    allowed = set(kind.fields) | {IGNORE}
    for column, target in explicit.items():
        if target not in allowed:
            raise ImportRefused(
                f"--map {column}={target}: {target!r} is not a field of {kind.name} "
                f"(fields: {', '.join(kind.fields)}, or ignore)"
            )
        if column.startswith("#") and column[1:].isdigit():
            index = int(column[1:]) - 1
            if not 0 <= index < len(names):
                raise ImportRefused(f"--map {column}: the file has {len(names)} columns")
        elif column.lower() in by_name:
            index = by_name[column.lower()]
        else:
            raise ImportRefused(
                f"--map {column}={target}: the header has no column {column!r} "
                f"(it has: {', '.join(repr(n) for n in names)})"
            )
        wanted[index] = target
    explicit_fields = set(wanted.values())
    for index, name in enumerate(names):
        if index in wanted:
            continue
        found = kind.field_for(name) if name else None
        if found is not None and found not in explicit_fields:
            wanted[index] = found
    taken: dict[str, int] = {}
    for index in sorted(wanted):
        target = wanted[index]
        if target == IGNORE:
            continue
        if target in taken:
            first = taken[target]
            raise ImportRefused(
                f"columns {first + 1} ({names[first]!r}) and {index + 1} ({names[index]!r}) "
                f"both fill {target.lstrip('_')}: rename one, or leave one out with "
                f"--map '#{index + 1}=ignore'"
            )
        taken[target] = index
    joined: tuple[int, int, int] | None = None
    if kind.joined is not None:
        (first_part, second_part), into = kind.joined
        if into not in taken and first_part in taken:
            last = taken.get(second_part, taken[first_part])
            joined = (taken[first_part], last, kind.fields.index(into))
    if kind.required not in taken and joined is None:
        raise ImportRefused(
            f"no column for {kind.required} (the header has: "
            f"{', '.join(repr(n) for n in names) or 'nothing'}); name one with "
            f"--map 'COLUMN={kind.required}'"
        )
    sources = tuple(taken.get(f) for f in kind.fields)
    used = set(taken.values())
    mapping = {
        names[i] or f"#{i + 1}": wanted[i].lstrip("_")
        for i in sorted(wanted)
        if i in used or wanted[i] == IGNORE
    }
    if joined is not None:
        mapping[names[joined[0]]] = kind.fields[joined[2]]
        if joined[1] != joined[0]:
            mapping[names[joined[1]]] = kind.fields[joined[2]]
    ignored = tuple(
        names[i] or f"#{i + 1}" for i in range(len(names)) if i not in used and (i not in wanted)
    )
    return ColumnPlan(names, sources, joined, mapping, ignored, fields=kind.fields)


# --- dates ----------------------------------------------------------------------------------------
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\s*(?:[ap]\.?m\.?)?)?"
_NUMERIC = re.compile(r"(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})" + _TIME, re.I)
_WEEKDAY = r"(?:[a-z]+,?\s+)?"
_DAY_MONTH = re.compile(
    _WEEKDAY + r"(\d{1,2})(?:st|nd|rd|th)?[\s\-]+([a-z]+)\.?,?[\s\-]+(\d{2,4})" + _TIME, re.I
)
_MONTH_DAY = re.compile(
    _WEEKDAY + r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{2,4})" + _TIME, re.I
)
# Excel's day numbers (1900 date system) between 1954 and 2119
_EXCEL_DAYS = range(20000, 80000)
DATE_HINT = "use YYYY-MM-DD, DD/MM/YYYY or 12 June 2027"


def _year(text: str) -> int:
    year = int(text)
    if len(text) <= 2:
        year += 2000 if year < 70 else 1900
    return year


def parse_date(text: str, order: DateOrder, zone: ZoneInfo) -> date:
    """A date as a CRM export writes it; a datetime with an offset is taken in ``zone``, a
    plain one as local time there. ``ValueError`` says what is wrong."""
    value = text.strip()
    if len(value) == 10 and value[4] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    if len(value) > 10 and value[4] == "-" and value[10] in "T ":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment.astimezone(zone).date() if moment.tzinfo else moment.date()
    if value.isdigit() and int(value) in _EXCEL_DAYS:
        return date(1899, 12, 30) + timedelta(days=int(value))
    if m := _NUMERIC.fullmatch(value):
        a, b, c = m.groups()
        if len(a) == 4:
            year, month, day = int(a), int(b), int(c)
        elif len(c) in (2, 4):
            first, second, year = int(a), int(b), _year(c)
            if first > 12 or (order == "dmy" and second <= 12):
                day, month = first, second
            else:
                month, day = first, second
        else:
            raise ValueError(f"not a date ({DATE_HINT})")
        return _checked(year, month, day)
    for pattern, day_first in ((_DAY_MONTH, True), (_MONTH_DAY, False)):
        if m := pattern.fullmatch(value):
            x, y, z = m.groups()
            day_text, month_name = (x, y) if day_first else (y, x)
            named = _MONTHS.get(month_name.lower())
            if named is None:
                raise ValueError(f"{month_name!r} is not a month ({DATE_HINT})")
            return _checked(_year(z), named, int(day_text))
    raise ValueError(f"not a date ({DATE_HINT})")


def _checked(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"not a date: {exc}") from None


def date_order_for(timezone: str) -> DateOrder:
    """Month first where the calendar writes it so (the United States and its neighbours by
    timezone), else day first."""
    if timezone.startswith(("America/", "US/", "Canada/")) and not timezone.startswith(
        ("America/Sao_Paulo", "America/Argentina", "America/Mexico_City", "America/Bogota")
    ):
        return "mdy"
    return "dmy"


# --- rows -----------------------------------------------------------------------------------------
@dataclass
class ReadStats:
    """Counters kept while the rows stream (read by a progress display)."""

    rows: int = 0
    problems: int = 0
    lines: int = 0


@dataclass(frozen=True)
class ReadOptions:
    """How the cells are read: the date order and the timezone of datetimes."""

    date_order: DateOrder = "dmy"
    timezone: str = "Europe/London"


@dataclass
class OpenedFile:
    """A file ready to stream: its facts, dialect, header plan and a text reader positioned
    after the header."""

    facts: FileFacts
    dialect: Dialect
    kind: Kind
    plan: ColumnPlan
    records: Reader
    binary: IO[bytes]
    stats: ReadStats = field(default_factory=ReadStats)
    header_lines: int = 1


def _without_nul(lines: Iterable[str]) -> Iterator[str]:
    # PostgreSQL text cannot hold NUL; some exports pad with them
    for line in lines:
        yield line.replace("\x00", "") if "\x00" in line else line


def open_file(
    binary: IO[bytes], kind: Kind, explicit: Mapping[str, str], facts: FileFacts | None = None
) -> OpenedFile:
    """Examine the file (unless ``facts`` are known), sniff its dialect and plan its columns
    from the header; ``ImportRefused`` for a file that cannot be imported at all."""
    facts = facts or examine(binary)
    binary.seek(0)
    text = io.TextIOWrapper(binary, encoding=facts.encoding, newline="")
    sample = text.read(SAMPLE_BYTES)
    text.seek(0)
    dialect = sniff(sample)
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)
    lines = _without_nul(text)
    header_lines = 0
    if dialect.sep_line:
        next(lines, None)
        header_lines = 1
    records = csv.reader(lines, delimiter=dialect.delimiter, quotechar='"', doublequote=True)
    try:
        header = next(records, None)
    except csv.Error as exc:
        raise ImportRefused(f"the header is not CSV: {exc}") from None
    if header is None or not any(h.strip() for h in header):
        raise ImportRefused("the file is empty: a header line naming the columns comes first")
    plan = plan_columns(kind, header, explicit)
    return OpenedFile(
        facts, dialect, kind, plan, records, binary, header_lines=header_lines + records.line_num
    )


def _short(value: str) -> str:
    return value if len(value) <= ERROR_VALUE_CHARS else value[: ERROR_VALUE_CHARS - 1] + "…"


def staged_chunks(opened: OpenedFile, options: ReadOptions) -> Iterator[str]:
    """The file's rows as CSV text for COPY into the staging table (columns: line, bad_field,
    bad_value, bad_reason, then the kind's fields), ``CHUNK_ROWS`` rows a chunk."""
    plan, stats = opened.plan, opened.stats
    records = opened.records
    width = len(plan.headers)
    sources = plan.sources
    dates = [i for i, f in enumerate(plan.fields) if f in opened.kind.dates]
    empty = (None,) * len(plan.fields)
    joined = plan.joined
    zone = ZoneInfo(options.timezone)
    order = options.date_order
    out = io.StringIO()
    write = csv.writer(out, lineterminator="\n").writerow
    offset = opened.header_lines - records.line_num
    previous = records.line_num
    in_chunk = 0
    while True:
        try:
            cells = next(records, None)
        except csv.Error as exc:
            raise ImportRefused(f"line {previous + 1 + offset}: {exc}") from None
        if cells is None:
            break
        line = previous + 1 + offset
        previous = records.line_num
        n = len(cells)
        if n != width:
            if n == 0 or (n == 1 and not cells[0].strip()):
                continue  # a blank line
            if n > width:
                extra = cells[width:]
                if any(c.strip() for c in extra):
                    stats.rows += 1
                    stats.problems += 1
                    write(
                        (
                            line,
                            "*",
                            _short(opened.dialect.delimiter.join(extra)),
                            f"{n} cells where the header has {width}",
                            *empty,
                        )
                    )
                    in_chunk += 1
                    continue
                cells = cells[:width]
            else:
                cells = cells + [""] * (width - n)  # trailing empty cells left out
        stats.rows += 1
        if max(map(len, cells)) > MAX_CELL_CHARS:
            index = max(range(width), key=lambda i: len(cells[i]))
            stats.problems += 1
            write(
                (
                    line,
                    plan.headers[index] or f"#{index + 1}",
                    _short(cells[index]),
                    f"{len(cells[index]):,} characters; at most {MAX_CELL_CHARS:,}",
                    *empty,
                )
            )
            in_chunk += 1
            continue
        values: list[str | None] = [
            (cells[i].strip() or None) if i is not None else None for i in sources
        ]
        if joined is not None:
            first, last, into = joined
            parts = [cells[first].strip()]
            if last != first:
                parts.append(cells[last].strip())
            values[into] = " ".join(p for p in parts if p) or None
        bad: tuple[str, str, str] | tuple[None, None, None] = (None, None, None)
        for i in dates:
            raw = values[i]
            if raw is None:
                continue
            try:
                values[i] = parse_date(raw, order, zone).isoformat()
            except ValueError as exc:
                bad = (plan.fields[i], _short(raw), str(exc))
                values[i] = None
                stats.problems += 1
        write((line, *bad, *values))
        in_chunk += 1
        if in_chunk >= CHUNK_ROWS:
            stats.lines = line
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            in_chunk = 0
    if in_chunk:
        yield out.getvalue()
    stats.lines = previous + offset
