"""/healthz, /readyz, /metrics and the node's call capacity, in-process on a loopback port."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.server.inprocess import build_services, serving
from tests.server.test_host import TEXT_USER_FIRST, close_of, messages_until
from voxcall.engine.spec import EventRecord, Speech
from voxcall.protocol.rest import CallMessage
from voxcall.providers.base import TextDelta
from voxcall.providers.fake import EnergyVAD, ScriptedLLM, ScriptedSTT, ToneTTS
from voxcall.providers.workers import FairWorker, Job
from voxcall.server.capacity import NodeCapacity
from voxcall.server.metrics import CallMetrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


def test_turn_latency_events_fill_the_stage_histograms_and_errors_and_drops_are_counted() -> None:
    metrics = CallMetrics()
    stages = {"endpointMs": 300, "transcriptMs": 120, "firstTokenMs": 250, "firstAudioMs": 80, "totalMs": 750}
    metrics.recorded(EventRecord("turn_latency", "Turn latency: ...", "info", 1.0, stages))
    metrics.recorded(EventRecord("turn_latency", "Turn latency: ...", "info", 2.0, {**stages, "totalMs": 4000}))
    metrics.recorded(EventRecord("audio_overflow", "dropped", "warning"))
    metrics.recorded(EventRecord("inbox_overflow", "Dropped 1 client messages", "error", 0.0, {"dropped": 1}))
    metrics.recorded(CallMessage(role="MESSAGE_ROLE_USER", text="hi"))
    metrics.recorded(CallMessage(role="MESSAGE_ROLE_AGENT", text="hello"))
    metrics.recorded(CallMessage(role="MESSAGE_ROLE_TOOL_RESULT", text="{}"))
    metrics.ended("hangup")
    got = samples(metrics.render().decode())
    assert got[("voxcall_turn_stage_seconds_count", (("stage", "endpoint"),))] == 2
    assert got[("voxcall_turn_stage_seconds_sum", (("stage", "total"),))] == 4.75
    assert got[("voxcall_turn_stage_seconds_bucket", (("le", "1.0"), ("stage", "total")))] == 1
    assert got[("voxcall_audio_overflows_total", ())] == 1
    assert got[("voxcall_dropped_total", (("what", "client_messages"),))] == 1
    assert got[("voxcall_call_errors_total", (("type", "inbox_overflow"),))] == 1
    assert got[("voxcall_turns_total", (("role", "user"),))] == 1 and got[("voxcall_turns_total", (("role", "agent"),))] == 1
    assert got[("voxcall_calls_ended_total", (("end_reason", "hangup"),))] == 1


def test_capacity_refuses_at_the_call_count_and_above_the_cpu_load_and_frees_slots() -> None:
    load = [0.2]
    capacity = NodeCapacity(max_calls=2, max_load=0.8, load=lambda: load[0])
    with capacity.slot():
        assert capacity.refusal() is None
        with capacity.slot():
            refusal = capacity.refusal()
            assert refusal is not None and "VOXCALL_MAX_NODE_CALLS=2" in refusal and len(refusal.encode()) <= 123
        assert capacity.refusal() is None
        load[0] = 0.95
        refusal = capacity.refusal()
        assert refusal is not None and "0.95" in refusal and "VOXCALL_MAX_NODE_LOAD" in refusal
    assert capacity.hosting == 0
    assert NodeCapacity().refusal() is None  # no limits set: never refuses
    assert capacity.report() == {"calls": 0, "maxCalls": 2, "cpuLoad": 0.95, "maxCpuLoad": 0.8}


async def test_health_readiness_and_metrics_of_a_call(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([[TextDelta("Hi there.")]]))
    async with serving(svc) as srv, httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{srv.url}/healthz")).json() == {"status": "ok"}
        ready = (await client.get(f"{srv.url}/readyz")).json()
        assert ready["ready"] is True and ready["checks"]["database"] == "ok" and ready["checks"]["redis"] == "not configured"
        assert ready["load"]["liveCalls"] == 0 and ready["load"]["maxCalls"] is None
        call = await srv.create_call(TEXT_USER_FIRST)
        async with websockets.connect(call["joinUrl"]) as ws:
            await messages_until(ws, lambda m: m == {"type": "state", "state": "listening"})
            assert (await scrape(srv.url))[("voxcall_live_calls", ())] == 1
            assert (await client.get(f"{srv.url}/readyz")).json()["load"]["liveCalls"] == 1
            await ws.send(json.dumps({"type": "user_text_message", "text": "Hello"}))
            await messages_until(ws, lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"])
            await ws.send(json.dumps({"type": "hang_up"}))
            await close_of(ws)
        got = await scrape(srv.url)
        for _ in range(100):  # the host unregisters the call just after it closed the socket
            if got[("voxcall_live_calls", ())] == 0:
                break
            await asyncio.sleep(0.05)
            got = await scrape(srv.url)
        assert got[("voxcall_live_calls", ())] == 0
        assert got[("voxcall_turns_total", (("role", "agent"),))] == 1 and got[("voxcall_turns_total", (("role", "user"),))] == 1
        assert got[("voxcall_calls_ended_total", (("end_reason", "hangup"),))] == 1
        svc.draining = True
        r = await client.get(f"{srv.url}/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False and r.json()["checks"]["draining"].startswith("yes")
        assert (await client.get(f"{srv.url}/healthz")).status_code == 200  # alive while draining
        svc.draining = False


async def test_readiness_fails_when_the_database_is_unreachable(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]))
    async with serving(svc) as srv, httpx.AsyncClient(timeout=10) as client:
        healthy = svc.store.ping

        async def broken() -> None:
            raise ConnectionRefusedError("database down")

        svc.store.ping = broken  # type: ignore[method-assign]
        r = await client.get(f"{srv.url}/readyz")
        assert r.status_code == 503 and r.json()["checks"]["database"] == "unreachable: ConnectionRefusedError"
        svc.store.ping = healthy  # type: ignore[method-assign]
        assert (await client.get(f"{srv.url}/readyz")).status_code == 200


async def test_a_full_node_refuses_joins_with_1013_reports_it_and_the_token_stays_usable(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]), max_node_calls=1)
    async with serving(svc) as srv, httpx.AsyncClient(timeout=10) as client:
        first, second = await srv.create_call(TEXT_USER_FIRST), await srv.create_call(TEXT_USER_FIRST)
        async with websockets.connect(first["joinUrl"]) as ws:
            await messages_until(ws, lambda m: m["type"] == "call_started")
            async with websockets.connect(second["joinUrl"]) as refused:
                code, reason = await close_of(refused)
            assert code == 1013 and "VOXCALL_MAX_NODE_CALLS=1" in reason and "try again later" in reason
            assert (await srv.get_call(second["callId"]))["joined"] is None
            r = await client.get(f"{srv.url}/readyz")
            body: dict[str, Any] = r.json()
            assert r.status_code == 503 and body["load"] == {**body["load"], "calls": 1, "maxCalls": 1, "liveCalls": 1}
            got = await scrape(srv.url)
            assert got[("voxcall_joins_refused_total", (("cause", "capacity"),))] == 1
            assert got[("voxcall_node_max_calls", ())] == 1
            await ws.send(json.dumps({"type": "hang_up"}))
            await close_of(ws)
        for _ in range(100):  # the slot frees once the host is done with the call, just after the close
            if (await client.get(f"{srv.url}/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        async with websockets.connect(second["joinUrl"]) as ws:  # a slot is free again: the same token joins
            seen = await messages_until(ws, lambda m: m["type"] == "call_started")
            assert seen[-1]["callId"] == second["callId"]


class _Queued:
    """Gives a fake model the `queue_depth()` of a real FairWorker whose thread the test holds."""

    def __init__(self, worker: FairWorker) -> None:
        self.queue_depth = lambda: worker.waiting


class _QueuedLLM(ScriptedLLM, _Queued):
    def __init__(self, worker: FairWorker) -> None:
        ScriptedLLM.__init__(self, [])
        _Queued.__init__(self, worker)


class _QueuedSTT(ScriptedSTT, _Queued):
    def __init__(self, worker: FairWorker) -> None:
        ScriptedSTT.__init__(self, [])
        _Queued.__init__(self, worker)


async def test_metrics_report_the_queue_depth_of_each_shared_model(tmp_path: Path) -> None:
    llm_worker, stt_worker = FairWorker("llm-test"), FairWorker("stt-test")
    gate = threading.Event()
    try:
        speech = Speech(vad=EnergyVAD, stt=_QueuedSTT(stt_worker), tts=ToneTTS())  # ToneTTS has no queue: not reported
        svc = await build_services(tmp_path, _QueuedLLM(llm_worker), speech)
        async with serving(svc) as srv:
            for worker in (llm_worker, stt_worker):
                worker.submit(Job("call-1", lambda job: gate.wait(10)))  # runs, holding the thread
            for owner in ("call-1", "call-2", "call-3"):
                llm_worker.submit(Job(owner, lambda job: None))
            stt_worker.submit(Job("call-2", lambda job: None))
            got = await scrape(srv.url)
            assert got[("voxcall_model_queue_depth", (("model", "llm"),))] == 3
            assert got[("voxcall_model_queue_depth", (("model", "stt"),))] == 1
            assert ("voxcall_model_queue_depth", (("model", "tts"),)) not in got
            gate.set()
            for _ in range(100):
                got = await scrape(srv.url)
                if got[("voxcall_model_queue_depth", (("model", "llm"),))] == 0:
                    break
                await asyncio.sleep(0.02)
            assert got[("voxcall_model_queue_depth", (("model", "llm"),))] == 0
    finally:
        gate.set()
        llm_worker.close()
        stt_worker.close()
