"""The last line of the error contract: only a ``ResumableError`` leaves a public call.

Every expected failure is translated where it happens (a source's boundary, argument checks,
the transfer, the extractors). This module is for the rest: a bug, or a library raising
something nobody translated. :func:`guarded` wraps each public entry point, and turns such an
exception into :class:`~resumable.errors.InternalError` (or :class:`~resumable.errors.LocalError`
for a plain ``OSError``: the local side), keeps the original as ``__cause__`` (unless its text
quotes a credential), and logs it, so a programming error is never hidden, only typed.

Two kinds of exception pass unchanged, as the docs promise: ``KeyboardInterrupt`` and
``SystemExit`` (not ``Exception``\\s), and whatever the caller's own code raised, which is
marked on its way through :func:`user_callback` (a progress callback's exception propagates
to the caller as it was raised, ``docs/progress.md``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import InternalError, InvalidArgument, LocalError, ResumableError
from .urls import redact_text

__all__ = ["guarded", "typed", "user_callback"]

log = logging.getLogger("resumable")

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "_resumable_raised_by_caller"


def user_callback(callback: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
    """``callback``, marking what it raises as the caller's own (passed on unchanged)."""
    if callback is None or getattr(callback, _MARK, False):
        return callback
    if not callable(callback):
        raise InvalidArgument(f"progress must be a callable or None, got {callback!r}")

    def call(event: Any) -> None:
        try:
            callback(event)
        except BaseException as exc:
            _mark(exc)
            raise

    setattr(call, _MARK, True)
    return call


def _mark(exc: BaseException) -> None:
    with contextlib.suppress(AttributeError, TypeError):  # no __dict__: typed, then
        setattr(exc, _MARK, True)


def raised_by_caller(exc: BaseException) -> bool:
    return bool(getattr(exc, _MARK, False))


def typed(exc: Exception, where: str = "resumable") -> Exception:
    """``exc`` itself if it is ours or the caller's; otherwise the typed error to raise
    ``from exc`` (and a log record, with the place it was raised)."""
    if isinstance(exc, ResumableError) or raised_by_caller(exc):
        return exc
    text = redact_text(f"{type(exc).__name__}: {exc}")
    frames = traceback.extract_tb(exc.__traceback__)
    place = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    log.error("%s: unexpected %s%s (raised as a typed error)", where, text, place)
    error: ResumableError
    if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, TimeoutError)):
        path = exc.filename if isinstance(exc.filename, str) else None
        error = LocalError(f"{where}: {text}", path=path)
    else:
        error = InternalError(
            f"{where}: unexpected {text} (a bug in resumable or a library it uses; please "
            "report it with the log)"
        )
    error.__cause__ = _cause(exc)
    error.__suppress_context__ = True
    return error


def _cause(exc: BaseException) -> BaseException | None:
    """``exc``, unless its text (or a cause's) quotes a credential: then nothing, so no
    traceback shows it (the typed error's own message is redacted)."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        text = str(seen)
        if redact_text(text) != text:
            return None
        seen = seen.__cause__ or seen.__context__
    return exc


def guarded(where: str, *, passes: tuple[type[BaseException], ...] = ()) -> Callable[[F], F]:
    """Decorate a public entry point (see the module docstring). ``passes``: exception types
    the entry point documents as its own (``Job.wait``'s ``TimeoutError``)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def entry(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except passes:
                raise
            except Exception as exc:
                error = typed(exc, where)
                if error is exc:
                    raise
                raise error from error.__cause__

        return entry  # type: ignore[return-value]

    return decorate
