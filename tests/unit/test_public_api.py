"""The public surface: exactly what __all__ promises, and an import that stays light."""

from __future__ import annotations

import inspect
import subprocess
import sys

import resumable

EXPECTED = {
    "AccessDenied",
    "ArchiveTooLarge",
    "AutoExtract",
    "CorruptArchive",
    "Decompress",
    "ExtractLimits",
    "ExtractResult",
    "ExtractionError",
    "InternalError",
    "UnsafeArchive",
    "Untar",
    "Unzip",
    "BatchError",
    "BatchResult",
    "Cancelled",
    "ChecksumMismatch",
    "ConnectionFailed",
    "TimeoutRetriesExhausted",
    "ConnectTimeout",
    "ConnectionRetriesExhausted",
    "CannotConnect",
    "DownloadResult",
    "EventKind",
    "ExecutorError",
    "FileProgress",
    "FsspecCallbackProgress",
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
    "Timeouts",
    "TqdmProgress",
    "TransientError",
    "UntrustedCertificate",
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
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(resumable.__all__) == EXPECTED
    assert len(resumable.__all__) == len(EXPECTED)
    for name in resumable.__all__:
        assert getattr(resumable, name) is not None


def test_public_names_are_documented() -> None:
    for name in resumable.__all__:
        obj = getattr(resumable, name)
        if callable(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_import_resumable_imports_no_heavy_dependency() -> None:
    code = (
        "import sys, resumable; "
        "print(','.join(m for m in ('requests', 'urllib3', 'fsspec', 'tqdm', 'filelock', "
        "'distributed', 'dask', 'asyncio') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_download_signatures_follow_the_contract() -> None:
    for fn in (resumable.download, resumable.ResumableDownloader.download):
        params = inspect.signature(fn).parameters
        for name in ("size", "sha256", "checksum", "progress"):
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
            assert params[name].default is None
    init = inspect.signature(resumable.ResumableDownloader).parameters
    assert list(init)[:4] == ["workers", "connections", "rate_limit", "storage_options"]
    assert init["workers"].default == 8
    assert init["connections"].default is None


def test_download_result_fields_follow_the_contract() -> None:
    fields = list(resumable.DownloadResult.__dataclass_fields__)
    assert fields[:6] == ["url", "path", "size", "sha256", "status", "bytes_transferred"]


def test_event_kinds_cover_the_contract() -> None:
    kinds = {k.value for k in resumable.EventKind}
    download = {"started", "progress", "retrying", "verified", "done", "failed", "skipped"}
    assert kinds == download | {"extracting", "extracted"}
