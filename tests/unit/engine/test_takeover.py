"""Phase takeover (resumable.engine.takeover): when another writer took the partial over,
wait for the file it publishes, or take the partial back once it went quiet."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from enginekit import URL, Run, data, sha

from resumable import Cancelled, PartialTakenOver, Timeouts
from resumable.engine import takeover
from resumable.testing import MemorySource

DATA = data(5000)
QUICK = {"timeouts": Timeouts(stall=0.3)}


def taken() -> PartialTakenOver:
    return PartialTakenOver("another process took the partial over")


def test_the_other_writers_published_file_is_reported_as_skipped(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    run = Run(MemorySource({URL: DATA}), dest, settings=QUICK, sha256=sha(DATA))
    state = run.state
    state.partial.open()
    old = state.partial

    def publish() -> None:  # the other writer finishes: its partial becomes dest
        time.sleep(0.1)
        old.data.write_bytes(DATA)
        os.replace(old.data, dest)

    threading.Thread(target=publish).start()
    result = takeover.await_other_writer(state, taken(), lambda why: None)
    assert result is not None
    assert result.status == "skipped"
    assert result.sha256 == sha(DATA)
    assert state.partial is not old  # a new token, should this call take over again
    assert state.yielded  # the partial was never this call's to tidy


def test_a_quiet_writer_is_taken_over(tmp_path: Path) -> None:
    run = Run(MemorySource({URL: DATA}), tmp_path / "f.bin", settings=QUICK)
    state = run.state
    state.info = MemorySource({URL: DATA}).stat(URL)
    began = time.monotonic()
    assert takeover.await_other_writer(state, taken(), lambda why: None) is None
    assert 1.3 <= time.monotonic() - began < 6  # a stall timeout + the longest backoff
    assert not state.yielded
    assert state.info is None  # what the partial holds is decided again


def test_a_cancel_ends_the_wait(tmp_path: Path) -> None:
    cancel = threading.Event()
    run = Run(MemorySource({URL: DATA}), tmp_path / "f.bin", settings=QUICK)
    state = run.state
    object.__setattr__(state.ctx, "cancel", cancel)
    threading.Timer(0.05, cancel.set).start()
    with pytest.raises(Cancelled):
        takeover.await_other_writer(state, taken(), lambda why: None)
    assert state.yielded


def test_stamp_changes_when_a_writer_works(tmp_path: Path) -> None:
    path = tmp_path / "p"
    assert takeover.stamp(path) is None
    path.write_bytes(b"a")
    first = takeover.stamp(path)
    path.write_bytes(b"ab")
    assert takeover.stamp(path) != first
