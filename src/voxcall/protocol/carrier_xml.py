"""The XML each carrier runs for a voxcall call: stream the call to its join URL, or dial a transfer target.

From the Ultravox telephony docs (telephony-platforms, "custom path"), in one place:
- Twilio TwiML: `<Response><Connect><Stream url="JOIN"/></Connect></Response>`
- Telnyx TeXML: `<Connect><Stream url="JOIN" bidirectionalMode="rtp" codec="L16" bidirectionalCodec="L16"
  bidirectionalSamplingRate="16000"/></Connect>` (both codecs the same: Telnyx reports only one)
- Plivo: `<Stream keepCallAlive="true" bidirectional="true" contentType="audio/x-l16;rate=16000">JOIN</Stream>`
  (the URL is the element's text)
A cold transfer with Twilio replaces the live call's TwiML with `<Dial>`: `<Number>` for a
phone number, `<Sip>` for a SIP URI. Pure: strings in, a string out; values are escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["XML_MEDIA_TYPE", "dial_twiml", "stream_xml"]

XML_MEDIA_TYPE = "text/xml"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _render(root: ET.Element) -> str:
    return _DECLARATION + ET.tostring(root, encoding="unicode")


def stream_xml(carrier: str, join_url: str) -> str:
    """The carrier's XML that connects the call's audio to `join_url`.

    Raises:
        ValueError: a carrier other than twilio, telnyx or plivo.
    """
    root = ET.Element("Response")
    if carrier == "twilio":
        ET.SubElement(ET.SubElement(root, "Connect"), "Stream", {"url": join_url})
    elif carrier == "telnyx":
        ET.SubElement(ET.SubElement(root, "Connect"), "Stream", {
            "url": join_url, "bidirectionalMode": "rtp", "codec": "L16", "bidirectionalCodec": "L16",
            "bidirectionalSamplingRate": "16000"})
    elif carrier == "plivo":
        stream = ET.SubElement(root, "Stream", {"keepCallAlive": "true", "bidirectional": "true",
                                                "contentType": "audio/x-l16;rate=16000"})
        stream.text = join_url
    else:
        raise ValueError(f"no stream XML for carrier {carrier!r}")
    return _render(root)


def dial_twiml(target: str, *, caller_id: str | None = None, username: str | None = None,
               password: str | None = None, headers: Mapping[str, str] | None = None) -> str:
    """TwiML that dials `target`: a SIP URI (`sip:...`, with optional credentials and X-headers) or a number."""
    root = ET.Element("Response")
    dial = ET.SubElement(root, "Dial", {"callerId": caller_id} if caller_id else {})
    if target.lower().startswith(("sip:", "sips:")):
        attributes = {k: v for k, v in (("username", username), ("password", password)) if v}
        uri = target
        if headers:  # Twilio sends query parameters of a <Sip> URI as SIP headers
            joined = "&".join(f"{quote(k, safe='-_.')}={quote(str(v), safe='-_.')}" for k, v in headers.items())
            uri = f"{target}{'&' if '?' in target else '?'}{joined}"
        ET.SubElement(dial, "Sip", attributes).text = uri
    else:
        ET.SubElement(dial, "Number").text = target
    return _render(root)
