"""The .partial protocol's local guarantees: sidecars, symlinks, owner tokens, promote."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from resumable import LocalError, PartialTakenOver
from resumable.partial import FORMAT_VERSION, Partial


def test_sidecar_round_trips_and_never_stores_credentials(tmp_path: Path) -> None:
    partial = Partial(tmp_path / "f.bin")
    url = "https://u:pw@h/f.bin?X-Amz-Signature=SIG&X-Amz-Credential=CRED"
    partial.write_sidecar(url, {"etag": '"e"', "size": 3}, {"size": 3})
    text = partial.meta.read_text()
    assert "SIG" not in text
    assert "CRED" not in text
    assert "pw" not in text
    sidecar = partial.read_sidecar()
    assert sidecar is not None
    assert sidecar.owner == partial.owner
    assert sidecar.validators == {"etag": '"e"', "size": 3}
    assert json.loads(text)["format"] == FORMAT_VERSION
    assert not list(tmp_path.glob("*.tmp"))  # the temp file was renamed into place


@pytest.mark.parametrize("content", ["", "{not json", "[]", '{"format": 1}', '{"format": "x"}'])
def test_unreadable_sidecars_are_ignored(tmp_path: Path, content: str) -> None:
    partial = Partial(tmp_path / "f.bin")
    partial.meta.write_text(content)
    assert partial.read_sidecar() is None


def test_a_sidecar_from_a_newer_format_is_refused_and_left_alone(tmp_path: Path) -> None:
    partial = Partial(tmp_path / "f.bin")
    partial.meta.write_text(json.dumps({"format": FORMAT_VERSION + 1, "owner": "x"}))
    with pytest.raises(LocalError, match="newer resumable"):
        partial.read_sidecar()
    assert partial.meta.exists()


def test_a_partial_that_is_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("keep me")
    partial = Partial(tmp_path / "f.bin")
    partial.data.symlink_to(elsewhere)
    with pytest.raises(LocalError, match="symlink"):
        partial.open()
    assert elsewhere.read_text() == "keep me"


def test_open_keeps_existing_bytes_and_write_is_positional(tmp_path: Path) -> None:
    partial = Partial(tmp_path / "f.bin")
    partial.data.write_bytes(b"abc")
    assert partial.open() == 3
    partial.write(b"XY", 1)
    partial.write(b"Z", 3)
    partial.close()
    assert partial.data.read_bytes() == b"aXYZ"


def test_promote_moves_the_partial_into_place_and_removes_the_sidecar(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    partial = Partial(dest)
    partial.open()
    partial.write_sidecar("https://h/f", {}, {})
    partial.write(b"new", 0)
    partial.promote()
    assert dest.read_bytes() == b"new"
    assert not partial.data.exists()
    assert not partial.meta.exists()


def test_a_writer_stops_when_another_took_the_partial_over(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    first, second = Partial(dest), Partial(dest)
    first.open()
    first.write_sidecar("https://h/f", {}, {})
    second.write_sidecar("https://h/f", {}, {})  # a lock that silently did not hold
    with pytest.raises(PartialTakenOver):
        first.truncate(0)
    with pytest.raises(PartialTakenOver):
        first.promote()
    assert not dest.exists()
    first.close()


def test_promote_refuses_a_partial_replaced_under_it(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    partial = Partial(dest)
    partial.open()
    partial.write_sidecar("https://h/f", {}, {})
    replacement = tmp_path / "other"
    replacement.write_bytes(b"not ours")
    os.replace(replacement, partial.data)
    with pytest.raises(PartialTakenOver):
        partial.promote()
    assert not dest.exists()
    partial.close()


def test_lock_file_is_removed_once_the_destination_is_complete(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    partial = Partial(dest)
    with partial.locked():
        assert partial.lockfile.exists()
        dest.write_bytes(b"done")
    assert not partial.lockfile.exists()
    partial.data.write_bytes(b"half")
    with partial.locked():
        pass  # a partial remains: its lock file stays beside it
    assert partial.lockfile.exists()


def test_a_writer_stops_when_its_sidecar_disappeared(tmp_path: Path) -> None:
    """Another writer published (or removed) the partial: our descriptor may point into its
    finished file, so nothing more may be written through it."""
    dest = tmp_path / "f.bin"
    partial = Partial(dest)
    partial.open()
    partial.write_sidecar("https://h/f", {}, {})
    os.replace(partial.data, dest)  # what the other writer's promote does
    os.unlink(partial.meta)
    with pytest.raises(PartialTakenOver, match="disappeared"):
        partial.check_owner()
    with pytest.raises(PartialTakenOver, match="disappeared"):
        partial.promote()
    partial.close()


def test_a_killed_writers_sidecar_temp_file_is_removed_on_resume(tmp_path: Path) -> None:
    """kill -9 between writing the sidecar's temp file and renaming it leaves the temp file."""
    dest = tmp_path / "f.bin"
    dead = Partial(dest)
    dead.open()
    dead.write_sidecar("https://h/f", {}, {})
    dead.close()
    stale = tmp_path / f"f.bin.partial.json.{dead.owner}.tmp"
    stale.write_text("{half a sid")
    unrelated = tmp_path / "g.bin.partial.json.0123.tmp"  # another destination's: left alone
    unrelated.write_text("{}")
    resumed = Partial(dest)
    resumed.open()  # the partial existed: an interrupted writer's leftovers are cleared
    resumed.close()
    assert not stale.exists()
    assert unrelated.exists()
    assert resumed.read_sidecar() is not None


def test_a_partial_published_under_a_writer_is_never_truncated_through_it(tmp_path: Path) -> None:
    """Without a working lock: this writer opened D.partial, then another writer published it
    (renamed it onto D) and removed its sidecar. This writer, finding no sidecar, claims the
    partial to start over; truncating through its descriptor would empty the published D."""
    dest = tmp_path / "f.bin"
    late = Partial(dest)
    late.data.write_bytes(b"the complete, verified file")
    late.open()
    os.replace(late.data, dest)  # the other writer's promote
    late.write_sidecar("https://h/f", {}, {})
    with pytest.raises(PartialTakenOver, match="disappeared"):
        late.truncate(0)
    with pytest.raises(PartialTakenOver):
        late.check_owner()  # what a writer runs before its writes and checkpoints
    assert dest.read_bytes() == b"the complete, verified file"
    late.remove_orphan_sidecar()  # the claim it wrote for a partial that is gone
    assert not late.meta.exists()
    late.close()
