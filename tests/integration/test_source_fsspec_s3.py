"""S3 specifics of the fsspec source, against moto's server.

What the shared scenarios (test_source_fsspec_stores.py) cannot show: how a read is pinned
(If-Match on an unversioned bucket, VersionId on a versioned one), which checksums count as
whole-object ones (not a multipart ETag, not a composite CRC, not the ETag of an SSE-KMS
object), the standard environment variables, and errors without credentials in them.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from pathlib import Path
from typing import Any

import pytest
from servers import MotoS3Server, S3Store, free_port, make_data

import resumable
from resumable.sources import RemoteInfo

BLOCK = 64 * 1024


def read_all(body: Any) -> bytes:
    parts = []
    while chunk := body.read(BLOCK):
        parts.append(chunk)
    return b"".join(parts)


def test_a_ranged_read_with_a_stale_etag_is_refused_by_if_match(
    s3_store: S3Store, fsspec_source: Any
) -> None:
    """moto ignores If-Range; the source pins with If-Match, which it honours (412)."""
    from resumable.sources._fsspec_cloud import S3Backend
    from resumable.sources._fsspec_readers import Changed

    url = s3_store.put("object.bin", make_data(100_000, seed=1))
    source = fsspec_source(s3_store.storage_options())
    stale = source.stat(url)
    new = make_data(100_000, seed=2)  # same size: only the ETag tells the versions apart
    s3_store.put("object.bin", new)
    target = source._target(url)
    with pytest.raises(Changed), source._boundary.translated(url, pinned=True):
        S3Backend().reader(target, stale, 5000, None)  # GET Range + If-Match: stale -> 412


def test_open_detects_an_overwrite_between_its_head_and_its_get(
    s3_store: S3Store, monkeypatch: pytest.MonkeyPatch, fsspec_source: Any
) -> None:
    """The race inside open(): HEAD saw version 1, the pinned GET meets version 2."""
    from resumable.sources._fsspec_cloud import S3Backend

    old = make_data(100_000, seed=3)
    url = s3_store.put("object.bin", old)
    source = fsspec_source(s3_store.storage_options())
    expect = source.stat(url)
    new = make_data(100_000, seed=4)
    s3_store.put("object.bin", new)
    real_stat = S3Backend.stat
    heads: list[RemoteInfo] = []

    def stale_once(self: Any, target: Any) -> RemoteInfo:
        info = expect if not heads else real_stat(self, target)
        heads.append(info)
        return info

    monkeypatch.setattr(S3Backend, "stat", stale_once)
    with source.open(url, 5000, expect=expect) as body:
        assert body.start == 0  # the source noticed (412) and sent the current version whole
        assert body.info.etag == f'"{hashlib.md5(new).hexdigest()}"'
        assert read_all(body) == new
    assert len(heads) == 2


def test_a_versioned_read_stays_on_its_version(
    s3_versioned_store: S3Store, fsspec_source: Any
) -> None:
    """VersionId pins the bytes: a body opened before an overwrite keeps serving its version,
    and a read pinned to the old version after the overwrite still returns the old bytes."""
    from resumable.sources._fsspec_cloud import S3Backend

    store = s3_versioned_store
    old = make_data(300_000, seed=5)
    url = store.put("object.bin", old)
    source = fsspec_source(store.storage_options())
    info = source.stat(url)
    assert info.version
    with source.open(url, 0, expect=info) as body:
        first = body.read(BLOCK)
        store.put("object.bin", make_data(300_000, seed=6))
        rest = read_all(body)
    assert first + rest == old
    pinned = S3Backend().reader(source._target(url), info, 1000, 2000)
    try:
        assert read_all(pinned) == old[1000:2000]
    finally:
        pinned.close()
    assert source.stat(url).version != info.version


def test_single_part_objects_report_md5_and_crc32(s3_store: S3Store, fsspec_source: Any) -> None:
    data = make_data(50_000, seed=7)
    info = fsspec_source(s3_store.storage_options()).stat(s3_store.put("single.bin", data))
    assert info.checksums == {
        "md5": hashlib.md5(data).hexdigest(),
        "crc32": f"{zlib.crc32(data):08x}",  # botocore adds CRC32 on PUT; ChecksumMode shows it
    }


def test_an_additional_sha256_checksum_is_reported(s3_store: S3Store, fsspec_source: Any) -> None:
    data = b"hello, checksums"
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key="sha.bin", Body=data, ChecksumAlgorithm="SHA256"
    )
    info = fsspec_source(s3_store.storage_options()).stat(s3_store.url("sha.bin"))
    assert info.checksums["sha256"] == hashlib.sha256(data).hexdigest()


def test_multipart_objects_report_no_checksum(s3_store: S3Store, fsspec_source: Any) -> None:
    """A multipart ETag is md5(part md5s)-N; a CRC32 of the parts (moto sends it without the
    "-N") is not the object's CRC32. Neither may reach the core as a whole-object checksum."""
    data = make_data(11 << 20, seed=8)
    plain = fsspec_source(s3_store.storage_options()).stat(
        s3_store.put_multipart("plain.bin", data)
    )
    assert plain.etag
    assert plain.etag.endswith('-3"')
    assert plain.checksums == {}
    client, bucket = s3_store.client, s3_store.bucket
    upload = client.create_multipart_upload(Bucket=bucket, Key="crc.bin", ChecksumAlgorithm="CRC32")
    parts = []
    for number, offset in enumerate(range(0, len(data), 5 << 20), start=1):
        answer = client.upload_part(
            Bucket=bucket,
            Key="crc.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data[offset : offset + (5 << 20)],
            ChecksumAlgorithm="CRC32",
        )
        parts.append(
            {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]}
        )
    client.complete_multipart_upload(
        Bucket=bucket, Key="crc.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    head = client.head_object(Bucket=bucket, Key="crc.bin", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"]  # present, but of the parts
    assert fsspec_source(s3_store.storage_options()).stat(s3_store.url("crc.bin")).checksums == {}


def test_the_etag_of_an_sse_kms_object_is_not_an_md5(s3_store: S3Store, fsspec_source: Any) -> None:
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key="kms.bin", Body=b"secret bytes", ServerSideEncryption="aws:kms"
    )
    info = fsspec_source(s3_store.storage_options()).stat(s3_store.url("kms.bin"))
    assert "md5" not in info.checksums


def test_a_multipart_download_is_verified_by_sha256_only(s3_store: S3Store, tmp_path: Path) -> None:
    data = make_data(11 << 20, seed=9)
    url = s3_store.put_multipart("multi.bin", data)
    with resumable.ResumableDownloader(storage_options=s3_store.storage_options()) as d:
        result = d.download(url, tmp_path / "multi.bin")
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_aws_endpoint_url_from_the_environment(
    s3_store: S3Store, moto_s3: MotoS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_data(10_000, seed=10)
    url = s3_store.put("env.bin", data)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.endpoint_url)
    with resumable.ResumableDownloader() as d:  # no storage_options at all
        result = d.download(url, tmp_path / "env.bin")
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_a_missing_bucket_is_source_not_found(s3_store: S3Store, tmp_path: Path) -> None:
    with (
        resumable.ResumableDownloader(storage_options=s3_store.storage_options()) as d,
        pytest.raises(resumable.SourceNotFound),
    ):
        d.download("s3://no-such-bucket-here/key.bin", tmp_path / "key.bin")


def test_an_invalid_bucket_name_is_invalid_argument(s3_store: S3Store, fsspec_source: Any) -> None:
    with pytest.raises(resumable.InvalidArgument):
        fsspec_source(s3_store.storage_options()).stat("s3://Bad_Bucket!/key.bin")


SECRET_KEY = "AKIATOPSECRETKEYID42"
SECRET = "very/secret+access=key/0123456789abcdef"


def test_credentials_never_appear_in_errors_logs_or_the_sidecar(
    s3_store: S3Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """moto accepts any key: a 404 and an unreachable endpoint, with secrets in the options."""
    caplog.set_level(logging.DEBUG)
    good = {**s3_store.server.storage_options(), "key": SECRET_KEY, "secret": SECRET}
    dead = {**good, "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    data = make_data(300_000, seed=11)
    url = s3_store.put("object.bin", data)
    errors: list[BaseException] = []
    retry = resumable.RetryPolicy(attempts=2, backoff=0.01, backoff_max=0.02)
    for options, target in ((good, s3_store.url("absent.bin")), (dead, url)):
        with resumable.ResumableDownloader(storage_options={"s3": options}, retry=retry) as d:
            with pytest.raises(resumable.ResumableError) as caught:
                d.download(target, tmp_path / "out.bin")
            errors.append(caught.value)
            assert SECRET not in repr(d)
            assert SECRET_KEY not in repr(d)
            assert SECRET not in repr(d.engine.source("s3"))
    assert isinstance(errors[0], resumable.SourceNotFound)
    assert isinstance(errors[1], resumable.RetriesExhausted)
    # A partial from an interrupted download: its sidecar holds no credentials either.
    with resumable.ResumableDownloader(storage_options={"s3": good}, block_size=BLOCK) as d:

        def stop(event: Any) -> None:
            if event.done >= 100_000:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            d.download(url, tmp_path / "partial.bin", progress=stop)
    files = [p.read_text() for p in tmp_path.glob("*.json")]
    assert files
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("resumable"))
    texts = [_all_text(e) for e in errors] + [ours, *files]
    for text in texts:
        assert SECRET not in text
        assert SECRET_KEY not in text


def _all_text(exc: BaseException) -> str:
    """The error, its repr, and every exception chained to it (what a traceback prints)."""
    parts = []
    current: BaseException | None = exc
    while current is not None:
        parts += [str(current), repr(current), repr(vars(current))]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def test_a_version_id_in_the_url_fetches_that_version(
    s3_versioned_store: S3Store, tmp_path: Path
) -> None:
    store = s3_versioned_store
    store.put("object.bin", b"the first version")
    first = store.client.head_object(Bucket=store.bucket, Key="object.bin")["VersionId"]
    store.put("object.bin", b"the second, current version")
    with resumable.ResumableDownloader(storage_options=store.storage_options()) as d:
        d.download(f"{store.url('object.bin')}?versionId={first}", tmp_path / "first.bin")
    assert (tmp_path / "first.bin").read_bytes() == b"the first version"
