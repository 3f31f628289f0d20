"""What an HTTP answer says, read strictly: its status, its framing and content coding, where
its body starts and what object version it describes.

The HTTP(S) source asks for exact bytes (``Accept-Encoding: identity``) and never trusts a
Range request: these functions turn the answer's headers into a typed error or into the
``(start, RemoteInfo)`` the downloader compares with what it asked for.
"""

from __future__ import annotations

import re
from typing import Any

import urllib3

from ..errors import (
    AccessDenied,
    ProtocolMismatch,
    RemoteError,
    ServerBusy,
    SourceNotFound,
)
from ..retry import parse_retry_after
from . import RemoteInfo

__all__ = [
    "CONTENT_RANGE",
    "Response",
    "announced",
    "check_encoding",
    "check_framing",
    "decodable_encoding",
    "decoder_finished",
    "describe",
    "is_encoded",
    "raise_for_status",
]

CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)

# requests' answer, the urllib3 answer of a streamed GET, or the plain engine's (see http.py).
Response = Any


def is_encoded(response: Response) -> bool:
    return response.headers.get("Content-Encoding", "identity").strip().lower() not in (
        "",
        "identity",
    )


def content_codings(response: Response) -> list[str]:
    """The content codings applied to the body, in order (none for identity)."""
    value = str(response.headers.get("Content-Encoding", "")).strip().lower()
    codings = [coding.strip() for coding in value.split(",")]
    return [] if codings in ([""], ["identity"]) else codings


def undecodable(response: Response) -> list[str]:
    """The codings of the body that urllib3 cannot decode here (brotli and zstd need
    optional packages; ``compress`` and unknown names nobody decodes). ``identity`` in a
    stack of codings is refused too: urllib3 would take it for deflate."""
    known = urllib3.response.HTTPResponse.CONTENT_DECODERS
    codings = content_codings(response)
    unknown = [coding for coding in codings if coding not in known]
    if len(codings) > getattr(urllib3.response.MultiDecoder, "max_decode_links", 5):
        unknown = unknown or codings
    return unknown


def decodable_encoding(response: Response) -> bool:
    return bool(content_codings(response)) and not undecodable(response)


def check_encoding(response: Response, url: str) -> None:
    """Refuse a body in a coding this client cannot decode, before any byte is stored.

    The request said ``Accept-Encoding: identity``; a server that encodes anyway with a coding
    we cannot undo would have its encoded bytes stored and reported downloaded. Permanent for
    this URL (a :class:`RemoteError`: the server does it again; a mirror may not)."""
    unknown = undecodable(response)
    if unknown:
        raise RemoteError(
            f"the body came with Content-Encoding "
            f"{response.headers.get('Content-Encoding')!r} although identity was asked for, "
            f"and this client cannot decode {', '.join(unknown)} (urllib3 decodes br with the "
            "brotli package and zstd with backports.zstd, when installed)",
            url=url,
            status=response.status_code,
        )


def check_framing(response: Response, url: str) -> None:
    """Refuse a transfer coding other than ``chunked``. ``http.client`` recognises only
    ``chunked`` alone; with any other (``gzip, chunked``, an unknown name) it would read the
    body as it comes, chunk-size lines and coded bytes included, and they would be stored."""
    value = str(response.headers.get("Transfer-Encoding", "")).strip().lower()
    codings = [coding.strip() for coding in value.split(",") if coding.strip()]
    if codings and codings not in (["chunked"], ["identity"]):
        raise RemoteError(
            f"the body came with Transfer-Encoding {value!r}; this client reads only chunked",
            url=url,
            status=response.status_code,
        )


def decoder_finished(decoder: Any) -> bool:
    """Whether urllib3's decoder reached the end of its compressed stream (``True`` when it
    cannot tell: only zlib's decoders, gzip and deflate, say so)."""
    parts = getattr(decoder, "_decoders", None)  # a stack of codings
    if parts is not None:
        return all(decoder_finished(part) for part in parts)
    if getattr(decoder, "_state", None) == urllib3.response.GzipDecoderState.SWALLOW_DATA:
        return True  # trailing bytes after whole gzip members, as other clients accept
    return getattr(getattr(decoder, "_obj", None), "eof", True) is not False


def describe(response: Response, url: str) -> tuple[int, RemoteInfo]:
    """Where the body starts, and what the headers say about the whole object."""
    headers = response.headers
    start = 0
    size: int | None = None
    if response.status_code == 206:
        match = CONTENT_RANGE.match(headers.get("Content-Range", ""))
        if match is None:
            raise ProtocolMismatch(
                f"HTTP 206 with an unusable Content-Range {headers.get('Content-Range')!r}",
                url=url,
            )
        start = int(match.group(1))
        size = None if match.group(3) == "*" else int(match.group(3))
    elif not is_encoded(response):
        length = headers.get("Content-Length", "")
        size = int(length) if length.strip().isdigit() else None
    accepts = response.status_code == 206 or "bytes" in headers.get("Accept-Ranges", "").lower()
    info = RemoteInfo(
        url=url,
        size=size,
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
        accept_ranges=accepts and not is_encoded(response),
    )
    return start, info


def announced(response: Response) -> int | None:
    """The body's length as the answer announced it: its Content-Range span (a 206), else its
    Content-Length; ``None`` when encoded (the decoded length is unknown) or not said."""
    if response.status_code == 206:
        match = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        return None if match is None else int(match.group(2)) - int(match.group(1)) + 1
    if is_encoded(response):
        return None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.strip().isdigit() else None


def raise_for_status(response: Response, url: str) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    if status in (404, 410):
        raise SourceNotFound(f"HTTP {status}: no such object", url=url)
    if status in (401, 403):
        raise AccessDenied(f"HTTP {status}: access denied", url=url, status=status)
    if status == 429 or (500 <= status <= 599 and status not in (501, 505)):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise ServerBusy(url=url, status=status, retry_after=retry_after)
    reason = f"unexpected HTTP {status} {response.reason or ''}".strip()
    raise RemoteError(reason, url=url, status=status)
