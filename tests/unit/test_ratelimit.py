"""The data API's token buckets (pure logic, with a fake clock)."""

from __future__ import annotations

import pytest

from wedsync_db.api.v1.ratelimit import RateLimiter, charge


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [charge([(limiter, "u")]) for _ in range(4)] == [None, None, None, 1]
    clock.now += 0.5  # one token back at 2/s
    assert charge([(limiter, "u")]) is None
    assert charge([(limiter, "u")]) == 1
    clock.now += 10  # never more than the burst
    assert [charge([(limiter, "u")]) for _ in range(4)] == [None, None, None, 1]


def test_retry_after_is_the_whole_seconds_until_a_token() -> None:
    clock = Clock()
    limiter = RateLimiter(0.1, 1, clock=clock)
    assert charge([(limiter, "u")]) is None
    assert charge([(limiter, "u")]) == 10
    clock.now += 9.5
    assert charge([(limiter, "u")]) == 1


def test_a_request_is_charged_to_all_its_buckets_or_none() -> None:
    clock = Clock()
    users, orgs = RateLimiter(1.0, 5, clock=clock), RateLimiter(1.0, 1, clock=clock)
    assert charge([(users, "a"), (orgs, "o")]) is None
    # the organization is empty: the user's bucket is not charged for the refused request
    assert charge([(users, "b"), (orgs, "o")]) == 1
    assert [charge([(users, "b")]) for _ in range(6)] == [None] * 5 + [1]


def test_rate_zero_is_no_limit_and_keys_are_bounded() -> None:
    off = RateLimiter(0.0, 1)
    assert all(charge([(off, "u")]) is None for _ in range(100))
    clock = Clock()
    small = RateLimiter(1.0, 1, clock=clock, max_keys=2)
    for key in ("a", "b", "c"):
        assert charge([(small, key)]) is None
    # "a" was forgotten (least recently used): it starts again with a full bucket
    assert charge([(small, "a")]) is None and charge([(small, "c")]) == 1
    with pytest.raises(ValueError):
        RateLimiter(-1.0, 1)
