"""Time rendering and MIME building against plain jinja2 and lean stdlib MIME for the same emails.

    python bench/render.py --db bench/store-100k.db [--per-campaign 400] [--rounds 3]

On a copy of a generated store (bench/generate.py), each shipped campaign's first due
occurrences get their template contexts built the way dispatch builds them; those contexts are
then rendered and turned into the bytes the file provider writes, twice:

- runner: `Renderer.render` (the sandboxed environment) and `OutgoingMessage.mime_bytes`;
- floor: a plain (not sandboxed) jinja2 environment with the same templates, options and filters,
  and the message written out with the standard library's encoders and nothing else
  (quoted-printable bodies by binascii, RFC 2047 headers by email.header, a random boundary).

Every email is checked equal first: the same subject, preheader, From, HTML and text, and, parsed
back with `email.policy.default`, the same headers and decoded parts. Prints emails per second
and per CPU second, and the ratios runner / floor for render, MIME and both (median of rounds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.policy
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from binascii import b2a_qp
from collections.abc import Callable, Mapping
from email.header import Header
from email.parser import BytesParser
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.app import App  # noqa: E402
from runner.campaign_state import campaign_state  # noqa: E402
from runner.campaigns import MessageSpec  # noqa: E402
from runner.context import build_contexts  # noqa: E402
from runner.dispatch import message_headers  # noqa: E402
from runner.engine import find_occurrences, store_time_zones, window_for  # noqa: E402
from runner.i18n.filters import FILTERS  # noqa: E402
from runner.models import SendStatus  # noqa: E402
from runner.providers.base import OutgoingMessage  # noqa: E402
from runner.recommend import refresh_affinity  # noqa: E402
from runner.rendering.mime import QP_LINES  # noqa: E402
from runner.rendering.templates import RenderedEmail, Renderer, tidy_text  # noqa: E402
from runner.settings import Settings  # noqa: E402

PARSER = BytesParser(policy=email.policy.default)
DATE = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)

Job = tuple[MessageSpec, dict[str, Any], dict[str, str]]  # message, context, extra headers


def jobs(db: Path, now: dt.datetime, per_campaign: int) -> tuple[App, list[Job], str]:
    """Contexts of the first `per_campaign` planned occurrences of every shipped campaign."""
    app = App(Settings({"LIFECYCLE_DATABASE_URL": f"sqlite:///{db}", "LIFECYCLE_CAMPAIGNS_DIR": str(ROOT / "campaigns"),
                        "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"), "LIFECYCLE_SECRET_KEY": "bench"}))
    app.store.init()
    with app.store.session() as session:
        refresh_affinity(session, now)
    shop = app.shop()
    found: list[Job] = []
    with app.store.reading() as session:
        zones = store_time_zones(session)
        for campaign in app.campaigns(now):
            window = window_for(campaign, now, campaign_state(session, campaign.id), shop.default_zone, zones,
                                shop.currency)
            due = (o for o in find_occurrences(session, campaign, window) if o.status is SendStatus.PLANNED)
            items = list(islice(due, per_campaign))
            for occ, context in zip(items, build_contexts(session, campaign, items, shop, now), strict=True):
                headers = message_headers(campaign.id, 1, context["unsubscribe_url"])
                found.append((campaign.message_for(occ.variant), context, headers))
    return app, found, app.default_from


# ---------------------------------------------------------------- the floor

class PlainRenderer:
    """Plain jinja2: the same templates, options, filters and globals, without the sandbox."""

    def __init__(self, templates: Path, locale: str) -> None:
        self.files = Environment(loader=FileSystemLoader(templates), undefined=StrictUndefined, trim_blocks=True,
                                 lstrip_blocks=True, autoescape=select_autoescape(["html"], default_for_string=False))
        self.strings = Environment(undefined=StrictUndefined)
        for env in (self.files, self.strings):
            env.filters.update(FILTERS)
            env.globals["locale"] = locale
        self.compiled: dict[str, Template] = {}

    def string(self, source: str, context: Mapping[str, Any]) -> str:
        template = self.compiled.get(source) or self.compiled.setdefault(source, self.strings.from_string(source))
        return " ".join(template.render(context).split())

    def render(self, message: MessageSpec, context: Mapping[str, Any], default_from: str) -> RenderedEmail:
        subject = self.string(message.subject, context)
        preheader = self.string(message.preheader, context) if message.preheader else ""
        from_ = self.string(message.from_ or default_from, context)
        reply_to = self.string(message.reply_to, context) if message.reply_to else None
        page = {**context, "subject": subject, "preheader": preheader}
        html = self.files.get_template(f"{message.template}.html").render(page)
        text = tidy_text(self.files.get_template(f"{message.template}.txt").render(page))
        return RenderedEmail(subject=subject, preheader=preheader, html=html, text=text, from_=from_,
                             reply_to=reply_to or None)


def lean_header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode(linesep="\r\n")


@cache  # the campaign's From: the same for all its emails
def lean_address(value: str) -> str:
    name, addr = parseaddr(value)
    return lean_header(formataddr((name, addr), charset="utf-8") if addr.isascii() else value)


def quoted_printable(body: str) -> str:
    """binascii's quoted-printable encoder (in C), CRLF line endings; the last line needs one for it."""
    crlf = body.replace("\n", "\r\n") + "\r\n"
    return b2a_qp(crlf.encode("utf-8"), istext=True)[:-2].decode("ascii")


def lean_mime(email_: RenderedEmail, to: str, headers: Mapping[str, str], date: dt.datetime = DATE) -> bytes:
    """multipart/alternative written out directly: the bodies quoted-printable, the boundary a random
    token with `=_` (which quoted-printable never leaves in a body); stamped with `date`."""
    boundary = f"=_{uuid.uuid4().hex}"
    head = [f"Content-Type: multipart/alternative; boundary=\"{boundary}\"", "MIME-Version: 1.0",
            f"Subject: {lean_header(email_.subject)}", f"From: {lean_address(email_.from_)}",
            f"To: {to}"]  # a customer's address as the store keeps it: bare, ASCII
    if email_.reply_to:
        head.append(f"Reply-To: {lean_address(email_.reply_to)}")
    head += [f"Date: {format_datetime(date)}", f"Message-ID: {make_msgid(domain='example.com')}"]
    head += [f"{name}: {lean_header(value)}" for name, value in headers.items()]
    parts = [f"--{boundary}\r\nContent-Type: text/{kind}; charset=\"utf-8\"\r\n"
             f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{quoted_printable(body)}\r\n"
             for body, kind in ((email_.text, "plain"), (email_.html, "html"))]
    return ("\r\n".join(head) + "\r\n\r\n" + "".join(parts) + f"--{boundary}--\r\n").encode("ascii")


# ---------------------------------------------------------------- comparing and timing

def outgoing(rendered: RenderedEmail, to: str, headers: dict[str, str]) -> OutgoingMessage:
    return OutgoingMessage.from_rendered(rendered, idempotency_key="bench", campaign_id="bench", send_id=1, to=to,
                                         headers=headers, date=DATE)


def content(raw: bytes) -> tuple[Any, ...]:
    """What a mail client reads from a message: its headers but Message-ID, and each part decoded."""
    parsed = PARSER.parsebytes(raw)
    headers = tuple((k, str(v)) for k, v in parsed.items() if k not in ("Message-ID", "Content-Type"))
    return headers, parsed.get_content_type(), tuple(
        (part.get_content_type(), part.get_content()) for part in parsed.iter_parts())


def runner_render(renderer: Renderer, work: list[Job], default_from: str) -> list[RenderedEmail]:
    """As dispatch renders: the templates checked for edits once per batch (here, per round)."""
    with renderer.pinned():
        return [renderer.render(m, c, default_from=default_from) for m, c, _ in work]


def runner_mime(emails: list[RenderedEmail], work: list[Job]) -> list[bytes]:
    """As the file provider writes them. The quoted-printable lines kept from earlier rounds are
    forgotten first: within a round, as in a tick, only lines repeated from one email to the next
    are found encoded already."""
    QP_LINES.clear()
    return [outgoing(r, c["customer"]["email"], h).mime_bytes for r, (_, c, h) in zip(emails, work, strict=True)]


def timed(work: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a store made by bench/generate.py")
    parser.add_argument("--at", default="2026-11-23T10:00:00", help="the instant (the generator's --now, UTC)")
    parser.add_argument("--per-campaign", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    now = dt.datetime.fromisoformat(args.at)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "store.db"
        shutil.copy(args.db, db)
        app, work, default_from = jobs(db, now, args.per_campaign)
    renderer, plain = app.renderer, PlainRenderer(ROOT / "templates", app.renderer.locale)

    runner_emails = runner_render(renderer, work, default_from)
    floor_emails = [plain.render(m, c, default_from) for m, c, _ in work]
    if runner_emails != floor_emails:
        sys.exit("the plain jinja2 floor renders different emails")
    for (_, context, headers), rendered in zip(work, runner_emails, strict=True):
        to = context["customer"]["email"]
        if content(outgoing(rendered, to, headers).mime_bytes) != content(lean_mime(rendered, to, headers)):
            sys.exit("the lean MIME floor builds a different message")
    print(f"{len(work):,} emails of {len({m.template for m, _, _ in work})} templates, checked equal; "
          f"median of {args.rounds} rounds")

    phases: dict[str, Callable[[], object]] = {
        "runner render": lambda: runner_render(renderer, work, default_from),
        "floor render": lambda: [plain.render(m, c, default_from) for m, c, _ in work],
        "runner MIME": lambda: runner_mime(runner_emails, work),
        "floor MIME": lambda: [lean_mime(r, c["customer"]["email"], h)
                               for r, (_, c, h) in zip(floor_emails, work, strict=True)],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in phases}
    for _ in range(args.rounds):
        for name, phase in phases.items():
            times[name].append(timed(phase))
    wall = {name: statistics.median(t[0] for t in runs) for name, runs in times.items()}
    cpu = {name: statistics.median(t[1] for t in runs) for name, runs in times.items()}
    for name in phases:
        print(f"  {name:<14} {wall[name]:6.3f} s wall, {cpu[name]:6.3f} s CPU   "
              f"{len(work) / cpu[name]:8,.0f} emails per CPU second")
    for label, parts in (("render", ["render"]), ("MIME", ["MIME"]), ("render + MIME", ["render", "MIME"])):
        runner = sum(cpu[f"runner {p}"] for p in parts)
        floor = sum(cpu[f"floor {p}"] for p in parts)
        print(f"  {label:<14} runner {len(work) / runner:7,.0f}/s per core, floor {len(work) / floor:7,.0f}/s, "
              f"runner/floor {runner / floor:.2f} (CPU; wall "
              f"{sum(wall[f'runner {p}'] for p in parts) / sum(wall[f'floor {p}'] for p in parts):.2f})")


if __name__ == "__main__":
    main()
