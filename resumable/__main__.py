"""``python -m resumable``: the command line of :mod:`resumable.cli` (``demo`` is its demo)."""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
