"""Turn detector: synthetic probabilities, no audio, no clock."""

from __future__ import annotations

from voxcall.engine.turns import BargeIn, Paused, Resumed, Speaking, SpeechStarted, TurnDetector, TurnEnded, VadConfig

F = b"\x00\x00" * 512


def run(detector: TurnDetector, probabilities: list[float], *, agent_speaking: bool = False,
        partials: bool = False) -> list[tuple[int, object]]:
    """The events per frame index (`Speaking` only with `partials`: most tests are about the rest)."""
    out = []
    for i, p in enumerate(probabilities):
        for event in detector.feed(F, p, agent_speaking=agent_speaking):
            if partials or not isinstance(event, Speaking):
                out.append((i, event))
    return out


def test_speaking_offers_the_turn_so_far_every_partial_interval() -> None:
    d = TurnDetector()  # 0.64 s -> 20 frames
    events = run(d, [0.0] * 3 + [0.9] * 45 + [0.0] * 12, partials=True)
    speaking = [(i, e) for i, e in events if isinstance(e, Speaking)]
    assert [i for i, _ in speaking] == [3 + 19, 3 + 39]  # counted from the first voiced frame
    first = speaking[0][1]
    assert isinstance(first, Speaking) and len(first.audio) == (3 + 20) * len(F)  # pre-roll and the speech so far
    assert isinstance(events[-1][1], TurnEnded)


def test_no_partials_in_silence_or_when_switched_off() -> None:
    quiet = run(TurnDetector(), [0.9] * 10 + [0.0] * 30, partials=True)
    assert not any(isinstance(e, Speaking) for _, e in quiet)  # 10 voiced frames: under the interval, then silence
    off = run(TurnDetector(VadConfig(partial_seconds=None)), [0.9] * 100 + [0.0] * 12, partials=True)
    assert not any(isinstance(e, Speaking) for _, e in off)


def test_turn_ends_after_the_endpoint_delay_in_frames() -> None:
    d = TurnDetector()
    events = run(d, [0.0] * 5 + [0.9] * 20 + [0.0] * 15)
    kinds = [(i, type(e).__name__) for i, e in events]
    # 0.384 s = 12 frames of silence; pause after 2 frames (0.064 s)
    assert kinds == [(5, "SpeechStarted"), (26, "Paused"), (36, "TurnEnded")]
    assert events[1][1].audio == events[2][1].audio  # type: ignore[union-attr]
    ended = events[-1][1]
    assert isinstance(ended, TurnEnded) and ended.voiced_frames == 20
    preroll = d.config.frames(d.config.preroll_seconds)
    assert len(ended.audio) == (min(5, preroll) + 20 + 2) * len(F)


def test_speech_after_a_pause_resumes_the_same_turn() -> None:
    d = TurnDetector()
    events = run(d, [0.9] * 10 + [0.0] * 5 + [0.9] * 10 + [0.0] * 12)
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, Paused, Resumed, Paused, TurnEnded]
    assert events[-1][1].voiced_frames == 20  # type: ignore[union-attr]


def test_custom_endpoint_and_minimum_turn() -> None:
    d = TurnDetector(VadConfig(turn_endpoint_delay=0.64, minimum_turn_duration=0.32))
    short = run(d, [0.9] * 5 + [0.0] * 25)
    assert [type(e) for _, e in short] == [SpeechStarted]  # 160 ms of speech is under the 320 ms minimum
    long = run(d, [0.9] * 12 + [0.0] * 25)
    assert [type(e) for _, e in long][-1] is TurnEnded and long[-1][0] == 12 + 20 - 1


def test_barge_in_needs_the_minimum_interruption_duration() -> None:
    d = TurnDetector()  # 0.09 s -> 3 frames
    events = run(d, [0.9] * 5 + [0.0] * 12, agent_speaking=True)
    assert [(i, type(e)) for i, e in events][:2] == [(0, SpeechStarted), (2, BargeIn)]
    assert isinstance(events[-1][1], TurnEnded)


def test_a_blip_over_the_agent_is_not_a_turn() -> None:
    d = TurnDetector(VadConfig(minimum_interruption_duration=0.2))
    events = run(d, [0.9] * 3 + [0.0] * 14, agent_speaking=True)
    assert not any(isinstance(e, (BargeIn, TurnEnded)) for _, e in events)
    assert not d.in_speech


def test_thresholds() -> None:
    d = TurnDetector(VadConfig(frame_activation_threshold=0.8))
    assert not d.voiced(0.6) and d.voiced(0.85)
    assert TurnDetector().voiced(0.5) and not TurnDetector().voiced(0.3)


def test_a_very_long_turn_is_cut_at_the_maximum() -> None:
    d = TurnDetector(VadConfig(max_turn_seconds=0.32))
    events = run(d, [0.9] * 25)
    ends = [i for i, e in events if isinstance(e, TurnEnded)]
    assert ends == [9, 19]
