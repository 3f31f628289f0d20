"""One small interface over every object store the fsspec source is tested against.

Why: the guarantees (verified download, resume, restart on overwrite, 404, listing) are the
same for S3, GCS, Azure, local files and fsspec's memory filesystem, so the scenario tests are
written once against :class:`Store` and parametrised over backends. Each store writes objects
with the provider's own client (boto3, the GCS JSON API, azure-storage-blob), never through
the code under test, and hands out the URL and ``storage_options`` a user would pass.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, ClassVar

from .azurite import AzuriteServer
from .gcs import GCSEmulator
from .moto_s3 import MotoS3Server


def unique_name(prefix: str) -> str:
    """A bucket/container name valid on every store (lowercase, digits, dashes, 3-63)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class Store:
    """Objects in one fresh bucket (container, directory) of one backend."""

    scheme: ClassVar[str]
    protocol: ClassVar[str]  # the storage_options key
    # What stat() reports for objects written by put(): provider checksum kinds.
    checksum_kinds: ClassVar[frozenset[str]] = frozenset()
    versioned: ClassVar[bool] = False

    def put(self, name: str, data: bytes) -> str:
        """Write ``data`` as object ``name`` (replacing it); return its URL."""
        raise NotImplementedError

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def url(self, name: str) -> str:
        raise NotImplementedError

    def storage_options(self) -> dict[str, dict[str, Any]]:
        """``ResumableDownloader(storage_options=...)`` for this store."""
        return {}


class S3Store(Store):
    scheme = "s3"
    protocol = "s3"
    checksum_kinds = frozenset({"md5", "crc32"})

    def __init__(self, server: MotoS3Server, *, versioned: bool = False) -> None:
        self.server = server
        self.client = server.client()
        self.bucket = unique_name("versioned" if versioned else "bucket")
        self.client.create_bucket(Bucket=self.bucket)
        if versioned:
            self.client.put_bucket_versioning(
                Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        self.versioned = versioned

    def put(self, name: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=name, Body=data)
        return self.url(name)

    def put_multipart(self, name: str, data: bytes, part_size: int = 5 << 20) -> str:
        """Upload in parts: the ETag becomes ``md5(part md5s)-N``, not the file's MD5."""
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=name)
        parts = []
        for number, offset in enumerate(range(0, len(data), part_size), start=1):
            answer = self.client.upload_part(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=data[offset : offset + part_size],
            )
            part = {"PartNumber": number, "ETag": answer["ETag"]}
            part.update({k: v for k, v in answer.items() if k.startswith("Checksum")})
            parts.append(part)
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=name,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": parts},
        )
        return self.url(name)

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=name)

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}"

    def storage_options(self) -> dict[str, dict[str, Any]]:
        return {"s3": self.server.storage_options()}


class GCSStore(Store):
    scheme = "gs"
    protocol = "gs"
    checksum_kinds = frozenset({"md5", "crc32c"})
    versioned = True  # generations

    def __init__(self, server: GCSEmulator) -> None:
        self.server = server
        self.bucket = unique_name("bucket")
        server.create_bucket(self.bucket)

    def put(self, name: str, data: bytes) -> str:
        # A multipart upload (metadata + bytes): the emulator refuses an empty media upload.
        boundary = uuid.uuid4().hex
        metadata = json.dumps({"name": name}).encode()
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
                metadata,
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        request = urllib.request.Request(
            f"{self.server.endpoint_url}/upload/storage/v1/b/{self.bucket}/o?uploadType=multipart",
            data=body,
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            json.load(response)
        return self.url(name)

    def delete(self, name: str) -> None:
        quoted = urllib.parse.quote(name, safe="")
        request = urllib.request.Request(
            f"{self.server.endpoint_url}/storage/v1/b/{self.bucket}/o/{quoted}", method="DELETE"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def url(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"

    def storage_options(self) -> dict[str, dict[str, Any]]:
        return {"gs": self.server.storage_options()}


class AzureStore(Store):
    scheme = "az"
    protocol = "az"
    checksum_kinds = frozenset({"md5"})

    def __init__(self, server: AzuriteServer) -> None:
        self.server = server
        self.container = unique_name("container")
        self.service = server.service_client()
        self.service.create_container(self.container)

    def put(self, name: str, data: bytes) -> str:
        blob = self.service.get_blob_client(self.container, name)
        blob.upload_blob(data, overwrite=True)  # one Put Blob: Azure stores its Content-MD5
        return self.url(name)

    def put_staged(self, name: str, data: bytes, block_size: int = 1 << 20) -> str:
        """Put Block + Put Block List: no Content-MD5, as on Azure."""
        from azure.storage.blob import BlobBlock

        blob = self.service.get_blob_client(self.container, name)
        blocks = []
        for number, offset in enumerate(range(0, len(data), block_size)):
            block_id = f"{number:08d}"
            blob.stage_block(block_id, data[offset : offset + block_size])
            blocks.append(BlobBlock(block_id=block_id))
        blob.commit_block_list(blocks)
        return self.url(name)

    def delete(self, name: str) -> None:
        self.service.get_blob_client(self.container, name).delete_blob()

    def url(self, name: str) -> str:
        return f"az://{self.container}/{name}"

    def storage_options(self) -> dict[str, dict[str, Any]]:
        return {"az": self.server.storage_options()}


class LocalStore(Store):
    scheme = "file"
    protocol = "file"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.stat().st_mtime_ns if path.exists() else None
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        if old is not None:  # a same-size rewrite within the clock's resolution still differs
            stamp = max(tmp.stat().st_mtime_ns, old + 1_000_000)
            os.utime(tmp, ns=(stamp, stamp))
        tmp.replace(path)
        return self.url(name)

    def delete(self, name: str) -> None:
        (self.root / name).unlink()

    def url(self, name: str) -> str:
        return (self.root / name).as_uri()


class MemoryStore(Store):
    scheme = "memory"
    protocol = "memory"

    def __init__(self) -> None:
        import fsspec

        self.fs = fsspec.filesystem("memory")
        self.bucket = unique_name("bucket")

    def put(self, name: str, data: bytes) -> str:
        self.fs.pipe_file(f"/{self.bucket}/{name}", data)
        return self.url(name)

    def delete(self, name: str) -> None:
        self.fs.rm_file(f"/{self.bucket}/{name}")

    def url(self, name: str) -> str:
        return f"memory://{self.bucket}/{name}"
