"""The settings every mail provider shares: pacing, request size, HTTP timeouts and retries, base URLs.

HTTP API providers list `HTTP_SETTINGS` among their own; SMTP reads `RATE_LIMIT` alone.
"""

from __future__ import annotations

from ..settings import (
    Setting,
    parse_non_negative_float,
    parse_non_negative_int,
    parse_positive_float,
    parse_positive_int,
)


def parse_optional_rate(raw: str) -> float | None:
    """Empty means "the provider's default"; otherwise a number of at least 0 (0 = unlimited)."""
    return parse_non_negative_float(raw) if raw.strip() else None


def parse_optional_size(raw: str) -> int | None:
    """Empty means "the provider's maximum"; otherwise a whole number of at least 1."""
    return parse_positive_int(raw) if raw.strip() else None


def parse_base_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ValueError("expected a URL starting with https://")
    return value


RATE_LIMIT = Setting(
    "LIFECYCLE_PROVIDER_RATE_LIMIT", "",
    "messages per second handed to the mail provider by one worker (several workers: divide the "
    "provider's limit among them); empty = the provider's default (unlimited for all built-ins), "
    "0 = unlimited", parse_optional_rate)
REQUEST_RATE = Setting(
    "LIFECYCLE_PROVIDER_REQUEST_RATE", "",
    "API requests per second from one worker (several workers: divide the provider's limit among "
    "them); empty = the provider's default (resend: 2, the documented default limit; others "
    "unlimited), 0 = unlimited", parse_optional_rate)
REQUEST_BATCH_SIZE = Setting(
    "LIFECYCLE_PROVIDER_BATCH_SIZE", "",
    "messages per API request; empty = the provider's documented maximum (postmark 500, "
    "resend 100, sendgrid and mailgun 1); larger values are capped at that maximum", parse_optional_size)
HTTP_TIMEOUT = Setting(
    "LIFECYCLE_HTTP_TIMEOUT", "10",
    "seconds to wait for a mail API to connect, accept the request and answer", parse_positive_float)
HTTP_MAX_RETRIES = Setting(
    "LIFECYCLE_HTTP_MAX_RETRIES", "2",
    "retries within one send after a 429, 5xx, timeout or dropped connection (2 = three tries); "
    "what still fails is retried later by the dispatcher", parse_non_negative_int)
HTTP_MAX_RETRY_WAIT = Setting(
    "LIFECYCLE_HTTP_MAX_RETRY_WAIT", "60",
    "most seconds one send may sleep between retries; a longer Retry-After hands the messages "
    "back to the dispatcher as retryable instead", parse_non_negative_float)

HTTP_SETTINGS: tuple[Setting, ...] = (
    RATE_LIMIT, REQUEST_RATE, REQUEST_BATCH_SIZE, HTTP_TIMEOUT, HTTP_MAX_RETRIES, HTTP_MAX_RETRY_WAIT,
)
