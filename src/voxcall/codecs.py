"""Telephone codecs on plain bytes: G.711 μ-law and A-law, and L16 byte order.

The `audioop` module that used to do G.711 is gone from Python 3.13, so the
codecs here are numpy lookup tables built once at import from the segment
rules of ITU-T G.711 (the same arithmetic as the classic Sun Microsystems
reference `g711.c`): encoding is one table of 65,536 bytes indexed by the
16-bit sample, decoding one table of 256 samples. PCM is s16le mono, as
everywhere else in voxcall.
"""

from __future__ import annotations

import numpy as np

__all__ = ["alaw_decode", "alaw_encode", "l16be_to_pcm", "pcm_to_l16be", "ulaw_decode", "ulaw_encode"]

_BIAS = 0x84
_CLIP = 8159  # in 14-bit units


def _ulaw_decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _BIAS - magnitude, magnitude - _BIAS).astype("<i2")


def _ulaw_encode_table() -> np.ndarray:
    sample = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit, as the reference code does
    mask = np.where(sample < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(sample), _CLIP) + (_BIAS >> 2)
    segment = np.zeros_like(magnitude)
    for seg in range(1, 8):  # segment ends 0x3F, 0x7F, ... 0x1FFF
        segment[magnitude > (0x40 << (seg - 1)) - 1] = seg
    codes = ((segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)) ^ mask
    codes = np.where(magnitude > 0x1FFF, 0x7F ^ mask, codes)  # past the last segment: the loudest code
    return _by_uint16(codes & 0xFF)


def _alaw_decode_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code & 0x70) >> 4
    value = ((code & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    value = np.where(segment > 1, value << np.maximum(segment - 1, 0), value)
    return np.where(code & 0x80, value, -value).astype("<i2")


def _alaw_encode_table() -> np.ndarray:
    sample = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit
    mask = np.where(sample >= 0, 0xD5, 0x55)
    magnitude = np.where(sample >= 0, sample, -sample - 1)
    segment = np.zeros_like(magnitude)
    for seg in range(1, 8):  # segment ends 0x1F, 0x3F, 0x7F, ... 0xFFF
        segment[magnitude > (0x20 << (seg - 1)) - 1] = seg
    step = np.where(segment < 2, 1, segment)
    codes = ((segment << 4) | ((magnitude >> step) & 0x0F)) ^ mask
    return _by_uint16(codes & 0xFF)


def _by_uint16(codes_from_min: np.ndarray) -> np.ndarray:
    """Reorder a table built for samples -32768..32767 so it is indexed by the sample's uint16 view."""
    return np.roll(codes_from_min.astype(np.uint8), -32768)


_ULAW_DEC = _ulaw_decode_table()
_ULAW_ENC = _ulaw_encode_table()
_ALAW_DEC = _alaw_decode_table()
_ALAW_ENC = _alaw_encode_table()


def ulaw_encode(pcm: bytes) -> bytes:
    """s16le PCM → G.711 μ-law, one byte a sample (an odd trailing byte is ignored)."""
    return bytes(_ULAW_ENC[np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<u2")].tobytes())


def ulaw_decode(data: bytes) -> bytes:
    """G.711 μ-law → s16le PCM."""
    return bytes(_ULAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes())


def alaw_encode(pcm: bytes) -> bytes:
    """s16le PCM → G.711 A-law (with the even-bit inversion on the wire)."""
    return bytes(_ALAW_ENC[np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<u2")].tobytes())


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law → s16le PCM."""
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm_to_l16be(pcm: bytes) -> bytes:
    """s16le → L16 in network byte order (RFC 3551 4.5.11)."""
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(">i2").tobytes()


def l16be_to_pcm(data: bytes) -> bytes:
    """L16 in network byte order → s16le."""
    return np.frombuffer(data[: len(data) // 2 * 2], dtype=">i2").astype("<i2").tobytes()
