"""Reading a tar archive for :class:`~resumable.extract.Untar`: the part that needs ``tarfile``.

Apart from :mod:`resumable.extract._tar` so that ``import resumable`` does not load
``tarfile`` (and, through it, ``bz2``, ``lzma`` and ``shutil``): this module is imported
when a tar archive is first extracted. The safety and completeness rules are described in
:mod:`resumable.extract._tar`.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import IO

from ..errors import CorruptArchive, ExtractionError, UnsafeArchive
from ._base import Processor
from ._codec import decoded
from ._limits import Budget
from ._members import check_link, member_error, member_parts

__all__ = ["read_tar", "require_data_filter"]


def read_tar(processor: Processor, raw: IO[bytes], staging: list[Path], budget: Budget) -> None:
    """Extract the tar archive ``raw`` holds (see ``_tar.extract_tar_stream``)."""
    require_data_filter()
    archive = str(budget.archive)
    try:
        fileobj, _ = decoded(raw, archive)
        tar = _StrictTar.open(fileobj=fileobj, mode="r|", tarinfo=_Header)
    except (tarfile.TarError, EOFError) as exc:
        raise CorruptArchive(f"not a readable tar archive: {exc}", path=archive) from exc
    with tar:
        _extract_members(processor, tar, staging, budget)


class _StrictTar(tarfile.TarFile):
    """A ``TarFile`` that remembers why its member list ended (see :class:`_Header`)."""

    ended_by: tarfile.HeaderError | None = None


class _Header(tarfile.TarInfo):
    """tarfile ends the member list at the first header it cannot read (a zero block, but
    also a truncated or damaged one, or the end of the data) and reports nothing; remember
    which it was, so :func:`_check_end` can tell the end of an archive from a cut."""

    @classmethod
    def fromtarfile(cls, tarfile: tarfile.TarFile) -> _Header:
        try:
            return super().fromtarfile(tarfile)
        except _HeaderError as exc:
            if isinstance(tarfile, _StrictTar):
                tarfile.ended_by = exc
            raise


_HeaderError = tarfile.HeaderError
_EndOfArchive: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_BLOCK = tarfile.BLOCKSIZE


def _check_end(tar: _StrictTar, archive: str) -> None:
    """The member list ended at the end-of-archive marker (two zero blocks), and only NUL
    padding follows it: a cut, a damaged header or a second archive appended is refused."""
    if not isinstance(tar.ended_by, _EndOfArchive):
        why = f" ({tar.ended_by})" if tar.ended_by is not None else ""
        raise CorruptArchive(
            f"the tar archive ends without its end-of-archive marker{why}: truncated or damaged",
            path=archive,
        )
    stream = tar.fileobj
    assert stream is not None
    second = stream.read(_BLOCK)
    if len(second) != _BLOCK or second.count(0) != _BLOCK:
        raise CorruptArchive(
            "the tar archive ends without its end-of-archive marker (one zero block, not two)",
            path=archive,
        )
    while rest := stream.read(1 << 16):
        if rest.count(0) != len(rest):
            raise CorruptArchive(
                "data after the end-of-archive marker of the tar archive (two archives "
                "concatenated, or garbage)",
                path=archive,
            )


def _extract_members(
    processor: Processor, tar: _StrictTar, staging: list[Path], budget: Budget
) -> None:
    archive = str(budget.archive)
    member: tarfile.TarInfo | None = None
    try:
        for member in tar:
            _extract_member(processor, tar, member, staging, budget)
        member = None
        _check_end(tar, archive)
    except ExtractionError:
        raise
    except (tarfile.TarError, EOFError, ValueError) as exc:
        raise CorruptArchive(f"cannot read the tar archive: {exc}", path=archive) from exc
    except OSError as exc:
        raise member_error(exc, archive, member.name if member else None) from exc


def _extract_member(
    processor: Processor,
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    staging: list[Path],
    budget: Budget,
) -> None:
    archive = str(budget.archive)
    parts = member_parts(member.name, archive)
    if not parts:
        return  # the archive's root folder itself ("./")
    index = processor.route_of(parts)
    if index is None:
        budget.unrouted += 1
        return
    if member.issym() or member.islnk():
        check_link(member.name, member.linkname, archive)
    dest = staging[index]
    dest.mkdir(parents=True, exist_ok=True)
    _refuse_link_parents(dest, parts, member.name, archive)
    try:
        safe = tarfile.data_filter(member, str(dest))
    except tarfile.FilterError as exc:
        raise UnsafeArchive(
            f"member {member.name!r} refused: {exc}", path=archive, member=member.name
        ) from None
    budget.member(safe.size if safe.isreg() else 0)
    tar.extract(safe, str(dest), set_attrs=True, filter="fully_trusted")
    if safe.isreg():
        budget.wrote(safe.size)
    budget.report()


def _refuse_link_parents(root: Path, parts: list[str], name: str, archive: str) -> None:
    """Refuse a member whose folder is a symlink an earlier member made: writing through a
    link is how archives escape (and, through a loop, how they fail with ``File exists``).
    The same rule as :func:`resumable.extract._zip._folder`."""
    here = root
    for part in parts[:-1]:
        here = here / part
        if here.is_symlink():
            raise UnsafeArchive(
                f"member {name!r} would be written through the symlink {part!r} the archive made",
                path=archive,
                member=name,
            )
        if not here.exists():
            return


def require_data_filter() -> None:
    if not hasattr(tarfile, "data_filter"):  # Python < 3.10.12 / 3.11.4
        raise ExtractionError(
            "this Python's tarfile has no extraction filters (PEP 706); upgrade to "
            "Python 3.10.12, 3.11.4 or newer to extract tar archives safely"
        )
