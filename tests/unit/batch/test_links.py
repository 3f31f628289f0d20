"""How fanned-out workers talk back (resumable/batch/links.py): progress and cancellation for a
thread pool (in process) and for any other executor (a flag file), without Dask."""

from __future__ import annotations

import pickle
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from resumable.batch.links import FileChannel, LocalChannel, channel_for
from resumable.progress import EventKind, ProgressEvent


def event(done: int) -> ProgressEvent:
    return ProgressEvent(EventKind.PROGRESS, "mem://b/a", Path("/d/a"), done, 100)


def test_each_executor_gets_its_channel(tmp_path: Path) -> None:
    with ThreadPoolExecutor(1) as threads:
        assert isinstance(channel_for(threads, tmp_path), LocalChannel)
    with ProcessPoolExecutor(1) as processes:  # never submitted to: no process starts
        channel = channel_for(processes, tmp_path)
        assert isinstance(channel, FileChannel)
        channel.close()


def test_a_thread_pool_link_publishes_and_cancels_in_process(tmp_path: Path) -> None:
    channel = LocalChannel()
    publish, cancel = channel.link.attach()
    assert publish is not None
    publish([event(10), event(20)])
    publish([event(30)])
    assert [e.done for e in channel.drain()] == [10, 20, 30]
    assert channel.drain() == []
    assert not cancel.is_set()
    channel.cancel()
    assert cancel.is_set()
    channel.link.detach()


def test_a_flag_file_link_travels_and_sees_the_cancel(tmp_path: Path) -> None:
    channel = FileChannel(tmp_path)
    link = pickle.loads(pickle.dumps(channel.link))  # as a worker process gets it
    publish, cancel = link.attach()
    try:
        assert publish is None  # progress comes back with the chunk instead
        assert not cancel.is_set()
        channel.cancel()
        deadline = time.monotonic() + 5
        while not cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cancel.is_set()
    finally:
        link.detach()
        channel.close()
    assert list(tmp_path.iterdir()) == []  # the flag is removed


def test_a_link_attached_after_the_cancel_is_cancelled_at_once(tmp_path: Path) -> None:
    channel = FileChannel(tmp_path)
    channel.cancel()
    _, cancel = channel.link.attach()
    try:
        assert cancel.is_set()  # a chunk that starts late fetches nothing
    finally:
        channel.link.detach()
        channel.close()
