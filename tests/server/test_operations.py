"""The one list of implemented operations (server/operations.py) against the document and the app."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi import FastAPI
from starlette.routing import Match

from voxcall.config import Settings
from voxcall.server.app import create_app
from voxcall.server.operations import IMPLEMENTED, OPERATIONS, implemented, not_implemented

DOCUMENT = Path(__file__).resolve().parent.parent / "fixtures" / "ultravox-openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


def _probe(app: FastAPI, method: str, path: str) -> bool:
    """Whether some route of the app takes this request, with every path parameter set to "1"."""
    scope = {"type": "http", "method": method, "path": re.sub(r"\{[^}]*\}", "1", path), "root_path": "",
             "query_string": b"", "headers": []}
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)


def routed(app: FastAPI) -> set[tuple[str, str]]:
    """The document's operations the app serves: those in the app's own OpenAPI, and hidden routes
    (like GET /api/schema/) that a probe reaches and no parameterised route of the app would take
    (so GET /api/agents/usage does not count as served by GET /api/agents/{agent_id})."""
    own = {(method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
           for path, item in app.openapi()["paths"].items() for method in item if method in METHODS}
    templates = [(m, re.compile("^" + re.sub(r"\\\{\\\}", "[^/]+", re.escape(p)) + "$")) for m, p in own]
    served = set()
    for method, path in OPERATIONS:
        shape = re.sub(r"\{[^}]*\}", "{}", path)
        if (method, shape) in own:
            served.add((method, path))
        elif _probe(app, method, path) and not any(m == method and t.match(path) for m, t in templates):
            served.add((method, path))
    return served


def document_operations() -> list[tuple[str, str]]:
    paths = yaml.safe_load(DOCUMENT.read_text())["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in METHODS if method in item]


def test_every_operation_of_the_document_is_listed_once_in_its_order() -> None:
    ops = document_operations()
    assert len(ops) == 114
    assert list(OPERATIONS) == ops, "server/operations.py lists the document's operations, in document order"
    assert all(status.strip() for status in OPERATIONS.values()), "every unimplemented operation gives a reason"
    assert len(implemented()) + len(not_implemented()) == 114


def test_the_list_matches_the_routes(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    served = routed(app)
    unrouted = [op for op in implemented() if op not in served]
    assert unrouted == [], "listed as IMPLEMENTED in server/operations.py but not routed by the app"
    unlisted = [op for op in OPERATIONS if op in served and OPERATIONS[op] != IMPLEMENTED]
    assert unlisted == [], "routed by the app but not IMPLEMENTED in server/operations.py"
    assert ("POST", "/api/calls") in served and ("GET", "/api/schema/") in served
    assert not _probe(app, "PUT", "/api/calls/{call_id}")
    assert IMPLEMENTED not in not_implemented().values()
