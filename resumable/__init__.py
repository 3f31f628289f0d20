"""resumable: download large files and whole datasets, never corrupt, never restarted from zero.

>>> import resumable
>>> r = resumable.download(url, "data/shard-000000.tar", sha256=digest)   # doctest: +SKIP
>>> r.status, r.bytes_transferred                                         # doctest: +SKIP
('resumed', 5368709120)

``import resumable`` imports neither requests, urllib3, fsspec nor tqdm: a source's library is
imported the first time its URL scheme is used, and tqdm when a ``TqdmProgress`` is made.
Nor asyncio: ``resumable.adownload`` (from :mod:`resumable.aio`) loads it on first use.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .api import DownloadResult, ResumableDownloader, download
from .batch.items import Item
from .errors import (
    AccessDenied,
    ArchiveTooLarge,
    BatchError,
    Cancelled,
    CannotConnect,
    ChecksumMismatch,
    ConnectionFailed,
    ConnectionRetriesExhausted,
    ConnectTimeout,
    CorruptArchive,
    ExecutorError,
    ExtractionError,
    InternalError,
    InvalidArgument,
    LocalError,
    PartialTakenOver,
    ProtocolMismatch,
    RemoteError,
    ResumableError,
    RetriesExhausted,
    ServerBusy,
    SizeMismatch,
    SourceNotFound,
    StallTimeout,
    TimeoutRetriesExhausted,
    TransientError,
    UnsafeArchive,
    UntrustedCertificate,
    VerificationError,
)
from .progress import EventKind, ProgressEvent
from .retry import RetryPolicy, Timeouts
from .sources import RemoteInfo, register

if TYPE_CHECKING:  # loaded on first use (see __getattr__); named here for type checkers
    from .aio import adownload
    from .batch.checksums import read_checksums
    from .batch.job import BatchResult, FileProgress, Job, JobStatus
    from .batch.plan import Plan
    from .batch.sharding import shard, worker_shard
    from .batch.templates import expand, read_links, read_object_list
    from .extract import AutoExtract, Decompress, ExtractLimits, ExtractResult, Untar, Unzip
    from .progress.bars import TqdmProgress
    from .progress.fsspec import FsspecCallbackProgress

# Public names whose modules load on first use: what a script needs to start a download is
# loaded by ``import resumable``; batches' results, sharding, inputs, extraction and the bars
# load when first named. ``asyncio`` (for ``adownload``) is the largest of them.
_LAZY = {
    "adownload": ".aio",
    "read_checksums": ".batch.checksums",
    **dict.fromkeys(("BatchResult", "FileProgress", "Job", "JobStatus"), ".batch.job"),
    "Plan": ".batch.plan",
    **dict.fromkeys(("shard", "worker_shard"), ".batch.sharding"),
    **dict.fromkeys(("expand", "read_links", "read_object_list"), ".batch.templates"),
    **dict.fromkeys(
        ("AutoExtract", "Decompress", "ExtractLimits", "ExtractResult", "Untar", "Unzip"),
        ".extract",
    ),
    "TqdmProgress": ".progress.bars",
    "FsspecCallbackProgress": ".progress.fsspec",
}

__all__ = [
    "AccessDenied",
    "ArchiveTooLarge",
    "AutoExtract",
    "BatchError",
    "BatchResult",
    "Cancelled",
    "CannotConnect",
    "ChecksumMismatch",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConnectionRetriesExhausted",
    "CorruptArchive",
    "Decompress",
    "DownloadResult",
    "EventKind",
    "ExecutorError",
    "ExtractLimits",
    "ExtractResult",
    "ExtractionError",
    "FileProgress",
    "FsspecCallbackProgress",
    "InternalError",
    "InvalidArgument",
    "Item",
    "Job",
    "JobStatus",
    "LocalError",
    "PartialTakenOver",
    "Plan",
    "ProgressEvent",
    "ProtocolMismatch",
    "RemoteError",
    "RemoteInfo",
    "ResumableDownloader",
    "ResumableError",
    "RetriesExhausted",
    "RetryPolicy",
    "ServerBusy",
    "SizeMismatch",
    "SourceNotFound",
    "StallTimeout",
    "TimeoutRetriesExhausted",
    "Timeouts",
    "TqdmProgress",
    "TransientError",
    "UnsafeArchive",
    "Untar",
    "UntrustedCertificate",
    "Unzip",
    "VerificationError",
    "__version__",
    "adownload",
    "download",
    "expand",
    "read_checksums",
    "read_links",
    "read_object_list",
    "register",
    "shard",
    "worker_shard",
]


def __getattr__(name: str) -> Any:
    """A public name of :data:`_LAZY`, imported on first use and then kept as an attribute
    (PEP 562), so ``import resumable`` costs what a first download needs (issue 18 item 7)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
