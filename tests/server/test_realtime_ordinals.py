"""Transcript ordinals on a real server (PROTOCOL.md 2.7): the user types while the agent greets.

The SDKs keep transcripts in an array indexed by ordinal, so whatever the
interleaving, the ordinals must be dense from 0 and ascend in the order they
first appear, each with one final, and `/messages` must list them in that order.
"""

from __future__ import annotations

from typing import Any

import websockets

from tests.conftest import RunningServer
from tests.server.wire import Wire, create_call, get


def check_ordinals(wire: Wire) -> list[dict[str, Any]]:
    """The client's view is well formed; returns the finals in ordinal order."""
    transcripts = wire.of("transcript")
    first_seen: list[int] = []
    for m in transcripts:
        assert ("text" in m) != ("delta" in m) and (m.get("text") or m.get("delta")), m
        if m["ordinal"] not in first_seen:
            first_seen.append(m["ordinal"])
    assert first_seen == list(range(len(first_seen))), f"ordinals in order of first appearance: {first_seen}"
    finals = [m for m in transcripts if m["final"]]
    assert sorted(f["ordinal"] for f in finals) == first_seen, "one final per ordinal"
    return sorted(finals, key=lambda f: f["ordinal"])


def recorded(server: RunningServer, call_id: str) -> list[tuple[str, str]]:
    roles = {"MESSAGE_ROLE_USER": "user", "MESSAGE_ROLE_AGENT": "agent"}
    messages = get(server, f"/calls/{call_id}/messages")["results"]
    return [(roles[m["role"]], m["text"]) for m in messages if m["role"] in roles]


async def test_text_typed_right_after_joining_during_a_generated_greeting(server: RunningServer) -> None:
    call = create_call(server, {"systemPrompt": "You are brief.", "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
                                "firstSpeakerSettings": {"agent": {"prompt": "Greet the user with one word."}}})
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m["type"] == "call_started")
        await wire.send({"type": "user_text_message", "text": "I am typing during the greeting.", "deferResponse": True})
        await wire.agent_final(timeout=120)
        if not any(m["role"] == "user" for m in wire.of("transcript")):
            await wire.until(lambda m: m["type"] == "transcript" and m["role"] == "user")
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    finals = check_ordinals(wire)
    assert sorted(f["role"] for f in finals) == ["agent", "user"]
    assert recorded(server, call["callId"]) == [(f["role"], f["text"]) for f in finals]


async def test_text_typed_while_a_spoken_greeting_is_on_the_wire_comes_after_it(server: RunningServer) -> None:
    greeting = "Hello and welcome to the ordinal test line. How can I help you today?"
    call = create_call(server, {"systemPrompt": "You are brief.", "firstSpeakerSettings": {"agent": {"text": greeting}}})
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        first = await wire.until(lambda m: m["type"] == "transcript", timeout=60)
        assert first["role"] == "agent" and not first["final"]
        await wire.send({"type": "user_text_message", "text": "Typed mid-greeting.", "deferResponse": True})
        await wire.until(lambda m: m["type"] == "transcript" and m["role"] == "user", timeout=60)
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    finals = check_ordinals(wire)
    assert [(f["role"], f["ordinal"]) for f in finals] == [("agent", 0), ("user", 1)]
    transcripts = wire.of("transcript")
    assert transcripts.index(finals[0]) + 1 == transcripts.index(finals[1])  # held until the greeting's final
    assert recorded(server, call["callId"]) == [("agent", finals[0]["text"]), ("user", "Typed mid-greeting.")]
