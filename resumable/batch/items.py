"""Batch inputs become units of work: one URL, one safe relative destination, its checks.

``download_many`` accepts, mixed freely and consumed lazily (a generator of 100k items streams):

- a URL string, which may hold brace templates (``shard-{000000..000140}.tar``);
- a URL ending in ``/``: a prefix, listed by its source, files kept at their relative paths;
- a ``(url, dest)`` pair, ``dest`` relative to ``dest_dir``;
- an :class:`Item` with per-item size and digests;
- a :class:`~resumable.batch.templates.Link` from ``read_links`` / ``read_object_list``.

Destination names are checked here: a name that is absolute, climbs out with ``..``, or resolves
outside ``dest_dir`` through a symlinked folder fails *that item only*.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .._guard import typed
from .._paths import check_path_text, path_text, resolved
from ..errors import InvalidArgument, ResumableError
from ..sources import RemoteInfo
from ..urls import identity, redact
from .lists import Link
from .templates import has_template, iter_expand

if TYPE_CHECKING:
    from ..extract import Processor

__all__ = ["Item", "Work", "iter_work", "safe_destination"]


@dataclass(frozen=True)
class Item:
    """One file of a batch, with optional per-item checks.

    Args:
        url: the source URL (taken literally: no template expansion).
        dest: where to put it, relative to the batch's ``dest_dir``; default: the object name.
        size: the expected size in bytes.
        sha256: the expected SHA-256.
        checksum: ``"<algorithm>:<hex>"`` or several.
        process: what to do with this file once verified (``Untar(...)``, ``Unzip(...)``,
            ``Decompress()``, see :mod:`resumable.extract`); overrides the batch's ``process``.
        mirrors: other URLs of the same object (same bytes, same expected digest), tried in
            order when the current URL fails for good; the download goes on from the same
            offset. ``url`` names the file (destination, ledger, results).

    The repr shows the URLs redacted (they may be signed); the attributes hold them as given.
    """

    url: str
    dest: str | os.PathLike[str] | None = None
    size: int | None = None
    sha256: str | None = None
    checksum: str | Sequence[str] | None = None
    process: Processor | None = None
    mirrors: Sequence[str] = ()

    def __post_init__(self) -> None:
        if isinstance(self.mirrors, str) or not isinstance(self.mirrors, Sequence):
            raise InvalidArgument(
                f"Item.mirrors must be a list of URLs, got {self.mirrors!r}", url=self.url
            )
        object.__setattr__(self, "mirrors", tuple(self.mirrors))

    def __repr__(self) -> str:
        fields = [f"url={redact(self.url)!r}"]
        for name in ("dest", "size", "sha256", "checksum", "process"):
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value!r}")
        if self.mirrors:
            fields.append(f"mirrors={[redact(m) for m in self.mirrors]!r}")
        return f"Item({', '.join(fields)})"


@dataclass(frozen=True)
class Work:
    """A normalised item: what to fetch, where (relative, checked), and which input made it."""

    item: Item
    rel: str
    origin: str | None
    """The template or prefix this came from (its identity), for ``sync``; ``None`` otherwise."""
    listed: bool = False
    """A listing of this run holds the object (for ``sync``: a 404 then is a disagreement)."""


Lister = Callable[[str], Iterator[tuple[str, RemoteInfo]]]


def iter_work(
    inputs: Iterable[object], lister: Lister
) -> Iterator[Work | tuple[object, Exception]]:
    """Normalise inputs lazily; a bad input yields ``(input, error)`` instead of stopping."""
    for raw in inputs:
        try:
            yield from _expand(raw, lister)
        except Exception as exc:  # that input fails (typed), the others go on
            yield (raw, typed(exc, "download_many"))


def _expand(raw: object, lister: Lister) -> Iterator[Work | tuple[object, Exception]]:
    if isinstance(raw, Work):  # normalised already (``prefetch`` feeds its window so)
        yield raw
    elif isinstance(raw, Item):
        yield _work(raw, _in_folder(raw.dest, raw.url), None)
    elif isinstance(raw, Link):  # from read_links / read_object_list: (name, url)
        yield _work(Item(raw.url, raw.name), raw.name, None)
    elif isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[0], str):
        yield _work(Item(raw[0], raw[1]), _in_folder(raw[1], raw[0]), None)
    elif isinstance(raw, str):
        templated = has_template(raw)
        origin = identity(raw) if templated else None
        for url in iter_expand(raw) if templated else [raw]:
            if url.endswith("/"):
                yield from _listed(url, lister, origin or identity(url))
            else:
                try:
                    yield _work(Item(url), None, origin)
                except ResumableError as exc:
                    yield (url, exc)
    else:
        raise InvalidArgument(
            f"a batch item must be a URL, a (url, dest) pair or resumable.Item, got {raw!r}"
        )


def _listed(prefix: str, lister: Lister, origin: str) -> Iterator[Work | tuple[object, Exception]]:
    for url, info in lister(prefix):
        relative = url[len(prefix) :] if url.startswith(prefix) else _object_name(url)
        try:
            yield _work(Item(url, relative, size=info.size), relative, origin, listed=True)
        except ResumableError as exc:
            yield (url, exc)


def _in_folder(dest: str | os.PathLike[str] | None, url: str) -> str | os.PathLike[str] | None:
    """A ``dest`` ending with ``/`` is a folder: ``dest/<object name>``, as in ``download``."""
    if isinstance(dest, str) and dest.endswith(("/", "\\")):
        return dest + _object_name(url)
    return dest


def _work(
    item: Item, dest: str | os.PathLike[str] | None, origin: str | None, *, listed: bool = False
) -> Work:
    if not isinstance(item.url, str):
        raise InvalidArgument(f"a batch item's URL must be a string, got {item.url!r}")
    if dest is None:
        name = _object_name(item.url)
    else:
        name = dest if isinstance(dest, str) else path_text(dest, "destination")
    return Work(item, relative_name(name), origin, listed)


def _object_name(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError as exc:  # "Invalid IPv6 URL" and the like
        raise InvalidArgument(f"malformed url: {exc}", url=url) from None
    name = unquote(PurePosixPath(path).name)
    if not name:
        raise InvalidArgument("cannot name a file after a URL without an object name", url=url)
    return name


def relative_name(name: str) -> str:
    """``name`` as a clean relative POSIX path, or :class:`InvalidArgument` if it escapes."""
    if not name or "\x00" in name:
        raise InvalidArgument(f"invalid destination name {name!r}")
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if path.is_absolute() or (len(posix) > 1 and posix[1] == ":"):
        raise InvalidArgument(f"destination {name!r} is absolute; it must be relative to dest_dir")
    if ".." in path.parts:
        raise InvalidArgument(f"destination {name!r} would escape dest_dir ('..')")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise InvalidArgument(f"invalid destination name {name!r}")
    check_path_text(posix, "destination")  # a name too long, or not encodable
    return "/".join(parts)


def safe_destination(root: Path, rel: str, checked: set[str] | None = None) -> Path:
    """``root / rel``, refusing a path that resolves outside ``root`` (symlinked dirs).

    ``root`` is the destination directory, already resolved (``Path.resolve()``, once per
    batch). ``checked``: folders (relative names) already found to stay inside it, shared by
    the calls of one batch, so 100k files in one folder resolve that folder once rather than
    walking every path component with ``lstat`` for each file.
    """
    if rel.split("/")[0] == ".resumable":
        raise InvalidArgument(f"destination {rel!r} is inside the ledger folder .resumable/")
    dest_dir = root
    folder = rel.rpartition("/")[0]
    if folder and (checked is None or folder not in checked):
        _inside(root, resolved(root / folder, "destination"), rel, dest_dir)
        if checked is not None:
            checked.add(folder)
    target = root / rel
    if target.is_symlink():
        _inside(root, resolved(target, "destination"), rel, dest_dir)
    return target


def _inside(root: Path, resolved: Path, rel: str, dest_dir: Path) -> None:
    if resolved != root and root not in resolved.parents:
        raise InvalidArgument(f"destination {rel!r} resolves outside {dest_dir} (a symlink?)")


def as_inputs(items: Iterable[object] | str) -> Iterable[object]:
    """A single URL, pair or Item is one input, not an iterable of characters or fields."""
    if isinstance(items, (str, Item)) or (
        isinstance(items, tuple) and len(items) == 2 and isinstance(items[0], str)
    ):
        return [items]
    return items
