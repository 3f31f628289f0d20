"""After the download: verified, safe, resumable extraction of archives.

A *processor* says what to do with a file once it is downloaded **and verified**::

    import resumable
    from resumable import Untar

    # SA-1B: images to images/, annotations to annotations/, the tar deleted afterwards
    sa1b = Untar(route={"*.jpg": "images", "*.json": "annotations"}, delete_archive=True)
    resumable.download(url, "data/sa_000000.tar", process=sa1b)          # one file
    d.download_many(resumable.read_links("links.txt"), "data", process=sa1b)  # a batch
    resumable.Item(url, process=resumable.Unzip())                       # one item

- :class:`Untar` (tar, tar.gz, tar.bz2, tar.xz, tar.zst with ``zstandard``), :class:`Unzip`,
  :class:`Decompress` (one .gz/.bz2/.xz/.zst file), :class:`AutoExtract` (by file name).
- Safe: no member may land outside its folder (absolute names, ``..``, links pointing
  outside or upwards, device files): :class:`~resumable.UnsafeArchive`, nothing written
  outside, nothing promoted. :class:`ExtractLimits` guards against decompression bombs
  (:class:`~resumable.ArchiveTooLarge`).
- Atomic: members are staged beside the archive and renamed into place; a folder of its own
  appears whole. Completion is recorded (``A.extracted.json`` for a single download, the ledger
  for a batch) only once everything is in place, so a rerun skips extracted archives and
  redoes interrupted ones, also after ``kill -9``; a re-downloaded archive (the remote
  changed) is extracted again.
- :func:`from_spec` builds a processor from a short string (``"untar:route=*.jpg=images"``) for
  command lines; see :mod:`resumable.extract.spec`.

See ``docs/extraction.md``.
"""

from ..engine.result import ExtractResult
from ._auto import AutoExtract
from ._base import Processor
from ._limits import ExtractLimits
from ._single import Decompress
from ._tar import Untar
from ._zip import Unzip
from .spec import from_spec, to_spec

__all__ = [
    "AutoExtract",
    "Decompress",
    "ExtractLimits",
    "ExtractResult",
    "Processor",
    "Untar",
    "Unzip",
    "from_spec",
    "to_spec",
]
