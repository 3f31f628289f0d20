"""``TqdmProgress``: progress bars for terminals and notebooks, log lines everywhere else.

One renderer for the three places downloads run:

- a terminal: an overall bar (files done, bytes, rate, ETA) and one bar per file in flight, at
  most ``max_bars`` of them (a batch of 1,000 files must not draw 1,000 bars);
- Jupyter: the same bars as widgets, because bars come from ``tqdm.auto``;
- no TTY (a CI log, ``nohup``, a Slurm ``.out``): periodic complete lines from
  :mod:`resumable.progress.lines` instead of carriage-return garbage.

Events carry absolute byte counts and each bar is moved by ``done - bar.n`` (fsspec's
``TqdmCallback`` does the same), so a file rewound after a retry simply goes back. The overall
bar counts bytes fetched by *this run* (see :mod:`resumable.progress.tally`), so a resumed
file's bytes already on disk do not show up as a burst of speed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from ..errors import InvalidArgument
from . import EventKind, ProgressEvent
from .lines import LineProgress
from .tally import Tally

__all__ = ["TqdmProgress"]

_EXTRACT_KINDS = (EventKind.EXTRACTING, EventKind.EXTRACTED)

Style = Literal["auto", "bars", "lines"]
_ENDS = (EventKind.DONE, EventKind.SKIPPED, EventKind.FAILED)


class TqdmProgress:
    """Render progress events with ``tqdm.auto``: widgets in Jupyter, bars in a terminal,
    periodic log lines when the output is not a terminal.

    Pass it as ``progress=`` to ``download``, ``download_many`` or ``start``. One instance
    serves every thread of a batch. ``tqdm`` is imported when the first instance is made, never
    by ``import resumable``. Close it (or use ``with``) to close bars still open after an
    interruption and to write the last line.

    >>> with resumable.TqdmProgress(total_files=141) as bars:            # doctest: +SKIP
    ...     d.download_many("https://h/shard-{000000..000140}.tar", "data", progress=bars)

    Args:
        total_files: how many files the batch holds, if known: shown as ``3/141 files`` and
            used to estimate the ETA before every file has started.
        max_bars: most per-file bars shown at once; other files count in the overall bar.
        overall: show the overall bar (files, bytes, rate, ETA).
        leave: keep each file's bar on screen after it ends (the overall bar always stays).
        style: ``"auto"`` (bars in a notebook or when ``file`` is a TTY, else lines),
            ``"bars"`` or ``"lines"``.
        interval: seconds between two log lines in the ``"lines"`` style.
        clock: the monotonic clock (inject a fake one in tests).
        show_failures: write a line for each failed file in the ``"lines"`` style; ``False``
            when the caller reports failures itself (the command line lists them at the end),
            so that each failure is printed once.
        **tqdm_kwargs: passed to every ``tqdm`` bar (``file=``, ``disable=``, ``mininterval=``,
            ``colour=``...); ``file`` is also where lines go when logging is not configured.
    """

    def __init__(
        self,
        *,
        total_files: int | None = None,
        max_bars: int = 4,
        overall: bool = True,
        leave: bool = False,
        style: Style = "auto",
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        show_failures: bool = True,
        **tqdm_kwargs: Any,
    ) -> None:
        if style not in ("auto", "bars", "lines"):
            raise InvalidArgument(f"style must be 'auto', 'bars' or 'lines', got {style!r}")
        if max_bars < 0 or not interval > 0:
            raise InvalidArgument("max_bars must be >= 0 and interval > 0")
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._kwargs = tqdm_kwargs
        self._max_bars = max_bars
        self._want_overall = overall
        self._leave = leave
        self._tally = Tally(total_files)
        self._bars: dict[Path, Any] = {}
        # Bars of files that ended, kept for the next files (leave=False): a notebook shows each
        # bar ever made as an output, so a batch reuses at most ``max_bars`` of them.
        self._idle: list[Any] = []
        self._overall: Any = None
        self._label = ""
        self._lock = threading.Lock()
        self._extract_bars: dict[Path, Any] = {}
        self._disabled = bool(tqdm_kwargs.get("disable"))
        if style == "auto":
            style = "bars" if _is_notebook(tqdm) or _isatty(tqdm_kwargs.get("file")) else "lines"
        self.style: Literal["bars", "lines"] = style
        """The style in use: ``"bars"`` or ``"lines"`` (``"auto"`` resolved)."""
        self._lines = (
            LineProgress(
                self._tally,
                interval=interval,
                file=tqdm_kwargs.get("file"),
                max_shown=max_bars,
                clock=clock,
                show_failures=show_failures,
            )
            if style == "lines"
            else None
        )

    def __call__(self, event: ProgressEvent) -> None:
        if self._disabled:
            return
        with self._lock:
            if event.kind in _EXTRACT_KINDS:  # after the file's own events: not a download
                self._extraction(event)
                return
            state = self._tally.add(event)
            if self._lines is not None:
                self._lines.on_event(event)
                return
            self._file_bar(event, state is None)
            self._update_overall()

    def _extraction(self, event: ProgressEvent) -> None:
        """An archive being extracted: a bar of its own (archive bytes read, members written),
        or one line when it is done (without a terminal)."""
        finished = event.kind is EventKind.EXTRACTED
        if self._lines is not None:
            if finished:
                self._lines.say(f"{event.path.name}: extracted {event.members or 0} members")
            return
        key = event.path.with_name(event.path.name + " (extract)")
        bar = self._extract_bars.get(key)
        if bar is None:
            if finished:
                return
            options: dict[str, Any] = {
                "total": event.total,
                "initial": event.done,
                "unit": "B",
                "unit_scale": True,
                "unit_divisor": 1024,
                "desc": key.name,
                "leave": self._leave,
                "dynamic_ncols": True,
                **self._kwargs,
            }
            bar = self._extract_bars[key] = self._tqdm(**options)
        bar.set_postfix_str(f"{event.members or 0} members", refresh=False)
        if event.done != bar.n:
            bar.update(event.done - bar.n)
        if finished:
            bar.refresh()  # the final member count, even if no byte moved since
            bar.close()
            del self._extract_bars[key]

    def _file_bar(self, event: ProgressEvent, ended: bool) -> None:
        bar = self._bars.get(event.path)
        if bar is None:
            if ended or len(self._bars) >= self._max_bars:
                return
            bar = self._open_file_bar(event)
        if event.total is not None and bar.total != event.total:
            _set_total(bar, event.total)
        if event.done != bar.n:
            bar.update(event.done - bar.n)  # absolute: a rewind is a negative step
        if event.kind is EventKind.RETRYING:
            bar.set_postfix_str(f"retrying in {event.wait or 0:.1f}s: {event.error}"[:60])
        elif event.kind is EventKind.VERIFIED:
            bar.set_postfix_str("verified")
        elif ended:
            if event.kind is not EventKind.DONE:
                bar.set_postfix_str(event.kind.value)
            del self._bars[event.path]
            if self._leave:
                bar.close()
            else:
                bar.refresh()
                self._idle.append(bar)

    def _open_file_bar(self, event: ProgressEvent) -> Any:
        self._ensure_overall()
        if self._idle:  # the bar of a file that ended: the same output shows this file now
            bar = self._idle.pop()
            bar.reset(total=event.total)
            bar.set_description_str(event.path.name, refresh=False)
            bar.set_postfix_str("", refresh=False)
            if event.done:
                bar.update(event.done)
            self._bars[event.path] = bar
            return bar
        options: dict[str, Any] = {
            "total": event.total,
            "initial": event.done,
            "unit": "B",
            "unit_scale": True,
            "unit_divisor": 1024,
            "desc": event.path.name,
            "leave": self._leave,
            "dynamic_ncols": True,
        }
        options.update(self._kwargs)
        bar = self._tqdm(**options)
        self._bars[event.path] = bar
        return bar

    def _ensure_overall(self) -> None:
        if self._overall is not None or not self._want_overall:
            return
        options: dict[str, Any] = {
            "total": None,
            "unit": "B",
            "unit_scale": True,
            "unit_divisor": 1024,
            "desc": self._tally.files_label(),
            "leave": True,
            "dynamic_ncols": True,
        }
        options.update(self._kwargs)
        self._overall = self._tqdm(**options)

    def _update_overall(self) -> None:
        self._ensure_overall()
        bar = self._overall
        if bar is None:
            return
        expected = self._tally.expected()
        if expected is not None and bar.total != expected:
            _set_total(bar, expected)
        label = self._tally.files_label()
        if label != self._label:
            self._label = label
            bar.set_description_str(label, refresh=False)
        fetched = self._tally.fetched
        if fetched != bar.n:
            bar.update(fetched - bar.n)

    def close(self) -> None:
        """Close every bar still open (after an interrupted batch) and the overall bar, or write
        the last line."""
        with self._lock:
            for bar in [*self._bars.values(), *self._extract_bars.values(), *self._idle]:
                bar.close()
            self._bars.clear()
            self._idle.clear()
            self._extract_bars.clear()
            if self._overall is not None:
                self._overall.close()
                self._overall = None
            if self._lines is not None and not self._disabled:
                self._lines.close()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _set_total(bar: Any, total: int) -> None:
    """Change a bar's total; a notebook bar's widget too (tqdm.notebook draws a bar made
    without a total as a thin "unknown" bar and only its ``reset()`` updates the widget)."""
    unknown = bar.total is None
    bar.total = total
    container = getattr(bar, "container", None)
    if container is None:
        return
    widget = container.children[-2]
    widget.max = total
    if unknown:
        widget.bar_style = ""
        widget.layout.width = None


def _is_notebook(tqdm_class: type) -> bool:
    """Whether ``tqdm.auto`` chose the notebook (widget) bars."""
    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm_class.__mro__)


def _isatty(file: object) -> bool:
    """Whether bars can be drawn on ``file``: a terminal, or a Jupyter kernel's output stream
    (which renders carriage returns even when tqdm's widgets are not installed)."""
    stream = file if file is not None else sys.stderr
    if type(stream).__module__.startswith("ipykernel."):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return callable(isatty) and bool(isatty())
    except ValueError:  # a closed stream
        return False
