"""Voice-to-voice latency of a voxcall server with the embedded models, measured like a client sees it.

Starts `voxcall serve` (default LLM Qwen2.5-Coder-1.5B, Silero VAD, Whisper base, Piper joe) on a
loopback port, joins one call, and streams spoken prompts (Piper-synthesised WAVs from
tests/fixtures/speech) in real time, 20 ms chunks, silence in between, as a microphone would.
Per turn it prints:
  voice-to-voice = first agent audio sample received - last voiced input sample sent
and the server's own stage breakdown (from its `debug` latency report): end of speech -> end of
turn decision (turnEndpointDelay) -> final transcript -> LLM first token -> first audio out.

`--medium twilio` joins the call as Twilio Media Streams does instead (JSON frames, base64 μ-law at
8 kHz, marks acknowledged as the audio plays), and `--medium both` runs the two one after the other
on the same server and prints them side by side. Over Twilio the stage breakdown comes from the
call's `turn_latency` events.

`--preemption off,on` (the default) runs the same prompts once with preemptive replies off and once
on (VOXCALL_PREEMPTIVE_REPLIES, one server each, one after the other) and prints them side by side,
with how many turns used a preemptive reply. `--concurrency 2` has two talkers in two calls at once
on the same server; their turns are pooled.

    .venv/bin/python benchmarks/voice_latency.py [--rounds 2] [--llm qwen2.5-1.5b] [--medium serverWebSocket|twilio|both]
        [--preemption off,on] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import websockets

from voxcall.audio import read_wav, resample
from voxcall.codecs import ulaw_decode, ulaw_encode
from voxcall.config import default_data_dir

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
PROMPTS = ["capital.wav", "joke.wav", "timer.wav", "weather.wav", "restaurant.wav"]
RATE = 16000
CHUNK = RATE // 50 * 2  # 20 ms
SYSTEM = "You are a helpful voice assistant. Answer in one or two short sentences."


def load(name: str, rate: int = RATE) -> tuple[bytes, float]:
    pcm, source = read_wav(str(FIXTURES / name))
    pcm = resample(pcm, source, rate)
    loud = np.nonzero(np.abs(np.frombuffer(pcm, dtype="<i2")) > 1000)[0]
    return pcm, float(loud[-1] + 1) / rate


STAGES = re.compile(r"(\w[\w ]*?) (\d+) ms")
OUTCOME = re.compile(r"preemption (\w+)")


def stages_of(report: str) -> dict[str, object]:
    """The stage durations (ms) of a server latency report, and its preemption outcome."""
    found: dict[str, object] = {k: float(v) for k, v in STAGES.findall(report)}
    if outcome := OUTCOME.search(report):
        found["preemption"] = outcome.group(1)
    return found


def default_data_dir_of_env() -> Path:
    return Path(os.environ["VOXCALL_DATA_DIR"]) if os.environ.get("VOXCALL_DATA_DIR") else default_data_dir()


def start_server(llm: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str, str]:
    data = Path(tempfile.mkdtemp(prefix="voxcall-bench-"))
    models = default_data_dir_of_env() / "models"  # the weights `make run` assembled
    models.mkdir(parents=True, exist_ok=True)
    (data / "models").symlink_to(models.resolve(), target_is_directory=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VOXCALL_DATA_DIR": str(data), **(env or {})}
    key = subprocess.run([sys.executable, "-m", "voxcall", "keys", "create"], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(os.environ.get("VOXCALL_BENCH_LOG", os.devnull), "wb")
    level = "debug" if os.environ.get("VOXCALL_BENCH_LOG") else "warning"
    proc = subprocess.Popen([sys.executable, "-m", "voxcall", "serve", "--port", str(port), "--llm", llm, "--log-level", level],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/api/accounts/me", headers={"X-API-Key": key}).status_code == 200:
                return proc, url, key
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not start")


async def run_call(url: str, key: str, rounds: int, *, quiet: bool = False, turn_timeout: float = 90,
                   label: str = "") -> list[dict[str, float]]:
    body = {"systemPrompt": SYSTEM, "firstSpeakerSettings": {"user": {}},
            "medium": {"serverWebSocket": {"inputSampleRate": RATE, "outputSampleRate": RATE}}}
    call = httpx.post(f"{url}/api/calls", json=body, headers={"X-API-Key": key}).json()
    results: list[dict[str, float]] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    state = {"first_audio": 0.0, "last_voiced": 0.0, "report": "", "final": asyncio.Event(), "listening": asyncio.Event()}

    async with websockets.connect(call["joinUrl"] + "&experimentalMessages=debug", max_size=None) as ws:
        async def sender() -> None:
            pending, start, sent = b"", time.monotonic(), 0
            while True:
                if not pending and not queue.empty():
                    pending = queue.get_nowait()
                piece, pending = (pending[:CHUNK], pending[CHUNK:]) if pending else (b"\0" * CHUNK, b"")
                await ws.send(piece.ljust(CHUNK, b"\0"))
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * 0.02 - time.monotonic()))

        async def receiver() -> None:
            async for frame in ws:
                now = time.monotonic()
                if isinstance(frame, bytes):
                    if state["last_voiced"] and not state["first_audio"]:
                        state["first_audio"] = now
                    continue
                message = json.loads(frame)
                if message["type"] == "debug" and message["message"].startswith("Turn latency"):
                    state["report"] = message["message"]
                elif message["type"] == "debug" and message["message"].startswith("Heard speech but no words"):
                    state["final"].set()  # no reply is coming: the turn is missed, not waited for
                elif message["type"] == "transcript" and message["role"] == "agent" and message["final"]:
                    state["final"].set()
                elif message == {"type": "state", "state": "listening"}:
                    state["listening"].set()

        tasks = [asyncio.create_task(sender()), asyncio.create_task(receiver())]
        await asyncio.wait_for(state["listening"].wait(), 30)
        for _ in range(rounds):
            for name in PROMPTS:
                pcm, last_loud = load(name)
                state.update(first_audio=0.0, report="")
                state["final"].clear()
                state["listening"].clear()
                queued = time.monotonic()
                await queue.put(pcm)
                state["last_voiced"] = queued + last_loud
                await asyncio.wait_for(state["final"].wait(), turn_timeout)
                await asyncio.wait_for(state["listening"].wait(), turn_timeout)
                stages = stages_of(state["report"])
                if not state["first_audio"]:
                    print(f"{label}{name:16} missed: no reply", flush=True)
                    state["last_voiced"] = 0.0
                    continue
                v2v = (state["first_audio"] - state["last_voiced"]) * 1000
                results.append({"prompt": name, "v2v": v2v, **stages})  # type: ignore[dict-item]
                if not quiet:
                    print(f"{label}{name:16} voice-to-voice {v2v:7.0f} ms   server: "
                          f"{state['report'].removeprefix('Turn latency: ')}", flush=True)
                state["last_voiced"] = 0.0
                await asyncio.sleep(1.0)
        for task in tasks:
            task.cancel()
    return results


TWILIO_RATE = 8000
TWILIO_CHUNK = TWILIO_RATE // 50  # 20 ms of μ-law: 160 bytes


class TwilioCaller:
    """The Twilio side of a Media Stream: μ-law 20 ms frames in real time, marks acknowledged as played."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws, self.sid = ws, "MZ" + "0" * 32
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.playing: list[tuple[str, object]] = []
        self.first_audio = 0.0
        self.last_voiced = 0.0

    async def open(self) -> None:
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self.ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": self.sid, "start": {
            "streamSid": self.sid, "accountSid": "AC" + "0" * 32, "callSid": "CA" + "0" * 32, "tracks": ["inbound"],
            "customParameters": {}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))

    async def sender(self) -> None:
        pending, start, sent = b"", time.monotonic(), 0
        while True:
            if not pending and not self.queue.empty():
                pending = self.queue.get_nowait()
            piece, pending = (pending[: 2 * TWILIO_CHUNK], pending[2 * TWILIO_CHUNK:]) if pending else (b"", b"")
            payload = base64.b64encode(ulaw_encode(piece.ljust(2 * TWILIO_CHUNK, b"\0"))).decode()
            await self.ws.send(json.dumps({"event": "media", "streamSid": self.sid, "media": {
                "track": "inbound", "chunk": str(sent + 1), "timestamp": str(sent * 20), "payload": payload}}))
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * 0.02 - time.monotonic()))

    async def receiver(self) -> None:
        async for frame in self.ws:
            message = json.loads(frame)
            if message["event"] == "media":
                if self.last_voiced and not self.first_audio:
                    self.first_audio = time.monotonic()
                self.playing.append(("audio", len(ulaw_decode(base64.b64decode(message["media"]["payload"])))))
            elif message["event"] == "mark":
                self.playing.append(("mark", message["mark"]["name"]))
            elif message["event"] == "clear":
                self.playing = [item for item in self.playing if item[0] == "mark"]

    async def player(self) -> None:
        while True:  # 20 ms of audio a tick; a mark is acknowledged once the audio before it has played
            budget = 2 * TWILIO_CHUNK
            while self.playing and (budget > 0 or self.playing[0][0] == "mark"):
                kind, item = self.playing.pop(0)
                if kind == "mark":
                    await self.ws.send(json.dumps({"event": "mark", "streamSid": self.sid, "mark": {"name": item}}))
                else:
                    budget -= int(item)  # type: ignore[call-overload]
            await asyncio.sleep(0.02)


async def run_twilio_call(url: str, key: str, rounds: int, *, label: str = "") -> list[dict[str, float]]:
    headers = {"X-API-Key": key}
    body = {"systemPrompt": SYSTEM, "firstSpeakerSettings": {"user": {}}, "medium": {"twilio": {}}}
    call = httpx.post(f"{url}/api/calls", json=body, headers=headers).json()
    results: list[dict[str, float]] = []

    async def agent_messages() -> int:
        async with httpx.AsyncClient(headers=headers, timeout=10) as client:
            page = (await client.get(f"{url}/api/calls/{call['callId']}/messages", params={"pageSize": 1000})).json()
        return sum(1 for m in page["results"] if m["role"] == "MESSAGE_ROLE_AGENT")

    async def latest_report() -> str:
        async with httpx.AsyncClient(headers=headers, timeout=10) as client:
            page = (await client.get(f"{url}/api/calls/{call['callId']}/events", params={"type": "turn_latency"})).json()
        return page["results"][-1]["text"] if page["results"] else ""

    async with websockets.connect(call["joinUrl"], max_size=None) as ws:
        caller = TwilioCaller(ws)
        await caller.open()
        tasks = [asyncio.create_task(c) for c in (caller.sender(), caller.receiver(), caller.player())]
        await asyncio.sleep(1.0)
        for _ in range(rounds):
            for name in PROMPTS:
                pcm, last_loud = load(name, TWILIO_RATE)
                before = await agent_messages()
                caller.first_audio = 0.0
                queued = time.monotonic()
                await caller.queue.put(pcm)
                caller.last_voiced = queued + last_loud
                async with asyncio.timeout(90):
                    while await agent_messages() == before:
                        await asyncio.sleep(0.25)
                report = await latest_report()
                v2v = (caller.first_audio - caller.last_voiced) * 1000 if caller.first_audio else float("nan")
                results.append({"prompt": name, "v2v": v2v, **stages_of(report)})  # type: ignore[dict-item]
                print(f"{label}{name:16} voice-to-voice {v2v:7.0f} ms   server: {report.removeprefix('Turn latency: ')}", flush=True)
                caller.last_voiced = 0.0
                await asyncio.sleep(1.0)
        for task in tasks:
            task.cancel()
    return results


def summary(results: list[dict[str, float]]) -> dict[str, float]:
    v2v = sorted(r["v2v"] for r in results if r["v2v"] == r["v2v"])  # NaN: no audio seen
    if not v2v:
        return {"turns": 0.0}
    out = {"turns": float(len(v2v)), "median": statistics.median(v2v),
           "p90": v2v[min(len(v2v) - 1, round(0.9 * (len(v2v) - 1)))], "min": v2v[0], "max": v2v[-1]}
    for stage in ("end of turn", "transcript", "LLM first token", "first audio"):
        values = [r[stage] for r in results if stage in r]
        if values:
            out[stage] = statistics.median(values)
    for outcome in ("used", "discarded"):
        out[f"preemption {outcome}"] = float(sum(1 for r in results if r.get("preemption") == outcome))
    return out


LABELS = {"serverWebSocket": "serverWebSocket (PCM 16 kHz)", "twilio": "twilio (μ-law 8 kHz)"}
ROWS = ["turns", "median", "p90", "min", "max", "end of turn", "transcript", "LLM first token", "first audio",
        "preemption used", "preemption discarded"]


async def run_talkers(medium: str, url: str, key: str, rounds: int, concurrency: int) -> list[dict[str, float]]:
    """`concurrency` calls at once, each talking through the prompts; their turns pooled."""
    runner = run_twilio_call if medium == "twilio" else run_call
    labels = [f"[{i + 1}] " if concurrency > 1 else "" for i in range(concurrency)]
    runs = await asyncio.gather(*(runner(url, key, rounds, label=label) for label in labels))
    return [turn for run in runs for turn in run]


def print_table(results: dict[str, dict[str, float]]) -> None:
    width = max(32, *(len(c) + 2 for c in results))
    print("\n" + f"{'':26}" + "".join(f"{c:>{width}}" for c in results))
    for row in ROWS:
        label = "voice-to-voice " + row if row in ("median", "p90", "min", "max") else row if row in (
            "turns", "preemption used", "preemption discarded") else "median " + row
        cells = [r.get(row) for r in results.values()]
        if all(c is None for c in cells):
            continue
        unit = "" if row in ("turns", "preemption used", "preemption discarded") else " ms"
        print(f"{label:26}" + "".join(f"{'-' if c is None else f'{c:.0f}{unit}':>{width}}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--llm", default="qwen2.5-1.5b", choices=["qwen2.5-1.5b", "smollm2-135m"])
    parser.add_argument("--medium", default="serverWebSocket", choices=["serverWebSocket", "twilio", "both"])
    parser.add_argument("--preemption", default="off,on", help="comma-separated: off, on (one server each)")
    parser.add_argument("--concurrency", type=int, default=1, help="talkers in concurrent calls")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a `timeout` still stops the servers (finally)
    media = ["serverWebSocket", "twilio"] if args.medium == "both" else [args.medium]
    settings = [p.strip() for p in args.preemption.split(",") if p.strip()]
    if not settings or any(p not in ("off", "on") for p in settings):
        parser.error("--preemption takes off, on or off,on")
    results: dict[str, dict[str, float]] = {}
    for setting in settings:
        proc, url, key = start_server(args.llm, {"VOXCALL_PREEMPTIVE_REPLIES": "true" if setting == "on" else "false"})
        try:
            for medium in media:
                column = f"{LABELS[medium]}, preemption {setting}"
                print(f"\n== {column}" + (f", {args.concurrency} talkers" if args.concurrency > 1 else ""), flush=True)
                results[column] = summary(asyncio.run(run_talkers(medium, url, key, args.rounds, args.concurrency)))
        finally:
            proc.terminate()
            proc.wait(15)
    print_table(results)


if __name__ == "__main__":
    main()
