"""The agent's replies: the LLM turn loop of `Call` and the delivery of one utterance.

`ReplyMixin._generate` asks the model, streams the answer in the current output medium and
runs the tool rounds it asks for, up to `max_tool_rounds`; `_say` delivers a fixed text (and a
forced agent message's tool calls). `_deliver` turns a cancellation (barge-in, the end of the
call) into a transcript closed with what the user actually got; a failed model gets an apology.
Also here: the prefill of the KV cache while the user has the floor, and the model-queue and
first-token/first-audio callbacks that feed the latency report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from voxcall.engine.agenda import Generate, Say
from voxcall.engine.delivery import Delivery, Spoken
from voxcall.engine.history import History, Send
from voxcall.engine.latency import TurnTiming
from voxcall.engine.preemption import Preemption, Prompt
from voxcall.engine.spec import CallSpec
from voxcall.engine.tool_params import ToolContext
from voxcall.engine.tools import ToolRunner
from voxcall.engine.voice_in import VoiceInput
from voxcall.engine.voice_out import VoiceOutput
from voxcall.errors import ProviderError
from voxcall.protocol.realtime import PlaybackClearBuffer
from voxcall.protocol.transcripts import Utterance
from voxcall.providers.base import LLM, ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec

__all__ = ["APOLOGY", "INTERRUPTED", "ReplyMixin"]

APOLOGY = "Sorry, I ran into a problem. Could you say that again?"
INTERRUPTED = "voxcall.interrupted"
"""Message `metadata` key of an agent reply cut off because the call ended; the value is the end reason."""


class _ToolRound(Protocol):
    def __call__(self, calls: list[ToolCall], *, spoke: bool) -> Coroutine[Any, Any, bool]: ...


class ReplyMixin:
    """The reply part of `Call`: its state is set up in `Call.__init__`; `_tool_round` and
    `_tool_context` come from the tool-round mixin, `_debug`, `_set_state`, `_spawn`, `_event` from `Call`."""

    spec: CallSpec
    _llm: LLM
    _send: Send
    _h: History
    _log: logging.Logger | logging.LoggerAdapter[logging.Logger]
    _loop: asyncio.AbstractEventLoop
    _started: float
    _tools: ToolRunner
    _delivery: Delivery
    _medium: str
    _voice_in: VoiceInput | None
    _voice_out: VoiceOutput | None
    _answered_upto: int
    _cutting: str | None
    _timing: TurnTiming | None
    _prefilling: asyncio.Task[Any] | None
    _current: asyncio.Task[None] | None
    _preempt: Preemption

    if TYPE_CHECKING:  # Call's, from its other parts
        _debug: Callable[[str], Awaitable[None]]
        _event: Callable[..., None]
        _set_state: Callable[[str], Awaitable[None]]
        _spawn: Callable[[Any], asyncio.Task[Any]]
        _tool_round: _ToolRound
        _tool_context: Callable[[], ToolContext]

    def _output_medium(self) -> str:
        return "voice" if self._medium == "voice" and self._voice_out is not None else "text"

    async def _say(self, action: Say) -> None:
        spoken = Spoken(calls=list(action.tool_calls))
        await self._deliver(_one(action.text), spoken)
        if spoken.calls and await self._tool_round(spoken.calls, spoke=bool(spoken.text)):
            await self._generate(Generate())

    async def _generate(self, action: Generate) -> None:
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
            await self._deliver(self._reply_stream(messages, tools), spoken)
            if spoken.text or spoken.calls:
                self._answered_upto = max(self._answered_upto, seen)
            spoke = spoke or bool(spoken.text)
            if not spoken.calls or not await self._tool_round(spoken.calls, spoke=spoke):
                return
        await self._debug("stopped after %d tool rounds" % self.spec.max_tool_rounds)

    def _reply_stream(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> AsyncIterator[LLMEvent]:
        """The model's answer: the reply drafted during the user's pause if it was made from this very prompt
        (its tool calls run only now, like a live reply's), else a new request."""
        temperature = self.spec.temperature
        stream = self._preempt.take(Prompt(tuple(messages), tuple(tools), temperature))
        outcome, discarded = self._preempt.outcome()
        if self._timing is not None and outcome != "none":
            self._timing.preemption, self._timing.discarded = outcome, discarded
        return stream or self._llm.stream(messages, tools, temperature=temperature)

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
            if spoken.prompt_tokens is not None:  # the stage's initialTokenCount / latestTokenCount
                self._h.prompt_tokens(spoken.prompt_tokens)
            heard = spoken.text if medium == "voice" else None  # typed: what was sent
            played = self._voice_out.span() if medium == "voice" and self._voice_out is not None else None
            span = (played[0] - self._started, played[1] - self._started) if played else None
            spoken.text = await self._h.close(utterance, heard, spoken.calls,
                                              metadata={INTERRUPTED: cut} if cut else None, span=span)

    async def _apologise(self, medium: str, utterance: Utterance, spoken: Spoken) -> None:
        if medium == "voice":
            with contextlib.suppress(ProviderError):  # the voice itself may be what failed
                await self._delivery.speak(_one(APOLOGY), utterance, spoken)
                return
        if not spoken.text:
            await self._delivery.type(_one(APOLOGY), utterance, spoken)

    def _prefill(self, *extra: ChatMessage, open_end: bool = False) -> None:
        """While the user has the floor, let the model read the conversation so far into its KV cache.

        Then a spoken turn's first token only waits for the new user words. `open_end`: the
        last of `extra` goes on (see `LlamaLLM.prefill`). Only back ends with a `prefill`
        method (the embedded one) take part; a remote API is never called for it.
        """
        prefill = getattr(self._llm, "prefill", None)
        if prefill is None:
            return
        messages = [ChatMessage("system", self.spec.system_prompt), *self._h.entries, *extra]
        tools = [t.spec for t in self.spec.tools]

        async def run() -> None:
            with contextlib.suppress(Exception):
                await prefill(messages, tools, open_end=open_end)

        if self._prefilling is not None:
            self._prefilling.cancel()  # at most one prefill waits for the model: they used to pile up under floods
        self._prefilling = self._spawn(run())

    # ------------------------------------------------------------ model queue and latency

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
