"""Two real nodes on one PostgreSQL and one Redis, behind a real nginx, all on loopback.

A call created on node A and joined through nginx on node B is reached from node A
(send_data_message, DELETE); limits hold across the nodes; a node killed during a
call has the call ended by the other within 15 s; a node sent SIGTERM refuses new joins
(1013, so they go elsewhere), lets its live call go on for VOXCALL_DRAIN_SECONDS and then
ends it (1012), with every final transcript stored. The nginx configuration is the one
in docs/deploy.md, with the test's addresses put in.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.cluster.conftest import service_url
from tests.conftest import ROOT, RunningServer, free_port
from tests.conftest import fresh_database as shared_fresh_database
from tests.server.wire import Wire

TEXT_CALL = {"systemPrompt": "Be brief.", "firstSpeakerSettings": {"user": {}}, "initialOutputMedium": "MESSAGE_MEDIUM_TEXT"}


def nginx_config(prefix: Path, port: int, upstreams: list[str]) -> str:
    """docs/deploy.md's nginx block with these addresses, inside a foreground nginx's main and http contexts."""
    docs = (ROOT / "docs" / "deploy.md").read_text()
    block = re.search(r"```nginx\n(.*?)```", docs, re.DOTALL)
    assert block, "docs/deploy.md has no ```nginx block"
    body = block.group(1).replace("listen 80;", f"listen 127.0.0.1:{port};")
    body = body.replace("server 10.0.0.11:8000;", f"server {upstreams[0]};").replace("server 10.0.0.12:8000;", f"server {upstreams[1]};")
    assert all(u in body for u in upstreams), "the upstream addresses in docs/deploy.md changed"
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temporary folders
    return (f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n"
            f"events {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n{temp}\n{body}}}\n")


@dataclass
class Cluster:
    a: RunningServer
    b: RunningServer
    lb: str
    start: Any = None
    """`start(node_id, **env)`: one more node on the same database and Redis (not behind nginx)."""

    def client(self, node: RunningServer) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=node.api, headers=self.a.headers(), timeout=30)  # one account, any node


def fresh_database(url: str) -> str:
    return shared_fresh_database(url, "voxcall_cluster")


@pytest.fixture(scope="module")
def cluster(server_factory: Any, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    database = fresh_database(service_url("VOXCALL_TEST_POSTGRES_URL", "test-services.sh"))
    subprocess.run(["bash", str(ROOT / "scripts" / "nginx.sh")], check=True, timeout=600)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    lb = f"http://127.0.0.1:{port}"
    env = {"VOXCALL_REDIS_URL": redis_url, "VOXCALL_PUBLIC_URL": lb, "VOXCALL_SPEECH": "false",
           "VOXCALL_NODE_HEARTBEAT_SECONDS": "1", "VOXCALL_STALE_CALL_SECONDS": "2", "VOXCALL_MAX_CALLS": "2",
           "VOXCALL_DRAIN_SECONDS": "0"}
    a = server_factory(database_url=database, extra_env={**env, "VOXCALL_NODE_ID": "node-a"})
    b = server_factory(database_url=database, extra_env={**env, "VOXCALL_NODE_ID": "node-b"})

    def start(node_id: str, **more: str) -> RunningServer:
        return server_factory(database_url=database, extra_env={**env, "VOXCALL_NODE_ID": node_id, **more})
    prefix = tmp_path_factory.mktemp("nginx")
    (prefix / "nginx.conf").write_text(nginx_config(prefix, port, [a.url.removeprefix("http://"), b.url.removeprefix("http://")]))
    log = (prefix / "stderr.log").open("wb")
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"nginx exited: {(prefix / 'error.log').read_text()[-2000:]}"
            try:
                if httpx.get(f"{lb}/api/accounts/me", headers=a.headers(), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.2)
        yield Cluster(a, b, lb, start)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


async def live_calls(node: RunningServer) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        return int((await client.get(f"{node.url}/readyz")).json()["load"]["liveCalls"])


async def join_on_b(cluster: Cluster) -> tuple[dict[str, Any], Wire]:
    """Create a call on node A and join it through nginx until the join lands on node B (round robin)."""
    async with cluster.client(cluster.a) as api:
        for _ in range(4):
            r = await api.post("/calls", json=TEXT_CALL)
            assert r.status_code == 201, r.text
            call = r.json()
            assert call["joinUrl"].startswith(cluster.lb.replace("http://", "ws://"))
            ws = await websockets.connect(call["joinUrl"])
            wire = Wire(ws)
            await wire.until(lambda m: m == {"type": "state", "state": "listening"})
            if await live_calls(cluster.b) == 1:
                return call, wire
            await wire.send({"type": "hang_up"})  # it landed on A: hang up and join the next through nginx
            assert await wire.closed() == 1000
            await ws.close()
    raise AssertionError("nginx never sent a join to node B")


async def wait_ended(api: httpx.AsyncClient, call_id: str, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            call = (await api.get(f"/calls/{call_id}")).json()
            if call["endReason"]:
                return call  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)


async def test_both_nodes_are_ready_and_report_their_redis_and_node(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for node, name in ((cluster.a, "node-a"), (cluster.b, "node-b")):
            body = (await client.get(f"{node.url}/readyz")).json()
            assert body["ready"] and body["checks"]["redis"] == "ok" and body["load"]["node"] == name
        assert (await client.get(f"{cluster.lb}/metrics")).status_code == 404  # not on the public side


async def test_a_call_on_node_b_is_reached_from_node_a_and_limits_hold_across_nodes(cluster: Cluster) -> None:
    call, wire = await join_on_b(cluster)
    async with cluster.client(cluster.a) as a, cluster.client(cluster.b) as b:
        r = await a.post(f"/calls/{call['callId']}/send_data_message", json={"type": "forced_agent_message", "content": "Sent via node A."})
        assert r.status_code == 204, r.text
        assert (await wire.agent_final())["text"] == "Sent via node A."
        # One slot of VOXCALL_MAX_CALLS=2 is taken: two creations at once, one per node, and exactly one passes.
        results = await asyncio.gather(a.post("/calls", json=TEXT_CALL), b.post("/calls", json=TEXT_CALL))
        assert sorted(r.status_code for r in results) == [201, 429], [r.text for r in results]
        assert "allowedConcurrentCalls" in next(r for r in results if r.status_code == 429).json()["detail"]
        assert (await b.get("/accounts/me")).json()["activeCalls"] == 2
        created = next(r for r in results if r.status_code == 201).json()
        assert (await b.delete(f"/calls/{created['callId']}")).status_code == 204
        assert (await a.delete(f"/calls/{call['callId']}")).status_code == 204  # ends the live call on node B
        assert await wire.closed() == 1000
        assert (await a.get(f"/calls/{call['callId']}")).status_code == 404
    await wire.ws.close()


def ws_url(node: RunningServer, join_url: str, lb: str) -> str:
    """The join URL (which points at the load balancer) sent straight to `node`."""
    return join_url.replace(lb.replace("http://", "ws://"), node.url.replace("http://", "ws://"))


def finals(wire: Wire) -> list[str]:
    return [m["text"] for m in wire.of("transcript") if m["final"]]


async def test_sigterm_drains_a_node_joins_go_elsewhere_and_the_live_call_ends_with_1012(cluster: Cluster) -> None:
    drain = 6.0
    c = cluster.start("node-c", VOXCALL_DRAIN_SECONDS=str(drain))
    async with cluster.client(cluster.a) as a:
        live = (await a.post("/calls", json=TEXT_CALL)).json()
        wire = Wire(await websockets.connect(ws_url(c, live["joinUrl"], cluster.lb)))
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "Say hello."})
        await wire.agent_final()
        assert c.process is not None
        c.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        async with asyncio.timeout(10), httpx.AsyncClient(timeout=5) as probe:
            while (await probe.get(f"{c.url}/readyz")).json()["checks"]["draining"] == "no":
                await asyncio.sleep(0.05)
        later = (await a.post("/calls", json=TEXT_CALL)).json()
        refused = Wire(await websockets.connect(ws_url(c, later["joinUrl"], cluster.lb)))
        assert await refused.closed() == 1013 and refused.ws.close_reason == "server shutting down: try again later"
        assert (await a.get(f"/calls/{later['callId']}")).json()["joined"] is None  # the token is still good
        elsewhere = Wire(await websockets.connect(ws_url(cluster.a, later["joinUrl"], cluster.lb)))
        await elsewhere.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "And goodbye."})  # the draining node still serves its call
        await wire.agent_final()
        assert await wire.closed(timeout=drain + 10) == 1012 and wire.ws.close_reason == "server shutting down"
        assert time.monotonic() - signalled >= drain - 0.5
        ended = await wait_ended(a, live["callId"], 10)
        assert ended["endReason"] == "system_error"
        stored = [m["text"] for m in (await a.get(f"/calls/{live['callId']}/messages")).json()["results"]]
        seen = finals(wire)
        assert len(seen) == 4 and all(text in stored for text in seen), (seen, stored)  # two user, two agent finals
        await elsewhere.send({"type": "hang_up"})
        assert await elsewhere.closed() == 1000
        assert c.process.wait(timeout=30) is not None
    await wire.ws.close()
    await elsewhere.ws.close()


async def test_a_call_on_a_killed_node_is_ended_by_the_other_within_15_s(cluster: Cluster) -> None:
    call, wire = await join_on_b(cluster)
    async with cluster.client(cluster.a) as a:
        cluster.b.stop(kill=True)
        killed = time.monotonic()
        ended = await wait_ended(a, call["callId"], 15)
        assert ended["endReason"] == "system_error" and time.monotonic() - killed < 15
        events = (await a.get(f"/calls/{call['callId']}/events", params={"minimum_severity": "error"})).json()["results"]
        assert [e["type"] for e in events] == ["host_lost"]
    await wire.ws.close()
