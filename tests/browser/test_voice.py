"""Voice in the browser: Chromium's fake microphone asks, the agent answers aloud, barge-in clears playback.

These need the server's voice engine (VAD, Whisper, Piper). The page streams the microphone as
16 kHz PCM and plays the agent's 24 kHz PCM through the SDK's AudioWorklets; `session.stats`
is the SDK's test hook for what was sent, received and played.
"""

from __future__ import annotations

import time

import httpx

from tests.browser.conftest import PageFor
from tests.browser.playground import sign_in, start_call, stats, transcripts, wait_final, wait_stat, wait_status
from tests.conftest import RunningServer

PROMPT = "You are a friendly voice assistant. Answer in one short sentence."
LONG_GREETING = (
    "Hello and welcome to the voxcall test line. I am going to talk for quite a while now, "
    "so that you have plenty of time to interrupt me. I will describe the weather, the trains, "
    "the opening hours of the museum, and the history of the town hall, one after the other."
)


async def test_spoken_question_gets_a_spoken_answer_that_is_played(server: RunningServer, page_for: PageFor) -> None:
    p = await page_for(server, mic="question")
    await sign_in(p)
    call = await start_call(p, prompt=PROMPT, medium="voice", recording=True)
    user = await wait_final(p, "user", medium="voice", timeout=90_000)
    heard = user["text"].lower()
    assert "capital" in heard and "france" in heard, user
    agent = await wait_final(p, "agent", timeout=120_000)
    assert agent["medium"] == "voice" and agent["text"].strip(), agent
    played = await wait_stat(p, "playedSamples", 0, timeout=30_000)
    assert played["receivedAudioFrames"] > 0 and played["playedMs"] > 300, played
    assert played["audibleSamples"] == played["playedSamples"], played  # the speaker was on
    assert played["sentSoundFrames"] > 25, played  # the question went out as sound
    await p.shot("07-voice-call")
    speaker = p.page.get_by_role("button", name="Mute speaker")
    await speaker.click()
    assert await speaker.get_attribute("aria-pressed") == "true"
    assert await p.page.evaluate("() => window.voxcall.session.isSpeakerMuted") is True

    await p.page.get_by_role("button", name="Hang up").click()
    await wait_status(p, "disconnected")
    _wait_ended(server, call["callId"])
    await p.page.get_by_role("button", name="Refresh").click()
    entry = p.page.locator(f'#call-list a[data-call-id="{call["callId"]}"]')
    await entry.click()
    player = p.page.locator("#recording-player")
    await player.wait_for(timeout=30_000)
    assert (await player.get_attribute("src") or "").startswith("blob:")
    duration = await player.evaluate(
        "a => a.readyState >= 1 ? a.duration : new Promise(r => a.addEventListener('loadedmetadata', () => r(a.duration)))"
    )
    assert duration > 1.0, duration
    await p.shot("08-history-recording")


async def test_speaking_over_the_agent_interrupts_it(server: RunningServer, page_for: PageFor) -> None:
    p = await page_for(server, mic="interrupt")
    await sign_in(p)
    await start_call(p, prompt=PROMPT, medium="voice", first_speaker="agent", greeting=LONG_GREETING)
    await wait_stat(p, "playedSamples", 0, timeout=30_000)  # the greeting is playing
    await wait_stat(p, "clearedBuffers", 0, timeout=60_000)  # "Stop, wait a moment." cut it short
    greeting = (await wait_final(p, "agent", timeout=30_000))["text"]
    assert len(greeting) < len(LONG_GREETING), "the greeting's transcript should stop where it was cut"
    await wait_final(p, "user", medium="voice", timeout=60_000)
    after = await stats(p)
    assert after["clearedBuffers"] >= 1, after
    await p.shot("09-barge-in")
    rows = await transcripts(p)
    assert rows[0]["speaker"] == "agent" and rows[0]["final"], rows
    await p.page.get_by_role("button", name="Hang up").click()
    await wait_status(p, "disconnected")


def _wait_ended(server: RunningServer, call_id: str, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        call = httpx.get(f"{server.api}/calls/{call_id}", headers=server.headers(), timeout=10).json()
        if call.get("ended") or time.monotonic() > deadline:
            return call  # type: ignore[no-any-return]
        time.sleep(0.2)
