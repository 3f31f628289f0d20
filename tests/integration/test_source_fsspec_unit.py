"""The fsspec source without servers: registry, metadata normalisation, the error table.

Each backend's metadata is turned into a :class:`RemoteInfo` by one small function, and each
backend exception into one of ours by one table; both are checked here on the shapes the
libraries produce (botocore ``ClientError`` dicts, gcsfs ``HttpError``, azure-core errors).
"""

from __future__ import annotations

import base64
import datetime as dt
import errno
import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

import resumable
from resumable.sources import RemoteInfo, SourceConfig, register, registered_schemes, source_class
from resumable.sources._fsspec_backends import Backend
from resumable.sources._fsspec_cloud import AzureBackend, GCSBackend, S3Backend
from resumable.sources._fsspec_errors import Boundary
from resumable.sources._fsspec_readers import Changed
from resumable.sources.fsspec import FsspecSource


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# -- registry ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "file"])
def test_cloud_and_local_schemes_are_registered(scheme: str) -> None:
    assert scheme in registered_schemes()
    assert source_class(scheme) is FsspecSource


@pytest.mark.parametrize("scheme", ["sftp", "ftp", "webhdfs", "github", "HF"])
def test_any_other_protocol_fsspec_knows_falls_back_to_it(scheme: str) -> None:
    assert source_class(scheme) is FsspecSource


def test_an_explicit_registration_wins_over_the_fallback() -> None:
    class Mine:
        def __init__(self, config: SourceConfig) -> None:
            self.config = config

    register("ftp", Mine)
    try:
        assert source_class("ftp") is Mine
    finally:
        register("ftp", "resumable.sources.fsspec:FsspecSource")


def test_import_resumable_imports_no_fsspec_backend() -> None:
    code = (
        "import sys, resumable; from resumable.sources import source_class;"
        "source_class('s3');"  # resolving the class imports fsspec, not s3fs/botocore
        "print(','.join(m for m in ('s3fs', 'gcsfs', 'adlfs', 'botocore', 'aiohttp')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- metadata ------------------------------------------------------------------------------------

DATA = b"the quick brown fox"
MD5 = hashlib.md5(DATA).hexdigest()


def test_s3_head_single_part() -> None:
    head = {
        "ContentLength": 19,
        "ETag": f'"{MD5}"',
        "LastModified": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "VersionId": "v1",
        "ChecksumSHA256": b64(hashlib.sha256(DATA).digest()),
        "ChecksumCRC32C": b64(bytes.fromhex("22620404")),
        "ChecksumType": "FULL_OBJECT",
    }
    info = S3Backend().describe("s3://b/k", head)
    assert info == RemoteInfo(
        url="s3://b/k",
        size=19,
        etag=f'"{MD5}"',
        last_modified="2024-01-02T03:04:05+00:00",
        version="v1",
        checksums={
            "md5": MD5,
            "sha256": hashlib.sha256(DATA).hexdigest(),
            "crc32c": "22620404",
        },
        accept_ranges=True,
    )


@pytest.mark.parametrize(
    ("extra", "kinds"),
    [
        ({"ETag": '"0123456789abcdef0123456789abcdef-12"'}, set()),  # multipart: no md5
        ({"ChecksumType": "COMPOSITE", "ChecksumCRC32": b64(b"1234") + "-3"}, {"md5"}),
        ({"ChecksumCRC32": b64(b"1234") + "-3"}, {"md5"}),  # a composite value without a type
        ({"ETag": '"00000000000000000000000000000000-2"', "ChecksumCRC32": b64(b"1234")}, set()),
        ({"ServerSideEncryption": "aws:kms"}, set()),  # an SSE-KMS ETag is not an MD5
        ({"ServerSideEncryption": "aws:kms:dsse"}, set()),
        ({"SSECustomerAlgorithm": "AES256"}, set()),
        ({"ServerSideEncryption": "AES256"}, {"md5"}),  # SSE-S3 keeps the MD5 ETag
        ({"ChecksumCRC32": "not base64!"}, {"md5"}),
        ({"ChecksumCRC32": b64(b"12345")}, {"md5"}),  # wrong length
        ({"ChecksumCRC32": b64(b"\x00\x00\x00\x01")}, {"md5", "crc32"}),
    ],
)
def test_s3_checksums_are_whole_object_only(extra: dict[str, Any], kinds: set[str]) -> None:
    head = {"ContentLength": 19, "ETag": f'"{MD5}"', **extra}
    assert set(S3Backend().describe("s3://b/k", head).checksums) == kinds


def test_s3_listing_entries_claim_no_md5_and_null_versions_are_none() -> None:
    entry = {"name": "b/k", "size": 19, "ETag": f'"{MD5}"', "type": "file", "VersionId": "null"}
    info = S3Backend().describe("s3://b/k", entry)
    assert info.size == 19
    assert info.checksums == {}  # a listing cannot show SSE-KMS: no claim
    assert info.version is None


def test_gcs_metadata() -> None:
    details = {
        "size": "19",
        "md5Hash": b64(hashlib.md5(DATA).digest()),
        "crc32c": b64(bytes.fromhex("0a0b0c0d")),
        "generation": "1700000000000001",
        "etag": "CJ+g",
        "updated": "2024-01-02T03:04:05.000Z",
    }
    info = GCSBackend().describe("gs://b/k", details)
    assert info.checksums == {"md5": MD5, "crc32c": "0a0b0c0d"}
    assert info.version == "1700000000000001"
    assert info.size == 19
    composite = {k: v for k, v in details.items() if k != "md5Hash"}  # composed objects
    assert GCSBackend().describe("gs://b/k", composite).checksums == {"crc32c": "0a0b0c0d"}


def test_azure_metadata() -> None:
    details = {
        "size": 19,
        "etag": '"0x8DC0"',
        "last_modified": dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc),
        "content_settings": {"content_md5": bytearray(hashlib.md5(DATA).digest())},
    }
    info = AzureBackend().describe("az://c/k", details)
    assert info.checksums == {"md5": MD5}
    assert info.etag == '"0x8DC0"'
    staged = {**details, "content_settings": {"content_md5": None}}
    assert AzureBackend().describe("az://c/k", staged).checksums == {}


def test_generic_metadata_takes_what_there_is() -> None:
    info = Backend().describe("x://k", {"size": 5, "mtime": 1700000000.5, "type": "file"})
    assert info == RemoteInfo(url="x://k", size=5, last_modified="1700000000.5", accept_ranges=True)


# -- errors --------------------------------------------------------------------------------------


def client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


def wrapped(error: Exception) -> Exception:
    """As s3fs raises them: an OSError whose __cause__ is botocore's error."""
    from s3fs.errors import translate_boto_error

    translated: Exception = translate_boto_error(error)
    return translated


def gcs_error(code: int) -> Exception:
    from gcsfs.retry import HttpError

    return HttpError({"code": code, "message": "from GCS"})


def azure_error(status: int) -> Exception:
    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError(message="from Azure")
    error.status_code = status
    return error


CASES: list[tuple[str, Any, type[resumable.ResumableError]]] = [
    ("s3 404", lambda: wrapped(client_error("NoSuchKey", 404)), resumable.SourceNotFound),
    ("s3 403", lambda: wrapped(client_error("AccessDenied", 403)), resumable.AccessDenied),
    ("s3 slowdown", lambda: wrapped(client_error("SlowDown", 503)), resumable.ServerBusy),
    ("s3 500", lambda: wrapped(client_error("InternalError", 500)), resumable.ServerBusy),
    (
        "s3 timeout 400",
        lambda: wrapped(client_error("RequestTimeout", 400)),
        resumable.StallTimeout,
    ),
    ("s3 expired", lambda: wrapped(client_error("ExpiredToken", 400)), resumable.AccessDenied),
    (
        "s3 bucket",
        lambda: wrapped(client_error("InvalidBucketName", 400)),
        resumable.InvalidArgument,
    ),
    (
        "s3 412",
        lambda: wrapped(client_error("PreconditionFailed", 412)),
        resumable.ProtocolMismatch,
    ),
    ("s3 other", lambda: wrapped(client_error("MethodNotAllowed", 405)), resumable.RemoteError),
    ("gcs 404", lambda: FileNotFoundError("b/o/k"), resumable.SourceNotFound),
    ("gcs 403", lambda: OSError("Forbidden: b/o/k\nno"), resumable.AccessDenied),
    ("gcs 429", lambda: gcs_error(429), resumable.ServerBusy),
    ("gcs 503", lambda: gcs_error(503), resumable.ServerBusy),
    ("azure 503", lambda: azure_error(503), resumable.ServerBusy),
    ("azure 403", lambda: azure_error(403), resumable.AccessDenied),
    ("os timeout", lambda: TimeoutError("read"), resumable.StallTimeout),
    (
        "os reset",
        lambda: ConnectionResetError(errno.ECONNRESET, "reset"),
        resumable.ConnectionFailed,
    ),
    ("os eio", lambda: OSError(errno.EIO, "I/O error"), resumable.ConnectionFailed),
    ("os denied", lambda: PermissionError(errno.EACCES, "denied"), resumable.AccessDenied),
]


@pytest.mark.parametrize(("case", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_backend_errors_become_ours(
    case: str, make: Any, expected: type[resumable.ResumableError]
) -> None:
    boundary = Boundary({})
    original = make()
    with pytest.raises(expected) as caught, boundary.translated("s3://b/k"):
        raise original
    assert caught.value.url == "s3://b/k"
    assert caught.value.__cause__ is original


def test_library_exceptions_by_class() -> None:
    import aiohttp
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, ReadTimeoutError
    from fsspec.exceptions import FSTimeoutError

    boundary = Boundary({})
    for error, expected in [
        (EndpointConnectionError(endpoint_url="http://x"), resumable.ConnectionFailed),
        (ReadTimeoutError(endpoint_url="http://x"), resumable.StallTimeout),
        (NoCredentialsError(), resumable.AccessDenied),
        (aiohttp.ServerTimeoutError("slow"), resumable.StallTimeout),
        (aiohttp.ServerDisconnectedError(), resumable.ConnectionFailed),
        (FSTimeoutError(), resumable.StallTimeout),
    ]:
        with pytest.raises(expected), boundary.translated("s3://b/k"):
            raise error


def test_a_body_cut_short_is_a_connection_failure_not_a_400() -> None:
    """aiohttp says ``ContentLengthError(code=400)`` for a body cut short: no server status."""
    import aiohttp
    from aiohttp.http_exceptions import ContentLengthError

    cut = ContentLengthError("Not enough data to satisfy content length header")
    error = aiohttp.ClientPayloadError("Response payload is not completed")
    error.__cause__ = cut
    with pytest.raises(resumable.ConnectionFailed), Boundary({}).translated("az://c/b"):
        raise error


def test_not_found_and_412_inside_a_pinned_read_mean_changed() -> None:
    boundary = Boundary({})
    for error in (wrapped(client_error("PreconditionFailed", 412)), FileNotFoundError("gone")):
        with pytest.raises(Changed), boundary.translated("gs://b/k", pinned=True):
            raise error


def test_secrets_from_options_connection_strings_and_environment_are_scrubbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-value-42")
    account_key = "c2VjcmV0LWFjY291bnQta2V5LWZvci10ZXN0cw=="
    options = {
        "s3": {"key": "AKIAKEYID", "secret": "opt-secret-value", "endpoint_url": "http://h"},
        "az": {"connection_string": f"AccountName=dev;AccountKey={account_key};BlobEndpoint=x"},
        "gs": {"token": {"client_secret": "json-secret-value"}},
        "https": {"sas": "sv=2020&sig=signature-value-xyz"},
    }
    boundary = Boundary(options)
    text = (
        f"failed with opt-secret-value, key {account_key}, env-secret-value-42, "
        "json-secret-value, signature-value-xyz at https://h/x?sig=abc123&a=1"
    )
    scrubbed = boundary.scrub(text)
    for secret in ("opt-secret-value", account_key, "env-secret-value-42", "json-secret-value"):
        assert secret not in scrubbed
    assert "signature-value-xyz" not in scrubbed
    assert "abc123" not in scrubbed  # a signed URL is redacted too
    assert "failed with REDACTED" in scrubbed
    with pytest.raises(resumable.ConnectionFailed) as caught, boundary.translated("s3://b/k"):
        raise ConnectionError(text)
    assert caught.value.__cause__ is None  # the original quotes secrets: not chained
    assert caught.value.__suppress_context__


# -- filesystem options --------------------------------------------------------------------------


def test_options_merge_fsspec_config_our_defaults_and_the_callers(
    monkeypatch: pytest.MonkeyPatch, fsspec_source: Any
) -> None:
    import fsspec.config

    monkeypatch.setitem(
        fsspec.config.conf,
        "s3",
        {"anon": True, "endpoint_url": "http://from-config", "config_kwargs": {"retries": 9}},
    )
    source = fsspec_source({"s3": {"endpoint_url": "http://given", "key": "k", "secret": "s"}})
    fs = source._target("s3a://bucket/key").fs
    assert fs.anon is True  # from fsspec's configuration
    assert fs.endpoint_url == "http://given"  # the caller's options beat the configuration
    assert fs.config_kwargs["retries"] == 9  # configuration beats our default...
    assert fs.config_kwargs["read_timeout"] == SourceConfig().timeouts.stall  # ...fills the rest
    assert source._target("s3://bucket/other").fs is not fs  # per scheme as written
    assert source._target("s3a://bucket/other").fs is fs  # cached
    assert "secret" not in repr(source)


# -- a server that never answers -----------------------------------------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def silent_options(scheme: str, endpoint: str) -> dict[str, Any]:
    if scheme == "s3":
        return {"endpoint_url": endpoint, "key": "k", "secret": "s"}
    if scheme == "gs":
        return {"endpoint_url": endpoint, "token": "anon"}
    account_key = base64.b64encode(b"k" * 64).decode()
    return {
        "connection_string": f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={account_key};BlobEndpoint={endpoint}/devstoreaccount1;"
    }


@pytest.mark.parametrize("scheme", ["s3", "gs", "az"])
def test_a_silent_server_is_a_stall_not_a_hang(
    scheme: str, silent_endpoint: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No library retries hide the stall: one stall timeout, then the downloader's policy."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    began = time.monotonic()
    with (
        resumable.ResumableDownloader(
            storage_options={scheme: silent_options(scheme, silent_endpoint)},
            timeouts=resumable.Timeouts(connect=0.5, stall=0.5),
            retry=resumable.RetryPolicy(attempts=1),
        ) as d,
        pytest.raises(resumable.RetriesExhausted) as caught,
    ):
        d.download(f"{scheme}://bucket/key.bin", tmp_path / "key.bin")
    assert isinstance(caught.value.__cause__, resumable.StallTimeout)
    assert time.monotonic() - began < 5
