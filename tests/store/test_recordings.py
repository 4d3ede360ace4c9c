"""RecordingStore: WAV files named by call id, written atomically."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from voxcall.store.recordings import RecordingStore

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40))


def test_save_path_delete(tmp_path: Path) -> None:
    recordings = RecordingStore(tmp_path / "nested" / "recordings")
    call_id = str(uuid.uuid4())
    assert recordings.path(call_id) is None
    recordings.save(call_id, WAV)
    path = recordings.path(call_id)
    assert path == tmp_path / "nested" / "recordings" / f"{call_id}.wav"
    assert path.read_bytes() == WAV
    recordings.save(call_id, b"second")  # replaced
    assert path.read_bytes() == b"second"
    assert os.listdir(path.parent) == [path.name]  # no temporary files left behind
    recordings.delete(call_id)
    assert recordings.path(call_id) is None and not path.exists()
    recordings.delete(call_id)  # deleting twice is harmless


def test_ids_are_canonical_uuids(tmp_path: Path) -> None:
    recordings = RecordingStore(tmp_path)
    call_id = str(uuid.uuid4())
    recordings.save(call_id.upper(), WAV)
    assert recordings.path(call_id) == tmp_path / f"{call_id}.wav"
    assert recordings.path(call_id.upper()) == recordings.path(call_id)
    recordings.delete(call_id.upper())
    assert recordings.path(call_id) is None


@pytest.mark.parametrize("bad", ["../escape", "x", "", "../" + str(uuid.uuid4())])
def test_non_uuid_ids_name_no_file(tmp_path: Path, bad: str) -> None:
    recordings = RecordingStore(tmp_path / "r")
    (tmp_path / "escape.wav").write_bytes(WAV)
    with pytest.raises(ValueError, match="UUID"):
        recordings.save(bad, WAV)
    assert recordings.path(bad) is None
    recordings.delete(bad)
    assert (tmp_path / "escape.wav").exists() and not (tmp_path / "r").exists()


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    recordings = RecordingStore(tmp_path)
    call_id = str(uuid.uuid4())
    recordings.save(call_id, WAV)
    with pytest.raises(TypeError):
        recordings.save(call_id, "not bytes")  # type: ignore[arg-type]
    assert recordings.path(call_id).read_bytes() == WAV  # type: ignore[union-attr]
    assert os.listdir(tmp_path) == [f"{call_id}.wav"]
