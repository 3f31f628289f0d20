"""The dry run (resumable/batch/plan.py): what is there, what to fetch, asking only for sizes
the inputs and the ledger do not give."""

from __future__ import annotations

from pathlib import Path

from batchkit import OBJECTS, engine, store

from resumable import Item
from resumable.batch.job import Job
from resumable.batch.plan import make_plan


def test_a_fresh_directory_fetches_everything(tmp_path: Path) -> None:
    source = store()
    plan = make_plan(engine(source), list(OBJECTS), tmp_path)
    sizes = sum(len(data) for data in OBJECTS.values())
    assert (plan.files, plan.present, plan.to_fetch) == (5, 0, 5)
    assert (plan.total_bytes, plan.fetch_bytes, plan.unknown_size) == (sizes, sizes, 0)
    assert source.calls.count("stat") == 5
    assert not list(tmp_path.glob("*.bin"))  # nothing downloaded


def test_known_sizes_are_not_asked_for(tmp_path: Path) -> None:
    source = store()
    items = [Item(url, size=len(data)) for url, data in OBJECTS.items()]
    plan = make_plan(engine(source), items, tmp_path)
    assert plan.to_fetch == 5
    assert source.calls == []


def test_files_recorded_by_a_batch_are_present_without_a_request(tmp_path: Path) -> None:
    Job(engine(store()), list(OBJECTS)[:3], tmp_path).wait(timeout=30)
    source = store()
    plan = make_plan(engine(source), list(OBJECTS), tmp_path)
    assert (plan.present, plan.to_fetch) == (3, 2)
    assert source.calls.count("stat") == 2
    assert "3 present" in str(plan)


def test_invalid_and_missing_items_are_listed_as_failed(tmp_path: Path) -> None:
    plan = make_plan(engine(store()), ["mem://bucket/d/none.bin", 42, *list(OBJECTS)[:1]], tmp_path)
    assert plan.files == 1
    assert sorted(type(e).__name__ for _, e in plan.failed) == ["InvalidArgument", "SourceNotFound"]
