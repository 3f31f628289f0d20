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

from .errors import ResumableError, redact_text

__all__ = ["Cause", "light"]

_DEPTH = 8  # causes kept at most (a chain longer than this is a loop or a bug)


class Cause(Exception):
    """What caused a stored error, as text (``"OSError: [Errno 28] No space left on device"``;
    several causes are joined by `` <- ``, the nearest first)."""


def light(exc: BaseException) -> BaseException:
    """``exc`` without its traceback and with its causes as text; returns ``exc`` itself.

    Only for an error that is being stored, not one still propagating: its traceback is gone.
    """
    causes = _causes(exc)
    exc.__traceback__ = None
    exc.__context__ = None
    exc.__cause__ = Cause(" <- ".join(causes)) if causes else None
    return exc


def _causes(exc: BaseException) -> list[str]:
    """``Type: message`` of each exception in ``exc``'s chain, the nearest first."""
    texts: list[str] = []
    seen = {id(exc)}
    current: BaseException | None = exc
    while current is not None and len(texts) < _DEPTH:
        nxt = current.__cause__
        if nxt is None and not current.__suppress_context__:
            nxt = current.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        if isinstance(nxt, Cause):  # already light: keep its text as it is
            texts.append(str(nxt))
            break
        message = str(nxt) if isinstance(nxt, ResumableError) else redact_text(str(nxt))
        texts.append(f"{type(nxt).__name__}: {message}" if message else type(nxt).__name__)
        current = nxt
    return texts
