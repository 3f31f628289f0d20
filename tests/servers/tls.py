"""A throwaway certificate authority for HTTPS tests (``trustme``).

``TLSFiles`` holds a CA, a certificate for ``127.0.0.1`` and ``localhost`` issued by it, the
server's ``ssl.SSLContext``, and the CA bundle as a PEM file, which is what a client is given
(``ResumableDownloader(verify=bundle)``). A client without the bundle must refuse the server.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TLSFiles:
    server_context: ssl.SSLContext
    ca_bundle: Path


def make_tls(folder: Path) -> TLSFiles:
    """A new CA and a server context whose certificate it signed; the bundle goes in ``folder``."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    bundle = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return TLSFiles(context, bundle)
