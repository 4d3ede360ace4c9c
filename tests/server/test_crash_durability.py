"""Durability (issue 8): what the client was told survives a SIGKILL, and a restart ends the orphaned call.

A real `voxcall serve` (SmolLM2, text medium, no speech models) is killed with
SIGKILL the moment the client receives a final transcript; a new server starts
on the same data directory (SQLite) or database (PostgreSQL). Every final the
client saw must be in `/messages`, in order, and the call must be ended as
`system_error`.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import websockets

from tests.conftest import RunningServer, create_database
from tests.server.wire import Wire, create_call, get

TRIALS = 5
TEXT_ONLY = {"VOXCALL_SPEECH": "false"}  # text calls need no speech models: restarts stay quick
# Finals that need no generation (a fixed greeting, typed text, forced messages), so trials take
# seconds even on a loaded machine; they take the same path to the wire as generated replies.
CALL = {"systemPrompt": "You are brief.", "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
        "firstSpeakerSettings": {"agent": {"text": "Hello, this is the test line."}}}


def finals(wire: Wire) -> list[tuple[str, str]]:
    return [(m["role"], m["text"]) for m in wire.of("transcript") if m["final"]]


async def one_trial(server: RunningServer, trial: int) -> tuple[str, list[tuple[str, str]]]:
    """Kill the server the moment the client gets the agent's final number `trial % 3` (0 = the greeting)."""
    call = create_call(server, CALL)
    assert server.process is not None
    async with websockets.connect(call["joinUrl"], close_timeout=1) as ws:
        wire = Wire(ws)
        await wire.agent_final(timeout=30)
        for turn in range(trial % 3):
            await wire.send({"type": "user_text_message", "text": f"Note {trial}.{turn}", "deferResponse": True})
            await wire.send({"type": "forced_agent_message", "content": f"Noted {trial}.{turn}."})
            await wire.agent_final(timeout=30)
        server.process.send_signal(signal.SIGKILL)  # at once: no await between the final and the kill
        server.process.wait(timeout=10)
    return call["callId"], finals(wire)


def recorded(server: RunningServer, call_id: str) -> list[tuple[str, str]]:
    roles = {"MESSAGE_ROLE_USER": "user", "MESSAGE_ROLE_AGENT": "agent"}
    messages: list[dict[str, Any]] = get(server, f"/calls/{call_id}/messages?pageSize=100")["results"]
    return [(roles[m["role"]], m["text"]) for m in messages if m["role"] in roles]


async def test_sigkill_after_a_final_transcript_loses_nothing_and_restart_ends_the_call(server_factory: Any) -> None:
    server: RunningServer = server_factory(extra_env=TEXT_ONLY)
    for trial in range(TRIALS):
        call_id, seen = await one_trial(server, trial)
        assert len(seen) == 2 * (trial % 3) + 1
        server = server_factory(extra_env=TEXT_ONLY, restart=server)
        assert recorded(server, call_id) == seen, f"trial {trial}: a final the client saw was not saved"
        call = get(server, f"/calls/{call_id}")
        assert call["endReason"] == "system_error" and call["ended"], f"trial {trial}: {call['endReason']}"
    server.process.terminate()  # type: ignore[union-attr]


async def test_sigkill_on_postgres_and_restart(server_factory: Any) -> None:
    """PostgreSQL: the dead server's advisory lock goes with its connection, so the restart ends its call."""
    url = os.environ.get("VOXCALL_TEST_POSTGRES_URL")
    assert url, "VOXCALL_TEST_POSTGRES_URL is not set: run scripts/test-services.sh (make test does)"
    env = {**TEXT_ONLY, "VOXCALL_DATABASE_URL": await create_database(url, "voxcall_crash")}
    server: RunningServer = server_factory(extra_env=env)
    call_id, seen = await one_trial(server, 1)
    server = server_factory(extra_env=env, restart=server)
    assert recorded(server, call_id) == seen
    assert get(server, f"/calls/{call_id}")["endReason"] == "system_error"
    server.process.terminate()  # type: ignore[union-attr]
