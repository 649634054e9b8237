"""Rendering: the shipped templates, template checks with file:line problems, MIME and html_to_text."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import textwrap
from binascii import b2a_qp
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from runner.campaigns import Campaign, MessageSpec, parse_campaign
from runner.links.nps import nps_context
from runner.money import Money
from runner.rendering.mime import _quoted_printable, build_mime, mime_bytes
from runner.rendering.templates import RenderedEmail, Renderer, RenderError
from runner.rendering.text import html_to_text

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
TEMPLATE_NAMES = ["thank_you", "replenishment", "winback", "birthday", "review_request", "anniversary",
                  "vip_milestone"]
NOW = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
BERLIN = ZoneInfo("Europe/Berlin")
FROM = "Example Shop <hello@shop.example.com>"
UNSUBSCRIBE = "https://mail.example.com/unsubscribe/abc.def"


# ---------------------------------------------------------------- hand-built contexts

DEFAULT_PRICE = Money(1800)

def product(sku: str, name: str, *, url: str | None = None, image_url: str | None = None,
            price: Money | None = DEFAULT_PRICE) -> dict[str, Any]:
    return {"sku": sku, "name": name, "url": url, "image_url": image_url, "price": price}


def order_line(name: str, quantity: int, unit_cents: int, item: dict[str, Any] | None) -> dict[str, Any]:
    sku = item["sku"] if item else "SKU"
    return {"sku": sku, "name": name, "quantity": quantity, "unit_price": Money(unit_cents),
            "total": Money(unit_cents * quantity), "product": item,
            "review_url": f"https://shop.example.com/products/{sku}/reviews"}


def make_context(*, with_order: bool = True, recommendations: bool = True, params: dict[str, Any] | None = None,
                 first_name: str = "Ada", product_url: str | None = "https://shop.example.com/coffee",
                 birthday: dt.date | None = dt.date(1990, 6, 1),
                 last_order_at: dt.datetime | None = dt.datetime(2026, 5, 1, 10, 0, tzinfo=BERLIN)) -> dict[str, Any]:
    coffee = product("COFFEE-1KG", "House Blend 1kg", url=product_url, price=Money(2400))
    lines = [order_line("House Blend 1kg", 2, 2400, coffee), order_line("Paper Filters", 1, 500, None)]
    order = {
        "id": 7, "number": "#1001", "placed_at": dt.datetime(2026, 11, 23, 14, 5, tzinfo=BERLIN),
        "delivered_at": None, "subtotal": Money(5300), "total": Money(4800), "currency": "USD",
        "discount_code": "WELCOME5", "lines": lines,
    }
    mug = product("MUG", "Stoneware Mug", url="https://shop.example.com/mug",
                  image_url="https://cdn.example.com/mug.jpg")
    scoop = product("SCOOP", "Brass Scoop", price=None)
    params = {} if params is None else params
    return {
        "customer": {
            "id": 1, "email": "ada@example.com", "first_name": first_name, "last_name": "Lovelace",
            "full_name": f"{first_name} Lovelace".strip(), "birthday": birthday, "time_zone": "Europe/Berlin",
            "order_count": 3, "total_spent": Money(9600),
            "first_order_at": dt.datetime(2025, 1, 5, 9, 0, tzinfo=BERLIN), "last_order_at": last_order_at,
            "tags": ["vip"],
        },
        "order": order if with_order else None,
        "lines": lines if with_order else [],
        "line": lines[0] if with_order else None,
        "recommendations": [mug, scoop] if recommendations else [],
        "shop": {"name": "Example Shop", "url": "https://shop.example.com", "address": "1 Example Street, Springfield"},
        "campaign": {"id": "test", "name": "Test campaign", "params": params},
        "params": params,
        "occurrence": {"key": "test:1", "due_at": NOW, "reason": "test",
                       # what the anniversary and milestone triggers add (Trigger.facts)
                       "anniversary": {"year": 2026, "years": 1,
                                       "since": dt.datetime(2025, 1, 5, 9, 0, tzinfo=BERLIN)},
                       "milestone": {"orders": 5, "ordinal": "5th", "spent": None, "segment": None}},
        "unsubscribe_url": UNSUBSCRIBE,
        "nps": nps_context("https://mail.example.com", b"key", 42),
        "now": NOW,
        "coupon": None,
        "step": None,  # a campaign of one email, not a journey's step
    }


OFFER = {"discount_code": "BACK15", "discount_percent": 15}


def message(template: str, subject: str = "Hello {{ customer.first_name }}", **extra: Any) -> MessageSpec:
    return MessageSpec(template=template, subject=subject, **extra)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def render(renderer: Renderer, template: str, context: dict[str, Any], **extra: Any) -> RenderedEmail:
    return renderer.render(message(template, **extra), context, default_from=FROM)


# ---------------------------------------------------------------- the shipped templates

@pytest.mark.parametrize("template", TEMPLATE_NAMES)
@pytest.mark.parametrize("variant", [
    {},
    {"with_order": False, "recommendations": False, "last_order_at": None, "first_name": ""},
    {"params": OFFER},
    {"params": {"discount_code": "ONLYCODE"}, "product_url": None},
])
def test_every_template_renders_with_and_without_optional_data(renderer: Renderer, template: str,
                                                               variant: dict[str, Any]) -> None:
    rendered = render(renderer, template, make_context(**variant), preheader="A note for {{ customer.email }}")
    for part in (rendered.html, rendered.text):
        assert UNSUBSCRIBE in part
        assert "1 Example Street, Springfield" in part
        assert "Example Shop" in part
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert 'href="https://shop.example.com"' in rendered.html  # the header links to the shop
    assert "A note for ada@example.com" in rendered.html  # preheader, hidden at the top
    assert "A note for" not in rendered.text
    assert rendered.from_ == FROM and rendered.reply_to is None
    assert "\n\n\n" not in rendered.text


def test_thank_you_lists_the_order_and_recommendations(renderer: Renderer) -> None:
    rendered = render(renderer, "thank_you", make_context(), subject="Thanks for order {{ order.number }}!")
    assert rendered.subject == "Thanks for order #1001!"
    html, text = rendered.html, rendered.text
    assert "Hi Ada," in html and "Hi Ada," in text
    assert "#1001" in html and "November 23, 2026" in html
    for needle in ("House Blend 1kg", "$48.00", "Paper Filters", "$5.00", "$48.00", "$53.00"):
        assert needle in html and needle in text
    assert ">2</td>" in html  # the quantity column
    assert "House Blend 1kg x 2: $48.00" in text
    assert "Order total" in html and "Order total: $48.00" in text
    assert "You might also like" in html and "You might also like" in text
    assert 'href="https://shop.example.com/mug"' in html and 'src="https://cdn.example.com/mug.jpg"' in html
    assert "Stoneware Mug ($18.00): https://shop.example.com/mug" in text
    assert "Brass Scoop: https://shop.example.com" in text  # no price, no url: links to the shop


def test_thank_you_without_order_or_recommendations(renderer: Renderer) -> None:
    rendered = render(renderer, "thank_you", make_context(with_order=False, recommendations=False))
    assert "Thanks for shopping with Example Shop" in rendered.text
    assert "You might also like" not in rendered.html and "You might also like" not in rendered.text
    assert "Order total" not in rendered.html


def test_replenishment_links_to_the_product_or_the_shop(renderer: Renderer) -> None:
    rendered = render(renderer, "replenishment", make_context(params={"discount_code": "REFILL"}),
                      subject="Running low on {{ line.name }}?")
    assert rendered.subject == "Running low on House Blend 1kg?"
    assert "Running low on House Blend 1kg?" in rendered.html
    assert "November 23, 2026" in rendered.text
    assert 'href="https://shop.example.com/coffee"' in rendered.html
    assert "Reorder House Blend 1kg: https://shop.example.com/coffee" in rendered.text
    assert "REFILL" in rendered.html and "Use the code REFILL at checkout." in rendered.text

    no_url = render(renderer, "replenishment", make_context(product_url=None))
    assert "Reorder House Blend 1kg: https://shop.example.com\n" in no_url.text
    assert "Use the code" not in no_url.text


def test_replenishment_with_a_product_less_line(renderer: Renderer) -> None:
    context = make_context()
    context["line"] = context["lines"][1]  # "Paper Filters" has no product row
    rendered = render(renderer, "replenishment", context)
    assert "Reorder Paper Filters: https://shop.example.com\n" in rendered.text


def test_winback_mentions_the_last_order_and_the_offer(renderer: Renderer) -> None:
    rendered = render(renderer, "winback", make_context(params=OFFER), subject="We miss you, {{ customer.first_name }}")
    assert rendered.subject == "We miss you, Ada"
    assert "6 months ago, on May 1, 2026" in rendered.html and "6 months ago, on May 1, 2026" in rendered.text
    assert "15% off" in rendered.html and "BACK15" in rendered.html
    assert "Use the code BACK15 at checkout." in rendered.text
    assert "Picked for you" in rendered.text

    plain = render(renderer, "winback", make_context(last_order_at=None, recommendations=False))
    assert "It's been a while since we last saw you" in plain.text
    assert "%" not in plain.text and "Picked for you" not in plain.text


def test_birthday_wording_fits_29_february(renderer: Renderer) -> None:
    context = make_context(params={**OFFER, "valid_days": 14}, birthday=dt.date(2000, 2, 29))
    context["now"] = dt.datetime(2027, 2, 28, 8, 0, tzinfo=dt.UTC)  # a non-leap year
    rendered = render(renderer, "birthday", context)
    assert "Happy birthday, Ada!" in rendered.html and "Happy birthday, Ada!" in rendered.text
    assert "15% off" in rendered.text and "BACK15" in rendered.text
    assert "next 14 days" in rendered.text
    for part in (rendered.html.lower(), rendered.text.lower()):
        assert "29 february" not in part and "today" not in part and "february" not in part

    nameless = render(renderer, "birthday", make_context(first_name="", params={"discount_code": "CAKE"}))
    assert "Happy birthday!" in nameless.text and "CAKE" in nameless.text and "%" not in nameless.text


def test_review_request_links_each_product_to_its_review_page(renderer: Renderer) -> None:
    context = make_context()
    context["order"] = {**context["order"], "delivered_at": dt.datetime(2026, 11, 20, 15, 0, tzinfo=BERLIN)}
    context["order"]["lines"] = [*context["lines"], context["lines"][0]]  # the same product on two lines
    rendered = render(renderer, "review_request", context)
    assert "arrived on November 20, 2026" in rendered.text
    assert rendered.text.count("- House Blend 1kg: https://shop.example.com/products/COFFEE-1KG/reviews") == 1
    assert "- Paper Filters: https://shop.example.com/products/SKU/reviews" in rendered.text
    assert rendered.html.count('href="https://shop.example.com/products/COFFEE-1KG/reviews"') == 1
    assert "Write a review" not in rendered.html  # one button only when one product was bought


def test_vip_milestone_names_the_segment_the_count_or_the_amount(renderer: Renderer) -> None:
    by_count = render(renderer, "vip_milestone", make_context(params=OFFER))
    assert "Order #1001 was your 5th order with Example Shop." in by_count.text
    assert "15% off" in by_count.text and "BACK15" in by_count.text
    context = make_context(with_order=False)
    context["occurrence"]["milestone"] = {"orders": None, "ordinal": None, "spent": Money(50000), "segment": None}
    by_amount = render(renderer, "vip_milestone", context)
    assert "With your latest order, you've now spent more than $500.00 with Example Shop." in by_amount.text
    assert "more than $500.00" in by_amount.html
    context = make_context()
    context["occurrence"]["milestone"] = {"orders": None, "ordinal": None, "spent": None, "segment": "vip"}
    by_segment = render(renderer, "vip_milestone", context)
    assert ("With order #1001, you've joined the customers who shop with Example Shop the most."
            in by_segment.text)
    assert "joined the customers who shop with Example Shop the most" in by_segment.html


def test_anniversary_counts_the_years_and_never_says_today(renderer: Renderer) -> None:
    context = make_context(params=OFFER)
    context["occurrence"]["anniversary"] = {"year": 2027, "years": 3,
                                            "since": dt.datetime(2024, 2, 29, 18, 0, tzinfo=BERLIN)}
    rendered = render(renderer, "anniversary", context)
    assert ("It's been 3 years since your first order with Example Shop, on February 29, 2024. Thank you for "
            "sticking with us through 3 orders.") in rendered.text
    assert "10% off" not in rendered.text and "15% off" in rendered.text
    for part in (rendered.html.lower(), rendered.text.lower()):
        assert "today" not in part and "this day" not in part
    context["occurrence"]["anniversary"] = {"year": 2027, "years": None, "since": None}
    assert "Another year of shopping with Example Shop" in render(renderer, "anniversary", context).text


def test_html_escapes_customer_data_and_text_keeps_it(renderer: Renderer) -> None:
    context = make_context(first_name="<script>alert(1)</script>")
    context["shop"] = {**context["shop"], "name": 'Tom & "Jerry"'}
    for template in TEMPLATE_NAMES:
        rendered = render(renderer, template, context, subject="Hi {{ customer.first_name }}")
        assert "<script>" not in rendered.html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
        assert "Tom &amp; &#34;Jerry&#34;" in rendered.html
        assert rendered.subject == "Hi <script>alert(1)</script>"  # a header: plain text, not HTML
    text = render(renderer, "thank_you", context).text
    assert "Hi <script>alert(1)</script>," in text


def test_header_strings_never_contain_line_breaks(renderer: Renderer) -> None:
    context = make_context(first_name="Ada\r\nBcc: victim@example.com")
    rendered = render(renderer, "thank_you", context, subject="Hi {{ customer.first_name }}",
                      reply_to="{{ customer.first_name }} <help@shop.example.com>")
    assert rendered.subject == "Hi Ada Bcc: victim@example.com"
    mime = build_mime(rendered, to="ada@example.com", headers={}, date=NOW)
    parsed = email.message_from_bytes(mime.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None


def test_build_mime_refuses_a_header_value_with_a_line_break(renderer: Renderer) -> None:
    rendered = render(renderer, "thank_you", make_context())
    with pytest.raises(ValueError, match="must be one line"):
        build_mime(rendered, to="ada@example.com", headers={"X-Send-ID": "1\r\nBcc: victim@example.com"}, date=NOW)


def test_a_long_list_unsubscribe_header_is_not_folded_before_its_value(renderer: Renderer) -> None:
    url = "https://shop.example.com/unsubscribe/" + "x" * 120
    mime = build_mime(render(renderer, "thank_you", make_context()), to="ada@example.com",
                      headers={"List-Unsubscribe": f"<{url}>"}, date=NOW)
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in mime.as_bytes()


def test_from_and_reply_to_are_jinja_strings(renderer: Renderer) -> None:
    rendered = render(renderer, "thank_you", make_context(), **{"from": "{{ shop.name }} <hi@shop.example.com>"},
                      reply_to="care@shop.example.com", preheader="Order {{ order.number }}")
    assert rendered.from_ == "Example Shop <hi@shop.example.com>"
    assert rendered.reply_to == "care@shop.example.com"
    assert rendered.preheader == "Order #1001"


# ---------------------------------------------------------------- errors at render time

def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_undefined_variable_names_the_template_and_line(tmp_path: Path) -> None:
    write(tmp_path, "broken.html", """\
        <p>Hello {{ customer.first_name }}</p>
        <p>Fine so far</p>
        <p>{{ customer.nickname }}</p>
        """)
    with pytest.raises(RenderError) as caught:
        Renderer(tmp_path).render(message("broken"), make_context(), default_from=FROM)
    error = caught.value
    assert error.path == str(tmp_path / "broken.html")
    assert error.line == 3
    assert "nickname" in str(error) and str(error).startswith(f"{tmp_path / 'broken.html'}:3: ")
    assert error.hint


def test_undefined_variable_in_a_parent_block_names_the_child(tmp_path: Path) -> None:
    write(tmp_path, "base.html", "<html>{% block content %}{% endblock %}</html>\n")
    write(tmp_path, "child.html", """\
        {% extends "base.html" %}
        {% block content %}
        {{ missing_thing }}
        {% endblock %}
        """)
    with pytest.raises(RenderError) as caught:
        Renderer(tmp_path).render(message("child"), make_context(), default_from=FROM)
    assert (caught.value.path, caught.value.line) == (str(tmp_path / "child.html"), 3)


def test_undefined_variable_in_subject(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="subject") as caught:
        render(renderer, "thank_you", make_context(), subject="Hi {{ customer.nick }}")
    assert "nick" in str(caught.value)


def test_missing_template_at_render_time(tmp_path: Path) -> None:
    write(tmp_path, "thank_you.html", "<p>hi</p>")
    with pytest.raises(RenderError) as caught:
        Renderer(tmp_path).render(message("thank_yuo"), make_context(), default_from=FROM)
    assert "thank_yuo.html" in str(caught.value)
    assert "did you mean 'thank_you'" in (caught.value.hint or "")


def test_sandbox_blocks_unsafe_attribute_access(tmp_path: Path) -> None:
    write(tmp_path, "evil.html", "{{ customer.__class__.__mro__ }}\n")
    with pytest.raises(RenderError) as caught:
        Renderer(tmp_path).render(message("evil"), make_context(), default_from=FROM)
    assert caught.value.line == 1


def test_templates_cannot_mutate_the_shared_context(tmp_path: Path) -> None:
    write(tmp_path, "mutate.html", "{{ params.update({'discount_code': 'FREE'}) }}\n")
    context = make_context(params={"discount_code": "REAL"})
    with pytest.raises(RenderError):
        Renderer(tmp_path).render(message("mutate"), context, default_from=FROM)
    assert context["params"] == {"discount_code": "REAL"}


def test_a_dict_key_reads_as_in_plain_jinja(tmp_path: Path) -> None:
    """`a.b` on a dict is its key b, unless b is one of the dict's own attributes (which the sandbox
    checks); a missing key is an error, not a blank."""
    write(tmp_path, "keys.html", "{{ params.code }} {{ params.items()|list|length }} {{ params.keys is callable }}\n")
    context = make_context(params={"code": "WB10", "items": "not this", "keys": "nor this"})
    assert Renderer(tmp_path).render(message("keys"), context, default_from=FROM).html == "WB10 3 True"
    write(tmp_path, "missing.html", "{{ params.nothing }}\n")
    with pytest.raises(RenderError, match="nothing"):
        Renderer(tmp_path).render(message("missing"), context, default_from=FROM)


def test_a_subject_without_jinja_renders_as_itself(renderer: Renderer) -> None:
    rendered = render(renderer, "birthday", make_context(), subject="  Happy\n birthday {from us}  ")
    assert rendered.subject == "Happy birthday {from us}"


def test_text_part_is_derived_from_html_when_there_is_no_txt(tmp_path: Path) -> None:
    write(tmp_path, "plain.html", """\
        <html><head><title>{{ subject }}</title></head><body>
        <div style="display:none">{{ preheader }}</div>
        <h1>Hello {{ customer.first_name }}</h1>
        <p>See <a href="{{ shop.url }}">our shop</a>.</p>
        </body></html>
        """)
    rendered = Renderer(tmp_path).render(message("plain", preheader="Hidden line"), make_context(), default_from=FROM)
    assert rendered.text == "Hello Ada\n\nSee our shop (https://shop.example.com)."


def test_templates_are_compiled_once_and_reloaded_when_edited(tmp_path: Path) -> None:
    path = write(tmp_path, "cached.html", "<p>{{ customer.first_name }}</p>\n")
    renderer = Renderer(tmp_path)
    first = renderer.render(message("cached"), make_context(), default_from=FROM)
    assert renderer.files.get_template("cached.html") is renderer.files.get_template("cached.html")
    path.write_text("<p>Changed {{ customer.first_name }}</p>\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    second = renderer.render(message("cached"), make_context(), default_from=FROM)
    assert (first.html, second.html) == ("<p>Ada</p>", "<p>Changed Ada</p>")


# ---------------------------------------------------------------- check()

def make_campaign(folder: Path, template: str, *, subject: str = "Hi {{ customer.first_name }}",
                  preheader: str = "", params: dict[str, Any] | None = None) -> Campaign:
    """A campaign file on disk and the Campaign built from it."""
    params_yaml = "".join(f"\n    {key}: {value!r}" for key, value in (params or {}).items())
    text = textwrap.dedent(f"""\
        id: check-{template.replace("/", "-")}
        name: Check {template}
        trigger:
          type: order
        message:
          template: {template}
          subject: "{subject}"
          preheader: "{preheader}"
          params: {{}}
        """)
    if params_yaml:
        text = text.replace("params: {}", "params:" + params_yaml)
    path = folder / "campaigns" / f"{template.replace('/', '-')}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    campaign, problems = parse_campaign(path)
    assert campaign is not None, problems
    return campaign


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
@pytest.mark.parametrize("params", [{}, OFFER])
def test_shipped_templates_check_clean(renderer: Renderer, tmp_path: Path, template: str,
                                       params: dict[str, Any]) -> None:
    campaign = make_campaign(tmp_path, template, params=params)
    assert renderer.check(campaign, make_context(params=params), default_from=FROM) == []
    assert renderer.check(campaign, make_context(params=params, with_order=False, recommendations=False),
                          default_from=FROM) == []


def test_check_reports_syntax_errors_with_file_and_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write(templates, "broken.html", """\
        <p>one</p>
        <p>two</p>
        {% if customer.first_name %}
        <p>{{ customer.first_name }</p>
        {% endif %}
        """)
    write(templates, "broken.txt", """\
        Hello
        {% for x in lines %}
        {{ x.name }}
        """)
    problems = Renderer(templates).check(make_campaign(tmp_path, "broken"), make_context(), default_from=FROM)
    assert [(p.path, p.line) for p in problems] == [(str(templates / "broken.html"), 4),
                                                    (str(templates / "broken.txt"), 3)]
    assert all("syntax error" in p.message and p.hint for p in problems)


def test_check_reports_a_syntax_error_in_the_base_layout(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write(templates, "base.html", "<html>\n{% block content %}\n</html>\n")
    write(templates, "child.html", '{% extends "base.html" %}\n{% block content %}hi{% endblock %}\n')
    problems = Renderer(templates).check(make_campaign(tmp_path, "child"), make_context(), default_from=FROM)
    assert [(p.path, p.line) for p in problems] == [(str(templates / "base.html"), 3)]


def test_check_reports_a_missing_template_with_the_closest_name(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path, "thank_yu")
    problems = Renderer(TEMPLATES).check(campaign, make_context(), default_from=FROM)
    assert len(problems) == 1
    problem = problems[0]
    assert problem.path == str(campaign.path) and problem.line == 6  # the `template:` line
    assert "thank_yu" in problem.message and "not found" in problem.message
    assert problem.hint is not None
    assert problem.hint.startswith("did you mean 'thank_you'?")
    assert ("available templates: abandoned_checkout, anniversary, birthday, predicted_reorder, replenishment, "
            "review_request, thank_you, vip_milestone, winback") in problem.hint
    assert "base" not in problem.hint.split("available templates:")[1]


def test_check_collects_undefined_variables_everywhere(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write(templates, "promo.html", """\
        <p>Hi {{ customer.first_name }}</p>

        <p>{{ custmer.email }}</p>
        """)
    write(templates, "promo.txt", """\
        Hi {{ customer.first_name }}
        {{ order.nmber }}
        """)
    campaign = make_campaign(tmp_path, "promo", subject="Hi {{ customer.frist_name }}",
                             preheader="{{ nope }}")
    problems = Renderer(templates).check(campaign, make_context(), default_from=FROM)
    located = [(p.path, p.line) for p in problems]
    assert located == [
        (str(campaign.path), 7),  # subject:
        (str(campaign.path), 8),  # preheader:
        (str(templates / "promo.html"), 3),
        (str(templates / "promo.txt"), 2),
    ]
    subject, preheader, html, text = problems
    assert subject.message == ("message.subject: `customer.frist_name` is not defined; "
                               "did you mean `customer.first_name`?")
    assert preheader.message == "message.preheader: `nope` is not defined"
    assert html.message == "`custmer` is not defined; did you mean `customer`?"
    assert text.message == "`order.nmber` is not defined; did you mean `order.number`?"


def test_check_reports_subject_syntax_errors_at_the_subject_line(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    write(tmp_path / "templates", "ok.html", "<p>ok</p>\n")
    campaign = make_campaign(tmp_path, "ok", subject="Hi {{ customer.first_name")
    problems = Renderer(tmp_path / "templates").check(campaign, make_context(), default_from=FROM)
    assert [(p.path, p.line) for p in problems] == [(str(campaign.path), 7)]
    assert "syntax error" in problems[0].message


# ---------------------------------------------------------------- MIME

HEADERS = {
    "List-Unsubscribe": f"<{UNSUBSCRIBE}>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "X-Campaign-ID": "winback",
    "X-Send-ID": "42",
}


def test_an_unclosed_hidden_element_inside_a_link_ends_with_the_link() -> None:
    html = '<p><a href="https://x.example">Shop now<span style="display:none">hidden</a></p><p>Second</p><p>Third</p>'
    assert html_to_text(html) == "Shop now (https://x.example)\n\nSecond\n\nThird"


def test_build_mime_round_trips(renderer: Renderer) -> None:
    rendered = render(renderer, "winback", make_context(params=OFFER), subject="Wir vermissen dich, Jürgen ✓ 🎂",
                      **{"from": "Café Zoë <hello@shop.example.com>"}, reply_to="care@shop.example.com")
    date = dt.datetime(2026, 11, 24, 9, 30, 15, tzinfo=dt.UTC)
    raw = build_mime(rendered, to="Jürgen <jurgen@example.com>", headers=HEADERS, date=date).as_bytes()
    assert all(line.endswith(b"\r") for line in raw.split(b"\n")[:-1])  # CRLF line endings
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    raw.decode("ascii")  # 7-bit clean: headers encoded, bodies quoted-printable

    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().replace("\r\n", "\n").rstrip() == rendered.text.rstrip()
    assert parts[1].get_content().replace("\r\n", "\n").rstrip() == rendered.html.rstrip()
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert parsed["Subject"] == "Wir vermissen dich, Jürgen ✓ 🎂"
    assert parsed["From"].addresses[0].display_name == "Café Zoë"
    assert parsed["From"].addresses[0].addr_spec == "hello@shop.example.com"
    assert parsed["To"].addresses[0].display_name == "Jürgen"
    assert parsed["Reply-To"] == "care@shop.example.com"
    assert parsed["Date"].datetime == date
    assert parsed["Message-ID"].endswith("@shop.example.com>")
    assert parsed["MIME-Version"] == "1.0"
    for name, value in HEADERS.items():
        assert parsed[name] == value


def test_build_mime_without_reply_to_and_with_an_explicit_message_id_domain(renderer: Renderer) -> None:
    rendered = render(renderer, "birthday", make_context())
    mime = build_mime(rendered, to="ada@example.com", headers={"X-Send-ID": "1"},
                      date=dt.datetime(2026, 1, 2, 3, 4, 5), message_id_domain="mail.example.net")
    parsed = email.message_from_bytes(mime.as_bytes(), policy=email.policy.default)
    assert parsed["Reply-To"] is None
    assert parsed["Message-ID"].endswith("@mail.example.net>")
    assert parsed["Date"].datetime == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # naive taken as UTC
    assert len(parsed.get_all("X-Send-ID")) == 1


# ---------------------------------------------------------------- html_to_text and filters

def test_html_to_text_keeps_links_and_drops_hidden_parts() -> None:
    html = """<!DOCTYPE html><html><head><title>Title</title><style>p { color: red; }</style></head>
    <body><script>alert(1)</script>
    <div class="preheader" style="display:none; mso-hide:all;">Preview text &zwnj;&nbsp;</div>
    <h1>Welcome   back</h1><p>Read <a href="https://example.com/a">the   guide</a> or visit
    <a href="https://example.com">https://example.com</a>.</p>
    <ul><li>One</li><li>Two &amp; three</li></ul>
    <table><tr><td>Mug</td><td>2</td></tr><tr><td>Cup</td><td>1</td></tr></table>
    <p>Line<br>break <a href="https://example.com/i"><img src="x.png" alt="pic"></a></p>
    </body></html>"""
    assert html_to_text(html) == (
        "Welcome back\n\n"
        "Read the guide (https://example.com/a) or visit https://example.com.\n\n"
        "- One\n- Two & three\n\n"
        "Mug 2\nCup 1\n\n"
        "Line\nbreak"
    )


@pytest.mark.parametrize("template", ["winback", "birthday", "anniversary", "vip_milestone", "replenishment"])
def test_shipped_offers_show_the_emails_own_coupon_code_over_the_shared_one(renderer: Renderer, template: str):
    context = make_context(params=OFFER) | {"coupon": {"code": "WB-7KQ2MZ9XHD", "pool": None}}
    rendered = render(renderer, template, context)
    for part in (rendered.html, rendered.text):
        assert "WB-7KQ2MZ9XHD" in part and OFFER["discount_code"] not in part


def test_mime_bytes_parse_back_as_the_same_email(renderer: Renderer) -> None:
    """What the file provider writes and SMTP sends: every line ending, long line, trailing space,
    `=` and non-ASCII character of the bodies comes back as it was rendered."""
    text = ("Hi Zoë,\n\nA line that is long enough to need a soft break " + "= x " * 30 + "\nTrailing spaces   \n"
            ".\nFrom the shop\rwith a lone carriage return\n")
    html = "<p>" + "é" * 100 + "</p>"  # no line ending at all
    rendered = RenderedEmail(subject="Grüße, Zoë", preheader="", html=html, text=text,
                             from_="Café <a@shop.example.com>")
    raw = mime_bytes(rendered, to="ada@example.com", headers=HEADERS, date=NOW)
    raw.decode("ascii")
    assert all(line.endswith(b"\r") for line in raw.split(b"\n")[:-1])
    body = raw.partition(b"\r\n\r\n")[2]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert parsed.defects == []
    plain, rich = parsed.iter_parts()
    assert plain.get_content().replace("\r\n", "\n") == text.replace("\r", "\n")
    assert rich.get_content() == html
    assert (parsed["Subject"], parsed["From"].addresses[0].display_name) == ("Grüße, Zoë", "Café")
    assert [parsed[name] for name in HEADERS] == list(HEADERS.values())
    assert build_mime(rendered, to="ada@example.com", headers={}, date=NOW).get_payload(0).get_content_charset() \
        == "utf-8"


@pytest.mark.parametrize("subject", [
    "Grüße, Zoë", "é" * 100, "🎂" * 30, "日本語のお知らせ " * 9,
    "Wir vermissen dich, Jürgen ✓ " + "a" * 41 + "ü" + "b" * 80,  # a character across a word's end
])
def test_non_ascii_headers_are_encoded_words_on_lines_a_reader_accepts(subject: str) -> None:
    rendered = RenderedEmail(subject=subject, preheader="", html="<p>x</p>", text="x\n", from_="a@shop.example.com")
    raw = mime_bytes(rendered, to="ada@example.com", headers={"X-Note": subject}, date=NOW)
    encoded = [line for line in raw.partition(b"\r\n\r\n")[0].split(b"\r\n")
               if line.startswith((b"Subject: ", b"X-Note: ", b" "))]
    assert max(len(line) for line in encoded) <= 78
    words = [word for line in encoded for word in line.split() if word.startswith(b"=?")]
    assert words and all(len(word) <= 75 for word in words)
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert parsed.defects == [] and parsed["Subject"] == parsed["X-Note"] == subject


@pytest.mark.parametrize("body", [
    "plain ascii\n",
    "Hi Zoë,\n\n" + "= x " * 40 + "\nTrailing spaces   \nTrailing tab\t\n.\nFrom the shop\n",
    "<p>" + "é" * 100 + "</p>",
    "\n\nlines\n\n\nbetween\r\ncarriage\rreturns\n",
    "x" * 75 + " \n" + "y" * 76 + "\n" + "z" * 77 + "=\n" + "\u00a0" * 30,
])
def test_quoted_printable_encodes_line_by_line_as_the_whole_body_would_be(body: str) -> None:
    """Each distinct line is encoded once and kept: the joined lines must be what binascii gives for the
    whole body, the first time and when every line comes from what was kept."""
    whole = body.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n") + "\r\n"
    expected = b2a_qp(whole.encode("utf-8"), istext=True)[:-2]
    assert _quoted_printable(body) == expected
    assert _quoted_printable(body) == expected


def test_a_pinned_batch_renders_the_templates_as_they_were_when_it_started(tmp_path: Path) -> None:
    path = write(tmp_path, "pinned.html", "<p>{{ customer.first_name }}</p>\n")
    renderer = Renderer(tmp_path)

    def edit(text: str) -> None:
        path.write_text(text, encoding="utf-8")
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))

    with renderer.pinned():
        first = renderer.render(message("pinned"), make_context(), default_from=FROM).html
        edit("<p>Changed {{ customer.first_name }}</p>\n")
        second = renderer.render(message("pinned"), make_context(), default_from=FROM).html
    with renderer.pinned():
        third = renderer.render(message("pinned"), make_context(), default_from=FROM).html
    assert (first, second, third) == ("<p>Ada</p>", "<p>Ada</p>", "<p>Changed Ada</p>")
