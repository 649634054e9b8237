"""GET /nps/{token}: a score link of the Net Promoter Score question, recorded in one click.

Unlike the unsubscribe page, a GET records: one click is the whole answer (as Delighted and
Klaviyo do), and a score changes nothing a customer would have to undo. The cost is that a mail
scanner following every link records a score; the last link it follows wins, and the customer's
own later click replaces it (docs/web.md). HEAD, which link checkers send, records nothing. The
thank-you page repeats the scale, each score a link of the same email, so a mis-tap is fixed
with the next tap.
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
from ..links.nps import SCORES, Answer, Outcome, answer, score_token, verify_score
from ..links.unsubscribe import InvalidToken
from ..telemetry import count_nps_answer
from .base import WebContext
from .unsubscribe import UNAVAILABLE, page

log = logging.getLogger("lifecycle.web")

INVALID = ("This link is not valid",
           "<p>This link is incomplete or has been changed, so no answer was recorded. Use the link in "
           "the email you received, or reply to that email and tell us.</p>")
UNKNOWN = ("Thank you",
           "<p>This survey is no longer open, so no answer was recorded. If you'd like to tell us "
           "something, just reply to the email.</p>")

_CELL = ("flex:1 1 0; min-width:0; padding:10px 0; text-align:center; font-weight:bold; text-decoration:none; "
         "border-radius:4px; border:1px solid #d4d4d8;")


def _scale(key: bytes, done: Answer) -> str:
    """The eleven scores as links of the same email, the recorded one highlighted."""
    cells = []
    for score in SCORES:
        colours = "color:#ffffff; background:#18181b;" if score == done.score else "color:#18181b; background:#f4f4f5;"
        current = ' aria-current="true"' if score == done.score else ""
        cells.append(f'<a href="{html.escape(score_token(key, done.send_id, score))}"{current} '
                     f'style="{_CELL} {colours}">{score}</a>')
    return f'<p style="display:flex; gap:4px; margin:16px 0 0;">{"".join(cells)}</p>'


def thank_you(key: bytes, done: Answer) -> HTMLResponse:
    return page("Thank you", f"<p>We've recorded your answer: <strong>{done.score}</strong> out of 10. It helps us "
                             "do better.</p><p>Tapped the wrong number? Choose another one; the last one counts.</p>"
                             f"{_scale(key, done)}")


def routes(web: WebContext) -> list[BaseRoute]:
    async def score_page(request: Request) -> HTMLResponse:
        try:
            send_id, score = verify_score(web.signing_key, request.path_params["token"])
        except InvalidToken:
            count_nps_answer("invalid")
            return page(*INVALID, status_code=400)
        if request.method == "HEAD":
            return page("Thank you", "")
        try:
            done = await run_in_threadpool(answer, web.store, send_id, score, web.clock())
        except SQLAlchemyError as exc:
            log.warning("nps: the store is unavailable (%s); answered 503", one_line(exc))
            return page(*UNAVAILABLE, status_code=503, headers={"Retry-After": "60"})
        count_nps_answer(done.outcome.value)
        if done.outcome is Outcome.UNKNOWN:
            return page(*UNKNOWN, status_code=404)
        return thank_you(web.signing_key, done)

    return [Route("/nps/{token}", score_page, methods=["GET"])]
