"""One call's conversation: the agent loop behind a join-URL session.

`Call` is asyncio code that knows no web framework and no database: inputs
come in through the sync, never-blocking `receive()`, outputs leave through
the injected `send` (server messages and PCM) and `record` (history entries
and call events) callables.

Turn rules (PROTOCOL.md 2.5): `user_text_message` urgency `immediate`
interrupts the agent and answers at once, `soon` (the default) answers after
the current utterance, `later` or `deferResponse` only adds to the history.
The legacy `input_text_message` is `immediate`, or `later` when deferred. A
finished spoken turn is `immediate`. Barge-in is task cancellation: an
interrupted utterance is closed with the text the user heard, and only that
enters the history (STYLE.md rule 7).

The loop is here (inbox, run, client events, timers, end reasons); its parts live beside it:
`agenda.py` (the actions and their scheduling, inactivity), `replies.py` (the LLM turn loop and
the delivery of one utterance), `tool_rounds.py` (tool calls and their controls) and
`voice_turns.py` (the speech pipeline and the turn events).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from voxcall.engine.agenda import (
    Action,
    AgendaMixin,
    End,
    Finished,
    Generate,
    Heard,
    Say,
    Timer,
    Turn,
)
from voxcall.engine.delivery import Delivery
from voxcall.engine.dtmf import DtmfBatcher, PlayDtmfExecutor
from voxcall.engine.history import History, Record, Send
from voxcall.engine.inactivity import Inactivity
from voxcall.engine.latency import TurnTiming
from voxcall.engine.replies import APOLOGY, INTERRUPTED, ReplyMixin
from voxcall.engine.spec import CallSpec, EventRecord, Speech
from voxcall.engine.stages import StageResolver
from voxcall.engine.tool_rounds import ToolRoundMixin
from voxcall.engine.tools import ToolExecutor, ToolRunner
from voxcall.engine.voice_turns import VoiceTurnMixin
from voxcall.protocol.connection import AudioIn, BadMessage, Throttled
from voxcall.protocol.realtime import (
    ClientToolResult,
    Debug,
    ForcedAgentMessage,
    HangUp,
    InputTextMessage,
    SetOutputMedium,
    State,
    UserTextMessage,
)
from voxcall.protocol.rest import first_stage_id
from voxcall.protocol.telephony.events import DtmfDigit
from voxcall.providers.base import LLM, ToolCall, end_session, open_session

__all__ = ["APOLOGY", "INTERRUPTED", "MAX_AGENDA", "MAX_INBOX", "MAX_UNRECORDED", "Call"]

logger = logging.getLogger(__name__)

GREETING_PROMPT = "(The call has just connected. Greet the user in one short sentence and offer help.)"
MAX_INBOX = 1000
"""Client events waiting for the call loop beyond which more are dropped (the call's own events always get in)."""
MAX_AGENDA = 100
"""Agent actions waiting beyond which further forced agent messages are dropped."""
MAX_UNRECORDED = 10_000
"""History entries and events waiting to be stored beyond which more are dropped (and logged)."""


class Call(AgendaMixin, ReplyMixin, ToolRoundMixin, VoiceTurnMixin):
    """The agent side of one call. Create inside the event loop, then `await run()`; returns the end reason."""

    def __init__(
        self,
        spec: CallSpec,
        llm: LLM,
        *,
        send: Send,
        record: Record,
        speech: Speech | None = None,
        save_recording: Callable[[bytes], Awaitable[None]] | None = None,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        tool_executors: Mapping[str, ToolExecutor] | None = None,
        playback: Callable[[], float | None] | None = None,
        stages: StageResolver | None = None,
    ) -> None:
        """`playback`, when the medium reports it: seconds of the agent audio sent so far that have played;
        `stages` resolves what a new call stage selects (tools, voice): without it a stage keeps the tools."""
        self.spec = spec
        # This call's view of a shared model: its work is queued fairly and dropped when the call ends.
        self._llm = open_session(llm, spec.call_id, on_queued=self._model_busy, on_started=self._model_free)
        self._send = send
        self._record = record
        self._save_recording = save_recording
        self._log = log or logging.LoggerAdapter(logger, {"call_id": spec.call_id})
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._h = History(spec.history, send=send, record=record, log=self._log, max_queued=MAX_UNRECORDED,
                          on_drop=lambda: self._drop("records", "call messages and events: storage is not keeping up"),
                          stage_id=spec.call_stage_id or first_stage_id(spec.call_id), started=self._started)
        self._stages = stages
        self._stage_settings: dict[str, Any] = {}  # what the call's stages changed so far (wire form)
        self._answered_upto = 0  # history entries a finished reply has seen
        self._agenda: deque[Action] = deque()
        self._current: asyncio.Task[None] | None = None
        self._current_action: Action | None = None
        self._interruptible = True
        self._tools = ToolRunner(spec.tools, send, {"play_dtmf": PlayDtmfExecutor(send, spec.dtmf_out), **(tool_executors or {})})
        self._dtmf = DtmfBatcher(spec.dtmf, self._inbox.put_nowait)
        self._state: str | None = None
        self._medium = spec.output_medium
        self._user_spoke = False
        self._end_reason: str | None = None
        self._cutting: str | None = None  # why the running action is being stopped (an end reason)
        self._dropped = {"inbox": 0, "agenda": 0, "records": 0}
        self._background: set[asyncio.Task[Any]] = set()
        self._prefilling: asyncio.Task[Any] | None = None
        self._timing: TurnTiming | None = None
        self._inactivity = Inactivity(spec.inactivity, lambda: self._inbox.put_nowait(Timer("inactivity")))
        self.call_state: dict[str, Any] = dict(spec.initial_state)
        self._setup_voice(speech, playback)
        self._delivery = Delivery(self._h.say, speaking=lambda: self._set_state("speaking"),
                                  first_token=self._first_token, first_audio=self._first_audio,
                                  llm_timeout=spec.llm_timeout, voice_out=self._voice_out)

    # ------------------------------------------------------------- inputs

    def receive(self, event: object) -> None:
        """Take one client event (a parsed message, `AudioIn`, `DtmfDigit` or `BadMessage`). Never blocks."""
        if isinstance(event, AudioIn):
            if self._voice_in is not None:
                self._voice_in.push(event.pcm)
            return
        if isinstance(event, DtmfDigit):
            self._dtmf.press(event.digit)
            return
        if self._inbox.qsize() >= MAX_INBOX:
            self._drop("inbox", "client messages: the call is not keeping up")
            return
        self._inbox.put_nowait(event)

    def _drop(self, what: str, text: str) -> None:
        self._dropped[what] += 1
        count = self._dropped[what]
        if count == 1 or count % 1000 == 0:
            self._log.error("dropped %d %s", count, text)
            if what != "records":
                self._event(f"{what}_overflow", f"Dropped {count} {text}", "error", {"dropped": count})

    def end(self, reason: str) -> None:
        """End the call from outside (client gone, API delete). Never blocks."""
        self._inbox.put_nowait(End(reason))

    # ---------------------------------------------------------------- run

    async def run(self) -> str:
        """Run the call until it ends and return the end reason."""
        self._spawn(self._timer("max_duration", self.spec.max_duration))
        if self.spec.voice.media_idle_timeout and self._voice_in is not None:
            self._spawn(self._watch_media(max(10.0, self.spec.voice.media_idle_timeout)))
        recorder = asyncio.create_task(self._h.run_recorder())
        try:
            await self._set_state("idle")
            self._open_conversation()
            await self._drive()
            while self._end_reason is None:
                await self._handle(await self._inbox.get())
                await self._drive()
        except Exception:
            self._log.exception("call failed")
            self._end_reason = "system_error"
        finally:
            end_session(self._llm)  # queued and running model work of this call stops now, not in minutes
            if self._hearing is not None:
                end_session(self._stt)
            await self._preempt.close()  # a held reply is dropped with its model work
            self._inactivity.cancel()
            self._dtmf.close()
            if self._voice_in is not None:
                self._voice_in.close()
            for task in list(self._background):
                task.cancel()
            await self._stop_current(self._end_reason or "system_error")
            await self._tools.close()
            await self._h.release(force=True)
            if self._hearing is not None:
                await self._hearing.close()
            await self._h.drain(recorder)
            await self._save()
        return self._end_reason or "system_error"

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _open_conversation(self) -> None:
        greeting = self.spec.greeting
        last = self._h.entries[-1].role if self._h.entries else None
        if last in ("user", "tool"):
            self._agenda.append(Generate())  # the model would naturally answer
        elif greeting.agent_first:
            if greeting.text:
                self._agenda.append(Say(greeting.text, greeting.uninterruptible))
            elif greeting.generate:
                self._agenda.append(Generate(greeting.prompt or GREETING_PROMPT, offer_tools=False))
        else:
            if greeting.delay > 0:
                self._spawn(self._timer("user_fallback", greeting.delay))

    async def _timer(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._inbox.put_nowait(Timer(name))

    async def _handle(self, event: object) -> None:
        match event:
            case UserTextMessage() | InputTextMessage():
                await self._user_text(event)
            case Turn():
                await self._turn(event)
            case Heard():
                await self._heard(event)
            case ForcedAgentMessage() if len(self._agenda) >= MAX_AGENDA:
                self._drop("agenda", "forced agent messages: too many are waiting to be said")
            case ForcedAgentMessage():
                calls = tuple(ToolCall(c.id or f"forced_{uuid.uuid4().hex[:16]}", c.name, c.arguments) for c in event.tool_calls or ())
                say = Say(event.content, bool(event.uninterruptible), tool_calls=calls)
                if event.urgency == "immediate":
                    self._interrupt()
                    self._agenda.appendleft(say)
                else:
                    self._agenda.append(say)
            case HangUp():
                if event.message:
                    self._interrupt()
                    self._agenda.clear()
                    self._agenda.append(Say(event.message, True, end_reason="hangup"))
                else:
                    self._end_reason = "hangup"
            case SetOutputMedium():
                self._medium = event.medium  # applies from the next utterance (PROTOCOL.md 2.5)
            case ClientToolResult():
                if not self._tools.resolve(event):
                    await self._debug(f"Ignored client_tool_result for unknown or finished invocation {event.invocation_id}")
            case BadMessage():
                self._log.debug("ignored a client message: %s", event.reason)
            case Throttled():
                self._event("rate_limited", f"Dropped {event.text_frames} text and {event.audio_frames} audio frames over "
                            "the rate limits", "warning", {"text": event.text_frames, "audio": event.audio_frames, "total": event.total})
            case Finished():
                await self._finished(event.task)
            case Timer(name="max_duration"):
                await self._time_up()
            case Timer(name="user_fallback"):
                if not self._user_spoke and self._current is None and not self._agenda:
                    greeting = self.spec.greeting
                    self._agenda.append(Say(greeting.text) if greeting.text
                                        else Generate(greeting.prompt or GREETING_PROMPT, offer_tools=False))
            case Timer(name="inactivity"):
                self._inactivity_due()
            case End(reason=reason):
                self._end_reason = reason
            case _:
                self._log.debug("ignored event %r", type(event).__name__)

    async def _user_text(self, message: UserTextMessage | InputTextMessage) -> None:
        if isinstance(message, InputTextMessage):
            urgency = "later" if message.defer_response else "immediate"
        else:
            urgency = "later" if message.defer_response else (message.urgency or "soon")
        self._activity()
        if urgency == "immediate":
            self._interrupt()
        if message.text:
            self._user_spoke = True
            await self._h.user(message.text, "text")
        if urgency != "later":
            self._want_reply(bool(message.text))

    async def _time_up(self) -> None:
        await self._debug("maxDuration reached")
        self._agenda.clear()
        await self._stop_current("timeout")
        if self.spec.time_exceeded_message:
            self._agenda.append(Say(self.spec.time_exceeded_message, True, end_reason="timeout"))
        else:
            self._end_reason = "timeout"

    # ------------------------------------------------------------ history

    def _event(self, kind: str, text: str, severity: str = "info", extras: dict[str, Any] | None = None) -> None:
        self._h.event(EventRecord(kind, text, severity, self._loop.time() - self._started, extras,  # type: ignore[arg-type]
                                  call_stage_id=self._h.stage_id))

    async def _save(self) -> None:
        if self._recorder is not None and self._save_recording is not None:
            try:
                await self._save_recording(self._recorder.wav())
            except Exception:
                self._log.exception("could not save the recording")

    # --------------------------------------------------------------- misc

    async def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            await self._send(State(state=state))

    async def _debug(self, text: str) -> None:
        await self._send(Debug(message=text))
