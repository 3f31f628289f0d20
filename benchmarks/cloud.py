"""Cloud stores: one 1 GiB object on moto (S3), the GCS emulator and Azurite (issue 19 item 4).

    python benchmarks/cloud.py                         # 1024 MiB, 3 rounds, every store
    python benchmarks/cloud.py --size-mib 256 --rounds 5 --stores s3 az

Each server runs in its own process on a free loopback port (the tests/servers helpers: moto and
gcp-storage-emulator in a child Python, Azurite is Node): in-process they would share the GIL
with the clients. Per store, same run, order alternating each round, fresh directories:

- resumable's default call with SHA-256: ``ResumableDownloader(storage_options=...).download(
  url, dest, sha256=...)`` with default settings, the endpoint and credentials passed as the
  tests do (``resumable.download()`` takes no ``storage_options``);
- S3: boto3 ``download_file`` tuned to one GET (``multipart_threshold`` above the object
  size), s3fs ``get``. Tuned on 1 GiB from moto, two rounds: ``max_concurrency`` 8/16 x
  ``multipart_chunksize`` 8/16/32/64 MiB took 75/37/18/9.4 s (8 threads) and 73/35/17/8.8 s
  (16), one GET 1.1 s: moto reads and copies the whole object for every GET, ranged or not
  (``FakeKey.value``), so each part costs a full-object copy under one lock;
- GCS: gcsfs ``get``;
- Azure: adlfs ``get``; azure-storage-blob ``download_blob(max_concurrency=8).readinto`` with
  ``max_chunk_get_size`` 64 MiB (1 GiB on Azurite, 3 rounds, one thread: the default 32 MiB
  first GET + 4 MiB chunks 7.8 s, 64 MiB chunks 2.8 s; eight threads of 64 MiB 1.9 s);
- obstore (Rust ``object_store``, 0.12) streaming one GET, where it can talk to the emulator:
  not the GCS emulator (no ``Last-Modified`` on its GETs, 501 on HEAD; obstore refuses that).

One record per store: resumable's median against the best (smallest) median of the other
clients, target ratio <= 1.0. The emulators are the bottleneck (the GCS one serves one request
at a time), so the numbers measure client overhead and how each client drives a slow server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import DATA, HERE, MiB, Tool, alternate, make_file, parse, record, table
from servers.azurite import ACCOUNT, ACCOUNT_KEY, AzuriteServer, azurite_available
from servers.gcs import GCSEmulator, gcs_emulator_available
from servers.moto_s3 import KEY, REGION, SECRET, MotoS3Server, moto_available

import resumable

BUCKET = "bench"
OBJECT = "object.bin"
OURS = "resumable default + sha256"
OBSTORE = "obstore get (stream)"
NAMES = {"s3": "moto (S3)", "gs": "the GCS emulator", "az": "Azurite"}

# A child Python that starts one tests/servers helper, prints its port, and stops it at EOF.
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from servers.{module} import {cls}
server = {cls}().start()
print(server.port, flush=True)
sys.stdin.read()
server.stop()
"""


@contextlib.contextmanager
def child_server(module: str, cls: type) -> Iterator[Any]:
    """``cls`` started in another process; yields an unstarted local ``cls`` with its port."""
    code = CHILD.format(module=module, cls=cls.__name__)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(HERE.parent / "tests")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip().isdigit():
            raise RuntimeError(f"{cls.__name__} did not start (exit code {proc.wait()})")
        server = cls()
        server.port = int(line)
        yield server
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ours(options: dict[str, Any], sha256: str) -> Tool:
    downloader = resumable.ResumableDownloader(storage_options=options)

    def run(url: str, path: Path) -> None:
        result = downloader.download(url, path, sha256=sha256)
        assert result.status == "downloaded", result.status

    return run


def obstore_get(kind: str, **options: Any) -> dict[str, Tool]:
    """obstore streaming one GET, when installed (no dependency of resumable, nor of nox)."""
    try:
        import obstore
        import obstore.store
    except ImportError:
        print("obstore is not installed: skipped")
        return {}
    store = getattr(obstore.store, kind)(BUCKET, **options)

    def run(url: str, path: Path) -> None:
        with open(path, "wb") as f:
            for chunk in obstore.get(store, OBJECT).stream(min_chunk_size=8 * MiB):
                f.write(chunk)

    return {OBSTORE: run}


@contextlib.contextmanager
def s3(source: Path, sha256: str) -> Iterator[tuple[str, dict[str, Tool]]]:
    if not moto_available():
        raise RuntimeError("needs moto[server], boto3 and s3fs (the test dependency group)")
    os.environ.update(MotoS3Server.environ())
    import s3fs
    from boto3.s3.transfer import TransferConfig

    with child_server("moto_s3", MotoS3Server) as server:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(source), BUCKET, OBJECT)
        fs = s3fs.S3FileSystem(**server.storage_options(), skip_instance_cache=True)
        one_get = TransferConfig(multipart_threshold=2 * source.stat().st_size)
        yield (
            f"s3://{BUCKET}/{OBJECT}",
            {
                OURS: ours({"s3": server.storage_options()}, sha256),
                "boto3 download_file (one GET)": lambda url, path: client.download_file(
                    BUCKET, OBJECT, str(path), Config=one_get
                ),
                "s3fs get": lambda url, path: fs.get(url, str(path)),
                **obstore_get(
                    "S3Store",
                    endpoint=server.endpoint_url,
                    allow_http=True,
                    access_key_id=KEY,
                    secret_access_key=SECRET,
                    region=REGION,
                ),
            },
        )


@contextlib.contextmanager
def gs(source: Path, sha256: str) -> Iterator[tuple[str, dict[str, Tool]]]:
    if not gcs_emulator_available():
        raise RuntimeError("needs gcp-storage-emulator and gcsfs (the test dependency group)")
    import gcsfs

    with child_server("gcs", GCSEmulator) as server:
        server.create_bucket(BUCKET)
        fs = gcsfs.GCSFileSystem(**server.storage_options(), skip_instance_cache=True)
        url = f"gs://{BUCKET}/{OBJECT}"
        fs.put(str(source), url)
        print("obstore skipped on the GCS emulator: its GETs lack Last-Modified and HEAD is 501")
        yield (
            url,
            {
                OURS: ours({"gs": server.storage_options()}, sha256),
                "gcsfs get": lambda url, path: fs.get(url, str(path)),
            },
        )


@contextlib.contextmanager
def az(source: Path, sha256: str) -> Iterator[tuple[str, dict[str, Tool]]]:
    if not azurite_available():
        raise RuntimeError("needs azurite-blob and node (bash .ci/install-system-deps)")
    import adlfs
    from azure.storage.blob import BlobClient

    with AzuriteServer() as server:
        service = server.service_client()
        service.create_container(BUCKET)
        blob = service.get_blob_client(BUCKET, OBJECT)
        tuned = BlobClient.from_connection_string(
            server.connection_string, BUCKET, OBJECT, max_chunk_get_size=64 * MiB
        )
        with open(source, "rb") as f:
            blob.upload_blob(f, max_concurrency=4, overwrite=True)
        fs = adlfs.AzureBlobFileSystem(**server.storage_options(), skip_instance_cache=True)

        def readinto(url: str, path: Path) -> None:
            with open(path, "wb") as f:
                tuned.download_blob(max_concurrency=8).readinto(f)

        url = f"az://{BUCKET}/{OBJECT}"
        yield (
            url,
            {
                OURS: ours({"az": server.storage_options()}, sha256),
                "adlfs get": lambda url, path: fs.get(url, str(path)),
                "azure-storage-blob readinto 8 x 64 MiB": readinto,
                **obstore_get(
                    "AzureStore",
                    endpoint=server.blob_endpoint,
                    account_name=ACCOUNT,
                    account_key=ACCOUNT_KEY,
                    client_options={"allow_http": True},
                ),
            },
        )


STORES: dict[
    str, Callable[[Path, str], contextlib.AbstractContextManager[tuple[str, dict[str, Tool]]]]
] = {
    "s3": s3,
    "gs": gs,
    "az": az,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--stores", nargs="+", choices=list(STORES), default=list(STORES))
    args = parse(parser, size_mib=4)
    # gcsfs waits for a 60 s gRPC timeout per call against the emulator without this.
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    ran = 0
    for key in args.stores:
        mib = args.size_mib
        size = mib * MiB
        source = DATA / f"cloud-{mib}.bin"
        sha256 = make_file(source, size)
        label = f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"
        try:
            with STORES[key](source, sha256) as (url, tools):
                times = alternate(tools, url, DATA / "out" / f"cloud-{key}", size, args.rounds)
        except (ImportError, RuntimeError, OSError) as exc:
            print(f"{NAMES[key]} skipped: {exc}", file=sys.stderr)
            continue
        ran += 1
        medians = {name: statistics.median(runs) for name, runs in times.items()}
        best = min((name for name in medians if name != OURS), key=medians.__getitem__)
        ratio = table(f"{label} on {NAMES[key]} (ratios to the best client)", times, size, best)
        print(f"resumable / {best}: {ratio:.2f} (target <= 1.0)")
        sdk = min((n for n in medians if n not in (OURS, OBSTORE)), key=medians.__getitem__)
        print(f"resumable / {sdk} (best provider SDK): {medians[OURS] / medians[sdk]:.2f}")
        record(
            f"{label} on {NAMES[key]}: resumable default + sha256 vs best provider client",
            medians[OURS],
            medians[best],
            target=1.0,
            ours_name="default + sha256",
            reference_name=best,
            runs=times[OURS],
            clients={name: round(m, 3) for name, m in medians.items()},
        )
    return 0 if ran else 2


if __name__ == "__main__":
    sys.exit(main())
