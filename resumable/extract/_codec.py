"""Decompression that ends only at a verified end: the one reader every processor uses.

The standard library's readers accept a cut archive in some modes and not others: tarfile's
stream mode (``r|*``) never checks that zlib reached its end-of-stream marker (and reads only
the first member of a multi-member gzip), ``BZ2File`` and ``LZMAFile`` silently drop trailing
garbage, and ``zstandard``'s stream reader returns a cut frame's bytes as if they were all.
:func:`decoded` replaces all of them with one rule, the same whether the archive is read while
it downloads or after:

- the codec is chosen by the first bytes (gzip, bzip2, xz, zstd, or none);
- reading returns ``b""`` only once the input ended exactly after a complete stream: the
  decompressor's own end-of-stream (``eof``) for gzip, bzip2 and xz, the last block of a
  complete frame for zstd (walked by :class:`ZstdFrames`);
- concatenated complete streams are one file (``cat a.gz b.gz`` is valid gzip, RFC 1952;
  ``pbzip2``, ``xz`` and ``zstd -T`` write several); NUL padding may come between or after
  gzip, bzip2 and xz streams (tape blocking, which ``gzip -d`` and the xz format accept);
  anything else after a complete stream is trailing garbage;
- otherwise :class:`~resumable.CorruptArchive` (a truncation or garbage), never a short read.

Output is bounded per read (``max_length``; for zstd, ``zstandard``'s stream reader), so a
decompression bomb is caught by the :class:`~resumable.extract.ExtractLimits` checks on what is
written, not by running out of memory first.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from typing import IO, Any, Protocol

from ..errors import CorruptArchive, ExtractionError
from ._members import codec_error

__all__ = ["ZstdFrames", "decoded", "sniff"]

CHUNK = 1 << 16
GZIP = b"\x1f\x8b"
BZIP2 = b"BZh"
XZ = b"\xfd7zXZ\x00"
ZSTD = b"\x28\xb5\x2f\xfd"
_SKIPPABLE = range(0x184D2A50, 0x184D2A60)  # zstd skippable frames' magic numbers


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


class _Gzip:
    """``zlib.decompressobj`` for one gzip member, with the ``bz2``/``lzma`` interface."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=31)
        self._tail = b""

    @property
    def eof(self) -> bool:
        return self._z.eof

    @property
    def needs_input(self) -> bool:
        return not self._tail and not self._z.eof

    @property
    def unused_data(self) -> bytes:
        return self._z.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._z.decompress(self._tail + data if self._tail else data, max(max_length, 0))
        self._tail = self._z.unconsumed_tail
        return out


def _bzip2() -> _Decompressor:
    import bz2  # here, as lzma and tarfile below: ``import resumable`` loads none of them

    return bz2.BZ2Decompressor()


def _xz() -> _Decompressor:
    import lzma

    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)


def _errors_of(name: str) -> tuple[type[Exception], ...]:
    """What a decompressor raises on bad data, beyond the builtin errors."""
    if name == "xz":
        import lzma

        return (zlib.error, lzma.LZMAError)
    return (zlib.error,)


_STREAMS: dict[bytes, tuple[str, Callable[[], _Decompressor]]] = {
    GZIP: ("gzip", _Gzip),
    BZIP2: ("bzip2", _bzip2),
    XZ: ("xz", _xz),
}


def sniff(head: bytes) -> str:
    """The compression the first 10 bytes name: ``gzip``, ``bzip2``, ``xz``, ``zstd`` or ``""``.

    More than the magic numbers alone, so that a plain tar whose first member is named
    ``BZh...`` is not taken for bzip2: gzip's method byte (8, deflate), bzip2's block size
    digit and the magic of its first block (or of its end, for an empty stream).
    """
    if head.startswith(ZSTD):
        return "zstd"
    if head.startswith(XZ):
        return "xz"
    if head.startswith(GZIP) and head[2:3] == b"\x08":
        return "gzip"
    if head.startswith(BZIP2) and head[3:4] in _BZ2_LEVELS and head[4:10] in _BZ2_BLOCKS:
        return "bzip2"
    return ""


_BZ2_LEVELS = {bytes([c]) for c in b"123456789"}
_BZ2_BLOCKS = (b"1AY&SY", b"\x17rE8P\x90")
_HEAD = 10


class _Source:
    """The raw input, with bytes read ahead (to sniff, or left after a stream) put back."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.back = b""

    def read(self, size: int = CHUNK) -> bytes:
        """At most ``size`` bytes: what was put back first, then the input."""
        if self.back:
            data, self.back = self.back[:size], self.back[size:]
            return data
        return self.raw.read(size) or b""

    def peek(self, size: int) -> bytes:
        """At least ``size`` bytes unless the input ends first; nothing is consumed."""
        while len(self.back) < size:
            more = self.raw.read(max(size - len(self.back), CHUNK))
            if not more:
                break
            self.back += more
        return self.back


class _Decoded(io.RawIOBase):
    """gzip, bzip2 or xz: decompressed bytes, ending only after complete streams."""

    def __init__(self, source: _Source, magic: bytes, where: str) -> None:
        super().__init__()
        self._source = source
        self._name, self._new = _STREAMS[magic]
        self._where = where
        self._dec = self._new()
        self._errors: tuple[type[Exception], ...] = (
            OSError,
            EOFError,
            ValueError,
            *_errors_of(self._name),
        )
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._ended:
            dec = self._dec
            if dec.eof:
                self._next_stream(dec.unused_data)
                continue
            data = self._source.read() if dec.needs_input else b""
            try:
                out = dec.decompress(data, len(view))
            except self._errors as exc:
                raise CorruptArchive(
                    f"cannot decompress the {self._name} data: {exc}", path=self._where
                ) from exc
            if out:
                view[: len(out)] = out
                return len(out)
            if dec.needs_input and not data and not dec.eof:
                # The input ended, and what the decompressor still held came out above.
                raise CorruptArchive(
                    f"the {self._name} data is truncated: the input ended before the "
                    "end-of-stream marker",
                    path=self._where,
                )
        return 0

    def _next_stream(self, unused: bytes) -> None:
        """After a complete stream: another one (NUL padding may come before it, as the xz
        format's stream padding and gzip readers allow), or the end; anything else is
        trailing garbage."""
        if unused:
            self._source.back = unused + self._source.back
        _skip_nul(self._source)
        head = self._source.peek(_HEAD)
        if not head:
            self._ended = True
        elif sniff(head) == self._name:
            self._dec = self._new()
        else:
            raise CorruptArchive(
                f"data after the end of the {self._name} stream (trailing garbage)",
                path=self._where,
            )


def _skip_nul(source: _Source) -> None:
    """Consume NUL bytes up to the next other byte (put back) or the end of the input."""
    while data := source.read():
        rest = data.lstrip(b"\0")
        if rest:
            source.back = rest + source.back
            return


class ZstdFrames:
    """Walks the frame structure of zstd data (RFC 8878, section 3.1) as it passes, without
    decoding it, to tell whether the input ended exactly after a complete frame.

    ``zstandard``'s stream reader returns a cut frame's bytes without an error; this walk
    reads only the frame and block headers (a few bytes per block of up to 128 KiB).
    """

    def __init__(self, where: str) -> None:
        self._where = where
        self._want = "magic"
        self._need = 4  # bytes the current header needs
        self._buf = b""
        self._skip = 0  # bytes of block content (or a skippable frame) to pass over
        self._checksum = False
        self.frames = 0

    def feed(self, data: bytes) -> None:
        pos, size = 0, len(data)
        while pos < size:
            if self._skip:
                step = min(self._skip, size - pos)
                self._skip -= step
                pos += step
                continue
            take = min(self._need - len(self._buf), size - pos)
            self._buf += data[pos : pos + take]
            pos += take
            if len(self._buf) == self._need:
                header, self._buf = self._buf, b""
                self._header(header)

    def complete(self) -> bool:
        return self.frames > 0 and self._want == "magic" and not self._buf and not self._skip

    def _header(self, h: bytes) -> None:
        want = self._want
        if want == "magic":
            magic = int.from_bytes(h, "little")
            if h == ZSTD:
                self._want, self._need = "descriptor", 1
            elif magic in _SKIPPABLE:
                self._want, self._need = "skippable", 4
            else:
                raise CorruptArchive(
                    "data after the end of the zstd frames (trailing garbage)", path=self._where
                )
        elif want == "skippable":
            self._skip = int.from_bytes(h, "little")
            self._want, self._need = "magic", 4
        elif want == "descriptor":
            fhd = h[0]
            single = bool(fhd & 0x20)
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            rest = (0 if single else 1) + (0, 1, 2, 4)[fhd & 0x03] + fcs
            self._checksum = bool(fhd & 0x04)
            self._want, self._need = "frame header", rest
            if rest == 0:
                self._want, self._need = "block", 3
        elif want == "frame header":
            self._want, self._need = "block", 3
        elif want == "block":
            value = int.from_bytes(h, "little")
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                raise CorruptArchive("a zstd block of the reserved type", path=self._where)
            self._skip = 1 if kind == 1 else size
            if last:
                self._end_frame()
        elif want == "checksum":
            self._end_frame(checked=True)

    def _end_frame(self, checked: bool = False) -> None:
        if self._checksum and not checked:
            self._want, self._need = "checksum", 4
            return
        self.frames += 1
        self._want, self._need = "magic", 4


class _Walked(io.RawIOBase):
    """The raw zstd input, shown to a :class:`ZstdFrames` as ``zstandard`` reads it."""

    def __init__(self, source: _Source, frames: ZstdFrames) -> None:
        super().__init__()
        self._source = source
        self._frames = frames

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        self._frames.feed(data)
        buffer[: len(data)] = data
        return len(data)


class _Zstd(io.RawIOBase):
    """zstd: ``zstandard``'s stream reader for the bytes, :class:`ZstdFrames` for the end."""

    def __init__(self, source: _Source, where: str) -> None:
        super().__init__()
        try:
            import zstandard
        except ImportError:
            raise ExtractionError(
                "this is zstd-compressed and the zstandard package is not installed "
                "(pip install 'resumable[zstd]')",
                path=where,
            ) from None
        self._where = where
        self._frames = ZstdFrames(where)
        self._walked = _Walked(source, self._frames)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            self._walked,  # type: ignore[arg-type]  # any object with read() will do
            read_across_frames=True,
        )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            n: int = self._reader.readinto(buffer)
        except Exception as exc:
            if not codec_error(exc):  # ours (a truncation seen by the walk), the follower's...
                raise
            raise CorruptArchive(
                f"cannot decompress the zstd data: {exc}", path=self._where
            ) from exc
        if n == 0:
            while self._walked.read(CHUNK):  # whatever the reader did not need
                pass
            if not self._frames.complete():
                raise CorruptArchive(
                    "the zstd data is truncated: the input ended inside a frame",
                    path=self._where,
                )
        return n


class _Plain(io.RawIOBase):
    """No compression: the raw bytes as they are."""

    def __init__(self, source: _Source) -> None:
        super().__init__()
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_TAR_BLOCK = 512  # tarfile.BLOCKSIZE


def _tar_header(block: bytes) -> bool:
    import tarfile  # only for an archive that starts like a compressed one

    try:
        tarfile.TarInfo.frombuf(block[:_TAR_BLOCK], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def decoded(raw: IO[bytes], where: str, *, plain: bool = True) -> tuple[IO[bytes], str]:
    """The decompressed bytes of ``raw`` and the compression found (see the module docstring).

    ``plain=False``: uncompressed input is a :class:`CorruptArchive` (``Decompress``).
    """
    source = _Source(raw)
    kind = sniff(source.peek(_HEAD))
    if kind and plain and _tar_header(source.peek(_TAR_BLOCK)):
        kind = ""  # a plain tar whose first member's name starts like a magic number
    stream: io.RawIOBase
    if kind == "zstd":
        stream = _Zstd(source, where)
    elif kind:
        magic = next(m for m, (name, _) in _STREAMS.items() if name == kind)
        stream = _Decoded(source, magic, where)
    elif plain:
        stream = _Plain(source)
    else:
        raise CorruptArchive("not a gzip, bzip2, xz or zstd file (unknown magic bytes)", path=where)
    return io.BufferedReader(stream, CHUNK), kind
