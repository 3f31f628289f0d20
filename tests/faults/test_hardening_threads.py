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
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
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
    ConnectionFailed,
    LocalError,
    ResumableDownloader,
    ResumableError,
    RetryPolicy,
)
from resumable._light import Cause

ROOT = Path(__file__).resolve().parents[2]
HANG = int(
    os.environ.get("RESUMABLE_TEST_HANG", "90")
)  # seconds: far more than any of these batches needs, even on a loaded machine

# The child: runs one batch against the parent's server and prints what it returned.
CHILD = textwrap.dedent(
    """
    import json, resource, signal, subprocess, sys, hashlib, threading
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    args = json.loads(sys.argv[1])
    if args.get("fsize"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (args["fsize"], args["fsize"]))
    from resumable import ResumableDownloader, RetryPolicy
    from resumable.extract import Untar
    d = ResumableDownloader(workers=4, retry=RetryPolicy(attempts=2, backoff=0.01))
    process = None
    if args.get("untar"):
        process = Untar(into="out", stream=args.get("stream", False))
    seen = {"done": 0, "events": 0}
    lock = threading.Lock()
    def progress(event):
        with lock:
            seen["events"] += 1
            seen["done"] += event.kind.value == "done"
            done = seen["done"]
        if args.get("fill_after") and done >= args["fill_after"] and not seen.get("filled"):
            seen["filled"] = True  # another program fills the ledger's disk
            with open(Path(args["dest"]) / ".resumable" / "filler", "wb") as filler:
                try:
                    while True:
                        filler.write(bytes(65536))
                        filler.flush()
                except OSError:
                    pass
        kind = args.get("raise_on")
        if kind and event.kind.value == kind:
            raise {"SystemExit": SystemExit, "KeyboardInterrupt": KeyboardInterrupt}[
                args["raise"]]("raised by the progress callback")
    items = args["urls"]
    if args.get("items_raise_after") is not None:
        def generate(urls, after):
            yield from urls[:after]
            raise ValueError("the item generator broke")
        items = generate(items, args["items_raise_after"])
    executor = ThreadPoolExecutor(2) if args.get("executor") else None
    result = d.download_many(
        items, args["dest"], sync=args.get("sync", False), process=process, progress=progress,
        executor=executor,
    )
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
        "cancelled": result.cancelled,
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
    root = os.environ.get("RESUMABLE_CHILD_ROOT", str(ROOT))  # to run it against old code
    env = {"PYTHONPATH": root, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=HANG, env=env, cwd=root
        )
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
@pytest.mark.parametrize("mode", ["sync", "untar", "fanout"])
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
        "sync": mode != "untar",
        "untar": mode == "untar",
        "fsize": 96 * 1024 if disk == "fsize" else 0,
        "executor": mode == "fanout",  # the dispatcher records outcomes: it died there
    }
    if disk == "tmpfs":
        out = run_child(args, mount=dest / ".resumable", size="96k")
    else:
        out = run_child(args)
    _check_ledger_failure(out, files)


def _check_ledger_failure(out: dict[str, Any], files: dict[str, bytes]) -> None:
    """The batch returned: items failed with a LocalError naming the ledger, each item has an
    outcome, and every file reported downloaded holds the right bytes."""
    assert "LocalError" in out["failed"], out
    assert len(out["ok"]) + len(out["failed"]) >= len(files), out  # every item has an outcome
    assert out["raised"].startswith("BatchError"), out
    ledger_errors = [m for m in out["messages"] if "ledger" in m]
    assert ledger_errors, out
    for path, digest in out["ok"].items():  # what was reported downloaded is correct
        name = Path(path).name
        assert digest == hashlib.sha256(files[name]).hexdigest(), name


# -- more of the family: threads that died and waits that outlived them ------------------------


def _template(
    server: FaultServer, count: int, *, tar: bool = False
) -> tuple[str, dict[str, bytes]]:
    files = _items(server, count, tar=tar)
    return f"{server.url}/f{{0000..{count - 1:04d}}}.{'tar' if tar else 'bin'}", files


@pytest.mark.parametrize("executor", [False, True], ids=["local", "fanout"])
@pytest.mark.parametrize("raised", ["SystemExit", "KeyboardInterrupt"])
def test_a_callback_raising_a_base_exception_stops_the_batch_with_a_typed_error(
    fault_server: FaultServer, tmp_path: Path, executor: bool, raised: str
) -> None:
    """A progress callback raising SystemExit (not an Exception) killed the worker (or the
    fan-out dispatcher) that called it; with every worker dead the feeder waited for room in
    the queue forever. Now that item fails with Cancelled, the batch stops and returns."""
    template, _ = _template(fault_server, 200)
    args = {
        "urls": [template],
        "dest": str(tmp_path / "dest"),
        "raise_on": "started",
        "raise": raised,
        "executor": executor,
    }
    out = run_child(args)
    assert out["cancelled"] is True, out
    assert "Cancelled" in out["failed"], out
    assert any(raised in m for m in out["messages"]), out
    assert out["raised"].startswith("BatchError"), out


def test_items_that_raise_midway_end_as_a_typed_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The items iterable raised ValueError after 5 items: those 5 download, and the failure is
    an InvalidArgument naming what the iterable raised (it was the raw ValueError)."""
    _items(fault_server, 10)
    urls = [fault_server.url_for(f"f{i:04d}.bin") for i in range(10)]
    out = run_child({"urls": urls, "dest": str(tmp_path / "d"), "items_raise_after": 5})
    assert len(out["ok"]) == 5, out
    assert out["failed"] == ["InvalidArgument"], out
    assert "ValueError: the item generator broke" in out["messages"][0], out


def test_a_streaming_extraction_whose_callback_raises_stops_without_hanging(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Untar(stream=True): the tar parser runs on its own thread and follows the download; a
    callback raising SystemExit mid-download stops the item, the parser and the batch."""
    template, _ = _template(fault_server, 60, tar=True)
    args = {
        "urls": [template],
        "dest": str(tmp_path / "dest"),
        "untar": True,
        "stream": True,
        "raise_on": "progress",
        "raise": "SystemExit",
    }
    out = run_child(args)
    assert out["cancelled"] is True, out
    assert "Cancelled" in out["failed"], out


def test_a_ledger_disk_that_fills_up_mid_batch_fails_items_without_hanging(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Another program fills the ledger's file system after 20 files: the writer's next commit
    fails; the batch ends with LocalErrors naming the ledger, and no file is deleted by sync."""
    if not _can_mount():
        pytest.skip("no private mount namespace here (unshare -Urm)")
    template, files = _template(fault_server, 200)
    dest = tmp_path / "dest"
    args = {"urls": [template], "dest": str(dest), "sync": True, "fill_after": 20}
    out = run_child(args, mount=dest / ".resumable", size="4m")
    _check_ledger_failure(out, files)
    assert any("disk is full" in m for m in out["messages"]), out


# -- item 7: stored errors are light -----------------------------------------------------------

FAILING = 2000


def test_failed_items_keep_light_errors(nginx: Any, unique_prefix: str, tmp_path: Path) -> None:
    """Issue 15 item 7: each stored error kept its traceback (frames, transfers, responses):
    ~10 KiB per failed item. Now 2,000 404s retain well under 1.5 KiB each, no error has a
    traceback or a live object behind it, and raise_for_errors() still says what happened."""
    d = ResumableDownloader(workers=8)
    warm = d.download_many(
        [nginx.url_for(f"{unique_prefix}/warm-{i}") for i in range(20)], tmp_path
    )
    assert len(warm.failed) == 20
    urls = [f"{nginx.url}/{unique_prefix}/gone-{i:05d}?token=SECRET{i}" for i in range(FAILING)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = d.download_many(urls, tmp_path)
        gc.collect()
        with_result = tracemalloc.get_traced_memory()[0]
        failed = result.failed
        del result
        gc.collect()
        with_errors = tracemalloc.get_traced_memory()[0]
        del failed
        gc.collect()
        without = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # What the stored (item, error) pairs hold: freed when they are dropped.
    held = (with_errors - without) / FAILING
    assert held < 1536, f"{held:.0f} bytes held per failed item"
    # Everything the batch left behind, its result included (plus one-off growth of the
    # interpreter's tables, e.g. interned path names): was ~11 KiB per item.
    retained = (with_result - before) / FAILING
    assert retained < 4096, f"{retained:.0f} bytes retained per failed item"
    result = d.download_many(urls[:50], tmp_path)
    assert len(result.failed) == 50
    for _, error in result.failed:
        assert isinstance(error, ResumableError)
        assert error.__traceback__ is None
        cause = error.__cause__ or error.__context__
        assert cause is None or cause.__traceback__ is None
        live = [
            o
            for o in gc.get_referents(error)
            if isinstance(o, types.FrameType | types.TracebackType)
        ]
        assert not live
    with pytest.raises(BatchError) as raised:
        result.raise_for_errors()
    text = str(raised.value)
    assert "50 of 50 items failed (50 SourceNotFound)" in text
    assert "gone-00000" in text
    assert "SECRET" not in text


def test_a_stored_error_tells_its_cause_as_text(tmp_path: Path) -> None:
    """A light error keeps what caused it (type and message, as text) for raise_for_errors."""
    port = free_port()  # nobody listens: the connection is refused
    d = ResumableDownloader(retry=RetryPolicy(attempts=1, backoff=0.01))
    result = d.download_many([f"http://127.0.0.1:{port}/a.bin?sig=SECRET"], tmp_path)
    [(_, error)] = result.failed
    assert error.__traceback__ is None
    assert error.__context__ is None
    typed = error.__cause__  # ours stay typed objects (data only), without traceback
    assert isinstance(typed, ConnectionFailed)
    assert typed.__traceback__ is None
    assert isinstance(typed.__cause__, Cause)  # a third-party one becomes text
    assert str(typed.__cause__).startswith("ConnectionRefusedError: ")
    with pytest.raises(BatchError) as raised:
        result.raise_for_errors()
    text = str(raised.value)
    assert "(caused by ConnectionRefusedError: [Errno 111] Connection refused)" in text, text
    assert "SECRET" not in text, text


def test_a_failed_hash_thread_stops_the_download_at_once(tmp_path: Path) -> None:
    """The background hasher re-reads a partial's prefix on resume; when that fails (the file is
    shorter than its sidecar said: someone truncated it), it used to keep swallowing the rest of
    the download and tell only at the end. Now the next submit raises a LocalError at once, and
    no submit waits on a queue that nobody empties."""
    from resumable.verify import BackgroundHasher, Digests

    partial = tmp_path / "a.partial"
    partial.write_bytes(b"x" * 1000)
    hasher = BackgroundHasher(Digests(), depth=1)
    hasher.submit_file(str(partial), 5000)  # 4000 bytes are missing
    raised: list[BaseException] = []

    def feed() -> None:
        try:
            for _ in range(10_000):
                hasher.submit(b"y" * 1024)
        except LocalError as exc:
            raised.append(exc)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    feeder.join(timeout=30)
    assert raised, "the submits went on (or hung) after the hash had failed"
    assert "shorter than the 5000 bytes" in str(raised[0])
    with pytest.raises(OSError, match="shorter than the 5000 bytes"):
        hasher.finish()


def test_cancel_does_not_wait_for_items_that_block(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The items iterable blocks (a generator waiting for input that never comes): cancel()
    used to leave the job waiting for its feeder forever. Now wait() returns at once, with
    the files fetched so far."""
    _items(fault_server, 2)
    release = threading.Event()

    def items() -> Any:
        yield fault_server.url_for("f0000.bin")
        yield fault_server.url_for("f0001.bin")
        release.wait()  # a queue nobody fills

    d = ResumableDownloader(workers=2)
    job = d.start(items(), tmp_path)
    try:
        deadline = time.monotonic() + 30
        while len(job.status().in_flight) + job.status().downloaded < 2:
            assert time.monotonic() < deadline, job.status()
            time.sleep(0.05)
        job.cancel()
        result = job.wait(timeout=10)  # TimeoutError before the fix
    finally:
        release.set()
    assert result.cancelled
    assert len(result.ok) + len(result.failed) <= 2


def test_a_cancelled_fanout_does_not_wait_for_a_hung_worker(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The process pool's worker is frozen (SIGSTOP) mid-chunk and the job is cancelled: its
    chunk never comes back, and the executor never says so. The dispatcher waited for it
    forever; now it gives the chunk up after the timeouts (connect + stall + 5 s) with an
    ExecutorError, and wait() returns."""
    import multiprocessing
    import signal
    from concurrent.futures import ProcessPoolExecutor

    from servers import Fault

    from resumable import ExecutorError, Timeouts

    url = fault_server.add("big.bin", make_data(2_000_000, 4))
    fault_server.plan("big.bin", Fault.trickle(200_000))
    partial = tmp_path / "big.bin.partial"
    timeouts = Timeouts(connect=2, stall=2)
    pool = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"))
    frozen: list[int] = []
    try:
        with ResumableDownloader(workers=1, timeouts=timeouts, block_size=256 * 1024) as d:
            job = d.start([url], tmp_path, executor=pool)
            deadline = time.monotonic() + 30
            while not (partial.exists() and partial.stat().st_size > 0):
                assert time.monotonic() < deadline, "the download never started"
                time.sleep(0.02)
            frozen = list(pool._processes)  # type: ignore[attr-defined]
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
            job.cancel()
            result = job.wait(timeout=40)  # TimeoutError before the fix
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        pool.shutdown(wait=True, cancel_futures=True)
    assert result.cancelled
    assert [type(e) for _, e in result.failed] == [ExecutorError], result.failed
    assert "after the cancel" in str(result.failed[0][1])


THREADLESS = textwrap.dedent(
    """
    import json, resource, sys, threading, time
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    threading.stack_size(256 << 20)  # 64 workers would need 16 GiB of address space
    from resumable import ResumableDownloader, ResumableError
    d = ResumableDownloader(workers=64)
    def items():  # slow to start: the workers all wait for it
        time.sleep(2)
        yield sys.argv[1]
    try:
        d.download_many(items(), sys.argv[2])
        print(json.dumps(["no error"]))
    except ResumableError as exc:
        print(json.dumps([type(exc).__name__, str(exc), threading.active_count()]))
    """
)


def test_a_batch_that_cannot_start_its_threads_raises_a_typed_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The process cannot start 64 more threads (its address space is limited): start() raised
    a raw RuntimeError ("can't start new thread") and left the threads it had started
    running. Now it is a LocalError saying what to do, and those threads end."""
    url = fault_server.add("a.bin", b"x")
    command = [sys.executable, "-c", THREADLESS, url, str(tmp_path / "d")]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=HANG, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    kind, message, threads = json.loads(done.stdout.strip().splitlines()[-1])
    assert kind == "LocalError", message
    assert "use fewer workers" in message
    assert threads <= 2, f"{threads} threads still running"  # main, maybe the ledger's writer
