"""The fault matrix: every way a server or network misbehaves, in (single stream, segmented).

Each cell downloads one small object from the :class:`~servers.FaultServer` over a destination
that already holds an older file, with the fault planned for the first request (single stream)
or for a range request of a segmented download. Every cell must end in one of two ways:

- the exact bytes the server holds now, at the destination, and nothing else beside it; or
- the typed error the table names, with the older destination untouched (no wrong file is ever
  published) and the error's message saying what was kept;

and no cell may take longer than the stall timeout allows (nothing hangs). Each cell also proves
that its fault really happened (the server's request log), and that the segmented column really
was segmented (range requests that do not start at byte 0).

The table in ``docs/reliability.md`` is rendered from :data:`ROWS` and checked by
:func:`test_the_published_matrix_is_this_one`, so the documentation cannot drift from the tests;
``RESUMABLE_WRITE_DOCS=1 pytest tests/faults/test_fault_matrix.py`` rewrites it.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from diskwatch import DiskWatch
from servers import Fault, FaultServer, Record, make_data

import resumable
from resumable import ResumableDownloader, RetryPolicy, Timeouts

KiB = 1 << 10
MiB = 1 << 20
SIZE = 3 * MiB  # three 1 MiB pieces when segmented: the first answer's, and two range requests
CUT = 600 * KiB  # where faults land inside a body
STALL = 0.75  # the stall timeout of every cell
OLD = b"an older version of the file, which a failed download must leave alone\n"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
MODES = ("single", "segmented")
OK = "correct file"

Arrange = Callable[[FaultServer, str, bool], None]
Proof = Callable[[list[Record], list[float]], None]


@dataclass(frozen=True)
class Row:
    """One fault: how to cause it, what each mode must end with, and how to prove it happened."""

    name: str
    what: str  # what the server does, for the table
    arrange: Arrange
    prove: Proof
    single: str | type[resumable.ResumableError]
    segmented: str | type[resumable.ResumableError]
    how: str  # what the downloader does about it, for the table
    seconds: float = 0.0  # the cell's own designed duration (a trickle), beyond the bound


def lead(segmented: bool) -> tuple[Fault | None, ...]:
    """Segmented: the first request (which learns the size) goes through, a range gets the fault."""
    return (None,) if segmented else ()


def plan(*faults: Fault | None) -> Arrange:
    def arrange(server: FaultServer, name: str, segmented: bool) -> None:
        server.plan(name, *lead(segmented), *faults)  # type: ignore[arg-type]

    return arrange


def seen(kind: str, status: int | None = None) -> Proof:
    """The log holds a GET that got fault ``kind`` (with ``status``, when given)."""

    def prove(log: list[Record], sleeps: list[float]) -> None:
        hits = [r for r in log if r.fault == kind and (status is None or r.status == status)]
        assert hits, f"no {kind} fault in {[(r.fault, r.status) for r in log]}"

    return prove


def seen_times(kind: str, times: int) -> Proof:
    """The log holds ``times`` GETs that got fault ``kind``."""

    def prove(log: list[Record], sleeps: list[float]) -> None:
        assert sum(r.fault == kind for r in log) == times, [(r.fault, r.status) for r in log]

    return prove


def all_of(*proofs: Proof) -> Proof:
    def prove(log: list[Record], sleeps: list[float]) -> None:
        for proof in proofs:
            proof(log, sleeps)

    return prove


def waited(seconds: float) -> Proof:
    def prove(log: list[Record], sleeps: list[float]) -> None:
        assert seconds in sleeps, f"Retry-After {seconds}s was not honoured: waits {sleeps}"

    return prove


def no_weak_if_range(log: list[Record], sleeps: list[float]) -> None:
    assert any(r.etag and r.etag.startswith("W/") for r in log)
    assert all(r.if_range is None or not r.if_range.startswith("W/") for r in log)
    assert any(r.if_range and r.if_range.endswith("GMT") for r in log)  # Last-Modified instead


def dated_if_range(log: list[Record], sleeps: list[float]) -> None:
    assert all(r.etag is None for r in log)
    assert any(r.if_range and r.if_range.endswith("GMT") for r in log)


def nothing_retried(log: list[Record], sleeps: list[float]) -> None:
    starts = [r.range for r in log if r.method == "GET"]
    assert len(starts) == len(set(starts)), f"a request was repeated: {starts}"


def with_object(etag: str | None) -> Arrange:
    """Serve the object with a weak or no ETag (Last-Modified stays), then cut a body."""

    def arrange(server: FaultServer, name: str, segmented: bool) -> None:
        server.add(name, server.content(name), etag=etag)  # type: ignore[arg-type]
        server.plan(name, *lead(segmented), Fault.cut(after=CUT))  # type: ignore[arg-type]

    return arrange


def replaced(server: FaultServer, name: str, segmented: bool) -> None:
    new = make_data(SIZE, seed=99)  # the same size: only the validators tell the versions apart
    cut = () if segmented else (Fault.cut(after=CUT),)
    server.plan(name, *lead(segmented), *cut, Fault.replace(new))  # type: ignore[arg-type]


def after_a_cut(fault: Fault) -> Arrange:
    """Single stream: a cut, so that ``fault`` meets the range request that resumes.
    Segmented: ``fault`` meets the first range request."""

    def arrange(server: FaultServer, name: str, segmented: bool) -> None:
        cut = () if segmented else (Fault.cut(after=CUT),)
        server.plan(name, *lead(segmented), *cut, fault)  # type: ignore[arg-type]

    return arrange


def ran_past_its_range(log: list[Record], sleeps: list[float]) -> None:
    """A 206 whose body really went on past the bytes its Content-Range names."""
    hits = [r for r in log if r.fault == "overrun" and r.status == 206 and r.content_range]
    assert hits, f"no overrun in {[(r.fault, r.status) for r in log]}"
    for r in hits:
        first, last = r.content_range.removeprefix("bytes ").split("/")[0].split("-")  # type: ignore[union-attr]
        assert r.body_bytes_sent > int(last) - int(first) + 1, r


def one_byte_each(log: list[Record], sleeps: list[float]) -> None:
    """Every stalled answer moved one byte (each would have counted as progress), and the
    number of attempts stayed bounded: the budget (3) per connection."""
    stalls = [r for r in log if r.fault == "stall"]
    assert all(r.body_bytes_sent == 1 for r in stalls), stalls
    assert len(stalls) <= 3 * 3, f"{len(stalls)} attempts"


def trickle(server: FaultServer, name: str, segmented: bool) -> None:
    # Slower than the stall timeout in total, but never silent for that long: never cut.
    length = MiB if segmented else SIZE
    server.plan(name, *lead(segmented), Fault.trickle(length / (STALL * 1.6)))  # type: ignore[arg-type]


def head_status(code: int) -> tuple[Arrange, Proof]:
    """Every HEAD for the object answers ``code``; GETs are served. The proof reads the
    server's log for the HEADs (the cell's log holds GETs only)."""
    seen_at: list[tuple[FaultServer, str]] = []

    def arrange(server: FaultServer, name: str, segmented: bool) -> None:
        server.head_status(name, code)
        seen_at.append((server, name))

    def prove(log: list[Record], sleeps: list[float]) -> None:
        server, name = seen_at[-1]
        heads = [r.status for r in server.requests_for(name) if r.method == "HEAD"]
        assert code in heads, f"no HEAD answered {code}: {heads}"
        assert any(r.status in (200, 206) for r in log), "no GET was served"

    return arrange, prove


ROWS: list[Row] = [
    Row(
        "cut mid-body",
        "closes the connection (FIN) after 600 KiB of the body",
        plan(Fault.cut(after=CUT)),
        seen("cut"),
        OK,
        OK,
        "resumes from the bytes on disk (single) or the piece's position (segmented)",
    ),
    Row(
        "reset",
        "resets the connection (RST) after 600 KiB of the body",
        plan(Fault.cut(after=CUT, reset=True)),
        seen("cut"),
        OK,
        OK,
        "same as a cut; bytes the kernel dropped are fetched again",
    ),
    Row(
        "503 + Retry-After",
        "answers 503 with `Retry-After: 1`",
        plan(Fault.status(503, retry_after=1)),
        all_of(seen("status", 503), waited(1.0)),
        OK,
        OK,
        "waits the 1 s the server asked for, then retries",
    ),
    Row(
        "429 + Retry-After",
        "answers 429 with `Retry-After: 2`",
        plan(Fault.status(429, retry_after=2)),
        all_of(seen("status", 429), waited(2.0)),
        OK,
        OK,
        "waits the 2 s the server asked for, then retries",
    ),
    Row(
        "200 to Range",
        "answers a range request with 200 and the whole body",
        lambda s, n, seg: s.plan(
            n,
            *lead(seg),
            *(() if seg else (Fault.cut(after=CUT),)),
            Fault.ignore_range(),  # type: ignore[arg-type]
        ),
        seen("ignore_range", 200),
        OK,
        OK,
        "restarts from byte 0 as one stream; never appends a whole body at an offset",
    ),
    Row(
        "ETag change mid-download",
        "publishes a new version of the same size (a new ETag) between two requests",
        replaced,
        seen("replace", 200),
        OK,
        OK,
        "If-Range gets the new version whole; the file is the new version, never a splice",
    ),
    Row(
        "short body",
        "sends 600 KiB of a longer Content-Length, then a clean FIN",
        plan(Fault.short_body(CUT)),
        seen("short_body"),
        OK,
        OK,
        "the missing bytes are noticed and fetched again",
    ),
    Row(
        "wrong Content-Range",
        "answers 206 for bytes from 12345, whatever was asked",
        lambda s, n, seg: s.plan(
            n,
            *lead(seg),
            *(() if seg else (Fault.cut(after=CUT),)),
            Fault.wrong_content_range(start=12345),  # type: ignore[arg-type]
        ),
        seen("wrong_content_range", 206),
        OK,
        OK,
        "the answer is refused unwritten and the request retried",
    ),
    Row(
        "weak ETag",
        'serves a weak ETag (`W/"..."`) and Last-Modified, and cuts a body',
        with_object("weak"),
        all_of(seen("cut"), no_weak_if_range),
        OK,
        OK,
        "pins ranges with Last-Modified in If-Range, never the weak ETag",
    ),
    Row(
        "no ETag",
        "serves no ETag (Last-Modified only), and cuts a body",
        with_object(None),
        all_of(seen("cut"), dated_if_range),
        OK,
        OK,
        "pins ranges with Last-Modified in If-Range",
    ),
    Row(
        "stall",
        "sends 600 KiB, then nothing for 30 s with the socket open",
        plan(Fault.stall(after=CUT, seconds=30)),
        seen("stall"),
        OK,
        OK,
        f"gives up on the connection after the stall timeout ({STALL} s here) and resumes",
    ),
    Row(
        "no answer",
        "accepts the request and sends nothing for 30 s",
        plan(Fault.hang(seconds=30)),
        seen("hang"),
        OK,
        OK,
        "a stall before the status line: abandoned after the stall timeout, retried",
    ),
    Row(
        "trickle",
        f"sends the body slowly, taking {STALL * 1.6:g} s (longer than the stall timeout)",
        trickle,
        all_of(seen("trickle"), nothing_retried),
        OK,
        OK,
        "a slow but moving transfer is never interrupted",
        seconds=STALL * 1.6,
    ),
    Row(
        "gzip despite identity",
        "compresses the body (Content-Encoding: gzip) although asked not to",
        plan(Fault.gzip()),
        seen("gzip"),
        OK,
        OK,
        "decoded as a whole stream (single); segmented falls back to one stream",
    ),
    Row(
        "redirect loop",
        "redirects a request to itself, again and again",
        lambda s, n, seg: s.plan(n, *lead(seg), *[Fault.redirect("/" + n)] * 40),  # type: ignore[arg-type]
        seen("redirect", 302),
        resumable.RemoteError,
        resumable.RemoteError,
        "fails at once (not retried) after 10 redirects",
    ),
    Row(
        "404",
        "answers 404",
        plan(Fault.status(404)),
        seen("status", 404),
        resumable.SourceNotFound,
        resumable.SourceNotFound,
        "fails at once; a segmented partial keeps its recorded ranges",
    ),
    Row(
        "403",
        "answers 403",
        plan(Fault.status(403)),
        seen("status", 403),
        resumable.AccessDenied,
        resumable.AccessDenied,
        "fails at once; a segmented partial keeps its recorded ranges",
    ),
    Row(
        "416",
        "answers 416 to a satisfiable range",
        lambda s, n, seg: s.plan(
            n,
            *lead(seg),
            *(() if seg else (Fault.cut(after=CUT),)),
            Fault.status(416),  # type: ignore[arg-type]
        ),
        seen("status", 416),
        OK,
        OK,
        "retried: the object's size has not changed, so the range is fetched again",
    ),
    # -- issue 15: the HTTP protocol edge (http) --
    Row(
        "103 Early Hints",
        "sends `103 Early Hints` (a `Link` header) before the real answer",
        plan(Fault.informational(103)),
        all_of(seen("informational"), nothing_retried),
        OK,
        OK,
        "skips every interim 1xx answer (but 101) and reads the real one; nothing is retried",
    ),
    Row(
        "Content-Encoding nobody decodes",
        "sends the body with `Content-Encoding: compress` although asked for identity",
        plan(Fault.encoded("compress")),
        seen("encoded", 200),
        resumable.RemoteError,
        resumable.RemoteError,
        "refused before any byte is stored, naming the encoding (the same for `br` or `zstd` "
        "without their packages); not retried, a mirror is tried",
    ),
    Row(
        "gzip body cut short",
        "sends a gzip body (complete HTTP framing) whose gzip stream stops halfway",
        lambda s, n, seg: s.plan(
            n,
            *lead(seg),
            # twice: a plain http:// GET hands a compressed answer over to requests unread
            *[Fault.encoded("gzip", gzip.compress(s.content(n), mtime=0)[: SIZE // 2])] * 2,  # type: ignore[arg-type]
        ),
        all_of(seen("encoded", 200), seen_times("encoded", 2)),
        OK,
        OK,
        "the end of the compressed stream is required: a short one is an error, retried",
    ),
    Row(
        "headers trickled",
        f"sends the status line, then one header line every {STALL / 4:g} s, forever",
        plan(Fault.slow_headers(STALL / 4)),
        seen("slow_headers"),
        OK,
        OK,
        "the status line and headers must arrive within one stall timeout: abandoned, retried",
    ),
    # -- lengths (issue 15): every known length bounds the body; progress must be meaningful
    Row(
        "body past its range",
        "answers a range request with an honest Content-Range, then runs 8 MiB past it (chunked)",
        after_a_cut(Fault.overrun(8 * MiB, framing="chunked")),
        ran_past_its_range,
        OK,
        OK,
        "not a byte past the range is written: a single stream retries from disk (a protocol "
        "error), a segment stops at its end",
    ),
    Row(
        "Content-Length past Content-Range",
        "answers a range request with a Content-Length 8 MiB longer than its Content-Range",
        after_a_cut(Fault.overrun(8 * MiB, framing="length")),
        ran_past_its_range,
        OK,
        OK,
        "bounded by the Content-Range: the excess is never written; retried from disk",
    ),
    Row(
        "one byte, then a stall",
        "sends one byte of every answer, then nothing for 30 s with the socket open",
        lambda s, n, seg: s.plan(n, *lead(seg), *[Fault.stall(after=1, seconds=30)] * 30),  # type: ignore[arg-type]
        all_of(seen("stall"), one_byte_each),
        resumable.RetriesExhausted,
        resumable.RetriesExhausted,
        "one byte is not progress: the retry budget runs out as for a silent server",
    ),
    # Issue 15, sync/identity family: a metadata request that disagrees with the read.
    Row(
        "HEAD 404",
        "answers 404 to the HEAD that checks the existing file, while GET works",
        *head_status(404),
        OK,
        OK,
        "the HEAD cannot vouch for the old file, nor fail the call: the GET decides",
    ),
    Row(
        "HEAD 500",
        "answers 500 to every HEAD, while GET works",
        *head_status(500),
        OK,
        OK,
        "the HEAD is retried, then the GET decides",
    ),
]
CELLS = [(row, mode) for row in ROWS for mode in MODES]
# ``nox -s torture`` runs every cell several times: which segment a fault lands in, and when a
# stall or a cut meets the other connections, changes from run to run.
REPEATS = int(os.environ.get("RESUMABLE_REPEATS", "1"))
RUNS = [(row, mode, n) for row, mode in CELLS for n in range(REPEATS)]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def downloader(sleeps: list[float]) -> Iterator[ResumableDownloader]:
    policy = RetryPolicy(attempts=3, backoff=0.01, jitter=0, sleep=sleeps.append)
    with ResumableDownloader(
        retry=policy,
        timeouts=Timeouts(connect=5, stall=STALL),
        block_size=256 * KiB,
        segment_threshold=MiB,
    ) as d:
        yield d


def outcome_text(outcome: str | type[BaseException]) -> str:
    return outcome if isinstance(outcome, str) else f"`{outcome.__name__}`"


@pytest.mark.parametrize(
    ("row", "mode", "run"),
    RUNS,
    ids=[f"{row.name.replace(' ', '-')}-{mode}" + (f"-{n}" if n else "") for row, mode, n in RUNS],
)
def test_cell(
    fault_server: FaultServer,
    downloader: ResumableDownloader,
    sleeps: list[float],
    tmp_path: Path,
    row: Row,
    mode: str,
    run: int,
) -> None:
    segmented = mode == "segmented"
    name = "f.bin"
    fault_server.add(name, make_data(SIZE, seed=5))
    row.arrange(fault_server, name, segmented)
    dest = tmp_path / name
    dest.write_bytes(OLD)
    expected = row.segmented if segmented else row.single

    began = time.monotonic()
    error: resumable.ResumableError | None = None
    with DiskWatch(dest) as disk:
        try:
            result = downloader.download(
                fault_server.url_for(name), dest, connections=3 if segmented else 1
            )
        except resumable.ResumableError as exc:
            error = exc
    elapsed = time.monotonic() - began
    # Whatever the server sends, nothing reaches the disk past the object's known size.
    assert disk.peak <= SIZE, f"{disk.peak} bytes on disk for a {SIZE}-byte object"

    log = [r for r in fault_server.requests_for(name) if r.method == "GET"]
    row.prove(log, sleeps)
    if segmented:  # really segmented: range requests for pieces past the first
        assert any(r.range and not r.range.startswith("bytes=0-") for r in log), log
    else:
        assert all(r.range is None or r.range.endswith("-") for r in log), log
    # Nothing hangs: the longest legitimate wait is one stall timeout per connection, at once.
    assert elapsed < row.seconds + 4 * STALL + 3.0, f"took {elapsed:.1f} s"

    leftovers = sorted(p.name for p in tmp_path.iterdir() if p != dest)
    if expected == OK:
        assert error is None, f"expected the file, got {error!r}"
        assert dest.read_bytes() == fault_server.content(name)  # exactly the current version
        assert result.sha256 == fault_server_sha(fault_server, name)
        assert leftovers == []
    else:
        assert isinstance(expected, type)
        assert isinstance(error, expected), f"expected {expected.__name__}, got {error!r}"
        assert dest.read_bytes() == OLD  # no wrong file published, the old one untouched
        assert f"the existing {dest} was not modified" in str(error)
        assert set(leftovers) <= {f"{name}.partial", f"{name}.partial.json", f"{name}.partial.lock"}
        if f"{name}.partial" in leftovers:
            assert "resumable by running the same download again" in str(error)


def fault_server_sha(server: FaultServer, name: str) -> str:
    import hashlib

    return hashlib.sha256(server.content(name)).hexdigest()


# -- the published table ---------------------------------------------------------------------

BEGIN = "<!-- fault-matrix:begin (generated from tests/faults/test_fault_matrix.py) -->"
END = "<!-- fault-matrix:end -->"


def render() -> str:
    lines = [
        BEGIN,
        "| fault | the server | single stream | segmented | what the downloader does |",
        "|---|---|---|---|---|",
    ]
    for row in ROWS:
        lines.append(
            f"| {row.name} | {row.what} | {outcome_text(row.single)} | "
            f"{outcome_text(row.segmented)} | {row.how} |"
        )
    lines.append("")
    lines.append(
        f"{len(ROWS)} faults by {len(MODES)} modes = **{len(CELLS)} cells**. "
        f"Stall timeout {STALL} s, objects of {SIZE // MiB} MiB "
        "(three 1 MiB pieces when segmented)."
    )
    lines.append(END)
    return "\n".join(lines)


def test_the_published_matrix_is_this_one() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert BEGIN in text, f"{DOCS} has no fault-matrix section"
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    updated = before + render() + after
    if os.environ.get("RESUMABLE_WRITE_DOCS"):
        DOCS.write_text(updated, encoding="utf-8")
        return
    assert text == updated, "docs/reliability.md is stale: run with RESUMABLE_WRITE_DOCS=1"
