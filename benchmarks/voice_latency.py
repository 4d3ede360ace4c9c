"""Voice-to-voice latency of a voxcall server with the embedded models, measured like a client sees it.

Starts `voxcall serve` (default LLM Qwen2.5-Coder-1.5B, Silero VAD, Whisper base, Piper joe) on a
loopback port, joins one call, and streams spoken prompts (Piper-synthesised WAVs from
tests/fixtures/speech) in real time, 20 ms chunks, silence in between, as a microphone would.
Per turn it prints:
  voice-to-voice = first agent audio sample received - last voiced input sample sent
and the server's own stage breakdown (from its `debug` latency report): end of speech -> end of
turn decision (turnEndpointDelay) -> final transcript -> LLM first token -> first audio out.

    .venv/bin/python benchmarks/voice_latency.py [--rounds 2] [--llm qwen2.5-1.5b]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
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
from voxcall.config import default_data_dir

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
PROMPTS = ["capital.wav", "joke.wav", "timer.wav", "weather.wav", "restaurant.wav"]
RATE = 16000
CHUNK = RATE // 50 * 2  # 20 ms
SYSTEM = "You are a helpful voice assistant. Answer in one or two short sentences."


def load(name: str) -> tuple[bytes, float]:
    pcm, rate = read_wav(str(FIXTURES / name))
    pcm = resample(pcm, rate, RATE)
    loud = np.nonzero(np.abs(np.frombuffer(pcm, dtype="<i2")) > 1000)[0]
    return pcm, float(loud[-1] + 1) / RATE


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
    log = open(os.environ.get("VOXCALL_BENCH_LOG", os.devnull), "wb")  # noqa: SIM115 - lives as long as the server
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


async def run_call(url: str, key: str, rounds: int, *, quiet: bool = False, turn_timeout: float = 90) -> list[dict[str, float]]:
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
                stages = {k: float(v) for k, v in re.findall(r"(\w[\w ]*?) (\d+) ms", state["report"])}
                if not state["first_audio"]:
                    print(f"{name:16} missed: no reply", flush=True)
                    state["last_voiced"] = 0.0
                    continue
                v2v = (state["first_audio"] - state["last_voiced"]) * 1000
                results.append({"prompt": name, "v2v": v2v, **stages})  # type: ignore[dict-item]
                if not quiet:
                    print(f"{name:16} voice-to-voice {v2v:7.0f} ms   server: {state['report'].removeprefix('Turn latency: ')}",
                          flush=True)
                state["last_voiced"] = 0.0
                await asyncio.sleep(1.0)
        for task in tasks:
            task.cancel()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--llm", default="qwen2.5-1.5b", choices=["qwen2.5-1.5b", "smollm2-135m"])
    args = parser.parse_args()
    proc, url, key = start_server(args.llm)
    try:
        results = asyncio.run(run_call(url, key, args.rounds))
    finally:
        proc.terminate()
        proc.wait(15)
    v2v = sorted(r["v2v"] for r in results)
    p90 = v2v[min(len(v2v) - 1, int(round(0.9 * (len(v2v) - 1))))]
    print(f"\nturns: {len(v2v)}   voice-to-voice median {statistics.median(v2v):.0f} ms   p90 {p90:.0f} ms   "
          f"min {v2v[0]:.0f} ms   max {v2v[-1]:.0f} ms")
    for stage in ("end of turn", "transcript", "LLM first token", "first audio"):
        values = [r[stage] for r in results if stage in r]
        if values:
            print(f"  median {stage:16} {statistics.median(values):6.0f} ms")


if __name__ == "__main__":
    main()
