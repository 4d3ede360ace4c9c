"""Request and response helpers shared by the platform routers.

Bodies are taken as raw JSON objects and validated here, so that a PATCH can
tell an explicit `null` (clear the field) from an absent key (leave it), which
the wire models (nulls are absent) cannot.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from voxcall.errors import InvalidRequest
from voxcall.protocol.rest import Page

__all__ = ["given", "page", "parse_body", "validation_error"]

M = TypeVar("M", bound=BaseModel)


def validation_error(exc: ValidationError, *loc: str | int) -> InvalidRequest:
    """A 422 with FastAPI's error shape (`loc`, `msg`, `type`), located under `loc`."""
    return InvalidRequest([{"loc": [*loc, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()])


def parse_body(model: type[M], raw: dict[str, Any] | None, *loc: str | int) -> M:
    """Validate a JSON object as `model`; a 422 naming the bad fields otherwise."""
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        raise validation_error(exc, *(loc or ("body",))) from exc


def given(raw: dict[str, Any] | None, camel: str, snake: str) -> tuple[bool, Any]:
    """Whether the body has the key (in either spelling), and its value (possibly None)."""
    for key in (camel, snake):
        if raw and key in raw:
            return True, raw[key]
    return False, None


def page(request: Request, results: list[Any], next_cursor: str | None, previous: str | None, total: int) -> dict[str, Any]:
    """The `{next, previous, results, total}` envelope, with absolute cursor links."""

    def link(cursor: str | None) -> str | None:
        return str(request.url.include_query_params(cursor=cursor)) if cursor else None

    return Page[Any](next=link(next_cursor), previous=link(previous), results=results, total=total).wire()
