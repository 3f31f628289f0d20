"""The exception tree: builtin mix-ins, data carried, pickling, and credential redaction."""

from __future__ import annotations

import pickle

import pytest

import resumable
from resumable import errors
from resumable.urls import redact

SIGNED = (
    "https://bucket.s3.amazonaws.com/shard-000001.tar?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20261121%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Signature=deadbeefcafe&X-Amz-Security-Token=SESSIONTOKEN&X-Amz-Expires=3600"
)


def every_error() -> list[errors.ResumableError]:
    url = "https://user:hunter2@example.org/f.bin?sig=SECRET"
    return [
        errors.ResumableError("base", url=url, kept="kept"),
        errors.InvalidArgument("bad", url=url),
        errors.SourceNotFound("HTTP 404", url=url),
        errors.AccessDenied("HTTP 403", url=url, status=403),
        errors.RemoteError("HTTP 400", url=url, status=400),
        errors.ConnectionFailed("reset", url=url),
        errors.StallTimeout("stalled", url=url, seconds=5.0),
        errors.ServerBusy(url=url, status=503, retry_after=7.0),
        errors.ProtocolMismatch("wrong range", url=url),
        errors.RetriesExhausted(url=url, attempts=3, reason="reset"),
        errors.SizeMismatch(url=url, expected=10, actual=9),
        errors.ChecksumMismatch(url=url, algorithm="sha256", expected="aa", actual="bb"),
        errors.LocalError("disk full", url=url, path="/x.partial"),
        errors.PartialTakenOver("taken", path="/x.partial"),
        errors.ExecutorError("lost", url=url, cause="KilledWorker: worker died 3 times"),
        errors.ExtractionError("no zstandard", path="/a.tar.zst", url=url),
        errors.UnsafeArchive("member '../x' climbs out", path="/a.tar", member="../x", url=url),
        errors.ArchiveTooLarge("bomb", path="/a.gz", limit="max_ratio", expected=200, actual=1e3),
        errors.CorruptArchive("truncated", path="/a.tar.gz"),
    ]


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.InvalidArgument, ValueError),
        (errors.SourceNotFound, FileNotFoundError),
        (errors.AccessDenied, PermissionError),
        (errors.ConnectionFailed, ConnectionError),
        (errors.StallTimeout, TimeoutError),
        (errors.SizeMismatch, ValueError),
        (errors.ChecksumMismatch, ValueError),
        (errors.LocalError, OSError),
        (errors.UnsafeArchive, ValueError),
        (errors.ArchiveTooLarge, ValueError),
        (errors.CorruptArchive, ValueError),
        (errors.UnsafeArchive, errors.ExtractionError),
    ],
)
def test_errors_are_also_the_builtin_that_matches(cls: type, builtin: type) -> None:
    assert issubclass(cls, builtin)
    assert issubclass(cls, resumable.ResumableError)


def test_transient_errors_are_exactly_the_retried_ones() -> None:
    transient = {c for c in vars(errors).values() if isinstance(c, type)} & {
        errors.ConnectionFailed,
        errors.StallTimeout,
        errors.ServerBusy,
        errors.ProtocolMismatch,
    }
    assert all(issubclass(c, errors.TransientError) for c in transient)
    for permanent in (errors.SourceNotFound, errors.AccessDenied, errors.VerificationError):
        assert not issubclass(permanent, errors.TransientError)


@pytest.mark.parametrize("err", every_error(), ids=lambda e: type(e).__name__)
def test_every_error_pickles_with_its_data(err: errors.ResumableError) -> None:
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err)
    assert str(copy) == str(err)
    assert copy.__dict__ == err.__dict__


@pytest.mark.parametrize("err", every_error(), ids=lambda e: type(e).__name__)
def test_no_error_message_shows_credentials(err: errors.ResumableError) -> None:
    text = f"{err} {err!r} {err.url}"
    assert "hunter2" not in text
    assert "SECRET" not in text


def test_message_names_expected_actual_and_what_was_kept() -> None:
    err = errors.ChecksumMismatch(url="https://h/f", algorithm="md5", expected="ab", actual="cd")
    err.kept = "nothing was kept"
    assert str(err) == "md5 mismatch: expected ab, got cd [https://h/f]; nothing was kept"
    assert (err.expected, err.actual, err.algorithm) == ("ab", "cd", "md5")


def test_redact_signed_urls_keeps_everything_but_the_secrets() -> None:
    out = redact(SIGNED)
    for secret in ("AKIAEXAMPLE", "deadbeefcafe", "SESSIONTOKEN"):
        assert secret not in out
    assert out.startswith("https://bucket.s3.amazonaws.com/shard-000001.tar?")
    assert "X-Amz-Expires=3600" in out
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in out


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://acct.blob.core.windows.net/c/b?sv=2024&sp=r&sig=SAS%2Bsig", "SAS"),
        ("https://storage.googleapis.com/b/o?X-Goog-Signature=GOOGSIG&X-Goog-Date=1", "GOOGSIG"),
        ("https://alice:pa55word@example.org/data.tar", "pa55word"),
        ("https://example.org/data.tar?token=ghp_abc&page=2", "ghp_abc"),
        ("https://example.org/data.tar?api_key=K3Y", "K3Y"),
    ],
)
def test_redact_removes_each_kind_of_secret(url: str, secret: str) -> None:
    assert secret not in redact(url)
    assert "REDACTED" in redact(url)


def test_redact_leaves_plain_urls_alone() -> None:
    url = "https://example.org/shard-{000000..000140}.tar?download=1"
    assert redact(url) == url


def test_redact_cleans_urls_that_do_not_even_parse() -> None:
    out = redact("http://user:pw@[::1/x?token=SECRET&page=2")
    assert "SECRET" not in out
    assert "pw" not in out
    assert "page=2" in out


def test_identity_ignores_signing_parameters_but_not_the_object() -> None:
    from resumable.urls import identity

    monday = "https://b.s3.amazonaws.com/k.tar?versionId=3&X-Amz-Date=20261120T000000Z&X-Amz-Signature=aa"
    tuesday = "https://b.s3.amazonaws.com/k.tar?versionId=3&X-Amz-Date=20261121T000000Z&X-Amz-Signature=bb"
    assert identity(monday) == identity(tuesday)
    assert "Signature" not in identity(monday)
    assert identity(monday) != identity(monday.replace("versionId=3", "versionId=4"))
    assert identity(monday) != identity(monday.replace("k.tar", "j.tar"))
    sas = "https://a.blob.core.windows.net/c/b.tar?sv=2024-01-01&se=2026-11-22&sp=r&sig=XYZ"
    assert identity(sas) == "https://a.blob.core.windows.net/c/b.tar"


def test_identity_never_keeps_secrets() -> None:
    from resumable.urls import identity

    url = "https://u:pw@h/f.tar?api_key=K3Y&access_token=T0K&password=P4SS&secret=S3C&key=KK"
    out = identity(url)
    for secret in ("pw", "K3Y", "T0K", "P4SS", "S3C", "KK"):
        assert secret not in out


def test_identity_of_reissued_sa1b_links_is_stable() -> None:
    from resumable.urls import identity

    old = "https://scontent.xx.fbcdn.net/m1/v/t6/sa_000020.tar?ccb=10-5&oh=00_AAA&oe=65A1&_nc_sid=0"
    new = "https://scontent.xx.fbcdn.net/m1/v/t6/sa_000020.tar?ccb=10-5&oh=00_BBB&oe=65B2&_nc_sid=0"
    assert identity(old) == identity(new)
