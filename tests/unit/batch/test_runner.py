"""The runners (resumable/batch/runner.py, fanout.py): local threads and the executor fan-out
run the same per-item steps, so the same inputs leave the same files and ledger rows."""

from __future__ import annotations

import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from batchkit import OBJECTS, engine, rows, store

from resumable import InvalidArgument
from resumable.batch.fanout import FanoutRunner
from resumable.batch.job import Job
from resumable.batch.runner import LocalRunner
from resumable.progress import EventKind, ProgressEvent

INPUTS = [*OBJECTS, "mem://bucket/d/missing.bin"]


def run(tmp_path: Path, make_runner: object) -> tuple[list[str], dict[str, object]]:
    source = store()
    eng = engine(source)
    runner = make_runner(eng, tmp_path)  # type: ignore[operator]
    result = Job(eng, INPUTS, tmp_path, runner=runner).wait(timeout=60)
    names = sorted(r.path.name for r in result.ok) + [
        str(type(e).__name__) for _, e in result.failed
    ]
    return names, dict(rows(tmp_path))


def test_local_threads_and_a_thread_pool_leave_the_same_ledger(tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        fanned = run(tmp_path / "fan", lambda eng, dest: FanoutRunner(eng, pool, dest))
    local = run(tmp_path / "local", lambda eng, dest: LocalRunner(2))
    assert fanned == local
    names, ledger = local
    assert names == [f"f{i}.bin" for i in range(5)] + ["SourceNotFound"]
    assert ledger["missing.bin"] == ("failed", None)
    for i in range(5):
        assert (tmp_path / "fan" / f"f{i}.bin").read_bytes() == OBJECTS[f"mem://bucket/d/f{i}.bin"]


def test_the_fan_out_delivers_each_file_final_event_once(tmp_path: Path) -> None:
    finals: list[str] = []
    lock = threading.Lock()

    def progress(event: ProgressEvent) -> None:
        if event.kind in (EventKind.DONE, EventKind.FAILED, EventKind.SKIPPED):
            with lock:
                finals.append(event.path.name)

    eng = engine(store())
    with ThreadPoolExecutor(2) as pool:
        job = Job(
            eng, INPUTS, tmp_path, progress=progress, runner=FanoutRunner(eng, pool, tmp_path)
        )
        job.wait(timeout=60)
    assert sorted(finals) == sorted([f"f{i}.bin" for i in range(5)] + ["missing.bin"])


def test_a_rerun_through_the_fan_out_sends_nothing(tmp_path: Path) -> None:
    Job(engine(store()), list(OBJECTS), tmp_path).wait(timeout=60)
    source = store()
    eng = engine(source)
    with ThreadPoolExecutor(2) as pool:
        result = Job(eng, list(OBJECTS), tmp_path, runner=FanoutRunner(eng, pool, tmp_path)).wait(
            timeout=60
        )
    assert [r.status for r in result.ok] == ["skipped"] * 5
    assert source.calls == []


def test_the_fan_out_refuses_what_is_not_an_executor(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"concurrent\.futures\.Executor"):
        FanoutRunner(engine(store()), object(), tmp_path)  # type: ignore[arg-type]


def test_a_configuration_that_cannot_reach_other_processes_is_refused(tmp_path: Path) -> None:
    class Local:  # an instance with a lock: it cannot be pickled to a worker process
        lock = threading.Lock()

    eng = engine(Local())
    with ProcessPoolExecutor(1) as pool, pytest.raises(InvalidArgument, match="other processes"):
        FanoutRunner(eng, pool, tmp_path)


def test_closing_a_runner_twice_is_harmless(tmp_path: Path) -> None:
    with ThreadPoolExecutor(1) as pool:
        runner = FanoutRunner(engine(store()), pool, tmp_path)
        runner.close()
        runner.close()
    LocalRunner(1).close()
