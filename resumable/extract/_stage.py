"""Staging and promotion: how an extraction reaches its folders without ever looking complete
before it is.

Members are written under ``A.extracting/<route index>/`` beside the archive ``A``; nothing is
written into a target folder while the archive is read. Then, for each target:

- a folder that does not exist yet is the staged folder, renamed into place in one
  ``os.rename`` (atomic: it exists complete or not at all);
- a folder this library created for this archive earlier (the default ``A``-named folder) is
  replaced: moved aside, the new one renamed in, the old one deleted;
- any other folder (``into=`` an existing folder, or a routed ``images/`` shared by many
  shards) receives each staged file by ``os.replace``: every member appears complete or not at
  all, and a crash half-way leaves a record that is not "done", so the rerun extracts again.

``A.extracting.lock`` keeps two processes from extracting the same archive at once; a staging
folder left by a killed run is deleted before the next extraction starts.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import LocalError
from ..partial import helper_path

__all__ = ["Staging"]

log = logging.getLogger("resumable")


class Staging:
    """The staging folder of one archive, and the promotion of what it holds."""

    def __init__(self, archive: Path) -> None:
        self.root = helper_path(archive, ".extracting")
        self.lockfile = helper_path(archive, ".extracting.lock")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from filelock import FileLock

        lock = FileLock(str(self.lockfile))
        try:
            lock.acquire()
        except OSError as exc:
            log.warning("could not lock %s (%s); continuing without a lock", self.lockfile, exc)
            yield
            return
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.lockfile)
            lock.release()

    def fresh(self, count: int, stage_files: bool = False) -> list[Path]:
        """An empty staging folder (removing what a killed run left) and one slot per target."""
        self.discard()
        try:
            self.root.mkdir(parents=True)
        except OSError as exc:
            message = f"cannot create {self.root}: {exc.strerror}"
            raise LocalError(message, path=str(self.root)) from exc
        slots = [self.root / str(i) for i in range(count)]
        if not stage_files:
            for slot in slots:
                slot.mkdir()
        return slots

    def discard(self) -> None:
        import shutil  # here and below: shutil loads bz2 and lzma, not for ``import resumable``

        if self.root.exists() or self.root.is_symlink():
            shutil.rmtree(self.root, ignore_errors=True)

    def promote(self, slot: Path, target: Path, *, replace_whole: bool) -> None:
        """Move what ``slot`` holds to ``target`` (see the module docstring)."""
        import shutil

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not slot.is_dir():  # a single file (Decompress)
                _move(slot, target)
            elif not target.exists() and not target.is_symlink():
                try:
                    os.rename(slot, target)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOTEMPTY, errno.EEXIST):
                        raise
                    _merge(slot, target)  # another filesystem, or created meanwhile
            elif replace_whole and target.is_dir() and not target.is_symlink():
                old = helper_path(target, ".replaced", lead=".")
                shutil.rmtree(old, ignore_errors=True)  # left by a run killed right here
                os.rename(target, old)
                try:
                    os.rename(slot, target)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        os.rename(old, target)  # put the old one back; the record is not done
                        raise
                    _merge(slot, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                _merge(slot, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            raise LocalError(
                f"cannot move extracted files into {target}: {exc}", path=str(target)
            ) from exc


def _merge(src: Path, dst: Path) -> None:
    """Move every file of ``src`` into ``dst``, creating folders; one ``os.replace`` each."""
    if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
        raise LocalError(f"{dst} exists and is not a folder", path=str(dst))
    dst.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        here = dst / rel
        names = list(filenames)
        for name in list(dirnames):
            if (Path(dirpath) / name).is_symlink():
                dirnames.remove(name)  # a symlink to a folder moves as a link
                names.append(name)
                continue
            folder = here / name
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                raise LocalError(
                    f"{folder} exists and is not a folder; the archive needs a folder there",
                    path=str(folder),
                )
            folder.mkdir(exist_ok=True)
        for name in names:
            target = here / name
            if target.is_dir() and not target.is_symlink():
                raise LocalError(f"{target} is a folder; the archive has a file there")
            _move(Path(dirpath) / name, target)


def _move(src: Path, dst: Path) -> None:
    """``os.replace``, or across filesystems: copy beside ``dst``, then ``os.replace``."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = helper_path(dst, ".resumable-tmp", lead=".")
        import shutil

        if src.is_symlink():
            os.symlink(os.readlink(src), tmp)
        else:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
        os.unlink(src)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
