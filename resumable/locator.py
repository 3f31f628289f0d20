"""Which URL to ask for one object right now: a refreshed signed URL, or the next mirror.

Signed URLs (presigned S3/GCS, Azure SAS, the SA-1B CDN links) expire, sometimes in the middle
of a 10 GB download; a dataset may also be published on several mirrors. Both mean that the URL
of an object changes while the object does not. A :class:`Locator` holds the URL in use for one
download and replaces it when the source refuses it for good:

- **Refresh.** Before a request, when the URL says it has expired (``X-Amz-Date`` +
  ``X-Amz-Expires``, ``se=``, ``oe=``...: :mod:`resumable.expiry`), and after ``401``/``403``
  (:class:`~resumable.errors.AccessDenied`) or ``400`` (GCS answers an expired signature with
  ``400 ExpiredToken``), the user's ``refresh_url(url)`` hook is called with the URL that
  failed and returns a fresh URL for the same object (or ``None``: no fresh URL). The download
  goes on from the same offset; every request is still pinned to the recorded version
  (``If-Range``, validators compared), so a "fresh" URL that names other bytes restarts the
  file rather than splicing it.
- **Fail over.** A permanent failure that a refresh does not fix (404, 403 after refreshing,
  another 4xx, a certificate that fails, retries exhausted on a dead host) moves on to the next
  mirror URL, again from the same offset.

Many threads share one locator (the pieces of a segmented download). The hook is called under a
lock, once per failing URL: every request made with a URL carries its *generation*, and a thread
whose failure belongs to an older generation than the current one just retries with the URL
that another thread already obtained. So eight pieces failing at once cause one refresh, not
eight. A hook that keeps returning URLs that fail is called at most ``max_refreshes`` times in a
row before the locator gives up (or fails over).

The sidecar, the ledger and error messages keep naming the *first* URL (its redacted
identity), so a rerun with the original URL, or a newly signed one, resumes the same partial.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import (
    AccessDenied,
    InvalidArgument,
    RemoteError,
    ResumableError,
    RetriesExhausted,
    SourceNotFound,
)
from .expiry import expires_at
from .sources import Source
from .urls import redact

__all__ = ["PERMANENT", "Locator", "RefreshURL", "Target"]

log = logging.getLogger("resumable")

RefreshURL = Callable[[str], str | None]
"""``refresh_url(failed_url) -> fresh_url | None``: a new URL for the same object."""

PERMANENT: tuple[type[ResumableError], ...] = (
    AccessDenied,
    SourceNotFound,
    RemoteError,
    RetriesExhausted,
)
"""Failures after which the URL is abandoned for a refreshed one or the next mirror."""

MAX_REFRESHES = 3
EXPIRY_MARGIN = 5.0
"""Seconds before a URL's stated expiry at which it counts as expired (a request takes time)."""


@dataclass(frozen=True)
class Target:
    """A URL to request, the source that serves it, and its generation (see the module doc)."""

    url: str
    source: Source
    generation: int

    def __repr__(self) -> str:
        return f"Target(url={redact(self.url)!r}, generation={self.generation})"


def _refreshable(error: BaseException) -> bool:
    if isinstance(error, AccessDenied):
        return True
    return isinstance(error, RemoteError) and error.status == 400


class Locator:
    """The current URL of one object, replaced on permanent failures. Thread-safe.

    Args:
        urls: the object's URL, then its mirrors, in order of preference.
        sources: the source for each URL (mirrors may use different schemes).
        refresh: ``refresh_url(failed_url) -> str | None``, or ``None``.
        max_refreshes: refreshes in a row without a successful request before giving up.
        clock: the time now, as Unix seconds (injected by tests).
    """

    def __init__(
        self,
        urls: Sequence[str],
        sources: Sequence[Source],
        refresh: RefreshURL | None = None,
        *,
        max_refreshes: int = MAX_REFRESHES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not urls or len(urls) != len(sources):
            raise ValueError("a Locator needs one source per URL, and at least one URL")
        self._urls = list(urls)
        self._sources = list(sources)
        self._refresh = refresh
        self._max_refreshes = max_refreshes
        self._clock = clock
        self._expiry: tuple[int, float | None] | None = None  # (generation, expires_at)
        self._expiry_tried = False
        self._lock = threading.Lock()
        self._index = 0
        self._generation = 0
        self._unproven = 0  # refreshes since the last request that succeeded
        self._declined = -1  # the generation for which the hook returned None
        self.refreshes = 0
        """How many times the hook supplied a new URL (for tests and reports)."""
        self.failovers = 0
        """How many times a mirror replaced a failing URL."""

    @property
    def mirror(self) -> int:
        """Index of the URL in use: 0 for the first one, 1 for the first mirror..."""
        with self._lock:
            return self._index

    def current(self) -> Target:
        """The URL to use for the next request (waits while another thread refreshes it).

        With a hook, a URL whose own expiry has passed is refreshed first, once per URL.
        """
        with self._lock:
            if self._refresh is not None and self._expired():
                url = self._urls[self._index]
                fresh = self._refresh(url)
                if fresh is not None:
                    self._check_fresh(url, fresh)
                    self._replace(fresh)
                    log.info("refreshed the URL of %s before it was used: it expired", redact(url))
            return Target(self._urls[self._index], self._sources[self._index], self._generation)

    def _expired(self) -> bool:
        """Whether the current URL states an expiry that has passed (one refresh per URL)."""
        if self._expiry is None or self._expiry[0] != self._generation:
            self._expiry = (self._generation, expires_at(self._urls[self._index]))
            self._expiry_tried = False
        when = self._expiry[1]
        if (
            when is None
            or self._expiry_tried
            or self._clock() < when - EXPIRY_MARGIN
            or self._unproven >= self._max_refreshes
        ):
            return False
        self._expiry_tried = True  # the hook may return None: do not ask before every request
        return True

    def _replace(self, fresh: str) -> None:
        self._urls[self._index] = fresh
        self._generation += 1
        self._unproven += 1
        self.refreshes += 1

    def succeeded(self, target: Target) -> None:
        """A request with ``target`` was answered as expected: its URL works."""
        with self._lock:
            if target.generation == self._generation:
                self._unproven = 0

    def recover(self, error: ResumableError, target: Target) -> bool:
        """After ``error`` for a request made with ``target``: is there a URL worth trying?

        Returns ``True`` when the current URL is newer than ``target`` (refreshed here or by
        another thread, or a mirror took over); ``False`` when there is nothing left to try and
        ``error`` should be raised. The user's hook runs here, under the lock; an exception it
        raises propagates.
        """
        with self._lock:
            if target.generation != self._generation:
                return True  # another thread already replaced this URL: use the new one
            failed = self._urls[self._index]
            if (
                self._refresh is not None
                and _refreshable(error)
                and self._unproven < self._max_refreshes
                and self._declined != self._generation  # asked already: it had nothing
            ):
                fresh = self._refresh(failed)
                if fresh is None:
                    self._declined = self._generation
                else:
                    self._check_fresh(failed, fresh)
                    self._replace(fresh)
                    log.info("refreshed the URL of %s after: %s", redact(failed), error.message)
                    return True
            if self._index + 1 < len(self._urls):
                self._index += 1
                self._generation += 1
                self._unproven = 0
                self.failovers += 1
                log.warning(
                    "%s failed for good (%s); trying mirror %d of %d: %s",
                    redact(failed),
                    error.message,
                    self._index,
                    len(self._urls) - 1,
                    redact(self._urls[self._index]),
                )
                return True
            return False

    @staticmethod
    def _check_fresh(failed: str, fresh: object) -> None:
        if not isinstance(fresh, str) or not fresh.strip():
            raise InvalidArgument(
                f"refresh_url must return a URL string or None, got {type(fresh).__name__}",
                url=failed,
            )
        try:
            scheme = urlsplit(fresh).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme != urlsplit(failed).scheme.lower():
            raise InvalidArgument(
                f"refresh_url returned a {scheme or 'schemeless'}: URL for a "
                f"{urlsplit(failed).scheme}: one; it must keep the scheme",
                url=failed,
            )
