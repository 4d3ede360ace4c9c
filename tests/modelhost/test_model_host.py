"""`voxcall models serve` as a real process on 127.0.0.1, and a `voxcall serve` call plane that uses only it.

One model host (SmolLM2, Whisper, Piper) and one call plane for the whole module.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import websockets
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.conftest import RunningServer, free_port
from tests.server.wire import create_call, get, wait_for_end
from tests.voice.voiceclient import FIXTURES, VoiceClient, speech

KEY = "test-model-host-key"
QUESTION = "What is the capital of France?"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "getWeather", "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).split()


@dataclass(frozen=True)
class ModelHost:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {KEY}", **kwargs.pop("headers", {})}
        return httpx.post(f"{self.v1}{path}", headers=headers, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[ModelHost]:
    data_dir = tmp_path_factory.mktemp("model-host")
    (data_dir / "models").symlink_to(models_dir, target_is_directory=True)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VOXCALL_MODELS_API_KEY": KEY}
    log = data_dir / "host.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "voxcall", "models", "serve", "--port", str(port),
                                 "--llm", "smollm2-135m", "--data-dir", str(data_dir)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"model host exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError(f"model host did not start in time:\n{log.read_text()[-4000:]}")
        yield ModelHost(url, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def plane(host: ModelHost, server_factory: Any) -> RunningServer:
    """A `voxcall serve` whose LLM, STT and TTS are all the model host."""
    env = {"VOXCALL_MODELS_URL": host.v1, "VOXCALL_MODELS_API_KEY": KEY}
    return server_factory("openai", extra_env=env)  # type: ignore[no-any-return]


def sse_chunks(response: httpx.Response) -> list[Any]:
    data = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


# ------------------------------------------------------------------ the endpoints, with httpx


def test_models_lists_the_three_models_and_wants_the_key(host: ModelHost) -> None:
    r = httpx.get(f"{host.v1}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert r.status_code == 200
    assert r.json()["object"] == "list"
    assert [m["id"] for m in r.json()["data"]] == ["smollm2-135m", "whisper-base", "piper"]
    assert all(m["object"] == "model" for m in r.json()["data"])
    refused = httpx.get(f"{host.v1}/models", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"


def test_chat_completion_whole_and_streamed(host: ModelHost) -> None:
    body = {"model": "anything", "messages": [{"role": "user", "content": "Say hello."}], "temperature": 0, "max_tokens": 12}
    whole = host.post("/chat/completions", json=body)
    assert whole.status_code == 200, whole.text
    completion = whole.json()
    assert completion["object"] == "chat.completion" and completion["model"] == "smollm2-135m"
    choice = completion["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]

    streamed = host.post("/chat/completions", json={**body, "stream": True})
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    chunks = sse_chunks(streamed)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text.strip() and len(chunks) > 3  # token by token, not one piece


def test_chat_with_tools_routes_and_answers_after_a_tool_result(host: ModelHost) -> None:
    """SmolLM2 answers this in text (Qwen would call the tool; the tool-call shapes are checked in
    test_chat_requests.py): the router's JSON never leaks into the text, and after a tool result it answers."""
    ask = [{"role": "system", "content": "You are a weather assistant. Always use your tools."},
           {"role": "user", "content": "What is the weather in Paris right now?"}]
    r = host.post("/chat/completions", json={"messages": ask, "tools": [WEATHER_TOOL], "temperature": 0, "stream": True,
                                             "max_tokens": 24})
    assert r.status_code == 200, r.text
    chunks = [ChatCompletionChunk.model_validate(c) for c in sse_chunks(r)]
    calls = [call for c in chunks for call in c.choices[0].delta.tool_calls or ()]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    finish = chunks[-1].choices[0].finish_reason
    assert (finish, bool(calls)) in (("stop", False), ("tool_calls", True))
    assert all(call.function and call.function.name == "getWeather" for call in calls)
    assert text.strip() or calls
    assert '"action"' not in text and not text.lstrip().startswith("{")

    call = {"id": "call_1", "type": "function", "function": {"name": "getWeather", "arguments": '{"city": "Paris"}'}}
    result = [*ask, {"role": "assistant", "content": None, "tool_calls": [call]},
              {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny", "celsius": 21}'}]
    answer = host.post("/chat/completions", json={"messages": result, "tools": [WEATHER_TOOL], "temperature": 0,
                                                  "max_tokens": 24})
    assert answer.status_code == 200, answer.text
    completion = ChatCompletion.model_validate(answer.json())
    assert completion.choices[0].message.content and completion.choices[0].message.content.strip()
    assert completion.choices[0].finish_reason == "stop" and not completion.choices[0].message.tool_calls
    assert '"action"' not in completion.choices[0].message.content


COUNTING = {"messages": [{"role": "user", "content": "Count from 1 to 3000, separated by commas: 1, 2, 3,"}],
            "temperature": 0, "max_tokens": 2048}


def test_a_client_that_goes_away_stops_its_generation(host: ModelHost) -> None:
    """2048 tokens of counting take SmolLM2 minutes here; closing the stream frees the model at once."""
    with httpx.stream("POST", f"{host.v1}/chat/completions", json={**COUNTING, "stream": True},
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as response:
        assert response.status_code == 200
        first = next(line for line in response.iter_lines() if '"content": "' in line and '"content": ""' not in line)
        assert first  # the model is generating: now go away
    started = time.monotonic()
    after = host.post("/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert after.status_code == 200
    assert time.monotonic() - started < 5.0, "the abandoned request still held the model"


@pytest.mark.parametrize("change, param", [
    ({"n": 2}, "n"), ({"tool_choice": "required"}, "tool_choice"), ({"messages": []}, "messages"),
    ({"temperature": 5}, "temperature"), ({"max_tokens": 100_000}, "max_tokens"),
])
def test_chat_refusals_are_400_in_openai_shape(host: ModelHost, change: dict[str, Any], param: str) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], **change}
    r = host.post("/chat/completions", json={**body, "stream": True})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] and (error["param"] or "").startswith(param)


def test_transcription_json_and_text(host: ModelHost) -> None:
    audio = (FIXTURES / "capital.wav").read_bytes()
    r = host.post("/audio/transcriptions", files={"file": ("capital.wav", audio, "audio/wav")}, data={"model": "whisper-1"})
    assert r.status_code == 200, r.text
    assert words(r.json()["text"]) == words(QUESTION)
    plain = host.post("/audio/transcriptions", files={"file": ("a.wav", audio, "audio/wav")},
                      data={"model": "whisper-1", "response_format": "text", "language": "en"})
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/plain")
    assert words(plain.text) == words(QUESTION)


@pytest.mark.parametrize("files, data, param", [
    ({"file": ("a.wav", b"not audio at all", "audio/wav")}, {}, "file"),
    ({"file": ("a.wav", b"", "audio/wav")}, {}, "file"),
    ({"file": ("a.wav", b"RIFF", "audio/wav")}, {"response_format": "srt"}, "response_format"),
    ({"file": ("a.wav", b"RIFF", "audio/wav")}, {"language": "klingon"}, "language"),
    ({}, {"model": "whisper-1"}, "file"),
])
def test_transcription_refusals(host: ModelHost, files: dict[str, Any], data: dict[str, str], param: str) -> None:
    r = host.post("/audio/transcriptions", files=files or None, data=data)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["message"]


def test_speech_pcm_at_24k_and_wav_that_whisper_understands(host: ModelHost) -> None:
    pcm = host.post("/audio/speech", json={"model": "tts-1", "input": QUESTION, "voice": "alloy", "response_format": "pcm"})
    assert pcm.status_code == 200 and pcm.headers["content-type"] == "audio/pcm"
    assert len(pcm.content) % 2 == 0 and 1.0 < len(pcm.content) / 2 / 24000 < 6.0
    wav = host.post("/audio/speech", json={"input": QUESTION, "voice": "joe", "response_format": "wav"})
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(wav.content)) as file:
        assert (file.getframerate(), file.getnchannels(), file.getsampwidth()) == (24000, 1, 2)
        # the same speech: Piper draws its phoneme durations at random, so the two lengths differ a little
        assert abs(file.getnframes() - len(pcm.content) // 2) < 0.2 * len(pcm.content) // 2
    heard = host.post("/audio/transcriptions", files={"file": ("tts.wav", wav.content, "audio/wav")})
    assert words(heard.json()["text"]) == words(QUESTION)


@pytest.mark.parametrize("change, param", [
    ({"voice": "nobody"}, "voice"), ({"response_format": "mp3"}, "response_format"), ({"speed": 2.0}, "speed"),
    ({"input": ""}, "input"), ({"stream_format": "sse"}, "stream_format"),
])
def test_speech_refusals(host: ModelHost, change: dict[str, Any], param: str) -> None:
    r = host.post("/audio/speech", json={"input": "Hello.", "response_format": "pcm", **change})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


# ------------------------------------------------------------------ the official OpenAI client, on its defaults


def test_the_openai_client_on_its_defaults(host: ModelHost) -> None:
    client = openai.OpenAI(base_url=host.v1, api_key=KEY, max_retries=0, timeout=120)
    try:
        assert "smollm2-135m" in [m.id for m in client.models.list()]
        messages: Any = [{"role": "user", "content": "Say hello."}]
        reply = client.chat.completions.create(model="smollm2-135m", messages=messages, max_tokens=8)
        assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
        stream = client.chat.completions.create(model="smollm2-135m", messages=messages, max_tokens=8, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text.strip()
        with (FIXTURES / "capital.wav").open("rb") as audio:
            heard = client.audio.transcriptions.create(model="whisper-1", file=audio)
        assert words(heard.text) == words(QUESTION)
        spoken = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.")
        assert spoken.content[:4] == b"RIFF"  # no response_format: this host's default, WAV
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=host.v1, api_key="wrong", max_retries=0).models.list()
    finally:
        client.close()


# ------------------------------------------------------------------ a call plane that uses only the model host


IN_RATE, OUT_RATE = 16000, 24000
MEDIUM = {"serverWebSocket": {"inputSampleRate": IN_RATE, "outputSampleRate": OUT_RATE}}


async def test_a_voice_call_through_the_model_host(plane: RunningServer) -> None:
    call = create_call(plane, {"systemPrompt": "You are a helpful voice assistant. Answer in one short sentence.",
                               "medium": MEDIUM, "firstSpeakerSettings": {"user": {}}, "maxDuration": "60s"})
    async with websockets.connect(call["joinUrl"]) as ws:
        client = VoiceClient(ws, IN_RATE)
        runner = asyncio.create_task(client.run())
        await client.until(lambda m: m == {"type": "state", "state": "listening"})
        client.say(speech("capital.wav", IN_RATE))
        _, user = await client.until(lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"])
        assert user["medium"] == "voice" and words(user["text"]) == words(QUESTION)
        _, agent = await client.until(lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"])
        assert agent["medium"] == "voice" and agent["text"].strip()
        assert sum(n for _, n in client.audio) / 2 / OUT_RATE > 0.3  # the agent was heard, at 24 kHz
        await ws.send('{"type": "hang_up"}')
        await asyncio.wait_for(runner, 10)
    assert (await wait_for_end(plane, call["callId"]))["endReason"] == "hangup"
    messages = get(plane, f"/calls/{call['callId']}/messages")["results"]
    assert [(m["role"], m["medium"]) for m in messages] == [("MESSAGE_ROLE_USER", "MESSAGE_MEDIUM_VOICE"),
                                                             ("MESSAGE_ROLE_AGENT", "MESSAGE_MEDIUM_VOICE")]
    assert words(messages[0]["text"]) == words(QUESTION) and messages[1]["text"] == agent["text"]


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def _rss_kib(pid: int) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1])


def test_the_call_plane_loads_no_llm_whisper_or_piper(host: ModelHost, plane: RunningServer) -> None:
    assert plane.process is not None
    plane_maps, host_maps = _mapped(plane.process.pid), _mapped(host.process.pid)
    for library in ("libllama", "libctranslate2"):  # llama.cpp, and CTranslate2 under faster-whisper
        assert library in host_maps and library not in plane_maps
    host_log, plane_log = host.log.read_text(), plane.log.read_text()
    for line in ("loaded smollm2-135m", "loaded Whisper base", "loaded Piper voices"):
        assert line in host_log and line not in plane_log
    plane_rss, host_rss = _rss_kib(plane.process.pid), _rss_kib(host.process.pid)
    print(f"\nresident memory: call plane {plane_rss // 1024} MiB, model host {host_rss // 1024} MiB")
    assert 2 * plane_rss < host_rss  # about 150 MiB and 600 MiB with SmolLM2
    models = httpx.get(f"{plane.api}/models", headers=plane.headers(), timeout=10).json()
    assert "smollm2-135m" not in json.dumps(models)  # the plane names its remote LLM, it has none of its own

