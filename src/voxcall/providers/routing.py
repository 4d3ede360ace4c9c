"""Tool routing for small local models: prompt text, grammars and JSON-string decoding.

MODELS.md found that Qwen2.5-Coder-1.5B makes no calls through llama.cpp's `tools=`
but routes correctly when its reply is a JSON object constrained by a grammar. The
reply format, with the action first so the model commits to it before anything else::

    {"action": "answer", "text": "..."}            # streamed to the user
    {"action": "getWeather", "arguments": {...}}    # one tool call

The embedded back end generates this in phases (see `embedded.py`): the prompt
ends with `ROUTE_PREFILL`; a tiny grammar picks the action (`settle_action`); the
fixed JSON that follows is fed as prompt rather than sampled; then the answer text
is generated WITHOUT a grammar (grammar sampling roughly halves tokens/s) and
decoded with `JsonStringDecoder` as it streams, or the tool's arguments are
generated under a grammar built from the tool's JSON Schema.

Everything here is pure (no model, no threads), so it is tested synchronously.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from voxcall.providers.base import ChatMessage, ToolSpec

__all__ = [
    "ANSWER",
    "ANSWER_PREFILL",
    "ROUTE_PREFILL",
    "JsonStringDecoder",
    "Mode",
    "action_grammar",
    "action_names",
    "arguments_grammar",
    "choose_mode",
    "forced_after_action",
    "render_messages",
    "settle_action",
    "tool_instructions",
]

ANSWER = "answer"
ROUTE_PREFILL = '{"action": "'
"""The assistant turn starts with this in routing mode; the model continues with the action."""
ANSWER_PREFILL = '{"action": "answer", "text": "'
"""The assistant turn starts with this when only a text answer is allowed (after a tool result)."""

Mode = Literal["plain", "route", "answer"]


def choose_mode(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> Mode:
    """`plain` without tools; `answer` right after a tool result (no tool loops); else `route`."""
    if not tools:
        return "plain"
    if messages and messages[-1].role == "tool":
        return "answer"
    return "route"


def tool_instructions(tools: Sequence[ToolSpec]) -> str:
    """The text appended to the system prompt that explains the tools and the reply format.

    The wording was tuned on Qwen2.5-Coder-1.5B: naming tools with a short signature and
    telling it never to make up what a tool provides took routing from 6/10 to 9/10.
    """
    lines = ["You can call these tools:"]
    lines += [f"- {tool.name}({_signature(tool)}): {tool.description}".rstrip() for tool in tools]
    lines.append("")
    lines.append(
        "Respond with a JSON object. If one of the tools can do what the user asks or give the"
        ' information they want, call it: {"action": "<tool name>", "arguments": {...}}.'
        " Never make up information that a tool provides."
        ' Otherwise answer directly: {"action": "answer", "text": "<your reply to the user>"}.'
    )
    return "\n".join(lines)


def _signature(tool: ToolSpec) -> str:
    properties = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or ())
    parts = []
    for name, schema in properties.items():
        kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
        if isinstance(kind, list):
            kind = "|".join(map(str, kind))
        parts.append(f"{name}: {kind}" + ("" if name in required else " (optional)"))
    return ", ".join(parts)


def render_messages(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> list[dict[str, str]]:
    """Turn the conversation into plain system/user/assistant dicts for the GGUF chat template.

    The system prompt and tool instructions come first and depend only on the first system
    message and the tools, so the rendered prefix (and llama.cpp's KV cache of it) stays the
    same from turn to turn. Tool results become user messages, because not every template
    (SmolLM2's, for one) knows the `tool` role. With tools, earlier assistant turns are shown
    in the same JSON format the model is asked to produce.
    """
    routed = bool(tools)
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    rest = list(messages)
    system = rest.pop(0).content if rest and rest[0].role == "system" else ""
    if routed:
        system = f"{system}\n\n{tool_instructions(tools)}" if system else tool_instructions(tools)
    out: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    for message in rest:
        if message.role == "tool":
            name = message.name or names.get(message.tool_call_id or "", "the tool")
            out.append({"role": "user", "content": f"Tool result for {name}: {message.content}"})
        elif message.role == "assistant" and message.tool_calls:
            calls = (_dumps({"action": c.name, "arguments": c.arguments}) for c in message.tool_calls)
            out.append({"role": "assistant", "content": "\n".join(calls)})
        elif message.role == "assistant" and routed:
            out.append({"role": "assistant", "content": _dumps({"action": ANSWER, "text": message.content})})
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def action_grammar(tools: Sequence[ToolSpec]) -> str:
    """GBNF for the action name after `ROUTE_PREFILL`, up to and including `",`."""
    names = action_names(tools)
    return "root ::= (" + " | ".join(_gbnf_literal(name) for name in names) + ') "\\","'


def action_names(tools: Sequence[ToolSpec]) -> list[str]:
    """The actions the model may choose: `answer` and each tool (except one named `answer`)."""
    return [ANSWER] + [tool.name for tool in tools if tool.name != ANSWER]


def settle_action(sampled: str, names: Sequence[str]) -> str | None:
    """The action that `sampled` (the text after `ROUTE_PREFILL`) has committed to, if any.

    An exact name that no other name extends is settled without sampling its closing
    `",`: one grammar-constrained token less before the answer starts.
    """
    if '",' in sampled:
        return sampled.split('"', 1)[0]
    if sampled in names and not any(name != sampled and name.startswith(sampled) for name in names):
        return sampled
    return None


def forced_after_action(action: str, sampled: str) -> str:
    """The text that must follow the chosen action (fed to the model as prompt, not sampled)."""
    forced = '", "text": "' if action == ANSWER else '", "arguments": '
    return forced[2:] if sampled.endswith('",') else forced


def arguments_grammar(parameters: dict[str, Any]) -> str:
    """GBNF for a tool's arguments object, from its JSON Schema (any object if it cannot be converted)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf  # lazy: only the embedded extra has it

    schema = parameters if parameters.get("properties") else {"type": "object"}
    try:
        grammar: str = json_schema_to_gbnf(json.dumps(schema))
    except Exception:  # the converter raises assorted errors on schemas it lacks
        grammar = json_schema_to_gbnf(json.dumps({"type": "object"}))
    return grammar


def _gbnf_literal(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid GBNF literal


_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class JsonStringDecoder:
    """Decodes the body of a JSON string literal fed in arbitrary pieces.

    Escape sequences (including `\\uXXXX` and surrogate pairs) may be split across
    pieces. Decoding stops at the closing quote: `done` becomes true and anything after
    it is ignored. Invalid escapes are passed through rather than failing, because the
    text was sampled without a grammar.
    """

    def __init__(self) -> None:
        self.done = False
        self._pending = ""  # an incomplete escape sequence, starting with a backslash
        self._high: int | None = None  # a high surrogate waiting for its low half

    def feed(self, piece: str) -> str:
        """Return the decoded text that `piece` completes."""
        out: list[str] = []
        text = self._pending + piece
        self._pending = ""
        i = 0
        while i < len(text) and not self.done:
            char = text[i]
            if char == "\\":
                consumed = self._escape(text, i, out)
                if consumed == 0:
                    self._pending = text[i:]
                    break
                i += consumed
                continue
            self._flush_high(out)
            if char == '"':
                self.done = True
            else:
                out.append(char)
            i += 1
        return "".join(out)

    def finish(self) -> str:
        """Return what is left when the text ends without a closing quote."""
        out: list[str] = []
        self._flush_high(out)
        self._pending = ""  # an escape cut off by the end of the text is dropped
        return "".join(out)

    def _escape(self, text: str, i: int, out: list[str]) -> int:
        """Decode the escape at `text[i]`; return the characters consumed, 0 if incomplete."""
        if i + 1 >= len(text):
            return 0
        kind = text[i + 1]
        if kind != "u":
            self._flush_high(out)
            out.append(_ESCAPES.get(kind, kind))
            return 2
        digits = text[i + 2 : i + 6]
        if not all(c in _HEX for c in digits):
            self._flush_high(out)
            out.append("u")  # not a valid \u escape: keep the letter, reprocess what follows
            return 2
        if len(digits) < 4:
            return 0
        self._code_point(int(digits, 16), out)
        return 6

    def _code_point(self, code: int, out: list[str]) -> None:
        if 0xDC00 <= code <= 0xDFFF and self._high is not None:
            out.append(chr(0x10000 + ((self._high - 0xD800) << 10) + (code - 0xDC00)))
            self._high = None
            return
        self._flush_high(out)
        if 0xD800 <= code <= 0xDBFF:
            self._high = code
        elif 0xDC00 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(chr(code))

    def _flush_high(self, out: list[str]) -> None:
        if self._high is not None:
            out.append("\ufffd")
            self._high = None
