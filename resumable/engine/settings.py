"""The engine's configuration, by value: one frozen :class:`Settings` per downloader.

Policy is a value handed down; mechanism consumes it (as s3transfer's ``TransferConfig`` and
httpx's ``_config`` values). A value can be compared, printed without secrets and pickled to
another process, which is how the executor fan-out gives each worker the caller's configuration
(it used to rebuild it from a downloader's private attributes).

Every field is checked once, here, when a value is made with :meth:`Settings.checked`: a wrong
type is an :class:`~resumable.errors.InvalidArgument` before any traffic, never a raw error deep
inside a download.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._checks import check_number
from .._secrets import check_headers
from ..errors import InvalidArgument
from ..locator import RefreshURL
from ..retry import RetryPolicy, Timeouts
from ..sources import SourceConfig

__all__ = ["AUTO_CONNECTIONS", "MiB", "Settings", "check_connections", "check_refresh"]

MiB = 1 << 20
# Connections for one large file when ``connections=None`` and the source has no
# ``automatic_connections`` of its own (HTTP: 8; object stores through fsspec: 1).
AUTO_CONNECTIONS = 8


@dataclass(frozen=True)
class Settings:
    """How every download of one downloader behaves (see :class:`~resumable.ResumableDownloader`
    for the meaning of each field). Made once with :meth:`checked`; never changed."""

    workers: int = 8
    connections: int | None = None
    rate_limit: float | None = None
    limit_bph: int | None = None
    max_per_host: int | None = None
    max_connections: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    verify: bool | str | os.PathLike[str] = True
    locking: bool = True
    block_size: int = 4 * MiB
    segment_threshold: int = 64 * MiB
    refresh_url: RefreshURL | None = None

    @classmethod
    def checked(
        cls,
        *,
        workers: object = 8,
        connections: object = None,
        rate_limit: object = None,
        limit_bph: object = None,
        max_per_host: object = None,
        max_connections: object = None,
        retry: object = None,
        timeouts: object = None,
        headers: object = None,
        storage_options: object = None,
        verify: object = True,
        locking: object = True,
        block_size: object = 4 * MiB,
        segment_threshold: object = 64 * MiB,
        refresh_url: object = None,
    ) -> Settings:
        """A value from the caller's arguments, or :class:`InvalidArgument` naming the first
        wrong one (headers first: a bad token is the likeliest mistake; its value is never
        shown)."""
        checked_headers = check_headers(headers)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise InvalidArgument(f"workers must be a positive integer, got {workers!r}")
        check_connections(connections)
        if not isinstance(segment_threshold, int) or segment_threshold < 1:
            raise InvalidArgument(f"segment_threshold must be >= 1, got {segment_threshold!r}")
        if not isinstance(block_size, int) or block_size < 64 * 1024:
            raise InvalidArgument(f"block_size must be at least 64 KiB, got {block_size!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidArgument(f"retry must be a RetryPolicy or None, got {retry!r}")
        if timeouts is not None and not isinstance(timeouts, Timeouts):
            raise InvalidArgument(f"timeouts must be a Timeouts or None, got {timeouts!r}")
        if limit_bph is not None:
            check_number(limit_bph, "limit_bph")
        if not isinstance(verify, (bool, str, os.PathLike)):
            raise InvalidArgument(f"verify must be a bool or a CA bundle path, got {verify!r}")
        if not isinstance(verify, bool) and not os.path.exists(verify):
            raise InvalidArgument(f"verify: no CA bundle at {os.fspath(verify)!r}")
        check_refresh(refresh_url)
        return cls(
            workers=workers,
            connections=connections,  # type: ignore[arg-type]  # checked above
            rate_limit=rate_limit,  # type: ignore[arg-type]  # TokenBucket checks it
            limit_bph=limit_bph,  # type: ignore[arg-type]
            max_per_host=max_per_host,  # type: ignore[arg-type]  # HostSlots checks them
            max_connections=max_connections,  # type: ignore[arg-type]
            retry=retry or RetryPolicy(),
            timeouts=timeouts or Timeouts(),
            headers=checked_headers,
            # As given (flat or per protocol): SourceConfig tells the forms apart and checks them.
            storage_options=storage_options or {},  # type: ignore[arg-type]
            verify=verify,
            locking=bool(locking),
            block_size=block_size,
            segment_threshold=segment_threshold,
            refresh_url=refresh_url,  # type: ignore[arg-type]
        )

    def source_config(self) -> SourceConfig:
        """What each source of these settings is constructed with."""
        return SourceConfig(
            timeouts=self.timeouts,
            max_connections=max(self.workers * (self.connections or AUTO_CONNECTIONS), 16),
            storage_options=self.storage_options,
            headers=self.headers,
            verify=self.verify,
        )


def check_connections(connections: object) -> None:
    """``connections=``: ``None`` (the source decides) or a positive integer."""
    if connections is not None and (
        not isinstance(connections, int) or isinstance(connections, bool) or connections < 1
    ):
        raise InvalidArgument(f"connections must be None or >= 1, got {connections!r}")


def check_refresh(refresh_url: object) -> None:
    """``refresh_url=``: ``None`` or a callable (see :mod:`resumable.locator`)."""
    if refresh_url is not None and not callable(refresh_url):
        raise InvalidArgument(f"refresh_url must be a callable or None, got {refresh_url!r}")
