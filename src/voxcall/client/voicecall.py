"""`voxcall call`: a voice call from the terminal, through the microphone and speaker or WAV files.

The call is created with `medium.serverWebSocket` at 16000 Hz in and 24000 Hz
out, whatever the devices do: 16 kHz is what the server's speech recogniser
works at and 24 kHz is above the voice's own rate, so nothing is lost, and the
wire carries a third of 48 kHz's bytes. The SDK resamples the devices' 48 kHz
to and from those rates (`UltravoxSession.join_call`).

With `input_path` the WAV file is the microphone: it is streamed in real time,
followed by silence; once its speech has been sent, the program waits for the
agent's final answer to it and for that answer's audio to play out, then hangs
up. Such a call starts with the user (`firstSpeakerSettings.user`), so a
greeting does not talk over the file. Without it the agent greets first and the
call lasts until Ctrl-C or until the server ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import httpx

from voxcall.client.audio import AudioSink, AudioSource
from voxcall.client.devices import AudioDeviceError, MicrophoneSource, SpeakerSink
from voxcall.client.files import WavFileSink, WavFileSource
from voxcall.client.rest import Client
from voxcall.client.session import Transcript, UltravoxSession, UltravoxSessionStatus
from voxcall.client.terminal import WEATHER_TOOL, weather_report
from voxcall.errors import ConnectionClosed

__all__ = ["CALL_INPUT_RATE", "CALL_OUTPUT_RATE", "CallDisplay", "call_body", "voice_call"]

CALL_INPUT_RATE = 16000
"""The `inputSampleRate` of calls made by `voxcall call`."""
CALL_OUTPUT_RATE = 24000
"""The `outputSampleRate` of calls made by `voxcall call`."""

VOICE_PROMPT = "You are a helpful voice assistant. Answer in one or two short sentences."

_JOIN_TIMEOUT = 30.0
_S = UltravoxSessionStatus


def call_body(
    system_prompt: str | None, voice: str | None, *, tools_demo: bool = False, user_first: bool = False
) -> dict[str, Any]:
    """The `POST /api/calls` body of a terminal voice call."""
    body: dict[str, Any] = {
        "systemPrompt": system_prompt or VOICE_PROMPT,
        "medium": {"serverWebSocket": {"inputSampleRate": CALL_INPUT_RATE, "outputSampleRate": CALL_OUTPUT_RATE}},
    }
    if voice:
        body["voice"] = voice
    if tools_demo:
        body["selectedTools"] = [WEATHER_TOOL]
    if user_first:
        body["firstSpeakerSettings"] = {"user": {}}
    return body


class CallDisplay:
    """Line-oriented view of a call: `[state]` lines, `you:` lines, and agent lines that grow word by word.

    An agent line ends with `[final]` when its transcript is final (with what
    was actually heard, when a barge-in cut it short); state changes that
    arrive while an agent line is growing are shown after it ends.
    """

    def __init__(self, output: TextIO) -> None:
        self.output = output
        self._printed: dict[int, str] = {}
        self._open: int | None = None
        self._state: str | None = None
        self._pending_state: str | None = None

    def status(self, status: UltravoxSessionStatus) -> None:
        """Show a live status once per change."""
        if not status.is_live() or status.value == self._state:
            return
        self._state = status.value
        if self._open is not None:
            self._pending_state = status.value
        else:
            self._line(f"[{status.value}]")

    def transcripts(self, entries: list[Transcript]) -> None:
        """Show what changed in the transcripts."""
        for entry in entries:
            if entry.ordinal in self._printed and self._printed[entry.ordinal] is _DONE:
                continue
            if entry.speaker == "user":
                if entry.final:
                    self._close()
                    self._line(f"you: {entry.text}")
                    self._printed[entry.ordinal] = _DONE
            else:
                self._agent(entry)

    def note(self, text: str) -> None:
        """Show a line of our own (tool calls, file names, the end of the call)."""
        self._close()
        self._line(f"[{text}]")

    def _agent(self, entry: Transcript) -> None:
        if entry.ordinal != self._open:
            self._close()
            self.output.write("agent: ")
            self._printed[entry.ordinal] = ""
            self._open = entry.ordinal
        shown = self._printed[entry.ordinal]
        if entry.text.startswith(shown):
            self.output.write(entry.text[len(shown) :])
            self._printed[entry.ordinal] = entry.text
        if entry.final:
            cut = "" if entry.text == shown or entry.text.startswith(shown) else f' [interrupted; heard: "{entry.text}"]'
            self.output.write(cut + " [final]")
            self._printed[entry.ordinal] = _DONE
            self._close()
        self.output.flush()

    def _close(self) -> None:
        if self._open is not None:
            self.output.write("\n")
            self._open = None
            if self._pending_state is not None:
                state, self._pending_state = self._pending_state, None
                self._line(f"[{state}]")
        self.output.flush()

    def _line(self, text: str) -> None:
        print(text, file=self.output, flush=True)


_DONE = "\x00done"  # marks an utterance whose final line has been printed


def _open_audio(input_path: str | Path | None, output_path: str | Path | None) -> tuple[AudioSource, AudioSink]:
    """The files when given, else the default devices; a missing device says which flag to use."""
    try:
        source: AudioSource = WavFileSource(input_path) if input_path else MicrophoneSource()
    except AudioDeviceError as exc:
        raise AudioDeviceError(f"{exc}: use --input FILE.wav") from exc
    try:
        sink: AudioSink = WavFileSink(output_path) if output_path else SpeakerSink()
    except AudioDeviceError as exc:
        raise AudioDeviceError(f"{exc}: use --output FILE.wav") from exc
    return source, sink


async def voice_call(
    base_url: str,
    api_key: str,
    *,
    system_prompt: str | None = None,
    voice: str | None = None,
    input_path: str | Path | None = None,
    output_path: str | Path | None = None,
    tools_demo: bool = False,
    output: TextIO | None = None,
    reply_timeout: float = 90.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run one voice call; returns the exit code (0: the call ended normally).

    Raises:
        AudioDeviceError: no microphone or speaker and no file instead (the message names the flag).
        ApiError: the call could not be created.
        ValueError / OSError: the input file cannot be read or the output folder does not exist.
    """
    out = output if output is not None else sys.stdout
    source, sink = _open_audio(input_path, output_path)
    async with Client(api_key, base_url, transport=transport) as client:
        call = await client.calls.create(call_body(system_prompt, voice, tools_demo=tools_demo, user_first=bool(input_path)))
    display = CallDisplay(out)
    session = _session(display, tools_demo)
    how = f"sending {input_path}" if input_path else "speak now"
    display.note(f"call {call.get('callId')} created; {how}; Ctrl-C hangs up")
    await session.join_call(
        call["joinUrl"], source, sink, input_sample_rate=CALL_INPUT_RATE, output_sample_rate=CALL_OUTPUT_RATE
    )
    code = 0
    try:
        await session.wait_for_status(_S.IDLE, _S.LISTENING, _S.THINKING, _S.SPEAKING, timeout=_JOIN_TIMEOUT)
        done = _answered(session, source, sink, reply_timeout) if isinstance(source, WavFileSource) else None
        await _until_done(session, done)
    except ConnectionClosed:
        pass  # the server ended the call; its close code is reported below
    except TimeoutError:
        display.note("error: timed out waiting for the " + ("call to start" if session.call_id is None else "agent's answer"))
        code = 1
    finally:
        await session.leave_call()
    display.note(f"call ended: {session.close_code}")
    if isinstance(sink, WavFileSink):
        display.note(f"agent audio written to {sink.path} ({sink.duration:.1f} s)")
    return code if session.close_code in (1000, None) else 1


def _session(display: CallDisplay, tools_demo: bool) -> UltravoxSession:
    session = UltravoxSession()
    session.on("status", lambda: display.status(session.status))
    session.on("transcripts", lambda: display.transcripts(session.transcripts))

    def tool_call(message: dict[str, Any]) -> None:
        if message.get("type") == "client_tool_invocation":
            display.note(f"tool {message.get('toolName')}({json.dumps(message.get('parameters'))})")

    session.on("data_message", tool_call)
    if tools_demo:
        session.register_tool_implementation("getWeather", weather_report)
    return session


async def _answered(session: UltravoxSession, source: WavFileSource, sink: AudioSink, timeout: float) -> None:
    """Return once the file's speech was sent, the agent answered it and the answer has played out.

    Raises:
        TimeoutError: no user transcript or no answer within `timeout` seconds of the speech's end.
    """
    await source.sent.wait()
    async with asyncio.timeout(timeout):
        await session.wait_for_transcript("user", final=True, after=-1)
        last_user = max(e.ordinal for e in session.transcripts if e.speaker == "user" and e.final)
        await session.wait_for_transcript("agent", final=True, after=last_user)
        await session.wait_for_status(_S.LISTENING, _S.IDLE)  # the server has sent the answer's last audio
        drain: Callable[[], Any] | None = getattr(sink, "drain", None)
        if drain is not None:
            await drain()


async def _until_done(session: UltravoxSession, done: Any) -> None:
    """Wait for the end of the call, Ctrl-C (SIGINT) or `done` (a coroutine), whichever comes first."""
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers off the main thread
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
    waits = [asyncio.ensure_future(session.wait_for("ended")), asyncio.ensure_future(interrupted.wait())]
    if done is not None:
        waits.append(asyncio.ensure_future(done))
    try:
        finished, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in finished:
            task.result()  # a TimeoutError from `done` goes up
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)

