"""Errors a batch keeps: what happened, as values, without the frames that raised them.

Why: an exception holds its traceback, the traceback holds every frame it went through, and the
frames hold their locals: the transfer, its response, its buffers. A batch keeps one error per
failed item (``BatchResult.failed``), so 100k failing items held about 1 GiB. :func:`light`
drops the traceback and replaces the ``__cause__``/``__context__`` chain with one small stand-in
that keeps each cause's type and message as text (credentials redacted). The error's own data
(type, message, ``url``, ``kept``, status...) is untouched, so ``raise_for_errors()`` still says
what happened.
"""

from __future__ import annotations

from .errors import ResumableError
from .urls import redact_text

__all__ = ["Cause", "light"]

_DEPTH = 8  # causes kept at most (a chain longer than this is a loop or a bug)


class Cause(Exception):
    """What caused a stored error, as text (``"OSError: [Errno 28] No space left on device"``;
    several causes are joined by `` <- ``, the nearest first)."""


def light(exc: BaseException) -> BaseException:
    """``exc`` without its traceback, its causes light too; returns ``exc`` itself.

    A cause that is one of ours (a :class:`ResumableError`: data only) stays an object, so
    ``error.__cause__`` is still a typed error; any other (a third-party exception may hold a
    response or a connection pool) becomes a :class:`Cause` with its text and its own causes'.
    Only for an error that is being stored, not one still propagating: its traceback is gone.
    """
    seen = {id(exc)}
    current = exc
    for _ in range(_DEPTH):
        nxt = _next(current)
        current.__traceback__ = None
        current.__context__ = None
        current.__cause__ = None
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        if not isinstance(nxt, ResumableError):
            current.__cause__ = nxt if isinstance(nxt, Cause) else Cause(_texts(nxt, seen))
            return exc
        current.__cause__ = nxt
        current = nxt
    return exc


def _next(exc: BaseException) -> BaseException | None:
    """The exception ``exc`` was raised from, or during (as a traceback would show it)."""
    if exc.__cause__ is not None:
        return exc.__cause__
    return None if exc.__suppress_context__ else exc.__context__


def _texts(exc: BaseException, seen: set[int]) -> str:
    """``Type: message`` of ``exc`` and of the chain behind it, the nearest first."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(texts) < _DEPTH:
        if isinstance(current, Cause):  # already text: keep it as it is
            texts.append(str(current))
            break
        own = str(current)
        message = own if isinstance(current, ResumableError) else redact_text(own)
        texts.append(f"{type(current).__name__}: {message}" if message else type(current).__name__)
        current = _next(current)
        if current is not None and id(current) in seen:
            break
        if current is not None:
            seen.add(id(current))
    return " <- ".join(texts)
