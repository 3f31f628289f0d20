"""One download, by value: :class:`DownloadRequest`, checked and parsed once at the edge.

Every caller (``download()``, a batch item, a fan-out worker, a plan's size probe, the
extraction glue) describes a file the same way, and the digests are parsed here only: the
``sha256=``/``checksum=`` strings become ``{algorithm: hex}`` before any traffic, so a bad digest
is an :class:`~resumable.errors.InvalidArgument` and nothing below parses again.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .._paths import check_loop_free, path_text
from ..errors import InvalidArgument
from ..locator import RefreshURL
from ..sources import Source, source_class
from ..verify import parse_expected
from .settings import check_connections, check_refresh

__all__ = ["DownloadRequest", "check_dest", "check_url", "make_request"]


@dataclass(frozen=True)
class DownloadRequest:
    """What to fetch and where, checked.

    Attributes:
        url: the object's URL; it names the file in the sidecar, results and errors.
        dest: the destination, absolute.
        scheme: ``url``'s scheme (its source).
        size: the expected size, or ``None``.
        expected: the expected digests, ``{algorithm: hex}``.
        mirrors: other URLs of the same object, tried in order (with their schemes).
        refresh_url: a fresh-URL hook for this download, or ``None`` (the settings' one).
        connections: most connections for this file, or ``None`` (the settings' or source's).
        refresh: fetch even if ``dest`` looks complete (a batch's ``sync`` saw a change).
        streamed: an extractor reads ``D.partial`` as it grows: one connection, and no direct
            path (which bypasses ``D.partial``).
    """

    url: str
    dest: Path
    scheme: str
    size: int | None = None
    expected: Mapping[str, str] = field(default_factory=dict)
    mirrors: tuple[tuple[str, str], ...] = ()
    refresh_url: RefreshURL | None = None
    connections: int | None = None
    refresh: bool = False
    streamed: bool = False


def make_request(
    url: object,
    dest: object,
    given: Mapping[str, Source],
    *,
    size: object = None,
    sha256: object = None,
    checksum: object = None,
    mirrors: object = (),
    refresh_url: object = None,
    connections: object = None,
    refresh: bool = False,
    streamed: bool = False,
    look: bool = True,
) -> DownloadRequest:
    """A checked request, or :class:`InvalidArgument` before any traffic.

    ``given``: the downloader's own source instances by scheme (a scheme with one is known even
    if unregistered). ``look=False`` skips the ``stat`` of ``dest`` (a batch's destinations are
    made by ``safe_destination``; the transfer refuses a directory anyway)."""
    scheme = check_url(url, given)
    if isinstance(mirrors, str) or not isinstance(mirrors, Sequence):
        raise InvalidArgument(f"mirrors must be a list of URLs, got {mirrors!r}")
    others = tuple((mirror, check_url(mirror, given)) for mirror in mirrors)
    check_refresh(refresh_url)
    target = check_dest(dest, look=look)
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise InvalidArgument(f"size must be a non-negative integer, got {size!r}")
    expected = parse_expected(sha256, checksum)  # type: ignore[arg-type]  # it checks types
    check_connections(connections)
    return DownloadRequest(
        url=url,  # type: ignore[arg-type]  # check_url made sure
        dest=target,
        scheme=scheme,
        size=size,
        expected=expected,
        mirrors=others,
        refresh_url=refresh_url,  # type: ignore[arg-type]
        connections=connections,  # type: ignore[arg-type]
        refresh=refresh,
        streamed=streamed,
    )


_UNSAFE = re.compile(r"[\s\x00-\x1f]")  # whitespace (str.isspace) and control characters


def check_url(url: object, given: Mapping[str, Source]) -> str:
    """Validate a URL without touching the network; return its scheme."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgument(f"url must be a non-empty string, got {url!r}")
    if _UNSAFE.search(url):
        raise InvalidArgument("url contains whitespace or control characters", url=url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise InvalidArgument(f"malformed url: {exc}", url=url) from None
    if not parts.scheme:
        raise InvalidArgument("url has no scheme (expected e.g. https://...)", url=url)
    if parts.scheme.lower() not in given:
        source_class(parts.scheme)  # unknown scheme -> InvalidArgument
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise InvalidArgument("url has no host", url=url)
    return parts.scheme


def check_dest(dest: object, *, look: bool = True) -> Path:
    """``dest`` as an absolute path; ``look=False`` skips the ``stat`` (the transfer refuses a
    directory too, before it creates anything, with the one ``stat`` of ``dest`` it makes)."""
    if isinstance(dest, Path) and dest.is_absolute() and not look:
        path = dest  # a batch's, made by safe_destination: no need to parse it again
    else:
        path = Path(path_text(dest, "dest")).expanduser()
    if look:
        check_loop_free(path.parent, "dest")
        _check_existing_dest(path)
    if path.name.endswith((".partial", ".partial.json", ".partial.lock")):
        raise InvalidArgument(f"dest {path} uses a name reserved for resumable's own files")
    return path.absolute()


def _check_existing_dest(path: Path) -> None:
    """An existing ``dest`` must be a regular file (or a link to one): a download replaces
    it; a FIFO, socket or device is not ours to replace (and a FIFO blocks whoever opens it)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return  # missing (or a dangling link, replaced like a missing file)
    if stat.S_ISDIR(mode):
        raise InvalidArgument(f"dest {path} is a directory; give the file's path")
    if not stat.S_ISREG(mode):
        raise InvalidArgument(
            f"dest {path} exists and is not a regular file (a FIFO, socket or device); "
            "give the path of a file"
        )
