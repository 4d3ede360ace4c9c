"""Outbound safety (SSRF): every forbidden target is refused at connect time, on the resolved address."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
import pytest

from tests.toolserver import ToolServer
from voxcall.outbound import OutboundPolicy, OutboundRefused, safe_client

FORBIDDEN = [
    "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "fd00:ec2::254", "fe80::1",
    "224.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1", "240.0.0.1", "not-an-ip",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_private_loopback_link_local_and_reserved_addresses_are_refused(address: str) -> None:
    assert OutboundPolicy().refusal(address) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert OutboundPolicy().refusal(address) is None


def test_allow_list_takes_cidrs_and_host_names() -> None:
    policy = OutboundPolicy.parse(" 127.0.0.0/8, 10.1.0.0/16 ,hooks.internal,,")
    assert policy.refusal("127.0.0.1") is None and policy.refusal("10.1.200.3") is None
    assert policy.refusal("10.2.0.1") is not None
    assert policy.host_allowed("HOOKS.internal.") and not policy.host_allowed("other.internal")
    assert policy.check("hooks.internal", ["192.168.0.9"]) == ["192.168.0.9"]
    with pytest.raises(ValueError, match="neither a CIDR nor a host name"):
        OutboundPolicy(["http://x/"])


def test_every_resolved_address_must_pass() -> None:
    with pytest.raises(OutboundRefused, match="10.0.0.1"):
        OutboundPolicy().check("mixed.test", ["8.8.8.8", "10.0.0.1"])
    with pytest.raises(OutboundRefused, match="does not resolve"):
        OutboundPolicy().check("empty.test", [])


def test_url_refusal_checks_scheme_and_literal_hosts_without_dns() -> None:
    policy = OutboundPolicy()
    assert policy.url_refusal("https://api.example.com/x") is None
    assert "scheme" in (policy.url_refusal("file:///etc/passwd") or "")
    assert "loopback" in (policy.url_refusal("http://localhost:8000/") or "")
    assert "link-local" in (policy.url_refusal("http://169.254.169.254/latest/meta-data") or "")
    assert policy.url_refusal("http://[::1]/") is not None
    assert OutboundPolicy(["127.0.0.0/8"]).url_refusal("http://127.0.0.1:9/") is None


@pytest.fixture
def backend() -> Iterator[ToolServer]:
    with ToolServer() as server:
        server.routes["/ok"] = lambda seen: (200, {"Content-Type": "text/plain"}, b"hello " + seen.headers["host"].encode())
        yield server


def _resolver(table: dict[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


async def test_a_literal_loopback_target_is_refused_and_never_reached(backend: ToolServer) -> None:
    async with safe_client(OutboundPolicy()) as client:
        with pytest.raises(OutboundRefused, match="loopback"):
            await client.get(f"{backend.url}/ok")
    assert backend.seen == []


async def test_localhost_is_refused_after_resolution(backend: ToolServer) -> None:
    async with safe_client(OutboundPolicy()) as client:
        with pytest.raises(OutboundRefused, match="'localhost' resolves to"):
            await client.get(f"http://localhost:{backend.port}/ok")
    assert backend.seen == []


async def test_a_public_looking_name_that_resolves_to_loopback_is_refused(backend: ToolServer) -> None:
    resolver = _resolver({"tools.example.test": ["127.0.0.1"]})
    async with safe_client(OutboundPolicy(), resolver=resolver) as client:
        with pytest.raises(OutboundRefused, match="tools.example.test"):
            await client.get(f"http://tools.example.test:{backend.port}/ok")
    assert backend.seen == []


async def test_allowed_targets_connect_to_the_checked_address_with_the_original_host(backend: ToolServer) -> None:
    resolver = _resolver({"tools.example.test": ["127.0.0.1"]})
    async with safe_client(OutboundPolicy(["127.0.0.0/8"]), resolver=resolver) as client:
        answer = await client.get(f"http://tools.example.test:{backend.port}/ok")
        assert answer.text == f"hello tools.example.test:{backend.port}"
        assert (await client.get(f"{backend.url}/ok")).status_code == 200
    assert len(backend.seen) == 2


async def test_a_redirect_to_a_private_address_is_refused(backend: ToolServer) -> None:
    backend.routes["/hop"] = lambda seen: (302, {"Location": f"http://10.0.0.1:{backend.port}/ok"}, b"")
    backend.routes["/loop"] = lambda seen: (302, {"Location": f"{backend.url}/ok"}, b"")
    resolver = _resolver({"hooks.test": ["127.0.0.1"]})
    async with safe_client(OutboundPolicy(["hooks.test"]), resolver=resolver, follow_redirects=True) as client:
        with pytest.raises(OutboundRefused, match="10.0.0.1"):
            await client.get(f"http://hooks.test:{backend.port}/hop")
        with pytest.raises(OutboundRefused, match="127.0.0.1"):
            await client.get(f"http://hooks.test:{backend.port}/loop")
    assert [s.path for s in backend.seen] == ["/hop", "/loop"]


async def test_unresolvable_names_are_connect_errors() -> None:
    async with safe_client(OutboundPolicy(), resolver=_resolver({})) as client:
        with pytest.raises(httpx.ConnectError, match="cannot resolve"):
            await client.get("http://nowhere.test/")


