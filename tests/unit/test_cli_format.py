"""Pure CLI formatting: sizes in one unit family."""

from __future__ import annotations

import pytest

from wedsync_db.cli.common import format_bytes


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1,023 B"),
        (1024, "1.0 KiB"),
        (1536 * 1024, "1.5 MiB"),
        (3 * 2**30, "3.0 GiB"),
        (5 * 2**40, "5.0 TiB"),
        (2**50, "1,024.0 TiB"),
    ],
)
def test_sizes_are_iec(n: float | None, shown: str) -> None:
    assert format_bytes(n) == shown
