"""What `lifecycle validate` says about a broken campaign file or template: one line in the file's terms,
with its line, the closest valid value and the allowed range; never the validation library's wording."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from shopkit import ROOT

from runner.campaigns import parse_campaign
from runner.context import Shop, sample_context
from runner.policies.loader import load_shop_policy
from runner.rendering.templates import Renderer

CAMPAIGNS = ROOT / "campaigns"
NOW = dt.datetime(2026, 11, 24, 9, 30)
INTERNALS = ("Input should", "dict object", "UndefinedError", "String should", "has no attribute")


def changed(campaign: str, old: str, new: str) -> str:
    text = (CAMPAIGNS / f"{campaign}.yaml").read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


AUDIENCE = "  - field: order_count\n    gte: 1\n"


@pytest.mark.parametrize(("campaign", "old", "new", "expected"), [
    pytest.param("winback", "field: order_count", "field: order_cont",
                 "11: audience.0.field: unknown value 'order_cont' (hint: did you mean 'order_count'? valid values: "
                 "order_count, total_spent, last_order_at, first_order_at, created_at, tags, accepts_marketing, "
                 "email, time_zone, birthday, first_name, last_name, nps_score, segment)", id="audience-field"),
    pytest.param("winback", "    gte: 1", "    gtee: 1",
                 "12: unknown key 'gtee' (hint: did you mean 'gte'? valid keys here: eq, excludes, field, gt, gte, "
                 "in, includes, is_set, lt, lte, ne, not_in, older_than, within)", id="operator"),
    pytest.param("winback", "type: lapsed", "type: lapsd",
                 "8: unknown trigger type 'lapsd' (hint: did you mean 'lapsed'? trigger types: "
                 "abandoned_checkout, anniversary, birthday, lapsed, milestone, order, predicted_reorder, "
                 "replenishment)", id="trigger-type"),
    pytest.param("thank-you", "event: placed", "event: deliverd",
                 "10: trigger.event: unknown value 'deliverd' (hint: did you mean 'delivered'? valid values: "
                 "placed, delivered)", id="trigger-option"),
    pytest.param("winback", "enabled: true", "enabled: true\nkind: transactionl",
                 "7: kind: unknown value 'transactionl' (hint: did you mean 'transactional'? valid values: "
                 "marketing, transactional)", id="kind"),
    pytest.param("winback", "priority: 10", "on_conflict: defr",
                 "31: policy.on_conflict: unknown value 'defr' (hint: did you mean 'defer'? valid values: defer, "
                 "skip)", id="policy-value"),
    pytest.param("winback", "priority: 10", "priorty: 10",
                 "31: unknown key 'priorty' (hint: did you mean 'priority'? valid keys here: frequency_cap, "
                 "on_conflict, priority, send_window, smart_sending, sunset)", id="policy-key"),
    pytest.param("birthday", "hour: 9", "hour: 25", "9: trigger.hour must be between 0 and 23, got 25",
                 id="hour-range"),
    pytest.param("birthday", "hour: 9", "hour: 9\n  minute: -1", "10: trigger.minute must be between 0 and 59, got -1",
                 id="minute-range"),
    pytest.param("birthday", "hour: 9", "hour: nine", "9: trigger.hour must be a whole number, got 'nine'",
                 id="hour-not-a-number"),
    pytest.param("vip-milestone", "orders: [5]", "orders: [0, 5]", "13: trigger.orders.0 must be at least 1, got 0",
                 id="list-item-range"),
    pytest.param("vip-milestone", "segment: vip ", "segment: lapsed ",
                 "12: trigger.segment: only vip can be entered as a milestone (spending at or above the VIP "
                 "percentile), not 'lapsed'; pick customers in the other segments with an audience `segment:`",
                 id="milestone-segment"),
    pytest.param("winback", "weight: 1\n  - name: offer", "weight: 0\n  - name: offer",
                 "24: variants.0.weight must be more than 0, got 0", id="weight"),
    pytest.param("winback", "priority: 10", "frequency_cap: {max: 0, per: 7d}",
                 "31: policy.frequency_cap.max must be at least 1, got 0", id="cap"),
    pytest.param("winback", "priority: 10", "priority: high", "31: policy.priority must be a whole number, got 'high'",
                 id="priority-type"),
    pytest.param("winback", "enabled: true", "enabled: maybe", "6: enabled must be true or false, got 'maybe'",
                 id="boolean"),
    pytest.param("winback", "    gte: 1", "    gte: abc", "12: audience.0.gte must be a number, got 'abc'",
                 id="number"),
    pytest.param("winback", AUDIENCE, "  - field: tags\n    includes: 5\n",
                 "12: audience.0.includes must be text (put it in quotes) or a list, got 5", id="union"),
    pytest.param("winback", AUDIENCE, "  - field: tags\n    includes: [1, vip]\n",
                 "12: audience.0.includes.0 must be text (put it in quotes), got 1", id="union-item"),
    pytest.param("winback", "id: winback", "id: Win Back",
                 "4: id: 'Win Back' may contain only lowercase letters, digits, '-' and '_', starting with a letter "
                 "or digit", id="pattern"),
    pytest.param("winback", 'subject: "We miss', 'subject: ""\n  preheader_: "We miss',
                 "15: message.subject must not be empty", id="empty"),
    pytest.param("winback", "field: order_count\n    gte: 1", "field: segment\n    eq: vipp",
                 "12: audience.0.eq: unknown segment 'vipp' (hint: did you mean 'vip'? segments: first_time, repeat, "
                 "vip, big_spenders, high_aov, full_price, discount_shoppers, lapsed)", id="segment"),
    pytest.param("winback", "field: order_count\n    gte: 1", "field: segment\n    in: [vip, at_risk]",
                 "12: audience.0.in: unknown segment 'at_risk' (hint: segments: first_time, repeat, vip, big_spenders, "
                 "high_aov, full_price, discount_shoppers, lapsed)", id="segment-in-list"),
    pytest.param("winback", "field: order_count\n    gte: 1", "field: segment\n    gte: 1",
                 "11: audience.0: gte applies to order_count, total_spent and nps_score", id="segment-operator"),
    pytest.param("winback", "enabled: true", "Enabled: true",
                 "6: unknown key 'Enabled' (hint: did you mean 'enabled'? valid keys here: audience, description, "
                 "enabled, exit, expire_after, id, kind, message, name, policy, schedule, steps, trigger, variants)",
                 id="capitalised-key"),
    pytest.param("replenishment", '"TEA-*": 30d', '"TEA-*": 30 days',
                 "12: trigger.cycles.TEA-*: '30 days' is not a duration (hint: write durations as a number and a unit: "
                 "30d, 12h, 90m, 2w or 1d12h)", id="capitalised-key-in-a-mapping"),
])
def test_broken_campaign_files_say_what_to_write(tmp_path: Path, campaign: str, old: str, new: str,
                                                 expected: str) -> None:
    path = tmp_path / f"{campaign}.yaml"
    path.write_text(changed(campaign, old, new), encoding="utf-8")

    found, problems = parse_campaign(path)

    assert found is None
    assert str(problems[0]) == f"{path}:{expected}"
    assert not any(internal in str(problems[0]) for internal in INTERNALS)


def test_a_policy_file_value_out_of_range(tmp_path: Path) -> None:
    (tmp_path / "_policy.yaml").write_text("frequency_cap:\n  max: 0\n  per: 7d\non_conflict: wait\n",
                                           encoding="utf-8")

    _, problems = load_shop_policy(tmp_path)

    assert [str(p) for p in problems] == [
        f"{tmp_path / '_policy.yaml'}:4: on_conflict: unknown value 'wait' (hint: valid values: defer, skip)",
        f"{tmp_path / '_policy.yaml'}:2: frequency_cap.max must be at least 1, got 0",
    ]


SHOP = Shop(name="Example Shop", url="https://shop.example.com", address="1 Main St", public_url="https://m.example",
            signing_key=b"k", default_zone=ZoneInfo("UTC"))
CONTEXT_HINT = "see docs/templates.md for every variable a template can use"
CUSTOMER_KEYS = ("birthday, created_at, currency, email, first_name, first_order_at, full_name, id, last_name, "
                 "last_order_at, locale, order_count, tags, time_zone, total_spent")


@pytest.mark.parametrize(("campaign", "html", "expected"), [
    pytest.param("winback", "<p>Hi {{ customer.frist_name }}</p>",
                 "`customer.frist_name` is not defined; did you mean `customer.first_name`? "
                 f"(hint: `customer` has: {CUSTOMER_KEYS}; {CONTEXT_HINT})", id="attribute"),
    pytest.param("winback", "<p>Hi {{ customer['frist_name'] }}</p>",
                 "`customer.frist_name` is not defined; did you mean `customer.first_name`? "
                 f"(hint: `customer` has: {CUSTOMER_KEYS}; {CONTEXT_HINT})", id="subscript"),
    pytest.param("winback", "<p>{{ custmer.email }}</p>",
                 "`custmer` is not defined; did you mean `customer`? (hint: a template can use: campaign, checkout, "
                 "coupon, customer, line, lines, locale, now, nps, occurrence, order, params, preheader, "
                 f"recommendations, shop, step, subject, unsubscribe_url; {CONTEXT_HINT})", id="top-level"),
    pytest.param("thank-you", "{% for item in lines %}\n<p>{{ item.nmae }}</p>\n{% endfor %}",
                 f"`item.nmae` is not defined; did you mean `item.name`? (hint: {CONTEXT_HINT})", id="loop-variable"),
    pytest.param("winback", "<p>{{ order.number }}</p>",
                 "`order` is empty here, so `order.number` cannot be read (hint: `order` and `lines` exist only for "
                 "order and replenishment triggers, `line` only for replenishment; guard it with `{% if order %}`; "
                 f"{CONTEXT_HINT})", id="empty-order"),
])
def test_broken_templates_say_which_name_was_meant(tmp_path: Path, campaign: str, html: str, expected: str) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    found, _ = parse_campaign(CAMPAIGNS / f"{campaign}.yaml")
    assert found is not None
    name = found.spec.message.template
    (templates / f"{name}.html").write_text("\n" + html + "\n", encoding="utf-8")
    (templates / f"{name}.txt").unlink()

    problems = Renderer(templates).check(found, sample_context(found, SHOP, NOW), default_from="shop@example.com")

    line = 3 if html.startswith("{% for") else 2
    assert [str(p) for p in problems] == [f"{templates / name}.html:{line}: {expected}"]


def test_a_misspelt_name_in_the_subject_is_named_at_the_subject_line(tmp_path: Path) -> None:
    path = tmp_path / "winback.yaml"
    path.write_text(changed("winback", "{{ customer.first_name or 'friend' }}: {{",
                            "{{ customer.frist_name or 'friend' }}: {{"), encoding="utf-8")
    found, _ = parse_campaign(path)
    assert found is not None

    problems = Renderer(ROOT / "templates").check(found, sample_context(found, SHOP, NOW, "we-miss-you"),
                                                  default_from="shop@example.com", variant="we-miss-you")

    assert [str(p) for p in problems] == [
        f"{path}:15: message.subject: `customer.frist_name` is not defined; did you mean `customer.first_name`? "
        f"(hint: `customer` has: {CUSTOMER_KEYS}; {CONTEXT_HINT})"]
