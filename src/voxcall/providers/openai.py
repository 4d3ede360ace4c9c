"""An LLM behind any OpenAI-compatible `/chat/completions` endpoint (vLLM, Ollama, llama.cpp server, OpenAI).

Streams with server-sent events and native function tools. HTTP and transport
failures become `ProviderError` in one place, `map_errors()` (STYLE.md rule 2).
Each request asks for `stream_options.include_usage`; a server that sends the usage chunk
has its `prompt_tokens` passed on in a last, empty `TextDelta` (servers that ignore the
option send none, and the count stays unknown).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from voxcall.errors import ProviderError
from voxcall.providers.base import ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec
from voxcall.providers.http import Endpoint, map_errors

__all__ = ["OpenAILLM"]

logger = logging.getLogger(__name__)


class OpenAILLM(Endpoint):
    """Streams chat completions from an OpenAI-compatible server.

    Args:
        base_url: the API root, e.g. `http://127.0.0.1:8001/v1`.
        model: the `model` field sent with each request.
        api_key: sent as a bearer token when given.
        client: an `httpx.AsyncClient` to share (its transport is used as is);
            when omitted, one is created and closed by `aclose()`.
        timeout: seconds allowed for connecting and between streamed chunks.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(base_url, api_key, client, timeout)
        self.name = model
        self.model = model
        self._url = self._base + "/chat/completions"

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ) -> AsyncIterator[LLMEvent]:
        """Yield text deltas as they arrive, then the assembled tool calls.

        Cancellation-safe: closing the generator closes the HTTP response.
        Raises `ProviderError` (retryable for 429, 5xx and transport errors).
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_to_openai(message) for message in messages],
            "stream": True,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = [_tool_to_openai(tool) for tool in tools]
        calls = _ToolCallAssembler()
        prompt_tokens: int | None = None
        with map_errors("LLM"):
            async with self._client.stream(
                "POST", self._url, json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    response.raise_for_status()
                async for data in _sse_data(response.aiter_lines()):
                    if data.strip() == "[DONE]":
                        break
                    chunk = _parse_chunk(data)
                    if (counted := _prompt_tokens(chunk)) is not None:
                        prompt_tokens = counted
                    for text in calls.feed(chunk):
                        yield TextDelta(text)
        for call in calls.finish():
            yield call
        if prompt_tokens is not None:
            yield TextDelta("", prompt_tokens=prompt_tokens)


def _prompt_tokens(chunk: dict[str, Any]) -> int | None:
    """`usage.prompt_tokens` of a chunk (the last one, with `include_usage`), if it is a count."""
    usage = chunk.get("usage")
    value = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """Yield the `data` of each server-sent event (multi-line data joined by newlines)."""
    buffer: list[str] = []
    async for line in lines:
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
        elif line.startswith("data:"):
            value = line[5:]
            buffer.append(value[1:] if value.startswith(" ") else value)
        # Comments (":") and "event:"/"id:"/"retry:" fields carry nothing we use.
    if buffer:
        yield "\n".join(buffer)


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise ProviderError(f"LLM server sent invalid JSON: {data[:200]!r}", retryable=True) from exc
    if not isinstance(chunk, dict):
        raise ProviderError(f"LLM server sent an unexpected chunk: {data[:200]!r}", retryable=True)
    if "error" in chunk:
        raise ProviderError(f"LLM server error: {chunk['error']!r}", retryable=True)
    return chunk


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _ToolCallAssembler:
    """Collects streamed `tool_calls` deltas by index and passes text through."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def feed(self, chunk: dict[str, Any]) -> list[str]:
        texts: list[str] = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                texts.append(delta["content"])
            for item in delta.get("tool_calls") or ():
                partial = self._calls.setdefault(item.get("index", len(self._calls)), _PartialCall())
                function = item.get("function") or {}
                partial.id = item.get("id") or partial.id
                partial.name += function.get("name") or ""
                partial.arguments.append(function.get("arguments") or "")
        return texts

    def finish(self) -> list[ToolCall]:
        calls = []
        for _, partial in sorted(self._calls.items()):
            text = "".join(partial.arguments).strip() or "{}"
            try:
                arguments = json.loads(text)
            except ValueError as exc:
                raise ProviderError(f"tool call {partial.name!r} has invalid arguments: {text[:200]!r}") from exc
            if not isinstance(arguments, dict):
                raise ProviderError(f"tool call {partial.name!r} arguments are not an object: {text[:200]!r}")
            calls.append(ToolCall(id=partial.id or f"call_{uuid.uuid4().hex}", name=partial.name, arguments=arguments))
        return calls


def _to_openai(message: ChatMessage) -> dict[str, Any]:
    result: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        result["content"] = message.content or None
        result["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        result["tool_call_id"] = message.tool_call_id
    if message.name is not None and message.role != "tool":
        # OpenAI's tool messages carry only `tool_call_id`; `name` is a participant name elsewhere.
        result["name"] = message.name
    return result


def _tool_to_openai(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }
