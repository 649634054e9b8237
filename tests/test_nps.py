"""The Net Promoter Score question: signed score links, recording a click once per email (a later click
changes it), the report's figures, and `nps_score` in audience filters."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY
from shopkit import ShopBuilder, utc, write_campaign
from sqlalchemy import select
from starlette.testclient import TestClient
from test_engine import install, ledger, tick
from test_review_request import text_parts
from webkit import KEY, web_context

from runner.app import App
from runner.audience import audience_sql
from runner.campaigns import Condition, parse_campaign
from runner.cli import cli
from runner.links.nps import SCORES, Outcome, answer, nps_context, score_token, verify_score
from runner.links.unsubscribe import InvalidToken, sign, signed_token
from runner.models import Customer, NpsResponse, Send
from runner.privacy.forget import forget_customer
from runner.reports.nps import NpsFigures, nps_report
from runner.store import Store
from runner.triggers.base import Window
from runner.web import WebContext, create_app

NOW = utc(2026, 11, 24, 9, 30)


def client_for(web: WebContext) -> TestClient:
    return TestClient(create_app(web), base_url="http://mail.example.com")


def add_send(store: Store, customer_id: int, campaign_id: str = "review-request", key: str | None = None) -> int:
    """A sent ledger row, as a tick leaves it."""
    with store.session() as session:
        send = Send(campaign_id=campaign_id, occurrence_key=key or f"order:{customer_id}", customer_id=customer_id,
                    due_at=dt.datetime(2026, 11, 20), status="sent", created_at=dt.datetime(2026, 11, 20),
                    updated_at=dt.datetime(2026, 11, 20), sent_at=dt.datetime(2026, 11, 20))
        session.add(send)
        session.commit()
        return send.id  # type: ignore[return-value]


def responses(store: Store) -> list[tuple[int, int, int, str, dt.datetime, dt.datetime]]:
    with store.reading() as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(NpsResponse.send_id, NpsResponse.customer_id, NpsResponse.score, NpsResponse.campaign_id,
                   NpsResponse.answered_at, NpsResponse.changed_at).order_by(NpsResponse.send_id))]


def answers_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("lifecycle_nps_answers_total", {"outcome": outcome}) or 0.0


# ---------------------------------------------------------------- tokens

def test_a_score_token_names_its_send_and_score_and_nothing_else_passes():
    token = score_token(KEY, 42, 7)
    assert verify_score(KEY, token) == (42, 7)
    assert len({score_token(KEY, 42, score) for score in SCORES}) == 11
    payload, mac = token.split(".")
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    forged = [
        f"{payload}.{flipped}",  # signature changed
        score_token(b"another-key", 42, 7),  # signed with another shop's key
        signed_token(KEY, b"nps:42:11"),  # a score the question does not have
        signed_token(KEY, b"nps:42"),  # no score
        signed_token(KEY, b"42:7"),  # no "nps:" prefix
        sign(KEY, 42, "ada@example.com"),  # an unsubscribe link is not a score link
        "42.7", "", "a" * 3000,
    ]
    for token in forged:
        with pytest.raises(InvalidToken):
            verify_score(KEY, token)


def test_a_score_link_never_passes_as_an_unsubscribe_link():
    from runner.links.unsubscribe import verify

    with pytest.raises(InvalidToken):
        verify(KEY, score_token(KEY, 42, 7))


def test_templates_get_eleven_links_and_previews_get_samples_that_record_nothing():
    links = nps_context("https://mail.example.com/", KEY, 42)["links"]
    assert [link["score"] for link in links] == list(range(11))
    assert all(link["url"].startswith("https://mail.example.com/nps/") for link in links)
    assert [verify_score(KEY, link["url"].rsplit("/", 1)[1]) for link in links] == [(42, s) for s in range(11)]
    samples = nps_context("https://mail.example.com", KEY, None)["links"]
    assert samples[3]["url"] == "https://mail.example.com/nps/sample-3"
    with pytest.raises(InvalidToken):
        verify_score(KEY, "sample-3")


def test_a_context_signs_the_score_links_only_when_a_template_reads_them(monkeypatch: pytest.MonkeyPatch):
    from jinja2.sandbox import SandboxedEnvironment

    import runner.context
    built: list[int | None] = []

    def counted(public_url: str, key: bytes, send_id: int | None) -> dict[str, object]:
        built.append(send_id)
        return nps_context(public_url, key, send_id)

    monkeypatch.setattr(runner.context, "nps_context", counted)
    nps = runner.context.lazy_nps("https://mail.example.com", KEY, 42)
    env = SandboxedEnvironment()
    assert env.from_string("{{ customer }}").render(customer="Ada", nps=nps) == "Ada" and built == []
    shown = env.from_string("{{ nps.question }}|{% for link in nps.links %}{{ link.url }} {% endfor %}").render(nps=nps)
    assert shown == nps_context("https://mail.example.com", KEY, 42)["question"] + "|" + "".join(
        f"{link['url']} " for link in nps_context("https://mail.example.com", KEY, 42)["links"])
    assert built == [42]  # once, however often it is read
    assert dict(nps) == nps_context("https://mail.example.com", KEY, 42)


# ---------------------------------------------------------------- recording

def test_the_first_click_records_and_a_later_click_changes_the_score_with_its_time(app: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    send = add_send(app.store, ada)
    first, later = NOW, NOW + dt.timedelta(minutes=3)
    assert answer(app.store, send, 3, first).outcome is Outcome.RECORDED
    assert answer(app.store, send, 3, later).outcome is Outcome.UNCHANGED
    assert responses(app.store) == [(send, ada, 3, "review-request", first.replace(tzinfo=None),
                                     first.replace(tzinfo=None))]
    assert answer(app.store, send, 9, later).outcome is Outcome.CHANGED
    assert responses(app.store) == [(send, ada, 9, "review-request", first.replace(tzinfo=None),
                                     later.replace(tzinfo=None))]


def test_each_email_has_its_own_answer(app: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    october, november = add_send(app.store, ada, key="order:1"), add_send(app.store, ada, key="order:2")
    answer(app.store, october, 4, NOW)
    answer(app.store, november, 10, NOW)
    assert [(row[0], row[2]) for row in responses(app.store)] == [(october, 4), (november, 10)]


def test_no_answer_for_a_send_that_does_not_exist_or_a_forgotten_customer(app: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    send = add_send(app.store, ada)
    assert answer(app.store, send + 1, 8, NOW).outcome is Outcome.UNKNOWN
    with app.store.session() as session:
        forget_customer(session, "ada@example.com", NOW)
    assert answer(app.store, send, 8, NOW).outcome is Outcome.UNKNOWN
    assert responses(app.store) == []


def test_a_customer_export_holds_their_answers(app: App, shop: ShopBuilder):
    from runner.privacy.export import export_customer

    ada = shop.customer("ada@example.com")
    answer(app.store, add_send(app.store, ada), 6, NOW)
    with app.store.session() as session:
        document = export_customer(session, "ada@example.com", NOW)
    assert [(row["score"], row["answered_at"]) for row in document["nps_responses"]] == [(6, "2026-11-24T09:30:00Z")]


# ---------------------------------------------------------------- the web route

def test_following_a_score_link_records_it_and_thanks_the_customer(store: Store):
    ada = ShopBuilder(store).customer("ada@example.com")
    send = add_send(store, ada)
    before = answers_counted("recorded")
    with client_for(web_context(store)) as client:
        response = client.get(f"/nps/{score_token(KEY, send, 8)}")
    assert response.status_code == 200
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in response.text
    assert "<strong>8</strong> out of 10" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert [row[2] for row in responses(store)] == [8]
    assert answers_counted("recorded") == before + 1
    # the page's own scale changes the answer: each score a signed link of the same email
    others = re.findall(r'href="([^"]+)"', response.text)
    assert [verify_score(KEY, token) for token in others] == [(send, score) for score in SCORES]
    assert 'aria-current="true" style="' in response.text.split(f'href="{score_token(KEY, send, 8)}"')[1][:30]


def test_a_later_click_on_another_score_changes_it(store: Store):
    ada = ShopBuilder(store).customer("ada@example.com")
    send = add_send(store, ada)
    with client_for(web_context(store, now=NOW)) as client:
        client.get(f"/nps/{score_token(KEY, send, 2)}")
    with client_for(web_context(store, now=NOW + dt.timedelta(hours=1))) as client:
        assert client.get(f"/nps/{score_token(KEY, send, 10)}").status_code == 200
    ((_, _, score, _, answered, changed),) = responses(store)
    assert (score, answered, changed) == (10, dt.datetime(2026, 11, 24, 9, 30), dt.datetime(2026, 11, 24, 10, 30))


def test_a_forged_or_tampered_link_is_refused_and_changes_nothing(store: Store):
    ada = ShopBuilder(store).customer("ada@example.com")
    send = add_send(store, ada)
    mac = score_token(KEY, send, 9).split(".")[1]
    tampered_payload = score_token(KEY, send, 0).split(".")[0]  # score 0 with score 9's signature
    before = answers_counted("invalid")
    with client_for(web_context(store)) as client:
        for token in (f"{tampered_payload}.{mac}", score_token(b"other", send, 9), "sample-9",
                      sign(KEY, ada, "ada@example.com")):
            response = client.get(f"/nps/{token}")
            assert response.status_code == 400
            assert "This link is not valid" in response.text
    assert responses(store) == []
    assert answers_counted("invalid") == before + 4


def test_a_link_of_an_unknown_send_or_a_forgotten_customer_gets_a_polite_page(store: Store):
    ada = ShopBuilder(store).customer("ada@example.com")
    send = add_send(store, ada)
    with store.session() as session:
        forget_customer(session, "ada@example.com", NOW)
    with client_for(web_context(store)) as client:
        for token in (score_token(KEY, send, 9), score_token(KEY, send + 100, 9)):
            response = client.get(f"/nps/{token}")
            assert response.status_code == 404
            assert "no answer was recorded" in response.text
    assert responses(store) == []


def test_a_head_request_records_nothing(store: Store):
    ada = ShopBuilder(store).customer("ada@example.com")
    send = add_send(store, ada)
    with client_for(web_context(store)) as client:
        assert client.head(f"/nps/{score_token(KEY, send, 9)}").status_code == 200
    assert responses(store) == []


def test_the_access_log_masks_the_score_token(store: Store, caplog: pytest.LogCaptureFixture):
    ada = ShopBuilder(store).customer("ada@example.com")
    token = score_token(KEY, add_send(store, ada), 9)
    with client_for(web_context(store)) as client, caplog.at_level(logging.INFO, "lifecycle.web"):
        client.get(f"/nps/{token}")
    lines = [r.getMessage() for r in caplog.records if r.name == "lifecycle.web"]
    assert any('"GET /nps/<token> HTTP/1.1" 200' in line for line in lines)
    assert not any(token in line for line in lines)


def test_the_review_request_carries_the_question_and_its_links_record_the_answer(
        app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "review-request")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 10, 9, 0), delivered_at=utc(2026, 11, 12, 9, 0))
    assert tick(app, utc(2026, 11, 17, 9, 0))["review-request"]["sent"] == 1
    (text,) = text_parts(app)
    assert "How likely are you to recommend us to a friend?" in text
    links = dict(re.findall(r"^(\d+): (http\S+/nps/\S+)\r?$", text, re.MULTILINE))
    assert sorted(map(int, links)) == list(range(11))
    (send,) = ledger(app)
    web = WebContext.for_app(app, clock=lambda: NOW)
    with client_for(web) as client:
        assert client.get(links["7"].split("localhost:8025", 1)[1]).status_code == 200
    assert [(row[0], row[1], row[2]) for row in responses(app.store)] == [(send.id, ada, 7)]


# ---------------------------------------------------------------- the report

def answered(store: Store, scores: list[int], at: dt.datetime) -> None:
    """One customer and one answered email per score."""
    shop = ShopBuilder(store)
    for score in scores:
        customer = shop.customer(f"c{at:%Y%m%d}-{len(responses(store))}@example.com")
        answer(store, add_send(store, customer), score, at)


def test_five_promoters_two_passives_and_three_detractors_make_an_nps_of_20(app: App):
    answered(app.store, [9, 10, 9, 10, 10, 7, 8, 0, 6, 3], utc(2026, 11, 5, 12, 0))
    with app.store.reader.connect() as conn:
        report = nps_report(conn, dt.datetime(2026, 11, 1), dt.datetime(2026, 12, 1), "month")
    assert [f.as_dict() | {"nps_95": None} for f in report.periods] == [
        {"period": "2026-11-01", "responses": 10, "promoters": 5, "passives": 2, "detractors": 3, "nps": 20.0,
         "nps_95": None}]
    low, high = report.periods[0].interval  # type: ignore[misc]
    # p = 0.5, d = 0.3: the standard error is sqrt((0.8 - 0.04) / 10) = 0.2757, so 20 -/+ 54.0 points
    assert (round(low, 1), round(high, 1)) == (-34.0, 74.0)


def test_answers_count_in_the_period_they_were_first_given_with_their_latest_score(app: App):
    answered(app.store, [10, 10], utc(2026, 10, 31, 23, 59))
    answered(app.store, [0], utc(2026, 11, 2, 8, 0))  # a Monday
    answered(app.store, [5], utc(2026, 11, 8, 23, 0))  # the Sunday of the same ISO week
    answered(app.store, [8], utc(2026, 12, 1, 0, 0))  # --until excludes it
    (first, *_) = [row[0] for row in responses(app.store)]
    answer(app.store, first, 2, utc(2026, 11, 20, 0, 0))  # changed later: still October's, now a detractor
    with app.store.reader.connect() as conn:
        monthly = nps_report(conn, dt.datetime(2026, 10, 1), dt.datetime(2026, 12, 1), "month")
        weekly = nps_report(conn, dt.datetime(2026, 10, 1), dt.datetime(2026, 12, 1), "week")
    assert [(f.period, f.promoters, f.passives, f.detractors, f.nps) for f in monthly.periods] == [
        ("2026-10-01", 1, 0, 1, 0.0), ("2026-11-01", 0, 0, 2, -100.0)]
    assert [(f.period, f.responses) for f in weekly.periods] == [("2026-10-26", 2), ("2026-11-02", 2)]
    assert (monthly.total.responses, monthly.total.nps) == (4, -50.0)


def test_without_answers_there_is_no_score():
    empty = NpsFigures(None, 0, 0, 0)
    assert (empty.nps, empty.interval) == (None, None)
    assert NpsFigures(None, 1, 0, 0).interval is None  # one answer has no spread


def test_the_command_prints_the_figures_as_a_table_json_and_csv(tmp_path: Path, store: Store,
                                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    answered(store, [9, 10, 9, 10, 10, 7, 8, 0, 6, 3], utc(2026, 11, 5, 12, 0))
    runner = CliRunner()
    period = ["--since", "2026-11-01", "--until", "2026-12-01"]
    shown = runner.invoke(cli, ["nps", *period], terminal_width=80)
    assert shown.exit_code == 0, shown.output
    assert re.search(r"2026-11-01\s+10\s+5\s+2\s+3\s+\+20\s+-34 to \+74", shown.output)
    as_json = json.loads(runner.invoke(cli, ["nps", *period, "--format", "json"]).output)
    assert (as_json["since"], as_json["until"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    assert as_json["total"] == as_json["periods"][0] | {"period": None}
    assert as_json["total"]["nps"] == 20.0
    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli, ["nps", *period, "--format", "csv"]).output)))
    assert [(r["period"], r["nps"], r["promoters"]) for r in rows] == [("2026-11-01", "20.0", "5"),
                                                                        ("total", "20.0", "5")]
    refused = runner.invoke(cli, ["nps", "--since", "2026-12-01", "--until", "2026-11-01"])
    assert refused.exit_code != 0 and "--since must be before --until" in refused.output


# ---------------------------------------------------------------- audience

def audience(store: Store, condition: dict, at: dt.datetime) -> list[str]:
    window = Window(start=at - dt.timedelta(days=1), now=at.replace(tzinfo=None), default_zone=ZoneInfo("UTC"))
    with store.reading() as session:
        return list(session.execute(select(Customer.email).where(
            audience_sql([Condition.model_validate(condition)], window)).order_by(Customer.email)).scalars())


def test_a_customers_latest_score_picks_the_audience_as_of_the_instant(app: App, shop: ShopBuilder):
    store = app.store
    ada, bob, cy = (shop.customer(f"{name}@example.com") for name in ("ada", "bob", "cy"))
    shop.customer("dee@example.com")  # never answered
    answer(store, add_send(store, ada, key="o:1"), 3, utc(2026, 11, 1))
    answer(store, add_send(store, ada, key="o:2"), 9, utc(2026, 11, 10))  # a promoter since her latest answer
    answer(store, add_send(store, bob, key="o:3"), 6, utc(2026, 11, 5))
    cy_send = add_send(store, cy, key="o:4")
    answer(store, cy_send, 10, utc(2026, 11, 5))
    answer(store, cy_send, 1, utc(2026, 11, 12))  # changed her answer

    now = utc(2026, 11, 20)
    assert audience(store, {"field": "nps_score", "lte": 6}, now) == ["bob@example.com", "cy@example.com"]
    assert audience(store, {"field": "nps_score", "gte": 9}, now) == ["ada@example.com"]
    assert audience(store, {"field": "nps_score", "in": [7, 8]}, now) == []
    assert audience(store, {"field": "nps_score", "is_set": False}, now) == ["dee@example.com"]
    # on 6 November Ada's latest answer was her 3, and Cy's change had not happened yet
    assert audience(store, {"field": "nps_score", "lte": 6}, utc(2026, 11, 6)) == [
        "ada@example.com", "bob@example.com"]
    assert audience(store, {"field": "nps_score", "is_set": True}, utc(2026, 10, 31)) == []


FOLLOW_UP = """
    id: detractor-follow-up
    name: Sorry, tell us more
    trigger: {type: order, delay: 1h}
    audience:
      - {field: nps_score, lte: 6}
    expire_after: 1d
    message: {template: thank_you, subject: "Can we do better?"}
"""


def test_a_detractor_follow_up_goes_to_detractors_only(app: App, shop: ShopBuilder, campaigns_dir):
    write_campaign(campaigns_dir, FOLLOW_UP)
    unhappy, happy = shop.customer("unhappy@example.com"), shop.customer("happy@example.com")
    answer(app.store, add_send(app.store, unhappy, "review-request"), 4, utc(2026, 11, 1))
    answer(app.store, add_send(app.store, happy, "review-request"), 10, utc(2026, 11, 1))
    for customer in (unhappy, happy):
        shop.order(customer, utc(2026, 11, 20, 9, 0))
    tick(app, utc(2026, 11, 20, 10, 0))
    assert [s.customer_id for s in ledger(app, "sent") if s.campaign_id == "detractor-follow-up"] == [unhappy]


@pytest.mark.parametrize("condition", ["{field: nps_score, lte: 11}", "{field: nps_score, eq: detractor}",
                                       "{field: nps_score, gte: 6.5}", "{field: nps_score, in: [9, 10, 12]}",
                                       "{field: nps_score, eq: true}"])
def test_an_impossible_score_is_refused_with_a_hint(tmp_path: Path, condition: str):
    path = write_campaign(tmp_path, f"""
        id: follow-up
        name: Follow-up
        trigger: {{type: order, delay: 1h}}
        audience:
          - {condition}
        message: {{template: thank_you, subject: "Hi"}}
    """)
    campaign, problems = parse_campaign(path)
    assert campaign is None
    assert len(problems) == 1 and problems[0].line == 5
    assert "nps_score is a whole number from 0 to 10" in problems[0].message


def test_simulate_sends_the_follow_up_when_a_tick_would_after_the_customer_answers(
        app: App, shop: ShopBuilder, campaigns_dir):
    from test_simulate import simulated, ticked

    from runner.simulation.grid import TickGrid

    write_campaign(campaigns_dir, FOLLOW_UP)
    late, happy = shop.customer("late@example.com"), shop.customer("happy@example.com")
    late_order = shop.order(late, utc(2026, 3, 1, 9, 0))  # due at 10:00, before she answers
    shop.order(happy, utc(2026, 3, 1, 9, 0))
    answer(app.store, add_send(app.store, late), 4, utc(2026, 3, 1, 11, 30))  # a detractor from 11:30
    answer(app.store, add_send(app.store, happy), 9, utc(2026, 3, 1, 11, 30))
    grid = TickGrid(dt.datetime(2026, 3, 1, 8, 0), dt.datetime(2026, 3, 1, 14, 0), dt.timedelta(hours=1))
    simulation = simulated(app, grid)
    follow_ups = {row for row in ticked(app, grid) if row[0] == "detractor-follow-up"}
    assert simulation == follow_ups
    assert simulation == {("detractor-follow-up", f"order:{late_order}", "sent", dt.datetime(2026, 3, 1, 12, 0))}
