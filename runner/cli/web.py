"""`serve`: the web endpoints (unsubscribe)."""

from __future__ import annotations

import click

from .. import settings as s
from .base import Env, cli, pass_env


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
@pass_env
def serve(env: Env, host: str, port: int) -> None:
    """Serve the signed one-click unsubscribe endpoint (List-Unsubscribe target)."""
    from ..unsubscribe import serve as serve_http

    app = env.app
    app.store.check()
    click.echo(f"Serving unsubscribe links on http://{host}:{port}/ (public URL {env.settings[s.PUBLIC_URL]})")
    serve_http(app.store, app.store.signing_key(env.settings[s.SECRET_KEY]), host, port)
