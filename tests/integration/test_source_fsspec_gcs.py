"""GCS specifics of the fsspec source, against gcp-storage-emulator.

The emulator ignores ``generation=`` on downloads and sends no ``x-goog-generation``, so
nothing on the wire pins a read to its generation there: the source compares the generation
``info()`` reports before the read and again at the end of the body. These tests prove that
path, the md5/crc32c checksums and the ``STORAGE_EMULATOR_HOST`` variable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from servers import GCSEmulator, GCSStore, make_data

import resumable

BLOCK = 64 * 1024


def test_crc32c_and_md5_are_normalised_to_hex(gcs_store: GCSStore, fsspec_source: Any) -> None:
    import google_crc32c

    data = make_data(70_000, seed=1)
    url = gcs_store.put("object.bin", data)
    info = fsspec_source(gcs_store.storage_options()).stat(url)
    assert info.checksums == {
        "md5": hashlib.md5(data).hexdigest(),
        "crc32c": f"{google_crc32c.value(data):08x}",
    }
    assert info.version
    assert info.version.isdigit()  # the generation


def test_an_overwrite_during_the_body_is_caught_at_its_end(
    gcs_store: GCSStore, fsspec_source: Any
) -> None:
    """Unpinnable on the wire (emulator): the end-of-body check fails the attempt."""
    url = gcs_store.put("object.bin", make_data(300_000, seed=2))
    source = fsspec_source(gcs_store.storage_options())
    info = source.stat(url)
    with source.open(url, 0, expect=info) as body:
        body.read(BLOCK)
        gcs_store.put("object.bin", make_data(300_000, seed=3))
        with pytest.raises(resumable.ProtocolMismatch, match="changed while it was being read"):
            drain(body)


def drain(body: Any) -> None:
    while body.read(BLOCK):
        pass


def test_an_overwrite_during_a_download_restarts_it_whole(
    gcs_store: GCSStore, tmp_path: Path
) -> None:
    old, new = make_data(2 << 20, seed=4), make_data(2 << 20, seed=5)
    url = gcs_store.put("object.bin", old)
    overwritten = []

    def overwrite_once(event: Any) -> None:
        if event.done >= 1 << 20 and not overwritten:
            overwritten.append(gcs_store.put("object.bin", new))

    with resumable.ResumableDownloader(
        storage_options=gcs_store.storage_options(),
        block_size=BLOCK,
        retry=resumable.RetryPolicy(backoff=0.01, backoff_max=0.02),
    ) as d:
        result = d.download(url, tmp_path / "object.bin", progress=overwrite_once)
    assert overwritten
    assert (tmp_path / "object.bin").read_bytes() == new
    assert result.sha256 == hashlib.sha256(new).hexdigest()


def test_storage_emulator_host_from_the_environment(
    gcs_store: GCSStore,
    gcs_emulator: GCSEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = make_data(10_000, seed=6)
    url = gcs_store.put("env.bin", data)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint_url)
    with resumable.ResumableDownloader(storage_options={"gs": {"token": "anon"}}) as d:
        result = d.download(url, tmp_path / "env.bin")
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_gcs_scheme_alias(gcs_store: GCSStore, tmp_path: Path) -> None:
    """``gcs://`` is served like ``gs://`` and takes the ``gs`` storage options."""
    data = make_data(10_000, seed=7)
    url = gcs_store.put("alias.bin", data).replace("gs://", "gcs://", 1)
    with resumable.ResumableDownloader(storage_options=gcs_store.storage_options()) as d:
        result = d.download(url, tmp_path / "alias.bin")
    assert result.sha256 == hashlib.sha256(data).hexdigest()
