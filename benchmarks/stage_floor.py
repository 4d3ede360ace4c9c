"""What each stage of a spoken reply costs on this machine, and the voice-to-voice floor they add up to.

Loads the embedded models the way `voxcall serve` does (Qwen2.5-Coder-1.5B with llama.cpp on
`--llm-threads` threads, Whisper base on 1 thread, Piper joe on 1 thread) and times, in
isolation, the work that stands between the end of the user's speech and the first audio out:

  * LLM prompt evaluation of the last user words and the chat template's closing (8 and 16
    tokens after a 150-token cached conversation), and one generated token;
  * Whisper on the test prompts (tests/fixtures/speech), as the early transcription at `Paused`;
  * Piper on a four-word first clause.

Then it prints the chain a preemptive reply runs after the pause (pause detection, Whisper,
the prompt's uncached tail, the first clause's tokens, its synthesis) next to the 384 ms
`turnEndpointDelay`: a reply can only be ready at the end of the turn if that chain fits in it.
Medians of `--repeat` runs each.

    .venv/bin/python benchmarks/stage_floor.py [--llm-threads 2] [--repeat 5] [--clause-tokens 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from voxcall.audio import read_wav, resample
from voxcall.config import default_data_dir
from voxcall.providers.embedded import load_llm
from voxcall.providers.speech import load_speech

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
PROMPTS = ["capital.wav", "joke.wav", "timer.wav", "weather.wav", "restaurant.wav"]
PAUSE_MS = 64 + 32  # `Paused`: 64 ms of silence, noticed at the end of a 32 ms VAD frame
ENDPOINT_MS = 384  # the default turnEndpointDelay
CLAUSE = "The capital of France"


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def llm_costs(threads: int, repeat: int) -> dict[str, float]:
    llm = load_llm("qwen2.5-1.5b", cache_dir=default_data_dir() / "models", n_threads=threads)
    llama = llm._llama  # the raw llama.cpp handle: one forward pass at a time, nothing else
    tokens = llama.tokenize(("We talked about the weather, trains and dinner plans. " * 20).encode(), add_bos=False)

    def evaluate(count: int) -> Callable[[], None]:
        def run() -> None:
            llama.n_tokens = 150
            llama.eval(tokens[150 : 150 + count])
        return run

    llama.n_tokens = 0
    llama.eval(tokens[:150])
    costs = {f"eval{n}": median_ms(evaluate(n), repeat) for n in (1, 8, 16)}
    llm.close()
    return costs


def speech_costs(repeat: int) -> tuple[dict[str, float], float]:
    speech = load_speech(default_data_dir() / "models")
    asyncio.run(speech.stt.warm_up())  # the first request is the slow one: not a stage cost
    whisper: dict[str, float] = {}

    async def transcribe(pcm: bytes) -> None:
        await speech.stt.transcribe(pcm, language="en")

    for name in PROMPTS:
        pcm, rate = read_wav(str(FIXTURES / name))
        pcm = resample(pcm, rate, 16000)
        whisper[name] = median_ms(lambda pcm=pcm: asyncio.run(transcribe(pcm)), repeat)
    assert speech.tts is not None, "piper-tts and its joe voice are needed"
    tts = speech.tts

    async def synthesise() -> None:
        async for _ in tts.synthesize(CLAUSE):
            pass

    piper = median_ms(lambda: asyncio.run(synthesise()), repeat)
    return whisper, piper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm-threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clause-tokens", type=int, default=5,
                        help="tokens until a four-word first clause is complete (its words, then the next one's start)")
    args = parser.parse_args()

    llm = llm_costs(args.llm_threads, args.repeat)
    whisper, piper = speech_costs(args.repeat)
    print(f"\nstage costs on this machine (medians of {args.repeat}; Qwen2.5-Coder-1.5B on {args.llm_threads} threads)")
    print(f"  LLM: one generated token {llm['eval1']:.0f} ms; prompt tail of 8 tokens {llm['eval8']:.0f} ms, "
          f"16 tokens {llm['eval16']:.0f} ms (after 150 cached)")
    for name, ms in whisper.items():
        print(f"  Whisper base, {name:<15} {ms:.0f} ms")
    print(f"  Piper joe, {CLAUSE!r}: {piper:.0f} ms")
    early = statistics.median(whisper.values())
    chain = [
        ("pause noticed (64 ms of silence + up to a 32 ms frame)", PAUSE_MS),
        ("Whisper, early transcription (median prompt)", early),
        ("prompt tail (8 tokens) with the first token", llm["eval8"]),
        (f"first clause: {args.clause_tokens - 1} more tokens", (args.clause_tokens - 1) * llm["eval1"]),
        ("Piper, first clause", piper),
    ]
    total = sum(ms for _, ms in chain)
    print("\nchain of a preemptive reply after the end of speech:")
    for label, ms in chain:
        print(f"  {label:<52} {ms:6.0f} ms")
    print(f"  {'total':<52} {total:6.0f} ms")
    print(f"  {'end of the turn (turnEndpointDelay, from end of speech)':<52} {ENDPOINT_MS:6.0f} ms")
    print(f"voice-to-voice floor on this machine: max(end of turn, chain) = {max(total, ENDPOINT_MS):.0f} ms "
          "plus the network and the client's buffer")


if __name__ == "__main__":
    main()
