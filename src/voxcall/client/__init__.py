"""The voxcall Python SDK: REST `Client`, low-level `RealtimeClient`, high-level `UltravoxSession`.

Imports only `voxcall.protocol`, `voxcall.errors`, httpx and websockets (STYLE.md 8.2).
"""

from __future__ import annotations

from voxcall.client.audio import AudioSink, AudioSource
from voxcall.client.realtime import RealtimeClient
from voxcall.client.rest import Client
from voxcall.client.session import Transcript, UltravoxSession, UltravoxSessionStatus
from voxcall.client.tools import ClientToolResult

__all__ = [
    "AudioSink",
    "AudioSource",
    "Client",
    "ClientToolResult",
    "RealtimeClient",
    "Transcript",
    "UltravoxSession",
    "UltravoxSessionStatus",
]
