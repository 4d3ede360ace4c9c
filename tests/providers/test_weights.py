"""Locating, assembling and verifying model files (fake part packages, plus the real ones)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from voxcall.errors import ModelIntegrityError, ProviderError
from voxcall.providers import models
from voxcall.providers.models import MODELS, ModelFile, llm_model_path

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 3]
WHOLE = b"".join(PARTS)


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three part packages whose code must never run, and one single-file package."""
    root = tmp_path / "site"
    for i, data in enumerate(PARTS, start=1):
        package = root / f"voxfake_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('part package code was imported')\n")
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
    single = root / "voxfake_single"
    single.mkdir()
    (single / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (single / "model.gguf").write_bytes(WHOLE)
    monkeypatch.syspath_prepend(str(root))
    return tmp_path / "cache"


def _register(monkeypatch: pytest.MonkeyPatch, name: str, sha256: str, *, single: bool = False) -> None:
    parts = (
        (("voxfake_single", "model.gguf"),)
        if single
        else tuple((f"voxfake_part{i}", f"data/part{i:02d}.bin") for i in range(1, 4))
    )
    monkeypatch.setitem(MODELS, name, ModelFile(filename="fake.gguf", sha256=sha256, parts=parts))


def test_assembles_verifies_and_reports_progress(fake_parts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "fake", hashlib.sha256(WHOLE).hexdigest())
    seen: list[tuple[int, int]] = []
    path = llm_model_path("fake", fake_parts, progress=lambda done, total: seen.append((done, total)))  # type: ignore[arg-type]
    assert path == fake_parts / "fake.gguf"
    assert path.read_bytes() == WHOLE
    assert seen[-1] == (2 * len(WHOLE), 2 * len(WHOLE))  # written, then hashed
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert [p.name for p in fake_parts.iterdir() if ".tmp-" in p.name] == []
    sidecar = json.loads((fake_parts / "fake.gguf.verified.json").read_text())
    assert sidecar["sha256"] == hashlib.sha256(WHOLE).hexdigest()
    assert sidecar["size"] == len(WHOLE)


def test_second_call_skips_reassembly(fake_parts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "fake", hashlib.sha256(WHOLE).hexdigest())
    llm_model_path("fake", fake_parts)  # type: ignore[arg-type]
    seen: list[tuple[int, int]] = []
    llm_model_path("fake", fake_parts, progress=lambda d, t: seen.append((d, t)))  # type: ignore[arg-type]
    assert seen == []


def test_modified_file_is_reassembled(fake_parts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "fake", hashlib.sha256(WHOLE).hexdigest())
    path = llm_model_path("fake", fake_parts)  # type: ignore[arg-type]
    path.write_bytes(b"truncated")
    assert llm_model_path("fake", fake_parts).read_bytes() == WHOLE  # type: ignore[arg-type]


def test_hash_mismatch_refuses_and_leaves_nothing(fake_parts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "fake", "0" * 64)
    with pytest.raises(ModelIntegrityError, match="does not match"):
        llm_model_path("fake", fake_parts)  # type: ignore[arg-type]
    assert list(fake_parts.iterdir()) == []


def test_single_file_is_used_in_place_after_verification(fake_parts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "fake", hashlib.sha256(WHOLE).hexdigest(), single=True)
    path = llm_model_path("fake", fake_parts)  # type: ignore[arg-type]
    assert path.parent.name == "voxfake_single"
    assert (fake_parts / "fake.gguf.verified.json").exists()


def test_single_file_mismatch_refuses(fake_parts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "fake", "f" * 64, single=True)
    with pytest.raises(ModelIntegrityError):
        llm_model_path("fake", fake_parts)  # type: ignore[arg-type]


def test_missing_package_and_unknown_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "gone", ModelFile("gone.gguf", "0" * 64, (("voxfake_not_installed", "x.bin"),)))
    with pytest.raises(ProviderError, match="not installed") as info:
        llm_model_path("gone", tmp_path)  # type: ignore[arg-type]
    assert not isinstance(info.value, ModelIntegrityError)
    with pytest.raises(ProviderError, match="unknown model"):
        llm_model_path("gpt-17", tmp_path)  # type: ignore[arg-type]


@pytest.mark.models
@pytest.mark.parametrize("name", ["qwen2.5-1.5b", "smollm2-135m"])
def test_real_weights_match_pinned_hashes(name: str, model_cache: Path) -> None:
    package = MODELS[name].parts[0][0]
    if models.importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} not installed")
    path = llm_model_path(name, model_cache)  # type: ignore[arg-type]
    assert path.is_file()
    with path.open("rb") as file:
        assert file.read(4) == b"GGUF"
