"""One file, start to finish: :class:`Settings` and :class:`DownloadRequest` in,
:class:`DownloadResult` out (see :class:`Engine`).

The engine sits below the batch layer and the public API and above the ``.partial`` protocol,
verification, retry policy and sources. It never imports requests, fsspec or tqdm (the
import-linter contracts in ``pyproject.toml`` keep that true).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .result import DownloadResult
from .settings import Settings

if TYPE_CHECKING:
    from .engine import Engine
    from .request import DownloadRequest

__all__ = ["DownloadRequest", "DownloadResult", "Engine", "Settings"]


def __getattr__(name: str) -> Any:
    """``Engine`` and ``DownloadRequest`` on first use: ``import resumable`` needs only the
    values (settings, results), not the machinery below them (sources, locator, verification),
    which the first downloader loads (issue 18 item 7)."""
    if name == "Engine":
        from .engine import Engine

        return Engine
    if name == "DownloadRequest":
        from .request import DownloadRequest

        return DownloadRequest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
