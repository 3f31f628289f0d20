"""Settings checked by type as well as by value, so that a wrong type is an
:class:`~resumable.errors.InvalidArgument` at construction rather than a raw ``TypeError``
from the first comparison (``"3" < 1``) or, worse, deep inside a download."""

from __future__ import annotations

import math

from .errors import InvalidArgument

__all__ = ["check_bool", "check_number"]


def check_number(value: object, what: str, *, integer: bool = False) -> None:
    """``value`` is a finite-or-infinite real number (an ``int`` with ``integer``), not a
    ``bool`` and not NaN."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    wrong = isinstance(value, bool) or not isinstance(value, kinds)
    if wrong or (isinstance(value, float) and math.isnan(value)):
        kind = "an integer" if integer else "a number"
        raise InvalidArgument(f"{what} must be {kind}, got {value!r}")


def check_bool(value: object, what: str) -> None:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{what} must be True or False, got {value!r}")
