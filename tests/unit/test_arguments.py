"""Invalid arguments raise InvalidArgument (a ValueError) before any source is touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import resumable
from resumable.sources import RemoteInfo, SourceConfig

CALLS: list[str] = []


class RecordingSource:
    """Registered for ``rec://``: records every call, so a test can prove there was none."""

    def __init__(self, config: SourceConfig) -> None:
        CALLS.append("init")

    def stat(self, url: str) -> RemoteInfo:
        CALLS.append("stat")
        raise resumable.SourceNotFound("nothing here", url=url)

    def open(self, url: str, start: int = 0, end: int | None = None, expect: Any = None) -> Any:
        CALLS.append("open")
        raise resumable.SourceNotFound("nothing here", url=url)

    def list(self, prefix: str) -> Iterator[tuple[str, RemoteInfo]]:
        CALLS.append("list")
        return iter(())

    def close(self) -> None:
        CALLS.append("close")


@pytest.fixture(autouse=True)
def recording() -> Iterator[None]:
    resumable.register("rec", RecordingSource)
    CALLS.clear()
    yield
    CALLS.clear()


GOOD_SHA = "0" * 64


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("", {}, "non-empty"),
        ("   ", {}, "non-empty"),
        (None, {}, "non-empty"),
        (b"rec://h/f", {}, "non-empty"),
        ("h/f.bin", {}, "no scheme"),
        ("nosuch://h/f", {}, "no source for URL scheme"),
        ("https:///f.bin", {}, "no host"),
        ("https://h:99999999/f", {}, "malformed"),
        ("https://h/f\nX-Injected: 1", {}, "whitespace"),
        ("rec://h/f", {"sha256": "abc"}, "64 hex"),
        ("rec://h/f", {"sha256": "z" * 64}, "64 hex"),
        ("rec://h/f", {"checksum": "md5"}, "algorithm"),
        ("rec://h/f", {"checksum": "rot13:00"}, "unknown checksum"),
        ("rec://h/f", {"size": -1}, "non-negative"),
        ("rec://h/f", {"size": 1.5}, "non-negative"),
        ("rec://h/f", {"size": True}, "non-negative"),
    ],
)
def test_invalid_arguments_fail_before_any_source_call(
    tmp_path: Path, url: Any, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(resumable.InvalidArgument, match=match) as info:
        resumable.ResumableDownloader().download(url, tmp_path / "f.bin", **kwargs)
    assert isinstance(info.value, ValueError)
    assert CALLS == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dest", ["", None, "dir", "f.bin.partial"])
def test_invalid_destinations_fail_before_any_source_call(tmp_path: Path, dest: Any) -> None:
    (tmp_path / "dir" / "f").mkdir(parents=True)  # "dir" means dir/f (issue 18): a directory
    target = tmp_path / dest if isinstance(dest, str) and dest else dest
    with pytest.raises(resumable.InvalidArgument):
        resumable.ResumableDownloader().download("rec://h/f", target)
    assert CALLS == []


@pytest.mark.parametrize(
    "kwargs",
    [{"workers": 0}, {"connections": 0}, {"block_size": 10}, {"workers": "8"}],
)
def test_invalid_downloader_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(resumable.InvalidArgument):
        resumable.ResumableDownloader(**kwargs)


def test_credentials_in_an_invalid_url_are_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(resumable.InvalidArgument) as info:
        resumable.download("https://user:s3cret@/f?sig=TOPSECRET", tmp_path / "f")
    assert "s3cret" not in str(info.value)
    assert "TOPSECRET" not in str(info.value)


def test_registered_sources_receive_the_download_and_errors_say_what_was_kept(
    tmp_path: Path,
) -> None:
    with pytest.raises(resumable.SourceNotFound) as info:
        resumable.ResumableDownloader().download("rec://h/f", tmp_path / "f.bin")
    assert CALLS[:2] == ["init", "open"]
    assert "nothing was kept" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no empty partial, sidecar or lock file left


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(resumable.InvalidArgument, match="https"):
        resumable.download("gopher://h/f", "x")


def test_register_rejects_an_invalid_scheme() -> None:
    with pytest.raises(resumable.InvalidArgument):
        resumable.register("not a scheme", RecordingSource)
