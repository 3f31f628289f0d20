"""``storage_options`` in both forms users bring, and options a filesystem does not accept.

Flat (``{"endpoint_url": ..., "key": ...}``, as pandas, dask and ``fsspec.open`` take it) and
per protocol (``{"s3": {...}}``) both reach the filesystem, against the real emulators. An
option the filesystem does not accept fails as an ``InvalidArgument`` before any request: the
per-protocol form when the downloader is made, the flat form at the scheme's first use; a
:class:`~servers.proxy.CountingProxy` in front of moto proves no connection was opened. Values
(credentials) never appear in the message.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import MotoS3Server, S3Store, free_port, make_data
from servers.proxy import CountingProxy

import resumable
from resumable import InvalidArgument, ResumableDownloader
from resumable.batch.fanout import spec_of
from resumable.sources import SourceConfig

SECRET = "sEcReT-VaLuE-0123456789"  # never in a message


@pytest.fixture
def proxy(moto_s3: MotoS3Server) -> Iterator[CountingProxy]:
    """Every request to moto through a proxy that counts connections."""
    with CountingProxy(moto_s3.port) as counting:
        yield counting


@pytest.fixture(autouse=True)
def no_default_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """An endpoint the options must override: if they were ignored, the client would go to a
    closed loopback port (and fail), never to AWS."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")


def flat(store: S3Store, endpoint: str | None = None) -> dict[str, Any]:
    options = dict(store.storage_options()["s3"])
    if endpoint:
        options["endpoint_url"] = endpoint
    return options


def test_the_flat_form_downloads_from_moto(s3_store: S3Store, tmp_path: Path) -> None:
    data = make_data(300_000, seed=1)
    url = s3_store.put("flat.bin", data)
    with ResumableDownloader(storage_options=flat(s3_store)) as d:
        result = d.download(url, tmp_path / "flat.bin")
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_the_per_protocol_form_still_downloads_from_moto(s3_store: S3Store, tmp_path: Path) -> None:
    data = make_data(300_000, seed=2)
    url = s3_store.put("nested.bin", data)
    with ResumableDownloader(storage_options={"s3": flat(s3_store)}) as d:
        result = d.download(url, tmp_path / "nested.bin")
    assert (tmp_path / "nested.bin").read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("fixture", ["gcs_store", "azure_store"])
def test_the_flat_form_reaches_the_other_object_stores(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = request.getfixturevalue(fixture)
    data = make_data(100_000, seed=3)
    url = store.put("flat.bin", data)
    with ResumableDownloader(storage_options=store.storage_options()[store.protocol]) as d:
        d.download(url, tmp_path / "flat.bin")
    assert (tmp_path / "flat.bin").read_bytes() == data


def test_the_counting_proxy_sees_a_download(
    s3_store: S3Store, proxy: CountingProxy, tmp_path: Path
) -> None:
    """The control for the zero-request tests below: through the proxy, requests are seen."""
    url = s3_store.put("seen.bin", b"x" * 1000)
    with ResumableDownloader(storage_options=flat(s3_store, proxy.url)) as d:
        d.download(url, tmp_path / "seen.bin")
    assert proxy.connections >= 1
    assert proxy.sent > 0


def test_an_unknown_flat_option_fails_before_any_request(
    s3_store: S3Store, proxy: CountingProxy, tmp_path: Path
) -> None:
    url = s3_store.put("object.bin", b"x" * 1000)
    options = {**flat(s3_store, proxy.url), "anno": True}
    with (
        ResumableDownloader(storage_options=options) as d,  # which filesystem: not known yet
        pytest.raises(InvalidArgument) as caught,
    ):
        d.download(url, tmp_path / "object.bin")
    message = str(caught.value)
    assert "'anno'" in message
    assert "did you mean 'anon'" in message
    assert "s3fs.core.S3FileSystem" in message
    assert proxy.connections == 0
    assert proxy.sent == 0
    assert list(tmp_path.iterdir()) == []  # no partial, no sidecar


def test_an_unknown_per_protocol_option_fails_when_the_downloader_is_made(
    s3_store: S3Store, proxy: CountingProxy
) -> None:
    options = {"s3": {**flat(s3_store, proxy.url), "endpoint": proxy.url}}
    with pytest.raises(InvalidArgument, match=r"'endpoint' \(did you mean 'endpoint_url'\?\)"):
        ResumableDownloader(storage_options=options)
    assert proxy.connections == 0


def test_options_inside_client_and_config_kwargs_are_checked(
    s3_store: S3Store, proxy: CountingProxy, tmp_path: Path
) -> None:
    options = {
        **flat(s3_store, proxy.url),
        "client_kwargs": {"region_nam": "us-east-1"},
        "config_kwargs": {"retries": {"max_attempts": 1}, "read_timout": 5},
    }
    with (
        ResumableDownloader(storage_options=options) as d,
        pytest.raises(InvalidArgument) as caught,
    ):
        d.download(s3_store.url("any.bin"), tmp_path / "any.bin")
    message = str(caught.value)
    assert "'client_kwargs.region_nam' (did you mean 'region_name'?)" in message
    assert "'config_kwargs.read_timout' (did you mean 'read_timeout'?)" in message
    assert "retries" not in message  # a botocore Config option: accepted
    assert proxy.connections == 0


def test_valid_nested_options_pass(s3_store: S3Store, tmp_path: Path) -> None:
    """``profile`` goes to s3fs's **kwargs (aiobotocore's session): accepted, not a typo."""
    config = SourceConfig(storage_options={"s3": {"profile": "x", "use_listings_cache": False}})
    assert config.options.per_protocol["s3"]["profile"] == "x"
    url = s3_store.put("valid.bin", b"y" * 5000)
    options = {**flat(s3_store), "config_kwargs": {"retries": {"max_attempts": 1}}}
    with ResumableDownloader(storage_options=options) as d:
        assert d.download(url, tmp_path / "valid.bin").size == 5000


def test_a_mix_of_the_two_forms_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        ResumableDownloader(storage_options={"s3": {"anon": True}, "endpoint_url": SECRET})
    message = str(caught.value)
    assert "mixes" in message
    assert "'s3'" in message
    assert "'endpoint_url'" in message
    assert SECRET not in message


def test_flat_options_meet_every_fsspec_scheme(s3_store: S3Store, tmp_path: Path) -> None:
    """Flat options apply to a file:// URL too: LocalFileSystem refuses S3's, and says how to
    give them to one protocol."""
    source = tmp_path / "local.bin"
    source.write_bytes(b"z" * 100)
    with (
        ResumableDownloader(storage_options=flat(s3_store)) as d,
        pytest.raises(InvalidArgument) as caught,
    ):
        d.download(source.as_uri(), tmp_path / "copy.bin")
    message = str(caught.value)
    assert "LocalFileSystem" in message
    assert '{"<protocol>": {...}}' in message
    assert not (tmp_path / "copy.bin").exists()


@pytest.mark.parametrize(
    "options",
    [
        {"s3": {"secrett": SECRET}},
        {"s3": {"client_kwargs": {"aws_secret_key": SECRET}}},
        {"gs": {"tokn": SECRET}},
        {"az": {"acount_key": SECRET, "connection_string": SECRET + ";AccountKey=" + SECRET}},
    ],
    ids=["s3", "s3-client-kwargs", "gs", "az"],
)
def test_a_secret_in_a_bad_option_never_appears(
    options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidArgument) as caught:
        ResumableDownloader(storage_options=options)
    shown = f"{caught.value} {caught.value!r} {caught.value.args} {caplog.text}"
    assert "does not accept" in shown
    assert SECRET not in shown
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_a_secret_in_a_bad_flat_option_never_appears(
    s3_store: S3Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with ResumableDownloader(storage_options={**flat(s3_store), "sekret": SECRET}) as d:
        assert SECRET not in repr(d.engine.source_config)
        assert SECRET not in repr(d.settings)
        with pytest.raises(InvalidArgument) as caught:
            d.download(s3_store.url("any.bin"), tmp_path / "any.bin")
    shown = f"{caught.value} {caught.value!r} {caught.value.args} {caplog.text}"
    assert "'sekret'" in shown
    assert SECRET not in shown


def test_the_repr_names_options_never_values(s3_store: S3Store) -> None:
    config = SourceConfig(storage_options={"endpoint_url": "http://h", "secret": SECRET})
    assert repr(config).count("storage_options=<keys ['endpoint_url', 'secret']>") == 1
    assert SECRET not in repr(config)


def test_the_form_is_told_by_the_keys() -> None:
    nested = SourceConfig(storage_options={"s3": {"anon": True}, "gcs": {}})
    assert nested.options.for_protocols(["s3", "s3a"]) == {"anon": True}
    assert nested.options.for_protocols(["gs", "gcs"]) == {}
    # client_kwargs is a dict, but no protocol: flat
    flat_form = SourceConfig(storage_options={"anon": True, "client_kwargs": {"verify": False}})
    assert flat_form.options.flat == {"anon": True, "client_kwargs": {"verify": False}}
    assert flat_form.options.for_protocols(["gs"]) == flat_form.options.flat
    with pytest.raises(InvalidArgument, match="must be a dict"):
        SourceConfig(storage_options="anon=True")  # type: ignore[arg-type]


def test_the_options_are_held_by_value() -> None:
    given: dict[str, Any] = {"anon": True}
    config = SourceConfig(storage_options=given)
    given["anon"] = False
    assert config.storage_options == {"anon": True}


def test_a_flat_form_downloader_travels_to_other_processes_by_value(s3_store: S3Store) -> None:
    options = flat(s3_store)
    with ResumableDownloader(storage_options=options) as d:
        spec = spec_of(d.engine)
    assert spec.settings.storage_options == options
    rebuilt = spec.build()
    try:
        assert rebuilt.source_config.options.flat == options
    finally:
        rebuilt.close()


def test_a_protocol_without_its_package_is_checked_at_first_use() -> None:
    """The construction check needs the filesystem class; a missing package is not a typo."""
    assert isinstance(resumable.sources.source_class("sftp"), type)
    SourceConfig(storage_options={"sftp": {"host": "127.0.0.1", "anything": 1}})
