"""Connection caps and the token bucket, without sockets."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

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


# -- the adaptive window (AIMD) -------------------------------------------------------------


def take(slots: HostSlots, host: str, count: int) -> list[Callable[[], None]]:
    """``count`` slots of ``host`` (each must be granted)."""
    held = [slots.try_take(host) for _ in range(count)]
    assert all(release is not None for release in held)
    return [release for release in held if release is not None]


def test_a_host_has_no_window_until_it_pushes_back_then_half_of_what_is_in_use() -> None:
    now = [0.0]
    slots = HostSlots(per_host=None, clock=lambda: now[0])
    held = take(slots, "h", 16)
    assert slots.window("h") is None
    slots.pushed_back("h")
    assert slots.window("h") == 8.0
    slots.pushed_back("h")  # the other 15 answers of the same burst: counted once
    assert slots.window("h") == 8.0
    for release in held[:8]:  # 8 end: the window grows by 1/window for each
        release()
    assert slots.window("h") == pytest.approx(9.0, abs=0.1)
    assert slots.try_take("h") is None  # still 8 in use, at most int(9.0x) - none yet
    now[0] = 1.5  # past the cooldown: the next pushback cuts again
    slots.pushed_back("h")
    assert slots.window("h") == 4.0  # half of min(window, 8 in use)
    assert slots.try_take("other") is not None  # other hosts are not affected


def test_the_window_widens_back_to_unlimited_and_never_past_the_cap() -> None:
    now = [0.0]
    slots = HostSlots(per_host=4, clock=lambda: now[0])
    held = take(slots, "h", 4)
    slots.pushed_back("h")
    assert slots.window("h") == 2.0
    for release in held:
        release()
    for _ in range(40):  # answers without pushback: one connection more per window of them
        now[0] += 1.0  # (and past the pace the pushback set)
        take(slots, "h", 1)[0]()
    assert slots.window("h") is None  # as wide as the 4 ever used: no window again
    now[0] += 1.0
    assert len(take(slots, "h", 4)) == 4
    assert slots.try_take("h") is None  # the cap still holds


def test_a_pushback_also_paces_new_requests_at_half_the_rate_of_the_last_second() -> None:
    """A rate limit (429) refuses short requests that one connection alone sends too fast:
    fewer connections are not enough, the starts must be spaced."""
    now = [0.0]
    slots = HostSlots(per_host=None, clock=lambda: now[0])
    for _ in range(20):  # 20 short requests in the last second, one connection at a time
        now[0] += 0.05
        take(slots, "h", 1)[0]()
    slots.observe("h", resumable.ServerBusy(status=429))
    starts = []
    for _ in range(400):  # a second, polled every 2.5 ms
        now[0] += 0.0025
        release = slots.try_take("h")
        if release is not None:
            starts.append(now[0])
            release()
    assert 9 <= len(starts) <= 12  # about 10 a second: half of 20, growing slowly
    assert all(b - a >= 0.08 for a, b in itertools.pairwise(starts))


def test_retry_after_holds_new_connections_to_the_host_until_it_passes() -> None:
    now = [10.0]
    slots = HostSlots(per_host=None, clock=lambda: now[0])
    take(slots, "h", 2)
    slots.observe("h", resumable.ServerBusy(status=429, retry_after=3))
    assert slots.window("h") == 1.0
    now[0] = 12.9
    assert slots.try_take("h") is None  # the server asked for 3 s
    now[0] = 13.0
    assert slots.window("h") == 1.0
    assert slots.try_take("h") is None  # 2 still in use, window 1


@pytest.mark.parametrize(
    ("error", "narrows"),
    [
        (resumable.ServerBusy(status=429), True),
        (resumable.ServerBusy(status=503), True),
        (resumable.ConnectionFailed("connection reset by peer"), True),
        (resumable.ServerBusy(status=500), False),  # an error, not load
        (resumable.CannotConnect("refused"), False),  # a dead host, not a busy one
        (resumable.StallTimeout("no byte for 60s"), False),
    ],
)
def test_only_a_pushback_narrows_the_window(error: Exception, *, narrows: bool) -> None:
    slots = HostSlots(per_host=None)
    take(slots, "h", 4)
    slots.observe("h", error)
    assert (slots.window("h") == 2.0) is narrows


def test_a_backoff_gives_its_slot_back_and_retakes_one_within_the_window() -> None:
    slots = HostSlots(per_host=2)
    with slots.hold("h"):
        other = slots.try_take("h")
        assert other is not None
        assert slots.try_take("h") is None  # both slots held
        slots.pushed_back("h")  # window 1
        with slots.away("h"):
            assert slots.window("h") == 1.0  # going away is no answer: the window stays
            assert slots.try_take("h") is None  # 1 in use (the other), window 1
            other()  # the other ends: 0 in use
            taken = slots.try_take("h")
            assert taken is not None  # the slot served someone else meanwhile
            threading.Timer(0.2, taken).start()
        # Back from the backoff only once a slot was free within the window again.
        assert slots.try_take("h") is None
    assert slots.try_take("h") is not None  # the hold ended: its slot came back
