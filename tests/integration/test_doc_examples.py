"""Every fenced code block in README.md and docs/**/*.md runs, on loopback, as written.

Why: an example that no longer works (a renamed argument, a feature described as "in progress"
after it shipped, an output that changed) misleads every reader who copies it. Running each block
makes a stale example fail CI. One block is one test, named ``page:line`` of its opening fence.

Which blocks run, by the fence's language tag:

- ``python``: written to ``example.py`` and run with this interpreter in a fresh subprocess and
  a fresh working directory (so ``if __name__ == "__main__":`` runs too). A block that starts with
  ``>>>`` is a doctest: its output lines are checked.
- ``bash``, ``sh``, ``shell``: run with ``bash -e``; ``console``: only the ``$ `` lines run, the
  others are output. ``resumable``, ``python`` and ``python3`` are this interpreter and this
  checkout. Commands that install packages or run the project's own tooling (``pip``, ``nox``,
  ``.ci/run``, ``benchmarks/``) are left out: CI runs those itself. A block left with nothing to
  run is reported as skipped, with that reason.
- ``text``, ``json``, ``http`` and the other sample languages (output, file formats, protocol
  exchanges) never run. A fence without a language tag is an error: say what it holds. A sample
  with ``$ command`` lines is a transcript: tag it ``console`` so its commands run.

Markers, an HTML comment on the line before a fence (invisible on the site):

- ``<!-- docs-test: continue -->``: the block continues the page's previous Python block (a
  notebook cell, a fragment using its names); both run together, in order.
- ``<!-- docs-test: skip REASON -->``: the block cannot run on loopback (it needs a SLURM
  cluster or a GPU launcher). Skips must give a reason and stay few (see the test below).

What the test changes, and nothing else (:func:`localise`):

- hosts: ``https://example.org/...`` and the other example hosts go to a loopback server that
  answers every path with a small archive chosen by the extension (``servers/anypath.py``); the
  private-CA example's ``https://data.internal`` goes to the same server over TLS, and
  ``/etc/ssl/private-ca.pem`` to its CA bundle; ``http://localhost:9000`` (a MinIO) to moto.
- example values: the placeholder SHA-256, MD5 and SHA-1 digests and ``size=10_485_760`` become
  the served archive's real ones;
- absolute data folders (``/shared/``, ``/lustre/``, ``/scratch/``, ``/local_nvme/``,
  ``/mnt/nfs/``) move into the block's working directory;
- environment: ``s3://`` reaches moto (``AWS_ENDPOINT_URL``, an AWS config with the
  ``datasets`` profile the examples name), ``gs://`` the GCS emulator, ``az://`` Azurite, and
  ``Client("tcp://scheduler:8786")`` a Dask ``LocalCluster`` started here;
- inputs an example reads without creating (``sa1b_links.txt``, ``SHA256SUMS``,
  ``manifest.tsv``, ...) are written into its working directory first (:func:`write_inputs`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import require_server
from doc_blocks import (
    ALL_BLOCKS,
    PAGES,
    PYTHON,
    ROOT,
    SAMPLES,
    SHELL,
    Block,
    program,
    runnable,
    shell_commands,
    stray_markers,
)
from servers import azurite_available, gcs_emulator_available, make_tls, moto_available
from servers.anypath import TAR, ArchiveServer, body_for, sha256sums

MAX_SKIPS = 5
TIMEOUT = 120
PARALLEL = 3

HOSTS = ("data.example.org", "mirror.example.net", "bucket.s3.amazonaws.com", "example.org")
PLACEHOLDERS = {
    "9fded5fb2bab01b5e4a6c1d0f0e3c6c3b7f2d5a1e8c4b9a0d3f6e2c1b8a7d4e5": hashlib.sha256(
        TAR
    ).hexdigest(),
    "d41d8cd98f00b204e9800998ecf8427e": hashlib.md5(TAR).hexdigest(),
    "da39a3ee5e6b4b0d3255bfef95601890afd80709": hashlib.sha1(TAR).hexdigest(),
    "10_485_760": str(len(TAR)),
}
DATA_FOLDERS = ("/shared/", "/lustre/", "/scratch/", "/local_nvme/", "/mnt/nfs/")

S3_OBJECTS = {
    "bucket": [
        "dataset/train/shard-000000.tar",
        "dataset/train/shard-000001.tar",
        "dataset/val/a.tar",
    ],
    "my-bucket": ["sa1b/sa_000000.tar"],
    "imagenet": ["train-000.tar"],
    "datasets": ["sa1b/sa_000000.tar"],
}
GCS_OBJECTS = {
    "bucket": [f"imagenet/shard-{i:06d}.tar" for i in range(141)],
    "my-bucket": ["imagenet/train-00000-of-01024"],
    "lpr-vision": [f"imagenet/imagenet_train-{i:06d}.tgz" for i in range(141)],
}
AZURE_OBJECTS = {"container": ["shards/shard-000000.tar"]}

RUNNABLE = [b for b in ALL_BLOCKS if runnable(b)]


# -- the rules themselves ------------------------------------------------------------------------


def test_every_block_says_what_it_holds() -> None:
    unknown = [
        f"{b.id} ({b.lang or 'no tag'})"
        for b in ALL_BLOCKS
        if not runnable(b) and b.lang not in SAMPLES
    ]
    assert unknown == [], "tag each fence: python, bash, console, or a sample language (text, ...)"


def test_transcripts_are_tagged_console() -> None:
    """A sample that shows ``$ command`` lines is a transcript: tagged ``console``, it runs."""
    disguised = [b.id for b in ALL_BLOCKS if b.lang in SAMPLES and "\n$ " in "\n" + b.text]
    assert disguised == []


def test_skips_are_few_and_explained() -> None:
    skipped = [b for b in ALL_BLOCKS if b.marker == "skip"]
    assert all(len(b.reason) >= 10 for b in skipped), [b.id for b in skipped if len(b.reason) < 10]
    assert len(skipped) <= MAX_SKIPS, [b.id for b in skipped]
    assert all(runnable(b) for b in skipped), "only a block that would run can be skipped"


def test_markers_sit_right_before_a_fence() -> None:
    assert [m for page in PAGES for m in stray_markers(page)] == []


def test_the_blocks_are_found() -> None:
    """The parser is not silently finding nothing: the README alone has several runnable blocks."""
    readme = [b for b in RUNNABLE if b.page.name == "README.md"]
    assert len(readme) >= 5
    assert {b.lang for b in readme} >= {"python", "bash"}
    assert len(RUNNABLE) >= 60


def test_the_readme_test_command_is_what_ci_runs() -> None:
    """The README's second command and ``.ci/run`` are one command: CI proves the README's."""
    readme = [b for b in ALL_BLOCKS if b.page.name == "README.md" and b.lang in SHELL]
    command = readme[1].text.strip()
    ci = [line.replace(" -q ", " ") for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert " && ".join(line for line in ci if line.startswith("python3 -m")) == command


def test_shell_rules() -> None:
    """Installs and the project's tooling are left out; the command beside them still runs."""
    text = "python3 -m pip install . && python3 -m resumable demo\nnox -s docs\n"
    text += "resumable x \\\n  -d y\n"
    assert shell_commands(text) == (
        ["python3 -m resumable demo", "resumable x -d y"],
        ["python3 -m pip install .", "nox -s docs"],
    )
    console = "$ resumable --dry-run x\nplan: 1 files, 10 B\n$ pip install resumable\n"
    assert shell_commands(console, "console") == (
        ["resumable --dry-run x"],
        ["pip install resumable"],
    )


def test_localise_makes_hosts_values_and_folders_local(tmp_path: Path) -> None:
    text = 'd.download("https://data.example.org/a.tar", "/shared/a.tar", size=10_485_760)'
    local = localise(text, tmp_path, {"http": "http://127.0.0.1:1"})
    assert local == (
        f'd.download("http://127.0.0.1:1/data.example.org/a.tar", "{tmp_path}/shared/a.tar", '
        f"size={len(TAR)})"
    )


# -- the world the examples run in ---------------------------------------------------------------


@pytest.fixture(scope="module")
def archives() -> Iterator[ArchiveServer]:
    with ArchiveServer() as server:
        yield server


@pytest.fixture(scope="module")
def tls_archives(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ArchiveServer, Path]]:
    tls = make_tls(tmp_path_factory.mktemp("docs-ca"))
    with ArchiveServer(tls.server_context) as server:
        yield server, tls.ca_bundle


@pytest.fixture(scope="module")
def s3(moto_s3: Any) -> str:
    client = moto_s3.client()
    for bucket, keys in S3_OBJECTS.items():
        client.create_bucket(Bucket=bucket)
        for key in keys:
            client.put_object(Bucket=bucket, Key=key, Body=body_for(key))
    return str(moto_s3.endpoint_url)


@pytest.fixture(scope="module")
def gcs(gcs_emulator: Any) -> str:
    import urllib.request

    for bucket, names in GCS_OBJECTS.items():
        gcs_emulator.create_bucket(bucket)
        for name in names:
            upload = f"{gcs_emulator.endpoint_url}/upload/storage/v1/b/{bucket}/o"
            url = f"{upload}?uploadType=media&name={name}"
            request = urllib.request.Request(url, data=body_for(name), method="POST")
            urllib.request.urlopen(request, timeout=10).read()
    return str(gcs_emulator.endpoint_url)


@pytest.fixture(scope="module")
def azure(azurite: Any) -> str:
    service = azurite.service_client()
    for container, names in AZURE_OBJECTS.items():
        service.create_container(container)
        for name in names:
            service.get_blob_client(container, name).upload_blob(body_for(name))
    return str(azurite.connection_string)


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    from distributed import LocalCluster  # the test group has it

    with LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster.scheduler_address


def localise(text: str, cwd: Path, world: dict[str, str]) -> str:
    """The block's text with the example hosts, values and folders made local (module docstring)."""
    hosts = "|".join(re.escape(h) for h in HOSTS)
    text = re.sub(rf"https://({hosts})(?=[/\"'])", lambda m: f"{world['http']}/{m.group(1)}", text)
    if "tls" in world:
        text = text.replace("https://data.internal", f"{world['tls']}/data.internal")
        text = text.replace("/etc/ssl/private-ca.pem", world["ca"])
    if "s3" in world:
        text = text.replace("http://localhost:9000", world["s3"])
    if "dask" in world:
        text = text.replace("tcp://scheduler:8786", world["dask"])
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    for folder in DATA_FOLDERS:
        text = text.replace(folder, f"{cwd}{folder}")
    return text


def write_inputs(cwd: Path, base: str) -> None:
    """Files the examples read as if the reader had them: links and checksum files, a manifest."""
    links = "file_name\tcdn_link\n" + "".join(
        f"sa_{i:06d}.tar\t{base}/example.org/m1/v/t6/An_{i}.tar?ccb=10-5&oh=00_Afp4EyX&oe=699024E8\n"
        for i in range(12)
    )
    for name in ("sa1b_links.txt", "segment_anything_links.txt", "new_links.txt"):
        (cwd / name).write_text(links)
    (cwd / "SHA256SUMS").write_text(sha256sums())
    digest = hashlib.sha256(TAR).hexdigest()
    (cwd / "manifest.tsv").write_text("".join(f"{i:08d}.jpg\t{digest}\n" for i in range(20)))
    nfs = cwd / "mnt/nfs/datasets"
    nfs.mkdir(parents=True)
    (nfs / "shard-000000.tar").write_bytes(TAR)


def shims(folder: Path) -> Path:
    """``resumable``, ``python`` and ``python3`` as this interpreter, for the shell blocks."""
    folder.mkdir()
    commands = {"resumable": f'exec "{sys.executable}" -m resumable "$@"\n'}
    commands |= dict.fromkeys(("python", "python3"), f'exec "{sys.executable}" "$@"\n')
    for name, body in commands.items():
        (folder / name).write_text("#!/bin/sh\n" + body)
        (folder / name).chmod(0o755)
    return folder


def environment(cwd: Path, world: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "GOOGLE", "AZURE", "STORAGE_"))
    }
    aws_config = cwd / ".aws-config"
    aws_config.write_text(
        "[default]\nregion = us-east-1\n"
        "[profile datasets]\nregion = us-east-1\n"
        "aws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    env |= {
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "PATH": f"{shims(cwd / '.bin')}{os.pathsep}{env['PATH']}",
        "HOME": str(cwd),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(aws_config),
        "AWS_SHARED_CREDENTIALS_FILE": str(cwd / ".aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "GCE_METADATA_HOST": "127.0.0.1:9",  # never the real metadata server
        "GCE_METADATA_IP": "127.0.0.1:9",
        "NO_GCE_CHECK": "true",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "PYTHONUNBUFFERED": "1",
    }
    if "s3" in world:
        env["AWS_ENDPOINT_URL"] = world["s3"]
    if "gcs" in world:
        env["STORAGE_EMULATOR_HOST"] = world["gcs"]
    if "azure" in world:
        env["AZURE_STORAGE_CONNECTION_STRING"] = world["azure"]
    return env


def world_for(text: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Start only the servers this block names (moto, the GCS emulator, Azurite, Dask, TLS)."""
    world = {"http": request.getfixturevalue("archives").url}
    if "s3://" in text or "boto3" in text or "localhost:9000" in text:
        require_server(moto_available(), "moto[server] and boto3 are not installed (test group)")
        world["s3"] = request.getfixturevalue("s3")
    if "gs://" in text:
        require_server(gcs_emulator_available(), "gcp-storage-emulator and gcsfs are not installed")
        world["gcs"] = request.getfixturevalue("gcs")
    if "az://" in text:
        require_server(
            azurite_available(), "Azurite is not installed (npm ci in the repository root)"
        )
        world["azure"] = request.getfixturevalue("azure")
    if "tcp://scheduler:8786" in text:
        world["dask"] = request.getfixturevalue("dask_scheduler")
    if "data.internal" in text or "private-ca.pem" in text:
        server, bundle = request.getfixturevalue("tls_archives")
        world |= {"tls": server.url, "ca": str(bundle)}
    return world


# -- one test per block --------------------------------------------------------------------------


def prepare(
    block: Block, request: pytest.FixtureRequest, folder: Path
) -> tuple[list[str], Path, dict[str, str]]:
    """The command that runs ``block``, in a fresh working directory with its inputs."""
    source = program(block, ALL_BLOCKS) if block.lang in PYTHON else block.text
    world = world_for(source, request)
    cwd = folder / "work"
    cwd.mkdir()
    write_inputs(cwd, world["http"])
    source = localise(source, cwd, world)
    if block.doctest:
        (cwd / "example.txt").write_text(source)
        return [sys.executable, "-m", "doctest", "-o", "ELLIPSIS", "example.txt"], cwd, world
    if block.lang in PYTHON:
        (cwd / "example.py").write_text(source)
        return [sys.executable, "example.py"], cwd, world
    run, setup = shell_commands(source, block.lang)
    if all(line.startswith("export ") for line in run):
        names = [line.split("#")[0].strip() for line in setup]
        pytest.skip(f"setup only (installs packages or runs the dev tooling): {names}")
    (cwd / "example.sh").write_text("\n".join(run) + "\n")
    return ["bash", "-e", "-o", "pipefail", "example.sh"], cwd, world


Ran = tuple[subprocess.CompletedProcess[str], str]
"""A block's finished process and the script it ran (after :func:`localise`)."""


def execute(command: list[str], cwd: Path, world: dict[str, str]) -> Ran:
    env = environment(cwd, world)
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    return done, (cwd / command[-1]).read_text()


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Ran] | BaseException]]:
    """Every selected block, started at once on a few threads: most of a block's time is a
    subprocess starting up and waiting on loopback, so three at a time keep two cores busy.
    Servers start here, on this thread, before the first block runs."""
    prefix = f"{request.node.nodeid}::test_block_runs["
    wanted = {
        item.nodeid[len(prefix) : -1]
        for item in request.session.items
        if item.nodeid.startswith(prefix)
    }
    started: dict[str, Future[Ran] | BaseException] = {}
    with ThreadPoolExecutor(PARALLEL) as pool:
        for block in RUNNABLE:
            if block.id not in wanted or block.marker == "skip":
                continue
            try:
                command, cwd, world = prepare(block, request, tmp_path_factory.mktemp("block"))
            except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:
                # a skip, or a server that cannot start: the block's test reports it
                started[block.id] = exc
                continue
            started[block.id] = pool.submit(execute, command, cwd, world)
        yield started
        pool.shutdown(cancel_futures=True)


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_block_runs(block: Block, runs: dict[str, Future[Ran] | BaseException]) -> None:
    if block.marker == "skip":
        pytest.skip(f"marked in the page: {block.reason}")
    started = runs[block.id]
    if isinstance(started, BaseException):
        raise started
    done, script = started.result()
    numbered = "\n".join(f"{n:4} {line}" for n, line in enumerate(script.splitlines(), 1))
    assert done.returncode == 0, (
        f"{block.id} failed ({done.returncode}):\n--- script\n{numbered}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-6000:]}"
    )
