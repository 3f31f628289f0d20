"""One file, start to finish: :class:`Settings` and :class:`DownloadRequest` in,
:class:`DownloadResult` out (see :class:`Engine`).

The engine sits below the batch layer and the public API and above the ``.partial`` protocol,
verification, retry policy and sources. It never imports requests, fsspec or tqdm (the
import-linter contracts in ``pyproject.toml`` keep that true).
"""

from .engine import Engine
from .request import DownloadRequest
from .result import DownloadResult
from .settings import Settings

__all__ = ["DownloadRequest", "DownloadResult", "Engine", "Settings"]
