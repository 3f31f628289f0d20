"""The two forms ``storage_options`` come in, told apart once, when the downloader is made.

Users bring two conventions:

- **flat**, as pandas, dask and ``fsspec.open`` take it: ``{"endpoint_url": ..., "key": ...}``,
  meant for the filesystem of the URL being read. A downloader serves many URLs, so the flat
  options apply to the scheme of every fsspec URL it downloads (``s3://``, ``gs://``,
  ``file://``...), and each filesystem checks them when its scheme is first used.
- **per protocol**, as fsspec takes it for chained URLs (``fsspec.open(url, s3={...})``):
  ``{"s3": {...}, "gs": {...}}``, each filesystem its own options.

The rule: a key that names a protocol (a scheme resumable or fsspec knows) with a dictionary as
its value is a per-protocol entry; any other key is a flat option. Both kinds in one mapping are
refused: fsspec would merge the flat ones into the first filesystem of a chain, but a downloader
has no first filesystem, and guessing which protocol ``anon=True`` was meant for could send
credentials to the wrong store. Messages name keys, never values (they hold credentials).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidArgument

__all__ = ["StorageOptions"]


@dataclass(frozen=True)
class StorageOptions:
    """``storage_options`` split into its form: per-protocol entries, or flat options.

    At most one of the two is non-empty.
    """

    per_protocol: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    flat: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, given: object, is_protocol: Callable[[str], bool]) -> StorageOptions:
        """Tell the form of ``given`` (see the module docstring); ``InvalidArgument`` if mixed.

        ``is_protocol`` is asked only about keys whose value is a mapping.
        """
        if given is None:
            return cls()
        if not isinstance(given, Mapping):
            raise InvalidArgument(
                "storage_options must be a dict: flat fsspec options "
                '({"endpoint_url": ..., "key": ...}) or options per protocol ({"s3": {...}}), '
                f"got a {type(given).__name__}"
            )
        odd = [key for key in given if not isinstance(key, str)]
        if odd:
            raise InvalidArgument(
                f"storage_options keys must be strings (option or protocol names), "
                f"got keys of type {sorted({type(key).__name__ for key in odd})}"
            )
        protocols = [
            key for key, value in given.items() if isinstance(value, Mapping) and is_protocol(key)
        ]
        options = [key for key in given if key not in protocols]
        if protocols and options:
            raise InvalidArgument(
                "storage_options mixes options per protocol "
                f"({_names(protocols)}) with flat options ({_names(options)}); give either "
                '{"<protocol>": {...}} entries only, or flat options only (they apply to '
                "the scheme of every URL the downloader reads through fsspec)"
            )
        if protocols:
            return cls(per_protocol={key: dict(given[key]) for key in protocols})
        return cls(flat=dict(given))

    def for_protocols(self, names: Iterable[str]) -> dict[str, Any]:
        """The options for a filesystem known by ``names``, the most specific (its URL's
        scheme) first: the flat options, or the per-protocol entries merged, earlier winning."""
        if self.flat:
            return dict(self.flat)
        merged: dict[str, Any] = {}
        for name in reversed(list(names)):
            merged.update(self.per_protocol.get(name, {}))
        return merged

    def by_value(self) -> dict[str, Any]:
        """The options as a plain ``storage_options`` argument (per-protocol dicts copied)."""
        if self.flat:
            return dict(self.flat)
        return {name: dict(options) for name, options in self.per_protocol.items()}

    def names(self) -> object:
        """The option names without their values, for a repr: a list (flat) or a dict."""
        if self.flat:
            return sorted(self.flat)
        return {name: sorted(options) for name, options in self.per_protocol.items()}


def _names(keys: Iterable[str]) -> str:
    return ", ".join(repr(key) for key in sorted(keys))
