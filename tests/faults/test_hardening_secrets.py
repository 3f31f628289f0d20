"""Issue 15, items 5 and 13: secrets never reach an output channel; bad headers are typed errors.

Against real loopback servers (the FaultServer records every request's headers; nginx). Each
test searches every channel a secret could leave by: the exception's ``str``/``repr`` and its
whole chain (``__cause__``/``__context__``, as a traceback prints it), log records at DEBUG
(``resumable``'s retry lines, ``urllib3``'s request lines), progress events, the CLI's stdout
and stderr (a real subprocess), and the bytes of every file left in the destination directory
(sidecars, the ledger).
"""

from __future__ import annotations

import http.client
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import Fault, FaultServer, NginxServer, make_data
from servers.stores import S3Store

import resumable
from resumable import InvalidArgument, Item, ResumableDownloader, RetryPolicy, Timeouts
from resumable._secrets import check_headers
from resumable.urls import redact, redact_text

TOKEN = "SECRETTOKEN0123"
PASSWORD = "URLPASSWORD4567"
SIGNATURE = "PRESIGNEDSIG89AB"


def fast(**kwargs: object) -> ResumableDownloader:
    policy = RetryPolicy(attempts=2, backoff=0.0, jitter=0, sleep=lambda s: None)
    return ResumableDownloader(
        retry=policy,
        timeouts=Timeouts(connect=5, stall=5),
        **kwargs,  # type: ignore[arg-type]
    )


def chain(error: BaseException) -> Iterable[BaseException]:
    """``error`` and everything chained under it, as a traceback would print them."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]


def assert_clean(text: str, where: str, *secrets: str) -> None:
    for secret in secrets or (TOKEN, PASSWORD, SIGNATURE):
        assert secret not in text, f"{secret!r} found in {where}: {text[:2000]}"


def assert_error_clean(error: BaseException, *secrets: str) -> None:
    for link in chain(error):
        assert_clean(str(link), f"str({type(link).__name__})", *secrets)
        assert_clean(repr(link), f"repr({type(link).__name__})", *secrets)
    assert_clean("".join(traceback.format_exception(error)), "the traceback", *secrets)


def assert_dir_clean(folder: Path, *secrets: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets or (TOKEN, PASSWORD, SIGNATURE):
                assert secret.encode() not in data, f"{secret!r} found in {path}"


def run_cli(
    *args: str | os.PathLike[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resumable", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- finding 5: a header value that cannot be sent -------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (f"Bearer {TOKEN}\n", "newline"),  # read from a file without .strip()
        (f"Bearer {TOKEN}\u20ac", "latin-1"),  # a non-latin-1 character
        (f"Bearer {TOKEN}\r\nX-Injected: 1", "newline"),
        (f"Bearer {TOKEN[:5]}\x00{TOKEN[5:]}", "NUL"),  # http.client sent this one as it was
    ],
    ids=["trailing-newline", "non-latin-1", "crlf-injection", "nul"],
)
@pytest.mark.parametrize("engine", ["plain", "requests"])
def test_an_unsendable_header_value_is_a_typed_error_before_any_traffic(
    fault_server: FaultServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    value: str,
    why: str,
    engine: str,
) -> None:
    """Finding 5: was a raw ValueError/UnicodeEncodeError quoting the token (plain http.client
    path), or a ConnectionFailed retried until RetriesExhausted with the token in the message
    and in the INFO retry log (requests path, taken for a URL with credentials)."""
    caplog.set_level(logging.DEBUG)
    url = fault_server.add("f.bin", make_data(5000))
    if engine == "requests":
        url = url.replace("http://", f"http://user:{PASSWORD}@")
    events: list[resumable.ProgressEvent] = []
    with pytest.raises(InvalidArgument) as caught, fast(headers={"Authorization": value}) as d:
        d.download(url, tmp_path / "f.bin", progress=events.append)
    error = caught.value
    assert "Authorization" in str(error)
    assert why in str(error)
    assert "nothing was fetched" in str(error)
    assert_error_clean(error, TOKEN, TOKEN[5:], PASSWORD)
    assert fault_server.log == []  # refused before any request
    assert_clean(caplog.text, "the log", TOKEN, TOKEN[5:], PASSWORD)
    assert_clean(repr(events), "progress events", TOKEN, PASSWORD)
    assert list(tmp_path.iterdir()) == []


def test_a_trailing_newline_is_named_as_the_likely_mistake() -> None:
    with pytest.raises(InvalidArgument, match="ends with a newline") as caught:
        ResumableDownloader(headers={"X-Api-Key": f"{TOKEN}\n"})
    assert "X-Api-Key" in str(caught.value)
    assert_error_clean(caught.value, TOKEN)


@pytest.mark.parametrize(
    "name",
    ["Authorization:", "X Api Key", "X-Tök", "", "X-Key\n", 7],
    ids=["colon", "space", "non-ascii", "empty", "newline", "not-a-str"],
)
def test_a_header_name_that_is_not_an_rfc_9110_token_is_refused(name: object) -> None:
    with pytest.raises(InvalidArgument, match="header name") as caught:
        ResumableDownloader(headers={name: TOKEN})  # type: ignore[dict-item]
    assert_error_clean(caught.value, TOKEN)


def test_a_header_value_that_is_not_a_string_is_refused_without_showing_it() -> None:
    with pytest.raises(InvalidArgument, match="X-Api-Key") as caught:
        ResumableDownloader(headers={"X-Api-Key": TOKEN.encode()})  # type: ignore[dict-item]
    assert_error_clean(caught.value, TOKEN)


def test_good_headers_are_sent_as_given(fault_server: FaultServer, tmp_path: Path) -> None:
    """The control: a valid header (tab, latin-1 and trailing spaces are legal) is sent."""
    url = fault_server.add("f.bin", make_data(5000))
    value = f"Bearer {TOKEN}\tcaf\u00e9"
    with fast(headers={"Authorization": value, "X-Empty": ""}) as d:
        d.download(url, tmp_path / "f.bin")
    sent = [r.header("Authorization") for r in fault_server.log]
    assert sent
    # http.server decodes header bytes as latin-1, as they were sent.
    assert all(v == value for v in sent), sent


# -- finding 13: the CLI echoes secrets --------------------------------------------------------


def test_cli_header_without_a_colon_does_not_echo_it(tmp_path: Path) -> None:
    """Finding 13: was ``a header is 'Name: value', got 'Authorization Bearer SECRET...'``."""
    proc = run_cli(
        "-H", f"Authorization Bearer {TOKEN}", "http://127.0.0.1:9/f.bin", "-d", tmp_path
    )
    assert proc.returncode == 2, proc
    assert "Name: value" in proc.stderr
    assert_clean(proc.stdout + proc.stderr, "CLI output", TOKEN)


def test_cli_header_with_a_bad_value_is_a_usage_error_without_the_value(tmp_path: Path) -> None:
    proc = run_cli("-H", f"X-Api-Key: {TOKEN}\x01", "http://127.0.0.1:9/f.bin", "-d", tmp_path)
    assert proc.returncode == 2, proc
    assert "X-Api-Key" in proc.stderr
    assert_clean(proc.stdout + proc.stderr, "CLI output", TOKEN)


def test_cli_links_file_with_a_bad_line_does_not_echo_url_credentials(tmp_path: Path) -> None:
    """Finding 13: the malformed line was printed with the password in it."""
    links = tmp_path / "links.txt"
    links.write_text(
        "a.bin\thttp://127.0.0.1:9/a.bin\n"
        f"b.bin https://user:{PASSWORD}@127.0.0.1:9/b.bin?X-Amz-Signature={SIGNATURE} extra\n"
    )
    proc = run_cli("-i", links, "-d", tmp_path / "out")
    assert proc.returncode == 2, proc
    assert "line 2" in proc.stderr
    assert_clean(proc.stdout + proc.stderr, "CLI output", PASSWORD, SIGNATURE)


def test_cli_password_with_an_at_sign_is_hidden_whole(tmp_path: Path) -> None:
    """A password holding a raw ``@`` (``user:p@ss@host``): all of it is hidden, not the part
    after the first ``@``."""
    secret = f"{PASSWORD[:6]}@{PASSWORD[6:]}"
    links = tmp_path / "links.txt"
    links.write_text(f"b.bin https://user:{secret}@127.0.0.1:9/b.bin extra\n")
    proc = run_cli("-i", links, "-d", tmp_path / "out")
    assert proc.returncode == 2, proc
    assert_clean(proc.stdout + proc.stderr, "CLI output", PASSWORD[6:], PASSWORD[:6])


def test_cli_a_header_given_as_a_url_is_not_echoed(tmp_path: Path) -> None:
    """``resumable 'Authorization: Bearer X' URL`` (-H forgotten): not echoed as 'not a URL'."""
    proc = run_cli(f"X-Api-Key: {TOKEN}", "http://127.0.0.1:9/f.bin", "-d", tmp_path)
    assert proc.returncode == 2, proc
    assert "not a URL" in proc.stderr
    assert_clean(proc.stdout + proc.stderr, "CLI output", TOKEN)


def test_cli_unknown_argument_does_not_echo_url_credentials(tmp_path: Path) -> None:
    """argparse quotes the arguments it could not use: here a second URL after an option
    (a ``nargs="*"`` positional is taken once), and an unknown option."""
    for args in (
        ("http://127.0.0.1:9/a.bin", "-d", tmp_path, f"https://user:{PASSWORD}@127.0.0.1:9/f"),
        ("--no-such-option", f"--x=https://user:{PASSWORD}@127.0.0.1:9/f", "http://h/a"),
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc
        assert "unrecognized arguments" in proc.stderr
        assert_clean(proc.stdout + proc.stderr, "CLI output", PASSWORD)


def test_cli_failures_never_show_header_values_or_url_credentials(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A real batch through the CLI, -v (INFO retry lines): a 503 then a cut, a 404 and a 403,
    all with a password and a signature in the URL and a token in three headers."""
    fault_server.add("ok.bin", make_data(200_000))
    fault_server.add("denied.bin", make_data(1000))
    fault_server.plan("ok.bin", Fault.status(503, retry_after=0), Fault.cut(after=100_000))
    fault_server.plan("denied.bin", Fault.status(403))
    urls = [
        fault_server.url_for(name).replace("http://", f"http://user:{PASSWORD}@")
        + f"?X-Amz-Signature={SIGNATURE}"
        for name in ("ok.bin", "gone.bin", "denied.bin")
    ]
    out = tmp_path / "out"
    proc = run_cli(
        "-v",
        "--progress",
        "lines",
        "--retries",
        "2",
        "-H",
        f"Authorization: Bearer {TOKEN}",
        "-H",
        f"Cookie: session={TOKEN}",
        "-H",
        f"X-Api-Key: {TOKEN}",
        *urls,
        "-d",
        out,
    )
    assert proc.returncode == 1, proc
    assert "retrying" in proc.stderr  # the INFO retry lines were printed
    assert "gone.bin" in proc.stderr
    assert "denied.bin" in proc.stderr
    assert (out / "ok.bin").read_bytes() == fault_server.content("ok.bin")
    assert all(r.header("X-Api-Key") == TOKEN for r in fault_server.log)  # really sent
    assert_clean(proc.stdout + proc.stderr, "CLI output")
    assert_dir_clean(out)


# -- further cases of the family -----------------------------------------------------------------


def test_url_userinfo_never_reaches_a_404_or_the_batch_summary_or_the_ledger(
    nginx: NginxServer, unique_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    nginx.add(f"{unique_prefix}/ok.bin", make_data(3000))
    base = nginx.url_for(f"{unique_prefix}/")
    with_password = base.replace("http://", f"http://user:{PASSWORD}@")
    token_as_user = base.replace("http://", f"http://{TOKEN}@")  # GitHub's token@host style
    events: list[resumable.ProgressEvent] = []
    with fast() as d:
        result = d.download_many(
            [with_password + "ok.bin", with_password + "missing.bin", token_as_user + "gone.bin"],
            tmp_path,
            progress=events.append,
        )
    assert len(result.ok) == 1
    assert len(result.failed) == 2
    for _, error in result.failed:
        assert isinstance(error, resumable.SourceNotFound)
        assert_error_clean(error, TOKEN, PASSWORD)
    with pytest.raises(resumable.BatchError) as batch_error:
        result.raise_for_errors()
    assert_error_clean(batch_error.value, TOKEN, PASSWORD)
    assert_clean(result.summary + repr(result) + str(result), "BatchResult", TOKEN, PASSWORD)
    assert_clean(repr(events), "progress events", TOKEN, PASSWORD)
    assert_clean(caplog.text, "the log", TOKEN, PASSWORD)
    assert_dir_clean(tmp_path, TOKEN, PASSWORD)  # the ledger holds the 404s


def test_a_presigned_signature_never_reaches_the_info_retry_log_or_the_sidecar(
    fault_server: FaultServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fault_server.add("f.bin", make_data(300_000))
    fault_server.plan(
        "f.bin", Fault.cut(after=70_000), Fault.status(503, retry_after=0), Fault.status(403)
    )
    url = (
        fault_server.url_for("f.bin") + f"?X-Amz-Date=20260101T000000Z&X-Amz-Signature={SIGNATURE}"
    )
    events: list[resumable.ProgressEvent] = []
    with fast() as d, pytest.raises(resumable.AccessDenied) as caught:
        d.download(url, tmp_path / "f.bin", progress=events.append)
    assert any(SIGNATURE in r.path for r in fault_server.log)  # really sent
    retries = [r for r in caplog.records if r.name == "resumable" and "retrying" in r.getMessage()]
    assert retries
    assert all(r.levelno == logging.INFO for r in retries)
    assert_error_clean(caught.value, SIGNATURE)
    assert_clean(caplog.text, "the log", SIGNATURE)
    assert_clean(repr(events), "progress events", SIGNATURE)
    assert (tmp_path / "f.bin.partial.json").exists()
    assert_dir_clean(tmp_path, SIGNATURE)


def test_a_redirect_to_another_host_sends_no_secret_header(
    fault_server: FaultServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """requests drops ``Authorization`` on a redirect to another host; ``Cookie``,
    ``Proxy-Authorization`` and secret-named headers (``X-Api-Key``, ``X-Auth-Token``) given
    with ``headers=`` must not follow it either (as curl drops Cookie). Both engines: the plain
    one hands redirects to requests."""
    secrets = {
        "Authorization": f"Bearer {TOKEN}",
        "Proxy-Authorization": f"Basic {TOKEN}",
        "Cookie": f"session={TOKEN}",
        "X-Api-Key": TOKEN,
        "X-Auth-Token": TOKEN,
    }
    caplog.set_level(logging.DEBUG)
    with FaultServer() as other:
        other.add("f.bin", make_data(2000))
        target = f"http://localhost:{other.port}/f.bin?token={SIGNATURE}"
        url = fault_server.add_redirect("f.bin", target)
        with fast(headers={**secrets, "X-Trace": "kept-on-redirect"}, connections=1) as d:
            d.download(url, tmp_path / "f.bin")
        assert (tmp_path / "f.bin").read_bytes() == other.content("f.bin")
        first = [r for r in fault_server.log if r.method == "GET"]
        assert first
        assert all(r.header("X-Api-Key") == TOKEN for r in first)
        followed = other.requests_for("f.bin")
        assert followed
        for record in followed:
            for name in secrets:
                assert record.header(name) is None, (name, record.headers)
            assert record.header("X-Trace") == "kept-on-redirect"
        assert any(SIGNATURE in r.path for r in followed)  # the Location's token was used
    assert any("/f.bin?token=" in r.getMessage() for r in caplog.records)  # urllib3's line
    assert_clean(caplog.text, "the log", TOKEN, SIGNATURE)
    assert_dir_clean(tmp_path, TOKEN, SIGNATURE)


def test_reprs_of_the_downloader_and_its_settings_show_no_header_value() -> None:
    d = ResumableDownloader(
        headers={"Authorization": f"Bearer {TOKEN}", "X-Other": TOKEN},
        storage_options={"s3": {"secret": TOKEN, "key": TOKEN}},
    )
    texts = [repr(d), str(d), repr(d.engine.source_config), repr(d.settings), repr(d.__dict__)]
    for text in texts:
        assert_clean(text, text[:80], TOKEN)


def test_a_secret_header_value_is_scrubbed_from_any_text_that_leaves_the_library() -> None:
    """The one redaction function knows the values given in ``headers=``: wherever one would
    appear (a third party's message, a message built from a server's words), it is hidden."""
    ResumableDownloader(headers={"X-Custom": TOKEN, "Cookie": "sid=abcd"})
    assert TOKEN not in redact_text(f"server said: bad key {TOKEN}!")
    assert "sid=abcd" not in redact_text("sent Cookie sid=abcd to the server")
    error = resumable.RemoteError(f"unexpected answer mentioning {TOKEN}")
    assert_error_clean(error, TOKEN)
    assert "REDACTED" in str(error)


def test_redact_hides_a_password_holding_an_at_sign() -> None:
    assert PASSWORD[6:] not in redact(f"https://u:{PASSWORD[:6]}@{PASSWORD[6:]}@h/x")
    assert PASSWORD[6:] not in redact_text(f"see https://u:{PASSWORD[:6]}@{PASSWORD[6:]}@h/x now")


def test_a_url_given_as_bytes_does_not_echo_its_password() -> None:
    with pytest.raises(InvalidArgument) as caught:
        ResumableDownloader().download(
            f"http://u:{PASSWORD}@127.0.0.1:9/f.bin".encode(),  # type: ignore[arg-type]
            "f.bin",
        )
    assert_error_clean(caught.value, PASSWORD)


def test_item_with_credentials_in_a_batch_summary(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A failed item listed by BatchResult and the CLI: the raw Item is the caller's, the error
    and the summary are ours and clean."""
    url = fault_server.url_for("missing.bin").replace("http://", f"http://u:{PASSWORD}@")
    with fast() as d:
        result = d.download_many([Item(url)], tmp_path)
    assert_clean(result.summary, "summary", PASSWORD)
    assert_error_clean(result.failed[0][1], PASSWORD)


def test_s3_credentials_never_reach_botocores_debug_log_or_an_error(
    s3_store: S3Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore logs each signed request at DEBUG: the headers (``X-Amz-Security-Token``,
    ``Authorization: AWS4-HMAC-SHA256 Credential=<key id>/...``) and the canonical request.
    The storage options' credentials are hidden there, and in errors, like header values."""
    caplog.set_level(logging.DEBUG)
    key_id, session = "AKIASECRETKEYID01", "SESSIONTOKEN0SECRET"
    url = s3_store.put("f.bin", make_data(3000))
    options = {"s3": {**s3_store.storage_options()["s3"], "key": key_id, "token": session}}
    with fast(storage_options=options) as d:
        d.download(url, tmp_path / "f.bin")
        with pytest.raises(resumable.SourceNotFound) as caught:
            d.download(url + ".missing", tmp_path / "g.bin")
    assert (tmp_path / "f.bin").read_bytes() == make_data(3000)
    assert any(r.name.startswith("botocore") for r in caplog.records)  # botocore did log
    assert_error_clean(caught.value, key_id, session)
    assert_clean(caplog.text, "the log", key_id, session)
    assert_dir_clean(tmp_path, key_id, session)


def test_a_traceback_logged_by_resumable_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """``log.warning(..., exc_info=True)`` prints the exception's text: a third party's error
    may quote a header value or a signed URL."""
    ResumableDownloader(headers={"X-Api-Key": TOKEN})
    caplog.set_level(logging.DEBUG)
    try:
        raise ValueError(f"bad header {TOKEN} for http://u:{PASSWORD}@h/x?sig={SIGNATURE}")
    except ValueError:
        logging.getLogger("resumable").warning("a callback failed", exc_info=True)
    assert "ValueError: bad header REDACTED" in caplog.text
    assert_clean(caplog.text, "the log")


@pytest.mark.parametrize(
    "param", ["auth_token", "client_secret", "access_key_id", "hdnts", "__token__", "api_token"]
)
def test_credential_query_parameters_beyond_the_signed_url_ones_are_hidden(
    fault_server: FaultServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, param: str
) -> None:
    """A 404 for a URL whose credential is in a query parameter named like one: the message,
    urllib3's DEBUG request line (through requests: the URL has a user part) and the ledger."""
    caplog.set_level(logging.DEBUG)
    url = fault_server.url_for("missing.bin").replace("http://", "http://user@")
    url += f"?part=1&{param}={SIGNATURE}"
    with fast() as d:
        result = d.download_many([url], tmp_path)
    assert any(SIGNATURE in r.path for r in fault_server.log)  # really sent
    error = result.failed[0][1]
    assert isinstance(error, resumable.SourceNotFound)
    assert "part=1" in str(error)  # the rest of the URL is kept
    assert_error_clean(error, SIGNATURE)
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    assert_clean(caplog.text, "the log", SIGNATURE)
    assert_dir_clean(tmp_path, SIGNATURE)


def test_a_callbacks_error_quoting_a_secret_never_reaches_the_ledger(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The ledger records each failure's text; a progress callback's own exception (not ours,
    raised as it is) may quote anything."""
    url = fault_server.add("f.bin", make_data(5000))

    def progress(event: resumable.ProgressEvent) -> None:
        raise RuntimeError(f"callback saw http://u:{PASSWORD}@h/x?sig={SIGNATURE} and {TOKEN}")

    with fast(headers={"X-Api-Key": TOKEN}) as d:
        result = d.download_many([url], tmp_path, progress=progress)
    assert len(result.failed) == 1
    # Every file under .resumable/: the ledger, and the claims with their outcome records.
    ledger = [p for p in (tmp_path / ".resumable").rglob("*") if p.is_file()]
    assert ledger
    assert b"callback saw" in b"".join(p.read_bytes() for p in ledger)  # the error was recorded
    assert_dir_clean(tmp_path)
    with pytest.raises(resumable.BatchError) as caught:
        result.raise_for_errors()
    assert_clean(str(caught.value) + repr(caught.value), "BatchError")


def test_cli_an_input_error_never_quotes_a_header_value(tmp_path: Path) -> None:
    """The -H values are known before the inputs are read: a links-file line holding the same
    token (pasted in the wrong file) is shown with it hidden."""
    links = tmp_path / "links.txt"
    links.write_text(f"a.bin {TOKEN} extra\n")
    proc = run_cli("-H", f"X-Api-Key: {TOKEN}", "-i", links, "-d", tmp_path / "out")
    assert proc.returncode == 2, proc
    assert "line 1" in proc.stderr
    assert_clean(proc.stdout + proc.stderr, "CLI output", TOKEN)


def test_a_token_in_the_url_fragment_never_reaches_a_message_or_the_log(
    fault_server: FaultServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """OAuth's implicit flow hands out ``...#access_token=<token>``: the fragment is not sent,
    but the URL as given is what errors and logs show."""
    caplog.set_level(logging.DEBUG)
    fault_server.add("f.bin", make_data(300_000))
    fault_server.plan("f.bin", Fault.cut(after=50_000), Fault.status(404))
    url = fault_server.url_for("f.bin") + f"#access_token={TOKEN}&state=7"
    with fast() as d, pytest.raises(resumable.SourceNotFound) as caught:
        d.download(url, tmp_path / "f.bin")
    assert all(TOKEN not in r.path for r in fault_server.log)  # (a fragment is never sent)
    assert "state=7" in str(caught.value)
    assert_error_clean(caught.value, TOKEN)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert_clean(caplog.text, "the log", TOKEN)
    assert_dir_clean(tmp_path, TOKEN)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(min_size=0, max_size=12),
    value=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20),
)
def test_what_check_headers_accepts_both_engines_send_and_it_refuses_quietly(
    name: str, value: str
) -> None:
    """Any name and value: accepted only if http.client (the plain engine; urllib3 sends
    through it too) and requests both take it as it is; refused with an InvalidArgument
    that never quotes the value otherwise."""
    secret = f"Q{value}Z"  # a value's text, told apart from the message's own words
    try:
        checked = check_headers({name: secret})
    except InvalidArgument as exc:
        refused: InvalidArgument | None = exc
    else:
        refused = None
    if refused is not None:
        assert secret not in str(refused) + repr(refused)
        return
    assert checked == {name: secret}
    requests.utils.check_header_validity((name, secret))
    conn = http.client.HTTPConnection("127.0.0.1", 9)
    conn.putrequest("GET", "/", skip_host=True, skip_accept_encoding=True)
    conn.putheader(name, secret)  # raises on what the plain engine cannot send
    conn.close()
