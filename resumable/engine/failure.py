"""When a transfer fails: report it once, keep only what is worth resuming, and say what is kept.

The words matter: an error says "resumable" only when the same call, run again, would resume
the partial (what :func:`~.resume.open_partial` will decide from the sidecar).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..errors import ResumableError
from ..progress import EventKind
from .resume import resumable_sidecar
from .state import State

__all__ = ["guard", "kept"]


@contextlib.contextmanager
def guard(state: State, *, holding_partial: bool) -> Iterator[None]:
    """On an error, report it and keep only what is worth resuming (once: the innermost guard
    does it, inside the lock when one is held, so the lock file goes with an empty partial).

    ``holding_partial``: the ``.partial`` protocol is in use here (an empty partial and its
    sidecar are then this transfer's clutter to remove).
    """
    try:
        yield
    except ResumableError as exc:
        if not state.reported:
            state.reported = True
            _tidy(state, holding_partial)
            if exc.kept is None:
                exc.kept = kept(state)
            if not state.callback_failed:
                state.emit(EventKind.FAILED, error=exc)
        raise
    except BaseException:
        if not state.reported:
            state.reported = True
            _tidy(state, holding_partial)  # a callback's exception or Ctrl-C
        raise


def _tidy(state: State, holding_partial: bool) -> None:
    if holding_partial and state.partial_size() == 0 and not state.yielded:
        state.partial.discard()  # an empty partial and its sidecar are only clutter


def kept(state: State) -> str:
    """What is on disk, in words."""
    ctx = state.ctx
    data = state.partial.data
    parts = []
    have = state.partial_size()
    sidecar = resumable_sidecar(state) if have else None
    if sidecar is not None and sidecar.ranges is not None:
        have = sidecar.ranges.total  # preallocated: only the recorded ranges count
        if not have:
            return f"a preallocated partial with no recorded bytes is at {data}"
    total = state.total()
    of = f" of {total}" if total is not None else ""
    if have and sidecar is not None:
        parts.append(
            f"partial kept at {data} ({have}{of} bytes), resumable by "
            "running the same download again"
        )
    elif have:
        parts.append(
            f"nothing resumable was kept ({data} holds {have}{of} bytes that "
            "nothing pins to a version: the next run starts over)"
        )
    else:
        parts.append("nothing was kept")
    if ctx.dest.exists():
        parts.append(f"the existing {ctx.dest} was not modified")
    return "; ".join(parts)
