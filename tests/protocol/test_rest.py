"""REST model tests: durations, nulls, unknown fields, enums, validation messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voxcall.protocol.rest import StartCallRequest
from voxcall.protocol.wire import format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("0.384s", 0.384), ("3600.000000s", 3600), ("2.5s", 2.5), (12, 12)])
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["30m", "1h", "s", "", True, "1.1234567890s"])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_durations_format_like_the_hosted_api() -> None:
    assert [format_duration(x) for x in (30, 3600.0, 0.384, 2.5)] == ["30s", "3600s", "0.384s", "2.5s"]


def test_nulls_unknown_fields_and_snake_case_are_accepted() -> None:
    body = StartCallRequest.model_validate(
        {"systemPrompt": "x", "model": None, "voice": None, "unknownField": 1, "join_timeout": "10s",
         "firstSpeaker": "FIRST_SPEAKER_USER", "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
         "medium": {"serverWebSocket": {"inputSampleRate": 16000, "clientBufferSizeMs": 30000}},
         "selectedTools": [{"temporaryTool": {"modelToolName": "t", "precomputable": True, "client": {},
                            "dynamicParameters": [{"name": "a", "location": "PARAMETER_LOCATION_BODY", "schema": {"type": "string", "title": "A"}, "required": True}]}}]}
    )
    assert body.wire()["joinTimeout"] == "10s" and "model" not in body.wire()
    assert body.effective_first_speaker_settings().user is not None
    assert body.medium and body.medium.server_web_socket and body.medium.server_web_socket.input_sample_rate == 16000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"temperature": 3}, "temperature"),
        ({"joinTimeout": "30m"}, "joinTimeout"),
        ({"metadata": {"ultravox.x": "1"}}, "metadata"),
        ({"medium": {"webRtc": {}, "serverWebSocket": {"inputSampleRate": 16000}}}, "medium"),
        ({"firstSpeaker": "FIRST_SPEAKER_USER", "firstSpeakerSettings": {"agent": {}}}, "disagree"),
        ({"selectedTools": [{"temporaryTool": {"modelToolName": "bad name!", "client": {}}}]}, "modelToolName"),
        ({"selectedTools": [{"temporaryTool": {"modelToolName": "t", "client": {}, "timeout": "41s"}}]}, "timeout"),
        ({"selectedTools": [{"temporaryTool": {"modelToolName": "t", "client": {}, "dynamicParameters": [{"name": "q", "location": "PARAMETER_LOCATION_QUERY"}]}}]}, "body parameters"),
    ],
)
def test_invalid_bodies_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        StartCallRequest.model_validate(body)
