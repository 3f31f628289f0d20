"""What every processor shares: target folders, routing by pattern, its own spec string.

Limits against bombs and the running budget are in :mod:`resumable.extract._limits`; what a
member may be, in :mod:`resumable.extract._members`.

A processor is an immutable value (like :class:`~resumable.RetryPolicy`): it says *what* to do
with a verified archive; :mod:`resumable.extract._run` decides *when* (only after verification,
once per archive version) and :mod:`resumable.extract._stage` *how* results reach their folders
(staging, then rename).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .._checks import check_bool
from .._paths import check_path_text, path_text
from ..errors import InvalidArgument
from ._limits import Budget, ExtractLimits

__all__ = ["Processor", "Route", "strip_suffix"]

Route = tuple[tuple[str, str], ...]


def _as_route(route: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Route:
    if route is None:
        return ()
    pairs = list(route.items()) if isinstance(route, Mapping) else list(route)
    checked = []
    for pair in pairs:
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise InvalidArgument(f"a route is a (pattern, folder) pair of strings, got {pair!r}")
        pattern, folder = pair
        if not pattern or not folder:
            raise InvalidArgument(f"empty pattern or folder in route {pair!r}")
        check_path_text(folder, "a route's folder")
        checked.append((pattern, os.fspath(folder)))
    if not checked:
        raise InvalidArgument("route is empty; leave it out to extract everything to one folder")
    return tuple(checked)


@dataclass(frozen=True)
class Processor:
    """Base of the processors (:class:`Untar`, :class:`Unzip`, :class:`Decompress`,
    :class:`AutoExtract`). Not used directly."""

    kind: ClassVar[str] = ""
    into: str | os.PathLike[str] | None = None
    route: Mapping[str, str] | Iterable[tuple[str, str]] | None = field(default=None, kw_only=True)
    delete_archive: bool = field(default=False, kw_only=True)
    limits: ExtractLimits = field(default_factory=ExtractLimits, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "route", _as_route(self.route))
        if self.into is not None:
            object.__setattr__(self, "into", path_text(self.into, "into"))
        check_bool(self.delete_archive, "delete_archive")
        if self.route and self.into is not None:
            raise InvalidArgument(
                "give into= or route=, not both (a route ('*', folder) catches everything else)"
            )
        if not isinstance(self.limits, ExtractLimits):
            raise InvalidArgument(f"limits must be ExtractLimits, got {self.limits!r}")

    @property
    def routes(self) -> Route:
        return self.route  # type: ignore[return-value]  # normalised in __post_init__

    # -- what a processor decides -----------------------------------------------------------

    def resolve(self, archive: Path) -> Processor | None:
        """The processor to use for ``archive``: this one, or for :class:`AutoExtract` the one
        its name calls for (``None``: not an archive, leave it alone)."""
        return self

    def fingerprint(self) -> str:
        """What the result depends on (kind, folders, routes): a change means extract again.
        Limits and ``delete_archive`` are left out: they do not change what is extracted."""
        folders = ",".join(f"{p}={f}" for p, f in self.routes)
        return f"{self.kind}|into={self.into or ''}|route={folders}"

    def spec(self) -> str:
        """The canonical spec string (defaults left out) that
        :func:`~resumable.extract.from_spec` turns back into this value: written here, from
        the value's own fields, so the processors never import the spec parser above them."""
        parts = [self.kind]
        if self.into is not None:
            parts.append(f"into={self.into}")
        if self.routes:
            parts.append("route=" + ",".join(f"{p}={f}" for p, f in self.routes))
        if self.delete_archive:
            parts.append("delete")
        if getattr(self, "stream", False):
            parts.append("stream")
        default = ExtractLimits()
        for name, option in (
            ("max_bytes", "max-bytes"),
            ("max_members", "max-members"),
            ("max_ratio", "max-ratio"),
        ):
            value = getattr(self.limits, name)
            if value != getattr(default, name):
                parts.append(f"{option}={'none' if value is None else value}")
        return ":".join(parts)

    def targets(self, archive: Path) -> list[Path]:
        """The folders (or, for :class:`Decompress`, the file) results go to, by route index."""
        base = archive.parent
        if self.routes:
            return [base / folder for _, folder in self.routes]
        return [base / self.into] if self.into is not None else [self.default_target(archive)]

    def default_target(self, archive: Path) -> Path:
        """Where members go without ``into=`` or routes: a folder named after the archive."""
        return archive.with_name(strip_suffix(archive.name) or archive.name + ".d")

    def owns_target(self) -> bool:
        """The default target is this archive's own folder: replaced whole on re-extraction."""
        return self.into is None and not self.routes

    def route_of(self, parts: list[str]) -> int | None:
        """Index of the first route matching a member (``None``: skip it); 0 without routes.

        A pattern without ``/`` matches the member's file name (``*.jpg``); one with ``/``
        matches its whole path (``masks/*.json``).
        """
        if not self.routes:
            return 0
        name = "/".join(parts)
        for index, (pattern, _) in enumerate(self.routes):
            subject = name if "/" in pattern else parts[-1]
            if fnmatch.fnmatchcase(subject, pattern):
                return index
        return None

    def extract(self, archive: Path, staging: list[Path], budget: Budget) -> None:
        """Write the archive's members under ``staging[route index]``."""
        raise NotImplementedError


_SUFFIXES = (
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".tar.zst",
    ".tgz",
    ".tbz2",
    ".txz",
    ".tzst",
    ".tar",
    ".zip",
    ".gz",
    ".bz2",
    ".xz",
    ".zst",
)


def strip_suffix(name: str) -> str:
    """``sa_000000.tar`` -> ``sa_000000``; ``x.tar.gz`` -> ``x``; a name without one: as is."""
    lower = name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name
