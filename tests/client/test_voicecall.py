"""`voxcall call` without a server: `voice_call` (REST over MockTransport, realtime against a scripted peer),
`CallDisplay`, and the CLI's one-line errors."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection

from voxcall.audio import read_wav, write_wav
from voxcall.cli import main
from voxcall.client.session import Transcript, UltravoxSessionStatus
from voxcall.client.voicecall import CALL_INPUT_RATE, CALL_OUTPUT_RATE, CallDisplay, call_body, voice_call

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

Peer = Any
S = UltravoxSessionStatus


def rest(join_url: str, bodies: list[dict[str, Any]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"callId": "call-1", "joinUrl": join_url})

    return httpx.MockTransport(handler)


def agent(text: str, *, final: bool, delta: bool = False) -> dict[str, Any]:
    kind = "delta" if delta else "text"
    return {"type": "transcript", "role": "agent", "medium": "voice", kind: text, "final": final, "ordinal": 1}


async def voice_server(peer: Peer, ws: ServerConnection) -> None:
    """Listens until 0.3 s of audio came in, then answers with 0.5 s of audio and a transcript."""
    await peer.send(ws, {"type": "call_started", "callId": "call-1"}, {"type": "state", "state": "listening"})
    async for frame in ws:
        peer.received.append(frame)
        if len(peer.audio) >= CALL_INPUT_RATE * 2 * 0.3 and not peer.messages and frame:
            break
    await peer.send(
        ws,
        {"type": "transcript", "role": "user", "medium": "voice", "text": "Hello there.", "final": True, "ordinal": 0},
        {"type": "state", "state": "thinking"},
        {"type": "state", "state": "speaking"},
        agent("Hi,", final=False),
    )
    await ws.send(b"\x01\x00" * (CALL_OUTPUT_RATE // 2))
    await peer.send(ws, agent(" nice to hear you.", final=False, delta=True), agent("Hi, nice to hear you.", final=True))
    await peer.send(ws, {"type": "state", "state": "listening"})
    await peer.record(ws)


async def test_voice_call_with_files_answers_and_hangs_up(
    peer: Peer, join_url: str, tmp_path: Path
) -> None:
    question = tmp_path / "q.wav"
    question.write_bytes(write_wav(b"\x10\x00" * 1600, 16000))  # 0.1 s
    answer = tmp_path / "a.wav"
    peer.script = voice_server
    bodies: list[dict[str, Any]] = []
    out = io.StringIO()
    code = await voice_call(
        "http://voxcall.test/api", "key", input_path=question, output_path=answer, output=out,
        transport=rest(join_url, bodies), reply_timeout=10,
    )
    text = out.getvalue()
    assert code == 0, text
    assert bodies == [call_body(None, None, user_first=True)]
    assert bodies[0]["medium"] == {"serverWebSocket": {"inputSampleRate": 16000, "outputSampleRate": 24000}}
    assert "you: Hello there." in text and "agent: Hi, nice to hear you. [final]" in text
    assert text.index("[thinking]") < text.index("[speaking]") < text.index("agent:")
    assert "[call ended: 1000]" in text and "(0.5 s)" in text
    pcm, rate = read_wav(str(answer))
    assert rate == 24000 and pcm == b"\x01\x00" * 12000
    assert peer.audio[:3200] == b"\x10\x00" * 1600  # the file went out at 16 kHz, then silence
    assert not any(peer.audio[3200:])


async def test_ctrl_c_hangs_up_and_still_writes_the_output(peer: Peer, join_url: str, tmp_path: Path) -> None:
    question = tmp_path / "q.wav"
    question.write_bytes(write_wav(bytes(3200), 16000))
    answer = tmp_path / "a.wav"

    async def speak_then_listen(peer: Peer, ws: ServerConnection) -> None:
        await peer.send(ws, {"type": "call_started", "callId": "call-1"}, {"type": "state", "state": "speaking"})
        await ws.send(b"\x02\x00" * 2400)
        asyncio.get_running_loop().call_later(0.3, os.kill, os.getpid(), signal.SIGINT)
        await peer.record(ws)

    peer.script = speak_then_listen
    out = io.StringIO()
    code = await voice_call("http://voxcall.test/api", "key", input_path=question, output_path=answer, output=out,
                            transport=rest(join_url, []))
    assert code == 0 and "[call ended: 1000]" in out.getvalue()
    assert read_wav(str(answer)) == (b"\x02\x00" * 2400, 24000)
    await asyncio.wait_for(peer.closed.wait(), 5)


def test_display_shows_states_growing_agent_text_and_the_final_mark() -> None:
    out = io.StringIO()
    display = CallDisplay(out)
    display.status(S.CONNECTING)  # not live: not shown
    display.status(S.LISTENING)
    display.status(S.LISTENING)
    display.transcripts([Transcript("What is", False, "user", "voice", 0)])  # user text shows when final
    display.transcripts([Transcript("What is up?", True, "user", "voice", 0)])
    display.status(S.SPEAKING)
    display.transcripts([Transcript("What is up?", True, "user", "voice", 0), Transcript("Not", False, "agent", "voice", 1)])
    display.status(S.LISTENING)  # arrives while the agent line grows: shown after it
    display.transcripts([Transcript("Not much.", False, "agent", "voice", 1)])
    display.transcripts([Transcript("Not much.", True, "agent", "voice", 1)])
    display.transcripts([Transcript("Once upon", False, "agent", "voice", 2)])
    display.transcripts([Transcript("Once", True, "agent", "voice", 2)])  # barge-in: only "Once" was heard
    assert out.getvalue().splitlines() == [
        "[listening]",
        "you: What is up?",
        "[speaking]",
        "agent: Not much. [final]",
        "[listening]",
        'agent: Once upon [interrupted; heard: "Once"] [final]',
    ]


def test_cli_without_devices_says_which_flag_to_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    assert main(["call", "--api-key", "k", "--url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: No audio input device found") and err.endswith("use --input FILE.wav")
    assert "\n" not in err
    question = tmp_path / "q.wav"
    question.write_bytes(write_wav(bytes(320), 16000))
    assert main(["call", "--api-key", "k", "--input", str(question)]) == 1
    assert capsys.readouterr().err.strip().endswith("use --output FILE.wav")


def test_cli_bad_input_file_and_missing_key(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["call", "--api-key", "k", "--input", str(tmp_path / "none.wav"), "--output", str(tmp_path / "a.wav")]) == 1
    assert "No such file" in capsys.readouterr().err
    monkeypatch.delenv("VOXCALL_API_KEY", raising=False)
    monkeypatch.delenv("ULTRAVOX_API_KEY", raising=False)
    with pytest.raises(SystemExit, match="no API key"):
        main(["call", "--input", "x.wav"])
