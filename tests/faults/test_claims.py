"""Processes that split a batch without talking (resumable.batch.claims), against a real nginx.

Each test starts real processes (``python -c SCRIPT``) on the same items and ``dest_dir`` and
reads nginx's access log to prove what crossed the network: how many GETs each file had and how
many bytes were sent. ``limit_rate`` makes each transfer take long enough for the processes to
overlap. Processes can pretend to be on other nodes (``FAKE_HOST``: then a dead process is known
only by its heartbeat stopping, as across machines) and can run with ``fcntl.flock``/``lockf``
turned into no-ops (``NO_LOCKS``), as on Lustre with ``localflock`` or NFS without a lock daemon.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from servers import make_data

from resumable import SourceNotFound
from resumable.batch.claims import Claim, Claims, Record, host_id, recorded_error

KiB = 1 << 10
MiB = 1 << 20

SCRIPT = r"""
import json, os, socket, sys, time
if os.environ.get("NO_LOCKS"):
    import fcntl
    fcntl.flock = lambda *args, **kwargs: None
    fcntl.lockf = lambda *args, **kwargs: None
if os.environ.get("FAKE_HOST"):
    socket.gethostname = lambda: os.environ["FAKE_HOST"]
import resumable
urls, dest, go = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.005)
start = time.monotonic()
with resumable.ResumableDownloader(workers=4, block_size=256 * 1024) as d:
    result = d.download_many(urls, dest)
print(json.dumps({
    "seconds": time.monotonic() - start,
    "ok": sorted(r.path.name for r in result.ok),
    "statuses": dict(__import__("collections").Counter(r.status for r in result.ok)),
    "failed": [[str(item), type(e).__name__, str(e)] for item, e in result.failed],
}))
"""


def start(urls: list[str], dest: Path, go: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(urls), str(dest), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, object]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def run_together(urls: list[str], dest: Path, count: int, **env: str) -> list[dict[str, object]]:
    """``count`` processes on the same batch, released at the same moment."""
    go = dest.with_name(dest.name + ".go")
    procs = [start(urls, dest, go, **env, **_host(env, i)) for i in range(count)]
    time.sleep(1.0)  # let every interpreter import resumable before the start
    go.touch()
    return [finish(proc) for proc in procs]


def _host(env: dict[str, str], i: int) -> dict[str, str]:
    return {"FAKE_HOST": f"node{i}"} if env.get("FAKE_HOST") else {}


def serve(nginx, prefix: str, count: int, size: int) -> tuple[list[str], dict[str, bytes]]:  # type: ignore[no-untyped-def]
    files = {f"{prefix}-{i:03d}.bin": make_data(size, seed=i) for i in range(count)}
    for name, data in files.items():
        nginx.add(name, data)
    return [nginx.slow_url(name) for name in files], files


def gets(nginx, files: dict[str, bytes]) -> Counter[str]:  # type: ignore[no-untyped-def]
    entries = nginx.access_log_lines()
    return Counter(e.path.rsplit("/", 1)[-1] for e in entries if e.method == "GET")


def bytes_sent(nginx, names: set[str]) -> int:  # type: ignore[no-untyped-def]
    return sum(
        e.body_bytes_sent for e in nginx.access_log_lines() if e.path.rsplit("/", 1)[-1] in names
    )


def check_complete(dest: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert (dest / name).read_bytes() == data, name
    left = [p.name for p in dest.iterdir() if ".partial" in p.name]
    assert not left, left


# -- several processes, one batch -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("locks", ["flock", "no-op flock"])
def test_four_processes_fetch_each_file_once_in_a_quarter_of_the_time(
    make_nginx, tmp_path: Path, locks: str
) -> None:  # type: ignore[no-untyped-def]
    # nginx sends the first second's worth at once, then 512 kB/s: about 1 s per file, 10 s
    # for one process with 4 workers.
    nginx = make_nginx(limit_rate="512k")
    urls, files = serve(nginx, "coop", 40, 1 * MiB)
    env = {"NO_LOCKS": "1"} if locks != "flock" else {}

    alone = run_together(urls, tmp_path / "alone", 1, **env)[0]
    assert sorted(alone["ok"]) == sorted(files)  # type: ignore[arg-type]
    first = gets(nginx, files)
    assert set(first.values()) == {1}

    results = run_together(urls, tmp_path / "out", 4, **env)
    for result in results:  # every process returns with every item complete
        assert result["failed"] == []
        assert sorted(result["ok"]) == sorted(files)  # type: ignore[arg-type]
    downloaded = sum(r["statuses"].get("downloaded", 0) for r in results)  # type: ignore[attr-defined]
    assert downloaded == len(files)  # each file by one process; the others saw it done
    assert all(r["statuses"].get("downloaded", 0) > 0 for r in results)  # type: ignore[attr-defined]
    assert gets(nginx, files) - first == Counter(dict.fromkeys(files, 1))  # one GET each
    check_complete(tmp_path / "out", files)
    slowest = max(float(r["seconds"]) for r in results)  # type: ignore[arg-type]
    assert slowest < 0.5 * float(alone["seconds"]), (slowest, alone["seconds"])  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_killed_process_leaves_its_items_to_the_others_after_the_lease(
    make_nginx, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Processes "on other nodes" (FAKE_HOST): the dead one is known only by its stopped
    heartbeat. Its files are finished by the others, resuming its partials."""
    nginx = make_nginx(limit_rate="512k")
    urls, files = serve(nginx, "kill", 40, 1 * MiB)  # 1 s each: 3 s for the batch in four
    dest, go, lease = tmp_path / "out", tmp_path / "go", 2.0
    env = {"RESUMABLE_CLAIM_LEASE": str(lease)}
    procs = [start(urls, dest, go, **env, FAKE_HOST=f"node{i}") for i in range(4)]
    time.sleep(1.0)
    go.touch()
    victim = procs[0]
    deadline = time.monotonic() + 30
    while sum(_size(p) > 256 * KiB for p in dest.glob("*.partial")) < 4:
        assert time.monotonic() < deadline, "the batch never got going"
        time.sleep(0.02)
    time.sleep(0.3)
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    victim.communicate()
    held = [p for p in (dest / ".resumable" / "claims").iterdir() if _held_by(p, victim.pid)]
    assert held, "the killed process held no claim: the test proves nothing"

    results = [finish(proc) for proc in procs[1:]]
    ended = time.monotonic()
    for result in results:
        assert result["failed"] == []
        assert sorted(result["ok"]) == sorted(files)  # type: ignore[arg-type]
    check_complete(dest, files)
    assert ended - killed_at >= lease  # its items waited for the lease to run out
    sent = bytes_sent(nginx, set(files))
    total = sum(map(len, files.values()))
    assert sent <= 1.3 * total, (sent, total)
    counts = gets(nginx, files)
    resumed = [e for e in nginx.access_log_lines() if e.method == "GET" and e.range]
    assert resumed, "no partial of the killed process was resumed"
    assert max(counts.values()) <= 2  # its files: its GET, then the rest by another


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # promoted meanwhile
        return 0


def _held_by(path: Path, pid: int) -> bool:
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, OSError):
        return False
    return isinstance(data, dict) and data.get("state") == "held" and data.get("pid") == pid


@pytest.mark.slow
def test_a_permanent_failure_is_reported_by_every_process_and_fetched_once(
    make_nginx, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    nginx = make_nginx(limit_rate="1m")
    urls, files = serve(nginx, "gone", 12, 128 * KiB)
    missing = nginx.slow_url("gone-missing.bin")
    results = run_together([missing, *urls], tmp_path / "out", 4)
    for result in results:
        assert sorted(result["ok"]) == sorted(files)  # type: ignore[arg-type]
        [(item, kind, _text)] = result["failed"]  # type: ignore[misc]
        assert "gone-missing.bin" in item, result
        assert kind == "SourceNotFound", result
    assert gets(nginx, files)["gone-missing.bin"] == 1  # one process asked; all reported it
    texts = [r["failed"][0][2] for r in results]  # type: ignore[index]
    assert sum("recorded by process" in text for text in texts) == 3  # the others' word


# -- the claims themselves ----------------------------------------------------------------------


def test_a_stale_claim_of_a_dead_process_is_taken_over_at_once(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(dead.stdout)
    folder = tmp_path / "claims"
    claims = Claims(folder, lease=30)
    name = Claims.name_of("a.bin")
    body = {"state": "held", "host": host_id(), "pid": pid, "token": "dead"}
    (folder / name).write_text(json.dumps(body))  # fresh mtime: only its pid says it is dead
    got = claims.acquire(name)
    assert isinstance(got, Claim)
    assert json.loads((folder / name).read_text())["token"] == claims.token
    claims.close()
    assert not (folder / name).exists()  # released: it was ours


def test_a_claim_from_another_host_is_taken_over_only_after_the_lease(tmp_path: Path) -> None:
    folder = tmp_path / "claims"
    claims = Claims(folder, lease=1.0)
    name = Claims.name_of("b.bin")
    body = {"state": "held", "host": "elsewhere/1", "pid": 1, "token": "other"}
    (folder / name).write_text(json.dumps(body))
    got = claims.acquire(name)
    assert isinstance(got, Record)
    assert got.state == "held"
    old = time.time() - 5
    os.utime(folder / name, (old, old))  # its heartbeat stopped 5 s ago
    got = claims.acquire(name)
    assert isinstance(got, Claim)
    claims.close()


def test_a_live_claim_stays_alive_by_its_heartbeat(tmp_path: Path) -> None:
    folder = tmp_path / "claims"
    mine, other = Claims(folder, lease=0.4), Claims(folder, lease=0.4)
    name = Claims.name_of("c.bin")
    assert isinstance(mine.acquire(name), Claim)
    time.sleep(1.0)  # more than two leases: only the heartbeat keeps it fresh
    got = other.acquire(name)
    assert isinstance(got, Record)
    assert got.state == "held"
    mine.close()
    assert isinstance(other.acquire(name), Claim)  # released: taken at once
    other.close()


def test_two_takers_race_on_a_stale_claim_and_one_wins(tmp_path: Path) -> None:
    folder = tmp_path / "claims"
    for round_ in range(30):
        name = Claims.name_of(f"race-{round_}.bin")
        body = {"state": "held", "host": "elsewhere/1", "pid": 1, "token": "dead"}
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(body))
        old = time.time() - 60
        os.utime(folder / name, (old, old))
        takers = [Claims(folder, lease=5) for _ in range(4)]
        got = _race(takers, name)
        winners = [i for i, g in enumerate(got) if isinstance(g, Claim)]
        assert len(winners) == 1, got
        assert json.loads((folder / name).read_text())["token"] == takers[winners[0]].token
        assert not list(folder.glob("*.taking"))
        assert not list(folder.glob("*.new"))
        for taker in takers:
            taker.close()


def _race(takers: list[Claims], name: str) -> list[Claim | Record]:
    """Every taker acquires ``name`` at the same moment, each on a thread of its own."""
    barrier = threading.Barrier(len(takers))
    got: list[Claim | Record] = [Record("none", 0, 0)] * len(takers)

    def take(i: int) -> None:
        barrier.wait()
        got[i] = takers[i].acquire(name)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(takers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


def test_a_stale_taking_file_is_broken_after_the_lease(tmp_path: Path) -> None:
    folder = tmp_path / "claims"
    claims = Claims(folder, lease=1.0)
    name = Claims.name_of("d.bin")
    (folder / name).write_text(json.dumps({"state": "held", "host": "x/1", "pid": 1}))
    (folder / f"{name}.taking").write_text("a taker that died")
    old = time.time() - 5
    for path in (folder / name, folder / f"{name}.taking"):
        os.utime(path, (old, old))
    first = claims.acquire(name)  # finds the dead taker's file: breaks it, backs off
    assert isinstance(first, Record)
    assert isinstance(claims.acquire(name), Claim)
    claims.close()


def test_a_failure_record_holds_no_secret_and_comes_back_as_the_same_error(tmp_path: Path) -> None:
    from resumable.batch.claims import failure_fields

    folder = tmp_path / "claims"
    claims = Claims(folder, lease=5)
    name = Claims.name_of("e.bin")
    claim = claims.acquire(name)
    assert isinstance(claim, Claim)
    error = SourceNotFound("not found: https://u:hunter2@h/e.bin?X-Amz-Signature=abc123")
    claims.finish(claim, "failed", **failure_fields(error))
    text = (folder / name).read_text()
    assert "hunter2" not in text
    assert "abc123" not in text
    other = Claims(folder, lease=5)
    record = other.acquire(name)
    assert isinstance(record, Record)
    assert record.state == "failed"
    again = recorded_error(record)
    assert isinstance(again, SourceNotFound)
    assert "not found" in str(again)
    assert "recorded by process" in str(again)


def test_an_old_failure_is_tried_again_by_a_later_call(tmp_path: Path) -> None:
    folder = tmp_path / "claims"
    claims = Claims(folder, lease=1.0)
    name = Claims.name_of("f.bin")
    (folder / name).write_text(json.dumps({"state": "failed", "error": "SourceNotFound"}))
    old = time.time() - 10
    os.utime(folder / name, (old, old))
    assert isinstance(claims.acquire(name), Claim)
    claims.close()


# -- one ledger file per writer -----------------------------------------------------------------


def test_each_process_writes_its_own_ledger_and_the_next_run_folds_them(tmp_path: Path) -> None:
    """The first process writes ledger.sqlite, a second one (concurrent) a side ledger of its
    own; the next process to hold the main ledger folds the side one in (newer rows win)."""
    from resumable.batch.ledger import Ledger

    folder = tmp_path / ".resumable" / "claims"
    first, second = Claims(folder, lease=5), Claims(folder, lease=5)
    main, side = Ledger(tmp_path, first), Ledger(tmp_path, second)
    sides = list((tmp_path / ".resumable" / "ledgers").glob("*.sqlite"))
    assert [p.stem for p in sides] == [second.token]
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "b.bin").write_bytes(b"b")
    digest = "0" * 64
    main.done("a.bin", tmp_path / "a.bin", identity="http://h/a.bin", origin=None, sha256=digest)
    side.done("b.bin", tmp_path / "b.bin", identity="http://h/b.bin", origin=None, sha256=digest)
    side.failed("a.bin", identity="http://h/a.bin", origin=None, error="old", partial=False)
    side.close()  # its row for a.bin is newer than main's: it wins the fold
    main.close()
    second.close()
    first.close()

    later = Claims(folder, lease=5)
    ledger = Ledger(tmp_path, later)
    assert not list((tmp_path / ".resumable" / "ledgers").glob("*.sqlite*"))  # folded, deleted
    b = ledger.get("b.bin")
    assert b is not None
    assert b.state == "done"
    a = ledger.get("a.bin")
    assert a is not None
    assert a.state == "failed"
    ledger.close()
    later.close()
    assert sorted(p.name for p in folder.iterdir()) == []  # every claim released
