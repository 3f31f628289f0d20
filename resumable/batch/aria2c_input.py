"""aria2c's input-file format (``aria2c -i FILE``), read by the command line's ``-i``.

The format (aria2c manual, "Input File")::

    https://host/a.tar<TAB>https://mirror/a.tar      # one file, from any of these URIs
      out=renamed.tar                                # option lines start with white space
      dir=raw
      checksum=sha-256=<hex>
    https://host/b.tar

Each URI line is one file; several URIs on a line, separated by TABs, are mirrors of that file
(tried in order, the download going on from the same offset). The option lines under it apply
to that file only:

- ``out=NAME``: the file name (default: the URL's object name);
- ``dir=DIR``: a folder, *relative to* ``--dir`` (aria2c resolves it against the working
  directory: the same place when ``--dir`` is left at ``.``); an absolute ``dir=`` is refused,
  because a batch writes only under its destination directory;
- ``checksum=TYPE=HEX``: ``sha-1``, ``sha-224``, ``sha-256``, ``sha-384``, ``sha-512`` or ``md5``
  (``adler32`` is refused: nothing to verify it with).

Other aria2c options (``split=``, ``max-connection-per-server=``, ``header=``...) are ignored:
tuning options silently, any other with a WARNING naming it and its line, since the file may
rely on it (a ``header=`` with credentials, say). Comments (``#``) and blank lines are skipped.

A file is read in this format when it has an indented option line or a line of several
URIs; a plain list of URLs means the same in both formats, and ``name<TAB>url`` lines are the
SA-1B links format (:func:`resumable.read_links`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ..errors import InvalidArgument
from ..verify import parse_expected
from .items import Item

__all__ = ["ARIA2C_CHECKSUMS", "aria2c_checksum", "is_aria2c_input", "read_aria2c_input"]

log = logging.getLogger("resumable")

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", re.ASCII)
_OPTION = re.compile(r"(?P<key>[A-Za-z0-9][A-Za-z0-9-]*)=(?P<value>.*)")
ARIA2C_CHECKSUMS = {
    "md5": "md5",
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}
# Per-download tuning that changes how, not what, aria2c fetches: ignored without a warning.
_TUNING = {
    "split",
    "max-connection-per-server",
    "min-split-size",
    "continue",
    "allow-overwrite",
    "auto-file-renaming",
    "file-allocation",
    "max-tries",
    "retry-wait",
    "timeout",
    "connect-timeout",
    "max-download-limit",
    "lowest-speed-limit",
    "piece-length",
    "stream-piece-selector",
    "uri-selector",
    "always-resume",
    "max-resume-failure-tries",
    "remote-time",
    "conditional-get",
}


def is_aria2c_input(lines: Sequence[str]) -> bool:
    """Whether ``lines`` use aria2c's own syntax: an indented ``key=value`` line, or a line of
    several TAB-separated URIs (a ``name<TAB>url`` line is the links format)."""
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t" and _OPTION.fullmatch(line.strip()):
            return True
        fields = [f for f in line.strip().split("\t") if f]
        if len(fields) > 1 and all(_URI.fullmatch(f) for f in fields):
            return True
    return False


def read_aria2c_input(lines: Sequence[str], source: str) -> list[Item]:
    """The files an aria2c input file lists, as :class:`~resumable.Item` objects (destination
    relative to the batch's directory, mirrors, expected digest). Raises
    :class:`InvalidArgument` naming ``source`` and the line for anything malformed."""
    items: list[Item] = []
    current: dict[str, object] | None = None
    for lineno, raw in enumerate(lines, 1):
        line = raw.removeprefix("\ufeff") if lineno == 1 else raw
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{source}, line {lineno}"
        if line[0] in " \t":
            if current is None:
                raise InvalidArgument(f"{where}: an option line before any URI line")
            _option(current, text, where)
            continue
        if current is not None:
            items.append(_item(current))
        current = {"uris": _uris(text, where), "line": where}
    if current is not None:
        items.append(_item(current))
    if not items:
        raise InvalidArgument(f"{source} lists no URIs")
    return items


def aria2c_checksum(value: str, where: str = "--checksum") -> str:
    """``sha-256=HEX`` (aria2c's spelling) as ``sha256:hex``; :class:`InvalidArgument` for an
    unsupported type or a malformed digest."""
    kind, sep, digest = value.partition("=")
    algorithm = ARIA2C_CHECKSUMS.get(kind.strip().lower())
    if not sep or algorithm is None:
        supported = ", ".join(ARIA2C_CHECKSUMS)
        why = "adler32 cannot be verified here" if kind.strip().lower() == "adler32" else ""
        raise InvalidArgument(
            f"{where}: checksum must be TYPE=HEX with TYPE one of {supported}"
            + (f" ({why})" if why else f", got {value[:40]!r}")
        )
    try:
        ((name, hexdigest),) = parse_expected(checksum=f"{algorithm}:{digest}").items()
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc}") from None
    return f"{name}:{hexdigest}"


def _uris(text: str, where: str) -> list[str]:
    fields = [f for f in text.split("\t") if f.strip()]
    uris = [f.strip() for f in fields]
    bad = [u for u in uris if not _URI.fullmatch(u)]
    if bad:
        raise InvalidArgument(
            f"{where}: expected URIs separated by TABs (option lines start with a space), "
            f"got {bad[0][:80]!r}"
        )
    return uris


def _option(current: dict[str, object], text: str, where: str) -> None:
    match = _OPTION.fullmatch(text)
    if match is None:
        raise InvalidArgument(f"{where}: expected an option line 'name=value', got {text[:80]!r}")
    key, value = match["key"].lower(), match["value"].strip()
    if key in ("out", "dir"):
        if not value:
            raise InvalidArgument(f"{where}: {key}= is empty")
        if key == "dir" and (value.startswith(("/", "\\")) or value[1:2] == ":"):
            raise InvalidArgument(
                f"{where}: dir={value} is absolute; resumable writes under --dir, so give it "
                "relative to --dir"
            )
        current[key] = value
    elif key == "checksum":
        current["checksum"] = aria2c_checksum(value, f"{where}: checksum")
    elif key in _TUNING:
        log.debug("%s: aria2c option %s ignored (resumable tunes this itself)", where, key)
    else:
        log.warning("%s: aria2c option %s= is not supported and is ignored", where, key)


def _item(current: dict[str, object]) -> Item:
    uris = current["uris"]
    assert isinstance(uris, list)
    out, folder = current.get("out"), current.get("dir")
    dest: str | None = None
    if out is not None or folder is not None:
        name = str(out) if out is not None else _name(uris[0], str(current["line"]))
        dest = f"{folder}/{name}" if folder is not None else name
    algorithm, _, digest = str(current.get("checksum", ":")).partition(":")
    return Item(
        uris[0],
        dest=dest,
        # sha256 in its own field: a rerun skips a file the ledger recorded, without re-hashing
        sha256=digest if algorithm == "sha256" else None,
        checksum=f"{algorithm}:{digest}" if algorithm not in ("", "sha256") else None,
        mirrors=uris[1:],
    )


def _name(uri: str, where: str) -> str:
    from urllib.parse import unquote, urlsplit

    name = unquote(urlsplit(uri).path.rpartition("/")[2])
    if not name:
        raise InvalidArgument(f"{where}: {uri} has no file name; add an out= line")
    return name
