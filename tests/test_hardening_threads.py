"""Hardening (issue 15, items 1 and 7): no thread dies silently, no wait outlives what it waits
for, and a failed item's stored error is light.

Every hang test runs the batch in a child process with a timeout, so a hang fails the test
instead of the session. The full disk is real: a tiny tmpfs mounted over ``dest/.resumable``
in a private mount namespace (``unshare``), or else a file size limit (``RLIMIT_FSIZE``) that
the ledger's WAL passes while the small downloaded files stay under it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import types
from pathlib import Path
from typing import Any

import pytest
from archives import tar_bytes
from servers import FaultServer, make_data
from servers.ports import free_port

from resumable import (
    BatchError,
    LocalError,
    ResumableDownloader,
    ResumableError,
    RetryPolicy,
)
from resumable.progress import ProgressEvent

ROOT = Path(__file__).resolve().parent.parent
HANG = 90  # seconds: far more than any of these batches needs, even on a loaded machine

# The child: runs one batch against the parent's server and prints what it returned.
CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys, hashlib
    from pathlib import Path
    args = json.loads(sys.argv[1])
    if args["fsize"]:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (args["fsize"], args["fsize"]))
    from resumable import ResumableDownloader, RetryPolicy
    from resumable.extract import Untar
    d = ResumableDownloader(workers=4, retry=RetryPolicy(attempts=2, backoff=0.01))
    process = Untar(into="out") if args["untar"] else None
    result = d.download_many(args["urls"], args["dest"], sync=args["sync"], process=process)
    try:
        result.raise_for_errors()
        message = ""
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
    ok = {str(r.path): hashlib.sha256(r.path.read_bytes()).hexdigest() for r in result.ok
          if r.path.exists()}
    print(json.dumps({
        "ok": ok,
        "failed": [type(e).__name__ for _, e in result.failed],
        "messages": [str(e) for _, e in result.failed][:5],
        "raised": message,
    }))
    """
)


def _can_mount() -> bool:
    """Whether a private mount namespace with a tmpfs is available (root, or user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


def run_child(args: dict[str, Any], *, mount: Path | None = None, size: str = "") -> Any:
    """Run :data:`CHILD` (under a tmpfs of ``size`` at ``mount``, if given); a hang fails."""
    command = [sys.executable, "-c", CHILD, json.dumps(args)]
    if mount is not None:
        mount.mkdir(parents=True, exist_ok=True)
        script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
        command = ["unshare", "-Urm", "sh", "-c", script, "sh", size, str(mount), *command]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=HANG, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the batch hung (no answer after {HANG}s): {exc.stderr!r}")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _items(server: FaultServer, count: int, *, tar: bool = False) -> dict[str, bytes]:
    files = {}
    for i in range(count):
        data = make_data(700, seed=i)
        if tar:
            data = tar_bytes({f"m{i}.txt": data})
        name = f"f{i:04d}.{'tar' if tar else 'bin'}"
        server.add(name, data)
        files[name] = data
    return files


FULL_DISK = [
    pytest.param("tmpfs", id="tmpfs"),
    pytest.param("fsize", id="rlimit-fsize"),
]


@pytest.mark.parametrize("disk", FULL_DISK)
@pytest.mark.parametrize("mode", ["sync", "untar"])
def test_a_full_disk_under_the_ledger_fails_the_batch_instead_of_hanging(
    fault_server: FaultServer, tmp_path: Path, disk: str, mode: str
) -> None:
    """Issue 15 item 1: the ledger's writer died on ``database or disk is full`` and the batch
    waited for it forever. Now it returns, items fail with a LocalError naming the ledger, and
    every file it reports as downloaded is the right one."""
    if disk == "tmpfs" and not _can_mount():
        pytest.skip("no private mount namespace here (unshare -Urm)")
    files = _items(fault_server, 300, tar=mode == "untar")
    dest = tmp_path / "dest"
    args = {
        "urls": [f"{fault_server.url}/f{{0000..0299}}.{'tar' if mode == 'untar' else 'bin'}"],
        "dest": str(dest),
        "sync": mode == "sync",
        "untar": mode == "untar",
        "fsize": 96 * 1024 if disk == "fsize" else 0,
    }
    if disk == "tmpfs":
        out = run_child(args, mount=dest / ".resumable", size="96k")
    else:
        out = run_child(args)
    assert "LocalError" in out["failed"], out
    assert len(out["ok"]) + len(out["failed"]) >= len(files), out  # every item has an outcome
    assert out["raised"].startswith("BatchError"), out
    ledger_errors = [m for m in out["messages"] if "ledger" in m]
    assert ledger_errors, out
    for path, digest in out["ok"].items():  # what was reported downloaded is correct
        name = Path(path).name
        assert digest == hashlib.sha256(files[name]).hexdigest(), name
    requested = {r.path for r in fault_server.log if r.method == "GET"}
    assert requested, "no download happened: the fault was not the ledger's"


# -- item 7: stored errors are light -----------------------------------------------------------

FAILING = 2000


def test_failed_items_keep_light_errors(nginx: Any, unique_prefix: str, tmp_path: Path) -> None:
    """Issue 15 item 7: each stored error kept its traceback (frames, transfers, responses):
    ~10 KiB per failed item. Now 2,000 404s retain well under 1.5 KiB each, no error has a
    traceback or a live object behind it, and raise_for_errors() still says what happened."""
    d = ResumableDownloader(workers=8)
    warm = d.download_many([nginx.url_for(f"{unique_prefix}/warm-{i}") for i in range(20)], tmp_path)
    assert len(warm.failed) == 20
    urls = [f"{nginx.url}/{unique_prefix}/gone-{i:05d}?token=SECRET{i}" for i in range(FAILING)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = d.download_many(urls, tmp_path)
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(result.failed) == FAILING
    per_item = retained / FAILING
    assert per_item < 1536, f"{per_item:.0f} bytes retained per failed item"
    for _, error in result.failed:
        assert isinstance(error, ResumableError)
        assert error.__traceback__ is None
        cause = error.__cause__ or error.__context__
        assert cause is None or cause.__traceback__ is None
        live = [o for o in gc.get_referents(error) if isinstance(o, types.FrameType | types.TracebackType)]
        assert not live
    with pytest.raises(BatchError) as raised:
        result.raise_for_errors()
    text = str(raised.value)
    assert f"{FAILING} of {FAILING} items failed ({FAILING} SourceNotFound)" in text
    assert "gone-00000" in text and "SECRET" not in text


def test_a_stored_error_tells_its_cause_as_text(tmp_path: Path) -> None:
    """A light error keeps what caused it (type and message, as text) for raise_for_errors."""
    port = free_port()  # nobody listens: the connection is refused
    d = ResumableDownloader(retry=RetryPolicy(attempts=1, backoff=0.01))
    result = d.download_many([f"http://127.0.0.1:{port}/a.bin?sig=SECRET"], tmp_path)
    [(_, error)] = result.failed
    assert error.__traceback__ is None and error.__context__ is None
    assert error.__cause__ is not None and error.__cause__.__traceback__ is None
    with pytest.raises(BatchError) as raised:
        result.raise_for_errors()
    text = str(raised.value)
    assert "caused by" in text and "SECRET" not in text, text
