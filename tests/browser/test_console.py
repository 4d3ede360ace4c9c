"""The console in real Chromium against a real server (SmolLM2 with the voice engine).

Tools, webhooks and agents are made through their pages (with a refused value first, whose
422 must read as a sentence); a voice call starts from the agent, the fake microphone asks a
question, and the call's page shows its stages, events, latency chart and recording waveform.
Screenshots go to test-artifacts/console/ (also at a phone's 375 px).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import websockets

from tests.browser.conftest import PageFor
from tests.browser.playground import Page, sign_in, start_call, wait_final, wait_status
from tests.conftest import ROOT, RunningServer
from tests.server.wire import Wire
from voxcall.protocol.rest import first_stage_id
from voxcall.server.web import PAGE_FILES

SHOTS = ROOT / "test-artifacts" / "console"
PHONE = {"width": 375, "height": 740}
PROMPT = "You are the front desk of a small hotel. Answer in one short sentence."
TOOL = "lookupOrder"
HOOK = "https://hooks.example.com/voxcall"


def _shots(p: Page) -> Page:
    SHOTS.mkdir(parents=True, exist_ok=True)
    p.artifacts = SHOTS
    return p


async def _editing(p: Page, what: str, title: str) -> None:
    """Wait until the `what` form shows `title` and holds what it edits (it is locked while it loads)."""
    await p.page.get_by_role("heading", name=title).wait_for()
    await p.page.locator(f"#{what}-form[aria-busy='false']").wait_for()


def _errors(p: Page) -> list[str]:
    return [line for line in p.console if line.startswith(("error:", "pageerror:"))]


async def _no_sideways_scroll(p: Page, where: str) -> None:
    overflow = await p.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{where} scrolls sideways by {overflow}px"


async def _create_tool(p: Page) -> None:
    page = p.page
    await page.get_by_role("link", name="Tools", exact=True).click()
    await page.get_by_role("link", name="New tool").click()
    form = page.locator("#tool-form")
    await form.get_by_label("Name", exact=True).fill(TOOL)
    await form.get_by_label("Kind").select_option("http")
    await form.get_by_label("Description", exact=True).fill("Look up a guest's booking by its number.")
    await form.get_by_label("URL", exact=True).fill("ftp://bookings.example.com/orders/{orderId}")
    await form.get_by_role("button", name="Add parameter").click()
    await form.get_by_label("Parameter name").fill("orderId")
    await form.get_by_label("Location").select_option("PARAMETER_LOCATION_PATH")
    await form.get_by_label("Parameter description").fill("The booking number")
    await form.get_by_label("Required").check()
    await form.get_by_role("button", name="Save tool").click()
    alert = page.locator("#tool-error")
    await alert.get_by_text("Field URL:").wait_for()
    said = await alert.inner_text()
    assert said.startswith("Field URL: baseUrlPattern must be an http:// or https:// URL"), said
    assert "{'" not in said and '"loc"' not in said and "Value error" not in said, said
    assert await form.get_by_label("URL", exact=True).get_attribute("aria-invalid") == "true"
    assert await page.evaluate("() => document.activeElement.id") == "tool-url"  # focus goes to the field to fix
    await p.shot("01-tool-refused")
    await form.get_by_label("URL", exact=True).fill("https://bookings.example.com/orders/{orderId}")
    await form.get_by_role("button", name="Save tool").click()
    await page.locator("#tool-list").get_by_role("link", name=TOOL).wait_for()
    await page.get_by_role("status").get_by_text(f"Tool {TOOL} saved.").wait_for()
    await p.shot("02-tools")

    await page.locator("#tool-list").get_by_role("link", name=TOOL).click()  # edit: the form holds what was saved
    await _editing(p, "tool", "Edit tool")
    assert await form.get_by_label("URL", exact=True).input_value() == "https://bookings.example.com/orders/{orderId}"
    assert await form.get_by_label("Parameter name").input_value() == "orderId"
    assert await form.get_by_label("Location").input_value() == "PARAMETER_LOCATION_PATH"
    await form.get_by_label("Description", exact=True).fill("Look up a booking by its number.")
    await form.get_by_role("button", name="Save tool").click()
    await page.locator("#tool-list li", has_text="Look up a booking by its number.").wait_for()


async def _create_webhook(p: Page) -> None:
    page = p.page
    await page.get_by_role("link", name="Webhooks", exact=True).click()
    await page.get_by_role("link", name="New webhook").click()
    form = page.locator("#webhook-form")
    await form.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    await form.get_by_label("Call started").check()
    await form.get_by_role("button", name="Save webhook").click()
    alert = page.locator("#webhook-error")
    await alert.get_by_text("Field URL:").wait_for()
    said = await alert.inner_text()
    assert said.startswith("Field URL: 127.0.0.1 is") and said.endswith("."), said
    await p.shot("03-webhook-refused")
    await form.get_by_label("URL").fill(HOOK)
    await form.get_by_role("button", name="Save webhook").click()
    row = page.locator("#webhook-list li", has_text=HOOK)
    await row.wait_for()
    assert "call.started, call.ended" in await row.inner_text()


async def _create_agent(p: Page) -> str:
    page = p.page
    await page.get_by_role("link", name="Agents", exact=True).click()
    await page.get_by_role("link", name="New agent").click()
    form = page.locator("#agent-form")
    await form.get_by_label("Name", exact=True).fill("Front desk")
    await form.get_by_label("System prompt").fill(PROMPT)
    await form.get_by_label("First speaker").select_option("user")
    await form.get_by_label("Agent replies as").select_option("voice")
    await form.get_by_label("Record calls").check()
    await form.get_by_label(TOOL).check()
    await form.get_by_label("hangUp").check()
    await form.get_by_role("button", name="Save agent").click()
    await page.get_by_role("heading", name="Start a call with Front desk").wait_for()
    assert "#/agents/" in page.url
    await p.shot("04-agent")
    agent_id = page.url.rsplit("/", 1)[-1]
    async with httpx.AsyncClient(timeout=10) as http:
        agent = (await http.get(f"{p.server.api}/agents/{agent_id}", headers=p.server.headers())).json()
    template = agent["callTemplate"]
    assert template["systemPrompt"] == PROMPT and template["recordingEnabled"] is True
    assert template["firstSpeakerSettings"] == {"user": {}}
    assert [t.get("toolName") or "id" for t in template["selectedTools"]] == ["id", "hangUp"], template["selectedTools"]
    return agent_id


def _wait_ended(server: RunningServer, call_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        call: dict[str, Any] = httpx.get(f"{server.api}/calls/{call_id}", headers=server.headers(), timeout=10).json()
        if call.get("ended") or time.monotonic() > deadline:
            return call
        time.sleep(0.2)


async def _check_call_page(p: Page, call_id: str) -> None:
    page = p.page
    row = page.locator(f'#call-list a[data-call-id="{call_id}"]')
    await row.click()
    detail = page.locator("#call-detail")
    await detail.locator("#call-events").wait_for(timeout=20_000)
    assert await row.get_attribute("aria-current") == "true"
    text = await row.inner_text()
    assert call_id[:8] in text and "ended: hangup" in text and "agent Front desk" in text, text
    assert " s" in text or " min " in text, text  # the duration
    await page.wait_for_function("id => /You: |Agent: /.test(document.querySelector(`a[data-call-id='${id}'] .preview`).textContent)", arg=call_id)

    stages = detail.locator("#call-stages li")
    assert await stages.count() == 1
    assert "Stage 1 (the whole call)" in await stages.inner_text()
    assert PROMPT in await stages.inner_text()
    assert re.search(r"Prompt tokens\s*\d+", await stages.inner_text())  # the embedded model counted the prompt
    roles = await detail.locator("#call-transcript li").evaluate_all("items => items.map(li => li.dataset.role)")
    assert roles[:2] == ["MESSAGE_ROLE_USER", "MESSAGE_ROLE_AGENT"], roles
    types = await detail.locator("#call-events tbody tr").evaluate_all("rows => rows.map(r => r.dataset.type)")
    assert "turn_latency" in types, types

    bars = detail.locator("#call-latency svg g.bar")
    turns = types.count("turn_latency")
    assert await bars.count() == turns
    segments = await bars.first.locator("rect").evaluate_all("rs => rs.map(r => r.dataset.stage)")
    assert segments == ["endpointMs", "transcriptMs", "firstTokenMs", "firstAudioMs"]
    legend = await detail.locator("#call-latency .legend li strong").all_inner_texts()
    assert legend == ["End of turn", "Transcript", "First token", "First audio"]
    axis = await detail.locator("#call-latency svg .axis-title").all_text_contents()
    assert axis == ["ms after speech ended", "Turn"], axis
    heights = await bars.first.locator("rect").evaluate_all("rs => rs.map(r => Number(r.getAttribute('height')))")
    assert sum(heights) > 0, heights

    canvas = detail.locator("#recording-waveform")
    await page.wait_for_function("() => Number(document.querySelector('#recording-waveform')?.dataset.duration) > 1", timeout=20_000)
    drawn = await canvas.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n / (c.width * c.height); }"""
    )
    assert 0.01 < drawn < 0.9, drawn  # lanes with sound drawn, not blank and not a filled box
    assert (await detail.locator("#recording-player").get_attribute("src") or "").startswith("blob:")
    await detail.locator("#call-latency").scroll_into_view_if_needed()
    await p.shot("06-call-page")


async def _delete(p: Page, view: str, name: str, what: str) -> None:
    """Open `name` on the `view` page, delete it (confirming in the dialog), and see it gone."""
    page = p.page
    await page.get_by_role("link", name=view, exact=True).click()
    listing = page.locator(f"#{what}-list")
    await listing.get_by_role("link", name=name, exact=True).click()
    await page.get_by_role("button", name=f"Delete {what}").click()
    dialog = page.get_by_role("dialog")
    assert name in await dialog.inner_text()
    await dialog.get_by_role("button", name=f"Delete {what}").click()
    await page.get_by_role("status").get_by_text("deleted.").wait_for()
    await page.get_by_role("heading", name=view, exact=True).wait_for()
    await listing.get_by_role("link", name=name, exact=True).wait_for(state="detached")  # once the list has reloaded


async def _edit_webhook(p: Page) -> None:
    page = p.page
    await page.get_by_role("link", name="Webhooks", exact=True).click()
    await page.locator("#webhook-list").get_by_role("link", name=HOOK).click()
    form = page.locator("#webhook-form")
    await _editing(p, "webhook", "Edit webhook")
    assert await form.get_by_label("Call started").is_checked() and await form.get_by_label("Call ended").is_checked()
    assert (await form.get_by_label("Secrets").input_value()).strip(), "the server made a secret"
    await form.get_by_label("Call started").uncheck()
    await form.get_by_role("button", name="Save webhook").click()
    await page.locator("#webhook-list li", has_text=HOOK).filter(has_not_text="call.started").wait_for()


async def test_console_makes_a_tool_a_webhook_and_an_agent_and_calls_the_agent(server: RunningServer, page_for: PageFor) -> None:
    p = _shots(await page_for(server, mic="question"))
    await sign_in(p)
    await _create_tool(p)
    await _create_webhook(p)
    agent_id = await _create_agent(p)
    p.console.clear()  # the refusals above are logged as failed requests; from here on nothing may fail

    await p.page.get_by_role("button", name="Call this agent").click()
    await wait_status(p, "listening", "thinking", "speaking", timeout=60_000)
    call: dict[str, Any] = await p.page.evaluate("() => window.voxcall.call")
    assert call["agentId"] == agent_id and call["recordingEnabled"] is True
    assert await p.page.get_by_role("heading", name="Call with Front desk").is_visible()
    await wait_final(p, "user", medium="voice", timeout=90_000)
    await wait_final(p, "agent", medium="voice", timeout=90_000)
    await p.shot("05-agent-call")
    await p.page.get_by_role("button", name="Hang up").click()
    await wait_status(p, "disconnected")
    assert _wait_ended(server, call["callId"])["endReason"] == "hangup"

    await _check_call_page(p, call["callId"])
    await _edit_webhook(p)
    for view, name, what in (("Webhooks", HOOK, "webhook"), ("Agents", "Front desk", "agent"), ("Tools", TOOL, "tool")):
        await _delete(p, view, name, what)
    assert _errors(p) == [], p.debug()


async def test_console_on_a_phone_sized_screen(server: RunningServer, page_for: PageFor) -> None:
    p = _shots(await page_for(server, viewport=PHONE))
    page = p.page
    await sign_in(p)
    help_text = await page.locator("#tools-help").inner_text()
    declared = await page.evaluate("() => JSON.parse(document.getElementById('tools').value).map(t => t.temporaryTool.modelToolName)")
    assert declared == ["getWeather", "getTime", "rollDice"]
    assert all(name in help_text for name in declared), help_text
    call = await start_call(p, first_speaker="user", medium="text")
    select = page.get_by_label("Replies as", exact=True)
    room = await select.evaluate(
        """s => { const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(s).font;
                  const widest = Math.max(...[...s.options].map(o => c.measureText(o.text).width));
                  const pad = parseFloat(getComputedStyle(s).paddingLeft) + parseFloat(getComputedStyle(s).paddingRight);
                  return s.clientWidth - pad - widest; }"""
    )
    assert room >= 16, f"the Replies as select leaves {room}px beside its longest option: its text is cut off"
    await _no_sideways_scroll(p, "the live call")
    await p.shot("07-phone-call")
    await page.get_by_label("Message").fill("Hello there.")
    await page.get_by_label("Message").press("Enter")
    await wait_final(p, "user", medium="text")
    await page.get_by_role("button", name="Hang up").click()
    await wait_status(p, "disconnected")
    _wait_ended(server, call["callId"])
    await page.locator(f'#call-list a[data-call-id="{call["callId"]}"]', has_text="ended: hangup").click()
    await page.locator("#call-detail #call-events").wait_for(timeout=20_000)
    assert "No spoken turn was measured" in await page.locator("#call-latency").inner_text()
    await _no_sideways_scroll(p, "the call page")
    await p.shot("08-phone-call-page")
    for view in ("agents", "webhooks", "tools"):
        await page.get_by_role("link", name=view.capitalize(), exact=True).click()
        await page.get_by_role("heading", name=view.capitalize(), exact=True).wait_for()
        await _no_sideways_scroll(p, f"the {view} page")
        await p.shot(f"09-phone-{view}")
    await page.get_by_role("link", name="New tool").click()
    await page.get_by_role("heading", name="New tool").wait_for()
    await page.get_by_role("button", name="Add parameter").click()
    await _no_sideways_scroll(p, "the tool form")
    await p.shot("10-phone-tool-form")
    assert _errors(p) == [], p.debug()


STAGE_ONE, STAGE_TWO = "You greet the guest.", "You now take the guest's booking."


async def _two_stage_call(server: RunningServer) -> str:
    """A text call that moves to a second stage: a forced agent message runs the client tool `advance`,
    whose result (sent here, as a client would) has `responseType: "new-stage"`."""
    advance = {"temporaryTool": {"modelToolName": "advance", "description": "Go to the booking stage.", "client": {}}}
    body = {"systemPrompt": STAGE_ONE, "firstSpeakerSettings": {"user": {}}, "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
            "selectedTools": [advance]}
    async with httpx.AsyncClient(timeout=30) as http:
        created = await http.post(f"{server.api}/calls", json=body, headers=server.headers())
        assert created.status_code == 201, created.text
    call = created.json()
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "forced_agent_message", "content": "One moment.", "toolCalls": [{"name": "advance"}]})
        invocation = await wire.until(lambda m: m["type"] == "client_tool_invocation")
        result = {"systemPrompt": STAGE_TWO, "selectedTools": [], "toolResultText": "Booking stage."}
        await wire.send({"type": "client_tool_result", "invocationId": invocation["invocationId"],
                         "result": json.dumps(result), "responseType": "new-stage"})
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient(timeout=10, headers=server.headers()) as http:
            while (await http.get(f"{server.api}/calls/{call['callId']}/stages")).json()["total"] < 2:
                assert time.monotonic() < deadline, "the call did not move to its second stage"
                await asyncio.sleep(0.2)
        await wire.send({"type": "hang_up"})
        await wire.closed()
    _wait_ended(server, call["callId"])
    return str(call["callId"])


async def test_the_call_page_shows_every_stage(server: RunningServer, page_for: PageFor) -> None:
    call_id = await _two_stage_call(server)
    p = _shots(await page_for(server))
    await sign_in(p)
    await p.page.evaluate("id => { location.hash = `#/calls/${id}`; }", call_id)
    stages = p.page.locator("#call-detail #call-stages li")
    await stages.nth(1).wait_for(timeout=20_000)
    assert await stages.count() == 2
    first, second = await stages.nth(0).inner_text(), await stages.nth(1).inner_text()
    assert "Stage 1" in first and "whole call" not in first and STAGE_ONE in first and "advance" in first, first
    assert "Stage 2" in second and STAGE_TWO in second and "Tools\nnone" in second.replace(":", ""), second
    ids = await stages.evaluate_all("items => items.map(li => li.dataset.stageId)")
    assert ids[0] == first_stage_id(call_id) and ids[1] != ids[0], ids
    roles = await p.page.locator("#call-detail #call-transcript li").evaluate_all("items => items.map(li => li.dataset.role)")
    assert roles[:3] == ["MESSAGE_ROLE_AGENT", "MESSAGE_ROLE_TOOL_CALL", "MESSAGE_ROLE_TOOL_RESULT"], roles
    await p.shot("11-call-stages")
    assert _errors(p) == [], p.debug()


def test_every_console_module_is_served_as_javascript(server: RunningServer) -> None:
    """An ES module served with another content type does not load at all."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for name, media in PAGE_FILES.items():
            r = http.get(f"/static/{name}")
            assert r.status_code == 200 and r.headers["content-type"] == media, name
