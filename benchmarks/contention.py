"""CPU contention: how reply latency holds up beside a busy core and with a second call, per thread setting.

For each thread setting (LLM generation threads x LLM prompt threads x Whisper threads), starts
`voxcall serve` with the embedded models (`VOXCALL_LLM_THREADS`, `VOXCALL_LLM_BATCH_THREADS`,
`VOXCALL_WHISPER_THREADS`) and measures, in three situations:
  * idle:      one call at a time, nothing else running (of ours);
  * busy core: the same beside a busy-loop subprocess this benchmark starts (one core's worth);
  * two calls: two calls at once, each doing the same turns;
  text reply     = a fresh call gets `user_text_message`; time to the first agent transcript
                   (text_latency.server_ttft);
  voice-to-voice = a call streams spoken prompts in real time; first agent audio - last voiced
                   input sample (voice_latency.run_call).
It prints one table with the medians and p90s side by side, and each situation's median as a
multiple of the same setting's idle median (the goal: at most about 2x, never 20x).

    .venv/bin/python benchmarks/contention.py [--rounds 2] [--llm qwen2.5-1.5b] \\
        [--llm-threads 1,2,auto] [--batch-threads same] [--whisper-threads 1,2] [--no-voice]

Run it on an otherwise quiet machine: whatever else runs is part of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import text_latency
import voice_latency

SITUATIONS = ("idle", "busy core", "two calls")
TURN_TIMEOUT = 300.0
"""Seconds a spoken turn may take until the agent's reply has played out (a rambling small model talks long)."""

Turns = Callable[[str, str, int], Awaitable[list[float]]]


@dataclass(frozen=True)
class Setting:
    llm: int
    batch: int | None
    whisper: int

    def env(self) -> dict[str, str]:
        env = {"VOXCALL_LLM_THREADS": str(self.llm), "VOXCALL_WHISPER_THREADS": str(self.whisper)}
        if self.batch is not None:
            env["VOXCALL_LLM_BATCH_THREADS"] = str(self.batch)
        return env

    def label(self) -> str:
        batch = self.llm if self.batch is None else self.batch
        return f"llm {_threads(self.llm)}/{_threads(batch)} whisper {self.whisper}"


def _threads(n: int) -> str:
    return "auto" if n == 0 else str(n)


def _counts(text: str) -> list[int]:
    """`1,2,auto` -> [1, 2, 0]: 0 is voxcall's auto thread count."""
    return [0 if v.strip() == "auto" else int(v) for v in text.split(",")]


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile, as voice_latency.py reports it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


@contextmanager
def busy_core() -> Iterator[None]:
    """One process spinning on one core for as long as the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let the scheduler see it
        yield
    finally:
        spinner.kill()
        spinner.wait()


async def text_turns(url: str, key: str, rounds: int) -> list[float]:
    """Text replies, one fresh call per prompt, in milliseconds."""
    async with httpx.AsyncClient(base_url=f"{url}/api", headers={"X-API-Key": key}, timeout=120) as api:
        return [await text_latency.server_ttft(api, prompt) * 1000
                for _ in range(rounds) for prompt in text_latency.PROMPTS]


async def voice_turns(url: str, key: str, rounds: int) -> list[float]:
    """Voice-to-voice latencies of one call speaking every prompt `rounds` times, in milliseconds."""
    turns = await voice_latency.run_call(url, key, rounds, quiet=True, turn_timeout=TURN_TIMEOUT)
    return [turn["v2v"] for turn in turns]


async def concurrently(turns: Turns, url: str, key: str, rounds: int, calls: int) -> list[float]:
    """The figures of `calls` calls doing `turns` at the same time."""
    results = await asyncio.gather(*(turns(url, key, rounds) for _ in range(calls)))
    return [value for result in results for value in result]


def measure(url: str, key: str, rounds: int, voice: bool) -> dict[str, dict[str, list[float]]]:
    """Text and voice figures in every situation, for the server at `url`."""
    asyncio.run(text_turns(url, key, 1))  # warm: the first call of a fresh server pays for cold caches
    figures: dict[str, dict[str, list[float]]] = {}
    for situation in SITUATIONS:
        calls = 2 if situation == "two calls" else 1
        figures[situation] = {"text": [], "voice": []}
        with busy_core() if situation == "busy core" else _nothing():
            for kind, turns in (("text", text_turns), ("voice", voice_turns if voice else None)):
                if turns is not None:
                    figures[situation][kind] = attempt(concurrently(turns, url, key, rounds, calls))
        print(f"  {situation:10} " + "   ".join(f"{kind} median {statistics.median(values):7.0f} ms"
                                                for kind, values in figures[situation].items() if values), flush=True)
    return figures


def attempt(measurement: Coroutine[Any, Any, list[float]]) -> list[float]:
    """The figures of one measurement, or none (reported) if it failed: the table goes on."""
    try:
        return asyncio.run(measurement)
    except Exception as exc:  # a timed-out turn, a closed socket: the rest of the table still counts
        frames = traceback.extract_tb(exc.__traceback__)
        where = ([f for f in frames if "benchmarks" in f.filename] or frames)[-1]
        print(f"    failed: {exc!r} at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}", flush=True)
        return []


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def row(label: str, situation: str, figures: dict[str, dict[str, list[float]]]) -> str:
    cells = [f"{label:26} {situation:10}"]
    for kind in ("text", "voice"):
        values, idle = figures[situation][kind], figures["idle"][kind]
        if not values or not idle:
            cells.append(f"{'-':>8} {'-':>8} {'-':>6}")
            continue
        ratio = statistics.median(values) / statistics.median(idle)
        cells.append(f"{statistics.median(values):8.0f} {p90(values):8.0f} {ratio:5.1f}x")
    return "  ".join(cells)


def settings(args: argparse.Namespace) -> list[Setting]:
    llm = _counts(args.llm_threads)
    batch = [None] if args.batch_threads == "same" else _counts(args.batch_threads)
    whisper = [int(v) for v in args.whisper_threads.split(",")] if args.voice else [1]
    return [Setting(*combo) for combo in itertools.product(llm, batch, whisper)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="times through the 5 prompts, per call and situation")
    parser.add_argument("--llm", default="qwen2.5-1.5b", choices=["qwen2.5-1.5b", "smollm2-135m"])
    parser.add_argument("--llm-threads", default="1,2", help="comma-separated llama.cpp generation threads to try (auto = voxcall's default)")
    parser.add_argument("--batch-threads", default="same", help="llama.cpp prompt threads to try, or 'same'")
    parser.add_argument("--whisper-threads", default="1,2", help="comma-separated Whisper threads to try")
    parser.add_argument("--no-voice", dest="voice", action="store_false", help="text replies only")
    args = parser.parse_args()
    results: list[tuple[Setting, dict[str, dict[str, list[float]]]]] = []
    for setting in settings(args):
        print(f"{setting.label()}: starting the server ({args.llm})", flush=True)
        proc, url, key = voice_latency.start_server(args.llm, setting.env())
        try:
            results.append((setting, measure(url, key, args.rounds, args.voice)))
        finally:
            proc.terminate()
            proc.wait(15)
    print(f"\nmodel {args.llm}, {args.rounds} round(s) of {len(text_latency.PROMPTS)} prompts per call and situation;"
          " milliseconds; x = median / the same setting's idle median")
    print(f"{'threads':26} {'situation':10}  {'text med':>8} {'text p90':>8} {'x':>6}  {'v2v med':>8} {'v2v p90':>8} {'x':>6}")
    for setting, figures in results:
        for situation in SITUATIONS:
            print(row(setting.label(), situation, figures))


if __name__ == "__main__":
    main()
