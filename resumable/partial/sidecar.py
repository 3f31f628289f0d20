"""``D.partial.json``: what the bytes of a partial are, and the one parser that trusts it.

A sidecar records the format version, the source URL (credentials redacted), the identity the
resume rule compares, the object's validators, what the caller expected, the token of the
writer that owns the partial and, for a segmented partial, the byte ranges written and synced.
It is untrusted input (another program, a crash or a hostile user may have written it), so
:func:`parse_sidecar` is the single place a raw JSON value becomes a typed :class:`Sidecar`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from ..errors import LocalError
from ..ranges import RangeSet
from .files import helper_path

__all__ = [
    "FORMAT_VERSION",
    "MAX_OFFSET",
    "MAX_SIDECAR",
    "TMP_SUFFIX",
    "FutureFormat",
    "Sidecar",
    "load_sidecar",
    "parse_sidecar",
    "remove_stale_temps",
    "store_sidecar",
    "temp_path",
]

FORMAT_VERSION = 1
MAX_SIDECAR = 16 << 20  # bytes: a sidecar is a few KiB (its ranges are merged as they grow)
MAX_OFFSET = (1 << 63) - 1  # the largest size a file can have (off_t)
TMP_SUFFIX = ".tmp"  # sidecar temp files: D.partial.json.<owner token>.tmp
log = logging.getLogger("resumable")


@dataclass(frozen=True)
class Sidecar:
    """The contents of ``D.partial.json``."""

    url: str
    """The source URL, credentials redacted."""
    identity: str
    """What :func:`~resumable.urls.identity` says the URL names (resume matches on it)."""
    validators: Mapping[str, Any]
    expected: Mapping[str, Any]
    owner: str
    format: int = FORMAT_VERSION
    ranges: RangeSet | None = None
    """Segmented partials: the byte ranges written and synced. ``None``: a single stream."""

    def to_json(self) -> str:
        import json

        record: dict[str, Any] = {
            "format": self.format,
            "url": self.url,
            "identity": self.identity,
            "validators": dict(self.validators),
            "expected": dict(self.expected),
            "owner": self.owner,
        }
        if self.ranges is not None:
            record["ranges"] = self.ranges.to_json()
        return json.dumps(record, indent=1, sort_keys=True)


class FutureFormat(Exception):
    """A sidecar of a newer format than this one reads (see :func:`load_sidecar`)."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


def parse_sidecar(text: bytes) -> Sidecar:
    """The one parse boundary of ``D.partial.json``: a typed :class:`Sidecar` or ``ValueError``.

    A sidecar is untrusted input (another program, a crash, a hostile user may have written
    it), so every field is checked for its type and bounds here, once, and nothing past this
    point sees a raw JSON value: sizes are integers (not bools, floats, ``Infinity`` or
    ``1e30``) from 0 to the largest file offset, texts are strings, ``ranges`` is the sorted,
    disjoint list a writer records, within the recorded size. A size no file can have would
    otherwise be reserved on disk, and a range past the object's end would be trusted.

    Raises:
        FutureFormat: a valid sidecar format newer than :data:`FORMAT_VERSION`.
        ValueError: anything else that is not a sidecar a writer of this format made.
    """
    import json

    if len(text) > MAX_SIDECAR:
        raise ValueError(f"larger than {MAX_SIDECAR} bytes")
    try:
        raw = json.loads(text.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    version = raw.get("format")
    if not _is_int(version) or version < 1:
        raise ValueError(f"format {version!r} is not a format number")
    if version > FORMAT_VERSION:
        raise FutureFormat(version)
    url = _text(raw.get("url"), "url")
    validators = _validators(raw.get("validators"))
    ranges = raw.get("ranges")
    size = validators.get("size")
    if ranges is not None and size is None:
        raise ValueError("ranges without the object's size")
    return Sidecar(
        url=url,
        identity=_text(raw.get("identity") or url, "identity"),
        validators=validators,
        expected=_expected(raw.get("expected")),
        owner=_text(raw.get("owner"), "owner"),
        format=version,
        ranges=None if ranges is None else RangeSet.from_json(ranges, size),
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _size(value: object, what: str) -> int | None:
    """A byte count: ``None`` or an integer no larger than the largest file offset."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value <= MAX_OFFSET:
        raise ValueError(f"{what} {value!r} is not a size")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _texts(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{what} is not an object of strings")
    return dict(value)


def _validators(value: object) -> dict[str, Any]:
    """The recorded validators: only the known fields, each of its type (absent ones stay
    absent: ``{}`` is what a writer records before the first answer)."""
    if not isinstance(value, dict):
        raise ValueError("validators is not an object")
    checked: dict[str, Any] = {}
    for key in ("etag", "last_modified", "version"):
        if key in value:
            item = value[key]
            checked[key] = None if item is None else _text(item, key)
    if "size" in value:
        checked["size"] = _size(value["size"], "size")
    if "checksums" in value:
        checked["checksums"] = _texts(value["checksums"], "checksums")
    return checked


def _expected(value: object) -> dict[str, Any]:
    """What the caller expected: ``size`` and ``{algorithm: hex}`` digests."""
    if not isinstance(value, dict):
        raise ValueError("expected is not an object")
    digests = {k: v for k, v in value.items() if k != "size"}
    return {"size": _size(value.get("size"), "expected size"), **_texts(digests, "expected")}


def load_sidecar(meta: Path) -> Sidecar | None:
    """The sidecar at ``meta``, or ``None`` if absent or not one a writer made (the partial is
    then not trusted: the download starts that file over). See :func:`parse_sidecar`.

    Raises:
        LocalError: the sidecar was written by a newer format; it is left alone rather than
            destroyed, since a newer ``resumable`` may be using it.
    """
    try:
        with open(meta, "rb") as f:
            text = f.read(MAX_SIDECAR + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring unreadable sidecar %s (%s); starting over", meta, exc)
        return None
    try:
        return parse_sidecar(text)
    except FutureFormat as future:
        err = LocalError(
            f"{meta} was written by a newer resumable (format {future.version}, this "
            f"one reads {FORMAT_VERSION}); upgrade resumable or delete the .partial files",
            path=str(meta),
        )
        err.kept = "the partial and its sidecar were left as they are"
        raise err from None
    except ValueError as exc:
        log.warning("ignoring malformed sidecar %s (%s); starting over", meta, exc)
        return None


def store_sidecar(sidecar: Sidecar, tmp: Path, meta: Path) -> None:
    """Write ``sidecar`` to ``meta`` atomically, through the writer's own temp file ``tmp``.

    Raises:
        FileNotFoundError: ``tmp`` vanished before the rename (another writer removed it as
            stale: see :func:`remove_stale_temps`), or the folder is gone.
        OSError: the write failed; ``tmp`` is removed.
    """
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(sidecar.to_json())
        os.replace(tmp, meta)
    except FileNotFoundError:
        raise
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def temp_path(dest: Path, owner: str) -> Path:
    """``D.partial.json.<owner>.tmp``, by the rule of every helper name (see
    :func:`~resumable.partial.files.helper_path`)."""
    return helper_path(dest, f".partial.json.{owner}{TMP_SUFFIX}")


def remove_stale_temps(dest: Path, owner: str) -> None:
    """Remove the sidecar temp files beside ``dest`` that a killed writer left
    (``D.partial.json.<token>.tmp``), all but ``owner``'s.

    Called when a partial is taken over, since only an interrupted writer leaves one. Without
    a working lock a live writer's temp file may go too; that writer then finds its sidecar
    write failing and stops as taken over, which it is.
    """
    ours = temp_path(dest, owner)
    # Tokens all have one length, so a shortened name is cut at the same place for all of them.
    prefix = ours.name[: -len(owner + TMP_SUFFIX)]
    try:
        entries = list(os.scandir(ours.parent))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if name.startswith(prefix) and name.endswith(TMP_SUFFIX) and owner not in name:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
