"""Tool execution for a call: client tools over the socket, static responses, the built-ins hangUp and playDtmfSounds.

A client tool sends `client_tool_invocation` and waits, up to the tool's
timeout, for the `client_tool_result` with the same `invocationId`
(PROTOCOL.md 1.9.4, 2.8). Late, repeated and unknown results are ignored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from voxcall.engine.spec import ToolDef
from voxcall.protocol.realtime import ClientToolInvocation, ClientToolResult
from voxcall.protocol.telephony.events import DTMF_DIGITS, SendDtmf
from voxcall.providers.base import ToolCall

__all__ = ["ToolOutcome", "ToolRunner"]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What a tool call produced: the text the model sees, and how the agent goes on."""

    result: str
    reaction: str = "speaks"
    response_type: str = "tool-response"
    error: str | None = None
    """Debug details (Message.errorDetails); never shown to the model."""
    update_call_state: dict[str, Any] | None = None


class ToolRunner:
    def __init__(self, tools: tuple[ToolDef, ...], send: Callable[[BaseModel], Awaitable[None]], *,
                 dtmf_out: bool = False) -> None:
        self._tools = {t.spec.name: t for t in tools}
        self._send = send
        self._dtmf_out = dtmf_out
        self._waiters: dict[str, asyncio.Future[ClientToolResult]] = {}

    async def run(self, call: ToolCall) -> ToolOutcome:
        """Run one tool call. Cancellation-safe: a cancelled wait forgets the invocation."""
        tool = self._tools.get(call.name)
        if tool is None:
            return ToolOutcome(f"There is no tool named {call.name}.", error="unknown tool")
        if tool.kind == "hang_up":
            return ToolOutcome("OK", reaction="listens", response_type="hang-up")
        if tool.kind == "play_dtmf":
            return await self._play_dtmf(call)
        if tool.static_response is not None:
            return ToolOutcome(tool.static_response, reaction=tool.default_reaction)
        if tool.kind == "http":
            return ToolOutcome(f"The tool {call.name} is unavailable.", error="HTTP tools are not supported by this server yet")
        return await self._client(tool, call)

    async def _play_dtmf(self, call: ToolCall) -> ToolOutcome:
        """The built-in playDtmfSounds: out-of-band DTMF where the medium can send it, else say it cannot."""
        digits = str(call.arguments.get("digits", "")).replace(" ", "").upper()
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            return ToolOutcome("Give the digits to press as 0-9, *, # or A-D.", error=f"bad digits {digits!r}")
        if not self._dtmf_out:
            return ToolOutcome("This call cannot send DTMF tones: its connection has no way to play them.",
                               error="the call's medium cannot send DTMF")
        await self._send(SendDtmf(digits=digits))
        return ToolOutcome(f"Pressed {digits}.")

    def resolve(self, message: ClientToolResult) -> bool:
        """Hand a client result to its waiting invocation; False if none is waiting."""
        waiter = self._waiters.get(message.invocation_id)
        if waiter is None or waiter.done():
            return False
        waiter.set_result(message)
        return True

    async def _client(self, tool: ToolDef, call: ToolCall) -> ToolOutcome:
        parameters = {**call.arguments, **tool.static_parameters}
        waiter: asyncio.Future[ClientToolResult] = asyncio.get_running_loop().create_future()
        self._waiters[call.id] = waiter
        try:
            await self._send(ClientToolInvocation(tool_name=call.name, invocation_id=call.id, parameters=parameters))
            async with asyncio.timeout(tool.timeout):
                answer = await waiter
        except TimeoutError:
            return ToolOutcome(f"The tool {call.name} did not answer in time.", reaction=tool.default_reaction,
                               error=f"timed out after {tool.timeout:g}s")
        finally:
            self._waiters.pop(call.id, None)
        reaction = answer.agent_reaction or tool.default_reaction
        if answer.error_type:
            return ToolOutcome(f"The tool {call.name} failed ({answer.error_type}).", reaction=reaction,
                               error=answer.error_message or answer.error_type)
        result = answer.result if isinstance(answer.result, str) else json.dumps(answer.result)
        return ToolOutcome(result, reaction=reaction, response_type=answer.response_type or "tool-response",
                           update_call_state=answer.update_call_state)
