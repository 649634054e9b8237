"""Locales: money and dates through Babel, per-language templates and their validation, the locale setting."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from runner.campaigns import Campaign, parse_campaign
from runner.context import Shop, sample_context
from runner.errors import ConfigError
from runner.i18n.filters import date_text, datetime_text, timesince_text
from runner.i18n.locales import fallback_chain, locale_or_default, parse_locale
from runner.money import Money
from runner.rendering.templates import Renderer
from runner.settings import SHOP_LOCALE, Settings

BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
FROM = "Shop <hello@shop.example.com>"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def campaign(folder: Path, template: str = "winback") -> Campaign:
    path = write(folder / "campaigns", f"{template}.yaml", f"""\
        id: {template}
        name: {template}
        trigger: {{type: order}}
        message: {{template: {template}, subject: "Hi {{{{ customer.first_name }}}}"}}
        """)
    found, problems = parse_campaign(path)
    assert found is not None, problems
    return found


def shop(locale: str = "en_US", currency: str = "USD") -> Shop:
    return Shop(name="Shop", url="https://shop.example.com", address="1 Street", public_url="https://mail.example.com",
                signing_key=b"k", default_zone=BERLIN, currency=currency, locale=locale)


# ---------------------------------------------------------------- money and dates

def test_money_is_written_the_way_its_reader_writes_it() -> None:
    assert str(Money(123450, "EUR", "de_DE")) == "1.234,50\xa0€"
    assert str(Money(123450, "EUR", "fr_FR")) == "1\u202f234,50\xa0€"
    assert str(Money(123450, "EUR")) == "€1,234.50"
    assert str(Money(150000, "CHF", "de_CH")) == "CHF\xa01'500.00"
    assert str(Money(1500, "JPY", "ja_JP")) == "￥1,500"
    assert str(Money(1235, "KWD", "en_US")) == "KWD1.235"
    assert Money(100, "EUR", "de_DE") == Money(100, "EUR", "fr_FR")  # the locale is not part of the value


def test_dates_and_durations_in_each_locale() -> None:
    moment = dt.datetime(2026, 11, 23, 14, 5, tzinfo=BERLIN)
    assert date_text(moment, "en_US") == "November 23, 2026"
    assert date_text(moment, "en_GB") == "23 November 2026"
    assert date_text(moment, "de_DE") == "23. November 2026"
    assert date_text(moment, "fr_FR") == "23 novembre 2026"
    assert date_text(dt.date(2024, 2, 29), "fr") == "29 février 2024"
    assert date_text(moment, "fr", "d MMM y") == "23 nov. 2026"  # a CLDR pattern
    assert date_text(moment, "de_DE", "short") == "23.11.26"
    assert date_text(moment, "fr", "%Y-%m-%d") == "2026-11-23"  # strftime still works
    assert date_text(None, "fr") == ""
    assert datetime_text(moment, "en_US") == "November 23, 2026, 2:05\u202fPM CET"
    assert datetime_text(moment, "de_DE") == "23. November 2026, 14:05 CET"
    assert datetime_text(moment, "fr", "HH:mm") == "14:05"
    assert timesince_text(NOW - dt.timedelta(days=1), NOW, "en_US") == "1 day"
    assert timesince_text(NOW - dt.timedelta(days=21), NOW, "en_US") == "3 weeks"
    assert timesince_text(NOW - dt.timedelta(days=200), NOW, "en_US") == "6 months"
    assert timesince_text(NOW - dt.timedelta(days=800), NOW, "en_US") == "2 years"
    assert timesince_text(dt.date(2026, 11, 1), NOW, "en_US") == "3 weeks"
    assert timesince_text(NOW - dt.timedelta(days=200), NOW, "fr") == "6\xa0mois"
    assert timesince_text(NOW - dt.timedelta(days=10), NOW, "de_DE") == "10 Tage"


def test_filters_take_the_locale_from_the_context(tmp_path: Path) -> None:
    write(tmp_path, "dates.html", "{{ day|date }} | {{ day|date('d MMM') }} | {{ day|timesince(now) }} | "
                                  "{{ price|money }} | {{ price }}\n")
    write(tmp_path, "_macros.html", "{% macro when(day) %}{{ day|date }}{% endmacro %}\n")
    write(tmp_path, "macro.html", '{% from "_macros.html" import when %}{{ when(day) }}\n'
                                  '{% from "_macros.html" import when as own with context %}{{ own(day) }}\n')
    renderer = Renderer(tmp_path, locale="de_DE")  # the shop writes German
    page = {"day": dt.date(2026, 5, 1), "now": NOW, "price": Money(2400, "EUR", "fr_FR"), "locale": "fr_FR"}
    html = renderer.files.get_template("dates.html").render(page)
    assert html == "1 mai 2026 | 1 mai | 6\xa0mois | 24,00\xa0€ | 24,00\xa0€"
    macro = renderer.files.get_template("macro.html").render(page)
    assert macro.splitlines() == ["1. Mai 2026", "1 mai 2026"]  # without context: the shop's locale


def test_locale_names_and_their_fallback_chain() -> None:
    assert parse_locale(" fr-ca ") == "fr_CA" and parse_locale("pt-BR") == "pt_BR" and parse_locale("EN") == "en"
    for wrong in ("", "xx", "v2", "French"):
        with pytest.raises(ValueError, match="is not a locale"):
            parse_locale(wrong)
    assert fallback_chain("fr_CA") == ["fr_CA", "fr"]
    assert fallback_chain("zh_Hant_TW") == ["zh_Hant_TW", "zh_Hant", "zh"]
    assert locale_or_default("fr-CA", "en_US") == "fr_CA"
    assert locale_or_default(None, "en_US") == locale_or_default("klingon", "en_US") == "en_US"


def test_the_shop_locale_setting_is_checked() -> None:
    assert Settings({})[SHOP_LOCALE] == "en_US"
    assert Settings({"LIFECYCLE_SHOP_LOCALE": "de-ch"})[SHOP_LOCALE] == "de_CH"
    with pytest.raises(ConfigError, match=r"LIFECYCLE_SHOP_LOCALE='German' is invalid: 'German' is not a locale"):
        Settings({"LIFECYCLE_SHOP_LOCALE": "German"})[SHOP_LOCALE]


# ---------------------------------------------------------------- templates per language

@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    write(folder, "winback.html", "<p>We miss you since {{ customer.last_order_at|date }}</p>\n")
    write(folder, "winback.txt", "We miss you\n")
    write(folder, "winback.fr.html", "<p>Vous nous manquez depuis le {{ customer.last_order_at|date }}</p>\n")
    write(folder, "winback.de_CH.html", "<p>Wir vermissen Sie seit {{ customer.last_order_at|date }}</p>\n")
    write(folder, "winback.de_CH.txt", "Wir vermissen Sie\n")
    return folder


@pytest.mark.parametrize(("locale", "html", "text"), [
    ("fr_FR", "Vous nous manquez depuis le 21 novembre 2026", "Vous nous manquez depuis le 21 novembre 2026"),
    ("fr_CA", "Vous nous manquez depuis le 21 novembre 2026", "Vous nous manquez depuis le 21 novembre 2026"),
    ("fr", "Vous nous manquez depuis le 21 novembre 2026", "Vous nous manquez depuis le 21 novembre 2026"),
    ("de_CH", "Wir vermissen Sie seit 21. November 2026", "Wir vermissen Sie"),
    ("de_DE", "We miss you since 21. November 2026", "We miss you"),
    ("en_US", "We miss you since November 21, 2026", "We miss you"),
])
def test_a_template_in_the_readers_language_is_chosen(templates: Path, tmp_path: Path, locale: str, html: str,
                                                      text: str) -> None:
    """fr_CA -> fr -> the default; the text part comes from the chosen language (derived from its HTML
    when it has no .txt), never from another language's .txt."""
    winback = campaign(tmp_path)
    context = {**sample_context(winback, shop(), NOW), "locale": locale}
    rendered = Renderer(templates).render(winback.spec.message, context, default_from=FROM)
    assert html in rendered.html
    assert rendered.text.strip() == text


def test_language_variants_are_not_template_names(templates: Path) -> None:
    write(templates, "summer.v2.html", "<p>hi</p>\n")
    assert Renderer(templates).available() == ["summer.v2", "winback"]


def test_validation_checks_every_language_variant(templates: Path, tmp_path: Path) -> None:
    write(templates, "winback.fr.html", "<p>Bonjour</p>\n<p>{{ customer.prenom }}</p>\n")
    write(templates, "winback.es-MX.html", "<p>Hola</p>\n")
    write(templates, "winback.it.txt", "Ciao\n")
    winback = campaign(tmp_path)
    problems = Renderer(templates).check(winback, sample_context(winback, shop(), NOW), default_from=FROM)
    assert [(Path(p.path).name, p.line) for p in problems] == [
        ("winback.es-MX.html", None), ("winback.fr.html", 2), ("winback.it.txt", None)]
    misspelt, undefined, orphan = problems
    assert "'es-MX' is never chosen: locales are spelt 'es_MX'" in misspelt.message
    assert misspelt.hint == "rename it to winback.es_MX.html"
    assert "prenom" in undefined.message
    assert orphan.message == "no winback.it.html beside it, so it is never used"


def test_a_variant_is_validated_in_its_own_locale(tmp_path: Path) -> None:
    """Each variant renders with `locale` set to its language, as its readers' emails do."""
    folder = tmp_path / "templates"
    write(folder, "winback.html", "<p>{{ locale }}</p>\n")
    write(folder, "winback.fr.html", "{% if locale != 'fr' %}{{ undefined_unless_french }}{% endif %}\n")
    winback = campaign(tmp_path)
    assert Renderer(folder).check(winback, sample_context(winback, shop(), NOW), default_from=FROM) == []
