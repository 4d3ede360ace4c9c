"""`MicrophoneSource`, `SpeakerSink` and `PlaybackBuffer` with a scripted stand-in for `sounddevice` (no PortAudio needed)."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from typing import Any

import pytest

from voxcall.client import AudioDeviceError, MicrophoneSource, SpeakerSink, devices
from voxcall.client.devices import PlaybackBuffer
from voxcall.errors import VoxcallError

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


class FakeStream:
    """A PortAudio stream: `feed()` plays the audio thread's part by calling the callback from a thread."""

    opened: list[FakeStream] = []

    def __init__(self, *, samplerate: int, blocksize: int, device: Any, channels: int, dtype: str, callback: Any) -> None:
        assert channels == 1 and dtype == "int16"
        self.samplerate, self.blocksize, self.callback = samplerate, blocksize, callback
        self.started = self.stopped = self.closed = False
        self.latency = 0.01
        FakeStream.opened.append(self)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self.closed = True

    def feed(self, chunks: list[bytes]) -> None:
        def run() -> None:
            for chunk in chunks:
                self.callback(chunk, len(chunk) // 2, None, None)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()


def fake_sounddevice(refuse: str | None = None) -> types.ModuleType:
    module = types.ModuleType("sounddevice")

    def check(**settings: Any) -> None:
        if refuse:
            raise RuntimeError(refuse)  # sounddevice.PortAudioError is a plain Exception subclass

    module.check_input_settings = check  # type: ignore[attr-defined]
    module.check_output_settings = check  # type: ignore[attr-defined]
    module.RawInputStream = FakeStream  # type: ignore[attr-defined]
    module.RawOutputStream = FakeStream  # type: ignore[attr-defined]
    return module


@pytest.fixture
def sd(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = fake_sounddevice()
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    FakeStream.opened = []
    return module


# ------------------------------------------------------------ no device: one clear error


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails with ImportError
    with pytest.raises(AudioDeviceError, match="No audio input device found: the sounddevice package is not installed"):
        MicrophoneSource()
    with pytest.raises(AudioDeviceError, match="No audio output device found"):
        SpeakerSink()


def test_missing_portaudio_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_portaudio(name: str) -> Any:
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(devices.importlib, "import_module", no_portaudio)
    with pytest.raises(AudioDeviceError, match=r"No audio input device found \(PortAudio library not found") as info:
        MicrophoneSource()
    assert isinstance(info.value, VoxcallError)


def test_no_default_device_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(refuse="Error querying device -1"))
    with pytest.raises(AudioDeviceError, match=r"No audio output device found \(Error querying device -1\)"):
        SpeakerSink(24000)


# ------------------------------------------------------------ microphone


async def test_microphone_yields_device_chunks_and_closes(sd: types.ModuleType) -> None:
    mic = MicrophoneSource(16000)
    stream = mic.stream()
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.01)
    (device,) = FakeStream.opened
    assert device.started and device.samplerate == 16000 and device.blocksize == 320  # 20 ms
    device.feed([b"\x01\x00" * 320, b"\x02\x00" * 320])
    assert await asyncio.wait_for(first, 1) == b"\x01\x00" * 320
    assert await asyncio.wait_for(anext(stream), 1) == b"\x02\x00" * 320
    await stream.aclose()  # type: ignore[attr-defined]
    assert device.stopped and device.closed


async def test_microphone_drops_the_oldest_chunks_when_the_loop_lags(sd: types.ModuleType) -> None:
    mic = MicrophoneSource(16000, max_queued_ms=40)  # room for two chunks
    stream = mic.stream()
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.01)
    FakeStream.opened[0].feed([bytes([i, 0]) * 320 for i in range(1, 6)])
    await asyncio.sleep(0.01)
    got = [await asyncio.wait_for(first, 1), await asyncio.wait_for(anext(stream), 1)]
    assert [c[0] for c in got] == [4, 5] and mic.dropped == 3  # fresh audio beats complete audio
    await stream.aclose()  # type: ignore[attr-defined]


# ------------------------------------------------------------ speaker


def test_playback_buffer_pull_pads_and_clear_drops() -> None:
    buffer = PlaybackBuffer(max_bytes=8)
    buffer.push(b"\x01\x02\x03\x04")
    assert buffer.pull(2) == b"\x01\x02" and buffer.queued == 2
    assert buffer.pull(4) == b"\x03\x04\x00\x00"  # underrun: silence
    buffer.push(b"\x05\x06" * 6)  # over the bound: the oldest goes
    assert buffer.queued == 8 and buffer.dropped == 4
    assert buffer.clear() == 8 and buffer.pull(2) == b"\x00\x00"


async def test_speaker_plays_through_the_callback_and_clear_drops_unplayed(sd: types.ModuleType) -> None:
    speaker = SpeakerSink(24000)
    assert FakeStream.opened == []  # opened on first write
    speaker.write(b"\x01\x00" * 480)
    (device,) = FakeStream.opened
    assert device.started and device.blocksize == 480
    out = bytearray(400)
    device.callback(out, 200, None, None)  # the device plays 200 samples
    assert out == b"\x01\x00" * 200
    speaker.clear()  # barge-in: the 280 unplayed samples are gone
    device.callback(out, 200, None, None)
    assert out == bytes(400)
    speaker.write(b"\x02\x00" * 10)
    draining = asyncio.ensure_future(speaker.drain(poll=0.001))
    await asyncio.sleep(0.01)
    assert not draining.done()
    device.callback(out, 200, None, None)
    await asyncio.wait_for(draining, 1)
    await speaker.close()
    assert device.stopped and device.closed and speaker.buffer.queued == 0
