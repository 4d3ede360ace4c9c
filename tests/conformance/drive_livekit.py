"""Drive livekit-plugins-ultravox 1.8.9 against a voxcall server; print one JSON report.

    .venvs/livekit/bin/python tests/conformance/drive_livekit.py BASE_API_URL SCENARIO

BASE_API_URL is the server's `/api` URL; the API key comes from ULTRAVOX_API_KEY. Scenarios:

* `text`: generate_reply(instructions=...) after a second of silence; an agent text turn.
* `tool`: a get_weather(city) client tool; the client answers the FunctionCall, then an agent turn.
* `forced`: say(FORCED_TEXT); the agent says exactly that.
* `output_medium`: update_options(output_medium="text") mid-call, then a text turn.

Runs inside the plugin's own virtualenv (it pins websockets and aiohttp versions that differ from
voxcall's), so it imports nothing from voxcall. It only reports what the client saw: the raw server
events, the client events it queued, generations (text, audio, function calls), error events and
the plugin's log lines. The pytest tests decide what passes. Exit status 0 means the driver ran to
the end, whatever the server did; an exception in the driver itself is reported as `exception`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import traceback
import wave
from pathlib import Path
from typing import Any

import aiohttp
from livekit import rtc
from livekit.agents import llm
from livekit.plugins import ultravox

FORCED_TEXT = "The forced message is banana pancakes."
SYSTEM_PROMPT = "You are a helpful assistant on a phone call. Answer in one short sentence."
TOOL_PROMPT = (
    "You are a weather assistant on a phone call. You do not know the weather yourself: whenever the user "
    "asks about the weather you must call the get_weather tool with the city name, then tell the user "
    "the result in one short sentence."
)
TURN_TIMEOUT = float(os.environ.get("DRIVER_TURN_TIMEOUT", "60"))
DEADLINE = float(os.environ.get("DRIVER_DEADLINE", "100"))  # below the tests' subprocess timeout
START_TIMEOUT = 20.0
REPLY_TIMEOUT = 10.0  # the plugin's own futures give up after 5 s


class Capture(logging.Handler):
    """Keeps every log record of the plugin and livekit-agents, and warnings from anywhere."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not (record.name.startswith("livekit") or record.levelno >= logging.WARNING):
            return
        line = {"logger": record.name, "level": record.levelname, "message": record.getMessage()}
        if record.exc_info and record.exc_info[1] is not None:
            line["exception"] = repr(record.exc_info[1])
        self.lines.append(line)


class Report:
    """What the client observed, in the order it observed it."""

    def __init__(self, scenario: str) -> None:
        self.t0 = time.monotonic()
        self.data: dict[str, Any] = {
            "scenario": scenario,
            "steps": [],
            "server_events": [],
            "client_events": [],
            "audio_chunks_sent": [],
            "errors": [],
            "generations": [],
            "user_transcriptions": [],
            "call_ids": [],
        }

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def step(self, name: str, **details: Any) -> None:
        self.data["steps"].append({"t": self.now(), "step": name, **details})

    def server_event(self, event: dict[str, Any]) -> None:
        self.data["server_events"].append({"t": self.now(), **event})
        if event.get("type") == "call_started":
            self.data["call_ids"].append(event.get("callId"))

    def client_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "audio_bytes":
            self.data["audio_chunks_sent"].append(event.get("len"))
        else:
            self.data["client_events"].append({"t": self.now(), **event})

    def error(self, event: llm.RealtimeModelError) -> None:
        self.data["errors"].append(
            {"t": self.now(), "error": f"{type(event.error).__name__}: {event.error}", "recoverable": event.recoverable}
        )

    def generation(self, event: llm.GenerationCreatedEvent) -> None:
        record: dict[str, Any] = {
            "t": self.now(), "user_initiated": event.user_initiated, "text": "", "text_chunks": 0,
            "audio_frames": 0, "audio_samples": 0, "audio_sample_rates": [], "function_calls": [], "done": False,
        }
        self.data["generations"].append(record)
        asyncio.ensure_future(consume(event, record))

    def event_types(self) -> list[str]:
        return sorted({str(e.get("type")) for e in self.data["server_events"]})

    def texts(self) -> list[str]:
        return [g["text"] for g in self.data["generations"] if g["text"]]

    def done_texts(self) -> list[str]:
        return [g["text"] for g in self.data["generations"] if g["text"] and g["done"]]

    def function_calls(self) -> list[dict[str, Any]]:
        return [fc for g in self.data["generations"] for fc in g["function_calls"]]


async def consume(event: llm.GenerationCreatedEvent, record: dict[str, Any]) -> None:
    """Read one generation the way an agent would: messages (text + audio) and function calls."""

    async def text(stream: Any) -> None:
        async for chunk in stream:
            record["text"] += chunk
            record["text_chunks"] += 1

    async def audio(stream: Any) -> None:
        async for frame in stream:
            record["audio_frames"] += 1
            record["audio_samples"] += frame.samples_per_channel
            if frame.sample_rate not in record["audio_sample_rates"]:
                record["audio_sample_rates"].append(frame.sample_rate)

    async def messages() -> None:
        readers = []
        async for message in event.message_stream:
            record["message_id"] = message.message_id
            readers += [asyncio.ensure_future(text(message.text_stream)), asyncio.ensure_future(audio(message.audio_stream))]
        await asyncio.gather(*readers)

    async def functions() -> None:
        async for fc in event.function_stream:
            record["function_calls"].append({"name": fc.name, "arguments": fc.arguments, "call_id": fc.call_id})

    await asyncio.gather(messages(), functions())
    record["done"] = True


async def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


async def await_future(report: Report, name: str, fut: asyncio.Future[Any], timeout: float) -> None:
    """Await a generate_reply()/say() future and note how it ended."""
    try:
        ev = await asyncio.wait_for(fut, timeout)
        report.step(name, outcome="resolved", user_initiated=ev.user_initiated)
    except TimeoutError:
        report.step(name, outcome="timeout")
    except asyncio.CancelledError:
        report.step(name, outcome="cancelled")
    except Exception as exc:
        report.step(name, outcome="error", error=f"{type(exc).__name__}: {exc}")


def push_silence(session: ultravox.RealtimeSession, seconds: float = 1.0) -> None:
    """10 ms frames of 16 kHz silence: the plugin re-chunks them to 100 ms (3200 bytes)."""
    for _ in range(int(seconds * 100)):
        session.push_audio(rtc.AudioFrame(b"\0\0" * 160, 16000, 1, 160))


async def started(report: Report, count: int = 1) -> bool:
    ok = await wait_until(lambda: len(report.data["call_ids"]) >= count, START_TIMEOUT)
    report.step("call_started", ok=ok)
    return ok


async def settle(report: Report) -> None:
    """After a turn, wait (briefly) for the server to say it is listening again."""

    def listening() -> bool:
        states = [e for e in report.data["server_events"] if e.get("type") == "state"]
        return bool(states) and states[-1].get("state") == "listening"

    report.step("listening", ok=await wait_until(listening, 10))


async def scenario_text(report: Report, session: ultravox.RealtimeSession, model: ultravox.RealtimeModel) -> None:
    if not await started(report):
        return
    push_silence(session)
    await await_future(report, "generate_reply", session.generate_reply(instructions="Say hi"), REPLY_TIMEOUT)
    report.step("agent_text", ok=await wait_until(lambda: bool(report.done_texts()), TURN_TIMEOUT))
    await settle(report)


async def scenario_forced(report: Report, session: ultravox.RealtimeSession, model: ultravox.RealtimeModel) -> None:
    if not await started(report):
        return
    await await_future(report, "say", session.say(FORCED_TEXT), REPLY_TIMEOUT)
    report.step("agent_text", ok=await wait_until(lambda: FORCED_TEXT in report.done_texts(), TURN_TIMEOUT))
    await settle(report)


async def scenario_output_medium(report: Report, session: ultravox.RealtimeSession, model: ultravox.RealtimeModel) -> None:
    if not await started(report):
        return
    model.update_options(output_medium="text")  # forwards set_output_medium to every open session
    report.step("update_options", output_medium="text")
    await await_future(report, "generate_reply", session.generate_reply(instructions="Say hi"), REPLY_TIMEOUT)
    report.step("agent_text", ok=await wait_until(lambda: bool(report.done_texts()), TURN_TIMEOUT))
    await settle(report)


@llm.function_tool
async def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: The name of the city, e.g. Paris.
    """
    return "sunny"  # never run: the driver answers FunctionCalls itself, as an agent session would


async def scenario_tool(report: Report, session: ultravox.RealtimeSession, model: ultravox.RealtimeModel) -> None:
    # Before the first await, so the call is created with the tool (a later change makes a new call).
    await session.update_tools([get_weather])
    report.step("update_tools", tools=sorted(session.tools.function_tools))
    if not await started(report):
        return
    reply = asyncio.ensure_future(
        await_future(report, "generate_reply", session.generate_reply(instructions="What is the weather in Paris?"), REPLY_TIMEOUT)
    )
    got_call = await wait_until(lambda: bool(report.function_calls()), TURN_TIMEOUT)
    report.step("function_call", ok=got_call)
    if got_call:
        fc = report.function_calls()[0]
        result = json.dumps({"city": "Paris", "weather": "sunny", "temperatureCelsius": 22})
        await session.send_tool_result(fc["call_id"], result)
        report.step("send_tool_result", call_id=fc["call_id"], result=result)
        after = len(report.data["generations"])

        def answered() -> bool:
            return any(g["text"] and g["done"] for g in report.data["generations"][after - 1:])

        report.step("agent_text", ok=await wait_until(answered, TURN_TIMEOUT))
        await settle(report)
    await reply


SPEECH_WAV = Path(__file__).resolve().parent.parent / "fixtures" / "speech" / "capital.wav"


async def push_speech(session: ultravox.RealtimeSession, path: Path) -> None:
    """A spoken question as a microphone would send it: 10 ms frames of 16 kHz PCM in real time, then silence."""
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == 16000 and wav.getnchannels() == 1
        pcm = wav.readframes(wav.getnframes()) + b"\0\0" * 16000 * 2
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, offset in enumerate(range(0, len(pcm) - 319, 320)):
        session.push_audio(rtc.AudioFrame(pcm[offset:offset + 320], 16000, 1, 160))
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.01 - loop.time()))


async def scenario_voice(report: Report, session: ultravox.RealtimeSession, model: ultravox.RealtimeModel) -> None:
    if not await started(report):
        return
    await push_speech(session, SPEECH_WAV)
    report.step("user_transcript", ok=await wait_until(lambda: bool(report.data["user_transcriptions"]), TURN_TIMEOUT))
    report.step("agent_text", ok=await wait_until(lambda: bool(report.done_texts()), TURN_TIMEOUT))
    await settle(report)


SCENARIOS = {
    "voice": (scenario_voice, SYSTEM_PROMPT),
    "text": (scenario_text, SYSTEM_PROMPT),
    "tool": (scenario_tool, TOOL_PROMPT),
    "forced": (scenario_forced, SYSTEM_PROMPT),
    "output_medium": (scenario_output_medium, SYSTEM_PROMPT),
}


async def run(base_url: str, scenario: str, report: Report) -> None:
    body, prompt = SCENARIOS[scenario]
    api_key = os.environ["ULTRAVOX_API_KEY"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        # The plugin's own defaults (voice "Mark", model "fixie-ai/ultravox", ...); only the prompt is ours.
        model = ultravox.RealtimeModel(api_key=api_key, base_url=base_url, http_session=http, system_prompt=prompt)
        session = model.session()
        session.on("ultravox_server_event_received", report.server_event)
        session.on("ultravox_client_event_queued", report.client_event)
        session.on("error", report.error)
        session.on("generation_created", report.generation)
        session.on(
            "input_audio_transcription_completed",
            lambda ev: report.data["user_transcriptions"].append({"transcript": ev.transcript, "final": ev.is_final}),
        )
        try:
            await body(report, session, model)
        finally:
            await asyncio.wait_for(session.aclose(), 10)
            await model.aclose()
            report.step("closed")
            await asyncio.sleep(0.2)  # let the generation readers finish


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[2] not in SCENARIOS:
        print(f"usage: {sys.argv[0]} BASE_API_URL {{{'|'.join(SCENARIOS)}}}", file=sys.stderr)
        return 2
    capture = Capture()
    logging.getLogger().addHandler(capture)
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("livekit").setLevel(logging.DEBUG)
    report = Report(sys.argv[2])
    try:
        asyncio.run(asyncio.wait_for(run(sys.argv[1], sys.argv[2], report), DEADLINE))
    except BaseException as exc:
        report.data["exception"] = "".join(traceback.format_exception(exc))[-4000:]
    data = report.data
    data["event_types"] = report.event_types()
    data["texts"] = report.texts()
    data["function_calls"] = report.function_calls()
    data["log_lines"] = capture.lines
    data["invalid_event_data"] = [line["message"] for line in capture.lines if "Invalid event data" in line["message"]]
    data["elapsed_s"] = report.now()
    print(json.dumps(data, default=repr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
