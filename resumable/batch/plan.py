"""The dry run of a batch: how much is there, how much is already on disk, how much to fetch.

``plan()`` normalises the inputs exactly as ``download_many`` would, checks each destination
against the ledger and the disk, and asks the source for sizes it does not know (in parallel,
``workers`` at a time). Nothing is written except the ledger folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .._guard import typed
from ..progress.lines import format_bytes  # one unit system: binary, as the bars
from ..urls import identity
from .items import Work, iter_work, safe_destination

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["Plan", "make_plan"]


@dataclass(frozen=True)
class Plan:
    """What a batch would do. Sizes the source does not report count in ``unknown_size``."""

    files: int = 0
    present: int = 0
    to_fetch: int = 0
    total_bytes: int = 0
    present_bytes: int = 0
    fetch_bytes: int = 0
    unknown_size: int = 0
    failed: list[tuple[object, BaseException]] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.files} files, {format_bytes(self.total_bytes)}: {self.present} present "
            f"({format_bytes(self.present_bytes)}), {self.to_fetch} to fetch "
            f"({format_bytes(self.fetch_bytes)}"
            + (f", {self.unknown_size} of unknown size" if self.unknown_size else "")
            + f"), {len(self.failed)} invalid"
        )


def make_plan(engine: Engine, items: Iterable[object], dest_dir: Path) -> Plan:
    """The :class:`Plan` of ``items`` into ``dest_dir``; sizes asked of ``engine``'s sources."""
    from concurrent.futures import ThreadPoolExecutor  # both imported when a plan is made

    from .ledger import Ledger

    ledger = Ledger(dest_dir)
    try:
        works: list[Work] = []
        failed: list[tuple[object, BaseException]] = []
        lister = lambda prefix: engine.source(prefix.split(":", 1)[0]).list(prefix)  # noqa: E731
        root, checked = dest_dir.resolve(), set[str]()
        for work in iter_work(items, lister):
            (failed.append if isinstance(work, tuple) else works.append)(work)  # type: ignore[arg-type]

        def size_of(work: Work) -> tuple[int | None, bool]:
            dest = safe_destination(root, work.rel, checked)
            entry = ledger.get(work.rel)
            known = entry is not None and entry.identity == identity(work.item.url)
            if known and entry is not None and entry.unchanged_on_disk(dest):
                return entry.size, True
            size = work.item.size
            if size is None:  # a transfer's stat: retried, refreshed, failed over to mirrors
                request = engine.request(work.item.url, dest, mirrors=work.item.mirrors)
                size = engine.stat(request).size
            present = dest.exists() and size is not None and dest.stat().st_size == size
            # The file recorded for another object (another identity) is fetched again by a
            # batch unless a digest vouches for it (see Steps.check).
            other = entry is not None and not known and entry.unchanged_on_disk(dest)
            return size, present and not (other and not (work.item.sha256 or work.item.checksum))

        plan = {"present": 0, "to_fetch": 0, "present_bytes": 0, "fetch_bytes": 0, "unknown": 0}
        with ThreadPoolExecutor(engine.settings.workers) as pool:
            futures = [(work, pool.submit(size_of, work)) for work in works]
            for work, future in futures:
                try:
                    size, present = future.result()
                except Exception as exc:  # an item's failure, typed: the plan goes on
                    failed.append((work.item, typed(exc, "plan")))
                    continue
                key = "present" if present else "to_fetch"
                plan[key] += 1
                if size is None:
                    plan["unknown"] += 1
                else:
                    plan[f"{'present' if present else 'fetch'}_bytes"] += size
        return Plan(
            files=plan["present"] + plan["to_fetch"],
            present=plan["present"],
            to_fetch=plan["to_fetch"],
            total_bytes=plan["present_bytes"] + plan["fetch_bytes"],
            present_bytes=plan["present_bytes"],
            fetch_bytes=plan["fetch_bytes"],
            unknown_size=plan["unknown"],
            failed=failed,
        )
    finally:
        ledger.close()
