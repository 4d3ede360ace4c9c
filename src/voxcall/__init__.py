"""voxcall: a self-hosted, wire-compatible Ultravox realtime voice-call platform.

The top level is the SDK surface: the REST client, the realtime clients, the
session types and the errors. The server lives in `voxcall.server`, the wire
models in `voxcall.protocol`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from voxcall.client import (
    Client,
    ClientToolResult,
    RealtimeClient,
    Transcript,
    UltravoxSession,
    UltravoxSessionStatus,
)
from voxcall.errors import (
    ApiError,
    ConnectionClosed,
    InvalidRequest,
    NotFound,
    ProtocolError,
    RateLimited,
    Unauthorized,
    VoxcallError,
)

__all__ = [
    "ApiError",
    "Client",
    "ClientToolResult",
    "ConnectionClosed",
    "InvalidRequest",
    "NotFound",
    "ProtocolError",
    "RateLimited",
    "RealtimeClient",
    "Transcript",
    "UltravoxSession",
    "UltravoxSessionStatus",
    "Unauthorized",
    "VoxcallError",
    "__version__",
]
