"""When does voxcall notice that the user stopped speaking? VAD timing against the true end of speech.

Runs every spoken test WAV (tests/fixtures/speech) through the same inbound path as a call
(`voice_in.py`: the input resampler, 32 ms frames, Silero VAD, the turn detector with the default
`vadSettings`), the client sending 20 ms chunks, then silence. The audio is shifted by 0-30 ms of
leading silence to vary how the speech falls on the 32 ms frames, and the silence after it is
digital zero or a quiet noise floor (a real microphone). Per utterance it reports, relative to
the true end of speech (the last sample louder than 1000, about -30 dBFS, as voice_latency.py counts):

  * silence   - when the first frame the VAD calls silence after the last speech arrived;
  * paused    - when `Paused` fired (early transcription, preemptive replies start here);
  * turn end  - when `TurnEnded` fired (silence + turnEndpointDelay);

and counts false ends (a `TurnEnded` before the true end of speech: a pause inside the utterance
taken for the end of the turn) and pauses inside the utterance (a `Paused` before the true end: an
early transcription, and a preemptive reply, started and thrown away).

    .venv/bin/python benchmarks/end_of_speech.py [--input-rate 48000] [--threshold 0.5] [--noise-dbfs -60]
        [--floor-dbfs -65|off]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from voxcall.audio import Resampler, read_wav, resample
from voxcall.engine.turns import Paused, TurnDetector, TurnEnded, VadConfig
from voxcall.engine.voice_in import gate
from voxcall.providers.speech import SileroVAD

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
CHUNK_SECONDS = 0.02
LOUD = 1000  # about -30 dBFS: the "last voiced sample" of benchmarks/voice_latency.py


@dataclass
class Timing:
    silence: float | None = None
    paused: float | None = None
    turn_end: float | None = None
    false_ends: int = 0
    pauses: int = 0


def load(name: str, rate: int, lead: float, noise_dbfs: float | None, tail: float = 1.5) -> tuple[bytes, float]:
    """The utterance at `rate` after `lead` s of silence, then `tail` s of silence; and its true end (s)."""
    pcm, source = read_wav(str(FIXTURES / name))
    speech = np.frombuffer(resample(pcm, source, rate), dtype="<i2").astype(np.float64)
    loud = np.nonzero(np.abs(speech) > LOUD)[0]
    end = (loud[-1] + 1) / rate + lead
    audio = np.concatenate([np.zeros(int(lead * rate)), speech, np.zeros(int(tail * rate))])
    if noise_dbfs is not None:
        rng = np.random.default_rng(0)
        audio += rng.normal(0, 10 ** (noise_dbfs / 20) * 32768, audio.size)
    return np.clip(audio, -32768, 32767).astype("<i2").tobytes(), end


def measure(pcm: bytes, rate: int, true_end: float, config: VadConfig) -> Timing:
    """Feed `pcm` in 20 ms chunks as `VoiceInput.push` does; event times are when their chunk arrived."""
    vad = SileroVAD()
    detector = TurnDetector(config)
    resampler = Resampler(rate, vad.sample_rate, quality="MQ" if rate < vad.sample_rate else "HQ")
    frame, chunk = vad.frame_samples * 2, int(rate * CHUNK_SECONDS) * 2
    pending, timing, was_voiced = b"", Timing(), False
    for start in range(0, len(pcm), chunk):
        arrived = (start + chunk) / 2 / rate
        audio = pending + resampler.feed(pcm[start : start + chunk])
        cut = len(audio) - len(audio) % frame
        pending = audio[cut:]
        for offset in range(0, cut, frame):
            probability = gate(vad.probability(audio[offset : offset + frame]), audio[offset : offset + frame],
                               config.silence_floor_dbfs)
            voiced = detector.voiced(probability)
            if was_voiced and not voiced:
                timing.silence = arrived - true_end  # the last transition to silence is the one that counts
            was_voiced = voiced
            for event in detector.feed(audio[offset : offset + frame], probability):
                if isinstance(event, Paused) and arrived < true_end:
                    timing.pauses += 1
                elif isinstance(event, Paused) and timing.paused is None:
                    timing.paused = arrived - true_end
                elif isinstance(event, TurnEnded) and arrived < true_end:
                    timing.false_ends += 1
                elif isinstance(event, TurnEnded) and timing.turn_end is None:
                    timing.turn_end = arrived - true_end
    vad.close()
    return timing


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{1000 * statistics.median(ordered):5.0f} / {1000 * ordered[0]:5.0f} / {1000 * ordered[-1]:5.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input-rate", type=int, default=16000, help="the client's rate (48000: a browser)")
    parser.add_argument("--threshold", type=float, default=VadConfig().speech_threshold, help="speech probability")
    parser.add_argument("--noise-dbfs", type=float, default=None, help="noise floor under the audio, e.g. -60")
    parser.add_argument("--floor-dbfs", default=str(VadConfig().silence_floor_dbfs),
                        help="frames quieter than this are silence; 'off': Silero alone")
    parser.add_argument("--endpoint", type=float, default=VadConfig().turn_endpoint_delay, help="turnEndpointDelay (s)")
    args = parser.parse_args()
    config = replace(VadConfig(), speech_threshold=args.threshold, turn_endpoint_delay=args.endpoint,
                     silence_floor_dbfs=None if args.floor_dbfs == "off" else float(args.floor_dbfs))
    names = sorted(p.name for p in FIXTURES.glob("*.wav"))
    rows: dict[str, list[Timing]] = {}
    for name in names:
        rows[name] = []
        for lead in range(0, 32, 4):
            pcm, end = load(name, args.input_rate, lead / 1000, args.noise_dbfs)
            rows[name].append(measure(pcm, args.input_rate, end, config))
    print(f"input {args.input_rate} Hz, speech threshold {args.threshold}, silence floor {args.floor_dbfs} dBFS, "
          f"endpoint {args.endpoint:.3f} s, "
          f"noise {'none' if args.noise_dbfs is None else f'{args.noise_dbfs:g} dBFS'}; 8 frame alignments each")
    print(f"{'ms after the true end':22}{'silence (med/min/max)':>24}{'paused':>24}{'turn end':>24}{'false ends':>12}{'pauses':>8}")
    every: list[Timing] = []
    for name, timings in rows.items():
        every += timings
        _row(name, timings)
    _row("all", every)


def _row(name: str, timings: list[Timing]) -> None:
    def pick(attr: str) -> list[float]:
        return [getattr(t, attr) for t in timings if getattr(t, attr) is not None]

    print(f"{name:22}{_ms(pick('silence')):>24}{_ms(pick('paused')):>24}{_ms(pick('turn_end')):>24}"
          f"{sum(t.false_ends for t in timings):>12}{sum(t.pauses for t in timings):>8}")


if __name__ == "__main__":
    main()
