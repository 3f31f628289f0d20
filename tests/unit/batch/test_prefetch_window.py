"""The look-ahead window of ``prefetch`` (resumable/batch/prefetch.py) without any download
(and, at the end, an item whose size no one can tell, over an in-memory source):
a producer puts places, a settler settles them in a random order, a consumer takes them.

Properties (hypothesis): the consumer gets every place in input order; at no moment do more
than ``ahead`` places wait beyond the held one (one when ``ahead`` is 0), nor do the bytes of the
waiting and held places exceed ``max_bytes``; nothing deadlocks.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable import InvalidArgument, Item, ResumableDownloader, ResumableError
from resumable.batch.completions import Completion
from resumable.batch.prefetch import Slot, Window, check_window
from resumable.sources import RemoteInfo
from resumable.testing import FaultySource, MemorySource


class Key:
    """Stands for a Work item (the window keys places by identity)."""

    def __init__(self, index: int) -> None:
        self.index = index


def run_window(
    ahead: int, max_bytes: int | None, sizes: list[int], seed: int, fail: set[int]
) -> tuple[list[int], int, int]:
    window = Window(ahead, max_bytes)
    keys = [Key(i) for i in range(len(sizes))]
    rng = random.Random(seed)
    most = {"waiting": 0, "reserved": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            most["waiting"] = max(most["waiting"], window.waiting)
            most["reserved"] = max(most["reserved"], window.reserved)
            time.sleep(0.0002)

    def produce() -> None:
        for key, size in zip(keys, sizes, strict=False):
            assert window.put(Slot(key, size))  # type: ignore[arg-type]
        window.close()

    def settle() -> None:
        done: set[int] = set()
        while len(done) < len(keys) and not stop.is_set():
            # Settle any place admitted so far, in a random order (as downloads finish).
            admitted = [k for k in keys if k.index not in done]
            rng.shuffle(admitted)
            for key in admitted[:2]:
                failed = key.index in fail
                result = None if failed else object()
                error = ResumableError("no") if failed else None
                if window.settle(Completion(key, result=result, error=error)):  # type: ignore[arg-type]
                    done.add(key.index)
            time.sleep(0.0005)

    threads = [threading.Thread(target=f, daemon=True) for f in (sample, produce, settle)]
    for thread in threads:
        thread.start()
    order = []
    try:
        while True:
            window.release()
            slot = window.next(lambda: None)
            if slot is None:
                break
            assert slot.work is not None
            order.append(slot.work.index)  # type: ignore[attr-defined]
            assert slot.settled
            assert (slot.error is not None) == (slot.work.index in fail)
            if rng.random() < 0.3:
                time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    assert not any(thread.is_alive() for thread in threads)
    return order, most["waiting"], most["reserved"]


@settings(max_examples=40, deadline=None)
@given(
    ahead=st.integers(0, 4),
    sizes=st.lists(st.integers(0, 10), min_size=0, max_size=12),
    budget=st.one_of(st.none(), st.integers(10, 30)),
    seed=st.integers(0, 1000),
    fail=st.sets(st.integers(0, 11), max_size=3),
)
def test_order_count_and_budget_hold(
    ahead: int, sizes: list[int], budget: int | None, seed: int, fail: set[int]
) -> None:
    order, waiting, reserved = run_window(ahead, budget, sizes, seed, fail)
    assert order == list(range(len(sizes)))
    assert waiting <= max(ahead, 1)
    if budget is not None:
        assert reserved <= budget


def test_the_held_place_counts_until_the_next_is_asked_for() -> None:
    window = Window(ahead=2, max_bytes=10)
    first, second = Key(0), Key(1)
    assert window.put(Slot(first, 6))  # type: ignore[arg-type]
    window.settle(Completion(first, result=object()))  # type: ignore[arg-type]
    assert window.next(lambda: None) is not None  # held: its 6 bytes still count
    admitted = threading.Event()

    def put() -> None:
        window.put(Slot(second, 6))  # type: ignore[arg-type]
        admitted.set()

    threading.Thread(target=put, daemon=True).start()
    assert not admitted.wait(0.3)  # 6 + 6 > 10: waits for the consumer
    window.release()  # the consumer asks for the next one
    assert admitted.wait(1)
    assert window.reserved == 6


def test_places_still_open_when_the_batch_ended_fail_with_its_error() -> None:
    window = Window(ahead=2)
    window.put(Slot(Key(0), 0))  # type: ignore[arg-type]
    error = ResumableError("the batch stopped")
    slot = window.next(lambda: error)
    assert slot is not None
    assert slot.error is error


def test_a_stopped_window_admits_nothing_and_wakes_the_producer() -> None:
    window = Window(ahead=1)
    window.put(Slot(Key(0), 0))  # type: ignore[arg-type]
    returned: list[bool] = []
    thread = threading.Thread(target=lambda: returned.append(window.put(Slot(Key(1), 0))))  # type: ignore[arg-type]
    thread.start()
    time.sleep(0.05)
    window.stop()
    thread.join(1)
    assert returned == [False]


@pytest.mark.parametrize(
    "options",
    [
        {"ahead": -1},
        {"ahead": True},
        {"keep": 1},
        {"max_bytes": -5},
        {"max_bytes": 1.0},
        {"errors": "warn"},
    ],
)
def test_check_window_refuses(options: dict[str, object]) -> None:
    values: dict[str, object] = {"ahead": 4, "keep": True, "max_bytes": None, "errors": "raise"}
    with pytest.raises(InvalidArgument):
        check_window(**{**values, **options})


class SizelessSource(MemorySource):
    """A source that does not tell sizes (as an HTTP server without Content-Length)."""

    def stat(self, url: str) -> RemoteInfo:
        return dataclasses.replace(super().stat(url), size=None)


def test_with_max_bytes_an_item_of_unknown_size_fails_at_its_place_without_a_read(
    tmp_path: Path,
) -> None:
    source = FaultySource(SizelessSource({"mem://b/a.bin": b"a" * 10, "mem://b/u.bin": b"u"}))
    items = [Item("mem://b/a.bin", size=10), "mem://b/u.bin"]
    with ResumableDownloader(sources={"mem": source}) as d:
        loop = d.prefetch(items, tmp_path, max_bytes=100)
        assert next(loop).path.name == "a.bin"
        with pytest.raises(InvalidArgument, match=r"size of u\.bin is unknown"):
            next(loop)
    assert source.calls.count("open") == 1  # a.bin's read only; u.bin: a stat, no read
    assert not (tmp_path / "u.bin").exists()
