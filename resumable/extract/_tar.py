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
blocks, followed by nothing but NUL padding (``_tarstream._check_end``); ``tarfile`` itself takes a
cut or a damaged header for the end of the archive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar

from .._checks import check_bool
from ..errors import LocalError
from ._base import Processor
from ._limits import Budget
from ._members import member_error

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
        from ._tarstream import require_data_filter  # loads tarfile: when first used

        require_data_filter()
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
    for the compressed stream, ``_tarstream`` for the tar's own end). The reader is imported
    here, when first used, so that ``import resumable`` does not load ``tarfile``."""
    from ._tarstream import read_tar

    read_tar(processor, raw, staging, budget)
