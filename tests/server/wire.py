"""A tiny raw-wire client for server tests: JSON frames in and out, bounded waits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import RunningServer


class Wire:
    """One joined call, seen as raw JSON messages."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        """Read messages until one matches; returns it (all are kept in `seen`)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.recv()
                if isinstance(frame, bytes):
                    continue
                message = json.loads(frame)
                self.seen.append(message)
                if predicate(message):
                    return message

    async def agent_final(self, timeout: float = 60) -> dict[str, Any]:
        return await self.until(lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"], timeout)

    async def closed(self, timeout: float = 10) -> int | None:
        """Read until the server closes; returns the close code."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    frame = await self.ws.recv()
                    if isinstance(frame, str):
                        self.seen.append(json.loads(frame))
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.seen if m["type"] == kind]


def create_call(server: RunningServer, body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    r = httpx.post(f"{server.api}/calls", json=body or {}, params=params, headers=server.headers(), timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def get(server: RunningServer, path: str) -> Any:
    r = httpx.get(f"{server.api}{path}", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


async def wait_for_end(server: RunningServer, call_id: str, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            call = get(server, f"/calls/{call_id}")
            if call["endReason"]:
                return call  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)
