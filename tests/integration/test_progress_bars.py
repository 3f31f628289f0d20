"""TqdmProgress: the overall bar, bounded file bars, rewinds, and the no-TTY log lines.

The arithmetic is checked on :class:`Tally` with hand-made events; the rendering on real tqdm
bars written to a StringIO (forced to the ``bars`` style, since a StringIO is not a TTY) and on
real downloads whose server rewinds the file (it answers 200 to a ranged request).
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from servers import SimpleHTTPServer, make_data

import resumable
from resumable import EventKind, ProgressEvent, TqdmProgress
from resumable.progress.tally import Tally

MiB = 1 << 20
K = EventKind


def ev(kind: EventKind, name: str, done: int, total: int | None = 4096) -> ProgressEvent:
    return ProgressEvent(kind, f"https://h/{name}", Path("/d") / name, done, total)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def frames(text: str) -> list[str]:
    """Every line tqdm drew: frames are separated by carriage returns and newlines."""
    return [f.strip() for f in re.split(r"[\r\n]", text) if f.strip()]


# -- the arithmetic -----------------------------------------------------------------------------


def test_tally_rewind_resume_and_skip():
    tally = Tally(total_files=4)
    tally.add(ev(K.STARTED, "a", 0))
    tally.add(ev(K.PROGRESS, "a", 3000))
    assert (tally.fetched, tally.done) == (3000, 3000)
    tally.add(ev(K.PROGRESS, "a", 0))  # the server ignored Range: restart from zero
    assert (tally.fetched, tally.done) == (0, 0)
    tally.add(ev(K.STARTED, "b", 1000))  # resumed: 1000 bytes were already on disk
    assert tally.fetched == 0
    tally.add(ev(K.PROGRESS, "b", 4096))
    tally.add(ev(K.DONE, "b", 4096))
    assert tally.fetched == 3096
    # a and b are known (4096 - 0 and 4096 - 1000); 2 files unseen at their average.
    assert tally.expected() == 4096 + 3096 + 2 * (4096 + 3096) // 2
    tally.add(ev(K.SKIPPED, "c", 4096))  # complete already: nothing for this run to fetch
    tally.add(ev(K.PROGRESS, "a", 4096))
    tally.add(ev(K.DONE, "a", 4096))
    tally.add(ev(K.FAILED, "d", 0, None))
    assert tally.fetched == 4096 + 3096
    assert tally.done == 3 * 4096
    assert tally.expected() == 4096 + 3096
    assert tally.in_flight == {}
    assert tally.files_label() == "3/4 files, 1 failed"


def test_tally_without_sizes():
    tally = Tally()
    tally.add(ev(K.STARTED, "a", 0, None))
    tally.add(ev(K.PROGRESS, "a", 10, None))
    assert tally.expected() is None
    assert tally.files_label() == "0 files"


# -- bars ---------------------------------------------------------------------------------------


def test_bars_overall_and_file_bars_follow_a_rewind():
    out = io.StringIO()
    with TqdmProgress(file=out, style="bars", mininterval=0, total_files=2, leave=True) as bars:
        assert bars.style == "bars"
        for event in (
            ev(K.STARTED, "a.bin", 0),
            ev(K.PROGRESS, "a.bin", 3072),
            ev(K.RETRYING, "a.bin", 3072),
            ev(K.PROGRESS, "a.bin", 0),  # rewound
            ev(K.PROGRESS, "a.bin", 4096),
            ev(K.VERIFIED, "a.bin", 4096),
            ev(K.DONE, "a.bin", 4096),
            ev(K.SKIPPED, "b.bin", 4096),
        ):
            bars(event)
    drawn = frames(out.getvalue())
    assert any(f.startswith("a.bin:  75%") and "3.00k/4.00k" in f for f in drawn)
    assert any(f.startswith("a.bin:   0%") and "0.00/4.00k" in f for f in drawn)  # went back
    assert any("retrying in 0.0s" in f for f in drawn)
    assert any(f.startswith("a.bin: 100%") and "verified" in f for f in drawn)
    overall = [f for f in drawn if "files" in f]
    assert overall[-1].startswith("2/2 files: 100%")
    assert "4.00k/4.00k" in overall[-1]  # b.bin was skipped: nothing for this run to fetch
    # Never more than the total, not even around the rewind.
    assert not any(re.search(r"\b1[0-9][0-9]%", f) and "100%" not in f for f in drawn)


def test_bars_are_bounded_to_max_bars():
    out = io.StringIO()
    with TqdmProgress(file=out, style="bars", mininterval=0, max_bars=2) as bars:
        for i in range(5):
            bars(ev(K.STARTED, f"f{i}.bin", 0))
        for i in range(5):
            bars(ev(K.PROGRESS, f"f{i}.bin", 2048))
        bars(ev(K.DONE, "f0.bin", 4096))
        bars(ev(K.PROGRESS, "f4.bin", 3072))  # a bar is free again: f4 gets it
    names = {f.split(":")[0] for f in frames(out.getvalue()) if ".bin:" in f}
    assert names == {"f0.bin", "f1.bin", "f4.bin"}
    assert any(f.startswith("1 file: ") for f in frames(out.getvalue()))


def test_a_real_rewind_ends_at_exactly_the_file_size(
    simple_http: SimpleHTTPServer, unique_prefix: str, tmp_path: Path
):
    """python -m http.server ignores Range: the resumed download restarts from zero."""
    data = make_data(6 * MiB, seed=21)
    url = simple_http.add(f"{unique_prefix}/f.bin", data)
    dest = tmp_path / "f.bin"

    def stop_at_2mib(event: ProgressEvent) -> None:
        if event.done >= 2 * MiB:
            raise KeyboardInterrupt

    with resumable.ResumableDownloader() as d:
        with pytest.raises(KeyboardInterrupt):
            d.download(url, dest, progress=stop_at_2mib)
        seen: list[ProgressEvent] = []
        out = io.StringIO()
        with TqdmProgress(file=out, style="bars", mininterval=0, leave=True) as bars:

            def both(event: ProgressEvent) -> None:
                seen.append(event)
                bars(event)

            d.download(url, dest, progress=both)
    assert seen[0].kind is K.STARTED
    assert seen[0].done >= 2 * MiB
    assert any(e.done == 0 for e in seen)  # ... and was rewound
    drawn = frames(out.getvalue())
    assert any(f.startswith("1 file: 100%") and "6.00M/6.00M" in f for f in drawn)
    final = [f for f in drawn if f.startswith("f.bin: 100%")]
    assert final
    assert "6.00M/6.00M" in final[-1]


# -- no TTY: log lines --------------------------------------------------------------------------


def test_without_a_tty_auto_writes_periodic_lines(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.CRITICAL, logger="resumable.progress")  # logging would not show them
    out, clock = io.StringIO(), FakeClock()
    bars = TqdmProgress(file=out, total_files=3, interval=10, clock=clock)
    assert bars.style == "lines"  # a StringIO is not a terminal
    bars(ev(K.STARTED, "a.bin", 0, 1000 * MiB))
    clock.now += 5
    bars(ev(K.PROGRESS, "a.bin", 100 * MiB, 1000 * MiB))
    assert out.getvalue() == ""  # not yet: every 10 s
    clock.now += 5
    bars(ev(K.PROGRESS, "a.bin", 200 * MiB, 1000 * MiB))
    bars(ev(K.STARTED, "b.bin", 0, 1000 * MiB))
    bars(ev(K.FAILED, "b.bin", 0, 1000 * MiB))
    clock.now += 10
    bars(ev(K.PROGRESS, "a.bin", 400 * MiB, 1000 * MiB))
    bars.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == (
        "resumable: 0/3 files, 200.0 MiB of 2.9 GiB (7%), 20.0 MiB/s, ETA 2:20; "
        "in flight: a.bin 20%"
    )
    assert lines[1] == "resumable: b.bin failed: None"
    assert lines[2].startswith("resumable: 0/3 files, 1 failed, 400.0 MiB of ")
    assert ", 20.0 MiB/s, " in lines[2]
    assert lines[3] == "resumable: 0/3 files, 1 failed, 400.0 MiB fetched in 0:20 (20.0 MiB/s)"
    assert len(lines) == 4


def test_lines_go_to_logging_when_it_is_configured(caplog: pytest.LogCaptureFixture):
    out, clock = io.StringIO(), FakeClock()
    caplog.set_level(logging.INFO, logger="resumable.progress")
    with TqdmProgress(file=out, style="lines", interval=1, clock=clock) as bars:
        bars(ev(K.STARTED, "a.bin", 0))
        clock.now += 2
        bars(ev(K.PROGRESS, "a.bin", 2048))
        bars(ev(K.DONE, "a.bin", 4096))
    assert out.getvalue() == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "resumable.progress"]
    assert messages[0].startswith("0 files, 2.0 KiB of 4.0 KiB (50%)")
    assert messages[-1].startswith("1 file, 4.0 KiB fetched in 0:02")


def test_disable_and_bad_arguments():
    out = io.StringIO()
    with TqdmProgress(file=out, disable=True) as bars:
        bars(ev(K.STARTED, "a.bin", 0))
        bars(ev(K.DONE, "a.bin", 4096))
    assert out.getvalue() == ""
    with pytest.raises(resumable.InvalidArgument, match="style"):
        TqdmProgress(style="fancy")  # type: ignore[arg-type]
