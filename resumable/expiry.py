"""When a signed URL stops working, read from the URL itself.

Presigned and signed URLs carry their own expiry, so a download can ask for a fresh URL
*before* sending a request that is bound to be refused (with ``refresh_url``, see
:mod:`resumable.locator`): one round trip saved per expiry, and for a segmented download no
burst of ``403`` answers from every connection at once.

Recognised (parameter names case-insensitive):

- AWS SigV4 (S3 presigned): ``X-Amz-Date`` (``20260101T000000Z``) + ``X-Amz-Expires`` (seconds);
- GCS V4 signed URLs: ``X-Goog-Date`` + ``X-Goog-Expires``;
- AWS SigV2, GCS V2, CloudFront canned policies: ``Expires`` (Unix seconds);
- Azure SAS: ``se`` (ISO 8601, ``2026-01-01T00:00:00Z`` or a date);
- Meta's CDN (the SA-1B links): ``oe`` (Unix seconds, hexadecimal).

Anything else, or a value that does not parse, has no known expiry (``None``): the server's
``403`` still triggers the refresh.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

__all__ = ["expires_at"]


def expires_at(url: str) -> float | None:
    """The Unix time at which ``url``'s signature expires, or ``None`` if it does not say."""
    try:
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return None
    params = {key.lower(): value for key, value in query}
    for prefix in ("x-amz-", "x-goog-"):
        date, lifetime = params.get(f"{prefix}date"), params.get(f"{prefix}expires")
        if date and lifetime and lifetime.isdigit():
            signed = _compact_utc(date)
            if signed is not None:
                return signed + int(lifetime)
    if params.get("expires", "").isdigit():
        return float(params["expires"])
    if "se" in params:
        return _iso_utc(params["se"])
    oe = params.get("oe", "")
    if 0 < len(oe) <= 16:
        try:
            return float(int(oe, 16))
        except ValueError:
            return None
    return None


def _compact_utc(value: str) -> float | None:
    import calendar  # here, as datetime below: imported when a signed URL is read

    try:
        return float(calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


def _iso_utc(value: str) -> float | None:
    from datetime import datetime, timezone

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
