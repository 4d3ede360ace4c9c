"""The model host stands beside the call plane: providers below it, no engine, store or call-plane server."""

from __future__ import annotations

from tests.test_architecture import imports, modules


def test_the_model_host_imports_no_engine_store_or_server() -> None:
    paths = modules("modelhost")
    assert len(paths) >= 5
    for path in paths:
        bad = {m for m in imports(path) if m.split(".")[0] == "sqlalchemy"
               or (m.startswith(("voxcall.engine", "voxcall.store", "voxcall.server")) and m != "voxcall.server.logs")}
        assert not bad, (path, bad)
