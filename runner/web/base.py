"""What every route group shares: the context it is built with, and the headers every answer carries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from starlette.routing import BaseRoute

from .. import settings as s
from ..app import App
from ..settings import Settings
from ..store import Store

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),  # pages name an address; a shared cache must not keep them
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),  # the confirm button must not be clickjacked
    ("Referrer-Policy", "no-referrer"),  # the unsubscribe token is in the URL
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
)


@dataclass(frozen=True)
class WebContext:
    """The store, the unsubscribe signing key, the settings and the clock (read only by routes, the edge).

    `scheduler_alive` is set when the service runs inside `lifecycle run`, so /healthz can tell
    whether the scheduler beside it still works.
    """

    store: Store
    signing_key: bytes
    settings: Settings
    clock: Callable[[], dt.datetime]
    scheduler_alive: Callable[[], bool] | None = None

    @classmethod
    def for_app(cls, app: App, clock: Callable[[], dt.datetime],
                scheduler_alive: Callable[[], bool] | None = None) -> WebContext:
        return cls(store=app.store, signing_key=app.store.signing_key(app.settings[s.SECRET_KEY]),
                   settings=app.settings, clock=clock, scheduler_alive=scheduler_alive)


RouteGroup = Callable[[WebContext], list[BaseRoute]]
"""A module's `routes(web)`: the routes it adds to the app, built with the shared context."""

