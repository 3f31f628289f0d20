"""What a URL shows, and what object it names: credentials never leave the process.

- :func:`redact` hides the password and the secret query parameters of a URL (signed URLs are
  credentials: anyone holding one can read the object); :func:`redact_text` does the same for
  free text that may quote URLs, request lines or credential headers.
- :func:`register_secret` remembers the caller's own secrets (header values, tokens), which
  look like nothing and can only be recognised by being known; every text scrubbed here hides
  them from then on.
- :func:`identity` is the object a URL names: redacted, and without the parameters that change
  each time a URL of a known signed kind (S3, GCS, Azure SAS, CloudFront...) is signed again,
  so a partial or a ledger row survives a fresh signature.

Why a module of its own: every layer shows URLs (errors, the partial's sidecar, the ledger, log
records, the command line), so this sits at the very bottom and imports nothing from the
package; :mod:`resumable.errors` scrubs every message through it at construction.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "identity",
    "redact",
    "redact_text",
    "register_secret",
    "register_secrets",
    "scrub_secrets",
]

# Query parameters that carry secrets in signed URLs: AWS SigV4/V2, GCS V4 and V2, Azure SAS,
# CloudFront, Akamai (hdnts, __token__), and the names people use for API keys, tokens and
# passwords. Exact names only: they are credentials, never what names an object.
_SECRET_PARAMS = re.compile(
    r"^(x-amz-(signature|credential|security-token)|x-goog-(signature|credential)"
    r"|signature|sig|se|skoid|sktid|token|access_token|api[-_]?key|key|password|secret"
    r"|policy|key-pair-id|awsaccesskeyid|googleaccessid|oh"  # oh: Meta's CDN signature
    r"|auth|auth[-_]?token|api[-_]?token|x-api-key|(id|refresh|session|security|private)_token"
    r"|client_secret|secret_key|access_key(_id)?|passwd|pwd|jwt|hdnts|__token__|hmac)$",
    re.IGNORECASE,
)
REDACTED = "REDACTED"


# A URL without userinfo, query, parameters or fragment, in a lower-case scheme: redact() and
# identity() return it as it is (what parsing it and putting it back together gives), without
# the parsing, which a batch of small files paid several times per file.
_NOTHING_TO_HIDE = re.compile(
    r"[a-z][a-z0-9+.-]*://[^/@?#;\s\x00-\x1f\x7f]+(/[^@?#;\s\x00-\x1f\x7f]*)?\Z"
)


def redact(url: str) -> str:
    """Return ``url`` with its password and secret query parameters replaced by ``REDACTED``.

    Signed URLs (S3 presigned, GCS signed, Azure SAS) are credentials: anyone holding one can read
    the object. They end up in exception messages, logs and sidecar files unless every place that
    prints a URL prints this instead. Anything that does not parse as a URL is returned unchanged
    apart from ``user:password@`` removal, because a message must never fail to build.
    """
    if _NOTHING_TO_HIDE.match(url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        text = re.sub(r"//[^/@\s]*@", f"//{REDACTED}@", url)
        return re.sub(
            r"([?&;#])([^=&;#\s]+)=([^&;#\s]*)",
            lambda m: (
                m.group(0)
                if not _SECRET_PARAMS.match(m.group(2))
                else f"{m.group(1)}{m.group(2)}={REDACTED}"
            ),
            text,
        )
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    # A fragment can hold parameters too (OAuth's "#access_token=..."): never sent, but shown.
    query, fragment = _redact_params(parts.query), _redact_params(parts.fragment)
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_params(text: str) -> str:
    """``a=1&sig=x`` with the values of secret parameters replaced (re-encoded if any is)."""
    if not text or "=" not in text:
        return text
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(_SECRET_PARAMS.match(k) for k, _ in pairs):
        return text
    return urlencode([(k, REDACTED if _SECRET_PARAMS.match(k) else v) for k, v in pairs], safe="/:")


# The password runs to the LAST "@" before the host (a raw "@" inside it is hidden too).
_TEXT_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s@:?#]*)(?P<pw>:[^/\s?#]*)?@"
)
_TEXT_PARAM = re.compile(r"(?P<sep>[?&;#])(?P<name>[^=&;#\s?\"'<>]+)=(?P<value>[^&;#\s\"'<>]*)")
# Credential headers quoted as "Name: value", "'Name': 'value'" or "'Name': b'value'" (a dict
# of request headers, as botocore logs it at DEBUG). A value runs to a quote or the line's end,
# commas included ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...").
_TEXT_AUTH = re.compile(
    r"(?P<name>(?:proxy-)?authorization|x-amz-security-token|cookie|x-api-key|x-auth-token"
    r"|private-token|x-goog-api-key)(?P<sep>[\"']?\s*[:=]\s*b?[\"']?)"
    r"(?P<value>[^\"'\r\n}]+)",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """``text`` with every credential that looks like part of a URL or a header replaced.

    For free text that may quote URLs or request lines: third-party exception messages and log
    records (urllib3 logs ``"GET /k?X-Amz-Signature=... HTTP/1.1"`` at DEBUG). Passwords in
    ``scheme://user:password@``, the values of the query parameters :func:`redact` hides, and
    ``Authorization`` header values become ``REDACTED``; so does every value given to
    :func:`register_secret` (the ``headers=`` values of every downloader), wherever it appears.
    """
    text = scrub_secrets(text)
    text = _TEXT_USERINFO.sub(
        lambda m: (
            f"{m['scheme']}{m['user']}:{REDACTED}@" if m["pw"] else f"{m['scheme']}{REDACTED}@"
        ),
        text,
    )
    text = _TEXT_PARAM.sub(
        lambda m: f"{m['sep']}{m['name']}={REDACTED}" if _SECRET_PARAMS.match(m["name"]) else m[0],
        text,
    )
    return _TEXT_AUTH.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)


# The caller's own secrets: values that mean nothing as URL syntax (a bearer token, an API key,
# a cookie) and can only be recognised by being known. Shorter values would hide ordinary words
# and numbers of every message ("X-Debug: 1"), so they are not remembered; the oldest are
# forgotten past _MAX_SECRETS (a process minting a token per downloader for days).
_MIN_SECRET = 4
_MAX_SECRETS = 1024
_secrets: dict[str, None] = {}  # insertion-ordered set
_secrets_lock = threading.Lock()
_secrets_pattern: re.Pattern[str] | None = None


def register_secret(value: str, *, min_length: int = _MIN_SECRET) -> None:
    """Hide ``value`` from every text ``resumable`` lets out, from now on, in this process.

    :class:`~resumable.ResumableDownloader` registers every ``headers=`` value (and the
    credential after an auth scheme, ``Bearer <token>``) and the secret-looking
    ``storage_options``; call it for secrets of your own that could reach a message (a token
    inside a URL path). Every :class:`~resumable.errors.ResumableError` message,
    :func:`redact_text` (and so ``resumable``'s, ``urllib3``'s and ``requests``' log
    records) then shows ``REDACTED`` instead. The value is also hidden as Python would quote
    it (``'\\n'``, ``'\\x00'``). Values shorter than ``min_length`` are ignored:
    hiding them would garble every message.
    """
    global _secrets_pattern
    if not isinstance(value, str):
        return
    forms = {value, value.strip(), repr(value)[1:-1], ascii(value)[1:-1]}
    forms = {form for form in forms if len(form) >= max(min_length, 1)}
    with _secrets_lock:
        if forms <= _secrets.keys():
            return  # known already (every downloader of a process registers its headers)
        for form in forms:
            _secrets.setdefault(form, None)
        while len(_secrets) > _MAX_SECRETS:
            del _secrets[next(iter(_secrets))]
        ordered = sorted(_secrets, key=len, reverse=True)  # the longest form wins
        _secrets_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None


def register_secrets(values: Iterable[str], *, min_length: int = _MIN_SECRET) -> None:
    """:func:`register_secret` for each of ``values``."""
    for value in values:
        register_secret(value, min_length=min_length)


def scrub_secrets(text: str) -> str:
    """``text`` with every value given to :func:`register_secret` replaced by ``REDACTED``.

    Only the known values: no URL syntax is interpreted, so a redacted URL passes unchanged
    apart from a secret it holds in a path segment.
    """
    pattern = _secrets_pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


# Signed URLs, by kind: the parameters that prove a URL is of that kind (all present, names
# compared in lower case), and the parameters of that kind that change each time the URL is
# signed again (exact names, or prefixes ending in "*"). Only a URL of that kind loses them:
# elsewhere ``sp``, ``st``, ``expires`` or ``token`` are ordinary parameters that may name the
# object (``?file=x&sp=train``).
_SIGNED_KINDS: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    # AWS Signature V4 presigned URLs (S3 and any SigV4 service); x-id: the operation, added
    # by some SDKs.
    (frozenset({"x-amz-signature"}), frozenset({"x-amz-*", "x-id"})),
    # AWS Signature V2 query authentication (legacy S3 presigned URLs).
    (
        frozenset({"awsaccesskeyid", "signature", "expires"}),
        frozenset({"awsaccesskeyid", "signature", "expires", "x-amz-security-token"}),
    ),
    # Google Cloud Storage V4 signed URLs, and the V2 ones.
    (frozenset({"x-goog-signature"}), frozenset({"x-goog-*"})),
    (
        frozenset({"googleaccessid", "signature", "expires"}),
        frozenset({"googleaccessid", "signature", "expires"}),
    ),
    # Azure shared access signatures (service, account and user delegation SAS): a signed
    # version and a signature. ``snapshot`` and ``versionid`` name a blob: kept.
    (
        frozenset({"sv", "sig"}),
        frozenset(
            {
                *("sv", "ss", "srt", "sp", "st", "se", "sip", "spr", "sr", "sdd", "si", "sig"),
                *("ses", "skoid", "sktid", "skt", "ske", "sks", "skv", "saoid", "suoid"),
                *("scid", "sduoid", "rscc", "rscd", "rsce", "rscl", "rsct"),
            }
        ),
    ),
    # CloudFront signed URLs: canned (Expires) or custom (Policy) policy.
    (
        frozenset({"signature", "key-pair-id"}),
        frozenset({"expires", "policy", "signature", "key-pair-id"}),
    ),
    # Meta's CDN (the SA-1B links): signature, expiry and per-signing cache keys.
    (frozenset({"oh", "oe"}), frozenset({"oh", "oe", "_nc_*"})),
    # Token authentication of CDNs such as Bunny and KeyCDN: a token with its expiry.
    (frozenset({"token", "expires"}), frozenset({"token", "expires", "token_path"})),
    (frozenset({"token", "expire"}), frozenset({"token", "expire"})),
    # Akamai's token (``exp=...~acl=...~hmac=...`` in one parameter), by its usual names.
    (frozenset({"__token__"}), frozenset({"__token__"})),
    (frozenset({"hdnts"}), frozenset({"hdnts"})),
)


def _signing_params(names: set[str]) -> tuple[set[str], tuple[str, ...]]:
    """The signing parameters to drop for a URL whose query has ``names`` (lower case):
    exact names and name prefixes, from every kind of signed URL it is."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for proof, signing in _SIGNED_KINDS:
        if proof <= names:
            exact.update(name for name in signing if not name.endswith("*"))
            prefixes.extend(name[:-1] for name in signing if name.endswith("*"))
    return exact, tuple(prefixes)


def identity(url: str) -> str:
    """The object a URL names, for deciding whether a partial or a ledger row belongs to it.

    Credentials are redacted (:func:`redact`) and, for a signed URL of a known kind (S3 or GCS
    presigned, Azure SAS, CloudFront, Meta's CDN), that kind's signing parameters (signature,
    date, expiry, SAS fields) are dropped, so a URL signed again tomorrow still resumes the
    same partial. Every other parameter is kept: ``?file=x&sp=train`` and ``?file=x&sp=test``
    are two objects, as are two ``versionId`` values.
    """
    if _NOTHING_TO_HIDE.match(url):
        return url
    url = redact(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    exact, prefixes = _signing_params({k.lower() for k, _ in pairs})
    query = urlencode(
        [(k, v) for k, v in pairs if k.lower() not in exact and not k.lower().startswith(prefixes)]
    )
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, query, ""))
