"""Reading import files without a database: encodings, dialects, header plans, dates, rows, and
memory that does not grow with the file."""

from __future__ import annotations

import codecs
import csv
import io
import tracemalloc
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from wedsync_db.errors import ImportRefused
from wedsync_db.imports import csvfile
from wedsync_db.imports.csvfile import ReadOptions, parse_date, plan_columns, sniff
from wedsync_db.imports.fields import CLIENTS, GUESTS

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("2027-06-12", "dmy", date(2027, 6, 12)),
        ("12/06/2027", "dmy", date(2027, 6, 12)),
        ("06/12/2027", "mdy", date(2027, 6, 12)),
        ("13/06/2027", "mdy", date(2027, 6, 13)),  # unambiguous whatever the order
        ("12.06.27", "dmy", date(2027, 6, 12)),
        ("2027/06/12", "mdy", date(2027, 6, 12)),
        ("12 June 2027", "dmy", date(2027, 6, 12)),
        ("12th Jun 2027", "dmy", date(2027, 6, 12)),
        ("12-Jun-2027", "dmy", date(2027, 6, 12)),
        ("Saturday, 12 June 2027", "dmy", date(2027, 6, 12)),
        ("June 12, 2027", "dmy", date(2027, 6, 12)),
        ("Sep 18 2027", "dmy", date(2027, 9, 18)),
        ("46550", "dmy", date(2027, 6, 12)),  # an Excel day number
        ("12/06/2027 14:30", "dmy", date(2027, 6, 12)),
        # 23:30 UTC on the 11th is already the 12th in London (summer time)
        ("2027-06-11T23:30:00Z", "dmy", date(2027, 6, 12)),
        ("2027-06-12 09:00", "dmy", date(2027, 6, 12)),
    ],
)
def test_dates_in_common_formats(text: str, order: csvfile.DateOrder, expected: date) -> None:
    assert parse_date(text, order, LONDON) == expected


@pytest.mark.parametrize("text", ["31/02/2027", "next june", "12 Juno 2027", "2027-13-01", "1/2"])
def test_not_dates_say_why(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a date|not a month"):
        parse_date(text, "dmy", LONDON)


def test_date_order_follows_the_timezone() -> None:
    assert csvfile.date_order_for("America/New_York") == "mdy"
    assert csvfile.date_order_for("Europe/London") == "dmy"
    assert csvfile.date_order_for("America/Sao_Paulo") == "dmy"


@pytest.mark.parametrize(
    ("first_line", "delimiter"),
    [
        ("Name,Email,Venue", ","),
        ("Name;Email;Venue", ";"),
        ("Name\tEmail\tVenue", "\t"),
        ('"Last, First";Email', ";"),
        ("Name", ","),
    ],
)
def test_the_delimiter_is_sniffed_from_the_header(first_line: str, delimiter: str) -> None:
    assert sniff(first_line + "\nrow\n").delimiter == delimiter


def test_an_excel_sep_line_names_the_delimiter() -> None:
    assert sniff("sep=|\nName|Email\n") == csvfile.Dialect("|", sep_line=True)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("Zoë,é\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "Zoë\n".encode(), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + "Zoë\n".encode("utf-16-le"), "utf-16"),
        ("Zoë’s\n".encode("cp1252"), "cp1252"),
    ],
)
def test_the_encoding_decodes_the_whole_file(data: bytes, encoding: str) -> None:
    facts = csvfile.examine(io.BytesIO(data))
    assert facts.encoding == encoding and facts.size == len(data)


def test_a_file_neither_utf8_nor_windows_1252_is_refused_with_where() -> None:
    with pytest.raises(ImportRefused, match=r"byte offset 5 .*save it as CSV UTF-8"):
        csvfile.examine(io.BytesIO(b"Name\n\x81\x8d\n"))


def test_aliases_and_the_explicit_map_plan_the_columns() -> None:
    plan = plan_columns(
        CLIENTS,
        ["First Name", "Surname", "E-mail", "Big Day", "Colour"],
        {"Big Day": "wedding_date"},
    )
    assert plan.mapping["E-mail"] == "email" and plan.mapping["Big Day"] == "wedding_date"
    assert plan.joined is not None and plan.ignored == ("Colour",)
    assert set(plan.present) == {"partner1_name", "email", "wedding_date"}
    guests = plan_columns(GUESTS, ["Guest Name", "+1", "Table #"], {})
    assert guests.mapping == {
        "Guest Name": "first_name",
        "+1": "plus_one",
        "Table #": "table_number",
    }


def test_an_explicit_map_wins_over_an_alias_and_ignore_leaves_a_column_out() -> None:
    plan = plan_columns(CLIENTS, ["Name", "Email", "Email"], {"#3": "ignore"})
    assert plan.sources[CLIENTS.fields.index("email")] == 1
    other = plan_columns(CLIENTS, ["Name", "Contact", "Email"], {"Contact": "email"})
    assert other.sources[CLIENTS.fields.index("email")] == 1 and "Email" in other.ignored


@pytest.mark.parametrize(
    ("headers", "explicit", "message"),
    [
        (["Email"], {}, "no column for partner1_name"),
        (["Name", "Email", "E-mail"], {}, "both fill email"),
        (["Name"], {"Nope": "email"}, "no column 'Nope'"),
        (["Name"], {"Name": "shoe_size"}, "not a field of clients"),
        (["Name"], {"#4": "email"}, "has 1 columns"),
    ],
)
def test_a_header_that_cannot_be_imported_says_what_to_change(
    headers: list[str], explicit: dict[str, str], message: str
) -> None:
    with pytest.raises(ImportRefused, match=message):
        plan_columns(CLIENTS, headers, explicit)


def staged(data: bytes, explicit: dict[str, str] | None = None) -> list[list[str]]:
    opened = csvfile.open_file(io.BytesIO(data), CLIENTS, explicit or {})
    text = "".join(csvfile.staged_chunks(opened, ReadOptions()))
    return list(csv.reader(io.StringIO(text)))


def test_rows_are_staged_with_their_line_and_their_problems() -> None:
    rows = staged(
        b"Name,Email,Wedding Date\n"
        b'"Ann\nAnn",ann@example.com,12/06/2027\n'
        b"\n"
        b"Ben,ben@example.com,soon\n"
        b"Cy,cy@example.com,,,\n"
        b"Di,di@example.com,,x\n"
        b"Ed\n"
    )
    assert [r[0] for r in rows] == ["2", "5", "6", "7", "8"]
    assert rows[0][4] == "Ann\nAnn" and rows[0][8] == "2027-06-12"
    assert rows[1][1:3] == ["wedding_date", "soon"] and "not a date" in rows[1][3]
    assert rows[2][1:4] == ["", "", ""]  # trailing empty cells are no problem
    assert rows[3][1:4] == ["*", "x", "4 cells where the header has 3"]
    assert rows[4][4] == "Ed"  # a short row: the missing cells are empty


def test_a_file_of_many_rows_is_read_in_constant_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfile, "CHUNK_ROWS", 200)

    def peak(rows: int) -> int:
        body = b"".join(b"Name %d,n%d@example.com,2027-06-12,Venue\n" % (i, i) for i in range(rows))
        data = io.BytesIO(b"Name,Email,Wedding Date,Venue\n" + body)
        opened = csvfile.open_file(data, CLIENTS, {})
        tracemalloc.start()
        try:
            for _chunk in csvfile.staged_chunks(opened, ReadOptions()):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(2_000), peak(20_000)
    # ten times the rows, the same few chunks' worth of memory (the file itself is not traced
    # as it is read: it was allocated before tracing started)
    assert large < small * 1.5 + 64 * 1024, (small, large)
