"""The layering promises of docs/architecture.md, checked mechanically."""

from __future__ import annotations

import ast
from pathlib import Path

import voxcall

SRC = Path(voxcall.__file__).resolve().parent


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def test_protocol_is_pure() -> None:
    for path in modules("protocol"):
        source = path.read_text()
        assert "async def" not in source and "import asyncio" not in source, path
        bad = {m for m in imports(path) if m.split(".")[0] in {"fastapi", "starlette", "sqlalchemy", "httpx", "websockets", "asyncio"}}
        assert not bad, (path, bad)


def test_turn_detector_is_pure() -> None:
    source = (SRC / "engine" / "turns.py").read_text()
    assert "async def" not in source and "asyncio" not in source


def test_engine_knows_no_web_framework_or_database() -> None:
    for path in modules("engine"):
        bad = {m for m in imports(path) if m.split(".")[0] in {"fastapi", "starlette", "sqlalchemy"}
               or m.startswith(("voxcall.server", "voxcall.store"))}
        assert not bad, (path, bad)


def test_sdk_imports_nothing_of_the_server() -> None:
    for path in modules("client"):
        bad = {m for m in imports(path) if m.split(".")[0] in {"fastapi", "starlette", "sqlalchemy", "uvicorn"}
               or m.startswith(("voxcall.server", "voxcall.store", "voxcall.engine", "voxcall.providers"))}
        assert not bad, (path, bad)


def test_store_stays_behind_its_repository() -> None:
    for package in ("server", "engine", "client", "protocol", "providers"):
        for path in modules(package):
            assert not {m for m in imports(path) if m.split(".")[0] == "sqlalchemy"}, path


def test_every_module_declares_all() -> None:
    missing = [p for p in SRC.rglob("*.py") if p.name not in {"__main__.py"} and "migrations" not in p.parts
               and p.stat().st_size > 0 and "__all__" not in p.read_text()]
    assert missing == []


def test_sdk_surface() -> None:
    assert sorted(voxcall.__all__) == voxcall.__all__
    for name in voxcall.__all__:
        assert hasattr(voxcall, name), name
    session = voxcall.UltravoxSession()
    assert session.status == voxcall.UltravoxSessionStatus.DISCONNECTED == "disconnected"
