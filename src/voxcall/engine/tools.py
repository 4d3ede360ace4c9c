"""Tool execution for a call: one executor per tool kind behind the `ToolExecutor` protocol.

Kinds: `client` (over the socket: `client_tool_invocation`, then the `client_tool_result`
with the same `invocationId`, PROTOCOL.md 1.9.4, 2.8), `http` (injected: see
`http_tool.HttpToolExecutor`), `static` (a staticResponse and nothing else) and the built-ins
`hang_up` and `leave_voicemail` (`cold_transfer` is injected too: it needs the carrier's API).
Every executor answers with a `ToolOutcome`: the text the model sees, the agent reaction,
and a typed control (`HangUp`, `NewStage`) instead of a response-type string.

A tool with a staticResponse answers at once; its implementation, if any, still runs in the
background. Precomputable tools may be started while the agent is still speaking
(`start_early`); an interrupted reply throws their results away (`discard_early`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from voxcall.engine.spec import ToolDef
from voxcall.engine.stages import StageError, StageRequest, parse_stage_request
from voxcall.engine.tool_params import MissingArguments, ToolContext, assemble
from voxcall.protocol.realtime import ClientToolInvocation, ClientToolResult
from voxcall.providers.base import ToolCall

__all__ = [
    "ClientToolExecutor",
    "Control",
    "HangUp",
    "NewStage",
    "ToolContext",
    "ToolExecutor",
    "ToolOutcome",
    "ToolRunner",
    "VoicemailExecutor",
    "control_for",
    "failure",
]

logger = logging.getLogger(__name__)
_GRACE = 1.0  # the runner's backstop beyond a tool's own timeout
VOICEMAIL_RESULT = "[Leaving voicemail...]"
_ENDS_CALL = ("hang_up", "leave_voicemail", "cold_transfer")  # never run ahead of the reply that asks for them


@dataclass(frozen=True, slots=True)
class HangUp:
    """The tool ends the call (response type `hang-up`), after `message` if one is given."""

    message: str | None = None
    strict: bool = False


@dataclass(frozen=True, slots=True)
class NewStage:
    """The tool asks for a new call stage (response type `new-stage`) with a partial StartCallRequest.

    `request` is the checked request, or None with `problem` saying what is wrong with it
    (the call then answers the model with a tool failure and stays in its stage).
    """

    request: StageRequest | None
    problem: str | None = None

    @classmethod
    def parse(cls, body: str) -> NewStage:
        try:
            return cls(parse_stage_request(body))
        except StageError as exc:
            return cls(None, str(exc))


Control = HangUp | NewStage | None


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What a tool call produced: the text the model sees, and how the agent goes on."""

    result: str
    reaction: str = "speaks"
    control: Control = None
    error: str | None = None
    """Debug details (Message.errorDetails); never shown to the model."""
    update_call_state: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    """Debug notes for the client (`debug` messages), e.g. an ignored header."""


class ToolExecutor(Protocol):
    """Runs one kind of tool. Must return within the tool's timeout and never raise for a tool's failure."""

    async def execute(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome: ...


def failure(call: ToolCall, text: str, error: str, tool: ToolDef | None = None) -> ToolOutcome:
    """A failed invocation: `text` for the model, `error` for errorDetails."""
    return ToolOutcome(text.replace("{name}", call.name), reaction=tool.default_reaction if tool else "speaks", error=error)


def control_for(response_type: str | None, result: str) -> tuple[Control, tuple[str, ...]]:
    """The typed control of a response type (`X-Ultravox-Response-Type` or `responseType`), plus notes."""
    kind = (response_type or "tool-response").strip().lower()
    if kind == "tool-response":
        return None, ()
    if kind == "hang-up":
        return _hang_up(result), ()
    if kind == "new-stage":
        return NewStage.parse(result), ()
    return None, (f"response type {kind!r} is not supported here; the result is used as a plain tool result",)


def _hang_up(result: str) -> HangUp:
    """`hang-up` results may be a JSON object (or a JSON-encoded one) with `message` and `strict`."""
    value: Any = result
    with contextlib.suppress(ValueError, TypeError):
        for _ in range(2):
            if isinstance(value, str):
                value = json.loads(value)
    if not isinstance(value, dict):
        return HangUp()
    message = value.get("message")
    return HangUp(message=str(message) if message else None, strict=bool(value.get("strict")))


class ClientToolExecutor:
    """Client tools: send the invocation, wait up to the timeout for the matching result.

    Late, repeated and unknown results are ignored. Cancellation-safe: a cancelled wait
    forgets the invocation.
    """

    def __init__(self, send: Callable[[BaseModel], Awaitable[None]]) -> None:
        self._send = send
        self._waiters: dict[str, asyncio.Future[ClientToolResult]] = {}

    def resolve(self, message: ClientToolResult) -> bool:
        """Hand a client result to its waiting invocation; False if none is waiting."""
        waiter = self._waiters.get(message.invocation_id)
        if waiter is None or waiter.done():
            return False
        waiter.set_result(message)
        return True

    async def execute(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome:
        try:
            parameters = assemble(tool, call.arguments, context).body
        except MissingArguments as exc:
            return failure(call, "The tool {name} needs " + ", ".join(exc.names) + ".", str(exc), tool)
        waiter: asyncio.Future[ClientToolResult] = asyncio.get_running_loop().create_future()
        self._waiters[call.id] = waiter
        try:
            await self._send(ClientToolInvocation(tool_name=call.name, invocation_id=call.id, parameters=parameters))
            async with asyncio.timeout(tool.timeout):
                answer = await waiter
        except TimeoutError:
            return failure(call, "The tool {name} did not answer in time.", f"timed out after {tool.timeout:g}s", tool)
        finally:
            self._waiters.pop(call.id, None)
        reaction = answer.agent_reaction or tool.default_reaction
        if answer.error_type:
            return ToolOutcome(f"The tool {call.name} failed ({answer.error_type}).", reaction=reaction,
                               error=answer.error_message or answer.error_type)
        result = answer.result if isinstance(answer.result, str) else json.dumps(answer.result)
        control, notes = control_for(answer.response_type, result)
        return ToolOutcome(result, reaction=reaction, control=control, update_call_state=answer.update_call_state,
                           notes=notes)


class StaticExecutor:
    """A tool that is only a staticResponse."""

    async def execute(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome:
        return ToolOutcome(tool.static_response or "", reaction=tool.default_reaction)


class BuiltInExecutor:
    """The built-in `hangUp`: the agent ends the call."""

    async def execute(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome:
        return ToolOutcome("OK", reaction="listens", control=HangUp())


class VoicemailExecutor:
    """The built-in `leaveVoicemail`: say `message` (uninterrupted), then end the call as `agent_hangup`.

    Static parameters: `result` (the tool result in the history, default "[Leaving voicemail...]")
    and `strict` (default true: the call ends whatever the callee does; false is taken as true,
    since the engine has no "continue if the user speaks" hang-up yet). A failure lets the agent
    speak (whatever the tool's defaultReaction), so that it can put things right.
    """

    async def execute(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome:
        try:
            values = assemble(tool, call.arguments, context).body
        except MissingArguments as exc:
            return failure(call, "The tool {name} needs the message to leave.", str(exc))
        message = str(values.get("message") or "").strip()
        if not message:
            return failure(call, "The tool {name} needs the message to leave.", "empty message")
        result = values.get("result")
        return ToolOutcome(str(result) if result is not None else VOICEMAIL_RESULT, reaction="listens",
                           control=HangUp(message=message, strict=values.get("strict") is not False))


class UnavailableExecutor:
    """Stands in for a kind this call has no executor for (e.g. HTTP without an outbound client)."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    async def execute(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome:
        return failure(call, "The tool {name} is unavailable.", self._reason, tool)


class ToolRunner:
    """The tools of one call, each run by the executor of its kind."""

    def __init__(self, tools: tuple[ToolDef, ...], send: Callable[[BaseModel], Awaitable[None]],
                 executors: Mapping[str, ToolExecutor] | None = None) -> None:
        self._tools = {t.spec.name: t for t in tools}
        self.client = ClientToolExecutor(send)
        self._executors: dict[str, ToolExecutor] = {
            "client": self.client, "static": StaticExecutor(), "hang_up": BuiltInExecutor(),
            "leave_voicemail": VoicemailExecutor(),
            "http": UnavailableExecutor("HTTP tools need an outbound HTTP client, and this call has none"),
        }
        self._executors.update(executors or {})
        self._early: dict[str, asyncio.Task[ToolOutcome]] = {}
        self._background: set[asyncio.Task[Any]] = set()

    def resolve(self, message: ClientToolResult) -> bool:
        """Hand a client result to its waiting invocation; False if none is waiting."""
        return self.client.resolve(message)

    def set_tools(self, tools: tuple[ToolDef, ...]) -> None:
        """The tools of a new call stage: later calls find these (running ones go on)."""
        self._tools = {t.spec.name: t for t in tools}

    async def run(self, call: ToolCall, context: ToolContext) -> ToolOutcome:
        """Run one tool call (or collect the one started early); never raises for a tool's failure."""
        early = self._early.pop(call.id, None)
        if early is not None:
            return await early
        return await self._run_now(call, context)

    async def _run_now(self, call: ToolCall, context: ToolContext) -> ToolOutcome:
        tool = self._tools.get(call.name)
        if tool is None:
            return failure(call, "There is no tool named {name}.", "unknown tool")
        if tool.static_response is not None and tool.kind in ("client", "http"):
            self._spawn(self._guarded(tool, call, context))  # runs on; its answer is not waited for
            return ToolOutcome(tool.static_response, reaction=tool.default_reaction)
        return await self._guarded(tool, call, context)

    def start_early(self, call: ToolCall, context: ToolContext) -> None:
        """Start a precomputable tool now, while the reply that asked for it is still going out."""
        tool = self._tools.get(call.name)
        if tool is None or not tool.precomputable or tool.kind in _ENDS_CALL or call.id in self._early:
            return
        self._early[call.id] = asyncio.create_task(self._run_now(call, context))

    def discard_early(self) -> None:
        """The reply was interrupted: throw away what its precomputable tools were doing."""
        early, self._early = self._early, {}
        for task in early.values():
            task.cancel()

    async def close(self) -> None:
        """Cancel everything still running (background and early invocations) and wait for it."""
        self.discard_early()
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _guarded(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome:
        executor = self._executors.get(tool.kind) or UnavailableExecutor(f"no executor for {tool.kind} tools")
        try:
            async with asyncio.timeout(tool.timeout + _GRACE):
                return await executor.execute(tool, call, context)
        except TimeoutError:
            return failure(call, "The tool {name} did not answer in time.", f"timed out after {tool.timeout:g}s", tool)
        except Exception as exc:  # an executor bug must not end the call
            logger.exception("tool %s failed", call.name)
            return failure(call, "The tool {name} failed.", f"{type(exc).__name__}: {exc}", tool)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
