"""One call's record: the LLM history, its durable recording, and the transcript ordinals, kept in one order.

Rules (PROTOCOL.md 2.7, 8.2):

* An utterance takes its ordinal when its first transcript message goes on the
  wire (`TranscriptWriter`), so the client sees ordinals dense from 0, ascending
  in order of first appearance. Every transcript message is made and sent under
  one lock, so the wire order is the ordinal order.
* Durability: a history entry is committed (the `record` callable has returned)
  before the client is told about it. A final transcript goes out after its
  entry is written, and a tool call is written before `close` returns, so before
  its `client_tool_invocation`. One recorder writes entries and events in order.
* `/messages` agrees with the ordinals: a user utterance that arrives while an
  agent utterance is on the wire, or while a tool round is open (between the
  assistant's tool calls and their results, which must stay adjacent), is held;
  its transcript is sent and its entry recorded once that is over. If the agent
  has sent nothing yet, the user's utterance goes first.

Storage outages (PostgreSQL briefly unreachable): the recorder retries a write that failed
with `StorageUnavailable`, with backoff (0.2 s doubling up to 5 s), until it succeeds or the
call's final drain gives up; the call goes on meanwhile. A final transcript waits for its
write up to `write_timeout`; past that it is *deferred*, not sent unstored: it goes out, in
order, as soon as its entry is written, and while finals are deferred later ones queue behind
them without waiting, so the call keeps talking (deltas, audio, pongs) and the client sees
each final only once it is stored. A tool call waits up to `write_timeout` too, then the tool
runs anyway (its record stays queued, ahead of its result). Memory stays bounded by the
queue (`max_queued`): when it is full, further records are dropped (`on_drop`, logged and
counted) and their finals sent unstored; that is the only case a final outruns its write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from voxcall.engine.spec import EventRecord
from voxcall.engine.stages import StageRecord, TokenCount
from voxcall.errors import StorageUnavailable
from voxcall.protocol.realtime import Medium
from voxcall.protocol.rest import CallMessage
from voxcall.protocol.transcripts import TranscriptWriter, Utterance
from voxcall.protocol.wire import format_duration
from voxcall.providers.base import ChatMessage, ToolCall

__all__ = ["History", "Item", "Record", "Send", "Span", "uncancelled"]

Send = Callable[[BaseModel | bytes], Awaitable[None]]
Item = CallMessage | EventRecord | StageRecord | TokenCount
"""What the call records, in order: messages, events, new stages and prompt token counts."""
Record = Callable[[Item], Awaitable[None]]
T = TypeVar("T")
Span = tuple[float, float]
"""When a message was said or heard: (start, end) in seconds from the call's start."""
NO_RESULT = "The tool call was cancelled before it returned a result."
RETRY_FIRST, RETRY_MAX = 0.2, 5.0
"""Seconds before the first retry of a write to an unreachable store, and the most between retries."""


class History:
    """The conversation of one call as the model, the database and the client see it."""

    def __init__(self, entries: Sequence[ChatMessage], *, send: Send, record: Record,
                 log: logging.Logger | logging.LoggerAdapter[logging.Logger], write_timeout: float = 2.0,
                 max_queued: int = 0, on_drop: Callable[[], None] | None = None, stage_id: str | None = None,
                 started: float | None = None) -> None:
        self.entries: list[ChatMessage] = list(entries)
        self._clock = asyncio.get_running_loop().time
        self._started = self._clock() if started is None else started
        """Loop time of the call's start: message timespans are offsets from it."""
        self.stage_id = stage_id
        """The call stage the messages recorded now belong to (their callStageId)."""
        self.last_user_at = max((i for i, e in enumerate(self.entries) if e.role == "user"), default=-1)
        """Index in `entries` of the newest user message (-1: none)."""
        self._send = send
        self._record = record
        self._log = log
        self._write_timeout = write_timeout
        self._writer = TranscriptWriter()
        self._lock = asyncio.Lock()
        self._agent: Utterance | None = None
        self._open_calls: dict[str, str] = {}  # invocation id -> tool name, until its result is recorded
        self._held: deque[tuple[str, Medium, Span]] = deque()
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[None] | None]] = asyncio.Queue(max_queued)
        self._on_drop = on_drop
        """Told when the queue is full (storage not keeping up) and a record is dropped; 0 = unbounded."""
        self._deferred: deque[tuple[asyncio.Future[None], BaseModel]] = deque()  # finals waiting for their write
        self._flusher: asyncio.Task[None] | None = None

    @property
    def _busy(self) -> bool:
        return self._agent is not None or bool(self._open_calls) or bool(self._held)

    # ------------------------------------------------------------ agent

    def agent(self, medium: Medium) -> Utterance:
        """Plan an agent utterance; it takes no ordinal until it says something."""
        return self._writer.open("agent", medium)

    async def say(self, utterance: Utterance, chunk: str) -> bool:
        """Send the next piece of an agent utterance; False if there was nothing to send."""
        async with self._lock:
            message = self._writer.append(utterance, chunk)
            if message is None:
                return False
            self._agent = utterance
            await self._send(message)
            return True

    async def close(self, utterance: Utterance, heard: str | None, calls: Sequence[ToolCall] = (),
                    metadata: dict[str, Any] | None = None, span: Span | None = None) -> str:
        """Finish an agent utterance: record it (text and tool calls), then send its final; returns the text kept.

        `heard` is what the user got of a spoken utterance (None: all that was sent); `metadata` goes on
        the stored agent message (e.g. that the end of the call cut it off); `span` is when it was heard.

        Runs to the end even if the caller is cancelled meanwhile (the cancellation is re-raised after).
        """
        return await uncancelled(self._close(utterance, heard, tuple(calls), metadata, span))

    async def _close(self, utterance: Utterance, heard: str | None, calls: tuple[ToolCall, ...],
                     metadata: dict[str, Any] | None, span: Span | None) -> str:
        async with self._lock:
            final = self._writer.close(utterance, heard=heard)
            text = (final.text or "") if final is not None else ""
            try:
                if text or calls:
                    self._open_calls.update((c.id, c.name) for c in calls)
                    entry = ChatMessage("assistant", text, tool_calls=calls)
                    done = self._append(entry, medium=utterance.medium, metadata=metadata, span=span)
                    # the tool runs once its call is stored, or after write_timeout
                    waited = bool(calls) and not await self._written(done)
                else:
                    done, waited = _finished(), False
                if final is not None:
                    await self._final(done, final, wait=not waited)
            finally:
                if self._agent is utterance:
                    self._agent = None
            await self._release()
            return text

    # ------------------------------------------------------------ tools

    async def tool_result(self, entry: ChatMessage, *, error: str | None = None,
                          state: dict[str, Any] | None = None) -> None:
        """Record a tool result (committed when this returns); the last one of a round closes the round."""
        await uncancelled(self._tool_result(entry, error, state))

    async def _tool_result(self, entry: ChatMessage, error: str | None, state: dict[str, Any] | None) -> None:
        async with self._lock:
            await self._written(self._append(entry, error=error, state=state))
            self._open_calls.pop(entry.tool_call_id or "", None)
            await self._release()

    # ------------------------------------------------------------ stages

    async def start_stage(self, stage: StageRecord, entries: Sequence[ChatMessage] | None, unrun: str) -> None:
        """Move to a new call stage: later messages carry its id; `entries` (if given) replace the history.

        Tool calls of the round still open get `unrun` as their result, in the old stage, so that
        both stages' histories stay well formed. The stage is written before this returns.
        """
        async def run() -> None:
            async with self._lock:
                for call_id, name in list(self._open_calls.items()):
                    self._append(ChatMessage("tool", unrun, tool_call_id=call_id, name=name), error="not run: new stage")
                self._open_calls.clear()
                self.stage_id = stage.call_stage_id
                if entries is not None:
                    self.entries = list(entries)
                    self.last_user_at = max((i for i, e in enumerate(self.entries) if e.role == "user"), default=-1)
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._put(stage, done)
                await self._written(done)
                await self._release()

        await uncancelled(run())

    # ------------------------------------------------------------ user

    async def user(self, text: str, medium: Medium, *, span: Span | None = None) -> None:
        """A user utterance: sent and recorded now, or held until the agent's utterance or tool round is over.

        `span`: when it was said, in seconds from the call's start (default: now, for a typed message).
        """
        await uncancelled(self._user(text, medium, span or self._now()))

    async def _user(self, text: str, medium: Medium, span: Span) -> None:
        async with self._lock:
            if self._busy:
                self._held.append((text, medium, span))
            else:
                await self._emit_user(text, medium, span)

    async def release(self, *, force: bool = False) -> None:
        """Send and record held user utterances now that nothing is in the way.

        `force`: the agent's turn is over, so a tool call still without a result
        (the call ended while it ran, or an earlier call of the round hung up) gets
        one saying so; the history stays well formed for the model and for a resume.
        """
        async def run() -> None:
            async with self._lock:
                if force:
                    for call_id, name in list(self._open_calls.items()):
                        self._append(ChatMessage("tool", NO_RESULT, tool_call_id=call_id, name=name), error="no result: the turn ended")
                    self._open_calls.clear()
                await self._release()

        await uncancelled(run())

    async def _release(self) -> None:
        while self._held and self._agent is None and not self._open_calls:
            await self._emit_user(*self._held.popleft())

    async def _emit_user(self, text: str, medium: Medium, span: Span) -> None:
        final = self._writer.complete("user", medium, text)
        done = self._append(ChatMessage("user", text), medium=medium, span=span)
        self.last_user_at = len(self.entries) - 1
        await self._final(done, final)

    # ------------------------------------------------------------ recording

    def event(self, item: EventRecord) -> None:
        """Queue a call event for recording (in order with the history entries). Never awaits."""
        self._put(item, None)

    def prompt_tokens(self, count: int) -> None:
        """Queue the length of the prompt a reply of the current stage was made from. Never awaits."""
        if self.stage_id is not None:
            self._put(TokenCount(self.stage_id, count), None)

    def _put(self, item: Item, done: asyncio.Future[None] | None) -> None:
        try:
            self._queue.put_nowait((item, done))
        except asyncio.QueueFull:
            if done is not None and not done.done():
                done.set_result(None)  # nothing will write it: whoever waits goes on
            if self._on_drop is not None:
                self._on_drop()

    def _now(self) -> Span:
        at = self._clock() - self._started
        return at, at

    def _append(self, entry: ChatMessage, *, medium: str = "text", error: str | None = None,
                state: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
                span: Span | None = None) -> asyncio.Future[None]:
        """Add to the LLM history and queue its records, in one order; the future is done once they are written.

        The records get `span` (default: now) as their timespan and wallClockTimespan.
        """
        self.entries.append(entry)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timespan = _timespan(span or self._now())
        update: dict[str, Any] = {"timespan": timespan, "wall_clock_timespan": timespan}
        if self.stage_id:
            update["call_stage_id"] = self.stage_id
        records = [r.model_copy(update=update) for r in _records(entry, medium, error, state, metadata)]
        if not records:
            done.set_result(None)
        for i, item in enumerate(records):
            self._put(item, done if i == len(records) - 1 else None)
        return done

    async def _written(self, done: asyncio.Future[None]) -> bool:
        """Wait until an entry is written, at most `write_timeout` (and not at all while finals are deferred)."""
        if done.done():
            return True
        if self._deferred:
            return False
        try:
            async with asyncio.timeout(self._write_timeout):
                await asyncio.shield(done)
            return True
        except TimeoutError:
            self._log.warning("a call message took over %gs to write: its final waits for it, the call goes on",
                              self._write_timeout)
            return False

    async def _final(self, done: asyncio.Future[None], final: BaseModel, *, wait: bool = True) -> None:
        """Send a final once its entry is written: now, or (storage slow or away) later, in order, from the flusher.

        `wait=False`: the caller already waited `write_timeout` for this entry; defer unless it is written.
        """
        if not self._deferred and (done.done() or (wait and await self._written(done))):
            await self._send(final)
            return
        self._deferred.append((done, final))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="history-finals")

    async def _flush(self) -> None:
        while self._deferred:
            await asyncio.shield(self._deferred[0][0])
            async with self._lock:
                _, final = self._deferred.popleft()
                try:
                    await self._send(final)
                except Exception:  # the client is gone: the call is ending
                    self._log.info("a deferred final could not be sent: the connection is closed")

    async def run_recorder(self) -> None:
        """Write queued entries and events in order, never cancelled mid-write; runs until cancelled."""
        while True:
            item, done = await self._queue.get()
            try:
                await self._record_with_retries(item)
            finally:
                if done is not None and not done.done():
                    done.set_result(None)  # sends waiting on it go on: the call outlives a failed write
                self._queue.task_done()

    async def _record_with_retries(self, item: Item) -> None:
        """Write one record; an unreachable store is retried with backoff, any other failure is logged and skipped."""
        pause = RETRY_FIRST
        while True:
            try:
                await asyncio.shield(self._record(item))
                if pause > RETRY_FIRST:
                    self._log.info("storage is back: call messages are being written again")
                return
            except StorageUnavailable:
                if pause == RETRY_FIRST:
                    self._log.warning("storage unreachable: keeping call messages queued (%d) and retrying",
                                      self._queue.qsize() + 1)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX)
            except Exception:
                self._log.exception("could not record a call message")
                return

    async def drain(self, recorder: asyncio.Task[None], timeout: float = 10.0) -> None:
        """Wait (bounded) until everything queued is written, then stop the recorder."""
        try:
            async with asyncio.timeout(timeout):
                await self._queue.join()
                if self._flusher is not None:
                    await asyncio.shield(self._flusher)  # every final is stored now: send them
        except TimeoutError:
            self._log.error("gave up recording %d call messages", self._queue.qsize())
        if self._flusher is not None:
            self._flusher.cancel()  # finals never stored are not sent: the call is over
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        recorder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recorder


def _records(entry: ChatMessage, medium: str, error: str | None, state: dict[str, Any] | None,
             metadata: dict[str, Any] | None = None) -> list[CallMessage]:
    kind: Literal["MESSAGE_MEDIUM_VOICE", "MESSAGE_MEDIUM_TEXT"] = "MESSAGE_MEDIUM_VOICE" if medium == "voice" else "MESSAGE_MEDIUM_TEXT"
    if entry.role == "user":
        return [CallMessage(role="MESSAGE_ROLE_USER", text=entry.content, medium=kind)]
    if entry.role == "tool":
        return [CallMessage(role="MESSAGE_ROLE_TOOL_RESULT", text=entry.content, invocation_id=entry.tool_call_id,
                            tool_name=entry.name, error_details=error, call_state=state)]
    records = [CallMessage(role="MESSAGE_ROLE_AGENT", text=entry.content, medium=kind, metadata=metadata)] if entry.content else []
    return records + [CallMessage(role="MESSAGE_ROLE_TOOL_CALL", text=json.dumps(c.arguments), invocation_id=c.id,
                                  tool_name=c.name) for c in entry.tool_calls]


def _timespan(span: Span) -> dict[str, str]:
    """Offsets from the call's start, as the hosted API writes them ("1.25s"). voxcall takes the input audio in
    real time, so the offsets on the input stream (`timespan`) and on the clock (`wallClockTimespan`) agree."""
    start, end = (max(0.0, round(t, 3)) for t in span)
    return {"start": format_duration(start), "end": format_duration(max(start, end))}


def _finished() -> asyncio.Future[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


async def uncancelled(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to its end even if the caller is cancelled meanwhile; then re-raise that cancellation.

    For the steps that must not stop halfway: a final transcript whose entry is
    already written, a held user utterance whose ordinal is taken.
    """
    task = asyncio.ensure_future(coro)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            if task.done():
                result = task.result()
                cancelled = True
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result
