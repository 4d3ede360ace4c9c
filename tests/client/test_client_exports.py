"""The SDK's public surface is exactly what is documented, and it stays off the server side."""

from __future__ import annotations

import ast
import importlib
import pathlib

import voxcall.client

DOCUMENTED = {
    "AudioDeviceError",
    "AudioSink",
    "AudioSource",
    "BytesSink",
    "Client",
    "ClientToolResult",
    "MicrophoneSource",
    "RealtimeClient",
    "SpeakerSink",
    "Transcript",
    "UltravoxSession",
    "UltravoxSessionStatus",
    "WavFileSink",
    "WavFileSource",
}
ALLOWED_INTERNAL = ("voxcall.client", "voxcall.protocol", "voxcall.errors", "voxcall.audio")


def test_client_package_exports() -> None:
    assert set(voxcall.client.__all__) == DOCUMENTED
    for name in DOCUMENTED:
        assert getattr(voxcall.client, name) is not None


def test_every_module_declares_all_and_imports_only_allowed_layers() -> None:
    folder = pathlib.Path(voxcall.client.__file__).parent
    for path in sorted(folder.glob("*.py")):
        module = importlib.import_module(f"voxcall.client.{path.stem}" if path.stem != "__init__" else "voxcall.client")
        assert hasattr(module, "__all__"), path.name
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else ([a.name for a in node.names] if isinstance(node, ast.Import) else [])
            )
            for name in names:
                if name.startswith("voxcall"):
                    assert name.startswith(ALLOWED_INTERNAL), f"{path.name} imports {name}"
                assert not name.startswith(("fastapi", "starlette", "sqlalchemy")), f"{path.name} imports {name}"
