"""Processors from short strings, for command lines and config files.

Grammar (options in any order, separated by ``:``)::

    SPEC    = KIND [":" OPTION]*
    KIND    = "untar" | "unzip" | "decompress" | "auto"
    OPTION  = "into=" PATH
            | "route=" PATTERN "=" FOLDER ["," PATTERN "=" FOLDER]*
            | "delete"                      # delete the archive once extracted
            | "stream"                      # untar only: extract while downloading
            | "max-bytes=" SIZE             # 500M, 20G, 1T (powers of 1024) or bytes
            | "max-members=" N | "max-ratio=" X    # "none" turns a limit off

Examples::

    untar
    untar:route=*.jpg=images,*.json=annotations:delete
    unzip:into=data/train
    decompress:max-bytes=50G
    auto:delete

``to_spec(processor)`` writes the canonical string back (``processor.spec()``), so
``from_spec(p.spec()) == p``. Imports point one way: this parser imports the processors; the
processors know nothing of it (each writes its own spec string, :meth:`Processor.spec`).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidArgument
from ._auto import AutoExtract
from ._base import Processor
from ._limits import ExtractLimits
from ._single import Decompress
from ._tar import Untar
from ._zip import Unzip

__all__ = ["from_spec", "to_spec"]

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _kinds() -> dict[str, type[Processor]]:
    return {"untar": Untar, "unzip": Unzip, "decompress": Decompress, "auto": AutoExtract}


def from_spec(spec: str) -> Processor:
    """Build a processor from a spec string (see the module docstring).

    >>> from_spec("untar:route=*.jpg=images,*.json=annotations:delete")  # doctest: +SKIP
    Untar(into=None, route=(('*.jpg', 'images'), ('*.json', 'annotations')), ...)

    Raises:
        InvalidArgument: an unknown kind or option, or a malformed value.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidArgument(f"an extraction spec must be a non-empty string, got {spec!r}")
    kind, *options = spec.strip().split(":")
    kinds = _kinds()
    cls = kinds.get(kind.strip().lower())
    if cls is None:
        raise InvalidArgument(
            f"unknown extraction kind {kind!r} in {spec!r}; expected one of {', '.join(kinds)}"
        )
    args: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for option in options:
        name, has_value, value = option.partition("=")
        name = name.strip().lower()
        if name == "into" and has_value and value:
            args["into"] = value
        elif name == "route" and has_value:
            args["route"] = _route(value, spec)
        elif name == "delete" and not has_value:
            args["delete_archive"] = True
        elif name == "stream" and not has_value and kind == "untar":
            args["stream"] = True
        elif name == "max-bytes" and has_value:
            limits["max_bytes"] = _size(value, spec)
        elif name == "max-members" and has_value:
            limits["max_members"] = _number(value, spec, int)
        elif name == "max-ratio" and has_value:
            limits["max_ratio"] = _number(value, spec, float)
        else:
            raise InvalidArgument(f"unknown or malformed option {option!r} in {spec!r}")
    if limits:
        args["limits"] = ExtractLimits(**limits)
    return cls(**args)


def to_spec(processor: Processor) -> str:
    """The canonical spec string of ``processor`` (defaults left out): ``processor.spec()``."""
    return processor.spec()


def _route(value: str, spec: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in value.split(","):
        pattern, has_folder, folder = piece.partition("=")
        if not has_folder or not pattern or not folder:
            raise InvalidArgument(f"a route is PATTERN=FOLDER, got {piece!r} in {spec!r}")
        pairs.append((pattern, folder))
    return pairs


def _size(value: str, spec: str) -> int | None:
    if value.strip().lower() == "none":
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", value, re.IGNORECASE)
    if not match:
        raise InvalidArgument(f"a size is like 500M or 20G, got {value!r} in {spec!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _number(value: str, spec: str, kind: type[int] | type[float]) -> Any:
    if value.strip().lower() == "none":
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidArgument(f"not a number: {value!r} in {spec!r}") from None
