"""`serve`: the web service alone (signed unsubscribe links, /healthz, /metrics)."""

from __future__ import annotations

import click

from .. import settings as s
from .base import Env, cli, pass_env, utcnow


@cli.command()
@click.option("--host", default=None, help="Listen on this address instead of LIFECYCLE_HTTP_HOST.")
@click.option("--port", default=None, type=click.IntRange(0, 65535),
              help="Listen on this port instead of LIFECYCLE_HTTP_PORT (0: any free port).")
@pass_env
def serve(env: Env, host: str | None, port: int | None) -> None:
    """Run the web service alone until SIGTERM or Ctrl-C (`lifecycle run` also runs it, beside the scheduler)."""
    from ..web import WebContext, WebServer, create_app  # the server's imports are for these two commands only

    app = env.app
    app.store.check()
    server = WebServer.from_settings(create_app(WebContext.for_app(app, clock=utcnow)), env.settings, host, port)
    click.echo(f"Unsubscribe links in emails point at {env.settings[s.PUBLIC_URL]} (LIFECYCLE_PUBLIC_URL)")
    server.run_forever()
