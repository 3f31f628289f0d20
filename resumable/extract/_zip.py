"""``Unzip``: zip archives, with the checks ``zipfile`` does not make.

``zipfile.extract`` sanitises names but has no extraction filter: it writes symlink entries as
small files, ignores device bits, trusts declared sizes for planning and happily follows a
symlinked folder already on disk. Here every entry is checked first (the same rules as tar:
:func:`member_parts`, :func:`check_link`, no special files), bytes are counted as they are
written (a declared size can lie; ``zipfile`` also checks each CRC), and files are created with
``O_NOFOLLOW`` under a parent that is proved to be inside the staging folder.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import CorruptArchive, ExtractionError, LocalError, UnsafeArchive
from ._base import Processor
from ._limits import Budget
from ._members import check_link, member_error, member_parts

if TYPE_CHECKING:
    import zipfile

__all__ = ["Unzip"]

CHUNK = 1 << 20


def _unreadable() -> tuple[type[Exception], ...]:
    """What zipfile and its decompressors raise on bytes that are not a complete, intact zip.

    Imported here, when a zip is extracted, so that ``import resumable`` loads none of them.
    """
    import lzma
    import struct
    import zipfile
    import zlib

    return (
        zipfile.BadZipFile,
        EOFError,
        NotImplementedError,
        RuntimeError,
        ValueError,
        struct.error,
        zlib.error,
        lzma.LZMAError,
    )


@dataclass(frozen=True)
class Unzip(Processor):
    """Extract a zip archive after it was downloaded and verified.

    Same arguments as :class:`Untar` (``into``, ``route``, ``delete_archive``, ``limits``),
    without ``stream``: a zip's directory is at its end.
    """

    kind: ClassVar[str] = "unzip"

    def extract(self, archive: Path, staging: list[Path], budget: Budget) -> None:
        import zipfile  # loaded when a zip is first extracted

        where = str(archive)
        unreadable = _unreadable()
        try:
            zf = zipfile.ZipFile(archive)
        except OSError as exc:
            raise LocalError(f"cannot read {archive}: {exc.strerror}", path=where) from exc
        except unreadable as exc:  # no end record or central directory: cut, or not a zip
            raise CorruptArchive(f"not a readable zip archive: {exc}", path=where) from exc
        with zf:
            infos = zf.infolist()
            plan = [(info, self._check(info, where)) for info in infos]
            done = 0
            budget.position = lambda: done
            for info, parts in plan:
                done += info.compress_size
                if not parts:
                    continue
                index = self.route_of(parts)
                if index is None:
                    budget.unrouted += 1
                    continue
                budget.member(info.file_size)
                try:
                    _write(zf, info, parts, staging[index], budget)
                except ExtractionError:
                    raise
                except OSError as exc:
                    raise member_error(exc, where, info.filename) from exc
                except unreadable as exc:
                    # a bad CRC, damaged or truncated data, an unknown compression, a password
                    raise CorruptArchive(
                        f"cannot read member {info.filename!r}: {exc}",
                        path=where,
                        member=info.filename,
                    ) from exc
                budget.report()

    @staticmethod
    def _check(info: zipfile.ZipInfo, where: str) -> list[str]:
        parts = member_parts(info.filename, where)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
            raise UnsafeArchive(
                f"member {info.filename!r} is a special file (mode {oct(mode)})",
                path=where,
                member=info.filename,
            )
        if info.flag_bits & 0x1:
            raise CorruptArchive(
                f"member {info.filename!r} is encrypted", path=where, member=info.filename
            )
        return parts


def _write(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, parts: list[str], root: Path, budget: Budget
) -> None:
    parent = _folder(root, parts[:-1])
    target = parent / parts[-1]
    if info.is_dir():
        _folder(root, parts)
        return
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        link = zf.read(info)
        if len(link) > 4096:
            raise UnsafeArchive(f"link {info.filename!r} is too long", member=info.filename)
        text = link.decode("utf-8", "surrogateescape")
        check_link(info.filename, text, str(budget.archive))
        _unlink(target)
        os.symlink(text, target)
        return
    _unlink(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o755 if mode & 0o100 else 0o644)
    with os.fdopen(fd, "wb") as out, zf.open(info) as src:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            budget.wrote(len(chunk))


def _folder(root: Path, parts: list[str]) -> Path:
    """Create ``root/parts`` one level at a time, refusing to pass through a symlink."""
    root.mkdir(parents=True, exist_ok=True)
    here = root
    for part in parts:
        here = here / part
        if here.is_symlink():
            raise UnsafeArchive(f"a member would be written through the symlink {here.name!r}")
        if not here.is_dir():
            _unlink(here)
            here.mkdir()
    return here


def _unlink(path: Path) -> None:
    """Make room for a member that appears twice (the last one wins, as with tar)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        raise CorruptArchive(
            f"member {path.name!r} is both a folder and a file (the archive holds "
            "conflicting members)",
            member=path.name,
        )
