"""GET and POST /unsubscribe/{token}: the page behind every email's unsubscribe link, and RFC 8058 one-click.

GET shows a confirmation page and never changes data (mail scanners prefetch links); POST, which
is what mail clients send with `List-Unsubscribe=One-Click` and what the page's button sends,
suppresses the address and clears the customer's marketing consent.
"""

from __future__ import annotations

import html
import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from ..errors import one_line
from ..links.unsubscribe import InvalidToken, is_suppressed, unsubscribe, verify
from .base import WebContext

log = logging.getLogger("lifecycle.web")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
</head>
<body style="margin:0; padding:48px 16px; background:#f4f4f5; color:#27272a;
  font-family:-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif;">
<main style="max-width:480px; margin:0 auto; padding:32px; background:#ffffff; border-radius:8px;">
<h1 style="margin:0 0 16px; font-size:22px;">{title}</h1>
{body}
</main>
</body>
</html>
"""

_BUTTON = ("<form method=\"post\">"
           "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
           "<button type=\"submit\" style=\"padding:12px 24px; font-size:16px; font-weight:bold; color:#ffffff; "
           "background:#18181b; border:0; border-radius:6px; cursor:pointer;\">Unsubscribe</button></form>")


def page(title: str, body: str, status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """A small HTML page; `title` is escaped here, `body` must already be escaped."""
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status_code,
                        headers=headers)


INVALID = ("This link is not valid",
           "<p>This unsubscribe link is incomplete or has been changed, so nothing was changed. Use the "
           "unsubscribe link from the most recent email, or reply to it and ask to be unsubscribed.</p>")
UNAVAILABLE = ("Please try again", "<p>We could not process this right now. Please try again in a few minutes.</p>")


def routes(web: WebContext) -> list[BaseRoute]:
    async def unsubscribe_page(request: Request) -> HTMLResponse:
        if request.method == "POST":
            await request.body()  # read (within the size limit) and ignored: the token says who
        try:
            customer_id, email = verify(web.signing_key, request.path_params["token"])
        except InvalidToken:
            return page(*INVALID, status_code=400)
        shown = html.escape(email)
        try:
            if request.method == "POST":
                await run_in_threadpool(unsubscribe, web.store, customer_id, email, web.clock())
                return page("You're unsubscribed",
                            f"<p><strong>{shown}</strong> will no longer receive marketing emails from us. "
                            "Emails about orders you place may still be sent.</p>")
            if await run_in_threadpool(is_suppressed, web.store, email):
                return page("You're already unsubscribed",
                            f"<p><strong>{shown}</strong> no longer receives marketing emails from us.</p>")
        except SQLAlchemyError as exc:
            log.warning("unsubscribe: the store is unavailable (%s); answered 503", one_line(exc))
            return page(*UNAVAILABLE, status_code=503, headers={"Retry-After": "60"})
        return page("Unsubscribe?", f"<p>Stop marketing emails to <strong>{shown}</strong>?</p>{_BUTTON}")

    return [Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET", "POST"])]
