"""moto's S3 server in-process: a real S3 wire protocol on loopback, for the fsspec source.

Why moto: it speaks the S3 REST API (SigV4, ranges, ``If-Match``, versioning, multipart, the
additional checksums) closely enough that s3fs and boto3 run unmodified against it, and it starts
in a thread in well under a second. Facts that shape the tests (see shared/TEST-SERVERS.md):

- single-part ETag = MD5 of the bytes; multipart ETag = ``md5(part md5s)-N`` (not a file MD5);
- ``If-Match`` mismatch -> 412, but ``If-Range`` is ignored (so the source pins with If-Match);
- versioned buckets return ``VersionId`` and serve old versions by id;
- recent botocore adds a CRC32 checksum on PUT, visible with ``ChecksumMode="ENABLED"``.

Credentials are the fake ``testing`` pair; :meth:`MotoS3Server.environ` gives the variables a test
session sets so that no real AWS configuration on the machine is ever read.
"""

from __future__ import annotations

import http.client
import importlib.util
from typing import Any

from .ports import HOST

KEY = "testing"
SECRET = "testing"
REGION = "us-east-1"


def moto_available() -> bool:
    """Whether moto's server extra (and boto3 to seed it) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("moto", "flask", "boto3"))


class MotoS3Server:
    """``moto.server.ThreadedMotoServer`` on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self._server: Any = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @staticmethod
    def environ() -> dict[str, str]:
        """Environment for clients: fake credentials, a region, no config files from $HOME."""
        return {
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def storage_options(self) -> dict[str, Any]:
        """s3fs options for this server (``ResumableDownloader(storage_options={"s3": ...})``)."""
        return {"endpoint_url": self.endpoint_url, "key": KEY, "secret": SECRET}

    def client(self) -> Any:
        """A boto3 S3 client for seeding buckets and objects."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        )

    def reset(self) -> None:
        """Forget every bucket and object (moto's ``POST /moto-api/reset``)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request("POST", "/moto-api/reset")
            conn.getresponse().read()
        finally:
            conn.close()

    def start(self) -> MotoS3Server:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        self._server.start()
        self.port = int(self._server.get_host_and_port()[1])
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
