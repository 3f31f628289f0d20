"""``Decompress``: one compressed file (``.gz``, ``.bz2``, ``.xz``, ``.zst``) to one file.

The codec is picked from the file's first bytes (its magic number), not its name, so a
``.gz`` that is really bzip2 still works and a file that is neither is a clear
:class:`CorruptArchive`. Output goes to the staging folder, counted against the limits as it is
written, and is renamed into place only when complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..errors import ExtractionError, InvalidArgument, LocalError
from ._base import Processor, strip_suffix
from ._limits import Budget

__all__ = ["Decompress"]

CHUNK = 1 << 20


@dataclass(frozen=True)
class Decompress(Processor):
    """Decompress a single ``.gz``/``.bz2``/``.xz``/``.zst`` file after it was verified.

    Args:
        into: the output file, relative to the archive's folder (or absolute). Default: the
            archive's name without its suffix (``train.csv.gz`` -> ``train.csv``).
        delete_archive: delete the compressed file once the output is recorded as complete.
        limits: :class:`ExtractLimits` (``max_bytes``, ``max_ratio``) against bombs.
    """

    kind: ClassVar[str] = "decompress"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.routes:
            raise InvalidArgument("Decompress writes one file: route= does not apply")

    def default_target(self, archive: Path) -> Path:
        """The archive's name without its compression suffix (``.out`` added if it has none)."""
        stem = strip_suffix(archive.name)
        if stem == archive.name:
            stem = archive.name + ".out"
        return archive.with_name(stem)

    def owns_target(self) -> bool:
        return False  # a file: always replaced atomically by rename

    def extract(self, archive: Path, staging: list[Path], budget: Budget) -> None:
        from ._codec import decoded  # the codecs load when a file is first decompressed

        where = str(archive)
        try:
            raw = open(archive, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise LocalError(f"cannot read {archive}: {exc.strerror}", path=where) from exc
        with raw:
            src, _ = decoded(raw, where, plain=False)  # complete streams only (see _codec)
            budget.position = raw.tell
            budget.member()
            try:
                staging[0].parent.mkdir(parents=True, exist_ok=True)
                with open(staging[0], "wb") as out:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                        budget.wrote(len(chunk))
                        budget.report()
            except ExtractionError:
                raise
            except OSError as exc:
                raise LocalError(f"decompressing {archive} failed: {exc}", path=where) from exc
            os.utime(staging[0])
