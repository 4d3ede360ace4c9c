"""Operations endpoints for load balancers and monitoring: /healthz, /readyz, /metrics.

- `/healthz`: the process is alive and serving (200, always, once it answers).
- `/readyz`: 200 when this node should get new calls: models loaded (or, for remote
  models, their servers answering: server/model_hosts.py), the database (and Redis,
  when configured) reachable, not draining, below its capacity; else 503.
  Either way the body says which check failed and reports the node's load.
- `/metrics`: Prometheus text exposition (server/metrics.py).

None of them needs an API key; keep them off the public side of the load balancer
(docs/deploy.md shows an nginx configuration that does so).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from voxcall.server.metrics import CONTENT_TYPE
from voxcall.server.services import Services

__all__ = ["readiness", "router"]

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

CHECK_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    svc: Services | None = getattr(request.app.state, "services", None)
    if svc is None:
        return JSONResponse({"ready": False, "checks": {"models": "loading"}}, status_code=503)
    body = await readiness(svc)
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    svc: Services | None = getattr(request.app.state, "services", None)
    if svc is None:
        return Response("starting\n", status_code=503, media_type="text/plain")
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)


async def readiness(svc: Services) -> dict[str, Any]:
    """Each check's verdict ("ok" or what is wrong), whether all passed, and the node's load."""
    models, database = await asyncio.gather(svc.model_hosts.check(), _probe(svc.store.ping))
    checks = {"models": models, "database": database, "redis": "not configured",
              "draining": "no", "capacity": svc.capacity.refusal() or "ok"}
    if svc.settings.redis_url:
        checks["redis"] = await _probe(svc.cluster.ping)
    if svc.draining:
        checks["draining"] = "yes: shutting down, refusing new joins"
    ready = all(checks[name] == "ok" for name in ("models", "database", "capacity")) and not svc.draining
    ready = ready and checks["redis"] in ("ok", "not configured")
    load = {"node": svc.cluster.node_id, "liveCalls": len(svc.live), **svc.capacity.report()}
    return {"ready": ready, "checks": checks, "load": load}


async def _probe(ping: Any) -> str:
    try:
        await asyncio.wait_for(ping(), CHECK_TIMEOUT)
    except Exception as exc:  # the reason for people; not logged at each probe
        return f"unreachable: {type(exc).__name__}"
    return "ok"
