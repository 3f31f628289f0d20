"""S3: one 512 MiB object from moto, resumable against boto3, s3fs and 16 ranged GETs.

    python benchmarks/s3.py                  # 3 rounds
    python benchmarks/s3.py --rounds 5 --size 256

moto's server runs in its own process (in-process it would share the GIL with the clients).
Tools, same run, order alternating each round:

- resumable (automatic connections, 1 connection, 16 connections), each with SHA-256;
- boto3 ``download_file`` (s3transfer's default: 10 threads of 8 MiB parts);
- s3fs ``get``;
- 16 concurrent boto3 ranged GETs written with ``pwrite``: moto's practical limit here.

Targets: at least boto3 ``download_file``'s throughput (issue 9: time ratio <= 1.0); issue 3:
resumable <= 1.0x s3fs ``get`` and <= 1.1x the 16-ranged-GET limit. moto
itself is the bottleneck (~100 MiB/s on these machines), so the numbers measure overheads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import DATA, MiB, alternate, make_file, parse, record, table
from servers import free_port
from servers.moto_s3 import KEY, REGION, SECRET, moto_available

import resumable

BUCKET = "bench"
AUTO = "resumable automatic + sha256"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=512, help="MiB")
    args = parse(parser, size=8)
    if not moto_available():
        print("needs moto[server], boto3 and s3fs (the test dependency group)", file=sys.stderr)
        return 2
    os.environ.update(
        AWS_ACCESS_KEY_ID=KEY,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    size = args.size * MiB
    source = DATA / f"s3-{args.size}.bin"
    sha256 = make_file(source, size)
    out = DATA / "out"
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = wait_for_moto(endpoint)
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(source), BUCKET, "object.bin")
        url = f"s3://{BUCKET}/object.bin"
        times = alternate(tools(endpoint, client, sha256, size), url, out / "object.bin", size,
                          args.rounds)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    auto = table(f"{args.size} MiB from moto (S3)", times, size, "s3fs get")
    ranged = table("against the ranged-GET limit", times, size, "16 ranged GETs + pwrite")
    ours = statistics.median(times[AUTO])
    boto3 = statistics.median(times["boto3 download_file"])
    print(f"\nresumable automatic / boto3 download_file: {ours / boto3:.2f} (target <= 1.0)")
    print(f"resumable automatic / s3fs get: {auto:.2f} (target <= 1.0)")
    print(f"resumable automatic / 16 ranged GETs: {ranged:.2f} (target <= 1.1)")
    for reference, target in (
        ("boto3 download_file", 1.0),
        ("s3fs get", 1.0),
        ("16 ranged GETs + pwrite", 1.1),
    ):
        record(
            f"S3 {args.size} MiB from moto vs {reference}",
            ours,
            statistics.median(times[reference]),
            target=target,
            ours_name="automatic + sha256",
            reference_name=reference,
            runs=times[AUTO],
        )
    return 0


def wait_for_moto(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.list_buckets()
            return client
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def tools(endpoint: str, client, sha256: str, size: int):  # type: ignore[no-untyped-def]
    import s3fs

    options = {"s3": {"endpoint_url": endpoint}}
    downloaders = {
        name: resumable.ResumableDownloader(storage_options=options, connections=connections)
        for name, connections in (("auto", None), ("1", 1), ("16", 16))
    }
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)

    def ours(name: str):  # type: ignore[no-untyped-def]
        def run(url: str, path: Path) -> None:
            r = downloaders[name].download(url, path, sha256=sha256)
            assert r.status == "downloaded"

        return run

    def s3fs_get(url: str, path: Path) -> None:
        fs.get(url, str(path))

    def boto3_download_file(url: str, path: Path) -> None:
        client.download_file(BUCKET, "object.bin", str(path))

    def ranged(url: str, path: Path) -> None:
        parts = 16
        step = -(-size // parts)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:

            def fetch(start: int) -> None:
                end = min(start + step, size) - 1
                body = client.get_object(
                    Bucket=BUCKET, Key="object.bin", Range=f"bytes={start}-{end}"
                )["Body"]
                offset = start
                while chunk := body.read(MiB):
                    os.pwrite(fd, chunk, offset)
                    offset += len(chunk)

            with ThreadPoolExecutor(parts) as pool:
                list(pool.map(fetch, range(0, size, step)))
        finally:
            os.close(fd)

    return {
        AUTO: ours("auto"),
        "resumable 1 connection + sha256": ours("1"),
        "resumable 16 connections + sha256": ours("16"),
        "s3fs get": s3fs_get,
        "boto3 download_file": boto3_download_file,
        "16 ranged GETs + pwrite": ranged,
    }


if __name__ == "__main__":
    sys.exit(main())
