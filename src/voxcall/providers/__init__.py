"""Model back ends behind small structural protocols (see `voxcall.providers.base`).

Import the back end you need from its module: `embedded` (llama.cpp), `speech` and
`speech_piper` (Silero, Whisper, Piper), `openai` and `openai_speech` (remote
OpenAI-compatible servers), `fake` (scripted, for engine unit tests only).
"""

__all__: list[str] = []
