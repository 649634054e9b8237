"""POST /webhooks/{provider}: provider event webhooks, handed to `runner.webhooks.receive`.

The body arrives through the shared size limit; `receive` authenticates it, stores its events
once and suppresses what must be suppressed, or raises a WebhookError whose `status` is the
answer. Every refusal is logged on one line and changes nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ..errors import LifecycleError, one_line
from ..telemetry import count_webhook_event
from ..webhooks import Receipt, WebhookError, receive
from .base import WebContext

log = logging.getLogger("lifecycle.web")


def count(receipt: Receipt) -> None:
    """The webhook-event counter: new events by their type, replays as `duplicate`, the provider's
    events the runner does not record as `ignored`."""
    for event_type, number in receipt.recorded.items():
        for _ in range(number):
            count_webhook_event(receipt.provider, event_type)
    for _ in range(receipt.duplicates):
        count_webhook_event(receipt.provider, "duplicate")
    for _ in range(sum(receipt.ignored.values())):
        count_webhook_event(receipt.provider, "ignored")


def routes(web: WebContext) -> list[BaseRoute]:
    async def webhook(request: Request) -> JSONResponse:
        provider = request.path_params["provider"]
        body = await request.body()
        try:
            receipt = await run_in_threadpool(receive, web.store, web.settings, provider, dict(request.headers),
                                              body, web.clock())
        except WebhookError as exc:
            log.warning("webhook %r: %s; answered %d", provider[:40], exc, exc.status)
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except (SQLAlchemyError, LifecycleError) as exc:
            # the provider retries a 5xx, so nothing is lost while the store is away
            log.warning("webhook %r: the store is unavailable (%s); answered 503", provider[:40], one_line(exc))
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503, headers={"Retry-After": "60"})
        count(receipt)
        return JSONResponse(receipt.as_dict())

    return [Route("/webhooks/{provider}", webhook, methods=["POST"])]
