"""``AutoExtract``: pick the processor from the file's name; leave other files alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ._base import Processor
from ._single import Decompress
from ._tar import Untar
from ._zip import Unzip

__all__ = ["AutoExtract"]

_TAR = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tzst")
_SINGLE = (".gz", ".bz2", ".xz", ".zst")


@dataclass(frozen=True)
class AutoExtract(Processor):
    """Extract whatever looks like an archive by its name, and leave other files as they are
    (the dataset scripts' "extract zip/tar.gz archives unless told not to").

    ``.tar``/``.tgz``/``.tar.*`` -> :class:`Untar`, ``.zip`` -> :class:`Unzip`,
    ``.gz``/``.bz2``/``.xz``/``.zst`` -> :class:`Decompress`; the same ``into``, ``route``,
    ``delete_archive`` and ``limits`` are passed on (``route`` does not apply to a single
    compressed file, which goes beside its archive).
    """

    kind: ClassVar[str] = "auto"

    def resolve(self, archive: Path) -> Processor | None:
        name = archive.name.lower()
        common = {"delete_archive": self.delete_archive, "limits": self.limits}
        if name.endswith(_TAR):
            return Untar(self.into, route=self.routes or None, **common)  # type: ignore[arg-type]
        if name.endswith(".zip"):
            return Unzip(self.into, route=self.routes or None, **common)  # type: ignore[arg-type]
        if name.endswith(_SINGLE):
            into = self.into if not self.routes else None
            return Decompress(into, **common)  # type: ignore[arg-type]
        return None
