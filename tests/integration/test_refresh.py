"""Signed URLs that expire mid-download: the ``refresh_url`` hook, against a loopback server.

The FaultServer's signed objects (``FaultServer.sign``) behave like presigned S3/GCS URLs and
the SA-1B CDN links: a request without a valid signature gets ``403``, and a signature can stop
working after serving N bytes (the response is cut there) or by hand. The tests prove from the
server's request log that the refresh happened where it should, that the download went on from
the same offset with the version pinned (``If-Range``), and that a refresh is never stampeded.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from servers import Fault, FaultServer, make_data

from resumable import ProgressEvent, ResumableDownloader, RetryPolicy, Timeouts
from resumable.errors import AccessDenied, InvalidArgument, RemoteError
from resumable.locator import Locator
from resumable.testing import MemorySource
from resumable.urls import identity

MiB = 1 << 20
SIZE = 300_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signature(path_or_url: str) -> str | None:
    values = parse_qs(urlsplit(path_or_url).query).get("X-Amz-Signature")
    return values[0] if values else None


@pytest.fixture
def d() -> Iterator[ResumableDownloader]:
    policy = RetryPolicy(attempts=3, backoff=0.0, jitter=0)
    with ResumableDownloader(
        retry=policy, timeouts=Timeouts(connect=5, stall=5), segment_threshold=MiB
    ) as downloader:
        yield downloader


class Refresher:
    """A refresh hook that signs a new URL on the server, and remembers its calls."""

    def __init__(self, server: FaultServer, name: str, delay: float = 0.0) -> None:
        self.server, self.name, self.delay = server, name, delay
        self.calls: list[str] = []
        self.issued: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, failed: str) -> str:
        with self._lock:
            self.calls.append(failed)
        time.sleep(self.delay)  # a slow signing service widens any stampede window
        url = self.server.sign(self.name)
        self.issued.append(url)
        return url


def gets(server: FaultServer, name: str) -> list[tuple[int, str | None, str | None]]:
    """(status, Range, signature) of each GET of ``name``."""
    return [
        (r.status, r.range, signature(r.path))
        for r in server.requests_for(name)
        if r.method == "GET"
    ]


def test_a_url_that_expires_mid_download_is_refreshed_and_continues_at_the_same_offset(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    fault_server.add("f.bin", data)
    first = fault_server.sign("f.bin", serves=100_000)  # expires after 100 kB, mid-body
    hook = Refresher(fault_server, "f.bin")
    r = d.download(first, tmp_path / "f.bin", sha256=sha(data), refresh_url=hook, connections=1)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert hook.calls == [first]  # called once, with the URL that failed
    old, new = signature(first), signature(hook.issued[0])
    assert gets(fault_server, "f.bin") == [
        (200, None, old),  # cut at 100 kB when the signature expired
        (403, "bytes=100000-", old),  # the retry with the old URL: refused
        (206, "bytes=100000-", new),  # the fresh URL, from the same offset
    ]
    last = [r for r in fault_server.requests_for("f.bin") if r.method == "GET"][-1]
    assert last.if_range == fault_server.etag("f.bin")  # still pinned to the same version
    assert r.status == "downloaded"
    assert r.bytes_transferred == SIZE  # not one byte fetched twice
    assert signature(r.url) == "REDACTED"  # the result names the first URL, redacted


@pytest.mark.parametrize(
    "refusal", [Fault.status(403), Fault.status(401), Fault.status(400, body=b"ExpiredToken")]
)
def test_401_403_and_400_call_the_hook(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path, refusal: Fault
) -> None:
    data = make_data(SIZE)
    url = fault_server.add("f.bin", data)
    fault_server.plan("f.bin", Fault.cut(after=50_000), refusal)
    calls: list[str] = []

    def refresh(failed: str) -> str:
        calls.append(failed)
        return url + "?X-Amz-Signature=fresh"

    d.download(url, tmp_path / "f.bin", refresh_url=refresh, connections=1)
    assert calls == [url]
    assert [s for s, _, _ in gets(fault_server, "f.bin")] == [200, refusal.code, 206]
    assert (tmp_path / "f.bin").read_bytes() == data


def test_an_expired_url_is_refreshed_before_the_first_byte_and_on_stat(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    fault_server.add("f.bin", data)
    stale = fault_server.sign("f.bin")
    fault_server.expire("f.bin")
    hook = Refresher(fault_server, "f.bin")
    # The downloader's hook serves every download.
    with ResumableDownloader(
        retry=RetryPolicy(attempts=3, backoff=0.0, jitter=0), refresh_url=hook
    ) as d:
        d.download(stale, tmp_path / "f.bin")
        assert len(hook.calls) == 1
        # An existing destination is checked with HEAD (and its GET fallback): refreshed too.
        fault_server.expire("f.bin")
        r = d.download(stale, tmp_path / "f.bin")
    assert r.status == "skipped"
    assert len(hook.calls) == 2
    heads = [(r.method, r.status) for r in fault_server.requests_for("f.bin")][-3:]
    assert heads == [("HEAD", 403), ("GET", 403), ("HEAD", 200)]


def test_without_a_hook_a_refusal_is_final_and_the_partial_is_kept(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    fault_server.add("f.bin", make_data(SIZE))
    url = fault_server.sign("f.bin", serves=100_000)
    with pytest.raises(AccessDenied) as caught:
        d.download(url, tmp_path / "f.bin", connections=1)
    assert caught.value.status == 403
    assert "partial kept" in str(caught.value)
    assert (tmp_path / "f.bin.partial").stat().st_size == 100_000


def test_a_hook_returning_none_gives_up_with_the_original_error(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    fault_server.add("f.bin", make_data(SIZE))
    url = fault_server.sign("f.bin", serves=100_000)
    calls: list[str] = []
    with pytest.raises(AccessDenied):
        d.download(url, tmp_path / "f.bin", refresh_url=lambda u: calls.append(u), connections=1)
    assert calls == [url]


def test_a_hook_that_keeps_failing_is_called_a_bounded_number_of_times(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    fault_server.add("f.bin", make_data(SIZE))
    url = fault_server.sign("f.bin")
    fault_server.expire("f.bin")
    calls: list[str] = []

    def useless(failed: str) -> str:  # signed, but never valid
        calls.append(failed)
        return fault_server.url_for("f.bin") + f"?X-Amz-Signature=bad{len(calls)}"

    with pytest.raises(AccessDenied):
        d.download(url, tmp_path / "f.bin", refresh_url=useless)
    assert len(calls) == 3  # MAX_REFRESHES in a row without one request succeeding
    assert [s for s, _, _ in gets(fault_server, "f.bin")] == [403] * 4


@pytest.mark.parametrize(
    ("returned", "message"),
    [(42, "must return a URL string or None"), ("s3://b/k", "must keep the scheme")],
)
def test_a_hook_returning_nonsense_is_an_invalid_argument(
    fault_server: FaultServer,
    d: ResumableDownloader,
    tmp_path: Path,
    returned: object,
    message: str,
) -> None:
    url = fault_server.add("f.bin", make_data(1000))
    fault_server.plan("f.bin", Fault.status(403))
    with pytest.raises(InvalidArgument, match=message):
        d.download(url, tmp_path / "f.bin", refresh_url=lambda u: returned)  # type: ignore[arg-type,return-value]


def test_a_refreshed_url_that_names_other_bytes_restarts_instead_of_splicing(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data, newer = make_data(SIZE, 1), make_data(SIZE, 2)
    fault_server.add("f.bin", data)
    url = fault_server.sign("f.bin", serves=100_000)

    def refresh(failed: str) -> str:
        fault_server.replace("f.bin", newer)  # the "same" object is now another version
        return fault_server.sign("f.bin")

    d.download(url, tmp_path / "f.bin", refresh_url=refresh, connections=1)
    assert (tmp_path / "f.bin").read_bytes() == newer
    # If-Range with the old ETag: the server answered the whole new version (200), not a 206.
    assert [s for s, _, _ in gets(fault_server, "f.bin")] == [200, 403, 200]


def test_segments_refresh_once_and_pick_up_the_new_url(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(16 * MiB, 3)
    fault_server.add("f.bin", data)
    first = fault_server.sign("f.bin", serves=2 * MiB)  # then every request with it is refused
    hook = Refresher(fault_server, "f.bin", delay=0.3)
    r = d.download(first, tmp_path / "f.bin", sha256=sha(data), refresh_url=hook, connections=8)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert len(hook.calls) == 1  # one refresh for all the connections
    requests = gets(fault_server, "f.bin")
    old, new = signature(first), signature(hook.issued[0])
    refused = [q for q in requests if q[0] == 403]
    assert refused
    assert all(sig == old for _, _, sig in refused)
    served_new = [q for q in requests if q[2] == new]
    assert len(served_new) >= 2  # several segments carried on with the fresh URL
    assert all(status == 206 for status, _, _ in served_new)
    for record in fault_server.requests_for("f.bin"):
        if signature(record.path) == new:
            assert record.if_range == fault_server.etag("f.bin")  # pinned, every piece
    assert r.bytes_transferred == len(data)


def test_the_sidecar_identity_survives_refreshes_and_a_new_signature_resumes(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    fault_server.add("f.bin", data)
    query = {"X-Amz-Date": "20260101T000000Z", "X-Amz-Expires": "3600", "versionId": "7"}
    first = fault_server.sign("f.bin", serves=100_000, query=query)

    def refresh(failed: str) -> str:
        return fault_server.sign("f.bin", query={**query, "X-Amz-Date": "20260102T000000Z"})

    class Stop(Exception):
        pass

    def stop_late(event: ProgressEvent) -> None:
        if event.done >= 200_000:
            raise Stop

    with pytest.raises(Stop):
        d.download(
            first, tmp_path / "f.bin", refresh_url=refresh, progress=stop_late, connections=1
        )
    sidecar_text = (tmp_path / "f.bin.partial.json").read_text()
    sidecar = json.loads(sidecar_text)
    assert sidecar["identity"] == identity(first)
    assert sidecar["identity"].endswith("/f.bin?versionId=7")
    assert all(signature(u) not in sidecar_text for u in [first])
    kept = (tmp_path / "f.bin.partial").stat().st_size
    assert kept >= 200_000
    # A later run with a URL signed anew (another date and signature) resumes the partial.
    again = fault_server.sign("f.bin", query={**query, "X-Amz-Date": "20260103T000000Z"})
    r = d.download(again, tmp_path / "f.bin", sha256=sha(data), connections=1)
    assert r.status == "resumed"
    assert r.bytes_transferred == SIZE - kept


def test_batches_use_the_downloaders_hook(fault_server: FaultServer, tmp_path: Path) -> None:
    data = make_data(SIZE)
    fault_server.add("f.bin", data)
    url = fault_server.sign("f.bin", serves=100_000)
    hook = Refresher(fault_server, "f.bin")
    with ResumableDownloader(
        retry=RetryPolicy(attempts=3, backoff=0.0, jitter=0), refresh_url=hook
    ) as d:
        result = d.download_many([url], tmp_path)
    result.raise_for_errors()
    assert (tmp_path / "f.bin").read_bytes() == data
    assert hook.calls == [url]


def test_refresh_url_must_be_callable() -> None:
    with pytest.raises(InvalidArgument):
        ResumableDownloader(refresh_url="https://x")  # type: ignore[arg-type]


# -- the Locator on its own: many threads, one refresh ---------------------------------------------


def test_many_threads_failing_at_once_cause_one_refresh() -> None:
    source = MemorySource({})
    calls: list[str] = []
    gate = threading.Barrier(8)

    def refresh(failed: str) -> str:
        calls.append(failed)
        time.sleep(0.2)
        return f"mem://b/k?sig={len(calls)}"

    locator = Locator(["mem://b/k?sig=0"], [source], refresh)
    stale = locator.current()
    outcomes: list[bool] = []

    def fail() -> None:
        gate.wait()
        outcomes.append(locator.recover(AccessDenied("expired", status=403), stale))

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [True] * 8
    assert calls == ["mem://b/k?sig=0"]
    assert locator.current().url == "mem://b/k?sig=1"
    assert locator.current().generation == 1


def test_only_refusals_call_the_hook() -> None:
    calls: list[str] = []
    locator = Locator(["mem://b/k"], [MemorySource({})], lambda u: calls.append(u) or "mem://x")
    target = locator.current()
    assert not locator.recover(RemoteError("HTTP 418", status=418), target)
    assert calls == []
    assert locator.recover(RemoteError("HTTP 400", status=400), target)
    assert calls == ["mem://b/k"]


# -- expiry read from the URL ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://b.s3.amazonaws.com/k?X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600", 1767229200),
        (
            "https://storage.googleapis.com/b/k?x-goog-date=20260101T000000Z&x-goog-expires=60",
            1767225660,
        ),
        ("https://d.cloudfront.net/k?Expires=1767225600&Signature=s&Key-Pair-Id=k", 1767225600),
        (
            "https://a.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-01-01T00:00:00Z&sig=s",
            1767225600,
        ),
        ("https://a.blob.core.windows.net/c/b?se=2026-01-01&sig=s", 1767225600),
        ("https://scontent.xx.fbcdn.net/sa_000000.tar?oh=00_AbC&oe=6955A600", 0x6955A600),
        ("https://h/k?X-Amz-Date=garbage&X-Amz-Expires=60", None),
        ("https://h/k?se=not-a-date", None),
        ("https://h/k?oe=zz", None),
        ("https://h/k", None),
    ],
)
def test_expires_at(url: str, expected: float | None) -> None:
    from resumable.expiry import expires_at

    assert expires_at(url) == expected


def test_a_url_that_says_it_expired_is_refreshed_before_any_request(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    fault_server.add("f.bin", data)
    stale = fault_server.sign(
        "f.bin", query={"X-Amz-Date": "20200101T000000Z", "X-Amz-Expires": "3600"}
    )
    fault_server.expire("f.bin")  # it would be refused, but it is never sent
    hook = Refresher(fault_server, "f.bin")
    d.download(stale, tmp_path / "f.bin", refresh_url=hook)
    assert hook.calls == [stale]
    assert [s for s, _, _ in gets(fault_server, "f.bin")] == [200]
    assert all(sig == signature(hook.issued[0]) for _, _, sig in gets(fault_server, "f.bin"))


def test_the_locator_refreshes_an_expired_url_once_per_url() -> None:
    now = [1000.0]
    calls: list[str] = []

    def refresh(failed: str) -> str:
        calls.append(failed)
        return f"mem://b/k?Expires={int(now[0]) + 60}&n={len(calls)}"

    locator = Locator(["mem://b/k?Expires=1100"], [MemorySource({})], refresh, clock=lambda: now[0])
    assert locator.current().url == "mem://b/k?Expires=1100"  # 100 s left
    now[0] = 1096.0  # within the 5 s margin
    assert locator.current().url == "mem://b/k?Expires=1156&n=1"
    assert locator.current().generation == 1
    assert calls == ["mem://b/k?Expires=1100"]
    now[0] = 2000.0  # the fresh one expired too: refreshed again, once
    assert locator.current().url == "mem://b/k?Expires=2060&n=2"
    assert len(calls) == 2


def test_segments_give_up_once_the_hook_has_nothing_more(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    data = make_data(16 * MiB, 5)
    fault_server.add("f.bin", data)
    first = fault_server.sign("f.bin", serves=2 * MiB)
    calls: list[str] = []

    def once(failed: str) -> str | None:
        calls.append(failed)
        return fault_server.sign("f.bin", serves=4 * MiB) if len(calls) == 1 else None

    with pytest.raises(AccessDenied) as caught:
        d.download(first, tmp_path / "f.bin", refresh_url=once, connections=8)
    assert len(calls) == 2
    assert "partial kept" in str(caught.value)
    sidecar = json.loads((tmp_path / "f.bin.partial.json").read_text())
    assert sidecar["ranges"]  # a segmented partial: never continued as one stream
    # The next run resumes the recorded ranges and verifies the whole file.
    r = d.download(fault_server.sign("f.bin"), tmp_path / "f.bin", sha256=sha(data))
    assert r.status == "resumed"
    assert (tmp_path / "f.bin").read_bytes() == data


def test_sync_checks_an_expired_url_through_the_hook(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = make_data(SIZE)
    fault_server.add("f.bin", data)
    url = fault_server.sign("f.bin")
    hook = Refresher(fault_server, "f.bin")
    policy = RetryPolicy(attempts=3, backoff=0.0, jitter=0)
    with ResumableDownloader(retry=policy, refresh_url=hook) as d:
        d.download_many([url], tmp_path, sync=True).raise_for_errors()
        fault_server.expire("f.bin")
        again = d.download_many([url], tmp_path, sync=True)  # asks whether f.bin changed
    again.raise_for_errors()
    assert [r.status for r in again.ok] == ["skipped"]
    assert len(hook.calls) == 1
    assert [(r.method, r.status) for r in fault_server.requests_for("f.bin")][-3:] == [
        ("HEAD", 403),
        ("GET", 403),
        ("HEAD", 200),
    ]
