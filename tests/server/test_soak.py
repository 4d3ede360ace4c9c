"""SOAK (about 60-70 s, part of the normal test run): a bounded fuzz of one live call on a real server.

For SOAK_SECONDS one call of the `server` fixture (SmolLM2) gets, in turns: hypothesis-generated
JSON, mutated valid messages, random binary frames, oversized and deeply nested frames, and
floods of mixed frames as fast as the socket takes them. Then the server must still be running,
the call must answer a ping and a question, every frame the server wrote must be strict JSON,
and the server's resident memory must have grown by less than MAX_RSS_GROWTH_MB.
Nothing here may end the call: frames that parse as hang_up (or switch to voice) are never sent.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import RunningServer
from tests.server.wire import create_call, get
from voxcall.errors import ProtocolError
from voxcall.protocol.realtime import HangUp, SetOutputMedium, parse_client

pytestmark = pytest.mark.soak

SOAK_SECONDS = 50.0
PHASE_SECONDS = 5.0
MAX_RSS_GROWTH_MB = 150
APOLOGY = "Sorry, I ran into a problem. Could you say that again?"
VALID = [
    {"type": "user_text_message", "text": "Remember the number seven.", "urgency": "later"},
    {"type": "user_text_message", "text": "What did I say?", "urgency": "soon"},
    {"type": "input_text_message", "text": "Noted.", "deferResponse": True},
    {"type": "ping", "timestamp": 1234.5},
    {"type": "set_output_medium", "medium": "text"},
    {"type": "client_tool_result", "invocationId": "nope", "result": "{\"ok\":true}", "agentReaction": "speaks"},
    {"type": "forced_agent_message", "content": "One moment.", "urgency": "soon"},
]
TYPES = sorted({m["type"] for m in VALID} | {"unknown_type", "hang_up_later", ""})


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def server_pid(server: RunningServer) -> int:
    assert server.process is not None, "the server fixture exposes its process"
    return server.process.pid


def harmless(frame: str | bytes) -> bool:
    """False for frames that would legitimately end the call or turn on speech synthesis."""
    if isinstance(frame, bytes):
        return True
    try:
        message = parse_client(frame)
    except ProtocolError:
        return True
    return not isinstance(message, HangUp) and not (isinstance(message, SetOutputMedium) and message.medium == "voice")


class Reader(threading.Thread):
    """Reads every server frame; text frames must be strict JSON. Keeps counts and the recent tail only."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.recent: deque[dict[str, Any]] = deque(maxlen=2000)
        self.invalid: list[str] = []
        self.counts: dict[str, int] = {}
        self.closed: str | None = None
        self.lock = threading.Lock()

    def run(self) -> None:
        try:
            for frame in self.ws:
                if isinstance(frame, str):
                    self._take(frame)
        except ConnectionClosed as exc:
            self.closed = repr(exc)
        else:
            self.closed = "closed"

    def _take(self, frame: str) -> None:
        def refuse(constant: str) -> None:
            raise ValueError(constant)

        try:
            message = json.loads(frame, parse_constant=refuse)
        except ValueError:
            self.invalid.append(frame[:200])
            return
        with self.lock:
            self.recent.append(message)
            self.counts[message["type"]] = self.counts.get(message["type"], 0) + 1

    def settle(self, timeout: float) -> None:
        """Wait until the agent's latest state has been `listening` for a second, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        calm_since = None
        while time.monotonic() < deadline:
            with self.lock:
                state = next((m["state"] for m in reversed(self.recent) if m["type"] == "state"), None)
            calm_since = (calm_since or time.monotonic()) if state == "listening" else None
            if calm_since is not None and time.monotonic() - calm_since >= 1.0:
                return
            time.sleep(0.1)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = next((m for m in reversed(self.recent) if predicate(m)), None)
            if found is not None:
                return found
            assert self.closed is None, f"the server closed the call: {self.closed}"
            time.sleep(0.05)
        raise AssertionError("timed out waiting for a server message")


# ------------------------------------------------------------ frame sources

JSON_LEAVES = (st.none() | st.booleans() | st.integers() | st.floats()  # NaN and infinities included
               | st.text(alphabet=st.characters(categories=["L", "N", "P", "Z", "Cc", "Cs"]), max_size=40))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=25)
MESSAGES = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={"text": JSON_VALUES, "urgency": st.sampled_from(["immediate", "soon", "later", "now"]) | JSON_VALUES,
              "timestamp": JSON_VALUES, "invocationId": JSON_VALUES, "result": JSON_VALUES, "content": JSON_VALUES,
              "medium": st.just("text") | JSON_VALUES, "deferResponse": JSON_VALUES, "toolCalls": JSON_VALUES},
)
FRAMES = MESSAGES.map(json.dumps) | JSON_VALUES.map(json.dumps) | st.text(max_size=100)


def hypothesis_json(ws: ClientConnection, until: float) -> None:
    @settings(max_examples=200, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(frame=FRAMES)
    def send(frame: str) -> None:
        if harmless(frame):
            ws.send(frame)

    while time.monotonic() < until:
        send()


def mutated(ws: ClientConnection, until: float, rng: random.Random) -> None:
    values: list[Any] = [None, "", "\ud800", [], {}, 10**30, -1, True, "x" * 5000, {"a": [1, {"b": None}]}]
    while time.monotonic() < until:
        message = dict(rng.choice(VALID))
        key = rng.choice(sorted(message))
        action = rng.randrange(5)
        if action == 0:
            message.pop(key)
        elif action == 1:
            message[key] = rng.choice(values)
        text = json.dumps(message)
        if action == 2:
            text = text.replace(json.dumps(message[key]), rng.choice(["NaN", "1e309", "-Infinity", '"\\udfff"', "[[[[]]]]"]), 1)
        elif action == 3:
            text = text[: rng.randrange(len(text))]
        elif action == 4:
            at = rng.randrange(len(text))
            text = text[:at] + chr(rng.randrange(32, 0x2FFF)) + text[at + 1:]
        if harmless(text):
            ws.send(text)


def binary(ws: ClientConnection, until: float, rng: random.Random) -> None:
    while time.monotonic() < until:
        ws.send(os.urandom(rng.choice([0, 1, 3, 320, 641, 4000])))


def oversized_and_nested(ws: ClientConnection, until: float, rng: random.Random) -> None:
    while time.monotonic() < until:
        kind = rng.randrange(4)
        if kind == 0:
            ws.send(json.dumps({"type": "user_text_message", "text": "y" * rng.choice([70_000, 300_000, 1_000_000])}))
        elif kind == 1:
            depth = rng.choice([65, 1000, 30_000])
            ws.send('{"type":"ping","timestamp":1,"x":' + "[" * depth + "]" * depth + "}")
        elif kind == 2:
            ws.send("{\"a\":" * 40_000 + "0" + "}" * 40_000)  # deep and oversized
        else:
            ws.send(json.dumps({"type": "user_text_message", "text": "z" * 60_000, "urgency": "later"}))  # large but valid


def flood(ws: ClientConnection, until: float, rng: random.Random) -> None:
    frames: list[str | bytes] = [json.dumps(m) for m in VALID] + ["{bad", "[1]", b"\x00\x01" * 160, b"\x07"]
    while time.monotonic() < until:
        for _ in range(200):
            ws.send(rng.choice(frames))


# ----------------------------------------------------------------- the soak


def test_fuzz_soak_leaves_the_server_and_the_call_alive(server: RunningServer) -> None:
    body = {"firstSpeakerSettings": {"user": {}}, "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
            "medium": {"serverWebSocket": {"inputSampleRate": 16000}}}
    call = create_call(server, body)
    rng = random.Random(8)
    with connect(call["joinUrl"] + "&experimentalMessages=debug", max_size=None, open_timeout=30) as ws:
        reader = Reader(ws)
        reader.start()
        reader.wait_for(lambda m: m == {"type": "state", "state": "listening"}, 30)
        baseline = peak = rss_mb(server_pid(server))
        phases = [lambda u: hypothesis_json(ws, u), lambda u: mutated(ws, u, rng), lambda u: binary(ws, u, rng),
                  lambda u: oversized_and_nested(ws, u, rng), lambda u: flood(ws, u, rng)]
        deadline = time.monotonic() + SOAK_SECONDS
        while time.monotonic() < deadline:
            for phase in phases:
                phase(min(deadline, time.monotonic() + PHASE_SECONDS))
                peak = max(peak, rss_mb(server_pid(server)))
        fuzzed = time.monotonic()
        reader.settle(60)  # let the agent finish what the flood asked of it (bounded: it may still be busy)
        ws.send(json.dumps({"type": "ping", "timestamp": 424242.5}))
        reader.wait_for(lambda m: m == {"type": "pong", "timestamp": 424242.5}, 30)
        question = "Hello! Please say something."
        ws.send(json.dumps({"type": "user_text_message", "text": question, "urgency": "immediate"}))
        asked = reader.wait_for(lambda m: m.get("type") == "transcript" and m.get("text") == question, 30)
        reply = reader.wait_for(lambda m: m.get("type") == "transcript" and m["role"] == "agent" and m["final"]
                                and m["ordinal"] > asked["ordinal"], 150)
        peak = max(peak, rss_mb(server_pid(server)))
        print(f"\nsoak: fuzzed {SOAK_SECONDS:.0f} s, then settled and answered in {time.monotonic() - fuzzed:.1f} s; "
              f"RSS {baseline:.0f} MB -> peak {peak:.0f} MB; server frames {reader.counts}")
        assert reply["text"] and reply["text"] != APOLOGY
        assert reader.invalid == [], "the server wrote frames that are not strict JSON"
        assert peak - baseline < MAX_RSS_GROWTH_MB
        assert get(server, f"/calls/{call['callId']}")["endReason"] is None  # the call is still live
        events = httpx.get(f"{server.api}/calls/{call['callId']}/events", headers=server.headers(),
                           params={"type": "rate_limited", "minimum_severity": "warning"}, timeout=30).json()
        assert events["total"] > 0  # the floods were rate limited, and it was recorded
    assert httpx.get(f"{server.api}/accounts/me", headers=server.headers(), timeout=30).status_code == 200
