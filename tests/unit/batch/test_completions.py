"""The completion log behind ``Job.as_completed`` (resumable/batch/completions.py), and
``as_completed`` over in-memory objects: order, errors, a job whose thread died."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from batchkit import OBJECTS, engine, store

from resumable import InvalidArgument, ResumableError
from resumable.batch.completions import Completion, Completions, check_errors
from resumable.batch.job import Job
from resumable.batch.runner import Batch, LocalRunner
from resumable.errors import SourceNotFound


def test_follow_gives_what_is_there_then_what_comes_then_ends() -> None:
    log = Completions()
    log.add(Completion("a"))
    ended = threading.Event()

    def later() -> None:
        time.sleep(0.05)
        log.add(Completion("b"))
        log.add(Completion("c"))
        ended.set()  # after the last add, as the job sets its end

    threading.Thread(target=later).start()
    assert [c.key for c in log.follow(ended.is_set)] == ["a", "b", "c"]
    assert [c.key for c in log.follow(ended.is_set)] == ["a", "b", "c"]  # each reader: all


def test_follow_never_waits_once_ended() -> None:
    log = Completions()
    started = time.monotonic()
    assert list(log.follow(lambda: True)) == []
    assert time.monotonic() - started < 0.05


def test_check_errors() -> None:
    assert check_errors("raise") == "raise"
    assert check_errors("skip") == "skip"
    for wrong in ("Raise", None, 1, "ignore"):
        with pytest.raises(InvalidArgument):
            check_errors(wrong)


def test_as_completed_yields_every_item_and_raises_a_failure_in_its_turn(tmp_path: Path) -> None:
    items = [*OBJECTS, "mem://bucket/d/missing.bin"]
    with Job(engine(store(), workers=1), items, tmp_path) as job:
        got = []
        with pytest.raises(SourceNotFound):
            got.extend(r.path.name for r in job.as_completed())
    assert got == [f"f{i}.bin" for i in range(5)]  # one worker: in input order


def test_as_completed_skip_leaves_failures_in_the_result(tmp_path: Path) -> None:
    items = ["mem://bucket/d/missing.bin", *OBJECTS]
    with Job(engine(store()), items, tmp_path) as job:
        got = sorted(r.path.name for r in job.as_completed(errors="skip"))
    assert got == [f"f{i}.bin" for i in range(5)]
    assert [type(e) for _, e in job.result().failed] == [SourceNotFound]


class DyingRunner(LocalRunner):
    """Local threads whose first item kills its thread (as a bug or MemoryError would)."""

    def threads(self, batch: Batch) -> list[threading.Thread]:
        def die(*args: object) -> None:
            raise MemoryError("out of memory")

        real = batch.steps.run
        calls = [0]

        def run(work: object, sync_dir: object) -> None:
            calls[0] += 1
            if calls[0] == 2:
                die()
            real(work, sync_dir)  # type: ignore[arg-type]

        batch.steps.run = run  # type: ignore[method-assign]
        return super().threads(batch)


def test_as_completed_ends_when_a_thread_of_the_job_died(tmp_path: Path) -> None:
    job = Job(engine(store(), workers=1), list(OBJECTS), tmp_path, runner=DyingRunner(1))
    started = time.monotonic()
    got = []
    with pytest.raises(ResumableError, match=r"its thread .* failed"):
        got.extend(r.path.name for r in job.as_completed())
    assert got == ["f0.bin"]
    assert time.monotonic() - started < 5
    assert job.wait(timeout=5).cancelled
    assert [r.path.name for r in job.as_completed(errors="skip")] == ["f0.bin"]
