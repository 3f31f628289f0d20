"""``import resumable`` stays cheap: the heavy modules load when a feature first needs them.

Each check runs a fresh interpreter on the package under test (its folder first on
``PYTHONPATH``), since this process has long imported everything. What is checked is which
modules are loaded, not a time: ``benchmarks/import_cost.py`` measures the time.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import resumable

HEAVY = (
    "tarfile",
    "zipfile",
    "lzma",
    "bz2",
    "sqlite3",
    "concurrent.futures",
    "asyncio",
    "requests",
    "urllib3",
    "fsspec",
    "tqdm",
)
PACKAGE_ROOT = Path(resumable.__file__).resolve().parent.parent


def run(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the heavy modules loaded at its end, sorted."""
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    tail = f"\nimport json, sys\nprint(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    out = subprocess.run(
        [sys.executable, "-c", code + tail],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_the_package_under_test_is_the_one_imported() -> None:
    code = f"import resumable\nassert resumable.__file__ == {resumable.__file__!r}"
    run(code)


def test_import_resumable_loads_no_heavy_module() -> None:
    assert run("import resumable") == []


def test_the_engine_machinery_loads_with_the_first_downloader() -> None:
    """``import resumable`` needs the settings and result values, not the engine below them."""
    probe = (
        "import sys, resumable\n"
        "assert 'resumable.engine.engine' not in sys.modules, 'at import'\n"
        "assert 'resumable.engine.request' not in sys.modules, 'at import'\n"
        "resumable.ResumableDownloader().close()\n"
        "assert 'resumable.engine.engine' in sys.modules, 'after a downloader'\n"
    )
    run(probe)


def test_batch_extraction_and_bars_load_when_first_named() -> None:
    probe = (
        "import sys, resumable\n"
        "lazy = ('resumable.extract', 'resumable.batch.job', 'resumable.progress.bars')\n"
        "assert not [m for m in lazy if m in sys.modules], 'at import'\n"
        "assert set(resumable.__all__) <= set(dir(resumable))\n"
        "from resumable import Untar, BatchResult, TqdmProgress\n"
        "assert all(m in sys.modules for m in lazy), 'when named'\n"
        "assert resumable.Untar is Untar and 'Untar' in vars(resumable)  # kept once loaded\n"
        "try:\n"
        "    resumable.NoSuchName\n"
        "except AttributeError as exc:\n"
        "    assert 'NoSuchName' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('an unknown name must be an AttributeError')\n"
    )
    run(probe)


def test_the_public_names_and_testing_load_no_heavy_module() -> None:
    # Every public name but ``adownload``, which is asyncio's own entry point (imported on
    # first use by the package's ``__getattr__``).
    code = (
        "import resumable, resumable.testing, resumable.extract, resumable.batch\n"
        "for name in resumable.__all__:\n"
        "    if name != 'adownload':\n"
        "        getattr(resumable, name)\n"
    )
    assert run(code) == []


def test_adownload_loads_asyncio() -> None:
    assert "asyncio" in run("import resumable\nresumable.adownload")


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _extracting(archive: Path, processor: str, dest: Path) -> str:
    """A script: download ``archive`` from memory with ``processor``; nothing heavy before."""
    return f"""
import sys
from pathlib import Path
import resumable
from resumable.testing import MemorySource
assert "tarfile" not in sys.modules and "zipfile" not in sys.modules
data = Path({str(archive)!r}).read_bytes()
url = "mem://b/{archive.name}"
with resumable.ResumableDownloader(sources={{"mem": MemorySource({{url: data}})}}) as d:
    r = d.download(url, {str(dest)!r}, process=resumable.{processor})
assert r.extracted is not None and r.extracted.status == "extracted", r
"""


def test_untar_loads_tarfile_when_used_and_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "src" / "set.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(_tar_gz({"a/b.txt": b"bee", "c.txt": b"sea"}))
    dest = tmp_path / "out" / "set.tar.gz"
    loaded = run(_extracting(archive, "Untar()", dest))
    assert "tarfile" in loaded
    assert (tmp_path / "out" / "set" / "a" / "b.txt").read_bytes() == b"bee"
    assert (tmp_path / "out" / "set" / "c.txt").read_bytes() == b"sea"


def test_unzip_loads_zipfile_when_used_and_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "src" / "set.zip"
    archive.parent.mkdir()
    archive.write_bytes(_zip({"a/b.txt": b"bee"}))
    dest = tmp_path / "out" / "set.zip"
    loaded = run(_extracting(archive, "Unzip()", dest))
    assert "zipfile" in loaded
    assert (tmp_path / "out" / "set" / "a" / "b.txt").read_bytes() == b"bee"


def test_decompress_xz_loads_lzma_when_used(tmp_path: Path) -> None:
    import lzma

    archive = tmp_path / "src" / "t.csv.xz"
    archive.parent.mkdir()
    archive.write_bytes(lzma.compress(b"id\n1\n"))
    dest = tmp_path / "out" / "t.csv.xz"
    loaded = run(_extracting(archive, "Decompress()", dest))
    assert "lzma" in loaded
    assert (tmp_path / "out" / "t.csv").read_bytes() == b"id\n1\n"


def test_a_batch_loads_sqlite3_for_its_ledger(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    code = f"""
import sys
import resumable
from resumable.testing import MemorySource
assert "sqlite3" not in sys.modules
source = MemorySource({{"mem://b/x": b"x" * 10, "mem://b/y": b"y" * 20}})
with resumable.ResumableDownloader(sources={{"mem": source}}) as d:
    r = d.download_many(["mem://b/x", "mem://b/y"], {str(dest)!r})
r.raise_for_errors()
"""
    assert "sqlite3" in run(code)
    assert (dest / "x").read_bytes() == b"x" * 10
    assert (dest / "y").read_bytes() == b"y" * 20
    assert (dest / ".resumable" / "ledger.sqlite").is_file()
