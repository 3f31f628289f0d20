"""FsspecCallbackProgress: resumable's events drive real ``fsspec.callbacks`` objects."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fsspec.callbacks import Callback, TqdmCallback
from servers import FaultServer, NginxServer, make_data

import resumable
from resumable import EventKind, FsspecCallbackProgress, ProgressEvent

MiB = 1 << 20
K = EventKind


def ev(kind: EventKind, name: str, done: int, total: int | None = 1000) -> ProgressEvent:
    return ProgressEvent(kind, f"https://h/{name}", Path("/d") / name, done, total)


class Recording(Callback):
    """A Callback that records every (size, value) it is told, and branches into children."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[int | None, int]] = []
        self.children: dict[str, Recording] = {}
        self.closed = False

    def call(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((self.size, self.value))

    def branched(self, path_1: str, path_2: str, **kwargs: Any) -> Recording:
        child = self.children[path_2] = Recording()
        return child

    def close(self) -> None:
        self.closed = True


def test_bytes_across_files_with_children_and_a_rewind():
    cb = Recording()
    progress = FsspecCallbackProgress(cb)
    for event in (
        ev(K.STARTED, "a", 0),
        ev(K.PROGRESS, "a", 600),
        ev(K.STARTED, "b", 0, 500),
        ev(K.PROGRESS, "a", 0),  # rewound
        ev(K.PROGRESS, "b", 500, 500),
        ev(K.DONE, "b", 500, 500),
        ev(K.PROGRESS, "a", 1000),
        ev(K.DONE, "a", 1000),
    ):
        progress(event)
    assert cb.calls == [
        (1000, 0),  # set_size
        (1000, 0),  # absolute_update
        (1000, 600),
        (1500, 600),  # set_size when b's size became known ...
        (1500, 600),  # ... then absolute_update
        (1500, 0),  # a rewound
        (1500, 500),
        (1500, 500),
        (1500, 1500),
        (1500, 1500),
    ]
    a, b = cb.children["/d/a"], cb.children["/d/b"]
    assert [v for _, v in a.calls][-3:] == [0, 1000, 1000]
    assert a.size == 1000
    assert a.closed
    assert b.closed


def test_files_unit_counts_finished_files():
    cb = Recording()
    progress = FsspecCallbackProgress(cb, unit="files", total_files=3)
    assert (cb.size, cb.value) == (3, 0)
    progress(ev(K.STARTED, "a", 0))
    progress(ev(K.DONE, "a", 1000))
    progress(ev(K.SKIPPED, "b", 1000))
    assert (cb.size, cb.value) == (3, 2)
    assert cb.children["/d/b"].value == 1000
    assert cb.children["/d/b"].closed


def test_plain_fsspec_callbacks_and_bad_arguments():
    hooked: list[tuple[int | None, int]] = []
    progress = FsspecCallbackProgress(
        Callback(hooks={"h": lambda size, value: hooked.append((size, value))})
    )
    progress(ev(K.STARTED, "a", 0))
    progress(ev(K.DONE, "a", 1000))
    assert hooked[-1] == (1000, 1000)
    with pytest.raises(resumable.InvalidArgument, match="set_size"):
        FsspecCallbackProgress(object())
    with pytest.raises(resumable.InvalidArgument, match="unit"):
        FsspecCallbackProgress(Callback(), unit="items")  # type: ignore[arg-type]


def test_tqdm_callback_on_a_real_batch(nginx: NginxServer, unique_prefix: str, tmp_path: Path):
    files = {f"s{i}.bin": make_data(700_000 + i, seed=40 + i) for i in range(3)}
    for name, data in files.items():
        nginx.add(f"{unique_prefix}/{name}", data)
    out = io.StringIO()
    with TqdmCallback(tqdm_kwargs={"file": out, "mininterval": 0}) as cb:
        with resumable.ResumableDownloader(workers=2) as d:
            result = d.download_many(
                f"{nginx.url}/{unique_prefix}/s{{0..2}}.bin",
                tmp_path,
                progress=FsspecCallbackProgress(cb),
            )
        assert not result.failed
        total = sum(map(len, files.values()))
        assert (cb.tqdm.total, cb.tqdm.n) == (total, total)


def test_an_exception_from_the_callback_stops_the_download_and_keeps_the_partial(
    fault_server: FaultServer, tmp_path: Path
):
    data = make_data(6 * MiB, seed=5)  # more than one block: kept in a .partial
    url = fault_server.add("a.bin", data)

    class Stop(Exception):
        pass

    class Impatient(Callback):
        def call(self, *args: Any, **kwargs: Any) -> None:
            if self.value >= MiB:
                raise Stop

    with pytest.raises(Stop):
        resumable.download(url, tmp_path / "a.bin", progress=FsspecCallbackProgress(Impatient()))
    assert (tmp_path / "a.bin.partial").stat().st_size >= MiB
    r = resumable.download(url, tmp_path / "a.bin")
    assert r.status == "resumed"
    assert (tmp_path / "a.bin").read_bytes() == data
