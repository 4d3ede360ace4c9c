"""Text chat with an agent in the terminal, and a readable rendering of a call's messages.

`chat` is what `voxcall call join` runs: it creates a text-output call over
REST, joins it with `UltravoxSession`, streams the agent's words as they
arrive and sends each line the user types. Lines starting with `/` are commands
for the terminal (`/help`, `/quit`), never sent to the agent; end of input leaves.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any, TextIO

import httpx

from voxcall.client.rest import Client
from voxcall.client.session import Transcript, UltravoxSession, UltravoxSessionStatus
from voxcall.errors import ApiError, ConnectionClosed

__all__ = ["WEATHER_TOOL", "chat", "format_transcript", "weather_report"]

WEATHER_TOOL: dict[str, Any] = {
    "temporaryTool": {
        "modelToolName": "getWeather",
        "description": "Get the current weather for a city.",
        "dynamicParameters": [
            {
                "name": "city",
                "location": "PARAMETER_LOCATION_BODY",
                "schema": {"type": "string", "description": "The city, e.g. Oslo"},
                "required": True,
            }
        ],
        "client": {},
    }
}
"""The demo client tool, as a `selectedTools` entry."""

HELP = ("Type a message and press Enter to send it to the agent.\n"
        "Commands: /help shows this, /quit (or Ctrl-D) hangs up.")
_PROMPT = "you> "
_CLOSE_MEANINGS = {1000: "", 1001: "the server is going away", 1008: "the join was refused",
                   1011: "the server hit an error", 1012: "the server is restarting", 1013: "the server is busy"}
_JOIN_TIMEOUT = 30.0
_REPLY_TIMEOUT = 60.0
_LIVE = (
    UltravoxSessionStatus.IDLE,
    UltravoxSessionStatus.LISTENING,
    UltravoxSessionStatus.THINKING,
    UltravoxSessionStatus.SPEAKING,
)


def weather_report(parameters: dict[str, Any]) -> str:
    """The demo `getWeather` tool: a fixed report for any city, as JSON text."""
    city = str(parameters.get("city") or "unknown")
    return json.dumps({"city": city, "conditions": "partly cloudy", "temperatureC": 18, "windKph": 12})


class _Printer:
    """Prints agent utterances as their text grows: one line per utterance, flushed on every delta."""

    def __init__(self, output: TextIO, *, prompt: str = "") -> None:
        self.output = output
        self.prompt = prompt
        """Shown after each finished agent line when a person types at a terminal."""
        self.printed: dict[int, str] = {}
        self.open: int | None = None
        self._prompted = False

    def update(self, entries: list[Transcript]) -> None:
        for entry in entries:
            if entry.speaker == "agent":
                self._show(entry)

    def _show(self, entry: Transcript) -> None:
        done = self.printed.get(entry.ordinal)
        if done is None:
            self._end_line()
            if self._prompted:  # the agent speaks over an empty prompt: start its line fresh
                self.output.write("\r")
                self._prompted = False
            self.output.write("agent: ")
            done = self.printed[entry.ordinal] = ""
            self.open = entry.ordinal
        if entry.ordinal != self.open:
            return  # an older utterance changed after a newer one started; its line is gone
        if entry.text.startswith(done):
            self.output.write(entry.text[len(done) :])
            self.printed[entry.ordinal] = entry.text
        if entry.final:  # a shorter final text (barge-in) is what was heard; the line just ends
            self._end_line()
            self.show_prompt()
        self.output.flush()

    def show_prompt(self) -> None:
        """Invite the next line (terminals only)."""
        if self.prompt and not self._prompted:
            self.output.write(self.prompt)
            self._prompted = True
            self.output.flush()

    def typed(self) -> None:
        """The person pressed Enter: the prompt line is used up."""
        self._prompted = False

    def note(self, text: str) -> None:
        """A line from the terminal itself (help, notices)."""
        self._end_line()
        if self._prompted:
            self.output.write("\r")
            self._prompted = False
        print(text, file=self.output, flush=True)

    def user(self, text: str) -> None:
        """Show a line the user sent (for piped input, where the terminal did not echo it)."""
        self._end_line()
        print(f"you: {text}", file=self.output, flush=True)

    def _end_line(self) -> None:
        if self.open is not None:
            self.output.write("\n")
            self.open = None
        self.output.flush()


def _read_lines(stream: TextIO, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Runs in a daemon thread (a blocked read must not keep the process alive): lines, then None at EOF."""
    try:
        for line in iter(stream.readline, ""):
            loop.call_soon_threadsafe(queue.put_nowait, line)
    except (OSError, ValueError):
        pass
    finally:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:  # the loop is already closed
            pass


def _call_body(system_prompt: str | None, voice: str | None, tools_demo: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "medium": {"serverWebSocket": {"inputSampleRate": 16000}},
        "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
    }
    if system_prompt:
        body["systemPrompt"] = system_prompt
    if voice:
        body["voice"] = voice
    if tools_demo:
        body["selectedTools"] = [WEATHER_TOOL]
    return body


async def chat(
    base_url: str,
    api_key: str,
    *,
    system_prompt: str | None,
    voice: str | None = None,
    tools_demo: bool = False,
    input: TextIO | None = None,  # the CLI's name for the stream, shadowing the builtin on purpose
    output: TextIO | None = None,
    client_version: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Chat by text with a new call; returns a process exit code (0 normal end, 1 error).

    Lines read from `input` (default stdin) are sent as user text; `/quit` or
    end of input leaves the call (after the reply to the last line, up to 60 s).
    The agent's words go to `output` (default stdout) as they stream in.
    `transport` replaces the network for the REST calls (tests).
    """
    out = output if output is not None else sys.stdout
    source = input if input is not None else sys.stdin
    try:
        async with Client(api_key, base_url, transport=transport) as client:
            call = await client.calls.create(_call_body(system_prompt, voice, tools_demo))
    except ApiError as exc:
        print(f"error: could not create the call: {exc}", file=out)
        return 1
    print(f"call {call.get('callId')} created; type a message, /help for commands, /quit to leave", file=out, flush=True)
    session = UltravoxSession()
    if tools_demo:
        session.register_tool_implementation("getWeather", weather_report)
    printer = _Printer(out, prompt=_PROMPT if _isatty(source) and _isatty(out) else "")
    session.on("transcripts", lambda: printer.update(session.transcripts))
    try:
        await session.join_call(call["joinUrl"], client_version=client_version)
    except ConnectionClosed as exc:
        print(f"error: could not join the call: {exc}", file=out, flush=True)
        return 1
    try:
        await session.wait_for_status(*_LIVE, timeout=_JOIN_TIMEOUT)
        printer.show_prompt()
        await _converse(session, source, printer)
    except ConnectionClosed:
        pass  # the call ended; its close code decides the exit code below
    except TimeoutError:
        print("\nerror: timed out waiting for the call to start", file=out, flush=True)
        return 1
    finally:
        await session.leave_call()
    code = session.close_code
    printer.note(ended_line(code, session.close_reason))
    return 0 if code == 1000 else 1


def ended_line(code: int | None, reason: str | None) -> str:
    """How the end of the call reads to a person: `Call ended.` or what went wrong, with the code."""
    if code == 1000:
        return "\nCall ended."
    meaning = reason or _CLOSE_MEANINGS.get(code or 0) or "the connection was lost"
    return f"\nCall ended: {meaning} (close code {code if code is not None else 'none'})."


async def _converse(session: UltravoxSession, source: TextIO, printer: _Printer) -> None:
    """Send lines until /quit, end of input or the end of the call."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_read_lines, args=(source, loop, lines), daemon=True).start()
    echo = not _isatty(source)  # piped input: show what was sent, so the output reads as a dialogue
    ended = asyncio.ensure_future(session.wait_for("ended"))
    replied: asyncio.Future[Any] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(lines.get())
            await asyncio.wait([getter, ended], return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                await _discard(getter)
                return
            line = getter.result()
            printer.typed()
            text = (line or "").strip()
            if line is None or text == "/quit":
                break
            if not text:
                printer.show_prompt()
                continue
            if text.startswith("/"):
                printer.note(HELP if text == "/help" else f"Unknown command {text.split()[0]}: type /help for the commands.")
                printer.show_prompt()
                continue
            if replied is not None:
                await _discard(replied)
            after = max((e.ordinal for e in session.transcripts), default=-1)
            replied = asyncio.ensure_future(_reply(session, after))
            if echo:
                printer.user(text)
            try:
                await session.send_text(text)
            except RuntimeError:  # the call ended between the read and the send
                return
        if line is None and replied is not None and not replied.done():
            await asyncio.wait([replied, ended], timeout=_REPLY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _discard(ended)
        if replied is not None:
            await _discard(replied)


async def _reply(session: UltravoxSession, after: int) -> Transcript:
    """The agent's final answer to the text just sent: the first after the server's echo of it.

    Servers echo user text as a user transcript (PROTOCOL.md 2.7); keying on the
    echo keeps a greeting that is still being generated from counting as the reply.
    """
    echo = await session.wait_for_transcript("user", final=True, after=after)
    return await session.wait_for_transcript("agent", final=True, after=echo.ordinal)


async def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel a helper task and collect its outcome, so nothing is left pending or unretrieved."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_ROLE_LABELS = {
    "MESSAGE_ROLE_USER": "user",
    "MESSAGE_ROLE_AGENT": "agent",
}


def format_transcript(messages: list[dict[str, Any]]) -> str:
    """Render `/calls/{id}/messages` results as lines: who said what, tool calls and their results."""
    lines: list[str] = []
    for message in messages:
        role = message.get("role") or "MESSAGE_ROLE_UNSPECIFIED"
        text = message.get("text") or ""
        tool = message.get("toolName") or "?"
        if role == "MESSAGE_ROLE_TOOL_CALL":
            lines.append(f"agent -> {tool}({text})")
        elif role == "MESSAGE_ROLE_TOOL_RESULT":
            error = message.get("errorDetails")
            lines.append(f"tool  <- {tool}: " + (f"error: {error}" if error else text))
        else:
            label = _ROLE_LABELS.get(role, role.removeprefix("MESSAGE_ROLE_").lower())
            lines.append(f"{label}: {text}")
    return "\n".join(lines)
