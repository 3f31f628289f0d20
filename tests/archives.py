"""Real archives built in the tests: tar (plain, gz, bz2, xz, zstd), zip, single compressed
files, and hostile ones (traversal, absolute names, link escapes, device files, bombs).

Plain functions returning bytes; ``members`` maps a name to its content. Names ending in ``/``
are folders.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import tarfile
import zipfile
from collections.abc import Iterable, Mapping

MiB = 1 << 20


def tar_bytes(
    members: Mapping[str, bytes] | Iterable[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]],
    compression: str = "",
) -> bytes:
    """A tar archive; ``compression`` is "", "gz", "bz2", "xz" or "zst"."""
    buffer = io.BytesIO()
    mode = f"w:{compression}" if compression in ("gz", "bz2", "xz") else "w"
    with tarfile.open(fileobj=buffer, mode=mode) as tar:  # type: ignore[call-overload]
        if isinstance(members, Mapping):
            for name, data in members.items():
                info = tarfile.TarInfo(name.rstrip("/"))
                if name.endswith("/"):
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(data))
        else:
            for entry in members:
                info, data = entry if isinstance(entry, tuple) else (entry, b"")
                info.size = len(data) if info.isreg() else 0
                tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    raw = buffer.getvalue()
    if compression == "zst":
        import zstandard

        return bytes(zstandard.ZstdCompressor().compress(raw))
    return raw


def zip_bytes(members: Mapping[str, bytes] | Iterable[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if isinstance(members, Mapping):
            for name, data in members.items():
                zf.writestr(name, data)
        else:
            for info, data in members:
                zf.writestr(info, data)
    return buffer.getvalue()


def compress(data: bytes, codec: str) -> bytes:
    if codec == "gz":
        return gzip.compress(data)
    if codec == "bz2":
        return bz2.compress(data)
    if codec == "xz":
        return lzma.compress(data)
    import zstandard

    return bytes(zstandard.ZstdCompressor().compress(data))


def dataset(shard: int, files: int = 20) -> dict[str, bytes]:
    """An SA-1B-like shard: ``sa_N.jpg`` and ``sa_N.json`` pairs, some in a nested folder."""
    members: dict[str, bytes] = {}
    for i in range(files):
        n = shard * 1000 + i
        folder = "" if i % 2 else "nested/deeper/"
        members[f"{folder}sa_{n}.jpg"] = bytes([n % 251]) * (100 + i)
        members[f"{folder}sa_{n}.json"] = f'{{"image": {n}}}'.encode()
    return members


# -- hostile -----------------------------------------------------------------------------------


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    return info


def zip_link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def zip_special(name: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFCHR | 0o644) << 16
    return info, b""


def zip_named(name: str, data: bytes = b"x") -> tuple[zipfile.ZipInfo, bytes]:
    """A zip entry with a raw name (``zipfile.writestr`` would keep ``../`` as given)."""
    return zipfile.ZipInfo(name), data
