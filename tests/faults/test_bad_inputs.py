"""The bad-input catalogue: every malformed argument and hostile local state, in one table.

Each :class:`Case` sets up a destination directory (beside a FaultServer serving the object),
makes one call, and states the outcome: a typed error whose message matches ``names`` (the
problem) and says what was kept, or, for local states the protocol is built to survive (a
corrupt sidecar, a partial longer than the object), the correct file. For every case:

- invalid arguments and refused local states cost **zero requests** at the server
  (``network=False``): they fail before any traffic;
- an existing destination and every other file set up beside it are never clobbered
  (byte-for-byte, unless the case ends with the correct file at the destination);
- a symlink is never written through.

The list is published in ``docs/reliability.md`` and checked against this table by
:func:`test_the_published_catalogue_is_this_one` (``RESUMABLE_WRITE_DOCS=1`` rewrites it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from servers import Fault, FaultServer, make_data

import resumable
from resumable import ResumableDownloader, RetryPolicy, Timeouts
from resumable.partial.sidecar import FORMAT_VERSION

KiB = 1 << 10
MiB = 1 << 20
SIZE = 2 * MiB
OLD = b"an older version: a failed call must leave it alone\n"
PRECIOUS = b"somebody else's file\n"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
Bad = resumable.InvalidArgument
STAT = "stat"  # Case.network: only the existing destination's size check (a HEAD)
KEPT = re.compile(
    r"nothing was kept|nothing was fetched|nothing was written|partial kept at|left as they are"
)


@dataclass
class Ctx:
    """What a case works with: the server, its object, a fresh directory and a downloader."""

    server: FaultServer
    d: ResumableDownloader
    tmp: Path
    data: bytes
    url: str
    dest: Path
    precious: dict[Path, bytes] = field(default_factory=dict)

    def keep(self, path: Path, content: bytes) -> Path:
        """Create ``path`` with ``content``; the case must leave it exactly so."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        self.precious[path] = content
        return path

    def download(self, **kwargs: Any) -> object:
        url = kwargs.pop("url", self.url)
        dest = kwargs.pop("dest", self.dest)
        return self.d.download(url, dest, **kwargs)

    def sidecar(self, **changes: Any) -> None:
        """A valid sidecar for the object as served now, with ``changes`` applied."""
        record = {
            "format": FORMAT_VERSION,
            "url": self.url,
            "identity": self.url,
            "validators": {
                "size": len(self.data),
                "etag": self.server.etag("f.bin"),
                "last_modified": None,
                "version": None,
                "checksums": {},
            },
            "expected": {"size": None},
            "owner": "someone-earlier",
            **changes,
        }
        (self.tmp / "f.bin.partial.json").write_text(json.dumps(record))


Setup = Callable[[Ctx], None]
Run = Callable[[Ctx], object]


@dataclass(frozen=True)
class Case:
    name: str
    problem: str  # for the table
    run: Run
    error: type[BaseException] | None  # None: the correct file
    names: str = ""  # a regex the message must match: it names the problem
    setup: Setup = lambda ctx: None
    network: bool | str = False  # False: no request at all; "stat": HEADs only; True: any
    check: Setup = lambda ctx: None  # extra checks after the call


def call(**kwargs: Any) -> Run:
    return lambda ctx: ctx.download(**kwargs)


def with_url(url: Callable[[Ctx], object], **kwargs: Any) -> Run:
    return lambda ctx: ctx.download(url=url(ctx), **kwargs)


def with_dest(dest: Callable[[Ctx], object]) -> Run:
    return lambda ctx: ctx.download(dest=dest(ctx))


def host(ctx: Ctx) -> str:
    return ctx.url.split("//", 1)[1].split("/", 1)[0]


def expand(template: str) -> Run:
    return lambda ctx: resumable.expand(template)


def batch(template: str) -> Run:
    """A template in a batch: the failure is reported for that item (re-raised here)."""

    def run(ctx: Ctx) -> object:
        result = ctx.d.download_many([ctx.url.rsplit("/", 1)[0] + "/" + template], ctx.tmp / "b")
        assert not result.ok
        raise result.failed[0][1]

    return run


def batch_of(items: Callable[[Ctx], Any], **options: Any) -> Run:
    """A batch over ``items(ctx)`` with ``options``: its last failure is re-raised here."""

    def run(ctx: Ctx) -> object:
        result = ctx.d.download_many(items(ctx), ctx.tmp / "b", **options)
        raise result.failed[-1][1]

    return run


def items_then_raise(ctx: Ctx) -> Any:
    """A generator of items that breaks after the first (a links file read lazily, say)."""
    yield ctx.url
    raise ValueError("line 2 of the links file is broken")


def exit_on_start(event: Any) -> None:
    """A progress callback that calls sys.exit() (SystemExit is not an Exception)."""
    if event.kind.value == "started":
        sys.exit(3)


def make_dir(path: Callable[[Ctx], Path]) -> Setup:
    return lambda ctx: path(ctx).mkdir(parents=True)


def partial_of(ctx: Ctx) -> Path:
    return ctx.tmp / "f.bin.partial"


def junk_partial(sidecar_text: str) -> Setup:
    def setup(ctx: Ctx) -> None:
        partial_of(ctx).write_bytes(b"\xff" * 5000)
        (ctx.tmp / "f.bin.partial.json").write_text(sidecar_text)

    return setup


def restarted_from_zero(ctx: Ctx) -> None:
    """The junk partial was never used: the whole object was fetched from byte 0."""
    gets = [r for r in ctx.server.requests_for("f.bin") if r.method == "GET"]
    assert [r.range for r in gets] == [None], gets


def valid_sidecar_cut_in_half(ctx: Ctx) -> None:
    ctx.sidecar()
    meta = ctx.tmp / "f.bin.partial.json"
    meta.write_text(meta.read_text()[:60])
    partial_of(ctx).write_bytes(b"\xff" * 5000)


def future_sidecar(ctx: Ctx) -> None:
    ctx.keep(partial_of(ctx), ctx.data[:5000])
    ctx.sidecar(format=FORMAT_VERSION + 1)
    meta = ctx.tmp / "f.bin.partial.json"
    ctx.precious[meta] = meta.read_bytes()


def other_url_sidecar(ctx: Ctx) -> None:
    partial_of(ctx).write_bytes(b"\xff" * 5000)
    ctx.sidecar(url="http://elsewhere/g.bin", identity="http://elsewhere/g.bin")


SIGNED = "versionId=1&X-Amz-Date={date}T000000Z&X-Amz-Expires=60&X-Amz-Signature={signature}"


def partial_for_query(query: str) -> Setup:
    """5000 true bytes of the object in a partial whose sidecar names ``url?query``."""

    def setup(ctx: Ctx) -> None:
        partial_of(ctx).write_bytes(ctx.data[:5000])
        url = f"{ctx.url}?{query}"
        ctx.sidecar(url=resumable.urls.redact(url), identity=resumable.urls.identity(url))

    return setup


def resumed_at(offset: int) -> Setup:
    def check(ctx: Ctx) -> None:
        gets = [r for r in ctx.server.requests_for("f.bin") if r.method == "GET"]
        assert [r.range for r in gets] == [f"bytes={offset}-"], gets

    return check


def longer_partial(ctx: Ctx) -> None:
    partial_of(ctx).write_bytes(ctx.data + b"\xff" * 5000)
    ctx.sidecar()


def longer_segmented_partial(ctx: Ctx) -> None:
    partial_of(ctx).write_bytes(ctx.data[:MiB] + bytes(SIZE - MiB) + b"\xff" * 5000)
    ctx.sidecar(ranges=[[0, MiB]])


def ranges_past_the_end(ctx: Ctx) -> None:
    partial_of(ctx).write_bytes(ctx.data[:MiB] + bytes(SIZE - MiB) + b"\xff" * 4000)
    ctx.sidecar(ranges=[[0, MiB], [SIZE, SIZE + 4000]])


def exact_file(ctx: Ctx) -> None:
    assert ctx.dest.read_bytes() == ctx.data  # not one byte past the object's size


def partial_symlink(ctx: Ctx) -> None:
    target = ctx.keep(ctx.tmp / "elsewhere" / "precious.txt", PRECIOUS)
    partial_of(ctx).symlink_to(target)


def dest_symlink(ctx: Ctx) -> None:
    target = ctx.keep(ctx.tmp / "elsewhere" / "precious.txt", PRECIOUS)
    ctx.dest.unlink()
    ctx.dest.symlink_to(target)


def dangling_dest_symlink(ctx: Ctx) -> None:
    ctx.dest.unlink()
    ctx.dest.symlink_to(ctx.tmp / "nowhere" / "f.bin")


def replaced_link(ctx: Ctx) -> None:
    assert not ctx.dest.is_symlink()  # the link was replaced by the file, not written through


def read_only_dir(ctx: Ctx) -> Path:
    """A directory nobody may write to: a read-only tmpfs as root, else mode 0555."""
    path = ctx.tmp / "ro"
    path.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)]
        if subprocess.run(mount, capture_output=True, check=False).returncode != 0:
            pytest.skip("cannot mount a read-only tmpfs")
        MOUNTS.append(path)
    else:
        path.chmod(0o555)
    return path


MOUNTS: list[Path] = []


def disk_full(ctx: Ctx) -> object:
    """A file size limit (RLIMIT_FSIZE) of 1 MiB in a child process: writes fail with EFBIG,
    as on a full disk, with no mount and no root. The child pickles its error back."""
    child = r"""
import base64, pickle, resource, signal, sys
import resumable
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
try:
    resumable.ResumableDownloader(connections=1).download(sys.argv[1], sys.argv[2])
except resumable.ResumableError as exc:
    print(base64.b64encode(pickle.dumps(exc)).decode())
"""
    out = subprocess.run(
        [sys.executable, "-c", child, ctx.url, str(ctx.dest)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.stdout.strip(), out.stderr[-2000:]
    raise pickle.loads(base64.b64decode(out.stdout.strip()))


def full_disk_partial_kept(ctx: Ctx) -> None:
    assert partial_of(ctx).stat().st_size == MiB  # what fitted is kept, to resume later


def with_headers(headers: dict[object, object]) -> Run:
    """A downloader given ``headers``: refused when it is made, before any traffic."""

    def run(ctx: Ctx) -> object:
        with ResumableDownloader(headers=headers) as d:  # type: ignore[arg-type]
            return d.download(ctx.url, ctx.dest)

    return run


SECRET = "t0k3nSECRET"  # in the header cases: never in the error's str or repr


def wrong_sha(ctx: Ctx) -> object:
    return ctx.download(sha256=hashlib.sha256(b"something else").hexdigest())


# -- untrusted disk state (issue 15 items 9 and 15a) ---------------------------------------------


def true_prefix_and_sidecar(text: Callable[[Ctx], str]) -> Setup:
    """A partial holding a correct prefix of the object, and a hostile sidecar beside it."""

    def setup(ctx: Ctx) -> None:
        partial_of(ctx).write_bytes(ctx.data[:5000])
        (ctx.tmp / "f.bin.partial.json").write_text(text(ctx))

    return setup


def hostile_sidecar(**validators: Any) -> Callable[[Ctx], str]:
    def text(ctx: Ctx) -> str:
        ctx.sidecar()
        meta = ctx.tmp / "f.bin.partial.json"
        record = json.loads(meta.read_text())
        ranges = validators.pop("ranges", None)
        record["validators"].update(validators)
        if ranges is not None:
            record["ranges"] = ranges
        return json.dumps(record, allow_nan=True)

    return text


def infinite_size(ctx: Ctx) -> str:
    return hostile_sidecar()(ctx).replace(f'"size": {SIZE}', '"size": Infinity')


def tampered_ledger_row(ctx: Ctx) -> object:
    """A batch, its ledger row's digest replaced by a number, the batch again."""
    import sqlite3

    first = ctx.d.download_many([ctx.url], ctx.tmp)
    assert not first.failed, first.failed
    db = sqlite3.connect(ctx.tmp / ".resumable" / "ledger.sqlite")
    with db:
        db.execute("UPDATE items SET sha256 = 5")
    db.close()
    again = ctx.d.download_many([ctx.url], ctx.tmp)
    assert not again.failed, again.failed
    assert [r.sha256 for r in again.ok] == [hashlib.sha256(ctx.data).hexdigest()]
    return again


LONG = "a" * 251 + ".bin"  # 255 bytes: the longest name most filesystems take


def long_named_dest(ctx: Ctx) -> None:
    ctx.dest = ctx.keep(ctx.tmp / LONG, OLD)


def only_the_long_name_left(ctx: Ctx) -> None:
    assert sorted(p.name for p in ctx.tmp.iterdir()) == sorted(["f.bin", LONG])


def lock_symlink(ctx: Ctx) -> None:
    target = ctx.keep(ctx.tmp / "elsewhere" / "precious.txt", PRECIOUS)
    (ctx.tmp / "f.bin.partial.lock").symlink_to(target)


class BytesPath:
    """An ``os.PathLike`` whose path is bytes: ``resumable`` takes ``str`` paths only."""

    def __init__(self, path: bytes) -> None:
        self.path = path

    def __fspath__(self) -> bytes:
        return self.path


def batch_pair(dest: str) -> Run:
    """A ``(url, dest)`` pair in a batch: the failure is that item's (re-raised here)."""

    def run(ctx: Ctx) -> object:
        result = ctx.d.download_many([(ctx.url, dest)], ctx.tmp / "b")
        assert not result.ok
        raise result.failed[0][1]

    return run


def self_link(path: Path) -> None:
    """A symbolic link to itself (resolving it loops)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path)


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CASES: list[Case] = [
    # -- URLs -----------------------------------------------------------------------------
    Case("empty URL", "`''`", with_url(lambda c: ""), Bad, "non-empty"),
    Case("blank URL", "`'   '`", with_url(lambda c: "   "), Bad, "non-empty"),
    Case("URL is None", "`None`", with_url(lambda c: None), Bad, "non-empty"),
    Case(
        "URL as bytes",
        "`b'http://...'`",
        with_url(lambda c: c.url.encode()),
        Bad,
        "non-empty string",
    ),
    Case(
        "no scheme",
        "`127.0.0.1:port/f.bin`",
        with_url(lambda c: host(c) + "/f.bin"),
        Bad,
        "no scheme",
    ),
    Case(
        "unknown scheme",
        "`gopher://...`",
        with_url(lambda c: c.url.replace("http", "gopher", 1)),
        Bad,
        "no source for URL scheme 'gopher'",
    ),
    Case(
        "no host",
        "`http:///f.bin`",
        with_url(lambda c: "http:///f.bin"),
        Bad,
        "no host",
    ),
    Case(
        "port out of range",
        "`http://127.0.0.1:99999999/f.bin`",
        with_url(lambda c: "http://127.0.0.1:99999999/f.bin"),
        Bad,
        "malformed url",
    ),
    Case(
        "broken IPv6 host",
        "`http://[::1/f.bin`",
        with_url(lambda c: "http://[::1/f.bin"),
        Bad,
        "malformed url",
    ),
    Case(
        "header injection",
        "a newline and a header in the URL",
        with_url(lambda c: c.url + "\r\nX-Injected: 1"),
        Bad,
        "control characters",
    ),
    Case(
        "space in URL",
        "an unescaped space",
        with_url(lambda c: c.url.replace("f.bin", "f .bin")),
        Bad,
        "whitespace",
    ),
    # -- templates -----------------------------------------------------------------------------
    Case(
        "unclosed brace",
        "`shard-{000..010.tar`",
        expand("shard-{000..010.tar"),
        Bad,
        "never closed",
    ),
    Case(
        "stray closing brace",
        "`shard-000..010}.tar`",
        expand("shard-000..010}.tar"),
        Bad,
        "closes nothing",
    ),
    Case("step of 0", "`{0..10..0}`", expand("{0..10..0}"), Bad, "step"),
    Case(
        "enormous range",
        "`{0..99999999999}` (10^11 names)",
        expand("{0..99999999999}"),
        Bad,
        "100,000,000,000 names",
    ),
    Case("mixed range endpoints", "`{a..9}`", expand("{a..9}"), Bad, "endpoints"),
    Case(
        "bad template in a batch",
        "`shard-{0..3.tar` given to `download_many`",
        batch("shard-{0..3.tar"),
        Bad,
        "never closed",
    ),
    # -- expected digests and sizes ---------------------------------------------------------------
    Case("sha256 too short", "`'abc'`", call(sha256="abc"), Bad, "64 hex"),
    Case("sha256 not hex", "`'z' * 64`", call(sha256="z" * 64), Bad, "64 hex"),
    Case("sha256 too long", "65 hex digits", call(sha256="0" * 65), Bad, "64 hex"),
    Case("sha256 not a string", "`12345`", call(sha256=12345), Bad, "64 hex"),
    Case(
        "checksum without algorithm",
        "`checksum='md5'`",
        call(checksum="md5"),
        Bad,
        "algorithm",
    ),
    Case(
        "unknown checksum algorithm",
        "`checksum='rot13:00'`",
        call(checksum="rot13:00"),
        Bad,
        "unknown checksum",
    ),
    Case(
        "md5 of the wrong length",
        "`checksum='md5:abc'`",
        call(checksum="md5:abc"),
        Bad,
        "32 hex",
    ),
    Case(
        "two different sha256",
        "`sha256=` and `checksum='sha256:...'` disagree",
        call(sha256="0" * 64, checksum="sha256:" + "1" * 64),
        Bad,
        "two different sha256",
    ),
    Case("negative size", "`size=-1`", call(size=-1), Bad, "non-negative"),
    Case("fractional size", "`size=1.5`", call(size=1.5), Bad, "non-negative"),
    Case("boolean size", "`size=True`", call(size=True), Bad, "non-negative"),
    Case("size as text", "`size='10'`", call(size="10"), Bad, "non-negative"),
    Case(
        "zero connections",
        "`connections=0`",
        call(connections=0),
        Bad,
        "connections",
    ),
    Case(
        "wrong size",
        "`size=` one byte more than the object",
        lambda ctx: ctx.download(size=len(ctx.data) + 1),
        resumable.SizeMismatch,
        f"remote size mismatch: expected {SIZE + 1} bytes, got {SIZE}",
        network=True,
    ),
    Case(
        "wrong sha256",
        "a valid sha256 of other bytes",
        wrong_sha,
        resumable.ChecksumMismatch,
        "sha256 mismatch",
        network=True,
    ),
    # -- the destination -------------------------------------------------------------------------
    Case("empty destination", "`dest=''`", with_dest(lambda c: ""), Bad, "non-empty"),
    Case("destination None", "`dest=None`", with_dest(lambda c: None), Bad, "non-empty"),
    Case(  # issue 18: a directory means dir/<object name>, as pooch, hf and fs.get take it
        "destination is a directory",
        "an existing directory: the file lands in it, as `dir/f.bin`",
        with_dest(lambda c: c.tmp),
        None,
        network=True,
    ),
    Case(
        "destination links to a directory",
        "a symlink to a directory: the file lands in the directory it names",
        with_dest(lambda c: c.tmp / "link"),
        None,
        setup=lambda c: (c.tmp / "link").symlink_to(c.tmp, target_is_directory=True),
        network=True,
    ),
    Case(
        "reserved name",
        "`dest='f.bin.partial'`",
        with_dest(lambda c: c.tmp / "f.bin.partial"),
        Bad,
        "reserved",
    ),
    Case(
        "parent is a file",
        "`dest='file.txt/f.bin'`",
        with_dest(lambda c: c.tmp / "file.txt" / "f.bin"),
        resumable.LocalError,
        "cannot create .*file.txt: Not a directory",
        setup=lambda c: c.keep(c.tmp / "file.txt", PRECIOUS) and None,
    ),
    Case(
        "read-only directory",
        "the destination's directory cannot be written",
        with_dest(lambda c: read_only_dir(c) / "f.bin"),
        resumable.LocalError,
        "opening the partial failed: (Read-only file system|Permission denied)",
    ),
    Case(
        "missing directory inside a read-only one",
        "`ro/missing/f.bin`",
        with_dest(lambda c: read_only_dir(c) / "missing" / "f.bin"),
        resumable.LocalError,
        "cannot create .*missing: (Read-only file system|Permission denied)",
    ),
    Case(
        "disk full",
        "writes fail (EFBIG from `RLIMIT_FSIZE` = 1 MiB) halfway through",
        disk_full,
        resumable.LocalError,
        "writing the partial failed: File too large .free some space",
        network=True,
        check=full_disk_partial_kept,
    ),
    Case(
        "destination is a symlink",
        "`dest` links to somebody else's file",
        call(),
        None,
        setup=dest_symlink,
        network=True,
        check=replaced_link,
    ),
    Case(
        "destination is a dangling symlink",
        "`dest` links to a missing path",
        call(),
        None,
        setup=dangling_dest_symlink,
        network=True,
        check=replaced_link,
    ),
    # -- the partial and its sidecar -------------------------------------------------------------
    Case(
        "sidecar is not JSON",
        "`{not json` beside a partial of junk",
        call(),
        None,
        setup=junk_partial("{not json"),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar truncated",
        "a valid sidecar cut in half",
        call(),
        None,
        setup=valid_sidecar_cut_in_half,
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar of the wrong shape",
        "`[]`",
        call(),
        None,
        setup=junk_partial("[]"),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar for another URL",
        "the partial belongs to another object",
        call(),
        None,
        setup=other_url_sidecar,
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar from a future format",
        f"`format: {FORMAT_VERSION + 1}`",
        call(),
        resumable.LocalError,
        "newer resumable .format 2, this one reads 1.; upgrade resumable or delete",
        setup=future_sidecar,
        network=STAT,
    ),
    Case(
        "partial longer than the object",
        "a partial 5000 bytes longer than the object, with a matching sidecar",
        call(),
        None,
        setup=longer_partial,
        network=True,
    ),
    Case(
        "partial is a symlink",
        "`f.bin.partial` links to somebody else's file",
        call(),
        resumable.LocalError,
        "is a symlink; refusing to write through it",
        setup=partial_symlink,
        network=STAT,
    ),
    Case(
        "partial is a directory",
        "`f.bin.partial` is a directory",
        call(),
        resumable.LocalError,
        "opening the partial failed: Is a directory",
        setup=make_dir(partial_of),
        network=STAT,
    ),
    # -- conventions (issue 18): a directory as destination, progress= -------------------------
    Case(
        "directory, URL without a name",
        "`dest` a directory, the URL ends with `/`",
        lambda c: c.d.download(c.url.rsplit("/", 1)[0] + "/", c.tmp),
        Bad,
        "no object name",
    ),
    Case(
        "trailing-slash destination, URL without a name",
        "`dest='new/'`, the URL ends with `/`",
        lambda c: c.d.download(c.url.rsplit("/", 1)[0] + "/", str(c.tmp / "new") + "/"),
        Bad,
        "no object name",
        check=lambda c: not (c.tmp / "new").exists() or pytest.fail("new/ was created"),
    ),
    Case(
        "directory, object name '..'",
        "`dest` a directory, the URL's name is `%2E%2E`",
        lambda c: c.d.download(c.url.rsplit("/", 1)[0] + "/%2E%2E", c.tmp),
        Bad,
        "escape",
    ),
    Case("progress is a string", "`progress='yes'`", call(progress="yes"), Bad, "progress must"),
    Case("progress is a number", "`progress=1`", call(progress=1), Bad, "progress must"),
    Case(
        "progress is a class",
        "`progress=TqdmProgress` (not an instance)",
        call(progress=resumable.TqdmProgress),
        Bad,
        "callable instance",
    ),
    # -- lengths (issue 15): every known length is a bound --------------------------------------
    Case(
        "segmented partial longer than the object",
        "a segmented partial (1 MiB recorded) 5000 bytes longer than the object",
        call(),
        None,
        setup=longer_segmented_partial,
        network=True,
        check=exact_file,
    ),
    Case(
        "recorded ranges past the object's end",
        "a sidecar whose ranges run 4000 bytes past the object's size",
        call(),
        None,
        setup=ranges_past_the_end,
        network=True,
        check=exact_file,
    ),
    Case(
        "size smaller than a chunked body",
        "`size=` 1 MiB, the server answers chunked (no length) with 2 MiB",
        lambda ctx: ctx.download(size=MiB),
        resumable.SizeMismatch,
        f"size mismatch: expected {MiB} bytes, got {MiB + 1}",
        setup=lambda ctx: ctx.server.plan("f.bin", Fault.overrun(0, framing="chunked")),
        network=True,
    ),
    # -- untrusted disk state: sidecars, ledger rows, lock files, long names (issue 15) ------
    Case(
        "sidecar size Infinity",
        "`validators.size: Infinity` beside a true prefix",
        call(),
        None,
        setup=true_prefix_and_sidecar(infinite_size),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar size 1e30",
        "`validators.size: 1e30`",
        call(),
        None,
        setup=true_prefix_and_sidecar(hostile_sidecar(size=1e30)),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar size a boolean",
        "`validators.size: true`",
        call(),
        None,
        setup=true_prefix_and_sidecar(hostile_sidecar(size=True)),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar ranges past the object's end",
        f"`ranges: [[0, {SIZE + 4096}]]`",
        call(),
        None,
        setup=true_prefix_and_sidecar(hostile_sidecar(ranges=[[0, SIZE + 4096]])),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar ranges negative",
        "`ranges: [[-5, 5000]]`",
        call(),
        None,
        setup=true_prefix_and_sidecar(hostile_sidecar(ranges=[[-5, 5000]])),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar ranges past the partial's bytes",
        f"`ranges: [[0, {SIZE}]]` beside a partial of 5000 bytes (no reservation)",
        call(),
        None,
        setup=true_prefix_and_sidecar(hostile_sidecar(ranges=[[0, SIZE]])),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar etag a number",
        "`validators.etag: 12345`",
        call(),
        None,
        setup=true_prefix_and_sidecar(hostile_sidecar(etag=12345)),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "sidecar nested too deeply",
        "100,000 nested `[`",
        call(),
        None,
        setup=true_prefix_and_sidecar(lambda ctx: "[" * 100_000 + "]" * 100_000),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "ledger row with wrong types",
        "`sha256 = 5` in the batch ledger (SQLite keeps any type)",
        tampered_ledger_row,
        None,
        network=True,
    ),
    Case(
        "lock file is a symlink",
        "`f.bin.partial.lock` links to somebody else's file",
        call(),
        None,
        setup=lock_symlink,
        network=True,
    ),
    Case(
        "name of 255 bytes",
        "`dest='a' * 251 + '.bin'` (helper names would pass NAME_MAX)",
        call(),
        None,
        setup=long_named_dest,
        network=True,
        check=only_the_long_name_left,
    ),
    # -- threads: no thread dies silently, no wait outlives what it waits for ---------------
    Case(
        "batch items raise midway",
        "the `items` iterable raises `ValueError` after one item",
        batch_of(items_then_raise),
        resumable.InvalidArgument,
        "the items given to the batch raised ValueError: line 2",
        network=True,
    ),
    Case(
        "batch callback raises SystemExit",
        "the progress callback calls `sys.exit()` on a worker thread",
        batch_of(lambda ctx: [ctx.url], progress=exit_on_start),
        resumable.Cancelled,
        "stopped by SystemExit",
        network=True,
    ),
    # Issue 15, identity family: which URL names the object a partial belongs to.
    Case(
        "sidecar for another query",
        "the partial of `?file=x&sp=train`, asked for `?file=x&sp=test`",
        with_url(lambda ctx: ctx.url + "?file=x&sp=test"),
        None,
        setup=partial_for_query("file=x&sp=train"),
        network=True,
        check=restarted_from_zero,
    ),
    Case(
        "presigned URL signed again",
        "the partial of an S3 presigned URL, asked with a new date and signature",
        with_url(lambda ctx: ctx.url + "?" + SIGNED.format(date="20260102", signature="bb")),
        None,
        setup=partial_for_query(SIGNED.format(date="20260101", signature="aa")),
        network=True,
        check=resumed_at(5000),
    ),
    # -- secrets: headers that cannot be sent (issue 15, item 5) --------------------------------
    Case(
        "header value ends with a newline",
        "`{'Authorization': 'Bearer <token>\\n'}` (a token read from a file)",
        with_headers({"Authorization": f"Bearer {SECRET}\n"}),
        Bad,
        "'Authorization' ends with a newline.*not shown",
    ),
    Case(
        "header value not latin-1",
        "`{'X-Api-Key': '<token>€'}`",
        with_headers({"X-Api-Key": f"{SECRET}\u20ac"}),
        Bad,
        "'X-Api-Key' holds a character that is not latin-1",
    ),
    Case(
        "NUL in a header value",
        "`{'Cookie': 'a=<tok>\\x00<en>'}`",
        with_headers({"Cookie": f"a={SECRET[:4]}\x00{SECRET[4:]}"}),
        Bad,
        "'Cookie' holds a NUL",
    ),
    Case(
        "header injection in a value",
        "`'<token>\\r\\nX-Injected: 1'`",
        with_headers({"Authorization": f"{SECRET}\r\nX-Injected: 1"}),
        Bad,
        "holds a newline",
    ),
    Case(
        "header name with a colon",
        "the whole `'Authorization: Bearer <token>'` given as a name",
        with_headers({f"Authorization: Bearer {SECRET}": ""}),
        Bad,
        "RFC 9110 token",
    ),
    Case(
        "header value as bytes",
        "`{'X-Api-Key': b'<token>'}`",
        with_headers({"X-Api-Key": SECRET.encode()}),
        Bad,
        "'X-Api-Key' must be a str",
    ),
    Case(
        "Range in headers",
        "`{'Range': 'bytes=0-99'}` (set by resumable on each request)",
        with_headers({"Range": "bytes=0-99"}),
        Bad,
        "set by resumable itself",
    ),
    # -- issue 15 item 14: path arguments and errors from outside the tree (h-extract) ---------
    Case(
        "NUL byte in dest",
        "`dest='a\\x00b'`",
        with_dest(lambda c: str(c.tmp / "a\x00b")),
        Bad,
        "NUL byte",
    ),
    Case(
        "name longer than the filesystem allows",
        "a file name of 300 bytes",
        with_dest(lambda c: c.tmp / ("n" * 300)),
        Bad,
        "300 bytes: too long",
    ),
    Case(
        "symlink loop above dest",
        "`loop/f.bin`, `loop` a link to itself",
        with_dest(lambda c: c.tmp / "loop" / "f.bin"),
        Bad,
        "symbolic link loop",
        setup=lambda c: self_link(c.tmp / "loop"),
    ),
    Case(
        "destination is a FIFO",
        "a named pipe where the file goes",
        with_dest(lambda c: c.tmp / "pipe"),
        Bad,
        "not a regular file",
        setup=lambda c: os.mkfifo(c.tmp / "pipe"),
    ),
    Case(
        "destination as a bytes path",
        "an `os.PathLike` whose `__fspath__` returns bytes",
        with_dest(lambda c: BytesPath(os.fsencode(c.tmp / "f.bin"))),
        Bad,
        "not bytes",
    ),
    Case(
        "symlink loop in a batch item's folder",
        "`(url, 'loop/f.bin')` in a batch, `loop` a link to itself",
        batch_pair("loop/f.bin"),
        Bad,
        "symbolic link loop",
        setup=lambda c: self_link(c.tmp / "b" / "loop"),
    ),
    Case("progress not callable", "`progress=5`", call(progress=5), Bad, "progress must be"),
    Case("checksum of the wrong type", "`checksum=5`", call(checksum=5), Bad, "checksum must be"),
    Case(
        "ftp:// to a closed port",
        "`ftp://127.0.0.1:<closed>/f.bin`",
        with_url(lambda c: f"ftp://127.0.0.1:{closed_port()}/f.bin"),
        resumable.RetriesExhausted,
        "connection failed: .*Connection refused",
    ),
]


@pytest.fixture
def ctx(fault_server: FaultServer, tmp_path: Path) -> Iterator[Ctx]:
    data = make_data(SIZE, seed=41)
    url = fault_server.add("f.bin", data)
    policy = RetryPolicy(attempts=2, backoff=0.01, jitter=0, sleep=lambda s: None)
    with ResumableDownloader(
        retry=policy, timeouts=Timeouts(connect=5, stall=2), block_size=256 * KiB
    ) as d:
        context = Ctx(fault_server, d, tmp_path, data, url, tmp_path / "f.bin")
        context.keep(context.dest, OLD)
        yield context
    for mount in MOUNTS:
        subprocess.run(["umount", str(mount)], check=False)
    MOUNTS.clear()


@pytest.mark.parametrize("case", CASES, ids=[c.name.replace(" ", "-") for c in CASES])
def test_case(ctx: Ctx, case: Case) -> None:
    case.setup(ctx)
    error: BaseException | None = None
    try:
        case.run(ctx)
    except Exception as exc:
        error = exc
    requests = ctx.server.log
    if not case.network:
        assert requests == [], f"{len(requests)} requests for an input refused up front"
    if case.network == STAT:  # an existing destination is checked against the remote first
        assert {r.method for r in requests} <= {"HEAD"}, requests
    if case.error is None:
        assert error is None, f"expected the correct file, got {error!r}"
        assert ctx.dest.read_bytes() == ctx.data
        ctx.precious.pop(ctx.dest)
    else:
        assert isinstance(error, case.error), f"expected {case.error.__name__}, got {error!r}"
        assert isinstance(error, resumable.ResumableError)
        if isinstance(error, resumable.InvalidArgument):
            assert isinstance(error, ValueError)
        assert re.search(case.names, str(error)), str(error)
        assert SECRET not in str(error) + repr(error) + repr(error.__cause__)
        if not _raised_by_expand(case):
            assert KEPT.search(str(error)), f"the message does not say what was kept: {error}"
    for path, content in ctx.precious.items():  # nothing clobbered, nothing written through
        assert path.read_bytes() == content, f"{path} was modified"
    case.check(ctx)


def _raised_by_expand(case: Case) -> bool:
    """``resumable.expand`` and batch items touch no file: there is nothing to report as kept."""
    return case.run.__qualname__.startswith(("expand.", "batch.", "batch_of."))
    return case.run.__qualname__.startswith(("expand.", "batch.", "batch_pair."))


def test_the_catalogue_is_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


# -- the published list -----------------------------------------------------------------------

BEGIN = "<!-- bad-inputs:begin (generated from tests/faults/test_bad_inputs.py) -->"
END = "<!-- bad-inputs:end -->"


def render() -> str:
    lines = [BEGIN, "| case | input | outcome | requests |", "|---|---|---|---|"]
    for case in CASES:
        outcome = "correct file" if case.error is None else f"`{case.error.__name__}`"
        requests = {False: "0", STAT: "HEAD only", True: "any"}[case.network]
        lines.append(f"| {case.name} | {case.problem} | {outcome} | {requests} |")
    lines += ["", f"**{len(CASES)} cases.**", END]
    return "\n".join(lines)


def test_the_published_catalogue_is_this_one() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert BEGIN in text, f"{DOCS} has no bad-inputs section"
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    updated = before + render() + after
    if os.environ.get("RESUMABLE_WRITE_DOCS"):
        DOCS.write_text(updated, encoding="utf-8")
        return
    assert text == updated, "docs/reliability.md is stale: run with RESUMABLE_WRITE_DOCS=1"
