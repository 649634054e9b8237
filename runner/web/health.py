"""GET /healthz: whether the store answers and, under `lifecycle run`, whether the scheduler still runs."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ..errors import LifecycleError, one_line
from .base import WebContext

log = logging.getLogger("lifecycle.web")


def checks(web: WebContext) -> dict[str, str]:
    """Each check's state, "ok" or what is wrong. Details go to the log, not to the (public) answer."""
    result: dict[str, str] = {}
    try:
        web.store.check()
        result["database"] = "ok"
    except (LifecycleError, SQLAlchemyError) as exc:
        log.warning("healthz: the store is unavailable (%s)", one_line(exc))
        result["database"] = "unavailable"
    if web.scheduler_alive is not None:
        result["scheduler"] = "ok" if web.scheduler_alive() else "stopped"
    return result


def routes(web: WebContext) -> list[BaseRoute]:
    async def healthz(request: Request) -> JSONResponse:
        found = await run_in_threadpool(checks, web)
        healthy = all(state == "ok" for state in found.values())
        return JSONResponse({"status": "ok" if healthy else "unhealthy", "checks": found},
                            status_code=200 if healthy else 503)

    return [Route("/healthz", healthz, methods=["GET"])]
