"""Conventions users bring from other libraries (issue 18): ``progress=True`` (item 5) and a
directory as the destination (item 6), against the fault server, whose request log proves that
a refused argument cost no request.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers import FaultServer, make_data

import resumable
from resumable import InvalidArgument, ResumableDownloader, TqdmProgress
from resumable.progress.bars import TqdmProgress as Bars

DATA = make_data(300_000, seed=18)


@pytest.fixture
def url(fault_server: FaultServer) -> str:
    return fault_server.add("obj.bin", DATA)


@pytest.fixture
def d() -> Any:
    with ResumableDownloader(workers=2) as downloader:
        yield downloader


# -- progress=True -------------------------------------------------------------------------------


class Spy:
    """Counts what real ``TqdmProgress`` instances receive (they still render)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[resumable.ProgressEvent] = []
        self.closed = 0
        spy = self
        call, close = Bars.__call__, Bars.close

        def on_event(bars: Bars, event: resumable.ProgressEvent) -> None:
            spy.events.append(event)
            call(bars, event)

        def on_close(bars: Bars) -> None:
            spy.closed += 1
            close(bars)

        monkeypatch.setattr(Bars, "__call__", on_event)
        monkeypatch.setattr(Bars, "close", on_close)


def test_progress_true_is_tqdm_progress_for_one_file(
    url: str, d: ResumableDownloader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(monkeypatch)
    result = d.download(url, tmp_path / "a.bin", progress=True)
    assert result.path.read_bytes() == DATA
    kinds = [str(e.kind) for e in spy.events]
    assert kinds[0] == "started"
    assert kinds[-1] == "done"
    assert spy.closed == 1  # the bars we made are closed when the call returns

    spy.events.clear()
    resumable.download(url, tmp_path / "b.bin", progress=True)
    assert spy.events
    assert spy.closed == 2


def test_progress_true_for_a_batch_and_a_started_job(
    fault_server: FaultServer,
    d: ResumableDownloader,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = Spy(monkeypatch)
    urls = [fault_server.add(f"s{i}.bin", make_data(50_000, seed=i)) for i in range(3)]
    result = d.download_many(urls, tmp_path / "many", progress=True)
    assert len(result.ok) == 3
    assert sum(1 for e in spy.events if str(e.kind) == "done") == 3
    job = d.start(urls, tmp_path / "job", progress=True)
    assert len(job.wait(60).ok) == 3
    deadline = 50
    while spy.closed < 2 and deadline:  # the job closes its bars as it ends
        deadline -= 1
        job.wait(0.1)
    assert spy.closed == 2


def test_progress_false_is_none(url: str, d: ResumableDownloader, tmp_path: Path) -> None:
    assert d.download(url, tmp_path / "f.bin", progress=False).path.read_bytes() == DATA
    assert d.download_many([url], tmp_path / "m", progress=False).ok


BAD_PROGRESS = [
    pytest.param("yes", id="str"),
    pytest.param(1, id="int-1"),
    pytest.param(0, id="int-0"),
    pytest.param(object(), id="object"),
    pytest.param([print], id="list"),
    pytest.param(TqdmProgress, id="the-class-not-an-instance"),
]

Call = Callable[[ResumableDownloader, str, Path, object], object]
CALLS: dict[str, Call] = {
    "download": lambda d, url, tmp, p: d.download(url, tmp / "f.bin", progress=p),  # type: ignore[arg-type]
    "module download": lambda d, url, tmp, p: resumable.download(url, tmp / "f.bin", progress=p),  # type: ignore[arg-type]
    "download_many": lambda d, url, tmp, p: d.download_many([url], tmp, progress=p),  # type: ignore[arg-type]
    "start": lambda d, url, tmp, p: d.start([url], tmp, progress=p),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("progress", BAD_PROGRESS)
@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_wrong_progress_is_refused_before_any_traffic(
    fault_server: FaultServer,
    url: str,
    d: ResumableDownloader,
    tmp_path: Path,
    call: str,
    progress: object,
) -> None:
    with pytest.raises(InvalidArgument, match="progress must be"):
        CALLS[call](d, url, tmp_path, progress)
    assert fault_server.log == []
    assert not (tmp_path / "f.bin").exists()


# -- a directory as destination ------------------------------------------------------------------


def test_an_existing_directory_gets_the_object_name(
    url: str, d: ResumableDownloader, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for dest in (folder, str(folder), str(folder) + os.sep):
        result = d.download(url, dest)
        assert result.path == folder / "obj.bin"
    assert (folder / "obj.bin").read_bytes() == DATA
    assert sorted(p.name for p in folder.iterdir()) == ["obj.bin"]


def test_a_trailing_separator_creates_the_directory(
    url: str, d: ResumableDownloader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = resumable.download(url, "data/")
    assert result.path == tmp_path / "data" / "obj.bin"
    assert (tmp_path / "data" / "obj.bin").read_bytes() == DATA
    result = d.download(url, "deeper/still/")
    assert (tmp_path / "deeper" / "still" / "obj.bin").read_bytes() == DATA


def test_the_name_is_percent_decoded_without_the_query(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    url = fault_server.add("a b.bin", DATA)
    assert "%20" in url
    result = d.download(url + "?token=1", str(tmp_path) + "/")
    assert result.path == tmp_path / "a b.bin"


def test_a_directory_with_a_processor(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    import gzip

    url = fault_server.add("log.txt.gz", gzip.compress(b"hello\n" * 1000))
    result = d.download(url, tmp_path, process=resumable.Decompress())
    assert result.path == tmp_path / "log.txt.gz"
    assert (tmp_path / "log.txt").read_bytes() == b"hello\n" * 1000


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/dir/", "no object name"),
        ("/", "no object name"),
        ("/a/..", r"escape dest_dir|'\.\.'"),
        ("/%2E%2E", r"escape dest_dir|'\.\.'"),
    ],
)
def test_no_usable_object_name_is_refused_before_any_traffic(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path, path: str, names: str
) -> None:
    url = fault_server.url.rstrip("/") + path
    with pytest.raises(InvalidArgument, match=names):
        d.download(url, tmp_path)
    with pytest.raises(InvalidArgument, match=names):
        d.download(url, str(tmp_path / "new") + "/")
    assert fault_server.log == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_file_path_is_still_a_file(url: str, d: ResumableDownloader, tmp_path: Path) -> None:
    """Without a trailing separator, a path that is not a directory names the file itself."""
    assert d.download(url, tmp_path / "data").path == tmp_path / "data"
    assert (tmp_path / "data").read_bytes() == DATA


def test_a_batch_destination_ending_with_a_slash_is_a_folder(
    fault_server: FaultServer, d: ResumableDownloader, tmp_path: Path
) -> None:
    """The same convention for a batch's ``(url, dest)`` pairs and ``Item.dest``."""
    one = fault_server.add("one.bin", b"1" * 1000)
    two = fault_server.add("two.bin", b"2" * 1000)
    result = d.download_many([(one, "sub/"), resumable.Item(two, dest="other/deeper/")], tmp_path)
    assert sorted(str(r.path.relative_to(tmp_path)) for r in result.ok) == [
        "other/deeper/two.bin",
        "sub/one.bin",
    ]
    bad = d.download_many([(fault_server.url.rstrip("/") + "/", "sub/")], tmp_path / "b")
    [(_, error)] = bad.failed
    assert isinstance(error, InvalidArgument)
