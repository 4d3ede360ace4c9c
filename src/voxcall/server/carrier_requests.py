"""A carrier's webhook request as it was signed: the public URL the carrier called, the headers, the raw body."""

from __future__ import annotations

from fastapi import Request

from voxcall.protocol.carrier_signatures import SignedRequest

__all__ = ["public_request_url", "signed_request"]


def public_request_url(request: Request, public_url: str | None) -> str:
    """The URL the carrier requested: behind a proxy, VOXCALL_PUBLIC_URL with this request's path and query."""
    if not public_url:
        return str(request.url)
    query = request.url.query
    return public_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


async def signed_request(request: Request, public_url: str | None) -> SignedRequest:
    """What the signature covers; reads the body (Starlette keeps it for later reads)."""
    return SignedRequest(method=request.method, url=public_request_url(request, public_url),
                         headers=dict(request.headers), body=await request.body(),
                         content_type=request.headers.get("content-type", ""))
