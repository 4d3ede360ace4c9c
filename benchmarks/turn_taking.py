"""Turn-taking quality of a voxcall server with the embedded models: premature ends, missed and false barge-ins.

Utterances are synthesised at run time with Piper (the embedded TTS, voice `joe`) and streamed in
real time, 20 ms chunks, silence in between, as a microphone would (voice_latency.py's caller):

  * pauses - requests spoken in pieces with short internal pauses and hesitations ("um", "uh"),
    each pause shorter than turnEndpointDelay (0.384 s): the turn must end once, after the last
    piece. A premature end of turn = the server sends a final user transcript before the last
    piece has been sent (the agent took the floor mid-sentence).
  * barge-ins - while the agent tells a long story, the user says a real interruption ("Stop,
    wait a moment."): a missed barge-in = no `playback_clear_buffer` within 1.5 s.
  * backchannels - while the agent tells a long story, the user says "uh-huh", "mm-hmm",
    "okay", "right": a false barge-in = the agent is cut off (`playback_clear_buffer`).

It prints the three rates for each setting of `--preemption` (off, on: one server each).

    .venv/bin/python benchmarks/turn_taking.py [--rounds 1] [--llm qwen2.5-1.5b] [--preemption off,on]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from voice_latency import CHUNK, RATE, default_data_dir_of_env, start_server

from voxcall.audio import resample
from voxcall.providers.models import piper_voice_paths
from voxcall.providers.speech_piper import PiperTTS

PAUSED = [
    ["I would like to book a table", "for four people", "tomorrow evening."],
    ["Um", "what time does the museum open", "on Sundays?"],
    ["Can you tell me", "uh", "how far it is to the station?"],
    ["My order number is", "four five six", "and it has not arrived yet."],
    ["I need a taxi", "to the airport", "at seven in the morning."],
]
PAUSES = [0.18, 0.26, 0.32]
BACKCHANNELS = ["Uh-huh.", "Mm-hmm.", "Okay.", "Right."]
INTERRUPTIONS = ["Stop, wait a moment.", "Sorry, can I ask something else?"]
STORY = "You are a storyteller. Always answer with a long story of at least eight sentences."
HELPER = "You are a helpful voice assistant. Answer in one or two short sentences."


class Voice:
    """Piper, synthesising the caller's side at 16 kHz."""

    def __init__(self) -> None:
        self.tts = PiperTTS(piper_voice_paths(default_data_dir_of_env() / "models"))

    async def say(self, text: str) -> bytes:
        pcm = b"".join([chunk async for chunk in self.tts.synthesize(text)])
        return _trim(resample(pcm, self.tts.sample_rate, RATE))

    async def with_pauses(self, pieces: Sequence[str], pause: float) -> bytes:
        gap = b"\0\0" * int(pause * RATE)
        return gap.join([await self.say(piece) for piece in pieces])


def _trim(pcm: bytes, level: int = 300) -> bytes:
    """Without Piper's leading and trailing silence, so the pauses between pieces are what we say they are."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.nonzero(np.abs(samples) > level)[0]
    return samples[loud[0] : loud[-1] + 1].tobytes() if loud.size else b""


class Caller:
    """A microphone: silence continuously, speech when queued; every server message kept with its time."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.audio_at: list[float] = []
        self.speaking_done = 0.0

    async def sender(self) -> None:
        pending, start, sent = b"", time.monotonic(), 0
        while True:
            if not pending and not self.queue.empty():
                pending = self.queue.get_nowait()
            piece, pending = (pending[:CHUNK], pending[CHUNK:]) if pending else (b"", b"")
            if piece and not pending:
                self.speaking_done = time.monotonic() + 0.02
            await self.ws.send(piece.ljust(CHUNK, b"\0"))
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * 0.02 - time.monotonic()))

    async def receiver(self) -> None:
        async for frame in self.ws:
            now = time.monotonic()
            if isinstance(frame, bytes):
                self.audio_at.append(now)
            else:
                self.messages.append((now, json.loads(frame)))

    def since(self, at: float, predicate: Any) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.messages if t >= at and predicate(m)]

    async def wait(self, predicate: Any, after: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.since(after, predicate):
                return found[0][0]
            await asyncio.sleep(0.02)
        return None


def _is(kind: str, **fields: Any) -> Any:
    return lambda m: m["type"] == kind and all(m.get(k) == v for k, v in fields.items())


async def call(url: str, key: str, system: str) -> tuple[Any, Caller, list[asyncio.Task[None]]]:
    body = {"systemPrompt": system, "firstSpeakerSettings": {"user": {}},
            "medium": {"serverWebSocket": {"inputSampleRate": RATE, "outputSampleRate": RATE}}}
    async with httpx.AsyncClient() as client:
        created = (await client.post(f"{url}/api/calls", json=body, headers={"X-API-Key": key})).json()
    ws = await websockets.connect(created["joinUrl"], max_size=None)
    caller = Caller(ws)
    tasks = [asyncio.create_task(caller.sender()), asyncio.create_task(caller.receiver())]
    await caller.wait(lambda m: m == {"type": "state", "state": "listening"}, 0.0, 30)
    return ws, caller, tasks


async def premature_ends(url: str, key: str, voice: Voice, rounds: int) -> tuple[int, int]:
    """(premature ends, utterances) over the utterances with internal pauses."""
    ws, caller, tasks = await call(url, key, HELPER)
    premature = total = 0
    try:
        for _ in range(rounds):
            for pieces in PAUSED:
                for pause in PAUSES:
                    pcm = await voice.with_pauses(pieces, pause)
                    queued = time.monotonic()
                    await caller.queue.put(pcm)
                    await asyncio.sleep(len(pcm) / 2 / RATE + 0.1)
                    finals = await caller.wait(_is("transcript", role="agent", final=True), queued, 60)
                    users = caller.since(queued, _is("transcript", role="user", final=True))
                    early = any(t < caller.speaking_done for t, _ in users)
                    premature += early
                    total += 1
                    print(f"  pauses {pause:.2f} s  {'PREMATURE' if early else 'ok':9}  {' / '.join(pieces)}", flush=True)
                    await caller.wait(lambda m: m == {"type": "state", "state": "listening"}, finals or queued, 30)
                    await asyncio.sleep(0.8)
    finally:
        await _close(ws, tasks)
    return premature, total


async def over_the_agent(url: str, key: str, voice: Voice, texts: Sequence[str], rounds: int) -> tuple[int, int]:
    """(interruptions, tries): the user says each of `texts` while the agent tells a story."""
    ws, caller, tasks = await call(url, key, STORY)
    interrupted = total = 0
    try:
        ask = await voice.say("Tell me a story about a lighthouse keeper.")
        for _ in range(rounds):
            for text in texts:
                started = time.monotonic()
                await caller.queue.put(ask)
                if await caller.wait(_is("state", state="speaking"), started, 60) is None:
                    continue
                await asyncio.sleep(1.5)
                said = time.monotonic()
                await caller.queue.put(await voice.say(text))
                cleared = await caller.wait(_is("playback_clear_buffer"), said, 1.5)
                interrupted += cleared is not None
                total += 1
                print(f"  {'interrupted' if cleared else 'talked on':12} {text}", flush=True)
                await caller.wait(_is("transcript", role="agent", final=True), said, 90)
                await caller.wait(lambda m: m == {"type": "state", "state": "listening"}, said, 90)
                await asyncio.sleep(0.8)
    finally:
        await _close(ws, tasks)
    return interrupted, total


async def _close(ws: Any, tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await ws.close()


async def measure(url: str, key: str, rounds: int) -> dict[str, tuple[int, int]]:
    voice = Voice()
    try:
        print("- utterances with internal pauses", flush=True)
        premature = await premature_ends(url, key, voice, rounds)
        print("- interruptions while the agent talks", flush=True)
        barge = await over_the_agent(url, key, voice, INTERRUPTIONS, rounds)
        print("- backchannels while the agent talks", flush=True)
        false = await over_the_agent(url, key, voice, BACKCHANNELS, rounds)
    finally:
        voice.tts.close()
    missed = (barge[1] - barge[0], barge[1])
    return {"premature end of turn": premature, "missed barge-in": missed, "false barge-in": false}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--llm", default="qwen2.5-1.5b", choices=["qwen2.5-1.5b", "smollm2-135m"])
    parser.add_argument("--preemption", default="off,on", help="comma-separated: off, on (one server each)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a `timeout` still stops the servers (finally)
    settings = [p.strip() for p in args.preemption.split(",") if p.strip()]
    if not settings or any(p not in ("off", "on") for p in settings):
        parser.error("--preemption takes off, on or off,on")
    results: dict[str, dict[str, tuple[int, int]]] = {}
    for setting in settings:
        print(f"\n== preemption {setting}", flush=True)
        proc, url, key = start_server(args.llm, {"VOXCALL_PREEMPTIVE_REPLIES": "true" if setting == "on" else "false"})
        try:
            results[f"preemption {setting}"] = asyncio.run(measure(url, key, args.rounds))
        finally:
            proc.terminate()
            proc.wait(15)
    print("\n" + f"{'':24}" + "".join(f"{column:>20}" for column in results))
    for row in ("premature end of turn", "missed barge-in", "false barge-in"):
        cells = [r[row] for r in results.values()]
        print(f"{row + ' rate':24}" + "".join(f"{f'{n}/{d} ({100 * n / d:.0f}%)' if d else '-':>20}" for n, d in cells))


if __name__ == "__main__":
    main()
