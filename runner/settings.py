"""Settings: one declarative table of name, default and help, read from the environment and `.env`.

Core settings live here; each provider declares its own `Setting`s next to its code
(`Provider.settings`). `config.example.env` documents all of them, and a test keeps
that file and these tables in step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from .errors import ConfigError
from .i18n.locales import DEFAULT_LOCALE, parse_locale

PREFIX = "LIFECYCLE_"


def parse_bool(raw: str) -> bool:
    """yes/no in the spellings settings files and spreadsheets use; empty is no."""
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "y", "on"}:
        return True
    if value in {"0", "false", "no", "n", "off", ""}:
        return False
    raise ValueError("expected true or false")


def parse_zone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as Europe/Berlin") from None


def parse_crontab(raw: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(raw.strip())
    except ValueError:
        raise ValueError("expected a crontab line: minute hour day-of-month month day-of-week, e.g. 30 3 * * *") \
            from None
    return raw.strip()


def parse_currency(raw: str) -> str:
    value = raw.strip().upper()
    if len(value) != 3 or not value.isalpha():
        raise ValueError("expected a three-letter ISO 4217 code such as USD or EUR")
    return value


def parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def parse_non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected a whole number of at least 0")
    return value


def parse_port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("expected a TCP port from 1 to 65535, or 0 for any free port")
    return value


def parse_non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("expected a number of at least 0")
    return value


def parse_positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("expected a number greater than 0")
    return value


REVIEW_URL_FIELDS = ("{sku}", "{product_url}")


def parse_review_url(raw: str) -> str:
    """A review link pattern: an http(s) URL or `{product_url}...`, with no placeholder but {sku} and {product_url}."""
    value = raw.strip()
    rest = value
    for field_name in REVIEW_URL_FIELDS:
        rest = rest.replace(field_name, "")
    if "{" in rest or "}" in rest:
        raise ValueError("the only placeholders are {sku} and {product_url}")
    if not value.startswith(("https://", "http://", "{product_url}")):
        raise ValueError("expected an https:// URL pattern such as https://shop.example.com/products/{sku}/reviews, "
                         "or one that starts with {product_url}")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting: its environment name (with prefix), default, help and how to parse it."""

    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str
    secret: bool = False

    def __post_init__(self) -> None:
        if not self.name.startswith(PREFIX):
            raise ValueError(f"setting {self.name} must start with {PREFIX}")


DATABASE_URL = Setting("LIFECYCLE_DATABASE_URL", "sqlite:///lifecycle.db",
                       "SQLAlchemy database URL; SQLite file by default, postgresql+psycopg://... for PostgreSQL")
CAMPAIGNS_DIR = Setting("LIFECYCLE_CAMPAIGNS_DIR", "campaigns", "folder of campaign YAML files", Path)
TEMPLATES_DIR = Setting("LIFECYCLE_TEMPLATES_DIR", "templates", "folder of Jinja2 email templates", Path)
PROVIDER = Setting("LIFECYCLE_PROVIDER", "file",
                   "mail provider: file, console, or any installed lifecycle.providers entry point")
OUTBOX_DIR = Setting("LIFECYCLE_OUTBOX_DIR", "outbox", "where the file provider writes .eml files", Path)
SHOP_NAME = Setting("LIFECYCLE_SHOP_NAME", "Example Shop", "shop name shown in emails")
SHOP_URL = Setting("LIFECYCLE_SHOP_URL", "https://shop.example.com", "shop home page, used for links")
SHOP_ADDRESS = Setting("LIFECYCLE_SHOP_ADDRESS", "1 Example Street, Example City",
                       "postal address printed in every email footer (required by anti-spam law)")
FROM_ADDRESS = Setting("LIFECYCLE_FROM_ADDRESS", "Example Shop <hello@shop.example.com>",
                       "default From header when a campaign sets none")
SHOP_CURRENCY = Setting("LIFECYCLE_SHOP_CURRENCY", "USD",
                        "ISO 4217 code of the shop's currency: amounts in audience filters (total_spent) are in "
                        "it; emails show amounts in their orders' currency, and in this one only for customers "
                        "without orders", parse_currency)
SHOP_LOCALE = Setting("LIFECYCLE_SHOP_LOCALE", DEFAULT_LOCALE,
                      "the shop's locale (language and region, such as en_GB, fr_FR or de_CH): how emails write "
                      "dates and amounts, and which language's templates they use, for customers whose own "
                      "locale the store does not know", parse_locale)
REVIEW_URL = Setting("LIFECYCLE_REVIEW_URL", "{product_url}",
                     "where a review request links each product bought: a URL pattern in which {sku} is the "
                     "product's SKU and {product_url} its page (the shop's home page when the catalogue has "
                     "none), e.g. https://shop.example.com/products/{sku}/reviews or {product_url}#reviews",
                     parse_review_url)
DEFAULT_TIMEZONE = Setting("LIFECYCLE_DEFAULT_TIMEZONE", "UTC",
                           "shop time zone, used for customers without one", parse_zone)
PUBLIC_URL = Setting("LIFECYCLE_PUBLIC_URL", "http://localhost:8025",
                     "public base URL of the web service (unsubscribe and score links point here); the https:// "
                     "address of the reverse proxy in front of it in production")
SECRET_KEY = Setting("LIFECYCLE_SECRET_KEY", "",
                     "key that signs unsubscribe and score links; when empty, one is generated and kept in the store",
                     secret=True)
BATCH_SIZE = Setting("LIFECYCLE_BATCH_SIZE", "100",
                     "messages claimed from the ledger and handed to the provider at once: the most a "
                     "crash can leave in flight (providers split it into API requests of "
                     "LIFECYCLE_PROVIDER_BATCH_SIZE)",
                     parse_positive_int)
DISPATCH_CONCURRENCY = Setting(
    "LIFECYCLE_DISPATCH_CONCURRENCY", "4",
    "provider requests one worker keeps in flight at once while it claims and renders the next "
    "batches (HTTP providers only; the others send one batch at a time); each holds a claimed batch, "
    "so a crash can leave this many batches in flight", parse_positive_int)
DISPATCH_INTERVAL = Setting(
    "LIFECYCLE_DISPATCH_INTERVAL", "30",
    "seconds between `lifecycle run`'s passes that send whatever is due between campaign schedules: "
    "sends another worker planned while this one skipped the evaluation, and retries whose time has "
    "come; 0 = send only after each scheduled evaluation", parse_non_negative_float)
MAX_ATTEMPTS = Setting("LIFECYCLE_MAX_ATTEMPTS", "5",
                       "delivery attempts before a retryable failure is recorded as failed", parse_positive_int)
RETRY_BASE_SECONDS = Setting("LIFECYCLE_RETRY_BASE_SECONDS", "300",
                             "first wait before a failed send is tried again; doubles each attempt",
                             parse_positive_float)
HTTP_HOST = Setting("LIFECYCLE_HTTP_HOST", "127.0.0.1",
                    "address the web service listens on (`lifecycle serve`, and `lifecycle run` unless "
                    "LIFECYCLE_SERVE_WITH_DAEMON is false); keep it local behind a reverse proxy, 0.0.0.0 for "
                    "every interface")
HTTP_PORT = Setting("LIFECYCLE_HTTP_PORT", "8025", "port the web service listens on; 0 picks a free one",
                    parse_port)
SERVE_WITH_DAEMON = Setting("LIFECYCLE_SERVE_WITH_DAEMON", "true",
                            "whether `lifecycle run` also runs the web service, in the same process", parse_bool)
HTTP_MAX_BODY_BYTES = Setting("LIFECYCLE_HTTP_MAX_BODY_BYTES", "1048576",
                              "largest request body the web service reads; a larger one is answered 413 "
                              "(SendGrid posts event batches of up to 768 KB)", parse_positive_int)
HTTP_TRUSTED_PROXIES = Setting("LIFECYCLE_HTTP_TRUSTED_PROXIES", "127.0.0.1",
                               "comma-separated addresses of reverse proxies whose X-Forwarded-For and "
                               "X-Forwarded-Proto headers are believed (for the client address in the access "
                               "log); * trusts any")
AFFINITY_SCHEDULE = Setting("LIFECYCLE_AFFINITY_SCHEDULE", "30 3 * * *",
                            "when `lifecycle run` rebuilds the product-affinity table (\"often bought with\") "
                            "and records the VIP spend threshold (`milestone` with `segment: vip`), "
                            "a crontab line in LIFECYCLE_DEFAULT_TIMEZONE; without the daemon, run "
                            "`lifecycle refresh-affinity` from cron", parse_crontab)

CORE_SETTINGS: tuple[Setting, ...] = (
    DATABASE_URL, CAMPAIGNS_DIR, TEMPLATES_DIR, PROVIDER, OUTBOX_DIR, SHOP_NAME, SHOP_URL,
    SHOP_ADDRESS, SHOP_CURRENCY, SHOP_LOCALE, FROM_ADDRESS, REVIEW_URL, DEFAULT_TIMEZONE, PUBLIC_URL, SECRET_KEY,
    BATCH_SIZE, DISPATCH_CONCURRENCY, DISPATCH_INTERVAL, MAX_ATTEMPTS, RETRY_BASE_SECONDS, HTTP_HOST, HTTP_PORT,
    SERVE_WITH_DAEMON, HTTP_MAX_BODY_BYTES, HTTP_TRUSTED_PROXIES, AFFINITY_SCHEDULE,
)


@dataclass(frozen=True)
class Settings:
    """The environment as the program sees it: `settings[SETTING]` parses and validates a value."""

    environ: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
        """Read `.env` (when present) under the process environment, which wins."""
        merged: dict[str, str] = {}
        if dotenv is not None and dotenv.is_file():
            merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        merged.update(os.environ if environ is None else environ)
        return cls({k: v for k, v in merged.items() if k.startswith(PREFIX)})

    def raw(self, setting: Setting) -> str:
        return self.environ.get(setting.name, setting.default)

    def __getitem__(self, setting: Setting) -> Any:
        raw = self.raw(setting)
        try:
            return setting.parse(raw)
        except (ValueError, TypeError) as exc:
            shown = "(hidden)" if setting.secret else repr(raw)
            raise ConfigError(f"{setting.name}={shown} is invalid: {exc}",
                              f"fix it in the environment or .env; see config.example.env ({setting.help})") from None

    def require(self, setting: Setting) -> Any:
        """The value of a setting that has no usable default, or a ConfigError naming it."""
        if not self.raw(setting).strip():
            raise ConfigError(f"{setting.name} is not set", f"set it in the environment or .env: {setting.help}")
        return self[setting]

    def with_values(self, **values: str) -> Settings:
        """A copy with some settings replaced (names with or without the prefix)."""
        updated = dict(self.environ)
        for key, value in values.items():
            updated[key if key.startswith(PREFIX) else PREFIX + key.upper()] = value
        return Settings(updated)

    def redacted(self, settings: tuple[Setting, ...]) -> dict[str, str]:
        """Values for display, secrets masked."""
        return {s.name: ("********" if s.secret and self.raw(s) else self.raw(s)) for s in settings}


def all_settings() -> list[tuple[str, tuple[Setting, ...]]]:
    """Every setting by section: the core's, the reports', the coupons', each installed provider's, then the webhooks'
    and each provider webhook's."""
    from .coupons.settings import COUPON_SETTINGS
    from .plugins import PROVIDERS, WEBHOOKS, available
    from .reports.rules import SEGMENT_SETTINGS
    from .webhooks.base import WEBHOOK_SETTINGS

    sections: list[tuple[str, tuple[Setting, ...]]] = []
    seen: set[str] = set()

    def add(section: str, settings: tuple[Setting, ...]) -> None:
        own = tuple(s for s in settings if s.name not in seen)
        seen.update(s.name for s in own)
        if own:
            sections.append((section, own))

    add("core", CORE_SETTINGS)
    add("reports", SEGMENT_SETTINGS)
    add("coupons", COUPON_SETTINGS)
    for name, entry in sorted(available(PROVIDERS).items()):
        add(f"provider: {name}", getattr(entry.load(), "settings", ()))
    add("webhooks", WEBHOOK_SETTINGS)
    for name, entry in sorted(available(WEBHOOKS).items()):
        add(f"webhook: {name}", getattr(entry.load(), "settings", ()))
    return sections


def example_env() -> str:
    """The text of config.example.env: every setting, commented, with its default."""
    out = ["# lifecycle-runner settings. Copy to .env and uncomment what you change.",
           "# The process environment wins over .env. Generated by `lifecycle settings --example`.", ""]
    for section, settings in all_settings():
        out += [f"# ---- {section}", ""]
        for setting in settings:
            secret = " (secret: set it in the environment, never commit it)" if setting.secret else ""
            out.append(f"# {setting.help}{secret}")
            out += [f"# {setting.name}={setting.default}", ""]
    return "\n".join(out)
