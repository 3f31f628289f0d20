"""Connection caps and the token bucket, without sockets."""

from __future__ import annotations

import threading

import pytest

import resumable
from resumable.limits import HostSlots, TokenBucket


def test_per_host_and_total_caps_hold_together() -> None:
    slots = HostSlots(per_host=2, total=3)
    a1, a2 = slots.try_take("a"), slots.try_take("a")
    assert a1 is not None
    assert a2 is not None
    assert slots.try_take("a") is None  # per-host cap
    b1 = slots.try_take("b")
    assert b1 is not None
    assert slots.try_take("c") is None  # total cap, although c has none
    a1()
    assert slots.try_take("c") is not None  # a slot came back


def test_hold_waits_for_a_slot_and_a_cancel_stops_the_wait() -> None:
    slots = HostSlots(per_host=1)
    release = slots.try_take("h")
    assert release is not None
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(resumable.Cancelled), slots.hold("h", cancel):
        pass
    release()
    with slots.hold("h"):
        assert slots.try_take("h") is None
    assert slots.try_take("h") is not None


def test_token_bucket_debt_is_shared_by_every_taker() -> None:
    now = [0.0]
    waits: list[float] = []
    bucket = TokenBucket(rate=1000, capacity=100, clock=lambda: now[0], sleep=waits.append)
    bucket.take(100)  # the initial burst
    bucket.take(500)
    bucket.take(500)
    assert waits == [0.5, 1.0]  # the second taker waits behind the first's debt
    now[0] = 1.0
    assert bucket.take(0) == pytest.approx(0.0)


def test_an_hourly_budget_is_spent_then_refilled_slowly() -> None:
    now = [0.0]
    bucket = TokenBucket(
        rate=3600 / 3600, capacity=3600, clock=lambda: now[0], sleep=lambda s: None
    )
    assert bucket.take(3600) == 0.0  # the whole budget at once
    assert bucket.take(10) == pytest.approx(10.0)  # then one byte per second


@pytest.mark.parametrize("kwargs", [{"per_host": 0}, {"per_host": None, "total": 0}])
def test_invalid_caps(kwargs: dict[str, int | None]) -> None:
    with pytest.raises(resumable.InvalidArgument):
        HostSlots(**kwargs)  # type: ignore[arg-type]
