"""Fingerprint ranges: which ranges stand, which summaries cover an interval (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wedsync_db.backup import ranges
from wedsync_db.backup.ranges import Layout, Position, RangeSum, TableLayout, Touched


def test_lsn_text_reads_as_its_number() -> None:
    assert ranges.lsn_value("0/16EF418") == 0x16EF418
    assert ranges.lsn_value("16/B374D848") == (0x16 << 32) + 0xB374D848
    with pytest.raises(ValueError, match="not an LSN"):
        ranges.lsn_value("16B374D848")


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50))
def test_range_sums_reduce_as_the_servers_numeric_does(values: list[int]) -> None:
    # the whole-table query reduces sum(...) % 2^64 in numeric: sign of the dividend
    total = sum(values)
    want = abs(total) % 2**64 * (-1 if total < 0 else 1)
    assert ranges.sql_mod(total) == want
    # and splitting the rows into ranges changes nothing
    half = len(values) // 2
    assert ranges.sql_mod(sum(values[:half]) + sum(values[half:])) == want


def test_a_snapshot_is_quiet_only_with_no_transaction_listed() -> None:
    assert ranges.snapshot_quiet("771:771:")
    assert not ranges.snapshot_quiet("771:773:771")
    assert not ranges.snapshot_quiet("garbage")


def test_a_table_is_read_in_ranges_the_last_one_open() -> None:
    assert ranges.block_ranges(0, 8) == [(0, None)]
    assert ranges.block_ranges(8, 8) == [(0, None)]
    assert ranges.block_ranges(9, 8) == [(0, 8), (8, None)]
    assert ranges.block_ranges(17, 8) == [(0, 8), (8, 16), (16, None)]


def test_written_blocks_hit_the_ranges_they_fall_in() -> None:
    touched = ranges.touched_by_relation([(10, 1, None), (10, 4, None), (11, 0, 3), (11, 1, 9)])
    t10, t11 = touched[10], touched[11]
    assert not t10.hits(0, 8, 8) and t10.hits(8, 16, 8) and not t10.hits(16, 24, 8)
    assert t10.hits(24, None, 8)  # index 4 is in the open last range
    # cut to 3 blocks: every block from there on counts as written
    assert t11.limit == 3 and t11.hits(0, 8, 8) and t11.hits(64, None, 8)
    assert not Touched(frozenset(), None).hits(0, None, 8)


def test_summaries_cover_an_interval_only_without_a_gap() -> None:
    files = [(10, 20), (20, 35), (35, 50), (0, 10)]
    assert ranges.summaries_covering(files, 12, 40) == [(10, 20), (20, 35), (35, 50)]
    assert ranges.summaries_covering(files, 0, 10) == [(0, 10)]
    # not summarized yet, or no longer
    assert ranges.summaries_covering(files, 12, 60) is None
    assert ranges.summaries_covering([(20, 35), (35, 50)], 12, 40) is None
    assert ranges.summaries_covering([(10, 20), (25, 50)], 12, 40) is None
    assert ranges.summaries_covering([], 12, 40) is None


def test_a_range_stands_only_with_the_same_key_bounds_and_no_write() -> None:
    before = TableLayout("k", (RangeSum(0, 8, 5, 42), RangeSum(8, None, 2, -7)))
    written = Touched(frozenset({1}), None)
    assert ranges.reusable(before, "k", 0, 8, written, 8) == RangeSum(0, 8, 5, 42)
    assert ranges.reusable(before, "k", 8, None, written, 8) is None  # written to
    assert ranges.reusable(before, "k", 0, 8, None, 8) == RangeSum(0, 8, 5, 42)
    assert ranges.reusable(before, "other", 0, 8, None, 8) is None  # rewritten, altered
    assert ranges.reusable(before, "k", 8, 16, None, 8) is None  # grew: other bounds
    assert ranges.reusable(None, "k", 0, 8, None, 8) is None


def test_a_layout_reads_back_what_it_wrote() -> None:
    layout = Layout(
        Position("0/16EF418", 1, "7715075021747254811", 16384),
        "column-hash-chain-sum",
        16384,
        "abc",
        {"public.guests": TableLayout("k", (RangeSum(0, None, 3, -(2**70)),))},
    )
    assert Layout.from_dict(layout.to_dict()) == layout
