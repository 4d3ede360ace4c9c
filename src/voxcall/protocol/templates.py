"""Mustache-style `{{variable}}` templates of agent call templates.

An agent's `callTemplate` is filled from the call's `templateContext`
(ultravox-openapi.yaml `ultravox.v1.CallTemplate.contextSchema`, and
https://docs.ultravox.ai/agents/making-calls). Supported tags: `{{name}}`,
`{{ name }}`, dotted names `{{user.phone_number}}` (looked up through nested
objects, as in the Mustache spec), the unescaped forms `{{{name}}}` and
`{{& name}}` (the same here: nothing is HTML-escaped, since the text goes to a
model, not a browser), and comments `{{! ... }}`. Sections, partials and
delimiter changes are refused with a TemplateError, so a template never passes
through half-understood.

A value renders as itself when it is a string, `true`/`false` for booleans,
nothing for null, and compact JSON otherwise.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["TemplateError", "render", "render_value", "variables"]

_UNSUPPORTED = "#^/>="


class TemplateError(ValueError):
    """A template that cannot be parsed, or that uses an unsupported tag."""


def _tags(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, sigil, name) for every tag in `text`."""
    tags = []
    position = 0
    while (start := text.find("{{", position)) != -1:
        triple = text.startswith("{{{", start)
        closing = "}}}" if triple else "}}"
        end = text.find(closing, start + (3 if triple else 2))
        if end == -1:
            raise TemplateError(f"unclosed tag at character {start}: {text[start:start + 20]!r}")
        inner = text[start + (3 if triple else 2):end].strip()
        sigil = "&" if triple else (inner[:1] if inner[:1] in "&!" + _UNSUPPORTED else "")
        name = inner[1:].strip() if sigil and not triple else inner
        if sigil in _UNSUPPORTED and sigil:
            raise TemplateError(f"{{{{{inner}}}}} is not supported: only {{{{variable}}}} substitution is (no sections or partials)")
        if sigil != "!" and (not name or any(c.isspace() for c in name) or name == "."):
            raise TemplateError(f"bad variable name in {text[start:end + len(closing)]!r}")
        tags.append((start, end + len(closing), sigil, name))
        position = end + len(closing)
    return tags


def variables(text: str) -> list[str]:
    """The variable names used in `text`, in order of first use.

    Raises:
        TemplateError: the template cannot be parsed or uses an unsupported tag.
    """
    names = [name for _, _, sigil, name in _tags(text) if sigil != "!"]
    return list(dict.fromkeys(names))


def _lookup(context: dict[str, Any], name: str) -> tuple[bool, Any]:
    value: Any = context
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render(text: str, context: dict[str, Any], missing: list[str] | None = None) -> str:
    """Fill `text` from `context`; names not found render as nothing and are appended to `missing`.

    Raises:
        TemplateError: the template cannot be parsed or uses an unsupported tag.
    """
    parts = []
    position = 0
    for start, end, sigil, name in _tags(text):
        parts.append(text[position:start])
        position = end
        if sigil == "!":
            continue
        found, value = _lookup(context, name)
        if not found and missing is not None and name not in missing:
            missing.append(name)
        parts.append(_text(value) if found else "")
    parts.append(text[position:])
    return "".join(parts)


def render_value(value: Any, context: dict[str, Any], missing: list[str] | None = None) -> Any:
    """Render every string inside a JSON value (a static parameter's value), keeping its shape."""
    if isinstance(value, str):
        return render(value, context, missing)
    if isinstance(value, list):
        return [render_value(v, context, missing) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, context, missing) for k, v in value.items()}
    return value
