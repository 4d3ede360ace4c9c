"""G.711 μ-law and A-law against the ITU-T G.711 reference values, and L16 byte order."""

from __future__ import annotations

import hashlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from voxcall import codecs


def pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


def samples(data: bytes) -> list[int]:
    return [int(v) for v in np.frombuffer(data, dtype="<i2")]


ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2").tobytes()

# The first and last rows of the G.711 decoding tables (ITU-T G.711 tables 2a and 2b, as in the
# reference g711.c): μ-law codes 0x00-0x07 and 0x78-0x7F (negative), A-law codes 0x00-0x07.
ULAW_FIRST = [-32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956]
ULAW_NEAR_ZERO = [-56, -48, -40, -32, -24, -16, -8, 0]
ALAW_FIRST = [-5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736]


def test_ulaw_decoding_matches_the_reference_table() -> None:
    table = samples(codecs.ulaw_decode(bytes(range(256))))
    assert table[:8] == ULAW_FIRST
    assert table[0x78:0x80] == ULAW_NEAR_ZERO
    assert table[0x80] == 32124 and table[0xFF] == 0 and table[0x7F] == 0
    assert table[0x80:] == [-v for v in table[:0x80]]  # the sign bit mirrors the table


def test_alaw_decoding_matches_the_reference_table() -> None:
    table = samples(codecs.alaw_decode(bytes(range(256))))
    assert table[:8] == ALAW_FIRST
    assert table[0xD5] == 8 and table[0x55] == -8 and table[0xAA] == 32256 and table[0x2A] == -32256
    assert table[0x80:] == [-v for v in table[:0x80]]


def test_known_encodings() -> None:
    assert codecs.ulaw_encode(pcm(0, -1, 32767, -32768, 32124, -32124)) == bytes([0xFF, 0x7E, 0x80, 0x00, 0x80, 0x00])
    assert codecs.alaw_encode(pcm(0, -1, 32767, -32768, 8, -8)) == bytes([0xD5, 0x55, 0xAA, 0x2A, 0xD5, 0x55])
    # silence encodes to the codes telephone equipment fills gaps with
    assert set(codecs.ulaw_encode(bytes(320))) == {0xFF} and set(codecs.alaw_encode(bytes(320))) == {0xD5}


def test_every_code_survives_a_round_trip() -> None:
    codes = bytes(range(256))
    ulaw = codecs.ulaw_encode(codecs.ulaw_decode(codes))
    assert [a for a, b in zip(codes, ulaw, strict=True) if a != b] == [0x7F]  # μ-law's "negative zero" comes back as 0xFF
    assert codecs.alaw_encode(codecs.alaw_decode(codes)) == codes


def test_encoding_picks_the_nearest_level_within_a_segment() -> None:
    decoded = np.frombuffer(codecs.ulaw_decode(codecs.ulaw_encode(ALL_SAMPLES)), dtype="<i2").astype(np.int32)
    error = np.abs(decoded - np.frombuffer(ALL_SAMPLES, dtype="<i2").astype(np.int32))
    levels = np.frombuffer(codecs.ulaw_decode(bytes(range(256))), dtype="<i2").astype(np.int32)
    step = np.max(np.diff(np.unique(levels)))
    assert error.max() <= step  # and it is monotonic: a louder sample never gets a quieter code
    assert np.all(np.diff(decoded) >= 0)
    decoded = np.frombuffer(codecs.alaw_decode(codecs.alaw_encode(ALL_SAMPLES)), dtype="<i2").astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)


def test_whole_encoding_tables_match_the_reference_implementation() -> None:
    # SHA-256 of the encoding of every 16-bit sample, from CPython's audioop (the Sun reference code),
    # recorded on Python 3.11: audioop.lin2ulaw / lin2alaw over -32768..32767.
    assert hashlib.sha256(codecs.ulaw_encode(ALL_SAMPLES)).hexdigest() == ULAW_SHA256
    assert hashlib.sha256(codecs.alaw_encode(ALL_SAMPLES)).hexdigest() == ALAW_SHA256


@given(st.binary(max_size=400))
def test_l16_byte_order_round_trips(data: bytes) -> None:
    even = data[: len(data) // 2 * 2]
    assert codecs.l16be_to_pcm(codecs.pcm_to_l16be(even)) == even
    assert codecs.pcm_to_l16be(pcm(0x0102)) == b"\x01\x02"


@given(st.binary(max_size=401))
def test_odd_trailing_bytes_are_ignored(data: bytes) -> None:
    assert len(codecs.ulaw_encode(data)) == len(data) // 2
    assert len(codecs.ulaw_decode(data)) == 2 * len(data)


ULAW_SHA256 = "81d633c9e6972a18c74a58720b96cb8ca0bdd096d4060b646dd708c3b846019a"
ALAW_SHA256 = "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b"
