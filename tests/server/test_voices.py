"""Voice resolution: hosted voice names, aliases, the default voice, externalVoice and strict mode.

`VoiceBook` is tested directly; the REST behaviour (201 and a warning event, or 422 in strict mode)
runs in-process on `create_app(services=...)` over httpx.ASGITransport with a scripted LLM and no
speech models, so the installed voices are the ones the test declares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxcall.config import Settings
from voxcall.errors import InvalidRequest
from voxcall.protocol.rest import StartCallRequest, Voice
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.app import build_services, create_app
from voxcall.server.calls import build_spec
from voxcall.server.voices import VOICE_EVENT, VoiceBook
from voxcall.store.records import CallRecord

JOE, AMY = "2f0d7c4e-8a5b-5d43-9e31-1c6a0b7f2d10", "9b4e1a22-3c6d-5f70-8e19-4d2a7c5b0e63"
INSTALLED = [Voice(voice_id=JOE, name="joe"), Voice(voice_id=AMY, name="amy")]


def book(**kwargs: Any) -> VoiceBook:
    return VoiceBook(INSTALLED, **kwargs)


def test_installed_voices_match_by_id_or_name_in_any_case() -> None:
    assert book().choose("JOE").voice == "joe" and book().choose(AMY.upper()).voice == "amy"
    choice = book().choose("amy")
    assert (choice.voice, choice.reason, choice.substituted, choice.warning()) == ("amy", "installed", False, None)


def test_unknown_voice_uses_the_alias_then_the_default() -> None:
    aliased = book(aliases={"Mark": "amy"}).choose("mark")
    assert (aliased.voice, aliased.reason, aliased.substituted) == ("amy", "alias", True)
    assert aliased.warning() == "Voice 'mark' is not installed; the call uses 'amy', as VOXCALL_VOICE_ALIASES maps it."
    fallback = book(aliases={"Mark": "not-installed"}, default="AMY").choose("Mark")
    assert (fallback.voice, fallback.reason) == ("amy", "default")
    assert "the call uses 'amy', the default voice" in (fallback.warning() or "")
    assert book(default="nobody").choose("terrence").voice == "joe", "an uninstalled default falls back to the first voice"
    assert book().choose(None) == book().choose(None, {}) and book().choose(None).voice == "joe"
    assert not book().choose(None).substituted


def test_external_voice_uses_the_default_voice() -> None:
    choice = book(default="amy").choose(None, {"elevenLabs": {"voiceId": "21m00Tcm4TlvDq8ikWAM"}})
    assert (choice.voice, choice.reason, choice.requested) == ("amy", "external", "externalVoice (elevenLabs)")
    assert choice.warning() == "externalVoice (elevenLabs) is not supported by this server; the call uses 'amy', the default voice."
    assert choice.extras() == {"requested": "externalVoice (elevenLabs)", "voice": "amy", "reason": "external"}


def test_no_installed_voice_means_a_text_only_call() -> None:
    choice = VoiceBook().choose("Mark")
    assert choice.voice is None and choice.warning() == "Voice 'Mark' is not installed; the call has no voice (none is installed: text only)."


def test_strict_mode_refuses_what_it_would_substitute() -> None:
    strict = book(aliases={"Mark": "joe"}, strict=True)
    assert strict.check_choice("Mark").voice == "joe", "an alias is the operator's own choice: allowed"
    assert strict.check_choice("amy").voice == "amy"
    for voice, external in (("terrence", None), (None, {"cartesia": {}})):
        with pytest.raises(InvalidRequest) as caught:
            strict.check_choice(voice, external)
        assert caught.value.status_code == 422 and "Installed voices: joe, amy" in str(caught.value.detail)


def test_the_engine_speaks_with_the_resolved_voice() -> None:
    from datetime import UTC, datetime

    request = StartCallRequest(voice="Mark")
    record = CallRecord(call_id="c", account_id="a", created=datetime.now(UTC), request=request.wire())
    voice = book(aliases={"mark": "amy"}).choose(request.voice).voice
    assert build_spec(record, [], voice).voice.voice == "amy"


# ------------------------------------------------------------ over the REST API


async def _client(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    services = await build_services(Settings(data_dir=tmp_path, **settings), llm=ScriptedLLM([]), speech=None)
    services.voices = list(INSTALLED)
    key, _ = await services.store.create_api_key()
    transport = httpx.ASGITransport(app=create_app(services=services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api", headers={"X-API-Key": key}) as client:
            yield client
    finally:
        await services.close()


@pytest.fixture()
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path, voice_aliases={"Mark": "amy"}):
        yield client


@pytest.fixture()
async def strict_api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path, strict_voices=True, voice_aliases={"Mark": "amy"}):
        yield client


async def _events(api: httpx.AsyncClient, call_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/calls/{call_id}/events", params={"minimum_severity": "debug"})
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


@pytest.mark.parametrize(("body", "used", "requested"), [
    ({"voice": "Mark"}, "amy", "Mark"),
    ({"voice": "terrence"}, "joe", "terrence"),
    ({"externalVoice": {"elevenLabs": {"voiceId": "x"}}}, "joe", "externalVoice (elevenLabs)"),
])
async def test_hosted_voices_are_accepted_echoed_and_reported(
    api: httpx.AsyncClient, body: dict[str, Any], used: str, requested: str
) -> None:
    response = await api.post("/calls", json=body)
    assert response.status_code == 201, response.text
    call = response.json()
    assert call.get("voice") == body.get("voice") and call.get("externalVoice") == body.get("externalVoice")
    fetched = (await api.get(f"/calls/{call['callId']}")).json()
    assert fetched.get("voice") == body.get("voice") and fetched.get("externalVoice") == body.get("externalVoice")
    events = await _events(api, call["callId"])
    assert [(e["type"], e["severity"]) for e in events] == [(VOICE_EVENT, "warning")]
    assert repr(used) in events[0]["text"] and events[0]["extras"] == {
        "requested": requested, "voice": used, "reason": "alias" if body.get("voice") == "Mark" else
        "external" if "externalVoice" in body else "default"}


async def test_an_installed_voice_records_no_event(api: httpx.AsyncClient) -> None:
    call = (await api.post("/calls", json={"voice": "AMY"})).json()
    assert call["voice"] == "AMY" and await _events(api, call["callId"]) == []


async def test_strict_voices_restores_the_422(strict_api: httpx.AsyncClient) -> None:
    for body, field in (({"voice": "terrence"}, "voice"), ({"externalVoice": {"cartesia": {"voiceId": "x"}}}, "externalVoice")):
        response = await strict_api.post("/calls", json=body)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail[0]["loc"] == ["body", field] and "Installed voices: joe, amy" in detail[0]["msg"]
    assert (await strict_api.post("/calls", json={"voice": "Mark"})).status_code == 201, "aliases still apply"
    assert (await strict_api.get("/calls")).json()["total"] == 1, "nothing was stored for the refused requests"
