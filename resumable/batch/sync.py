"""``sync=True``: mirror templates and prefixes, deleting only what is provably ours and gone.

Two questions, each asked of the source through the engine (retried like a download):

- :meth:`Sync.remote_changed`: has the object changed since its file was downloaded (its ETag,
  version or date, and size, against the ledger's)? Then the file is fetched again.
- :meth:`Sync.delete_if_ours`: may the file go? Only when this library wrote it, nobody changed
  it since (the ledger's record of the write), and the source confirms that the object is gone
  (:meth:`Sync.gone`). A file it did not write, or that changed locally, is never touched.

At the end of a batch whose inputs were all read, :meth:`Sync.delete_missing` asks that of each
ledger entry of this run's templates and prefixes that the run did not see; an input whose
expansion or listing failed (:meth:`Sync.incomplete`) prunes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LocalError, ResumableError, SourceNotFound
from ..urls import identity, redact
from .ledger import Ledger
from .rows import Entry
from .tally import Tally

if TYPE_CHECKING:
    from ..engine import Engine
    from .items import Work

__all__ = ["Sync"]

log = logging.getLogger("resumable")


class Sync:
    """The ``sync`` decisions of one batch into ``dest_dir`` (thread-safe)."""

    def __init__(
        self,
        engine: Engine,
        ledger: Ledger,
        dest_dir: Path,
        tally: Tally,
        cancel: threading.Event,
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._dest_dir = dest_dir
        self._root = dest_dir.resolve()
        self._tally = tally
        self._cancel = cancel
        self._lock = threading.Lock()
        self._origins: set[str] = set()
        self._incomplete: set[str] = set()

    def saw(self, work: Work) -> None:
        """``work`` came from a template or prefix: its origin is mirrored at the end."""
        if work.origin is not None:
            with self._lock:
                self._origins.add(work.origin)

    def incomplete(self, raw: object) -> None:
        """The input ``raw`` could not be expanded or listed: never prune what it did not reach."""
        if isinstance(raw, str):
            with self._lock:
                self._incomplete.add(identity(raw))

    def remote_changed(self, work: Work, entry: Entry) -> bool:
        """Whether the object changed since this file was downloaded."""
        if entry.state != "done":
            return False
        if not (entry.etag or entry.version or entry.last_modified):
            return True  # nothing to compare with: fetch again to be sure
        # Through a transfer's stat: retried, and refreshed or failed over like a download.
        dest = self._root / work.rel
        request = self._engine.request(work.item.url, dest, mirrors=work.item.mirrors)
        probe = self._engine.prepare(request, cancel=self._cancel)
        remote = probe.probe("sync: cannot tell whether it changed; fetching it")
        if remote is None:
            return True
        if entry.etag or entry.version:
            before = (entry.version or None, entry.etag)
            changed = before != (remote.version or None, remote.etag)
        else:  # a server with dates only (python -m http.server): a new date is a new object
            changed = entry.last_modified != remote.last_modified
        return changed or remote.size != entry.size

    def not_found(self, work: Work) -> None:
        """``work`` failed with "not found": maybe gone at the source. Only templates and
        prefixes are mirrored (called before the ledger records the failure, which would hide
        that the file was ours)."""
        if work.origin is None:
            return
        try:
            self.delete_if_ours(work.rel, work.item.url, listed=work.listed)
        except LocalError as ledger_error:  # the item fails with its own error anyway
            log.warning("sync: %s: %s", work.rel, ledger_error)

    def delete_missing(self, seen: Collection[str]) -> None:
        """Delete files this library downloaded from the same inputs that are gone at the
        source: ledger entries of this run's templates/prefixes that it did not ``seen``."""
        with self._lock:
            origins = sorted(self._origins - self._incomplete)
        for origin in origins:
            for entry in self._ledger.by_origin(origin):
                if entry.path not in seen:
                    self.delete_if_ours(entry.path, entry.identity, listed=False)

    def delete_if_ours(self, rel: str, url: str, *, listed: bool) -> None:
        """Delete the file at ``rel`` if this library wrote it, nobody changed it since, and
        the object ``url`` is gone at the source (:meth:`gone`). Every sync delete goes here."""
        entry = self._ledger.get(rel)
        if entry is None:
            return
        path = self._dest_dir / rel
        if not entry.written_by_us(path):
            if entry.written_size is not None and path.exists():
                log.warning("sync: kept %s: gone at the source but changed locally", path)
            elif path.exists():
                log.info("sync: kept %s: the ledger has no record that this library wrote it", path)
            return
        if not self.gone(url, listed=listed):
            log.warning("sync: kept %s: the source does not confirm that it is gone", path)
            return
        path.unlink()
        self._ledger.forget(rel)
        self._tally.deleted(path)
        log.info("sync: deleted %s (gone at the source)", path)

    def gone(self, url: str, *, listed: bool) -> bool:
        """The one decision behind every ``sync`` delete: is the object at ``url`` gone?

        Only when the source agrees with itself: no listing of this run holds it (``listed``),
        and both a metadata request (``stat``: a HEAD for HTTP) and a read of its first byte
        (a GET) answer "not found" (:class:`SourceNotFound`, a 404 or 410). One probe's 404
        while the other finds the object (a HEAD that disagrees with GET, a listing that
        disagrees with a read), or any other answer (403, 5xx, a timeout, a cancel), is not
        proof: the file stays, and the next run asks again.
        """
        if listed:
            return False
        try:
            source = self._engine.source(url.split(":", 1)[0].lower())
        except ResumableError:
            return False

        def read() -> None:
            source.open(url, 0, 1).close()

        return self._not_found(lambda: source.stat(url), url) and self._not_found(read, url)

    def _not_found(self, probe: Callable[[], object], url: str) -> bool:
        """Whether ``probe`` (retried on transient errors) says the object does not exist."""
        try:
            self._engine.call(probe, url=url, cancel=self._cancel)
        except SourceNotFound:
            return True
        except ResumableError as exc:
            log.info("sync: %s: no proof that it is gone (%s)", redact(url), exc)
        return False
