"""Connections chosen automatically: a file starts as one stream and splits only when slow.

Against the fault server on loopback. The probe's time and threshold are shortened (module
constants of ``resumable.engine.stream``) so a few MiB decide it: a stream trickled below the
threshold must go on over ranged requests from where it stopped (never refetching its bytes);
the same file served at full speed must stay one request; an explicit ``connections=`` is
segmented from the start, with no probe.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from servers import Fault, FaultServer, Record, make_data

from resumable import ResumableDownloader
from resumable.engine import stream

MiB = 1 << 20
SIZE = 12 * MiB


@pytest.fixture
def quick_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decide after 0.3 s; slow is under 2 MiB/s (loopback is hundreds of times faster)."""
    monkeypatch.setattr(stream, "PROBE", 0.3)
    monkeypatch.setattr(stream, "SPLIT_BELOW", 2 * MiB)


def _gets(server: FaultServer, name: str) -> list[Record]:
    return [r for r in server.log if r.method == "GET" and r.path == f"/{name}"]


def _starts(requests: list[Record]) -> list[int]:
    return [int(r.range.split("=")[1].split("-")[0]) for r in requests if r.range]


def test_a_slow_stream_goes_on_over_several_connections(
    fault_server: FaultServer, quick_probe: None, tmp_path: Path
) -> None:
    payload = make_data(SIZE, seed=19)
    url = fault_server.add("f.bin", payload)
    fault_server.plan("f.bin", Fault.trickle(MiB))  # the first request: 1 MiB/s, under 2
    with ResumableDownloader(segment_threshold=4 * MiB) as d:
        result = d.download(url, tmp_path / "f.bin", sha256=hashlib.sha256(payload).hexdigest())
    assert result.status == "downloaded"
    gets = _gets(fault_server, "f.bin")
    assert gets[0].fault == "trickle"
    assert gets[0].range is None
    ranged = gets[1:]
    assert len(ranged) >= 2, [(r.range, r.fault) for r in gets]
    starts = _starts(ranged)
    assert len(starts) == len(ranged)
    assert min(starts) > 0  # the stream's bytes were kept: nothing from byte 0 again
    assert min(starts) <= 2 * MiB  # it stopped after ~0.3 s at 1 MiB/s, not at the end
    assert (tmp_path / "f.bin").read_bytes() == payload


def test_a_fast_stream_stays_one_request(
    fault_server: FaultServer, quick_probe: None, tmp_path: Path
) -> None:
    payload = make_data(SIZE, seed=20)
    url = fault_server.add("f.bin", payload)
    fault_server.plan("f.bin", Fault.trickle(16 * MiB))  # lasts ~0.75 s: the probe decides
    with ResumableDownloader(segment_threshold=4 * MiB) as d:
        d.download(url, tmp_path / "f.bin")
    gets = _gets(fault_server, "f.bin")
    assert [(r.range, r.fault) for r in gets] == [(None, "trickle")]
    assert (tmp_path / "f.bin").read_bytes() == payload


def test_explicit_connections_are_segmented_from_the_start(
    fault_server: FaultServer, quick_probe: None, tmp_path: Path
) -> None:
    payload = make_data(SIZE, seed=21)
    url = fault_server.add("f.bin", payload)
    with ResumableDownloader(segment_threshold=4 * MiB, connections=4) as d:
        d.download(url, tmp_path / "f.bin")
    gets = _gets(fault_server, "f.bin")
    assert len(gets) >= 4
    assert len(_starts(gets)) >= 3
    assert (tmp_path / "f.bin").read_bytes() == payload
