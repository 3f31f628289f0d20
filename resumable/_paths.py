"""Path arguments, checked before any traffic: one place for what makes a path unusable.

``dest``, ``dest_dir`` and a batch item's ``dest`` reach ``os`` calls deep inside a transfer,
where a NUL byte is a ``ValueError``, a name longer than the filesystem allows an ``OSError``,
a symbolic link loop an ``OSError`` (or ``RuntimeError`` from ``Path.resolve`` before Python
3.13), each raised only after requests were made. Here each is an
:class:`~resumable.errors.InvalidArgument` naming the problem, before anything happens.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import InvalidArgument

__all__ = ["check_loop_free", "check_path_text", "path_text", "resolved"]

NAME_MAX = 255  # bytes per name: Linux, macOS, Windows and the common filesystems
PATH_MAX = 4096  # bytes per path handed to the kernel (Linux)


def path_text(value: object, what: str) -> str:
    """``value`` (``str`` or ``os.PathLike``) as a checked, non-empty ``str``."""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgument(f"{what} must be a non-empty path, got {value!r}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise InvalidArgument(f"{what} must be a str path, not bytes ({text!r})")
    if not text:
        raise InvalidArgument(f"{what} must be a non-empty path, got {value!r}")
    check_path_text(text, what)
    return text


def check_path_text(text: str, what: str) -> None:
    """No NUL byte, encodable as a file name, no name or path longer than the system takes."""
    if "\x00" in text:
        raise InvalidArgument(f"{what} {text!r} contains a NUL byte")
    try:
        raw = os.fsencode(text)
    except UnicodeError:
        raise InvalidArgument(f"{what} {text!r} cannot be encoded as a file name") from None
    longest = max(len(part) for part in raw.split(b"/"))
    if longest > NAME_MAX:
        raise InvalidArgument(
            f"{what} {_short(text)} has a name of {longest} bytes: too long (the limit is "
            f"{NAME_MAX} bytes per name)"
        )
    if len(raw) >= PATH_MAX:
        raise InvalidArgument(
            f"{what} {_short(text)} is too long ({len(raw)} bytes; the limit is {PATH_MAX})"
        )


_UNCHANGED = "nothing was fetched and nothing on disk was changed"


def check_loop_free(path: Path, what: str) -> None:
    """``path`` can be resolved: no symbolic link loop on the way to it."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidArgument(
                f"{what} {path} cannot be reached: a symbolic link loop (too many levels of "
                "symbolic links)",
                kept=_UNCHANGED,
            ) from None
    except ValueError:  # a NUL byte: path_text refuses it first
        raise InvalidArgument(f"{what} {path!r} contains a NUL byte") from None


def resolved(path: Path, what: str) -> Path:
    """``path.resolve()``, with a symbolic link loop an :class:`InvalidArgument`."""
    try:
        return path.resolve()
    except RuntimeError:  # Python < 3.13: "Symlink loop from ..."
        raise InvalidArgument(
            f"{what} {path} goes through a symbolic link loop", kept=_UNCHANGED
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidArgument(
                f"{what} {path} goes through a symbolic link loop", kept=_UNCHANGED
            ) from None
        raise


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:60] + "..." + text[-12:])
