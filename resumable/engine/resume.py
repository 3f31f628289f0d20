"""Phase: take over ``D.partial`` (under its lock): resume it if its sidecar proves what it
holds, else empty it; and make the bytes a failed direct attempt received its start.

A partial is resumed only when its sidecar names the same object (its identity), agrees with
the caller's expected digests, and pins a version (a validator, or an expected digest that will
catch a splice). A segmented partial resumes from its recorded ranges, and only if its file
really is the one a segmented writer left beside that sidecar.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Mapping
from typing import Any

from ..errors import LocalError, PartialTakenOver
from ..partial import Sidecar
from ..sources import RemoteInfo
from ..urls import identity
from .state import State

__all__ = ["SIDECAR_ROOM", "adopt_kept", "known", "open_partial", "resumable_sidecar"]

log = logging.getLogger("resumable")

SIDECAR_ROOM = 256 << 10  # bytes of a kept partial given back when its sidecar does not fit


def known(validators: Mapping[str, Any]) -> dict[str, Any]:
    """RemoteInfo fields from a sidecar's validators (tolerating older or partial records)."""
    keys = ("size", "etag", "last_modified", "version")
    fields: dict[str, Any] = {k: validators.get(k) for k in keys}
    checksums = validators.get("checksums")
    fields["checksums"] = dict(checksums) if isinstance(checksums, Mapping) else {}
    return fields


def _recorded(state: State, sidecar: Sidecar) -> RemoteInfo | None:
    """The version ``sidecar`` pins, if this call may continue it (same object, expectations
    that agree, something that pins the version); else ``None``."""
    ctx = state.ctx
    if sidecar.identity != identity(ctx.url):
        return None
    recorded = RemoteInfo(url=ctx.url, **known(sidecar.validators))
    agree = all(sidecar.expected.get(a, v) == v for a, v in ctx.expected.items())
    return recorded if agree and state.resumable(recorded) else None


def resumable_sidecar(state: State) -> Sidecar | None:
    """The partial's sidecar if a rerun of this call would resume from it, else ``None``."""
    try:
        sidecar = state.partial.read_sidecar()
    except LocalError:  # a newer format's: not this version's to resume
        return None
    if sidecar is None or _recorded(state, sidecar) is None:
        return None
    return sidecar


def open_partial(state: State) -> None:
    """Take over ``D.partial``: resume it if its sidecar proves what it holds, else empty it.

    Sets the state's version (``info``), ``offset``, ``resumed_from``, ``segments`` and hasher
    (which re-reads a resumed prefix)."""
    partial = state.partial
    on_disk = partial.open()
    sidecar = partial.read_sidecar()
    info = None
    if sidecar is not None and on_disk > 0:
        info = _recorded(state, sidecar)
    ranges = None  # a segmented partial's recorded ranges that its file really holds
    if info is not None and sidecar is not None and sidecar.ranges is not None:
        ranges = partial.recorded_ranges(sidecar.ranges, info.size or 0, on_disk)
        if ranges is None:  # not the file a segmented writer left beside this sidecar
            info = None
    if info is None:
        if on_disk:  # claim the bytes before dropping them (truncate checks the owner)
            state.record(None)
            log.info("%s cannot be resumed safely; starting over", partial.data)
            partial.truncate(0)
        on_disk = 0
    elif ranges is not None:
        # A segmented partial: only the recorded ranges count, whatever the file's length.
        state.segments = ranges
        on_disk = ranges.total
        state.record(info, ranges)
    else:
        on_disk = partial.written_prefix(on_disk)
        state.record(info)
    state.info = info
    state.offset = state.resumed_from = state.high_water = on_disk
    if info is not None:
        state.use_provider_checksum(info)
        state.new_hasher(info.size)
    else:
        state.hash_later()
    if on_disk and state.segments is None:
        log.info("resuming %s at byte %d", state.ctx.safe_url, on_disk)
        state.hasher.submit_file(partial.fd, on_disk)  # by descriptor: see hash_file


def adopt_kept(state: State) -> bool:
    """Make the bytes a failed direct attempt received the start of ``D.partial``; return
    whether it now starts with them (this call's own bytes: "downloaded", not "resumed").

    ``link`` rather than ``rename``: it fails if ``D.partial`` exists (a writer without a
    working lock), where a rename would replace that writer's bytes. The sidecar then claims
    the partial, with the validators the bytes were received under, and :func:`open_partial`
    resumes it like any partial.
    """
    if state.kept is None:
        return False
    private, info = state.kept
    state.kept = None
    try:
        if not state.resumable(info):
            return False  # nothing pins the version: those bytes could not be continued
        try:
            os.link(private.path, state.partial.data)
        except OSError as exc:
            log.debug("not keeping the direct attempt's bytes for %s: %s", state.ctx.dest, exc)
            return False
        return _claim_kept(state, info)
    finally:
        private.discard()


def _claim_kept(state: State, info: RemoteInfo) -> bool:
    """Write the sidecar that makes the linked bytes a resumable ``D.partial``.

    After a full disk (the usual reason the direct attempt stopped) the sidecar itself may not
    fit: the partial's last bytes are given back (``SIDECAR_ROOM``) and the write is tried once
    more. If it still fails, ``D.partial`` is removed: bytes without a sidecar are started over
    by the next run, and the error must not say they resume.
    """
    data = state.partial.data
    for attempt in range(2):
        try:
            state.record(info)
            return True
        except PartialTakenOver:
            raise
        except LocalError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            try:
                size = os.stat(data).st_size
            except OSError:
                break
            if attempt or not full or size <= SIDECAR_ROOM:
                break
            log.info("disk full: giving back the last bytes of %s for its sidecar", state.ctx.dest)
            with contextlib.suppress(OSError):
                os.truncate(data, size - SIDECAR_ROOM)
    log.warning("could not write the sidecar of %s; its bytes are not kept", data)
    with contextlib.suppress(OSError):
        os.unlink(data)
    return False
