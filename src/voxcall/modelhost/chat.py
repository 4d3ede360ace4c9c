"""`POST /v1/chat/completions` over the embedded LLM: OpenAI request shapes in, `LLM.stream()` events out.

The embedded model decides on tools with voxcall's JSON router (`providers/routing.py`), so
`tools` work as they do in `voxcall serve`: the answer is either text or ONE tool call,
and right after a tool result it is always text. `tool_choice` may be "auto" or "none";
"required" and a named function need a router that cannot answer, which it does not have,
so they are refused with 400 rather than silently ignored.

Each request queues on the model's fair worker under its own key, or under the OpenAI
`user` field when given, so requests with the same `user` take turns with everyone
else's (the fairness `voxcall serve` gives its calls). A client that goes away (a
barge-in on the call plane) cancels the request: the worker stops it at the next token.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Hashable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voxcall.errors import ProviderError
from voxcall.modelhost.errors import HostError
from voxcall.providers.base import ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec
from voxcall.providers.embedded import LlamaLLM
from voxcall.providers.llm_queue import Request

__all__ = ["MAX_TOKENS", "ChatRequest", "check", "chunks", "completion", "completion_chunks", "events", "to_messages",
           "to_tools", "whole"]

logger = logging.getLogger(__name__)

MAX_TOKENS = 2048
"""The most `max_tokens` a request may ask for: half the embedded model's 4096-token context."""
DEFAULT_MAX_TOKENS = 512


class _Open(BaseModel):
    """OpenAI objects carry fields this server does not use (`seed`, `top_p`, `logprobs`...): ignore them."""

    model_config = ConfigDict(extra="ignore")


class _Function(_Open):
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class _Tool(_Open):
    type: Literal["function"] = "function"
    function: _Function


class _CalledFunction(_Open):
    name: str
    arguments: str = "{}"


class _ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: _CalledFunction


class _Part(_Open):
    type: str
    text: str | None = None


class _Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_Part] | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class _StreamOptions(_Open):
    include_usage: bool = False


class _ResponseFormat(_Open):
    type: str = "text"


class ChatRequest(_Open):
    """The body of `POST /v1/chat/completions`, as far as the embedded model can honour it."""

    model: str = ""
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    """Accepted; no usage chunk is sent (the model's events give the prompt's length, not the completion's)."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    tools: list[_Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    n: int = Field(default=1, ge=1)
    stop: str | list[str] | None = None
    user: str | None = None
    response_format: _ResponseFormat | None = None

    def limit(self) -> int:
        """The token budget: `max_completion_tokens`, else `max_tokens`, else 512."""
        for value in (self.max_completion_tokens, self.max_tokens):
            if value is not None:
                return value
        return DEFAULT_MAX_TOKENS

    def stops(self) -> list[str]:
        """The stop sequences, non-empty ones only (OpenAI allows up to 4)."""
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4:
            raise HostError(400, "stop takes at most 4 sequences", param="stop")
        return [s for s in stops if s]


def check(body: ChatRequest) -> None:
    """Refuse, with a message a person can act on, what the embedded model cannot do."""
    if body.n != 1:
        raise HostError(400, "n must be 1: the embedded model generates one choice", param="n")
    if body.response_format is not None and body.response_format.type != "text":
        raise HostError(400, f"response_format {body.response_format.type!r} is not supported; use 'text'",
                        param="response_format")
    choice = body.tool_choice
    if choice is not None and choice not in ("auto", "none"):
        raise HostError(400, "tool_choice must be 'auto' or 'none': the embedded model's tool router "
                        "may always answer in text instead", param="tool_choice")


def to_messages(body: ChatRequest) -> tuple[ChatMessage, ...]:
    """OpenAI messages as `ChatMessage`s; raises `HostError(400)` for content the model cannot read."""
    return tuple(_message(index, message) for index, message in enumerate(body.messages))


def _message(index: int, message: _Message) -> ChatMessage:
    role = "system" if message.role == "developer" else message.role
    content = _text(index, message.content)
    calls = tuple(_tool_call(index, call) for call in message.tool_calls or ())
    if role == "tool" and not message.tool_call_id:
        raise HostError(400, f"messages[{index}]: a tool message needs tool_call_id", param=f"messages[{index}]")
    return ChatMessage(role, content, tool_calls=calls, tool_call_id=message.tool_call_id,
                       name=message.name if role != "tool" else None)


def _text(index: int, content: str | list[_Part] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise HostError(400, f"messages[{index}]: only text content parts are supported, not {part.type!r}",
                            param=f"messages[{index}].content")
        texts.append(part.text)
    return "".join(texts)


def _tool_call(index: int, call: _ToolCall) -> ToolCall:
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise HostError(400, f"messages[{index}]: the arguments of tool call {call.id!r} are not a JSON object",
                        param=f"messages[{index}].tool_calls")
    return ToolCall(id=call.id, name=call.function.name, arguments=arguments)


def to_tools(body: ChatRequest) -> tuple[ToolSpec, ...]:
    """The request's function tools, none when `tool_choice` is "none"."""
    if body.tool_choice == "none":
        return ()
    return tuple(ToolSpec(t.function.name, t.function.description, t.function.parameters) for t in body.tools or ())


def events(llm: LlamaLLM, body: ChatRequest) -> AsyncIterator[LLMEvent]:
    """The model's events for `body`, queued fairly under its `user` (or a key of its own)."""
    check(body)
    temperature = 1.0 if body.temperature is None else body.temperature  # OpenAI's default
    request = Request(to_messages(body), to_tools(body), temperature, body.limit())
    owner: Hashable = ("user", body.user) if body.user else object()
    return _stopped_at(llm.submit(request, owner), body.stops())


async def _stopped_at(source: AsyncIterator[LLMEvent], stops: list[str]) -> AsyncIterator[LLMEvent]:
    """Pass events through, ending the text before the first stop sequence (which is not sent)."""
    if not stops:
        async for event in source:
            yield event
        return
    held, keep = "", max(len(s) for s in stops) - 1
    try:
        async for event in source:
            if not isinstance(event, TextDelta):
                if held:
                    yield TextDelta(held)
                    held = ""
                yield event
                continue
            held += event.text
            cut = min((i for i in (held.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                if held[:cut]:
                    yield TextDelta(held[:cut])
                return
            if len(held) > keep:
                yield TextDelta(held[: len(held) - keep])
                held = held[len(held) - keep:]
        if held:
            yield TextDelta(held)
    finally:
        await source.aclose()  # type: ignore[attr-defined]


# ------------------------------------------------------------------ responses


def _ids() -> tuple[str, int]:
    return f"chatcmpl-{uuid.uuid4().hex}", int(time.time())


def _wire_call(call: ToolCall, index: int) -> dict[str, Any]:
    return {"index": index, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}


async def completion(llm: LlamaLLM, body: ChatRequest) -> dict[str, Any]:
    """The whole `chat.completion` object (non-streaming). Raises `HostError`, or `ProviderError` from the model."""
    return await whole(llm.name, events(llm, body))


async def whole(model: str, stream: AsyncIterator[LLMEvent]) -> dict[str, Any]:
    """A `chat.completion` object from the model's events: the text, or the tool calls."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    async for event in stream:
        if isinstance(event, TextDelta):
            texts.append(event.text)
        else:
            calls.append(event)
    identifier, created = _ids()
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = [{k: v for k, v in _wire_call(c, i).items() if k != "index"} for i, c in enumerate(calls)]
    return {"id": identifier, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if calls else "stop"}]}


def completion_chunks(llm: LlamaLLM, body: ChatRequest) -> AsyncIterator[str]:
    """Server-sent events of `chat.completion.chunk`s, then `[DONE]`.

    Validates at once (raising `HostError` before any byte is sent); a model failure
    mid-stream is sent as an `error` event, then the stream ends. Cancellation-safe:
    closing the iterator stops the request at the next token.
    """
    return chunks(llm.name, events(llm, body))


async def chunks(model: str, stream: AsyncIterator[LLMEvent]) -> AsyncIterator[str]:
    """Server-sent `chat.completion.chunk` events from the model's events, then `[DONE]`."""
    identifier, created = _ids()

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        data = {"id": identifier, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return f"data: {json.dumps(data)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    calls = 0
    try:
        async for event in stream:
            if isinstance(event, TextDelta):
                yield chunk({"content": event.text})
            else:
                yield chunk({"tool_calls": [_wire_call(event, calls)]})
                calls += 1
    except ProviderError as exc:
        logger.warning("chat completion failed mid-stream: %s", exc)
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error', 'code': None}})}\n\n"
        return
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    yield chunk({}, "tool_calls" if calls else "stop")
    yield "data: [DONE]\n\n"
