"""The playground in real Chromium against a real server (SmolLM2): sign in, text chat, mute, hang up, history.

These calls use text replies, so they pass with or without the voice engine; the microphone is
real (Chromium's fake device playing a WAV) and its audio goes to the server all along.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.browser.conftest import PageFor
from tests.browser.playground import LIVE, sign_in, start_call, stats, transcripts, wait_final, wait_stat, wait_status
from tests.conftest import RunningServer

PROMPT = "You are a friendly assistant. Answer in one short sentence."


def test_the_page_and_the_sdk_are_served_with_their_content_types(server: RunningServer) -> None:
    expected = {
        "/": "text/html",
        "/static/app.js": "text/javascript",
        "/static/app.css": "text/css",
        "/sdk/ultravox.js": "text/javascript",
        "/sdk/ultravox-core.js": "text/javascript",
        "/sdk/ultravox-capture-worklet.js": "text/javascript",
        "/sdk/ultravox-playback-worklet.js": "text/javascript",
        "/sdk/ultravox.d.ts": "application/typescript",
    }
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for path, content_type in expected.items():
            r = http.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-type"].split(";")[0] == content_type, path
        page = http.get("/")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert http.get("/sdk/ultravox.js").headers["access-control-allow-origin"] == "*"
        assert http.get("/sdk/nothing.js").status_code == 404
        assert http.get("/static/..%2Fweb.py").status_code == 404


async def test_sign_in_keeps_the_key_in_session_storage_only(server: RunningServer, page_for: PageFor) -> None:
    p = await page_for(server)
    page = p.page
    await page.get_by_label("API key").fill("not-a-key")
    await page.keyboard.press("Enter")
    await page.get_by_role("alert").filter(has_text="not accepted").wait_for()
    await sign_in(p)
    assert server.api_key not in page.url
    assert await page.evaluate("() => sessionStorage.getItem('voxcall.apiKey')") == server.api_key
    assert await page.evaluate("() => localStorage.length") == 0
    assert await page.get_by_label("API key").input_value() == ""
    await p.shot("01-signed-in")
    await page.reload()  # the same tab keeps the key
    await page.get_by_role("heading", name="New call").wait_for()
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("heading", name="Sign in").wait_for()
    assert await page.evaluate("() => sessionStorage.getItem('voxcall.apiKey')") is None


async def test_text_chat_shows_both_sides_and_switches_the_output_medium(server: RunningServer, page_for: PageFor) -> None:
    p = await page_for(server)
    await sign_in(p)
    call = await start_call(p, prompt=PROMPT, medium="text")
    page = p.page
    assert "token=" in call["joinUrl"] and server.api_key not in call["joinUrl"]
    await page.get_by_label("Message").fill("Hello! What is two plus two?")
    await page.get_by_label("Message").press("Enter")
    user = await wait_final(p, "user", medium="text")
    assert user["text"] == "Hello! What is two plus two?"
    agent = await wait_final(p, "agent", timeout=90_000)
    assert agent["text"].strip(), p.debug()
    assert p.of("sent", "input_text_message")[0] == {"type": "input_text_message", "text": "Hello! What is two plus two?"}
    ordinals = [t["ordinal"] for t in await transcripts(p)]
    assert ordinals == sorted(ordinals) and len(set(ordinals)) == len(ordinals)
    await p.shot("02-text-chat")

    await wait_status(p, "listening", timeout=60_000)
    await page.get_by_label("Replies as", exact=True).select_option("voice")
    await page.get_by_label("Replies as", exact=True).select_option("text")
    assert [m["medium"] for m in p.of("sent", "set_output_medium")] == ["voice", "text"]
    sent = await stats(p)
    assert sent["sentFrames"] > 0  # the microphone's (silent) audio streams all along
    assert sent["contextSampleRate"] > 0 and sent["micError"] is None, sent


async def test_hang_up_ends_the_call_and_the_history_shows_it(server: RunningServer, page_for: PageFor) -> None:
    p = await page_for(server)
    await sign_in(p)
    call = await start_call(p, prompt=PROMPT, medium="text")
    page = p.page
    await page.get_by_label("Message").fill("Say hi.")
    await page.get_by_role("button", name="Send").click()
    await wait_final(p, "agent", timeout=90_000)
    await page.get_by_role("button", name="Hang up").click()
    await wait_status(p, "disconnected")
    assert await page.evaluate("() => window.voxcall.session.closeCode") is None  # we closed it, not the server
    ended = _wait_ended(server, call["callId"])
    assert ended["endReason"] == "hangup"
    assert await page.get_by_role("button", name="Start call").is_enabled()

    entry = page.locator(f'#call-list a[data-call-id="{call["callId"]}"]', has_text="ended: hangup")
    await entry.wait_for()  # the page reloads its history until the end is recorded
    await entry.click()
    detail = page.locator("#call-detail")
    await detail.get_by_text("Say hi.").wait_for()
    roles = await detail.locator("#call-transcript li").evaluate_all("items => items.map(li => li.dataset.role)")
    assert roles[:2] == ["MESSAGE_ROLE_USER", "MESSAGE_ROLE_AGENT"], roles
    await p.shot("04-history")


async def test_mute_mic_sends_silence_instead_of_speech(server: RunningServer, page_for: PageFor) -> None:
    p = await page_for(server, mic="chatter")  # the fake microphone talks on a loop
    await sign_in(p)
    await start_call(p, prompt=PROMPT, medium="text")
    page = p.page
    await wait_stat(p, "sentSoundFrames", 25)
    mute = page.get_by_role("button", name="Mute microphone")
    await mute.click()
    assert await mute.get_attribute("aria-pressed") == "true"
    assert await page.evaluate("() => window.voxcall.session.isMicMuted") is True
    await asyncio.sleep(0.3)  # frames already in flight
    before = await stats(p)
    await asyncio.sleep(2.5)
    after = await stats(p)
    await p.shot("05-mic-muted")
    assert after["sentSoundFrames"] == before["sentSoundFrames"], (before, after)
    assert after["sentFrames"] - before["sentFrames"] >= 75, (before, after)  # silence still flows at 50 frames/s
    await mute.click()
    assert await mute.get_attribute("aria-pressed") == "false"
    await wait_stat(p, "sentSoundFrames", after["sentSoundFrames"] + 10)
    await page.get_by_role("button", name="Hang up").click()
    await wait_status(p, "disconnected")


async def test_keyboard_only_on_a_phone_sized_screen(server: RunningServer, page_for: PageFor) -> None:
    p = await page_for(server, viewport={"width": 375, "height": 740})
    page = p.page
    # The API key field has focus on load; everything below is typed, tabbed and pressed.
    await page.keyboard.type(server.api_key)
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="New call").wait_for()
    await page.wait_for_function("() => document.activeElement.id === 'system-prompt'")
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("() => document.activeElement.id") == "start-call":
            break
    else:
        raise AssertionError("Tab never reached the Start call button")
    outline = await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused button shows no focus outline"
    await p.shot("06-phone-focus")
    await page.keyboard.press("Enter")
    await wait_status(p, *LIVE, timeout=60_000)
    await page.wait_for_function("() => document.activeElement.id === 'text-input'")
    await page.keyboard.type("Hi there.")
    await page.keyboard.press("Enter")
    await wait_final(p, "user", medium="text")
    await page.locator('#transcripts li[data-speaker="agent"]').first.wait_for(timeout=90_000)  # replies by default in voice
    unlabeled = await page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
               .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
               .map(e => e.id || e.outerHTML)"""
    )
    assert unlabeled == []
    overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    await p.shot("06-phone-call")
    await page.get_by_role("button", name="Hang up").focus()
    await page.keyboard.press("Enter")
    await wait_status(p, "disconnected")


def _wait_ended(server: RunningServer, call_id: str, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        call = httpx.get(f"{server.api}/calls/{call_id}", headers=server.headers(), timeout=10).json()
        if call.get("ended") or time.monotonic() > deadline:
            return call  # type: ignore[no-any-return]
        time.sleep(0.2)
