"""Input hygiene for everything a client sends: strict JSON and size limits. Pure functions.

`loads_strict` is the one JSON parser for untrusted text (realtime frames, REST bodies).
On top of `json.loads` it refuses what would later break storage, the model or strict
JSON output: nesting deeper than a limit (deep frames used to blow the recursion limit),
non-finite numbers (`NaN`, `Infinity`, `1e309`: they cannot be written back as JSON),
lone UTF-16 surrogates (`"\\ud800"`: they cannot be encoded as UTF-8) and NUL characters
(PostgreSQL cannot store them). Each refusal names where in the document it was found.

`call_body_problems` applies the configurable limits on the body of POST /api/calls.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_DEPTH",
    "BodyLimits",
    "UnsafeJSON",
    "call_body_problems",
    "json_size",
    "loads_strict",
    "text_problem",
]

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a client document."""

_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_UNENCODABLE = re.compile("[\ud800-\udfff\x00]")


class UnsafeJSON(ValueError):
    """A document that is JSON but not acceptable; `loc` is the path to the offending value."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = (), *, syntax: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.syntax = syntax
        """True when the text is not JSON at all (as opposed to JSON that is refused)."""

    def describe(self, root: str = "the document") -> str:
        """A sentence naming the place: `initialMessages.3.text contains ...`, or `<root> is ...` at the top."""
        where = ".".join(str(p) for p in self.loc)
        return f"{where or root} {self.message}"

    def __str__(self) -> str:
        return self.describe()


class _NonFinite:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _number(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored or encoded as UTF-8, or None if it can."""
    if text.isascii() and "\x00" not in text:
        return None
    found = _UNENCODABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "contains a NUL character (U+0000), which cannot be stored"
    return f"contains a lone surrogate (U+{ord(char):04X}), which is not valid Unicode text"


def _check_depth(text: str, max_depth: int) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot be deeper than the number of openers
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > max_depth:
            raise UnsafeJSON(f"is nested more than {max_depth} levels deep")


def loads_strict(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse untrusted JSON.

    Raises:
        UnsafeJSON: not UTF-8, not JSON, nested too deep, a non-finite number, or a
            string (key or value) that is not storable Unicode text.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeJSON(f"is not valid UTF-8 (byte {exc.start})") from exc
    _check_depth(text, max_depth)
    try:
        value = json.loads(text, parse_float=_number, parse_constant=_NonFinite)
    except RecursionError as exc:  # unreachable after the depth check, kept as a backstop
        raise UnsafeJSON(f"is nested more than {max_depth} levels deep") from exc
    except ValueError as exc:
        raise UnsafeJSON(f"is invalid JSON: {exc}", syntax=True) from exc
    _walk(value)
    return value


def _walk(root: Any) -> None:
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            if (problem := text_problem(value)) is not None:
                raise UnsafeJSON(problem, loc)
        elif isinstance(value, _NonFinite):
            raise UnsafeJSON(f"must be a finite number, not {value.text}", loc)
        elif isinstance(value, dict):
            for key, item in value.items():
                if (problem := text_problem(key)) is not None:
                    raise UnsafeJSON(f"has a key that {problem}", loc)
                stack.append((item, (*loc, key)))
        elif isinstance(value, list):
            stack.extend((item, (*loc, i)) for i, item in enumerate(value))


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Limits on client input; the server builds one from its settings."""

    max_request_bytes: int = 2 * 1024 * 1024
    max_data_message_bytes: int = 64 * 1024
    max_depth: int = MAX_DEPTH
    max_system_prompt_chars: int = 100_000
    max_initial_messages: int = 2000
    max_initial_messages_bytes: int = 1024 * 1024
    max_metadata_bytes: int = 16 * 1024


DEFAULT_LIMITS = BodyLimits()


def _field(body: dict[str, Any], camel: str, snake: str) -> Any:
    return body[camel] if body.get(camel) is not None else body.get(snake)


def call_body_problems(body: Any, limits: BodyLimits = DEFAULT_LIMITS) -> list[tuple[str, str]]:
    """Size problems of a StartCallRequest body as (field, message) pairs; empty if none."""
    if not isinstance(body, dict):
        return []
    problems: list[tuple[str, str]] = []

    def over(name: str, measured: str, limit: int, setting: str) -> None:
        problems.append((name, f"{measured}; the limit is {limit} (VOXCALL_{setting})"))

    prompt = _field(body, "systemPrompt", "system_prompt")
    if isinstance(prompt, str) and len(prompt) > limits.max_system_prompt_chars:
        over("systemPrompt", f"is {len(prompt)} characters long", limits.max_system_prompt_chars, "MAX_SYSTEM_PROMPT_CHARS")
    messages = _field(body, "initialMessages", "initial_messages")
    if isinstance(messages, list):
        if len(messages) > limits.max_initial_messages:
            over("initialMessages", f"has {len(messages)} messages", limits.max_initial_messages, "MAX_INITIAL_MESSAGES")
        elif (size := json_size(messages)) > limits.max_initial_messages_bytes:
            over("initialMessages", f"is {size} bytes of JSON", limits.max_initial_messages_bytes, "MAX_INITIAL_MESSAGES_BYTES")
    metadata = body.get("metadata")
    if metadata is not None and (size := json_size(metadata)) > limits.max_metadata_bytes:
        over("metadata", f"is {size} bytes of JSON", limits.max_metadata_bytes, "MAX_METADATA_BYTES")
    return problems
