"""``Untar``: tar archives (plain, gz, bz2, xz, and zstd when ``zstandard`` is installed).

Safety rests on the standard library's ``filter="data"`` (PEP 706), applied per member with the
member's own staging folder as the destination, plus stricter checks of our own that need no
filesystem: absolute names and ``..`` are refused rather than rewritten (:func:`member_parts`),
and so is a link whose target is absolute or holds ``..`` (:func:`check_link`): links that only
ever point downwards cannot escape, however they chain, which does not depend on ``realpath``
(whose corner cases were behind the 2025 ``tarfile`` filter bypasses). Every refusal stops the
whole archive with :class:`UnsafeArchive`, and nothing is promoted. So does a member whose
folder is a symlink an earlier member made (the archive's own links are never written through).

Completeness: every tar, whatever its compression and whether it is read while downloading or
after, is read once in stream mode from :func:`~resumable.extract._codec.decoded` (which ends
only after complete compressed streams), and must end with its end-of-archive marker, two zero
blocks, followed by nothing but NUL padding (:func:`_check_end`); ``tarfile`` itself takes a
cut or a damaged header for the end of the archive.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar

from .._checks import check_bool
from ..errors import CorruptArchive, ExtractionError, LocalError, UnsafeArchive
from ._base import Processor
from ._codec import decoded
from ._limits import Budget
from ._members import check_link, member_error, member_parts

__all__ = ["Untar", "extract_tar_stream", "member_error"]


@dataclass(frozen=True)
class Untar(Processor):
    """Extract a tar archive (``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``, and
    ``.tar.zst`` with the ``zstandard`` package) after it was downloaded and verified.

    >>> resumable.download(url, "data/sa_000000.tar",                      # doctest: +SKIP
    ...     process=Untar(route={"*.jpg": "images", "*.json": "annotations"}))

    Args:
        into: the folder for every member, relative to the archive's folder (or absolute).
            Default: a folder named after the archive (``sa_000000.tar`` -> ``sa_000000/``),
            which this library then owns: a re-extraction replaces it whole.
        route: ``{pattern: folder}`` (or pairs, tried in order): a member goes to the folder of
            the first pattern matching it (``*.jpg`` matches file names, ``a/*.json`` whole
            paths), keeping its path inside the archive; members matching none are skipped.
            Folders are relative to the archive's folder. Members are merged into those folders.
        delete_archive: delete the archive once its extraction is recorded as complete.
        stream: extract while the bytes arrive (one connection). The result is promoted only
            after the download verified, and only if the bytes extracted are exactly the
            verified ones; otherwise the verified file is extracted again.
        limits: :class:`ExtractLimits` against decompression bombs.
    """

    kind: ClassVar[str] = "untar"
    stream: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool(self.stream, "stream")

    def extract(self, archive: Path, staging: list[Path], budget: Budget) -> None:
        _require_data_filter()
        try:
            raw = open(archive, "rb")  # noqa: SIM115 - closed below, after tarfile
        except OSError as exc:
            raise LocalError(f"cannot read {archive}: {exc.strerror}", path=str(archive)) from exc
        with raw:
            budget.position = raw.tell
            extract_tar_stream(self, raw, staging, budget)


def extract_tar_stream(
    processor: Processor, raw: IO[bytes], staging: list[Path], budget: Budget
) -> None:
    """Extract the tar archive ``raw`` holds (a file, or one being downloaded), read once from
    start to end, whatever its compression; complete only if every byte was (see ``_codec``
    for the compressed stream, :func:`_check_end` for the tar's own end)."""
    _require_data_filter()
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


def _require_data_filter() -> None:
    if not hasattr(tarfile, "data_filter"):  # Python < 3.10.12 / 3.11.4
        raise ExtractionError(
            "this Python's tarfile has no extraction filters (PEP 706); upgrade to "
            "Python 3.10.12, 3.11.4 or newer to extract tar archives safely"
        )
