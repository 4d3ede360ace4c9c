"""Outbound HTTP safety (SSRF): requests the server makes on a user's behalf (HTTP tools, webhooks).

A user-supplied URL must not reach loopback, link-local (cloud metadata at 169.254.169.254),
private-range, CGNAT, multicast or reserved addresses. The check runs where it cannot be
bypassed: in the connection layer, on every address the host name resolves to, at connect time,
and the socket then connects to the very address that was checked (no second lookup, so DNS
rebinding gains nothing). A redirect opens a new connection, so it is checked the same way.

The operator's exception list (``VOXCALL_OUTBOUND_ALLOW``: comma-separated CIDRs or host names)
lets chosen targets through, e.g. an intranet service or the test suite's loopback servers.

Use::

    policy = OutboundPolicy(["10.1.0.0/16", "hooks.internal"])
    client = safe_client(policy)          # one per process; close it on shutdown
    await client.post(url, json=...)      # raises OutboundRefused for a forbidden target
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import httpcore
import httpx

__all__ = [
    "OutboundPolicy",
    "OutboundRefused",
    "Resolver",
    "SafeNetworkBackend",
    "safe_client",
    "safe_transport",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``await resolver(host, port)`` → the IP addresses (as text) the host name stands for."""


class OutboundRefused(httpx.ConnectError):
    """The target of an outbound request is not allowed (the text says which address and why)."""


class OutboundPolicy:
    """Which outbound targets are allowed: public addresses, plus the operator's exceptions."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in allow:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not _looks_like_host(entry):
                    raise ValueError(f"outbound allow entry {entry!r} is neither a CIDR nor a host name") from None
                hosts.add(entry.lower().rstrip("."))
        self.networks: tuple[IPNetwork, ...] = tuple(networks)
        self.hosts: frozenset[str] = frozenset(hosts)

    @classmethod
    def parse(cls, text: str | None) -> OutboundPolicy:
        """A policy from the comma-separated form of ``VOXCALL_OUTBOUND_ALLOW`` (None or "" = none)."""
        return cls((text or "").split(","))

    def host_allowed(self, host: str) -> bool:
        """True when the host name itself is on the exception list."""
        return host.lower().rstrip(".") in self.hosts

    def refusal(self, address: str) -> str | None:
        """Why this resolved address may not be reached, or None when it may."""
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.networks):
            return None
        return _forbidden_reason(ip)

    def check(self, host: str, addresses: Sequence[str]) -> list[str]:
        """The addresses to connect to; raises OutboundRefused if any of them is forbidden.

        All must pass, not just one: otherwise a name with one public and one private address
        would be a way in.
        """
        if not addresses:
            raise OutboundRefused(f"outbound request refused: {host!r} does not resolve to any address")
        if self.host_allowed(host):
            return list(addresses)
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                raise OutboundRefused(f"outbound request refused: {host!r} resolves to {address} ({reason})")
        return list(addresses)

    def url_refusal(self, url: str) -> str | None:
        """A check without DNS, for validating a URL when it is stored (the connect-time check still runs).

        Refuses non-http(s) schemes, ``localhost`` names and literal forbidden IPs.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return f"URL scheme must be http or https, not {parts.scheme or 'missing'!r}"
        host = (parts.hostname or "").rstrip(".")
        if not host:
            return "URL has no host"
        if self.host_allowed(host):
            return None
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            return f"{host!r} is a loopback name"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None
        reason = self.refusal(host)
        return None if reason is None else f"{host} is {reason}"


def _looks_like_host(entry: str) -> bool:
    labels = entry.rstrip(".").split(".")
    return all(0 < len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum() for label in labels)


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _forbidden_reason(ip: IPAddress) -> str | None:
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address (cloud metadata lives here)"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a shared (CGNAT) address"),
        (ip.is_private, "a private-range address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.sixtofour  # 6to4 carries an IPv4 target; NAT64 (64:ff9b::/96) is refused as reserved
        if embedded is not None:
            return _forbidden_reason(embedded)
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for a host name (no caching)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


class SafeNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks every address, and connects to a checked one.

    TLS still verifies against (and sends SNI for) the original host name: httpcore passes it to
    ``start_tls`` separately from the address used here.
    """

    def __init__(self, policy: OutboundPolicy, resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver or system_resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port)
        allowed = self._policy.check(host, addresses)
        last: Exception | None = None
        for address in allowed:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def _addresses(self, host: str, port: int) -> list[str]:
        bare = host.strip("[]")
        try:
            return [str(ipaddress.ip_address(bare))]
        except ValueError:
            pass
        try:
            return list(await self._resolver(bare, port))
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("outbound request refused: unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _SafeTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (error mapping, streaming) over a pool that uses the safe backend."""

    def __init__(self, backend: SafeNetworkBackend, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def safe_transport(policy: OutboundPolicy, *, resolver: Resolver | None = None,
                   limits: httpx.Limits | None = None) -> httpx.AsyncBaseTransport:
    """A pooled httpx transport whose every connection passes the policy."""
    return _SafeTransport(SafeNetworkBackend(policy, resolver), limits or httpx.Limits(max_connections=100))


def safe_client(policy: OutboundPolicy, *, resolver: Resolver | None = None,
                timeout: float = 10.0, limits: httpx.Limits | None = None,
                follow_redirects: bool = False, max_redirects: int = 5) -> httpx.AsyncClient:
    """One AsyncClient for all outbound requests of a process; proxies from the environment are ignored.

    Redirects, when followed, open checked connections like any other request.
    """
    return httpx.AsyncClient(
        transport=safe_transport(policy, resolver=resolver, limits=limits),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
    )
