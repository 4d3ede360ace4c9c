"""Voice turns of a call: the speech pipeline set up for a call and the turn events it posts.

`VoiceTurnMixin._setup_voice` builds the inbound side (`VoiceInput`: VAD frames → turn events
posted to the call's inbox), early transcription (`Hearing`) and the outbound voice
(`VoiceOutput`). `_turn` acts on a turn event inside the call loop: a barge-in interrupts
the agent, a pause starts Whisper early, a finished turn is transcribed in the background
and comes back as `Heard`, which takes the floor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from voxcall.engine.agenda import End, Heard, Turn
from voxcall.engine.hearing import Hearing
from voxcall.engine.history import History, Send
from voxcall.engine.latency import TurnTiming
from voxcall.engine.preemption import Preemption, PrimedTTS, Prompt, prompt_of
from voxcall.engine.recording import Recorder
from voxcall.engine.spec import CallSpec, Speech
from voxcall.engine.turns import BargeIn, Paused, Resumed, Speaking, SpeechStarted, TurnEnded
from voxcall.engine.voice_in import AudioOverflow, VoiceInput
from voxcall.engine.voice_out import VoiceOutput
from voxcall.providers.base import LLM, STT, TTS, ChatMessage, LLMEvent, open_session

__all__ = ["VoiceTurnMixin", "send_audio"]


class VoiceTurnMixin:
    """The voice-turn part of `Call`: its state is set up in `Call.__init__`; `_interrupt`,
    `_activity`, `_want_reply` come from the agenda mixin, `_prefill` from the reply mixin."""

    spec: CallSpec
    _send: Send
    _h: History
    _log: logging.Logger | logging.LoggerAdapter[logging.Logger]
    _loop: asyncio.AbstractEventLoop
    _started: float
    _inbox: asyncio.Queue[Any]
    _current: asyncio.Task[None] | None
    _interruptible: bool
    _user_spoke: bool
    _timing: TurnTiming | None
    _recorder: Recorder | None
    _voice_in: VoiceInput | None
    _voice_out: VoiceOutput | None
    _hearing: Hearing | None
    _stt: STT
    _llm: LLM
    _agenda: Any
    _end_reason: str | None
    _preempt: Preemption

    if TYPE_CHECKING:  # Call's, from its other parts
        _debug: Callable[[str], Awaitable[None]]
        _event: Callable[..., None]
        _set_state: Callable[[str], Awaitable[None]]
        _spawn: Callable[[Any], asyncio.Task[Any]]
        _stt_busy: Callable[[int], None]
        _prefill: Callable[..., None]
        _activity: Callable[[], None]
        _interrupt: Callable[[], None]
        _want_reply: Callable[..., None]
        _output_medium: Callable[[], str]

    def _setup_voice(self, speech: Speech | None, playback: Callable[[], float | None] | None) -> None:
        voice = self.spec.voice
        self._recorder = Recorder(self._started, agent_rate=voice.output_rate) if voice.recording else None
        self._voice_in = None
        self._voice_out = None
        self._hearing = None
        self._preempt = Preemption(self._draft_stream, tts=None, enabled=False)
        if speech is None:
            return
        self._voice_in = VoiceInput(speech.vad(), voice.vad, input_rate=voice.input_rate, emit=self._post_turn,
                                    tap=self._recorder.user if self._recorder else None)
        self._stt = open_session(speech.stt, self.spec.call_id, on_queued=self._stt_busy)
        prefills = callable(getattr(self._llm, "prefill", None))  # partial words are only worth a prefill
        self._hearing = Hearing(self._stt, language=voice.language, debug=self._debug, log=self._log,
                                on_early=self._early_words, on_partial=self._partial_words if prefills else None)
        tts: TTS | None = speech.tts
        if voice.preemptive:
            tts = PrimedTTS(tts) if tts is not None else None  # the draft's first clause is spoken from memory
            self._preempt = Preemption(self._draft_stream, tts=tts, enabled=True)
        if tts is not None:
            self._voice_out = VoiceOutput(tts, voice=voice.voice, output_rate=voice.output_rate,
                                          lead=voice.client_buffer, send_audio=send_audio(self._send),
                                          tap=self._recorder.agent if self._recorder else None,
                                          chunk_ms=voice.chunk_ms, playback=playback)

    def _post_turn(self, event: object, at: float) -> None:
        self._inbox.put_nowait(Turn(event, at))

    def _early_words(self, text: str) -> None:
        """The user has paused and we already know what they said: have the model read it now.

        If the turn then ends, the reply's prompt is already in the KV cache and its first token
        comes at once; if the user goes on, the cache simply diverges at this message.
        """
        if self._current is not None:
            return
        # A draft holds the model for a whole reply: while another call's turn needs it, only prefill.
        contended = bool(getattr(self._llm, "contended", False))
        if self._preempt.enabled and not self._agenda and self._end_reason is None and not contended:
            self._draft(text)
        else:
            self._prefill(ChatMessage("user", text))

    def _partial_words(self, text: str) -> None:
        """The user is still talking and we know most of what they said: have the model read that much now.

        The prompt stops at the words (`open_end`), so it is the prefix of the turn's final prompt
        wherever the words so far are right; where they are not, the KV cache diverges there.
        """
        if self._current is None and self._end_reason is None:
            self._prefill(ChatMessage("user", text), open_end=True)

    def _draft(self, text: str) -> None:
        """Preemptive reply (engine/preemption.py): the whole answer to these words, held until the turn ends."""
        prompt = prompt_of(self.spec.system_prompt, self._h.entries, ChatMessage("user", text),
                           tools=[t.spec for t in self.spec.tools], temperature=self.spec.temperature)
        self._preempt.start(prompt, voice=self.spec.voice.voice, speak=self._output_medium() == "voice")

    def _draft_stream(self, prompt: Prompt) -> AsyncIterator[LLMEvent]:
        """A speculative request where the model has one (the embedded LLM: another call's due turn stops it)."""
        draft = getattr(self._llm, "draft", None)
        stream = draft if callable(draft) else self._llm.stream
        return cast(AsyncIterator[LLMEvent], stream(prompt.messages, prompt.tools, temperature=prompt.temperature))

    async def _watch_media(self, timeout: float) -> None:
        assert self._voice_in is not None
        while True:
            await asyncio.sleep(1.0)
            if self._loop.time() - self._voice_in.last_audio_at > timeout:
                self._event("media_idle", f"No audio for {timeout:g}s: ending the call", "warning")
                self._inbox.put_nowait(End("connection_error"))
                return

    async def _turn(self, turn: Turn) -> None:
        event = turn.event
        if isinstance(event, SpeechStarted):
            self._activity()
        elif isinstance(event, BargeIn):
            if self._voice_in is not None and self._voice_in.agent_speaking and self._interruptible:
                self._interrupt()  # first: the clear goes out as the cancelled reply unwinds
                await self._debug("User barged in")
        elif isinstance(event, Speaking) and self._hearing is not None:
            if self._current is None:  # over the agent, it may be a barge-in or noise: not worth a transcript yet
                self._hearing.speaking(event.audio)
        elif isinstance(event, Paused) and self._hearing is not None:
            self._hearing.paused(event.audio)
        elif isinstance(event, Resumed) and self._hearing is not None:
            self._hearing.resumed()
            self._preempt.discard()  # the user goes on: the held reply answers words they have not finished
        elif isinstance(event, TurnEnded) and self._hearing is not None and self._voice_in is not None:
            if self._current is None:
                await self._set_state("thinking")  # the turn now waits for speech recognition, then the model
            vad = self.spec.voice.vad
            speech_end = turn.at - event.trailing_silence_frames * vad.frame_seconds
            # The turn's audio keeps the silence up to the pause point (engine/turns.py), and begins with the lead-in.
            audio_end = speech_end + min(event.trailing_silence_frames, vad.frames(vad.pause_seconds)) * vad.frame_seconds
            timing = TurnTiming(speech_end=speech_end, turn_end=turn.at,
                                speech_start=audio_end - len(event.audio) / 2 / self._voice_in.rate)
            self._spawn(self._finish_turn(event.audio, timing))
        elif isinstance(event, AudioOverflow):
            self._event("audio_overflow", f"Client sent audio faster than real time; dropped {event.dropped_seconds:.2f}s so far",
                        "warning")

    async def _finish_turn(self, audio: bytes, timing: TurnTiming) -> None:
        assert self._hearing is not None
        text = await self._hearing.finish(audio)
        timing.transcript = self._loop.time()
        self._inbox.put_nowait(Heard(text, timing))

    async def _heard(self, heard: Heard) -> None:
        if not heard.text:
            self._preempt.discard()
            await self._debug("Heard speech but no words")
            return
        self._activity()
        self._user_spoke = True
        self._interrupt()  # a finished spoken turn takes the floor
        span = (heard.timing.speech_start - self._started, heard.timing.speech_end - self._started)
        await self._h.user(heard.text, "voice", span=span)
        self._timing = heard.timing
        self._want_reply()


def send_audio(send: Send) -> Callable[[bytes], Awaitable[None]]:
    async def audio(pcm: bytes) -> None:
        await send(pcm)

    return audio
