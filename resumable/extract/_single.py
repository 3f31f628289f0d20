"""``Decompress``: one compressed file (``.gz``, ``.bz2``, ``.xz``, ``.zst``) to one file.

The codec is picked from the file's first bytes (its magic number), not its name, so a
``.gz`` that is really bzip2 still works and a file that is neither is a clear
:class:`CorruptArchive`. Output goes to the staging folder, counted against the limits as it is
written, and is renamed into place only when complete.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

from ..errors import CorruptArchive, ExtractionError, InvalidArgument, LocalError
from ._base import Budget, Processor, codec_error, strip_suffix

__all__ = ["Decompress"]

CHUNK = 1 << 20


def _zstd(raw: IO[bytes]) -> IO[bytes]:
    try:
        import zstandard
    except ImportError:
        raise ExtractionError(
            "this file is zstd-compressed and the zstandard package is not installed "
            "(pip install 'resumable[zstd]')"
        ) from None
    reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return reader


_CODECS: dict[bytes, Callable[[IO[bytes]], Any]] = {
    b"\x1f\x8b": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    b"BZh": lambda raw: bz2.BZ2File(raw, "rb"),
    b"\xfd7zXZ\x00": lambda raw: lzma.LZMAFile(raw, "rb"),  # noqa: SIM115
    b"\x28\xb5\x2f\xfd": _zstd,
}


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
        where = str(archive)
        try:
            raw = open(archive, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise LocalError(f"cannot read {archive}: {exc.strerror}", path=where) from exc
        with raw:
            head = raw.read(6)
            raw.seek(0)
            opener = next((o for magic, o in _CODECS.items() if head.startswith(magic)), None)
            if opener is None:
                raise CorruptArchive(
                    "not a gzip, bzip2, xz or zstd file (unknown magic bytes)", path=where
                )
            budget.position = raw.tell
            budget.member()
            staging[0].parent.mkdir(parents=True, exist_ok=True)
            try:
                with opener(raw) as src, open(staging[0], "wb") as out:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                        budget.wrote(len(chunk))
                        budget.report()
            except ExtractionError:
                raise
            except (EOFError, OSError, lzma.LZMAError, zlib.error, ValueError) as exc:
                if isinstance(exc, OSError) and exc.errno is not None:
                    raise LocalError(f"decompressing {archive} failed: {exc}", path=where) from exc
                raise CorruptArchive(f"cannot decompress: {exc}", path=where) from exc
            except Exception as exc:
                if codec_error(exc):
                    raise CorruptArchive(f"cannot decompress: {exc}", path=where) from exc
                raise
            os.utime(staging[0])
