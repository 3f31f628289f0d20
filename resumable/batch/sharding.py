"""Split a batch between the ranks of a distributed job, so each rank downloads its share once.

``shard(items, rank, world_size)`` is deterministic: every rank that passes the same inputs
computes the same assignment, with no communication, and each item lands on exactly one rank.

Why balance by size: SA-1B-style datasets mix 10 GB and 100 MB shards, and a split by count can
leave one rank downloading for hours after the others are idle at the barrier. When sizes are
known (``Item.size``, or a prefix listing) items go greedily, largest first, to the rank with the
fewest bytes so far (the LPT rule: never worse than 4/3 of the best possible split); an item of
unknown size counts as the average known size. With no size known this reduces to round-robin
in input order.

Inputs are everything ``download_many`` accepts. Templates are expanded here, and prefixes are
listed here (with ``downloader``'s sources), so all ranks must see the same listing: pin a
listing with ``read_object_list`` when the bucket may change while ranks start. Items come back
as :class:`~resumable.Item` objects with explicit destinations, so each file lands where an
unsharded batch would put it.
"""

from __future__ import annotations

import heapq
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from ..errors import InvalidArgument
from .items import Item, Work, as_inputs, iter_work
from .lists import Link
from .templates import has_template

if TYPE_CHECKING:
    from ..engine import Engine
    from ..sources import RemoteInfo

__all__ = ["HasEngine", "shard", "worker_shard"]


class HasEngine(Protocol):
    """What ``shard`` needs of a downloader: its engine (a ``ResumableDownloader`` has one)."""

    @property
    def engine(self) -> Engine: ...


def shard(
    items: Iterable[object] | str,
    rank: int | None = None,
    world_size: int | None = None,
    *,
    downloader: HasEngine | None = None,
) -> list[Item]:
    """The items of ``items`` that rank ``rank`` of ``world_size`` should download.

    >>> import resumable
    >>> [i.url for i in resumable.shard("https://h/s-{0..5}.tar", rank=1, world_size=2)]
    ['https://h/s-1.tar', 'https://h/s-3.tar', 'https://h/s-5.tar']

    Args:
        items: URLs, templates, prefixes, ``(url, dest)`` pairs, :class:`Item` objects.
        rank: this process's rank, ``0 <= rank < world_size`` (``torch.distributed``
            ``get_rank()``; ``LOCAL_RANK`` to give every node a full copy on its own disk).
            Default: the ``RANK`` environment variable, as torchrun sets it (``0`` when
            neither ``RANK`` nor ``WORLD_SIZE`` is set: a script run alone gets everything).
        world_size: the number of ranks sharing the batch. Default: ``WORLD_SIZE``.
        downloader: lists prefixes (its ``storage_options``); default: a plain downloader.

    Returns:
        This rank's items, in input order. Items that share a destination go to the same rank
        (where ``download_many`` reports the duplicate).

    Raises:
        InvalidArgument: a bad rank or world size (given, or read from ``RANK`` and
            ``WORLD_SIZE``; one of the two set without the other is an error, not a guess),
            an input that is not an item, or a template that does not expand.
        ResumableError: a prefix could not be listed (no rank can be given a share of it).
    """
    rank, world_size = placement(rank, world_size)
    listing: list[Engine] = []

    def lister(prefix: str) -> Iterator[tuple[str, RemoteInfo]]:
        if not listing:
            from ..engine import Engine, Settings

            listing.append(downloader.engine if downloader else Engine(Settings(workers=1)))
        return listing[0].source(prefix.split(":", 1)[0].lower()).list(prefix)

    try:
        flat = [_as_item(entry) for entry in iter_work(as_inputs(items), lister)]
    finally:
        if listing and downloader is None:
            listing[0].close()
    return [flat[i] for i in _assign(flat, world_size)[rank]]


def worker_shard(
    items: Iterable[object] | str,
    rank: int | None = None,
    world_size: int | None = None,
    *,
    worker: int | None = None,
    num_workers: int | None = None,
    downloader: HasEngine | None = None,
) -> list[Item]:
    """The items this DataLoader worker of this rank should download.

    Inside a ``torch.utils.data`` worker (an ``IterableDataset``'s ``__iter__``), each worker
    must take a different part of the rank's share, or every file is fetched ``num_workers``
    times. The split is one :func:`shard` over ``world_size * num_workers`` parts, part
    ``rank * num_workers + worker``: disjoint and covering across every rank and worker, and
    balanced by size over all of them at once.

    >>> import resumable
    >>> template = "https://h/s-{0..7}.tar"
    >>> [i.url for i in resumable.worker_shard(template, 1, 2, worker=1, num_workers=2)]
    ['https://h/s-3.tar', 'https://h/s-7.tar']

    Args:
        items: as for :func:`shard`.
        rank: as for :func:`shard` (``RANK`` when not given).
        world_size: as for :func:`shard` (``WORLD_SIZE`` when not given).
        worker: this worker's id, ``0 <= worker < num_workers``. Default, with
            ``num_workers``: ``torch.utils.data.get_worker_info()`` when torch is already
            imported (a DataLoader worker has imported it); otherwise one worker, ``0`` of
            ``1``. torch is never imported here and is not a dependency.
        num_workers: the DataLoader's ``num_workers`` (give both or neither).
        downloader: as for :func:`shard`.

    Raises:
        InvalidArgument: as :func:`shard`, or a bad or half-given worker placement.
    """
    if (worker is None) != (num_workers is None):
        raise InvalidArgument("give both worker= and num_workers=, or neither")
    if worker is None or num_workers is None:
        worker, num_workers = _dataloader_worker()
    for name, value in (("worker", worker), ("num_workers", num_workers)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"{name} must be an integer, got {value!r}")
    if num_workers < 1:
        raise InvalidArgument(f"num_workers must be >= 1, got {num_workers}")
    if not 0 <= worker < num_workers:
        raise InvalidArgument(f"worker must be within [0, {num_workers}), got {worker}")
    rank, world_size = placement(rank, world_size)
    part = rank * num_workers + worker
    return shard(items, part, world_size * num_workers, downloader=downloader)


def _dataloader_worker() -> tuple[int, int]:
    """``(id, num_workers)`` of the torch DataLoader worker we run in; ``(0, 1)`` outside one."""
    data = sys.modules.get("torch.utils.data")  # imported by any process running a DataLoader
    info = getattr(data, "get_worker_info", lambda: None)() if data is not None else None
    if info is None:  # the main process, or no torch at all
        return 0, 1
    return int(info.id), int(info.num_workers)


def placement(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``, checked; what is not given comes from ``RANK``/``WORLD_SIZE``."""
    if rank is None or world_size is None:
        env_rank, env_size = _from_env("RANK"), _from_env("WORLD_SIZE")
        if (env_rank is None) != (env_size is None):
            have, missing = ("RANK", "WORLD_SIZE") if env_size is None else ("WORLD_SIZE", "RANK")
            raise InvalidArgument(
                f"{have} is set but {missing} is not: set both (as torchrun does) or pass "
                "rank= and world_size="
            )
        if rank is None:
            rank = 0 if env_rank is None else env_rank
        if world_size is None:
            world_size = 1 if env_size is None else env_size
    for name, value in (("rank", rank), ("world_size", world_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"{name} must be an integer, got {value!r}")
    if world_size < 1:
        raise InvalidArgument(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise InvalidArgument(f"rank must be within [0, {world_size}), got {rank}")
    return rank, world_size


def _from_env(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(
            f"the environment variable {name} must be an integer, got {text[:40]!r}"
        ) from None


def _as_item(entry: Work | tuple[object, Exception]) -> Item:
    if isinstance(entry, Work):
        item = entry.item
        return Item(item.url, entry.rel, item.size, item.sha256, item.checksum)
    raw, error = entry
    if isinstance(raw, Item):
        return raw
    if isinstance(raw, Link):
        return Item(raw.url, raw.name)
    if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[0], str):
        return Item(raw[0], raw[1])
    if isinstance(raw, str) and not (has_template(raw) or raw.endswith("/")):
        return Item(raw)  # a bad URL or name: the rank that gets it reports the error
    raise error


def _assign(items: list[Item], world_size: int) -> list[list[int]]:
    """Indexes of ``items`` for each rank: largest first to the least loaded (ties: lowest)."""
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(os.fspath(item.dest or item.url), []).append(index)
    known = [item.size for item in items if item.size is not None]
    default = sum(known) // len(known) if known else 1

    def weight(members: list[int]) -> int:
        size = items[members[0]].size
        return max(1, size if size is not None else default)  # empty files still count

    order = sorted(groups.values(), key=lambda members: (-weight(members), members[0]))
    heap = [(0, rank) for rank in range(world_size)]
    shares: list[list[int]] = [[] for _ in range(world_size)]
    for members in order:
        load, rank = heapq.heappop(heap)
        shares[rank].extend(members)
        heapq.heappush(heap, (load + weight(members), rank))
    return [sorted(share) for share in shares]
