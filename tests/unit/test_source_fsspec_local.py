"""Local files, fsspec's memory filesystem and the generic fallback for other protocols.

Local files are pinned by size + mtime checked on the open descriptor at every read; the
memory filesystem (and any filesystem the source has no special knowledge of) cannot pin a
read, so the body asks again at its end.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.spec import AbstractFileSystem
from servers import LocalStore, MemoryStore, make_data

import resumable
from resumable.sources import source_class
from resumable.sources.fsspec import FsspecSource

BLOCK = 64 * 1024


def test_local_file_modified_in_place_during_a_read(
    local_store: LocalStore, fsspec_source: Any
) -> None:
    data = make_data(300_000, seed=1)
    url = local_store.put("object.bin", data)
    source = fsspec_source()
    info = source.stat(url)
    path = local_store.root / "object.bin"
    with source.open(url, 0, expect=info) as body:
        assert body.read(BLOCK) == data[:BLOCK]
        with open(path, "r+b") as file:  # same inode, new bytes
            file.seek(200_000)
            file.write(b"X" * 1000)
        stamp = info_mtime_ns(path) + 1_000_000
        os.utime(path, ns=(stamp, stamp))
        with pytest.raises(resumable.ProtocolMismatch, match="changed while it was being read"):
            body.read(BLOCK)


def info_mtime_ns(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_a_directory_is_not_an_object(local_store: LocalStore, fsspec_source: Any) -> None:
    local_store.put("dir/a.bin", b"a")
    with pytest.raises(resumable.SourceNotFound, match="end the URL with '/'"):
        fsspec_source().stat(local_store.url("dir"))


def test_local_list_keeps_the_url_spelling(local_store: LocalStore, fsspec_source: Any) -> None:
    local_store.put("data/a.bin", b"a")
    local_store.put("data/sub/b.bin", b"bb")
    prefix = local_store.url("data") + "/"
    assert prefix.startswith("file:///")
    listed = dict(fsspec_source().list(prefix))
    assert sorted(listed) == [prefix + "a.bin", prefix + "sub/b.bin"]
    assert listed[prefix + "sub/b.bin"].size == 2


def test_listing_a_missing_prefix_is_not_an_empty_listing(
    memory_store: MemoryStore, fsspec_source: Any
) -> None:
    """A listing that fails must not look empty: sync would delete everything."""
    with pytest.raises(resumable.SourceNotFound):
        list(fsspec_source().list(memory_store.url("nothing-here/")))


def test_memory_overwrite_during_a_read_is_caught_at_the_end(
    memory_store: MemoryStore, fsspec_source: Any
) -> None:
    url = memory_store.put("object.bin", make_data(300_000, seed=2))
    source = fsspec_source()
    info = source.stat(url)
    with source.open(url, 0, expect=info) as body:
        body.read(BLOCK)
        memory_store.put("object.bin", make_data(300_000, seed=3))
        with pytest.raises(resumable.ProtocolMismatch):
            drain(body)


def drain(body: Any) -> None:
    while body.read(BLOCK):
        pass


class DictFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """A protocol resumable has no special knowledge of (bytes in a dict), whose errors quote
    the credentials it was given, as careless filesystems do."""

    protocol: ClassVar[tuple[str, ...]] = ("dictfs",)
    root_marker = ""
    files: ClassVar[dict[str, bytes]] = {}

    def __init__(self, password: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.password = password

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path).rstrip("/")
        if path in self.files:
            entries = [self.info(path)]
        else:
            children = {
                name[len(path) + 1 :].split("/")[0]
                for name in self.files
                if name.startswith(path + "/")
            }
            entries = [self.info(f"{path}/{child}") for child in sorted(children)]
            if not entries:
                raise FileNotFoundError(path)
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path).rstrip("/")
        if "forbidden" in path:
            raise PermissionError(f"login with password={self.password} refused")
        if path in self.files:
            data = self.files[path]
            mtime = int(hashlib.md5(data).hexdigest()[:8], 16)  # changes with the content
            return {"name": path, "size": len(data), "type": "file", "mtime": mtime}
        if any(name.startswith(path + "/") for name in self.files):
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> io.BytesIO:
        return io.BytesIO(self.files[self._strip_protocol(path)])


@pytest.fixture
def dictfs() -> Iterator[type[DictFileSystem]]:
    from fsspec.registry import _registry

    fsspec.register_implementation("dictfs", DictFileSystem, clobber=True)
    yield DictFileSystem
    _registry.pop("dictfs", None)
    DictFileSystem.files.clear()


def test_any_protocol_fsspec_knows_is_served_generically(
    dictfs: Any, tmp_path: Path, fsspec_source: Any
) -> None:
    assert source_class("dictfs") is FsspecSource
    data = make_data(200_000, seed=4)
    dictfs.files["bucket/data/object.bin"] = data
    dictfs.files["bucket/data/sub/other.bin"] = b"other"
    with resumable.ResumableDownloader(
        storage_options={"dictfs": {"password": "pw-not-needed"}}, block_size=BLOCK
    ) as d:
        result = d.download("dictfs://bucket/data/object.bin", tmp_path / "object.bin")
        with pytest.raises(Interrupt):
            d.download(
                "dictfs://bucket/data/object.bin", tmp_path / "again.bin", progress=stop_early
            )
        resumed = d.download("dictfs://bucket/data/object.bin", tmp_path / "again.bin")
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert resumed.status == "resumed"
    assert (tmp_path / "again.bin").read_bytes() == data
    listed = dict(fsspec_source().list("dictfs://bucket/data/"))
    assert sorted(listed) == [
        "dictfs://bucket/data/object.bin",
        "dictfs://bucket/data/sub/other.bin",
    ]


class Interrupt(Exception):
    pass


def stop_early(event: Any) -> None:
    if event.done >= 100_000:
        raise Interrupt


def test_errors_from_storage_options_never_quote_the_secret(
    dictfs: Any, fsspec_source: Any
) -> None:
    secret = "hunter2-correct-horse-battery"
    source = fsspec_source({"dictfs": {"password": secret}})
    with pytest.raises(resumable.AccessDenied) as caught:
        source.stat("dictfs://bucket/forbidden.bin")
    error = caught.value
    assert "REDACTED" in str(error)
    printed = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert "refused" in printed
    for text in (str(error), repr(error), repr(vars(error)), printed, repr(source)):
        assert secret not in text


@pytest.mark.parametrize(
    ("url", "package"),
    [("oci://bucket@namespace/key.bin", "ocifs"), ("hdfs://namenode:8020/key.bin", "pyarrow")],
)
def test_a_protocol_whose_package_is_missing_says_what_to_install(
    url: str, package: str, fsspec_source: Any
) -> None:
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed")
    with pytest.raises(resumable.InvalidArgument, match="extra package"):
        fsspec_source().stat(url)


def test_unknown_schemes_are_still_invalid() -> None:
    with pytest.raises(resumable.InvalidArgument, match="no source for URL scheme"):
        source_class("no-such-protocol-anywhere")
