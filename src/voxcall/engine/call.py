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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from voxcall.engine.delivery import Delivery, Spoken
from voxcall.engine.dtmf import DtmfBatcher, PlayDtmfExecutor
from voxcall.engine.hearing import Hearing
from voxcall.engine.history import History, Record, Send
from voxcall.engine.inactivity import Inactivity
from voxcall.engine.latency import TurnTiming
from voxcall.engine.recording import Recorder
from voxcall.engine.spec import CallSpec, EventRecord, Speech
from voxcall.engine.tool_params import ToolContext
from voxcall.engine.tools import HangUp as ToolHangUp
from voxcall.engine.tools import NewStage, ToolExecutor, ToolRunner
from voxcall.engine.turns import BargeIn, Paused, Resumed, SpeechStarted, TurnEnded
from voxcall.engine.voice_in import AudioOverflow, VoiceInput
from voxcall.engine.voice_out import VoiceOutput
from voxcall.errors import ProviderError
from voxcall.protocol.connection import AudioIn, BadMessage, Throttled
from voxcall.protocol.realtime import (
    ClientToolResult,
    Debug,
    ForcedAgentMessage,
    HangUp,
    InputTextMessage,
    PlaybackClearBuffer,
    SetOutputMedium,
    State,
    UserTextMessage,
)
from voxcall.protocol.telephony.events import DtmfDigit
from voxcall.protocol.transcripts import Utterance
from voxcall.providers.base import LLM, ChatMessage, LLMEvent, TextDelta, ToolCall, end_session, open_session

__all__ = ["INTERRUPTED", "Call"]

logger = logging.getLogger(__name__)

GREETING_PROMPT = "(The call has just connected. Greet the user in one short sentence and offer help.)"
APOLOGY = "Sorry, I ran into a problem. Could you say that again?"
MAX_INBOX = 1000
"""Client events waiting for the call loop beyond which more are dropped (the call's own events always get in)."""
MAX_AGENDA = 100
"""Agent actions waiting beyond which further forced agent messages are dropped."""
MAX_UNRECORDED = 10_000
"""History entries and events waiting to be stored beyond which more are dropped (and logged)."""
INTERRUPTED = "voxcall.interrupted"
"""Message `metadata` key of an agent reply cut off because the call ended; the value is the end reason."""


@dataclass(frozen=True, slots=True)
class _Generate:
    instruction: str | None = None
    offer_tools: bool = True
    reply: bool = False  # answers user text: skipped if a later reply already answered it


@dataclass(frozen=True, slots=True)
class _Say:
    text: str
    uninterruptible: bool = False
    end_reason: str | None = None
    inactivity: str | None = None  # "soft" / "strict": may end the call after it is said
    tool_calls: tuple[ToolCall, ...] = ()  # forced_agent_message.toolCalls: run after the text is said


@dataclass(frozen=True, slots=True)
class _End:
    reason: str


@dataclass(frozen=True, slots=True)
class _Timer:
    name: str


@dataclass(frozen=True, slots=True)
class _Finished:
    task: asyncio.Task[Any]


@dataclass(frozen=True, slots=True)
class _Turn:
    event: object
    at: float


@dataclass(frozen=True, slots=True)
class _Heard:
    text: str
    timing: TurnTiming


_Action = _Generate | _Say


class Call:
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
    ) -> None:
        """`playback`, when the medium reports it: seconds of the agent audio sent so far that have played."""
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
                          on_drop=lambda: self._drop("records", "call messages and events: storage is not keeping up"))
        self._answered_upto = 0  # history entries a finished reply has seen
        self._agenda: deque[_Action] = deque()
        self._current: asyncio.Task[None] | None = None
        self._current_action: _Action | None = None
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
        self._inactivity = Inactivity(spec.inactivity, lambda: self._inbox.put_nowait(_Timer("inactivity")))
        self.call_state: dict[str, Any] = dict(spec.initial_state)
        self._setup_voice(speech, playback)
        self._delivery = Delivery(self._h.say, speaking=lambda: self._set_state("speaking"),
                                  first_token=self._first_token, first_audio=self._first_audio,
                                  llm_timeout=spec.llm_timeout, voice_out=self._voice_out)

    def _setup_voice(self, speech: Speech | None, playback: Callable[[], float | None] | None) -> None:
        voice = self.spec.voice
        self._recorder = Recorder(self._started, agent_rate=voice.output_rate) if voice.recording else None
        self._voice_in: VoiceInput | None = None
        self._voice_out: VoiceOutput | None = None
        self._hearing: Hearing | None = None
        if speech is None:
            return
        self._voice_in = VoiceInput(speech.vad(), voice.vad, input_rate=voice.input_rate, emit=self._post_turn,
                                    tap=self._recorder.user if self._recorder else None)
        self._stt = open_session(speech.stt, self.spec.call_id, on_queued=self._stt_busy)
        self._hearing = Hearing(self._stt, language=voice.language, debug=self._debug, log=self._log,
                                on_early=self._early_words)
        if speech.tts is not None:
            self._voice_out = VoiceOutput(speech.tts, voice=voice.voice, output_rate=voice.output_rate,
                                          lead=voice.client_buffer, send_audio=send_audio(self._send),
                                          tap=self._recorder.agent if self._recorder else None,
                                          chunk_ms=voice.chunk_ms, playback=playback)

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
        self._inbox.put_nowait(_End(reason))

    def _post_turn(self, event: object, at: float) -> None:
        self._inbox.put_nowait(_Turn(event, at))

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
            self._inactivity.cancel()
            self._dtmf.close()
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
            self._agenda.append(_Generate())  # the model would naturally answer
        elif greeting.agent_first:
            if greeting.text:
                self._agenda.append(_Say(greeting.text, greeting.uninterruptible))
            elif greeting.generate:
                self._agenda.append(_Generate(greeting.prompt or GREETING_PROMPT, offer_tools=False))
        else:
            if greeting.delay > 0:
                self._spawn(self._timer("user_fallback", greeting.delay))

    def _early_words(self, text: str) -> None:
        """The user has paused and we already know what they said: have the model read it now.

        If the turn then ends, the reply's prompt is already in the KV cache and its first token
        comes at once; if the user goes on, the cache simply diverges at this message.
        """
        if self._current is None:
            self._prefill(ChatMessage("user", text))

    def _prefill(self, *extra: ChatMessage) -> None:
        """While the user has the floor, let the model read the conversation so far into its KV cache.

        Then a spoken turn's first token only waits for the new user words. Only back ends
        with a `prefill` method (the embedded one) take part; a remote API is never called for it.
        """
        prefill = getattr(self._llm, "prefill", None)
        if prefill is None:
            return
        messages = [ChatMessage("system", self.spec.system_prompt), *self._h.entries, *extra]
        tools = [t.spec for t in self.spec.tools]

        async def run() -> None:
            with contextlib.suppress(Exception):
                await prefill(messages, tools)

        if self._prefilling is not None:
            self._prefilling.cancel()  # at most one prefill waits for the model: they used to pile up under floods
        self._prefilling = self._spawn(run())

    async def _timer(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._inbox.put_nowait(_Timer(name))

    async def _watch_media(self, timeout: float) -> None:
        assert self._voice_in is not None
        while True:
            await asyncio.sleep(1.0)
            if self._loop.time() - self._voice_in.last_audio_at > timeout:
                self._event("media_idle", f"No audio for {timeout:g}s: ending the call", "warning")
                self._inbox.put_nowait(_End("connection_error"))
                return

    async def _handle(self, event: object) -> None:
        match event:
            case UserTextMessage() | InputTextMessage():
                await self._user_text(event)
            case _Turn():
                await self._turn(event)
            case _Heard():
                await self._heard(event)
            case ForcedAgentMessage() if len(self._agenda) >= MAX_AGENDA:
                self._drop("agenda", "forced agent messages: too many are waiting to be said")
            case ForcedAgentMessage():
                calls = tuple(ToolCall(c.id or f"forced_{uuid.uuid4().hex[:16]}", c.name, c.arguments) for c in event.tool_calls or ())
                say = _Say(event.content, bool(event.uninterruptible), tool_calls=calls)
                if event.urgency == "immediate":
                    self._interrupt()
                    self._agenda.appendleft(say)
                else:
                    self._agenda.append(say)
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
                if not self._tools.resolve(event):
                    await self._debug(f"Ignored client_tool_result for unknown or finished invocation {event.invocation_id}")
            case BadMessage():
                self._log.debug("ignored a client message: %s", event.reason)
            case Throttled():
                self._event("rate_limited", f"Dropped {event.text_frames} text and {event.audio_frames} audio frames over "
                            "the rate limits", "warning", {"text": event.text_frames, "audio": event.audio_frames, "total": event.total})
            case _Finished():
                await self._finished(event.task)
            case _Timer(name="max_duration"):
                await self._time_up()
            case _Timer(name="user_fallback"):
                if not self._user_spoke and self._current is None and not self._agenda:
                    greeting = self.spec.greeting
                    self._agenda.append(_Say(greeting.text) if greeting.text
                                        else _Generate(greeting.prompt or GREETING_PROMPT, offer_tools=False))
            case _Timer(name="inactivity"):
                self._inactivity_due()
            case _End(reason=reason):
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

    def _want_reply(self, to_user: bool = True) -> None:
        """Queue one reply; a reply to user text is dropped if a later reply has seen that text by then."""
        for i, action in enumerate(self._agenda):
            if isinstance(action, _Generate):
                if action.reply and not to_user:
                    self._agenda[i] = _Generate()
                return
        self._agenda.append(_Generate(reply=to_user))

    async def _turn(self, turn: _Turn) -> None:
        event = turn.event
        if isinstance(event, SpeechStarted):
            self._activity()
        elif isinstance(event, BargeIn):
            if self._voice_in is not None and self._voice_in.agent_speaking and self._interruptible:
                self._interrupt()  # first: the clear goes out as the cancelled reply unwinds
                await self._debug("User barged in")
        elif isinstance(event, Paused) and self._hearing is not None:
            self._hearing.paused(event.audio)
        elif isinstance(event, Resumed) and self._hearing is not None:
            self._hearing.resumed()
        elif isinstance(event, TurnEnded) and self._hearing is not None:
            if self._current is None:
                await self._set_state("thinking")  # the turn now waits for speech recognition, then the model
            timing = TurnTiming(speech_end=turn.at - event.trailing_silence_frames * self.spec.voice.vad.frame_seconds,
                                 turn_end=turn.at)
            self._spawn(self._finish_turn(event.audio, timing))
        elif isinstance(event, AudioOverflow):
            self._event("audio_overflow", f"Client sent audio faster than real time; dropped {event.dropped_seconds:.2f}s so far",
                        "warning")

    async def _finish_turn(self, audio: bytes, timing: TurnTiming) -> None:
        assert self._hearing is not None
        text = await self._hearing.finish(audio)
        timing.transcript = self._loop.time()
        self._inbox.put_nowait(_Heard(text, timing))

    async def _heard(self, heard: _Heard) -> None:
        if not heard.text:
            await self._debug("Heard speech but no words")
            return
        self._activity()
        self._user_spoke = True
        self._interrupt()  # a finished spoken turn takes the floor
        await self._h.user(heard.text, "voice")
        self._timing = heard.timing
        self._want_reply()

    async def _time_up(self) -> None:
        await self._debug("maxDuration reached")
        self._agenda.clear()
        await self._stop_current("timeout")
        if self.spec.time_exceeded_message:
            self._agenda.append(_Say(self.spec.time_exceeded_message, True, end_reason="timeout"))
        else:
            self._end_reason = "timeout"

    # ------------------------------------------------------------ inactivity

    def _activity(self) -> None:
        """The user did something: restart the inactivity sequence."""
        self._inactivity.activity()

    def _inactivity_due(self) -> None:
        if self._current is not None or self._agenda or (self._voice_in is not None and self._voice_in.in_speech):
            self._inactivity.cancel()
            return
        message = self._inactivity.take()
        if message is not None:
            behavior = message.end_behavior if message.end_behavior != "none" else None
            self._agenda.append(_Say(message.message, inactivity=behavior))

    # ------------------------------------------------------------ agenda

    async def _drive(self) -> None:
        """Start the next agent action when nothing is running."""
        if self._current is not None or self._end_reason is not None:
            return
        await self._h.release(force=True)  # nothing runs: no tool round is still open
        while self._agenda and isinstance(self._agenda[0], _Generate) and self._agenda[0].reply \
                and self._h.last_user_at < self._answered_upto:
            self._agenda.popleft()  # that user text was already answered
        if not self._agenda:
            if self._state != "listening":
                self._prefill()
            await self._set_state("listening")
            self._inactivity.arm()
            return
        self._inactivity.cancel()
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
        if isinstance(action, _Say) and not task.cancelled():
            if action.end_reason:
                self._end_reason = action.end_reason
            elif action.inactivity == "strict" or (action.inactivity == "soft" and not self._inactivity.active_since_message):
                self._end_reason = "agent_hangup"

    def _interrupt(self) -> None:
        if self._current is not None and self._interruptible:
            self._current.cancel()

    async def _stop_current(self, cause: str) -> None:
        """Cancel the running action because the call is ending; a reply it cuts off is stored as interrupted by `cause`."""
        task = self._current
        if task is None:
            return
        self._cutting = cause
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(5):
                await asyncio.shield(task)
        self._cutting = None
        self._current = None
        self._current_action = None

    # ------------------------------------------------------------ history

    def _event(self, kind: str, text: str, severity: str = "info", extras: dict[str, Any] | None = None) -> None:
        self._h.event(EventRecord(kind, text, severity, self._loop.time() - self._started, extras))  # type: ignore[arg-type]

    async def _save(self) -> None:
        if self._recorder is not None and self._save_recording is not None:
            try:
                await self._save_recording(self._recorder.wav())
            except Exception:
                self._log.exception("could not save the recording")

    # ------------------------------------------------------------ speaking

    def _output_medium(self) -> str:
        return "voice" if self._medium == "voice" and self._voice_out is not None else "text"

    async def _say(self, action: _Say) -> None:
        spoken = Spoken(calls=list(action.tool_calls))
        await self._deliver(_one(action.text), spoken)
        if spoken.calls and await self._tool_round(spoken.calls, spoke=bool(spoken.text)):
            await self._generate(_Generate())

    async def _generate(self, action: _Generate) -> None:
        spoke = False
        instruction = action.instruction
        for _ in range(self.spec.max_tool_rounds):
            await self._set_state("thinking")
            seen = len(self._h.entries)
            messages = [ChatMessage("system", self.spec.system_prompt), *self._h.entries]
            if instruction:
                messages.append(ChatMessage("user", instruction))
            instruction = None
            tools = [t.spec for t in self.spec.tools] if action.offer_tools else []
            spoken = Spoken(on_call=lambda c: self._tools.start_early(c, self._tool_context()))
            await self._deliver(self._llm.stream(messages, tools, temperature=self.spec.temperature), spoken)
            if spoken.text or spoken.calls:
                self._answered_upto = max(self._answered_upto, seen)
            spoke = spoke or bool(spoken.text)
            if not spoken.calls or not await self._tool_round(spoken.calls, spoke=spoke):
                return
        await self._debug("stopped after %d tool rounds" % self.spec.max_tool_rounds)

    async def _tool_round(self, calls: list[ToolCall], *, spoke: bool) -> bool:
        """Run one round of tool calls, uninterruptible (PROTOCOL.md 2.5); True if the agent speaks next."""
        self._interruptible = False
        await self._debug(f"LLM response: Tool calls: {[(c.name, c.arguments) for c in calls]}")
        reaction = "speaks"
        for call in calls:
            reaction = await self._run_tool(call)
            if self._end_reason is not None or reaction == "hang-up":
                return False
        self._interruptible = True
        return not (reaction == "listens" or (reaction == "speaks-once" and spoke))

    async def _deliver(self, stream: AsyncIterator[LLMEvent], spoken: Spoken) -> None:
        """Stream one agent utterance in the current output medium into a transcript (and audio).

        Cancellation (barge-in) leaves `spoken.text` as what the user got: all of
        it in text mode, the words already played in voice mode. The history keeps
        that, written before the final transcript goes out.
        """
        medium = self._output_medium()
        utterance = self._h.agent(medium)  # type: ignore[arg-type]
        cut: str | None = None
        try:
            try:
                if medium == "voice":
                    await self._delivery.speak(stream, utterance, spoken)
                else:
                    await self._delivery.type(stream, utterance, spoken)
            finally:
                await _aclose(stream)
        except (ProviderError, TimeoutError) as exc:
            kind = "timed out" if isinstance(exc, TimeoutError) else _kind(exc)  # the log never gets the prompt: see _kind
            self._log.warning("agent reply failed in call %s: %s", self.spec.call_id, kind)
            await self._debug(f"Agent reply failed: {kind if isinstance(exc, TimeoutError) else str(exc)[:200]}")
            spoken.calls.clear()
            self._tools.discard_early()
            if not spoken.text:
                await self._apologise(medium, utterance, spoken)
        except asyncio.CancelledError:
            cut = self._cutting  # None for a barge-in: then the user chose to cut it
            spoken.calls.clear()  # tool calls not yet run are dropped with the interrupted reply
            self._tools.discard_early()
            if medium == "voice" and self._voice_out is not None:
                spoken.text = self._voice_out.heard()
                await self._send(PlaybackClearBuffer())
            raise
        finally:
            if self._voice_in is not None:
                self._voice_in.agent_speaking = False
            heard = spoken.text if medium == "voice" else None  # typed: what was sent
            spoken.text = await self._h.close(utterance, heard, spoken.calls,
                                              metadata={INTERRUPTED: cut} if cut else None)

    async def _apologise(self, medium: str, utterance: Utterance, spoken: Spoken) -> None:
        if medium == "voice":
            with contextlib.suppress(ProviderError):  # the voice itself may be what failed
                await self._delivery.speak(_one(APOLOGY), utterance, spoken)
                return
        if not spoken.text:
            await self._delivery.type(_one(APOLOGY), utterance, spoken)

    def _model_busy(self, ahead: int) -> None:
        """This call's turn waits for the model behind other calls' requests (state is `thinking` already)."""
        self._delivery.model_waiting()
        self._spawn(self._debug(f"LLM busy with other calls: this turn is queued behind {ahead} requests"))

    def _model_free(self) -> None:
        self._delivery.model_started()

    def _stt_busy(self, ahead: int) -> None:
        self._spawn(self._debug(f"Speech recognition busy with other calls: queued behind {ahead} requests"))

    def _first_token(self) -> None:
        if self._timing is not None and not self._timing.first_token:
            self._timing.first_token = self._loop.time()

    async def _first_audio(self) -> None:
        if self._voice_in is not None:
            self._voice_in.agent_speaking = True
        await self._set_state("speaking")
        await self._report_latency()

    async def _report_latency(self) -> None:
        timing, self._timing = self._timing, None
        if timing is None:
            return
        text, stages = timing.report(self._loop.time())
        self._log.debug("%s", text)
        await self._debug(text)
        self._event("turn_latency", text, "info", stages)

    # --------------------------------------------------------------- tools

    async def _run_tool(self, call: ToolCall) -> str:
        """Run one tool call and put its result into the history; returns the agent reaction."""
        outcome = await self._tools.run(call, self._tool_context())
        if outcome.update_call_state is not None:
            self.call_state = {**self.call_state, **outcome.update_call_state}
        await self._h.tool_result(ChatMessage("tool", outcome.result, tool_call_id=call.id, name=call.name),
                                  error=outcome.error,
                                  state=dict(self.call_state) if outcome.update_call_state is not None else None)
        await self._debug(f"Tool call complete. Result: {outcome.result}")
        for note in outcome.notes:
            await self._debug(f"Tool {call.name}: {note}")
        if isinstance(outcome.control, ToolHangUp):
            self._agent_hang_up(outcome.control)
            return "hang-up"
        if isinstance(outcome.control, NewStage):
            # Call stages are not implemented yet: the body is used as a plain tool result.
            await self._debug(f"Tool {call.name} asked for a new stage; call stages are not supported yet")
        return outcome.reaction

    def _tool_context(self) -> ToolContext:
        spec = self.spec
        return ToolContext(call_id=spec.call_id, call_stage_id=spec.call_stage_id or spec.call_id,
                           call_state=dict(self.call_state), metadata=dict(spec.metadata),
                           output_sample_rate=spec.voice.output_rate, history=tuple(self._h.entries))

    def _agent_hang_up(self, hang_up: ToolHangUp) -> None:
        self._agenda.clear()
        if hang_up.message:
            self._agenda.append(_Say(hang_up.message, True, end_reason="agent_hangup"))
        else:
            self._end_reason = "agent_hangup"

    # --------------------------------------------------------------- misc

    async def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            await self._send(State(state=state))  # type: ignore[arg-type]

    async def _debug(self, text: str) -> None:
        await self._send(Debug(message=text))


def send_audio(send: Send) -> Callable[[bytes], Awaitable[None]]:
    async def audio(pcm: bytes) -> None:
        await send(pcm)

    return audio


def _kind(exc: BaseException) -> str:
    """The error's type and its cause's type, e.g. `ProviderError (UnicodeEncodeError)`.

    Error texts are left out: a back end's may quote the whole prompt.
    """
    cause = exc.__cause__
    return f"{type(exc).__name__} ({type(cause).__name__})" if cause is not None else type(exc).__name__


async def _one(text: str) -> AsyncIterator[LLMEvent]:
    yield TextDelta(text)


async def _aclose(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
