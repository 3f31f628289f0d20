"""Azure Blob specifics of the fsspec source, against Azurite.

Content-MD5 exists only for single-shot uploads (staged blocks have none, as on Azure); reads
are pinned with If-Match on the ETag (Azurite ignores If-Range); a wrong account key is a
typed permission error that quotes neither the key nor the connection string.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest
from servers import AzureStore, AzuriteServer, make_data

import resumable

BLOCK = 64 * 1024


def test_staged_blobs_have_no_content_md5(
    azure_store: AzureStore, tmp_path: Path, fsspec_source: Any
) -> None:
    data = make_data(3 << 20, seed=1)
    url = azure_store.put_staged("staged.bin", data)
    info = fsspec_source(azure_store.storage_options()).stat(url)
    assert info.checksums == {}
    assert info.etag
    with resumable.ResumableDownloader(storage_options=azure_store.storage_options()) as d:
        result = d.download(url, tmp_path / "staged.bin")  # still verified: by its size
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_a_read_with_a_stale_etag_is_refused_by_if_match(
    azure_store: AzureStore, fsspec_source: Any
) -> None:
    from resumable.sources._fsspec_cloud import AzureBackend
    from resumable.sources._fsspec_readers import Changed

    url = azure_store.put("object.bin", make_data(100_000, seed=2))
    source = fsspec_source(azure_store.storage_options())
    stale = source.stat(url)
    azure_store.put("object.bin", make_data(100_000, seed=3))
    with pytest.raises(Changed), source._boundary.translated(url, pinned=True):
        AzureBackend().reader(source._target(url), stale, 5000, None)


def test_azure_storage_connection_string_from_the_environment(
    azure_store: AzureStore,
    azurite: AzuriteServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = make_data(10_000, seed=4)
    url = azure_store.put("env.bin", data).replace("az://", "abfs://", 1)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    with resumable.ResumableDownloader() as d:
        result = d.download(url, tmp_path / "env.bin")
    assert result.sha256 == hashlib.sha256(data).hexdigest()


WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleQ=="


def test_a_wrong_key_is_access_denied_without_the_key(
    azure_store: AzureStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resumable")
    url = azure_store.put("object.bin", b"guarded")
    account_key = azure_store.server.connection_string.split("AccountKey=")[1].split(";")[0]
    connection = azure_store.server.connection_string.replace(account_key, WRONG_KEY)
    with (
        resumable.ResumableDownloader(
            storage_options={"az": {"connection_string": connection}}
        ) as d,
        pytest.raises(resumable.AccessDenied) as caught,
    ):
        d.download(url, tmp_path / "object.bin")
    assert isinstance(caught.value, PermissionError)
    chained = []
    current: BaseException | None = caught.value
    while current is not None:
        chained += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    for text in [*chained, caplog.text]:
        assert WRONG_KEY not in text
        assert connection not in text
