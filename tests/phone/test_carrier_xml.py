"""The carriers' XML: the documented stream elements for each carrier, and Twilio's <Dial> for cold transfers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from voxcall.protocol.carrier_xml import dial_twiml, stream_xml

JOIN = "wss://voice.example.com/calls/9f1c/telephony/1767000000.sig&more<>"


def parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text.split("?>", 1)[1])


def test_twilio_connects_a_stream_to_the_join_url() -> None:
    root = parse(stream_xml("twilio", JOIN))
    assert root.tag == "Response" and [c.tag for c in root] == ["Connect"]
    stream = root.find("Connect/Stream")
    assert stream is not None and stream.attrib == {"url": JOIN} and len(stream) == 0


def test_telnyx_asks_for_bidirectional_l16_at_16_khz_both_ways() -> None:
    stream = parse(stream_xml("telnyx", JOIN)).find("Connect/Stream")
    assert stream is not None and stream.attrib == {"url": JOIN, "bidirectionalMode": "rtp", "codec": "L16",
                                                    "bidirectionalCodec": "L16", "bidirectionalSamplingRate": "16000"}


def test_plivo_puts_the_url_in_the_element_text() -> None:
    root = parse(stream_xml("plivo", JOIN))
    stream = root.find("Stream")
    assert stream is not None and stream.text == JOIN
    assert stream.attrib == {"keepCallAlive": "true", "bidirectional": "true", "contentType": "audio/x-l16;rate=16000"}


def test_values_are_escaped_and_unknown_carriers_refused() -> None:
    assert "&amp;more&lt;&gt;" in stream_xml("twilio", JOIN)
    with pytest.raises(ValueError, match="exotel"):
        stream_xml("exotel", JOIN)


def test_dial_a_number_with_a_caller_id() -> None:
    dial = parse(dial_twiml("+15551230000", caller_id="+15559870000")).find("Dial")
    assert dial is not None and dial.attrib == {"callerId": "+15559870000"}
    assert [(c.tag, c.text) for c in dial] == [("Number", "+15551230000")]


def test_dial_a_sip_uri_with_credentials_and_headers() -> None:
    text = dial_twiml("sip:desk@pbx.example.com", username="u", password="p&w", headers={"X-Ticket": "A 1", "X-Lang": "en"})
    sip = parse(text).find("Dial/Sip")
    assert sip is not None and sip.attrib == {"username": "u", "password": "p&w"}
    assert sip.text == "sip:desk@pbx.example.com?X-Ticket=A%201&X-Lang=en"
    plain = parse(dial_twiml("sip:desk@pbx.example.com")).find("Dial")
    assert plain is not None and plain.attrib == {} and plain[0].text == "sip:desk@pbx.example.com"
