"""One call's conversation: the agent loop behind a join-URL session.

`Call` is asyncio code that knows no web framework and no database: inputs
come in through the sync, never-blocking `receive()`, outputs leave through
the injected `send` (server messages) and `record` (history entries) callables.

Turn rules (PROTOCOL.md 2.5): `user_text_message` urgency `immediate`
interrupts the agent and answers at once, `soon` (the default) answers after
the current utterance, `later` or `deferResponse` only adds to the history.
The legacy `input_text_message` is `immediate`, or `later` when deferred.
Barge-in is task cancellation: an interrupted utterance is closed with the text
already sent and only that enters the history (STYLE.md rule 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from voxcall.engine.spec import CallSpec, ToolDef
from voxcall.errors import ProviderError
from voxcall.protocol.connection import BadMessage
from voxcall.protocol.realtime import (
    ClientToolInvocation,
    ClientToolResult,
    Debug,
    ForcedAgentMessage,
    HangUp,
    InputTextMessage,
    SetOutputMedium,
    State,
    UserTextMessage,
)
from voxcall.protocol.rest import CallMessage
from voxcall.protocol.transcripts import TranscriptWriter
from voxcall.providers.base import LLM, ChatMessage, TextDelta, ToolCall

__all__ = ["Call"]

logger = logging.getLogger(__name__)

Send = Callable[[BaseModel], Awaitable[None]]
Record = Callable[[CallMessage], Awaitable[None]]

GREETING_PROMPT = "(The call has just connected. Greet the user in one short sentence and offer help.)"
APOLOGY = "Sorry, I ran into a problem. Could you say that again?"


@dataclass(frozen=True, slots=True)
class _Generate:
    instruction: str | None = None
    offer_tools: bool = True


@dataclass(frozen=True, slots=True)
class _Say:
    text: str
    uninterruptible: bool = False
    end_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _End:
    reason: str


@dataclass(frozen=True, slots=True)
class _Timer:
    name: str


@dataclass(frozen=True, slots=True)
class _Finished:
    task: asyncio.Task[Any]


_Action = _Generate | _Say


class Call:
    """The agent side of one call. Create, then `await run()`; returns the end reason."""

    def __init__(
        self,
        spec: CallSpec,
        llm: LLM,
        *,
        send: Send,
        record: Record,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self.spec = spec
        self._llm = llm
        self._send = send
        self._record = record
        self._log = log or logging.LoggerAdapter(logger, {"call_id": spec.call_id})
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._writer = TranscriptWriter()
        self._history: list[ChatMessage] = list(spec.history)
        self._pending: list[ChatMessage] = []
        self._agenda: deque[_Action] = deque()
        self._current: asyncio.Task[None] | None = None
        self._current_action: _Action | None = None
        self._interruptible = True
        self._tool_waiters: dict[str, asyncio.Future[ClientToolResult]] = {}
        self._state: str | None = None
        self._medium = spec.output_medium
        self._user_spoke = False
        self._end_reason: str | None = None
        self._unrecorded: asyncio.Queue[CallMessage] = asyncio.Queue()
        self.call_state: dict[str, Any] = {}

    # ------------------------------------------------------------- inputs

    def receive(self, event: object) -> None:
        """Take one client event (a parsed message or `BadMessage`). Never blocks."""
        self._inbox.put_nowait(event)

    def end(self, reason: str) -> None:
        """End the call from outside (client gone, API delete). Never blocks."""
        self._inbox.put_nowait(_End(reason))

    # ---------------------------------------------------------------- run

    async def run(self) -> str:
        """Run the call until it ends and return the end reason."""
        timers = [asyncio.create_task(self._timer("max_duration", self.spec.max_duration))]
        recorder = asyncio.create_task(self._recorder())
        try:
            await self._set_state("idle")
            self._open_conversation(timers)
            await self._drive()
            while self._end_reason is None:
                event = await self._inbox.get()
                await self._handle(event)
                await self._drive()
        except Exception:
            self._log.exception("call failed")
            self._end_reason = "system_error"
        finally:
            for task in timers:
                task.cancel()
            await self._stop_current(force=True)
            self._flush_pending()
            await self._drain_records(recorder)
        return self._end_reason or "system_error"

    async def _recorder(self) -> None:
        """Write history entries in order, off the conversation's path (and never cancelled mid-write)."""
        while True:
            message = await self._unrecorded.get()
            try:
                await asyncio.shield(self._record(message))
            except Exception:
                self._log.exception("could not record a call message")
            finally:
                self._unrecorded.task_done()

    async def _drain_records(self, recorder: asyncio.Task[None]) -> None:
        try:
            async with asyncio.timeout(10):
                await self._unrecorded.join()
        except TimeoutError:
            self._log.error("gave up recording %d call messages", self._unrecorded.qsize())
        recorder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recorder

    def _open_conversation(self, timers: list[asyncio.Task[None]]) -> None:
        greeting = self.spec.greeting
        last = self._history[-1].role if self._history else None
        if last in ("user", "tool"):
            self._agenda.append(_Generate())  # the model would naturally answer
        elif greeting.agent_first:
            if greeting.text:
                self._agenda.append(_Say(greeting.text, greeting.uninterruptible))
            elif greeting.generate:
                self._agenda.append(_Generate(greeting.prompt or GREETING_PROMPT, offer_tools=False))
        elif greeting.delay > 0:
            timers.append(asyncio.create_task(self._timer("user_fallback", greeting.delay)))

    async def _timer(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._inbox.put_nowait(_Timer(name))

    async def _handle(self, event: object) -> None:
        match event:
            case UserTextMessage() | InputTextMessage():
                await self._user_text(event)
            case ForcedAgentMessage():
                if event.urgency == "immediate":
                    self._interrupt()
                    self._agenda.appendleft(_Say(event.content, bool(event.uninterruptible)))
                else:
                    self._agenda.append(_Say(event.content, bool(event.uninterruptible)))
            case HangUp():
                if event.message:
                    self._interrupt()
                    self._agenda.clear()
                    self._agenda.append(_Say(event.message, True, end_reason="hangup"))
                else:
                    self._end_reason = "hangup"
            case SetOutputMedium():
                self._medium = event.medium  # applies from the next utterance (PROTOCOL.md 2.5)
            case ClientToolResult():
                await self._tool_result(event)
            case BadMessage():
                self._log.warning("ignored a client message: %s", event.reason)
            case _Finished():
                await self._finished(event.task)
            case _Timer(name="max_duration"):
                await self._time_up()
            case _Timer(name="user_fallback"):
                if not self._user_spoke and self._current is None and not self._agenda:
                    greeting = self.spec.greeting
                    if greeting.text:
                        self._agenda.append(_Say(greeting.text))
                    else:
                        self._agenda.append(_Generate(greeting.prompt or GREETING_PROMPT, offer_tools=False))
            case _End(reason=reason):
                self._end_reason = reason
            case _:
                self._log.debug("ignored event %r", type(event).__name__)

    async def _user_text(self, message: UserTextMessage | InputTextMessage) -> None:
        if isinstance(message, InputTextMessage):
            urgency = "later" if message.defer_response else "immediate"
        else:
            urgency = "later" if message.defer_response else (message.urgency or "soon")
        if urgency == "immediate":
            self._interrupt()
        if message.text:
            self._user_spoke = True
            await self._send(self._writer.complete("user", "text", message.text))
            entry = ChatMessage("user", message.text)
            if self._current is None:
                self._append(entry)
            else:
                self._pending.append(entry)  # keeps history in spoken order
        if urgency != "later" and not any(isinstance(a, _Generate) for a in self._agenda):
            self._agenda.append(_Generate())

    async def _time_up(self) -> None:
        await self._debug("maxDuration reached")
        self._agenda.clear()
        await self._stop_current(force=True)
        if self.spec.time_exceeded_message:
            self._agenda.append(_Say(self.spec.time_exceeded_message, True, end_reason="timeout"))
        else:
            self._end_reason = "timeout"

    # ------------------------------------------------------------ agenda

    async def _drive(self) -> None:
        """Start the next agent action when nothing is running."""
        if self._current is not None or self._end_reason is not None:
            return
        self._flush_pending()
        if not self._agenda:
            await self._set_state("listening")
            return
        action = self._agenda.popleft()
        self._current_action = action
        self._interruptible = not (isinstance(action, _Say) and action.uninterruptible)
        coro = self._say(action) if isinstance(action, _Say) else self._generate(action)
        task = asyncio.create_task(coro)
        task.add_done_callback(lambda t: self._inbox.put_nowait(_Finished(t)))
        self._current = task

    async def _finished(self, task: asyncio.Task[None]) -> None:
        if task is not self._current:
            return
        action, self._current, self._current_action = self._current_action, None, None
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        if isinstance(action, _Say) and action.end_reason and not task.cancelled():
            self._end_reason = action.end_reason

    def _interrupt(self) -> None:
        if self._current is not None and self._interruptible:
            self._current.cancel()

    async def _stop_current(self, *, force: bool) -> None:
        task = self._current
        if task is None or (not force and not self._interruptible):
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(5):
                await asyncio.shield(task)
        self._current = None
        self._current_action = None

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        for entry in pending:
            self._append(entry)

    def _append(
        self, entry: ChatMessage, *, medium: str = "text", error: str | None = None, state: dict[str, Any] | None = None
    ) -> None:
        """Add to the LLM history and queue it for recording, in one order. Never awaits."""
        self._history.append(entry)
        kind = "MESSAGE_MEDIUM_VOICE" if medium == "voice" else "MESSAGE_MEDIUM_TEXT"
        record = self._unrecorded.put_nowait
        if entry.role == "user":
            record(CallMessage(role="MESSAGE_ROLE_USER", text=entry.content, medium=kind))
        elif entry.role == "tool":
            record(CallMessage(role="MESSAGE_ROLE_TOOL_RESULT", text=entry.content, invocation_id=entry.tool_call_id,
                               tool_name=entry.name, error_details=error, call_state=state))
        elif entry.role == "assistant":
            if entry.content:
                record(CallMessage(role="MESSAGE_ROLE_AGENT", text=entry.content, medium=kind))
            for call in entry.tool_calls:
                record(
                    CallMessage(
                        role="MESSAGE_ROLE_TOOL_CALL",
                        text=json.dumps(call.arguments),
                        invocation_id=call.id,
                        tool_name=call.name,
                    )
                )

    # ------------------------------------------------------------ speaking

    async def _say(self, action: _Say) -> None:
        medium = self._output_medium()
        ordinal = self._writer.open("agent", medium)
        spoken = ""
        try:
            await self._set_state("speaking")
            message = self._writer.append(ordinal, action.text)
            if message is not None:
                await self._send(message)
            spoken = action.text
        finally:
            await self._close_utterance(ordinal, spoken, (), medium)

    async def _generate(self, action: _Generate) -> None:
        spoke = False
        instruction = action.instruction
        for _ in range(self.spec.max_tool_rounds):
            await self._set_state("thinking")
            text, calls = await self._utterance(instruction, offer_tools=action.offer_tools)
            instruction = None
            spoke = spoke or bool(text)
            if not calls:
                return
            self._interruptible = False  # tool execution is uninterruptible (PROTOCOL.md 2.5)
            reaction = "speaks"
            for call in calls:
                reaction = await self._run_tool(call)
                if self._end_reason is not None or reaction == "hang-up":
                    return
            self._interruptible = True
            if reaction == "listens" or (reaction == "speaks-once" and spoke):
                return
        await self._debug("stopped after %d tool rounds" % self.spec.max_tool_rounds)

    async def _utterance(self, instruction: str | None, *, offer_tools: bool) -> tuple[str, tuple[ToolCall, ...]]:
        """Stream one model turn into an agent transcript; returns its text and tool calls."""
        messages = [ChatMessage("system", self.spec.system_prompt), *self._history]
        if instruction:
            messages.append(ChatMessage("user", instruction))
        tools = [t.spec for t in self.spec.tools] if offer_tools else []
        medium = self._output_medium()
        ordinal = self._writer.open("agent", medium)
        text, calls = "", []
        try:
            stream = self._llm.stream(messages, tools, temperature=self.spec.temperature)
            try:
                async with asyncio.timeout(self.spec.llm_timeout) as deadline:
                    async for event in stream:
                        deadline.reschedule(None)
                        if isinstance(event, TextDelta):
                            message = self._writer.append(ordinal, event.text)
                            if message is not None:
                                if not text:
                                    await self._set_state("speaking")
                                await self._send(message)
                                text += event.text
                        elif isinstance(event, ToolCall):
                            calls.append(event)
            finally:
                await _aclose(stream)
        except (ProviderError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            self._log.warning("LLM failed: %s", reason)
            await self._debug(f"LLM failed: {reason}")
            if not text:
                text = APOLOGY
                message = self._writer.append(ordinal, APOLOGY)
                if message is not None:
                    await self._send(message)
            calls = []
        finally:
            await self._close_utterance(ordinal, text, tuple(calls), medium)
        if calls:
            await self._debug(f"LLM response: Tool calls: {[(c.name, c.arguments) for c in calls]}")
        return text, tuple(calls)

    async def _close_utterance(self, ordinal: int, text: str, calls: tuple[ToolCall, ...], medium: str) -> None:
        """Close the transcript with what was sent and put exactly that into the history.

        Runs in `finally`, also after a cancel (barge-in): then `text` is what the
        user actually got, and tool calls not yet run are dropped.
        """
        final = self._writer.close(ordinal, heard=text)
        if text or calls:
            self._append(ChatMessage("assistant", text, tool_calls=calls), medium=medium)
        if final is not None:
            await self._send(final)

    def _output_medium(self) -> str:
        # No speech synthesis in this build yet: every agent utterance is text.
        return "text"

    # --------------------------------------------------------------- tools

    async def _run_tool(self, call: ToolCall) -> str:
        """Run one tool call, put its result into the history; returns the agent reaction."""
        tool = next((t for t in self.spec.tools if t.spec.name == call.name), None)
        error: str | None = None
        update: dict[str, Any] | None = None
        response_type = "tool-response"
        if tool is None:
            result, error, reaction = f"Unknown tool {call.name}.", "unknown tool", "speaks"
        elif tool.kind == "hang_up":
            result, reaction, response_type = "OK", "listens", "hang-up"
        elif tool.static_response is not None:
            result, reaction = tool.static_response, tool.default_reaction
        else:
            result, error, reaction, response_type, update = await self._client_tool(tool, call)
        if update is not None:
            self.call_state = update
        self._append(ChatMessage("tool", result, tool_call_id=call.id, name=call.name), error=error, state=update)
        await self._debug(f"Tool call complete. Result: {result}")
        if response_type == "hang-up":
            await self._agent_hang_up(result)
        return reaction if response_type != "hang-up" else "hang-up"

    async def _client_tool(self, tool: ToolDef, call: ToolCall) -> tuple[str, str | None, str, str, dict[str, Any] | None]:
        parameters = {**call.arguments, **tool.static_parameters}
        waiter: asyncio.Future[ClientToolResult] = asyncio.get_running_loop().create_future()
        self._tool_waiters[call.id] = waiter
        try:
            await self._send(ClientToolInvocation(tool_name=call.name, invocation_id=call.id, parameters=parameters))
            async with asyncio.timeout(tool.timeout):
                answer = await waiter
        except TimeoutError:
            return (f"The tool {call.name} did not answer in time.", f"timed out after {tool.timeout:g}s",
                    tool.default_reaction, "tool-response", None)
        finally:
            self._tool_waiters.pop(call.id, None)
        reaction = answer.agent_reaction or tool.default_reaction
        if answer.error_type:
            text = f"The tool {call.name} failed ({answer.error_type})."
            return text, answer.error_message or answer.error_type, reaction, "tool-response", None
        result = answer.result if isinstance(answer.result, str) else json.dumps(answer.result)
        return result, None, reaction, answer.response_type or "tool-response", answer.update_call_state

    async def _tool_result(self, message: ClientToolResult) -> None:
        waiter = self._tool_waiters.get(message.invocation_id)
        if waiter is None or waiter.done():
            await self._debug(f"Ignored client_tool_result for unknown or finished invocation {message.invocation_id}")
            return
        waiter.set_result(message)

    async def _agent_hang_up(self, result: str) -> None:
        goodbye = None
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            goodbye = json.loads(result).get("message")
        self._agenda.clear()
        if goodbye:
            self._agenda.append(_Say(str(goodbye), True, end_reason="agent_hangup"))
        else:
            self._end_reason = "agent_hangup"

    # --------------------------------------------------------------- misc

    async def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            await self._send(State(state=state))  # type: ignore[arg-type]

    async def _debug(self, text: str) -> None:
        await self._send(Debug(message=text))


async def _aclose(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
