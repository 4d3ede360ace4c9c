"""Carrier joins, in-process on a loopback port with scripted models: URLs, refusals, metadata, DTMF, marks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.server.inprocess import InProcess, build_services, serving
from tests.telephony.dialects import Dialect, Exotel, Plivo, Telnyx, Twilio, rms, tone
from tests.telephony.simulator import CarrierSimulator
from voxcall.engine.spec import Speech
from voxcall.providers.base import TextDelta, ToolCall
from voxcall.providers.fake import EnergyVAD, ScriptedLLM, ScriptedSTT, ToneTTS
from voxcall.server import host
from voxcall.server.app import create_app

GREETING = " ".join(f"w{i}" for i in range(30))  # 3 s of tone at 0.1 s a word


def speech() -> Speech:
    return Speech(vad=EnergyVAD, stt=ScriptedSTT(["stop please"] * 5), tts=ToneTTS(16000, word_seconds=0.1))


def body(d: Dialect, **extra: Any) -> dict[str, Any]:
    return {"systemPrompt": "Phone test.", "medium": {d.name: extra.pop("medium", {})},
            "firstSpeakerSettings": {"agent": {"text": GREETING}}, **extra}


async def messages(srv: InProcess, call_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(headers={"X-API-Key": srv.key}, timeout=10) as client:
        return (await client.get(f"{srv.api}/calls/{call_id}/messages")).json()["results"]  # type: ignore[no-any-return]


async def ended(srv: InProcess, call_id: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            call = await srv.get_call(call_id)
            if call["ended"]:
                return call
            await asyncio.sleep(0.05)


async def closed_with(url: str) -> tuple[int, str]:
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as info:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


# ------------------------------------------------------------------ join URLs and refusals


@pytest.mark.parametrize("carrier", ["twilio", "telnyx", "plivo", "exotel"])
async def test_a_carrier_call_gets_a_path_only_join_url_wss_behind_https(tmp_path: Path, carrier: str) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]), public_url="https://voice.example.com")
    key, _ = await svc.store.create_api_key("t")
    transport = httpx.ASGITransport(app=create_app(services=svc))
    async with httpx.AsyncClient(transport=transport, base_url="http://local", headers={"X-API-Key": key}) as client:
        call = (await client.post("/api/calls", json={"medium": {carrier: {}}})).json()
        plain = (await client.post("/api/calls", json={"medium": {"serverWebSocket": {"inputSampleRate": 16000}}})).json()
        refused = await client.post("/api/calls", json={"medium": {carrier: {"dtmfHandling": {"ignore": "maybe"}}}})
    url = call["joinUrl"]
    assert url.startswith(f"wss://voice.example.com/calls/{call['callId']}/telephony/") and "?" not in url
    assert call["medium"] == {carrier: {}}
    assert "/server_web_socket?token=" in plain["joinUrl"]
    assert refused.status_code == 422
    await svc.close()


async def test_joins_that_do_not_fit_are_refused_before_any_audio(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]), speech())
    async with serving(svc) as srv:
        twilio = await srv.create_call(body(Twilio()))
        plain = await srv.create_call({"medium": {"serverWebSocket": {"inputSampleRate": 16000}}})
        base, _, token = twilio["joinUrl"].rpartition("/")
        with pytest.raises(websockets.InvalidStatus):  # a forged token: HTTP 403, nothing accepted
            await websockets.connect(f"{base}/{token[:-2]}xx")
        with pytest.raises(websockets.InvalidStatus):  # a good token, but for another call
            await websockets.connect(f"{srv.url.replace('http', 'ws')}/calls/{plain['callId']}/telephony/{token}")
        code, reason = await closed_with(twilio["joinUrl"].replace("/telephony/", "/server_web_socket?token="))
        assert code == 1008 and "twilio call" in reason and "serverWebSocket" in reason
        _, _, plain_token = plain["joinUrl"].partition("token=")
        code, reason = await closed_with(f"{srv.url.replace('http', 'ws')}/calls/{plain['callId']}/telephony/{plain_token}")
        assert code == 1008 and "serverWebSocket call" in reason
        assert (await srv.get_call(twilio["callId"]))["joined"] is None  # neither refusal used the join


async def test_a_stream_in_a_format_without_a_codec_is_closed_with_1003(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]), speech())
    async with serving(svc) as srv:
        d = Telnyx()
        call = await srv.create_call(body(d))
        async with websockets.connect(call["joinUrl"]) as ws:
            start = d.start()
            start["start"]["media_format"]["encoding"] = "OPUS"
            await ws.send(json.dumps(start))
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1003 and "OPUS" in info.value.rcvd.reason
        assert (await ended(srv, call["callId"]))["endReason"] == "connection_error"


async def test_a_carrier_that_never_starts_is_closed_after_the_start_timeout(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "START_TIMEOUT", 0.5)
    svc = await build_services(tmp_path, ScriptedLLM([]), speech())
    async with serving(svc) as srv:
        d = Twilio()
        call = await srv.create_call(body(d))
        async with websockets.connect(call["joinUrl"]) as ws:
            await ws.send(json.dumps(d.connected()))
            await ws.send(json.dumps(d.media(tone(8000, 0.02))))  # media before start: reported, dropped
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008 and "no start" in info.value.rcvd.reason
        assert (await ended(srv, call["callId"]))["endReason"] == "connection_error"


# ------------------------------------------------------------------ a call over each carrier


@pytest.mark.parametrize("dialect", [Twilio(), Telnyx("L16", 16000), Telnyx("PCMA", 8000), Plivo("audio/x-mulaw", 8000),
                                     Plivo("audio/x-l16", 16000), Exotel(16000)], ids=lambda d: f"{d.name}-{d.rate}")
async def test_a_carrier_call_end_to_end_with_scripted_models(tmp_path: Path, dialect: Dialect) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([[TextDelta("Okay.")]] * 3), speech())
    async with serving(svc) as srv:
        call = await srv.create_call(body(dialect))
        async with websockets.connect(call["joinUrl"] + dialect.query) as ws:
            sim = CarrierSimulator(ws, dialect)
            await sim.open()
            runner = asyncio.create_task(sim.run())
            await sim.until(lambda: sim.audio_seconds() > 0.5, 10)
            assert rms(b"".join(pcm for _, pcm in sim.audio[-5:])) > 1000  # the tone, in the carrier's codec
            assert sim.acked and {n for _, n in sim.acked} <= {n for _, n in sim.marks}
            with pytest.raises(websockets.InvalidStatus):  # a second socket on the same join URL (Twilio may try)
                await websockets.connect(call["joinUrl"] + dialect.query)
            await sim.press("12#")
            async with asyncio.timeout(10):
                while not any(m["role"] == "MESSAGE_ROLE_USER" for m in await messages(srv, call["callId"])):
                    await asyncio.sleep(0.05)
            await sim.hang_up()
            await asyncio.wait_for(runner, 10)
        done = await ended(srv, call["callId"])
        assert done["endReason"] == "hangup"
        assert {k: v for k, v in done["metadata"].items() if k.startswith("ultravox.")} == dialect.metadata
        stored = await messages(srv, call["callId"])
        assert [(m["role"], m["text"], m["medium"]) for m in stored if m["role"] == "MESSAGE_ROLE_USER"] == [
            ("MESSAGE_ROLE_USER", "12#", "MESSAGE_MEDIUM_TEXT")]
        agent = [m["text"] for m in stored if m["role"] == "MESSAGE_ROLE_AGENT"]
        assert agent[0] and GREETING.startswith(agent[0]) and agent[0] != GREETING  # the digits cut the greeting


async def test_barge_in_clears_the_carrier_and_keeps_only_the_acknowledged_words(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([[TextDelta("Okay.")]]), speech())
    async with serving(svc) as srv:
        d = Twilio()
        call = await srv.create_call(body(d))
        async with websockets.connect(call["joinUrl"]) as ws:
            sim = CarrierSimulator(ws, d, play=False)
            await sim.open()
            runner = asyncio.create_task(sim.run())
            await sim.until(lambda: len(sim.marks) >= 20, 10)
            await sim.ack(sim.marks[14][1])  # the caller has heard 15 chunks of 20 ms: 0.3 s, three words
            onset = await sim.say(tone(8000, 0.6, level=12000, freq=200))
            await sim.until(lambda: sim.clears, 5)
            assert sim.clears[0] - onset < 0.3
            late = [t for t, _ in sim.audio if t > sim.clears[0] + 0.05]
            await asyncio.sleep(0.3)
            assert not [t for t, _ in sim.audio if sim.clears[0] + 0.05 < t < onset + 0.6]  # nothing stale after the clear
            assert not late or min(late) > onset + 0.6
            for _, name in sim.marks:  # Twilio hands back the marks of the dropped audio
                await sim.ack(name)
            await sim.hang_up()
            await asyncio.wait_for(runner, 10)
        await ended(srv, call["callId"])
        agent = [m["text"] for m in await messages(srv, call["callId"]) if m["role"] == "MESSAGE_ROLE_AGENT"]
        assert agent[0] == "w0 w1 w2"


async def test_play_dtmf_sounds_reaches_plivo_and_twilio_says_it_cannot(tmp_path: Path) -> None:
    for d, expected in ((Plivo(), ["1#"]), (Twilio(), [])):
        press = [[ToolCall("t1", "playDtmfSounds", {"digits": "1#"})], [TextDelta("Done.")]]
        svc = await build_services(tmp_path / d.name, ScriptedLLM(press), speech())
        async with serving(svc) as srv:
            call = await srv.create_call(body(d, selectedTools=[{"toolName": "playDtmfSounds"}],
                                              firstSpeakerSettings={"user": {}}))
            async with websockets.connect(call["joinUrl"]) as ws:
                sim = CarrierSimulator(ws, d)
                await sim.open()
                runner = asyncio.create_task(sim.run())
                await sim.press("0")  # the caller asks for the menu; the agent answers with key presses
                async with asyncio.timeout(10):
                    while not any(m["role"] == "MESSAGE_ROLE_TOOL_RESULT" for m in await messages(srv, call["callId"])):
                        await asyncio.sleep(0.05)
                await asyncio.sleep(0.2)
                await sim.hang_up()
                await asyncio.wait_for(runner, 10)
            stored = await messages(srv, call["callId"])
            result = next(m for m in stored if m["role"] == "MESSAGE_ROLE_TOOL_RESULT")
            assert [m["text"] for m in stored if m["role"] == "MESSAGE_ROLE_USER"] == ["0"]
            assert sim.dtmf_out == expected
            assert ("cannot" in result["text"]) == (not expected)
