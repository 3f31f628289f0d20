"""The public edge's argument checks: each wrong argument is an
:class:`~resumable.errors.InvalidArgument` naming it, before any traffic.

Used by :mod:`resumable.api` (and :mod:`resumable.aio` through it); kept apart so the API module
holds only the API.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ._checks import check_bool
from ._paths import check_loop_free, path_text
from .batch.items import as_inputs
from .errors import InvalidArgument, LocalError
from .progress import ProgressCallback
from .sources import Source

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from .batch.checksums import ChecksumTable
    from .batch.job import Job
    from .batch.runner import Runner
    from .engine import DownloadResult, Engine
    from .extract import Processor

__all__ = [
    "check_cancel",
    "check_dest_dir",
    "check_processor",
    "check_progress",
    "check_sources",
    "close_progress",
    "in_directory",
    "prefetch",
    "start_job",
]

PathLike = str | os.PathLike[str]


def check_cancel(cancel: object) -> None:
    if cancel is not None and not isinstance(cancel, threading.Event):
        raise InvalidArgument(f"cancel must be a threading.Event or None, got {cancel!r}")


def check_sources(sources: object) -> None:
    """``sources=``: URL schemes (str) to source instances, checked before any traffic."""
    if sources is not None and (
        not isinstance(sources, Mapping)
        or not all(isinstance(k, str) and k for k in sources)
        or not all(callable(getattr(v, "open", None)) for v in sources.values())
        or not all(callable(getattr(v, "stat", None)) for v in sources.values())
    ):
        raise InvalidArgument(
            f"sources must map URL schemes (str) to sources (with stat() and open()), got "
            f"{sources!r}"
        )


def check_dest_dir(dest_dir: object) -> Path:
    path = Path(path_text(dest_dir, "dest_dir")).expanduser().absolute()
    check_loop_free(path, "dest_dir")
    if path.exists() and not path.is_dir():
        raise InvalidArgument(f"dest_dir {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalError(f"cannot create {path}: {exc.strerror}", path=str(path)) from exc
    return path


def check_progress(progress: ProgressCallback | bool | None) -> ProgressCallback | None:
    """``progress=``: ``None``/``False`` (none), ``True`` (a new ``TqdmProgress``) or a
    callable; anything else is an :class:`InvalidArgument`, before any traffic."""
    if progress is None or progress is False:
        return None
    if progress is True:
        from .progress.bars import TqdmProgress

        return TqdmProgress()
    if isinstance(progress, type):
        raise InvalidArgument(
            f"progress must be a callable instance, got the class {progress.__name__}; "
            f"write progress={progress.__name__}() or progress=True"
        )
    if not callable(progress):
        raise InvalidArgument(
            f"progress must be a callable, True (TqdmProgress()), False or None, got {progress!r}"
        )
    return progress


def close_progress(progress: object) -> None:
    close = getattr(progress, "close", None)
    if callable(close):
        close()


def in_directory(dest: PathLike, url: str, given: Mapping[str, Source]) -> PathLike:
    """``dest`` itself, or ``dest/<object name>`` when ``dest`` is an existing directory or ends
    with a separator (as pooch, huggingface_hub and ``fs.get`` take a folder)."""
    if not isinstance(dest, (str, os.PathLike)) or not isinstance(url, str):
        return dest  # _prepare names the bad argument
    text = os.fspath(dest)
    if not isinstance(text, str) or not text:
        return dest
    separators = (os.sep, os.altsep) if os.altsep else (os.sep,)
    if not (text.endswith(separators) or os.path.isdir(os.path.expanduser(text))):
        return dest
    from .batch.items import relative_name
    from .engine.request import check_url

    check_url(url, given)  # a bad URL is named as such, not as a missing object name
    name = unquote(urlsplit(url).path.rpartition("/")[2])
    if not name:
        raise InvalidArgument(
            f"dest {text} is a directory and the URL has no object name to put in it "
            "(it ends with '/'); give the file's path",
            url=url,
        )
    return Path(os.path.expanduser(text)) / relative_name(name)


def check_processor(process: object) -> Processor | None:
    """``None``, or a processor (the extract package loads only when one is given)."""
    if process is None:
        return None
    from .extract._glue import check_processor as check

    return check(process)


@dataclass(frozen=True)
class BatchArguments:
    """What ``start`` and ``prefetch`` share, checked: a batch's inputs and how to run them."""

    items: Iterable[object]
    dest_dir: Path
    sync: bool
    progress: ProgressCallback | None
    process: Processor | None
    checksums: ChecksumTable | None
    runner: Runner | None  # None: the downloader's own threads
    on_end: Callable[[], None] | None  # closes the bars ``progress=True`` made


def batch_arguments(
    engine: Engine,
    items: Iterable[object] | str,
    dest_dir: PathLike,
    *,
    sync: bool = False,
    progress: ProgressCallback | bool | None = None,
    executor: Executor | None = None,
    process: Processor | None = None,
    checksums: str | os.PathLike[str] | Mapping[str, str] | None = None,
) -> BatchArguments:
    """The arguments of a batch, each checked (an :class:`InvalidArgument` before traffic)."""
    from .batch.checksums import checksum_table

    owned = progress is True  # our TqdmProgress: the job closes it when it ends
    bars = check_progress(progress)
    table = checksum_table(checksums)
    check_bool(sync, "sync")
    inputs, folder = as_inputs(items), check_dest_dir(dest_dir)
    processor = check_processor(process)
    runner: Runner | None = None  # default: local threads
    if executor is not None:  # see resumable.batch.fanout
        from .batch.fanout import FanoutRunner

        if processor is not None:
            raise InvalidArgument(
                "process= cannot be combined with executor= yet: extract after the batch, "
                "or run the batch without an executor"
            )
        runner = FanoutRunner(engine, executor, folder)
    on_end = (lambda: close_progress(bars)) if owned else None
    return BatchArguments(inputs, folder, sync, bars, processor, table, runner, on_end)


def start_job(
    engine: Engine, items: Iterable[object] | str, dest_dir: PathLike, **options: Any
) -> Job:
    """``ResumableDownloader.start``: check the arguments, start the :class:`Job`."""
    from .batch.job import Job

    a = batch_arguments(engine, items, dest_dir, **options)
    return Job(
        engine,
        a.items,
        a.dest_dir,
        sync=a.sync,
        progress=a.progress,
        process=a.process,
        checksums=a.checksums,
        runner=a.runner,
        on_end=a.on_end,
    )


def prefetch(
    engine: Engine,
    items: Iterable[object] | str,
    dest_dir: PathLike,
    ahead: int,
    keep: bool,
    max_bytes: int | None,
    errors: str,
    options: Mapping[str, Any],
) -> Iterator[DownloadResult]:
    """``ResumableDownloader.prefetch``: check the arguments, return the results' iterator
    (its batch starts with the first ``next()``; see :mod:`resumable.batch.prefetch`)."""
    from .batch.prefetch import Prefetch, check_window

    if "sync" in options:
        raise InvalidArgument("prefetch takes no sync= (it never deletes what it did not fetch)")
    window = check_window(ahead=ahead, keep=keep, max_bytes=max_bytes, errors=errors)
    a = batch_arguments(engine, items, dest_dir, **options)
    return Prefetch(
        engine,
        a.items,
        a.dest_dir,
        window,
        progress=a.progress,
        process=a.process,
        checksums=a.checksums,
        runner=a.runner,
        on_end=a.on_end,
    ).results()
