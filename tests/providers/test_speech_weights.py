"""Locating, assembling and verifying the Whisper and Piper files (fake part packages, plus the real ones)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from voxcall.errors import ModelIntegrityError, ProviderError
from voxcall.providers import models
from voxcall.providers.models import ModelFile, PiperVoiceFiles, piper_voice_paths, whisper_model_dir

PART1, PART2 = b"W" * 3000, b"X" * 1234
SMALL = {"config.json": b'{"a": 1}', "tokenizer.json": b'{"t": 2}', "vocabulary.txt": b"hello\nworld\n"}
VOICE, VOICE_CONFIG = b"ONNX" * 500, b'{"audio": {"sample_rate": 22050}}'


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Whisper part packages and a Piper voice package whose code must never run; returns a cache dir."""
    root = tmp_path / "site"
    for name, files in {
        "voxfake_whisper1": {"data/model.bin.part1": PART1, **{f"data/{k}": v for k, v in SMALL.items()}},
        "voxfake_whisper2": {"data/model.bin.part2": PART2},
        "voxfake_voice": {"data/v.onnx": VOICE, "data/v.onnx.json": VOICE_CONFIG},
    }.items():
        (root / name / "data").mkdir(parents=True)
        (root / name / "__init__.py").write_text("raise RuntimeError('model package code was imported')\n")
        for relative, data in files.items():
            (root / name / relative).write_bytes(data)
    monkeypatch.syspath_prepend(str(root))
    parts = (("voxfake_whisper1", "data/model.bin.part1"), ("voxfake_whisper2", "data/model.bin.part2"))
    monkeypatch.setattr(models, "WHISPER_BASE", ModelFile("model.bin", _sha(PART1 + PART2), parts))
    monkeypatch.setattr(models, "_WHISPER_SMALL_FILES", {name: _sha(data) for name, data in SMALL.items()})
    voice = PiperVoiceFiles("voxfake_voice", "data/v.onnx", _sha(VOICE), "data/v.onnx.json", _sha(VOICE_CONFIG))
    monkeypatch.setattr(models, "PIPER_VOICES", {"fake": voice})
    return tmp_path / "cache"


def test_whisper_dir_is_assembled_with_its_small_files(fake_packages: Path) -> None:
    seen: list[tuple[int, int]] = []
    directory = whisper_model_dir(fake_packages, progress=lambda done, total: seen.append((done, total)))
    assert directory == fake_packages / "whisper-base"
    assert (directory / "model.bin").read_bytes() == PART1 + PART2
    for name, data in SMALL.items():
        assert (directory / name).read_bytes() == data
    assert seen[-1] == (2 * len(PART1 + PART2),) * 2
    assert json.loads((directory / "model.bin.verified.json").read_text())["sha256"] == _sha(PART1 + PART2)
    assert not [path for path in directory.iterdir() if ".tmp-" in path.name]


def test_whisper_dir_second_call_does_no_work_and_repairs_damage(fake_packages: Path) -> None:
    directory = whisper_model_dir(fake_packages)
    seen: list[tuple[int, int]] = []
    whisper_model_dir(fake_packages, progress=lambda d, t: seen.append((d, t)))
    assert seen == []
    (directory / "model.bin").write_bytes(b"truncated")
    (directory / "tokenizer.json").write_bytes(b"swapped")
    whisper_model_dir(fake_packages)
    assert (directory / "model.bin").read_bytes() == PART1 + PART2
    assert (directory / "tokenizer.json").read_bytes() == SMALL["tokenizer.json"]


def test_whisper_dir_refuses_a_bad_model_or_small_file(fake_packages: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_WHISPER_SMALL_FILES", {**models._WHISPER_SMALL_FILES, "vocabulary.txt": "0" * 64})
    with pytest.raises(ModelIntegrityError, match=re.escape("vocabulary.txt")):
        whisper_model_dir(fake_packages)
    assert not (fake_packages / "whisper-base" / "vocabulary.txt").exists()
    monkeypatch.setattr(models, "WHISPER_BASE", ModelFile("model.bin", "f" * 64, models.WHISPER_BASE.parts))
    with pytest.raises(ModelIntegrityError, match=re.escape("model.bin")):
        whisper_model_dir(fake_packages / "other")
    assert list((fake_packages / "other" / "whisper-base").iterdir()) == []


def test_whisper_dir_needs_both_parts(fake_packages: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = (models.WHISPER_BASE.parts[0], ("voxfake_not_installed", "data/model.bin.part2"))
    monkeypatch.setattr(models, "WHISPER_BASE", ModelFile("model.bin", "0" * 64, parts))
    with pytest.raises(ProviderError, match="not installed"):
        whisper_model_dir(fake_packages)


def test_piper_voices_are_verified_in_place(fake_packages: Path) -> None:
    voices = piper_voice_paths(fake_packages)
    model, config = voices["fake"]
    assert model.read_bytes() == VOICE and config.read_bytes() == VOICE_CONFIG
    assert model.parent.parent.name == "voxfake_voice"  # used where the package put it
    assert (fake_packages / "piper-fake.onnx.verified.json").is_file()
    assert piper_voice_paths() == voices  # without a cache dir: hashed again, no sidecar needed


def test_piper_voice_mismatch_and_missing_package(fake_packages: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = models.PIPER_VOICES["fake"]
    bad_model = PiperVoiceFiles(good.package, good.model, "0" * 64, good.config, good.config_sha256)
    monkeypatch.setattr(models, "PIPER_VOICES", {"fake": bad_model})
    with pytest.raises(ModelIntegrityError, match=re.escape("v.onnx")):
        piper_voice_paths(fake_packages)
    bad_config = PiperVoiceFiles(good.package, good.model, good.model_sha256, good.config, "0" * 64)
    monkeypatch.setattr(models, "PIPER_VOICES", {"fake": bad_config})
    with pytest.raises(ModelIntegrityError, match=re.escape("v.onnx.json")):
        piper_voice_paths(fake_packages)
    gone = PiperVoiceFiles("voxfake_not_installed", "a.onnx", "0" * 64, "a.json", "0" * 64)
    monkeypatch.setattr(models, "PIPER_VOICES", {"gone": gone, "fake": good})
    assert list(piper_voice_paths(fake_packages)) == ["fake"]


@pytest.mark.models
def test_real_whisper_and_joe_files_match_pinned_hashes(model_cache: Path) -> None:
    directory = whisper_model_dir(model_cache)
    names = {path.name for path in directory.iterdir()}
    assert {"config.json", "model.bin", "tokenizer.json", "vocabulary.txt", "model.bin.verified.json"} <= names
    model, config = piper_voice_paths(model_cache)["joe"]
    assert model.name == "en_US-joe-medium.onnx"
    assert json.loads(config.read_text())["audio"]["sample_rate"] == 22050
