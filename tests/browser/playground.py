"""Steps on the console page, done the way a user does them (labels, roles, keyboard)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import RunningServer

LIVE = ["listening", "thinking", "speaking"]
TRANSCRIPTS = "#transcripts li"


class Page:
    """A Playwright page plus what the tests read off it: console lines and WebSocket text frames."""

    def __init__(self, page: Any, server: RunningServer, artifacts: Path, name: str) -> None:
        self.page = page
        self.server = server
        self.artifacts = artifacts
        self.name = name
        self.console: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.on("websocket", self._socket)

    def _socket(self, ws: Any) -> None:
        ws.on("framesent", lambda payload: self._frame(self.sent, payload))
        ws.on("framereceived", lambda payload: self._frame(self.received, payload))

    @staticmethod
    def _frame(into: list[dict[str, Any]], payload: str | bytes) -> None:
        if isinstance(payload, str):
            into.append(json.loads(payload))

    def of(self, direction: str, type_: str) -> list[dict[str, Any]]:
        """Text frames of one message type, "sent" by the page or "received" from the server."""
        return [m for m in (self.sent if direction == "sent" else self.received) if m.get("type") == type_]

    async def shot(self, label: str) -> Path:
        path = self.artifacts / f"{label}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    def debug(self) -> str:
        """Context for a failed assertion: the page's console and the server log's tail."""
        log = self.server.log.read_text(errors="replace")[-3000:] if self.server.log.exists() else ""
        return "\n--- console ---\n" + "\n".join(self.console[-40:]) + "\n--- server log ---\n" + log


async def sign_in(p: Page) -> None:
    """Paste the server's key and sign in."""
    await p.page.get_by_label("API key").fill(p.server.api_key)
    await p.page.get_by_role("button", name="Sign in").click()
    await p.page.get_by_role("heading", name="New call").wait_for()


async def start_call(
    p: Page,
    *,
    first_speaker: str = "user",
    medium: str = "text",
    recording: bool = False,
    prompt: str | None = None,
    greeting: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    timeout: float = 60_000,
) -> dict[str, Any]:
    """Fill the new-call form, start the call, wait until it is live; returns the Call resource."""
    page = p.page
    form = page.locator("#call-form")  # the agent and tool pages have fields of the same names
    if prompt is not None:
        await form.get_by_label("System prompt").fill(prompt)
    await form.get_by_label("First speaker").select_option(first_speaker)
    await form.get_by_label("Agent replies as").select_option(medium)
    if greeting is not None:
        await form.get_by_label("Agent's greeting").fill(greeting)
    if recording:
        await form.get_by_label("Record the call").check()
    if tools is not None:
        await form.get_by_label("Tools").fill(json.dumps(tools))
    await form.get_by_role("button", name="Start call").click()
    await wait_status(p, *LIVE, timeout=timeout)
    call: dict[str, Any] = await page.evaluate("() => window.voxcall.call")
    return call


async def wait_status(p: Page, *statuses: str, timeout: float = 30_000) -> None:
    await p.page.wait_for_function("(s) => s.includes(window.voxcall.session?.status)", arg=list(statuses), timeout=timeout)


async def transcripts(p: Page) -> list[dict[str, Any]]:
    """What the page shows: one entry per utterance."""
    rows: list[dict[str, Any]] = await p.page.eval_on_selector_all(
        TRANSCRIPTS,
        """items => items.map(li => ({speaker: li.dataset.speaker, final: li.dataset.final === 'true',
                medium: li.dataset.medium, ordinal: Number(li.dataset.ordinal), text: li.querySelector('.text').textContent}))""",
    )
    return rows


async def wait_final(p: Page, speaker: str, *, after: int = 0, medium: str | None = None, timeout: float = 60_000) -> dict[str, Any]:
    """Wait for the page to show more than `after` final utterances of `speaker`; returns the newest."""
    selector = f'{TRANSCRIPTS}[data-speaker="{speaker}"][data-final="true"]' + (f'[data-medium="{medium}"]' if medium else "")
    await p.page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length > n", arg=[selector, after], timeout=timeout)
    rows = [r for r in await transcripts(p) if r["speaker"] == speaker and r["final"] and (medium is None or r["medium"] == medium)]
    return rows[-1]


async def stats(p: Page) -> dict[str, Any]:
    """The SDK's counters (`session.stats`, the test hook)."""
    result: dict[str, Any] = await p.page.evaluate("() => window.voxcall.session.stats")
    return result


async def wait_stat(p: Page, name: str, above: float, *, timeout: float = 30_000) -> dict[str, Any]:
    await p.page.wait_for_function("([k, v]) => window.voxcall.session.stats[k] > v", arg=[name, above], timeout=timeout)
    return await stats(p)
