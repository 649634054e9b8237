"""The app factory: route groups composed into one Starlette app behind the shared middleware."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware

from .. import settings as s
from . import health, metrics, nps, unsubscribe, webhooks
from .base import RouteGroup, WebContext
from .middleware import AccessLog, BodySizeLimit, SecurityHeaders

ROUTE_GROUPS: tuple[RouteGroup, ...] = (unsubscribe.routes, nps.routes, webhooks.routes, health.routes,
                                        metrics.routes)
"""Every route group the service serves; a new group is a module with `routes(web)`, added here."""


def create_app(web: WebContext, groups: Sequence[RouteGroup] = ROUTE_GROUPS) -> Starlette:
    """The ASGI app. Middleware, outermost first: the access log sees every answer (413s included),
    the security headers go on every answer, and no route reads a body over the limit."""
    return Starlette(
        routes=[route for group in groups for route in group(web)],
        middleware=[Middleware(AccessLog), Middleware(SecurityHeaders),
                    Middleware(BodySizeLimit, max_bytes=web.settings[s.HTTP_MAX_BODY_BYTES])],
    )
