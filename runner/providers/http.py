"""Shared machinery for HTTP mail APIs: one pooled client, pacing, retries and error classification.

A subclass says how to turn a chunk of messages into one request (`build_request`) and what its
documented success answer looks like (`parse_response`: one result per message, None where the
answer says nothing readable, or UnreadableAnswer when the whole answer has another shape); it
may refine how error responses are read (`parse_error`). Everything else lives here, once:

    send_batch(messages)
      └── per chunk of at most `request_size` messages
            ├── pace: token buckets for messages/s and requests/s (injected clock and sleep), and
            │   any Retry-After wait another thread's request was told to keep
            ├── send; a timeout or dropped connection makes every message in it retryable
            ├── classify: 2xx -> parse_response, and what it cannot read (an HTML page from a
            │   proxy, an empty body, JSON of another shape, a missing entry) -> retryable, logged,
            │   never accepted; 429/5xx/408 -> retryable (Retry-After kept);
            │   401/403/404/405 -> ProviderError (credentials or base URL); other 4xx -> permanent
            └── retry only the retryable messages, with exponential backoff and jitter that
                honours Retry-After and rate-limit reset headers, up to `max_retries` times and
                `max_retry_wait` seconds of sleep per call; what is still retryable goes back to
                the caller (the dispatcher's ledger tries again later).

Accepted messages are never sent again: a retry rebuilds the request from the messages that
are still retryable. Secrets never reach an error message: every message passes `redact`.
"""

from __future__ import annotations

import email.utils
import logging
import random as random_module
import re
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self

import httpx

from .. import __version__
from ..errors import ProviderError
from ..settings import DISPATCH_CONCURRENCY, Setting, Settings
from .base import Outcome, OutgoingMessage, Provider, SendResult, keep_accepted
from .pacing import Pause, TokenBucket
from .settings import HTTP_MAX_RETRIES, HTTP_MAX_RETRY_WAIT, HTTP_TIMEOUT, RATE_LIMIT, REQUEST_BATCH_SIZE, REQUEST_RATE

log = logging.getLogger(__name__)

USER_AGENT = f"lifecycle-runner/{__version__}"


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or None when the body is not JSON (an HTML error page, say)."""
    try:
        return response.json()
    except ValueError:
        return None


class UnreadableAnswer(Exception):
    """Raised by `parse_response` when a 2xx answer as a whole is not the provider's documented
    per-message result; the message says what is wrong with it."""


def describe_body(response: httpx.Response) -> str:
    """What came back, in a few words: content type, size and the first characters."""
    text = " ".join(response.text.split())
    shown = f": {text[:80]!r}" + ("..." if len(text) > 80 else "") if text else ""
    return f"{response.headers.get('Content-Type', 'no Content-Type')}, {len(response.content)} bytes{shown}"


_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def sanitize_tag(value: str, max_length: int = 256) -> str:
    """A tag value made of ASCII letters, digits, underscores and dashes only (Resend's rule)."""
    return (_TAG_UNSAFE.sub("_", value).strip("_") or "none")[:max_length]


class HttpProvider(Provider):
    """Base of the HTTP API providers. Subclasses implement `build_request` and `parse_response`.

    Thread-safe: `send_batch` may run in several threads at once (the dispatcher's pool of
    concurrent requests); they share the pooled client, the rate limits and any Retry-After pause.
    """

    concurrent = True

    #: the provider's documented maximum number of messages in one API request
    max_request_size: ClassVar[int] = 1
    default_rate_limit: ClassVar[float] = 0.0  # messages per second, 0 = unlimited
    default_request_rate: ClassVar[float] = 0.0  # requests per second, 0 = unlimited
    #: the setting holding the credential, named in "check your credentials" hints
    credential_setting: ClassVar[Setting]
    base_url_setting: ClassVar[Setting]

    backoff_base: ClassVar[float] = 1.0  # first backoff in seconds, doubled each retry
    backoff_cap: ClassVar[float] = 30.0  # longest single backoff when the server gave no hint

    def __init__(
        self,
        credential: str,
        *,
        base_url: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
        rate_limit: float | None = None,
        request_rate: float | None = None,
        batch_size: int | None = None,
        max_retries: int = 2,
        max_retry_wait: float = 60.0,
        connections: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        random: random_module.Random | None = None,
    ) -> None:
        self._credential = credential
        self.base_url = (base_url or self.base_url_setting.default).rstrip("/")
        self.timeout = httpx.Timeout(timeout)
        self._owns_client = client is None
        self.client = client if client is not None else httpx.Client(
            timeout=self.timeout, headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=max(10, connections), max_keepalive_connections=max(10, connections)))
        self.request_size = min(batch_size or self.max_request_size, self.max_request_size)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._now = now
        self._random = random or random_module.Random()
        messages_per_second = self.default_rate_limit if rate_limit is None else rate_limit
        requests_per_second = self.default_request_rate if request_rate is None else request_rate
        self._message_bucket = TokenBucket(messages_per_second, max(messages_per_second, self.request_size),
                                           clock, sleep)
        self._request_bucket = TokenBucket(requests_per_second, max(requests_per_second, 1.0), clock, sleep)
        self._pause = Pause(clock, sleep)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        return cls(settings.require(cls.credential_setting), base_url=settings[cls.base_url_setting],
                   **cls.http_options(settings) | options)

    @staticmethod
    def http_options(settings: Settings) -> dict[str, Any]:
        """Constructor keywords read from the shared HTTP settings."""
        return {
            "rate_limit": settings[RATE_LIMIT],
            "request_rate": settings[REQUEST_RATE],
            "batch_size": settings[REQUEST_BATCH_SIZE],
            "timeout": settings[HTTP_TIMEOUT],
            "max_retries": settings[HTTP_MAX_RETRIES],
            "max_retry_wait": settings[HTTP_MAX_RETRY_WAIT],
            "connections": settings[DISPATCH_CONCURRENCY],
        }

    # -- what subclasses provide ------------------------------------------------------------

    @abstractmethod
    def build_request(self, messages: Sequence[OutgoingMessage]) -> httpx.Request:
        """One API request carrying `messages` (at most `request_size` of them)."""

    @abstractmethod
    def parse_response(self, response: httpx.Response,
                       messages: Sequence[OutgoingMessage]) -> list[SendResult | None]:
        """One result per message, in order, read from a 2xx response in the provider's documented
        success shape: None where the answer holds no readable result for that message; raise
        UnreadableAnswer when the answer as a whole has another shape (the shared rule then makes
        those messages retryable, never accepted)."""

    def parse_error(self, response: httpx.Response,
                    messages: Sequence[OutgoingMessage]) -> list[SendResult] | None:
        """Provider-specific reading of an error response; None applies the shared rules."""
        return None

    def secrets(self) -> tuple[str, ...]:
        return (self._credential,)

    def endpoint_hint(self) -> str:
        """What to check when the API answers 404/405: the request went to the wrong place."""
        return f"check {self.base_url_setting.name}"

    # -- helpers for subclasses ---------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Request:
        """A request to `base_url + path` with this provider's timeout."""
        return self.client.build_request(method, self.base_url + path, timeout=self.timeout, **kwargs)

    def error_detail(self, response: httpx.Response) -> str:
        """A short, human-readable reason from an error response body."""
        body = json_body(response)
        detail = ""
        if isinstance(body, dict):
            errors = body.get("errors")
            if isinstance(errors, list) and errors:
                detail = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            else:
                detail = str(body.get("message") or body.get("Message") or body.get("error") or "")
        if not detail:
            detail = response.text.strip() or response.reason_phrase
        return self.redact(" ".join(detail.split())[:300])

    def retry_after(self, response: httpx.Response) -> float | None:
        """Seconds the provider asked us to wait: Retry-After (seconds or HTTP date), else rate-limit
        reset headers (X-RateLimit-Reset as epoch seconds, as SendGrid sends it; RateLimit-Reset as
        seconds, as Resend sends it). None when the response says nothing."""
        reference = self._response_time(response)
        value = response.headers.get("Retry-After")
        if value:
            seconds = _parse_seconds(value)
            if seconds is not None:
                return seconds
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - reference)
        if response.status_code == 429:
            for name in ("X-RateLimit-Reset", "RateLimit-Reset"):
                seconds = _parse_seconds(response.headers.get(name, ""))
                if seconds is not None:
                    # Values this large are Unix timestamps, not durations.
                    return max(0.0, seconds - reference) if seconds > 1_000_000_000 else seconds
        return None

    def _response_time(self, response: httpx.Response) -> float:
        """The server's clock when it answered (its Date header), else ours: HTTP dates in
        Retry-After are compared with it, so clock skew between us and the server cancels out."""
        date = response.headers.get("Date")
        if date:
            try:
                return email.utils.parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError):
                pass
        return self._now()

    # -- the shared algorithm -------------------------------------------------------------

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(messages)
        waited = 0.0
        try:
            for start in range(0, len(messages), self.request_size):
                chunk = list(range(start, min(start + self.request_size, len(messages))))
                waited = self._send_chunk(messages, chunk, results, waited)
        except Exception as exc:  # including a bug: what was accepted must still be reported
            kept = keep_accepted(results, len(messages), self.redact(f"{self.name}: {exc}"))
            if kept is None:
                raise
            log.error("%s: %s; the messages not accepted are left for a later retry", self.name, self.redact(str(exc)))
            return kept
        return [r if r is not None else SendResult.retryable(f"{self.name}: not attempted") for r in results]

    def _send_chunk(self, messages: Sequence[OutgoingMessage], pending: list[int],
                    results: list[SendResult | None], waited: float) -> float:
        """Send messages[pending] in one request, then retry only those still retryable."""
        for attempt in range(self.max_retries + 1):
            batch = [messages[i] for i in pending]
            self._pause.wait()
            self._request_bucket.take(1)
            self._message_bucket.take(len(batch))
            for index, result in zip(pending, self._attempt(batch), strict=True):
                results[index] = result
            pending = [i for i in pending if results[i].outcome is Outcome.RETRYABLE]  # type: ignore[union-attr]
            if not pending or attempt == self.max_retries:
                break
            hints = [r.retry_after for i in pending if (r := results[i]) is not None and r.retry_after is not None]
            delay = self._backoff(attempt, max(hints) if hints else None)
            if waited + delay > self.max_retry_wait:
                log.warning("%s: %d message(s) still retryable; waiting %.1f s more would exceed "
                            "%.0f s, leaving them for a later retry", self.name, len(pending), delay,
                            self.max_retry_wait)
                break
            log.warning("%s: %d message(s) retryable (%s); retrying in %.1f s (try %d of %d)",
                        self.name, len(pending), results[pending[0]].error,  # type: ignore[union-attr]
                        delay, attempt + 2, self.max_retries + 1)
            if hints:  # the provider asked for the wait: no other request of this provider starts before it ends
                self._pause.extend(max(hints))
            self._sleep(delay)
            waited += delay
        return waited

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry number `attempt + 1`: the server's hint plus up to 10% jitter,
        else exponential backoff with "equal jitter" (half fixed, half random)."""
        if retry_after is not None:
            return retry_after + self._random.uniform(0, min(1.0, 0.1 * retry_after))
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** attempt)
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    def _attempt(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        """One request; one result per message. Raises ProviderError when the provider is unusable."""
        request = self.build_request(batch)
        try:
            response = self.client.send(request)
        except httpx.UnsupportedProtocol as exc:
            raise ProviderError(self.redact(f"{self.name}: {exc}"), self.endpoint_hint()) from None
        except httpx.TimeoutException as exc:
            # A read timeout may mean the provider took the request; see docs/providers.md.
            reason = f"{self.name}: timed out after {self.timeout.read:g} s ({type(exc).__name__})"
            return [SendResult.retryable(self.redact(reason))] * len(batch)
        except httpx.TransportError as exc:
            reason = f"{self.name}: connection failed ({type(exc).__name__}: {exc})"
            return [SendResult.retryable(self.redact(reason))] * len(batch)
        except httpx.RequestError as exc:  # an unreadable answer (decoding, redirects): it may have been sent
            reason = f"{self.name}: unreadable response ({type(exc).__name__}: {exc})"
            return [SendResult.retryable(self.redact(reason))] * len(batch)
        if response.is_success:
            results = self._read_answer(response, batch)
        else:
            results = self.parse_error(response, batch) or self._classify(response, batch)
        if len(results) != len(batch):  # a bug in a subclass, never the provider's fault
            raise AssertionError(f"{self.name}: {len(results)} results for {len(batch)} messages")
        return results

    def _read_answer(self, response: httpx.Response, batch: list[OutgoingMessage]) -> list[SendResult]:
        """The results a 2xx answer gives. A message it gives no readable result for is retryable,
        never accepted: whoever answered (the provider, or a proxy or captive portal in front of
        it) may or may not have sent it. The ledger keeps the reason and the log says it once."""
        try:
            read = list(self.parse_response(response, batch))
            why = "no readable result for some messages"
        except UnreadableAnswer as exc:
            read, why = [None] * len(batch), str(exc)
        unread = sum(result is None for result in read)
        if not unread:
            return [result for result in read if result is not None]
        reason = self.redact(f"{self.name}: HTTP {response.status_code} answer is not the documented result "
                             f"({why}; {describe_body(response)}); it may or may not have been sent")
        log.warning("%s; %d of %d message(s) left retryable", reason, unread, len(batch))
        return [result if result is not None else SendResult.retryable(reason) for result in read]

    def _classify(self, response: httpx.Response, batch: list[OutgoingMessage]) -> list[SendResult]:
        """The shared rules for an error response that applies to the whole request."""
        status = response.status_code
        reason = f"{self.name}: HTTP {status}: {self.error_detail(response)}"
        if status in (408, 429) or status >= 500:
            return [SendResult.retryable(reason, self.retry_after(response))] * len(batch)
        if status in (401, 403):
            raise ProviderError(reason, f"check {self.credential_setting.name}")
        if status in (404, 405):
            raise ProviderError(reason, self.endpoint_hint())
        return [SendResult.permanent(reason)] * len(batch)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url} request_size={self.request_size}>"


def _parse_seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds)
