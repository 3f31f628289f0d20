"""resumable: download large files and whole datasets, never corrupt, never restarted from zero.

>>> import resumable
>>> r = resumable.download(url, "data/shard-000000.tar", sha256=digest)   # doctest: +SKIP
>>> r.status, r.bytes_transferred                                         # doctest: +SKIP
('resumed', 5368709120)

``import resumable`` imports neither requests, urllib3, fsspec nor tqdm: a source's library is
imported the first time its URL scheme is used, and tqdm when a ``TqdmProgress`` is made.
Nor asyncio: ``resumable.adownload`` (from :mod:`resumable.aio`) loads it on first use.
"""

from typing import Any

from ._version import __version__
from .api import DownloadResult, ResumableDownloader, download
from .batch.checksums import read_checksums
from .batch.items import Item
from .batch.job import BatchResult, FileProgress, Job, JobStatus
from .batch.plan import Plan
from .batch.sharding import shard, worker_shard
from .batch.templates import expand, read_links, read_object_list
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
from .extract import (
    AutoExtract,
    Decompress,
    ExtractLimits,
    ExtractResult,
    Untar,
    Unzip,
)
from .progress import EventKind, ProgressEvent
from .progress.bars import TqdmProgress
from .progress.fsspec import FsspecCallbackProgress
from .retry import RetryPolicy, Timeouts
from .sources import RemoteInfo, register

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
    """``resumable.adownload``: imported on first use (asyncio costs more than the rest)."""
    if name == "adownload":
        from .aio import adownload

        return adownload
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
