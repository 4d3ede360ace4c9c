"""`UltravoxSession`: the high-level SDK, with the official Python SDK's API (PROTOCOL.md 4) over serverWebSocket.

The official SDK is WebRTC-only; this one speaks the join-URL protocol
directly (PCM in binary frames, data messages in text frames) through
`RealtimeClient`, keeping the same names: `join_call`, `leave_call`,
`send_text`, `send_data`, `set_output_medium`, `register_tool_implementation(s)`,
`status`, `transcripts`, and the events below.

Events (`session.on(name, handler)`; handlers may be sync or async):

=====================  =================  ===========================================
event                  arguments          when
=====================  =================  ===========================================
status                 (none)             `status` changed
transcripts            (none)             `transcripts` changed
data_message           msg: dict          every data message, before it is handled
debug                  message: str       a `debug` message (enable with experimental_messages={"debug"})
experimental_message   msg: dict          unhandled types (debug included), only when experimental messages are on
mic_muted              muted: bool        the microphone was muted or unmuted
speaker_muted          muted: bool        the speaker was muted or unmuted
ended                  code: int | None   the call's socket closed (close code; 1000 = normal end)
=====================  =================  ===========================================

Status: `join_call` sets CONNECTING; `call_started` makes it IDLE; after that
the server's `state` messages drive it (idle, listening, thinking, speaking).
`leave_call`, or the server closing the socket, goes DISCONNECTING then DISCONNECTED.

Audio: `join_call(url, source, sink, input_sample_rate=..., output_sample_rate=...)`.
A sender task pumps the source's chunks to the server (zeros of the same
length while the mic is muted); agent audio goes to `sink.write` (zeros while
the speaker is muted); `playback_clear_buffer` calls `sink.clear()`. The two
rates must be the call's `medium.serverWebSocket.inputSampleRate` and
`outputSampleRate` (the server's defaults: 48000, and the input rate); the
session resamples between them and the source's and sink's own `sample_rate`
(see `voxcall.client.audio`). Nothing in the join URL tells a client the
rates, so they are arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from enum import StrEnum
from importlib import metadata
from typing import Any

from voxcall.audio import Resampler
from voxcall.client.audio import AudioSink, AudioSource, silence_like
from voxcall.client.events import Emitter, Handler
from voxcall.client.realtime import ABNORMAL_CLOSURE, RealtimeClient, RealtimeEvent
from voxcall.client.tools import ClientToolImplementation, run_tool
from voxcall.errors import ConnectionClosed
from voxcall.protocol.connection import AudioIn
from voxcall.protocol.realtime import (
    CallStarted,
    ClientToolInvocation,
    Debug,
    PlaybackClearBuffer,
    State,
    UnknownMessage,
)
from voxcall.protocol.realtime import (
    Transcript as TranscriptMessage,
)
from voxcall.protocol.transcripts import TranscriptEntry, TranscriptLog

__all__ = ["DEFAULT_SAMPLE_RATE", "Transcript", "UltravoxSession", "UltravoxSessionStatus", "client_version_string"]

DEFAULT_SAMPLE_RATE = 48000
"""The server's `inputSampleRate` when a call's medium names none (PROTOCOL.md 2.2)."""

logger = logging.getLogger(__name__)

Transcript = TranscriptEntry
"""One utterance: `text`, `final`, `speaker` ("user"/"agent"), `medium` ("voice"/"text"), `ordinal`."""


class UltravoxSessionStatus(StrEnum):
    """The session's state; the last four come from the server's `state` messages."""

    DISCONNECTED = "disconnected"
    DISCONNECTING = "disconnecting"
    CONNECTING = "connecting"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"

    def is_live(self) -> bool:
        """True while in a call (idle, listening, thinking, speaking), as in the official Python SDK."""
        return self in _LIVE


_LIVE = frozenset(
    [
        UltravoxSessionStatus.IDLE,
        UltravoxSessionStatus.LISTENING,
        UltravoxSessionStatus.THINKING,
        UltravoxSessionStatus.SPEAKING,
    ]
)


def client_version_string(app_version: str | None = None) -> str:
    """`python_voxcall_<version>[:<app_version>]`, the `clientVersion` query value (PROTOCOL.md 2.1)."""
    try:
        version = metadata.version("voxcall")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        version = "0"
    return f"python_voxcall_{version}" + (f":{app_version}" if app_version else "")


class UltravoxSession:
    """One call at a time over a join URL (create the call with medium `serverWebSocket`).

    Args:
        experimental_messages: extra message types to enable, e.g. `{"debug"}`;
            unhandled types then also come as `experimental_message` events.
        logger: a per-session logger.
        open_timeout: seconds allowed to open the WebSocket.
        close_timeout: seconds `leave_call` waits for the server's closing handshake.
    """

    def __init__(
        self,
        experimental_messages: set[str] | None = None,
        *,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        open_timeout: float = 10,
        close_timeout: float = 5,
    ) -> None:
        self._experimental = frozenset(experimental_messages or ())
        self._logger = logger if logger is not None else logging.getLogger(__name__)
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._emitter = Emitter(self._logger)
        self._status = UltravoxSessionStatus.DISCONNECTED
        self._transcripts = TranscriptLog()
        self._tools: dict[str, ClientToolImplementation] = {}
        self._rt: RealtimeClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._source: AudioSource | None = None
        self._sink: AudioSink | None = None
        self._sink_resampler: Resampler | None = None
        self._input_rate = DEFAULT_SAMPLE_RATE
        self._output_rate = DEFAULT_SAMPLE_RATE
        self._mic_muted = False
        self._speaker_muted = False
        self._stopping = False
        self._stopped = asyncio.Event()
        self._finished = False  # a call was joined and has ended; cleared by join_call
        self._warned_room_info = False
        self.call_id: str | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None

    # ------------------------------------------------------------ state

    @property
    def status(self) -> UltravoxSessionStatus:
        """The current status."""
        return self._status

    @property
    def transcripts(self) -> list[Transcript]:
        """The call's utterances in ordinal order (gaps left out)."""
        return self._transcripts.entries

    @property
    def input_sample_rate(self) -> int:
        """The rate of the audio sent to the server (set by `join_call`)."""
        return self._input_rate

    @property
    def output_sample_rate(self) -> int:
        """The rate of the agent audio the server sends (set by `join_call`)."""
        return self._output_rate

    # ------------------------------------------------------------ events

    def on(self, event: str, handler: Handler) -> Handler:
        """Register a handler (see the module docstring for the events); returns it."""
        return self._emitter.on(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        """Remove a handler."""
        self._emitter.off(event, handler)

    async def wait_for(
        self,
        event: str,
        predicate: Callable[..., bool] | None = None,
        *,
        timeout: float | None = None,
    ) -> tuple[Any, ...]:
        """Wait for the next `event` whose arguments satisfy `predicate`; return those arguments.

        Once a call has ended (until the next `join_call`), waiting for "ended"
        returns `(close_code,)` at once and waiting for anything else raises.

        Raises:
            ConnectionClosed: the call ended first (unless waiting for "ended").
            TimeoutError: `timeout` seconds passed.
        """
        if self._finished:
            if event == "ended":
                return (self.close_code,)
            raise self._ended_error()
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

        def check(*args: Any) -> None:
            if future.done():
                return
            try:
                if predicate is None or predicate(*args):
                    future.set_result(args)
            except Exception as exc:
                future.set_exception(exc)

        def ended(code: int | None) -> None:
            if not future.done():
                future.set_exception(self._ended_error())

        self.on(event, check)
        if event != "ended":
            self.on("ended", ended)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self.off(event, check)
            self.off("ended", ended)

    def _ended_error(self) -> ConnectionClosed:
        return ConnectionClosed(self.close_code or ABNORMAL_CLOSURE, self.close_reason or "the call ended")

    async def wait_for_status(
        self,
        *statuses: UltravoxSessionStatus | str,
        timeout: float | None = None,
    ) -> UltravoxSessionStatus:
        """Return as soon as `status` is one of `statuses` (at once if it already is)."""
        wanted = {UltravoxSessionStatus(s) for s in statuses}
        if self._status not in wanted:
            await self.wait_for("status", lambda: self._status in wanted, timeout=timeout)
        return self._status

    async def wait_for_transcript(
        self,
        speaker: str | None = "agent",
        *,
        final: bool | None = True,
        after: int | None = None,
        timeout: float | None = None,
    ) -> Transcript:
        """Wait for a matching utterance (by default the agent's next final one) and return it.

        With `after`, the first match whose ordinal is above it counts, even one
        that is already there. Without it, only an utterance that did not match
        yet when this coroutine started counts; pass `after` when you start
        waiting in a task created before sending, to close that race.
        """

        def matches(entry: Transcript) -> bool:
            return (speaker is None or entry.speaker == speaker) and (final is None or entry.final == final)

        seen = {e.ordinal for e in self.transcripts if matches(e)} if after is None else set()

        def fresh() -> Transcript | None:
            return next(
                (
                    e
                    for e in self.transcripts
                    if matches(e) and e.ordinal not in seen and (after is None or e.ordinal > after)
                ),
                None,
            )

        entry = fresh()
        if entry is None:
            await self.wait_for("transcripts", lambda: fresh() is not None, timeout=timeout)
            entry = fresh()
        assert entry is not None
        return entry

    # ------------------------------------------------------------ joining and leaving

    async def join_call(
        self,
        join_url: str,
        source: AudioSource | None = None,
        sink: AudioSink | None = None,
        client_version: str | None = None,
        *,
        input_sample_rate: int = DEFAULT_SAMPLE_RATE,
        output_sample_rate: int | None = None,
    ) -> None:
        """Connect to a call's join URL; returns once the socket is open (status CONNECTING until the server speaks).

        Adds `apiVersion=1`, `clientVersion=python_voxcall_<ver>[:<client_version>]`
        and, when any are enabled, `experimentalMessages`. With a `source`,
        its audio streams to the server (silence while muted); agent audio goes to `sink`.

        Args:
            join_url: the call's `joinUrl`.
            source: the microphone (e.g. `MicrophoneSource`, `WavFileSource`); None sends no audio.
            sink: the speaker (e.g. `SpeakerSink`, `WavFileSink`, `BytesSink`); None drops agent audio.
            client_version: your app's version, appended to `clientVersion`.
            input_sample_rate: the call's `inputSampleRate` (default 48000, the server's default).
            output_sample_rate: the call's `outputSampleRate` (default: the input rate, as on the server).

        Raises:
            RuntimeError: not DISCONNECTED.
            ValueError: a rate is not positive.
            ConnectionClosed: the socket could not be opened (status is DISCONNECTED again).
        """
        if self._status is not UltravoxSessionStatus.DISCONNECTED:
            raise RuntimeError(f"Cannot join a new call while already in a call (status {self._status})")
        output_rate = output_sample_rate or input_sample_rate
        if input_sample_rate <= 0 or output_rate <= 0:
            raise ValueError("sample rates must be positive")
        self._input_rate, self._output_rate = input_sample_rate, output_rate
        _adopt_rate(source, input_sample_rate)
        _adopt_rate(sink, output_rate)
        self._transcripts = TranscriptLog()
        self._finished = False
        self.call_id = self.close_code = self.close_reason = None
        self._stopped = asyncio.Event()
        self._set_status(UltravoxSessionStatus.CONNECTING)
        rt = RealtimeClient(logger=self._logger, open_timeout=self._open_timeout, close_timeout=self._close_timeout)
        try:
            await rt.connect(
                join_url,
                api_version=1,
                client_version=client_version_string(client_version),
                experimental_messages=sorted(self._experimental) or None,
            )
        except BaseException:
            self._set_status(UltravoxSessionStatus.DISCONNECTED)
            raise
        if self.status is not UltravoxSessionStatus.CONNECTING:  # leave_call() ran while we connected
            await rt.close()
            return
        self._rt, self._source, self._sink = rt, source, sink
        self._sink_resampler = _resampler(output_rate, getattr(sink, "sample_rate", None))
        self._spawn(self._pump(rt))
        if source is not None:
            self._spawn(self._stream_mic(rt, source))

    async def leave_call(self) -> None:
        """Leave the call: DISCONNECTING, close the socket (the server ends the call), DISCONNECTED.

        Does nothing when already disconnected; waits if a disconnect is in progress.
        """
        if self._status is UltravoxSessionStatus.DISCONNECTED:
            return
        await self._disconnect()

    # ------------------------------------------------------------ sending

    async def send_text(
        self,
        text: str,
        defer_response: bool | None = None,
        *,
        deferResponse: bool | None = None,
    ) -> None:
        """Send `input_text_message` (what every official SDK sends); `deferResponse` is the seed's spelling.

        Raises:
            RuntimeError: the session is not live (idle, listening, thinking or speaking).
        """
        if not self._status.is_live():
            raise RuntimeError(f"Cannot send text while not connected. Current status is {self._status}.")
        defer = defer_response if defer_response is not None else deferResponse
        await self._require().send_input_text_message(text, defer)

    async def send_data(self, msg: Mapping[str, Any]) -> None:
        """Send any data message (it needs a string `type`) as one text frame.

        Raises:
            RuntimeError: not connected.  ValueError: no `type`.
        """
        await self._require().send_data(msg)

    async def set_output_medium(self, medium: str) -> None:
        """Switch the agent's output: "voice" or "text"."""
        if medium not in ("voice", "text"):
            raise ValueError(f"medium must be 'voice' or 'text', not {medium!r}")
        await self._require().send_set_output_medium(medium)

    # ------------------------------------------------------------ tools

    def register_tool_implementation(self, name: str, implementation: ClientToolImplementation) -> None:
        """Answer `client_tool_invocation`s for the model-facing tool `name` (nameOverride, else modelToolName)."""
        self._tools[name] = implementation

    def register_tool_implementations(self, implementations: Mapping[str, ClientToolImplementation]) -> None:
        """Register several tools at once."""
        self._tools.update(implementations)

    # ------------------------------------------------------------ mic and speaker

    def mute_mic(self) -> None:
        """Send silence instead of the source's audio."""
        self._set_mic(True)

    def unmute_mic(self) -> None:
        """Send the source's audio again."""
        self._set_mic(False)

    def is_mic_muted(self) -> bool:
        """Whether the microphone is muted."""
        return self._mic_muted

    def toggle_mic_muted(self) -> None:
        """Flip the microphone's mute state."""
        self._set_mic(not self._mic_muted)

    def mute_speaker(self) -> None:
        """Play silence instead of the agent's audio."""
        self._set_speaker(True)

    def unmute_speaker(self) -> None:
        """Play the agent's audio again."""
        self._set_speaker(False)

    def is_speaker_muted(self) -> bool:
        """Whether the speaker is muted."""
        return self._speaker_muted

    def toggle_speaker_muted(self) -> None:
        """Flip the speaker's mute state."""
        self._set_speaker(not self._speaker_muted)

    @property
    def mic_muted(self) -> bool:
        """The official SDK's settable spelling of `is_mic_muted()`."""
        return self._mic_muted

    @mic_muted.setter
    def mic_muted(self, muted: bool) -> None:
        self._set_mic(muted)

    @property
    def speaker_muted(self) -> bool:
        """The official SDK's settable spelling of `is_speaker_muted()`."""
        return self._speaker_muted

    @speaker_muted.setter
    def speaker_muted(self, muted: bool) -> None:
        self._set_speaker(muted)

    def _set_mic(self, muted: bool) -> None:
        if muted != self._mic_muted:
            self._mic_muted = muted
            self._emitter.emit("mic_muted", muted)

    def _set_speaker(self, muted: bool) -> None:
        if muted != self._speaker_muted:
            self._speaker_muted = muted
            self._emitter.emit("speaker_muted", muted)

    # ------------------------------------------------------------ internals

    def _set_status(self, status: UltravoxSessionStatus) -> None:
        if status is not self._status:
            self._status = status
            self._emitter.emit("status")

    def _require(self) -> RealtimeClient:
        if self._rt is None or not self._rt.connected:
            raise RuntimeError(f"Not connected to a call (status {self._status})")
        return self._rt

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self, rt: RealtimeClient) -> None:
        """Read the socket until it closes, then disconnect (the server ended the call)."""
        async for event in rt.receive_events():
            try:
                self._handle(rt, event)
            except Exception:  # a failing sink must not stop the session from reading the socket
                self._logger.exception("handling a %s failed", type(event).__name__)
        await self._disconnect()

    def _handle(self, rt: RealtimeClient, event: RealtimeEvent) -> None:
        if isinstance(event, AudioIn):
            self._play(event.pcm)
            return
        message = event.data if isinstance(event, UnknownMessage) else event.wire()
        self._emitter.emit("data_message", message)
        if isinstance(event, CallStarted):
            self.call_id = event.call_id
            if self._status is UltravoxSessionStatus.CONNECTING:
                self._set_status(UltravoxSessionStatus.IDLE)
        elif isinstance(event, State):
            if not self._stopping:
                self._set_status(UltravoxSessionStatus(event.state))
        elif isinstance(event, TranscriptMessage):
            self._transcripts.apply(event)
            self._emitter.emit("transcripts")
        elif isinstance(event, ClientToolInvocation):
            self._spawn(self._answer_tool(rt, event))
        elif isinstance(event, PlaybackClearBuffer):
            self._clear_playback()
        elif isinstance(event, (Debug, UnknownMessage)):
            self._unhandled(event, message)

    def _unhandled(self, event: Debug | UnknownMessage, message: dict[str, Any]) -> None:
        if isinstance(event, Debug):
            self._emitter.emit("debug", event.message)
        elif event.type == "room_info" and not self._warned_room_info:
            self._warned_room_info = True
            self._logger.warning("got room_info: a WebRTC join URL; create the call with medium serverWebSocket")
        if self._experimental:
            self._emitter.emit("experimental_message", message)

    def _play(self, pcm: bytes) -> None:
        if self._sink is None:
            return
        if self._sink_resampler is not None:
            pcm = self._sink_resampler.feed(pcm)
        try:
            self._sink.write(silence_like(pcm) if self._speaker_muted else pcm)
        except Exception:
            self._logger.exception("audio sink failed")

    def _clear_playback(self) -> None:
        """`playback_clear_buffer`: the sink drops unplayed audio; so does the resampler's tail."""
        if self._sink_resampler is not None:
            self._sink_resampler = _resampler(self._output_rate, getattr(self._sink, "sample_rate", None))
        clear = getattr(self._sink, "clear", None)
        if callable(clear):
            clear()

    async def _answer_tool(self, rt: RealtimeClient, invocation: ClientToolInvocation) -> None:
        result = await run_tool(self._tools, invocation)
        try:
            await rt.send(result)
        except ConnectionClosed:
            self._logger.debug("call ended before the result of %s could be sent", invocation.tool_name)

    async def _stream_mic(self, rt: RealtimeClient, source: AudioSource) -> None:
        """Send the source's audio (silence while muted) until the call ends. Cancelling closes the stream.

        Chunks are resampled to the call's input rate first, so a muted chunk is
        zeros of exactly the length the unmuted one would have had.
        """
        resampler = _resampler(getattr(source, "sample_rate", None), self._input_rate)
        stream = source.stream()
        try:
            async for chunk in stream:
                pcm = resampler.feed(chunk) if resampler is not None else chunk
                if pcm:
                    await rt.send_audio(silence_like(pcm) if self._mic_muted else pcm)
            tail = resampler.feed(b"", last=True) if resampler is not None else b""
            if tail:  # a finite source ended: the resampler's last samples
                await rt.send_audio(silence_like(tail) if self._mic_muted else tail)
        except ConnectionClosed:
            pass
        except Exception:
            self._logger.exception("audio source failed; the call goes on without microphone audio")
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _disconnect(self) -> None:
        """Close everything once; concurrent callers wait for the first (tasks of this session do not)."""
        if self._stopping:
            if asyncio.current_task() not in self._tasks:
                await self._stopped.wait()
            return
        self._stopping = True
        rt, sink = self._rt, self._sink
        try:
            self._set_status(UltravoxSessionStatus.DISCONNECTING)
            if rt is not None:
                await rt.close()
            await self._cancel_tasks()
            if sink is not None:
                try:
                    await sink.close()
                except Exception:
                    self._logger.exception("closing the audio sink failed")
        finally:
            self.close_code = rt.close_code if rt is not None else None
            self.close_reason = rt.close_reason if rt is not None else None
            self._rt = self._source = self._sink = self._sink_resampler = None
            self._stopping = False
            self._finished = True
            self._set_status(UltravoxSessionStatus.DISCONNECTED)
            self._emitter.emit("ended", self.close_code)
            self._stopped.set()
        await self._emitter.drain()

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=5)
            for task in stuck:  # a library swallowed CancelledError; log it rather than hang
                self._logger.warning("task did not stop after cancel: %r", task)


def _adopt_rate(device: object, rate: int) -> None:
    """A source or sink with `sample_rate` None takes the call's rate (see `voxcall.client.audio`)."""
    if device is not None and hasattr(device, "sample_rate") and device.sample_rate is None:
        setattr(device, "sample_rate", rate)  # noqa: B010 - any object with the attribute, no base class


def _resampler(from_rate: int | None, to_rate: int | None) -> Resampler | None:
    """A streaming resampler between two rates, or None when there is nothing to convert."""
    if not from_rate or not to_rate or from_rate == to_rate:
        return None
    return Resampler(from_rate, to_rate)
