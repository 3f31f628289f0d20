"""``Untar``: tar archives (plain, gz, bz2, xz, and zstd when ``zstandard`` is installed).

Safety rests on the standard library's ``filter="data"`` (PEP 706), applied per member with the
member's own staging folder as the destination, plus stricter checks of our own that need no
filesystem: absolute names and ``..`` are refused rather than rewritten (:func:`member_parts`),
and so is a link whose target is absolute or holds ``..`` (:func:`check_link`): links that only
ever point downwards cannot escape, however they chain, which does not depend on ``realpath``
(whose corner cases were behind the 2025 ``tarfile`` filter bypasses). Every refusal stops the
whole archive with :class:`UnsafeArchive`, and nothing is promoted.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar, Literal

from ..errors import CorruptArchive, ExtractionError, LocalError, UnsafeArchive
from ._base import Budget, Processor, check_link, codec_error, member_parts

__all__ = ["Untar", "extract_tar_stream"]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


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

    def extract(self, archive: Path, staging: list[Path], budget: Budget) -> None:
        _require_data_filter()
        try:
            raw = open(archive, "rb")  # noqa: SIM115 - closed below, after tarfile
        except OSError as exc:
            raise LocalError(f"cannot read {archive}: {exc.strerror}", path=str(archive)) from exc
        with raw:
            budget.position = raw.tell
            if raw.read(4) == ZSTD_MAGIC:
                raw.seek(0)
                extract_tar_stream(self, _zstd_reader(raw, archive), staging, budget, "r|")
                return
            raw.seek(0)
            try:
                tar = tarfile.open(fileobj=raw, mode="r:*")  # noqa: SIM115
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise CorruptArchive(
                    f"not a readable tar archive: {exc}", path=str(archive)
                ) from exc
            with tar:
                _extract_members(self, tar, staging, budget)


def extract_tar_stream(
    processor: Processor,
    fileobj: IO[bytes],
    staging: list[Path],
    budget: Budget,
    mode: Literal["r|*", "r|"],
) -> None:
    """Extract from a non-seekable stream (``r|*``): a zstd reader, or a file being written."""
    _require_data_filter()
    try:
        tar = tarfile.open(fileobj=fileobj, mode=mode)  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CorruptArchive(
            f"not a readable tar archive: {exc}", path=str(budget.archive)
        ) from exc
    with tar:
        _extract_members(processor, tar, staging, budget)


def _extract_members(
    processor: Processor, tar: tarfile.TarFile, staging: list[Path], budget: Budget
) -> None:
    archive = str(budget.archive)
    try:
        for member in tar:
            parts = member_parts(member.name, archive)
            if not parts:
                continue  # the archive's root folder itself ("./")
            index = processor.route_of(parts)
            if index is None:
                budget.unrouted += 1
                continue
            if member.issym() or member.islnk():
                check_link(member.name, member.linkname, archive)
            dest = staging[index]
            dest.mkdir(parents=True, exist_ok=True)
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
    except ExtractionError:
        raise
    except (tarfile.TarError, EOFError, ValueError) as exc:
        raise CorruptArchive(f"cannot read the tar archive: {exc}", path=archive) from exc
    except OSError as exc:
        raise LocalError(f"extracting {archive} failed: {exc}", path=archive) from exc
    except Exception as exc:
        if codec_error(exc):
            raise CorruptArchive(f"cannot decompress the archive: {exc}", path=archive) from exc
        raise


def _require_data_filter() -> None:
    if not hasattr(tarfile, "data_filter"):  # Python < 3.10.12 / 3.11.4
        raise ExtractionError(
            "this Python's tarfile has no extraction filters (PEP 706); upgrade to "
            "Python 3.10.12, 3.11.4 or newer to extract tar archives safely"
        )


def _zstd_reader(raw: IO[bytes], archive: Path) -> IO[bytes]:
    try:
        import zstandard
    except ImportError:
        raise ExtractionError(
            "this is a zstd-compressed archive and the zstandard package is not installed "
            "(pip install 'resumable[zstd]')",
            path=str(archive),
        ) from None
    reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return reader
