"""The web service: signed unsubscribe and score links, webhooks, health and metrics, on Starlette served by uvicorn.

`create_app` composes the ASGI app from route groups (one module each); `WebServer` runs it with
uvicorn in a thread of its own, beside the scheduler (`lifecycle run`) or alone (`lifecycle serve`).
"""

from .app import ROUTE_GROUPS, create_app
from .base import WebContext
from .server import WebServer

__all__ = ["ROUTE_GROUPS", "WebContext", "WebServer", "create_app"]
