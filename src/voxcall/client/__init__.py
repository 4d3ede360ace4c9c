"""The voxcall Python SDK: REST `Client`, low-level `RealtimeClient`, high-level `UltravoxSession`.

Imports only `voxcall.protocol`, `voxcall.errors`, `voxcall.audio`, httpx and websockets (STYLE.md 8.2);
`sounddevice` only when a microphone or speaker is opened.
"""

from __future__ import annotations

from voxcall.client.audio import AudioSink, AudioSource
from voxcall.client.devices import AudioDeviceError, MicrophoneSource, SpeakerSink
from voxcall.client.files import BytesSink, WavFileSink, WavFileSource
from voxcall.client.realtime import RealtimeClient
from voxcall.client.rest import Client
from voxcall.client.session import Transcript, UltravoxSession, UltravoxSessionStatus
from voxcall.client.tools import ClientToolResult

__all__ = [
    "AudioDeviceError",
    "AudioSink",
    "AudioSource",
    "BytesSink",
    "Client",
    "ClientToolResult",
    "MicrophoneSource",
    "RealtimeClient",
    "SpeakerSink",
    "Transcript",
    "UltravoxSession",
    "UltravoxSessionStatus",
    "WavFileSink",
    "WavFileSource",
]
