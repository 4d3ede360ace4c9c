"""voxcall: a self-hosted, wire-compatible Ultravox realtime voice-call platform.

The top level is the SDK surface: the REST client, the realtime clients, the
protocol models and the errors. The server lives in `voxcall.server`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
