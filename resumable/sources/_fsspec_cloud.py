"""Object-store backends for the fsspec source: S3 (s3fs), GCS (gcsfs), Azure Blob (adlfs).

- :class:`S3Backend`: ``head_object`` with ``ChecksumMode``; one streamed ``get_object`` per
  body under ``VersionId`` and ``If-Match`` (S3 and moto ignore ``If-Range``).
- :class:`GCSBackend`: object metadata (md5, crc32c, generation); one streamed GET per body for
  the generation, checked against ``x-goog-generation`` when the server sends it.
- :class:`AzureBackend`: blob properties (Content-MD5, ETag); one streamed Get Blob per body
  under ``If-Match`` (the SDK's operation and pipeline, the body left unread: its downloader
  reads each GET whole into memory first, and a GET per 32 MiB chunk cost 1 GiB from
  Azurite 2.9 s against 1.7 s streamed, benchmarks/cloud.py).

Every body is an aiohttp response read by :class:`~._fsspec_readers.ResponseReader` straight
into the engine's blocks on fsspec's event loop (one loop crossing per block, no joins).

Checksums are reported only when they cover the whole object, as lowercase hex (CRCs as the 8
hex digits of the big-endian value): never an S3 multipart ETag, a composite checksum, the ETag
of an SSE-KMS/SSE-C object, or anything learnt from a listing that cannot tell those apart.

The libraries are reached through the filesystem objects handed in (their sessions, loops and
credentials), or imported inside the functions that need them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from fsspec.asyn import sync

from ..errors import InvalidArgument
from . import RemoteInfo, SourceConfig
from ._fsspec_backends import Backend, Target, byte_count, check_answer, range_header, text
from ._fsspec_readers import EmptyReader, Reader, ResponseReader, StreamReader, on_loop

__all__ = ["AzureBackend", "GCSBackend", "S3Backend", "StatusError"]


class StatusError(Exception):
    """Internal: an HTTP status from a request we made ourselves (the GCS stream)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


class S3Backend(Backend):
    """S3 (s3fs): HEAD with checksums; one GET per body under ``VersionId``/``If-Match``."""

    def defaults(self, config: SourceConfig) -> dict[str, Any]:
        return {
            "use_listings_cache": False,
            "config_kwargs": {
                "connect_timeout": config.timeouts.connect,
                "read_timeout": config.timeouts.stall,
                "max_pool_connections": config.max_connections,
                # botocore's own retries would hide failures for ~8 s per request: the
                # downloader's RetryPolicy decides.
                "retries": {"mode": "standard", "total_max_attempts": 1},
            },
        }

    def prepare(self, fs: Any, options: Mapping[str, Any]) -> None:
        if "retries" not in options:
            fs.retries = 1  # s3fs would retry a stalled request 5 times, silently

    def stat(self, target: Target) -> RemoteInfo:
        bucket, key, version = target.fs.split_path(target.path)
        if not key:
            raise InvalidArgument("an S3 URL needs a bucket and a key", url=target.url)
        pin = {"VersionId": version} if version else {}
        head = target.fs.call_s3(
            "head_object", Bucket=bucket, Key=key, ChecksumMode="ENABLED", **pin
        )
        return self.describe(target.url, head)

    def describe(self, url: str, details: Mapping[str, Any]) -> RemoteInfo:
        etag = text(details.get("ETag"))
        size = details.get("ContentLength", details.get("size", details.get("Size")))
        version = text(details.get("VersionId"))
        checksums: dict[str, str] = {}
        encrypted = details.get("SSECustomerAlgorithm") or str(
            details.get("ServerSideEncryption", "")
        ).startswith("aws:kms")
        plain_md5 = re.fullmatch(r'"?([0-9a-fA-F]{32})"?', etag or "")
        # Only a HEAD proves the ETag is an MD5: listings do not say whether SSE-KMS is on.
        if plain_md5 and "ContentLength" in details and not encrypted:
            checksums["md5"] = plain_md5.group(1).lower()
        # A multipart object's checksums are composite (of the parts) unless S3 says otherwise;
        # moto even sends them without the "-N" suffix, so the ETag decides.
        multipart = re.search(r"-\d+\"?$", etag or "") is not None
        kind_of_checksum = details.get("ChecksumType", None if multipart else "FULL_OBJECT")
        if kind_of_checksum == "FULL_OBJECT":
            for field, kind in S3_CHECKSUMS:
                value = b64_hex(details.get(field), DIGEST_BYTES[kind])
                if value:
                    checksums[kind] = value
        return RemoteInfo(
            url=url,
            size=int(size) if size is not None else None,
            etag=etag,
            last_modified=text(details.get("LastModified")),
            version=version if version and version != "null" else None,
            checksums=checksums,
            accept_ranges=True,
        )

    def reader(self, target: Target, info: RemoteInfo, start: int, end: int | None) -> Reader:
        length = byte_count(info, start, end)
        if length == 0:
            return EmptyReader()
        fs = target.fs
        bucket, key, _ = fs.split_path(target.path)
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if info.version:
            request["VersionId"] = info.version
        if info.etag:
            request["IfMatch"] = info.etag  # S3 (and moto) ignore If-Range; If-Match is honoured
        if start or end is not None:
            request["Range"] = range_header(start, length)
        response = fs.call_s3("get_object", **request)
        body = response["Body"]
        stall = target.config.timeouts.stall
        try:
            check_answer(
                info,
                start,
                content_range=response.get("ContentRange"),
                etag=response.get("ETag"),
                version=response.get("VersionId"),
            )
        except BaseException:
            on_loop(fs.loop, body.close, stall)
            raise
        pinned = bool(info.version or info.etag)
        content = getattr(getattr(body, "raw_stream", None), "content", None)
        if content is None or not hasattr(content, "read_nowait"):  # not aiohttp (httpx)
            return StreamReader(fs.loop, body.read, body.close, stall, pinned=pinned)
        return ResponseReader(fs.loop, content, body.close, stall, pinned=pinned)


class GCSBackend(Backend):
    """GCS (gcsfs): object metadata with md5/crc32c; one GET per body for the generation.

    Requests go through gcsfs's own aiohttp session and credentials, but not through its
    request helper: gcsfs has no public streaming read, and its helper retries a failing
    request for about 30 s (and a stalled one for six stall timeouts) before anyone hears of
    it. Here every request has our connect and stall timeouts, no total timeout and no
    retries of its own: the downloader's RetryPolicy decides.
    """

    def defaults(self, config: SourceConfig) -> dict[str, Any]:
        import aiohttp  # gcsfs's own dependency

        timeout = aiohttp.ClientTimeout(  # per socket read: no total limit on a moving transfer
            total=None, sock_connect=config.timeouts.connect, sock_read=config.timeouts.stall
        )
        return {"use_listings_cache": False, "requests_timeout": timeout}

    def stat(self, target: Target) -> RemoteInfo:
        fs = target.fs
        bucket, key, generation = fs.split_path(target.path)
        if not key:
            raise InvalidArgument("a GCS URL needs a bucket and an object name", url=target.url)
        url = fs._format_path("b/{}/o/{}", (bucket, key))
        params = {"generation": generation} if generation else {}

        async def get() -> Any:
            response = await _gcs_request(fs, target, url, params, {})
            try:
                return await response.json(content_type=None)
            finally:
                response.release()

        return self.describe(target.url, sync(fs.loop, get))

    def describe(self, url: str, details: Mapping[str, Any]) -> RemoteInfo:
        checksums = {
            kind: value
            for kind, field in (("md5", "md5Hash"), ("crc32c", "crc32c"))
            if (value := b64_hex(details.get(field), DIGEST_BYTES[kind]))
        }
        size = details.get("size")
        return RemoteInfo(
            url=url,
            size=int(size) if size is not None else None,
            etag=text(details.get("etag")),
            last_modified=text(details.get("updated")),
            version=text(details.get("generation")),
            checksums=checksums,
            accept_ranges=True,
        )

    def reader(self, target: Target, info: RemoteInfo, start: int, end: int | None) -> Reader:
        length = byte_count(info, start, end)
        if length == 0:
            return EmptyReader()
        fs = target.fs
        headers = {"Range": range_header(start, length)} if start or end is not None else {}
        params = {}
        if fs.split_path(target.path)[2] is None and info.version:
            params["generation"] = info.version  # unless the URL names one already
        response = sync(fs.loop, _gcs_request, fs, target, fs.url(target.path), params, headers)
        generation = response.headers.get("x-goog-generation")
        stall = target.config.timeouts.stall

        def close() -> None:
            # Back to the pool only when fully read; a half-read connection is dropped.
            response.release() if response.content.at_eof() else response.close()

        try:
            check_answer(
                info,
                start,
                content_range=response.headers.get("Content-Range"),
                version=generation,
            )
        except BaseException:
            on_loop(fs.loop, response.close, stall)
            raise
        # Without x-goog-generation (emulators) nothing proved the version: check at the end.
        return ResponseReader(
            fs.loop,
            response.content,
            close,
            stall,
            pinned=generation is not None and info.version is not None,
        )


async def _gcs_request(
    fs: Any, target: Target, url: str, params: dict[str, str], headers: dict[str, str]
) -> Any:
    """One GET with gcsfs's session and credentials, our timeouts, no retries; errors raised."""
    import aiohttp

    timeouts = target.config.timeouts
    await fs._set_session()
    response = await fs.session.get(
        url,
        params={**fs._get_params({}), **params},
        headers=fs._get_headers(headers),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.stall
        ),
    )
    if response.status >= 300:
        message = (await response.read())[:300].decode("utf-8", "replace")
        response.release()
        raise StatusError(response.status, message)
    return response


class AzureBackend(Backend):
    """Azure Blob (adlfs): properties with Content-MD5; one streamed GET under If-Match."""

    def defaults(self, config: SourceConfig) -> dict[str, Any]:
        return {
            "use_listings_cache": False,
            "connection_timeout": config.timeouts.connect,
            "read_timeout": config.timeouts.stall,
        }

    def stat(self, target: Target) -> RemoteInfo:
        fs = target.fs
        container, blob, version_id = fs.split_path(target.path)
        if not blob:
            raise InvalidArgument("an Azure URL needs a container and a blob", url=target.url)
        timeouts = target.config.timeouts

        async def properties() -> Any:
            async with fs.service_client.get_blob_client(container, blob) as client:
                return await client.get_blob_properties(
                    version_id=version_id,
                    connection_timeout=timeouts.connect,
                    read_timeout=timeouts.stall,
                    retry_total=0,  # the downloader's RetryPolicy decides
                )

        return self.describe(target.url, sync(fs.loop, properties))

    def describe(self, url: str, details: Mapping[str, Any]) -> RemoteInfo:
        settings = details.get("content_settings") or {}
        md5 = settings.get("content_md5") if isinstance(settings, Mapping) else None
        md5 = md5 if md5 is not None else getattr(settings, "content_md5", None)
        size = details.get("size")
        return RemoteInfo(
            url=url,
            size=int(size) if size is not None else None,
            etag=text(details.get("etag")),
            last_modified=text(details.get("last_modified")),
            version=text(details.get("version_id")),
            checksums={"md5": bytes(md5).hex()} if md5 and len(md5) == 16 else {},
            accept_ranges=True,
        )

    def reader(self, target: Target, info: RemoteInfo, start: int, end: int | None) -> Reader:
        length = byte_count(info, start, end)
        if length == 0:
            return EmptyReader()
        fs = target.fs
        timeouts = target.config.timeouts
        container, blob, version_id = fs.split_path(target.path)
        client = fs.service_client.get_blob_client(container, blob)
        pin = {"If-Match": info.etag} if info.etag else {}  # Azurite ignores If-Range
        ranged = range_header(start, length) if start or end is not None else None

        async def get() -> Any:
            # The SDK's own download operation (its pipeline: credentials, signing, API
            # version) with the body left unread: the SDK's downloader would read each GET
            # whole into memory before handing any of it over.
            return await client._client.blob.download(
                version_id=version_id,
                range=ranged,
                headers=pin,
                connection_timeout=timeouts.connect,
                read_timeout=timeouts.stall,
                retry_total=0,  # the downloader's RetryPolicy decides
                cls=lambda pipeline_response, *_: pipeline_response,
            )

        response = None
        try:
            response = sync(fs.loop, get).http_response.internal_response  # aiohttp's
            check_answer(
                info,
                start,
                content_range=response.headers.get("Content-Range"),
                etag=response.headers.get("ETag"),
            )
        except BaseException:
            on_loop(fs.loop, _closer(response, client), timeouts.stall)
            raise
        pinned = info.etag is not None
        close = _closer(response, client)
        return ResponseReader(fs.loop, response.content, close, timeouts.stall, pinned=pinned)


def _closer(response: Any, client: Any) -> Any:
    """Close an Azure read: its response (back to the pool only when fully read), its client."""

    async def close() -> None:
        if response is not None:
            response.release() if response.content.at_eof() else response.close()
        await client.close()

    return close


S3_CHECKSUMS = (
    ("ChecksumSHA256", "sha256"),
    ("ChecksumSHA1", "sha1"),
    ("ChecksumCRC32C", "crc32c"),
    ("ChecksumCRC32", "crc32"),
)
DIGEST_BYTES = {"md5": 16, "sha1": 20, "sha256": 32, "crc32": 4, "crc32c": 4}


def b64_hex(value: Any, size: int) -> str | None:
    """A base64 checksum as lowercase hex, or None if it is absent, composite or malformed."""
    if not isinstance(value, str) or not value or "-" in value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == size else None
