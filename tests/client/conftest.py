"""Fixtures for the SDK tests: a scripted WebSocket peer on 127.0.0.1 and a leaked-task check."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

WAIT = 5.0
"""Upper bound for any single wait in these tests (they normally take milliseconds)."""


class Peer:
    """A fake voxcall server end: records what the client sends, runs a script per connection.

    `script(peer, ws)` drives the conversation; the default sends `greeting`
    and then answers messages with `reply(peer, ws, message)` until the client closes.
    """

    def __init__(self, script: Callable[[Peer, ServerConnection], Awaitable[None]] | None = None) -> None:
        self.script = script or Peer.converse
        self.greeting: list[dict[str, Any]] = [
            {"type": "call_started", "callId": "call-1"},
            {"type": "state", "state": "idle"},
            {"type": "state", "state": "listening"},
        ]
        self.reply: Callable[[Peer, ServerConnection, dict[str, Any]], Awaitable[None]] | None = None
        self.received: list[str | bytes] = []
        self.path: str | None = None
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.got_message = asyncio.Condition()
        self.url = ""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Text frames the client sent, decoded."""
        return [json.loads(f) for f in self.received if isinstance(f, str)]

    @property
    def audio(self) -> bytes:
        """Binary frames the client sent, joined."""
        return b"".join(f for f in self.received if isinstance(f, bytes))

    async def handler(self, ws: ServerConnection) -> None:
        self.path = ws.request.path if ws.request else None
        self.connected.set()
        try:
            await self.script(self, ws)
        finally:
            self.closed.set()

    async def send(self, ws: ServerConnection, *messages: dict[str, Any]) -> None:
        for message in messages:
            await ws.send(json.dumps(message))

    async def converse(self, ws: ServerConnection) -> None:
        await self.send(ws, *self.greeting)
        await self.record(ws)

    async def record(self, ws: ServerConnection) -> None:
        """Store incoming frames (calling `reply` for each text one) until the client closes."""
        async for frame in ws:
            self.received.append(frame)
            async with self.got_message:
                self.got_message.notify_all()
            if isinstance(frame, str) and self.reply is not None:
                await self.reply(self, ws, json.loads(frame))

    async def wait_for(self, predicate: Callable[[Peer], bool]) -> None:
        """Wait (bounded) until `predicate(self)` holds."""
        async with asyncio.timeout(WAIT):
            async with self.got_message:
                await self.got_message.wait_for(lambda: predicate(self))

    async def wait_for_type(self, kind: str) -> dict[str, Any]:
        await self.wait_for(lambda p: any(m["type"] == kind for m in p.messages))
        return next(m for m in self.messages if m["type"] == kind)


@pytest.fixture
def peer() -> Peer:
    return Peer()


@contextlib.asynccontextmanager
async def serving(peer: Peer, query: str = "") -> AsyncIterator[str]:
    """Run `peer` on 127.0.0.1:<free port>; yields its join URL."""
    async with serve(peer.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        peer.url = f"ws://127.0.0.1:{port}/calls/call-1/server_web_socket{query}"
        yield peer.url


@pytest.fixture
async def join_url(peer: Peer) -> AsyncIterator[str]:
    async with serving(peer) as url:
        yield url


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running (STYLE.md rule 9; livekit's fail_on_leaked_tasks)."""
    before = asyncio.all_tasks()
    yield
    for _ in range(3):
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"leaked tasks: {leaked}"


@pytest.fixture
def peer_class() -> type[Peer]:
    """The `Peer` class, for tests that script their own peer."""
    return Peer


@pytest.fixture
def serve_peer() -> Callable[..., contextlib.AbstractAsyncContextManager[str]]:
    """`serving(peer, query="")`: run a peer, yield its join URL."""
    return serving
