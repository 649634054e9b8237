"""A hostile Postmark for the chaos suite: `POST /email/batch` on 127.0.0.1 that injects faults and keeps score.

    mix = FaultMix(seed=3, among=40, server_error=4, throttle=3, inactive=frozenset({"gone@example.com"}))
    with ProviderStandIn(mix) as standin:        # an ephemeral port; LIFECYCLE_POSTMARK_BASE_URL=standin.url
        ...                                      # run `lifecycle tick` against it
        standin.duplicates()                     # send ids delivered more than once
        standin.faults                           # Counter of injected faults by kind

Requests meet whole-request faults dealt from the seeded mix: an HTTP 5xx, a 429 with
Retry-After (short enough to wait out within one send, or long enough to hand back to the
ledger), a connection reset before any answer, a stall longer than the client's timeout (after
which the batch is delivered, as a provider that was merely slow would), or a 200 whose body is
an HTML page (a captive portal at the provider's address; nothing delivered). Without a fault
the batch is answered the way Postmark answers: one entry per message, ErrorCode 406 for the
addresses in `inactive` and ErrorCode 0 with a MessageID for the rest, which count as delivered.

Every request is kept with its send ids (the X-Send-ID header, which the Metadata repeats), the
instant it arrived and its fault, so a test can measure what the
client did: how long it waited after a 429, which deliveries repeated and why.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

TOKEN = "chaos-server-token"

HTML_PAGE = (b"<!doctype html><html><head><title>Network login</title></head>"
             b"<body><h1>Welcome</h1><p>Accept the terms to continue.</p></body></html>")


class Fault(StrEnum):
    SERVER_ERROR = "5xx"
    THROTTLE = "429"
    THROTTLE_LONG = "429-long"
    RESET = "reset"
    STALL = "stall"
    HTML = "html200"
    REJECTED = "406"  # per recipient, inside an otherwise normal answer


@dataclass(frozen=True)
class FaultMix:
    """How many requests meet each whole-request fault, dealt at random (seeded) among the first `among`
    requests; later requests meet none, so a run always comes to an end. And the numbers the faults use."""

    seed: int = 0
    among: int = 0
    server_error: int = 0
    throttle: int = 0
    throttle_long: int = 0
    reset: int = 0
    stall: int = 0
    html: int = 0
    retry_after: float = 1.0  # seconds a 429 asks for
    long_retry_after: float = 100.0  # seconds a long 429 asks for: more than one send may sleep
    stall_seconds: float = 1.5  # how long a stalled request is held before its answer
    late_after: float = 0.5  # an answer this many seconds after the request may come too late for the client
    inactive: frozenset[str] = frozenset()  # addresses answered with ErrorCode 406

    def deal(self) -> list[Fault | None]:
        """The fault of each of the first `among` requests, in order."""
        faults = ([Fault.SERVER_ERROR] * self.server_error + [Fault.THROTTLE] * self.throttle
                  + [Fault.THROTTLE_LONG] * self.throttle_long + [Fault.RESET] * self.reset
                  + [Fault.STALL] * self.stall + [Fault.HTML] * self.html)
        if len(faults) > self.among:
            raise ValueError(f"{len(faults)} faults do not fit among {self.among} requests")
        deck: list[Fault | None] = [*faults, *[None] * (self.among - len(faults))]
        random.Random(self.seed).shuffle(deck)
        return deck


@dataclass
class Request:
    """One `POST /email/batch` as the stand-in saw and answered it."""

    number: int
    arrived: float  # time.monotonic() when the body had been read
    send_ids: list[int]
    to: list[str]
    fault: Fault | None
    retry_after: float | None = None
    rejected: list[str] = field(default_factory=list)  # addresses answered with ErrorCode 406
    late: bool = False  # answered `late_after` seconds or more after it arrived


class ProviderStandIn:
    """A threaded HTTP server on 127.0.0.1 speaking Postmark's batch API, with the faults of `mix`."""

    def __init__(self, mix: FaultMix | None = None, token: str = TOKEN) -> None:
        self.mix = mix or FaultMix()
        self.token = token
        self.requests: list[Request] = []
        self.delivered: dict[int, list[str]] = {}  # send id -> the MessageID of each delivery
        self.faults: Counter[str] = Counter()
        self._deliveries = 0
        self._deck = self.mix.deal()
        self._ids = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def settings(self) -> dict[str, str]:
        """The environment that points `lifecycle` at this stand-in."""
        return {"LIFECYCLE_PROVIDER": "postmark", "LIFECYCLE_POSTMARK_SERVER_TOKEN": self.token,
                "LIFECYCLE_POSTMARK_BASE_URL": self.url}

    def start(self) -> Self:
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="provider-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a test reads ----------------------------------------------------------------------

    @property
    def deliveries(self) -> int:
        """Messages delivered so far, repeats included."""
        return self._deliveries

    def taken(self) -> Counter[int]:
        """Deliveries so far by send id, repeats counted."""
        with self._lock:
            return Counter({send_id: len(ids) for send_id, ids in self.delivered.items()})

    def duplicates(self) -> dict[int, int]:
        """Send ids delivered more than once, with how many extra times."""
        with self._lock:
            return {send_id: len(ids) - 1 for send_id, ids in self.delivered.items() if len(ids) > 1}

    def retried_attempts(self) -> int:
        """Messages that arrived again after an earlier request had carried them."""
        seen: set[int] = set()
        again = 0
        for request in self.requests:
            again += sum(1 for send_id in request.send_ids if send_id in seen)
            seen.update(request.send_ids)
        return again

    def next_carrying(self, request: Request) -> Request | None:
        """The first later request that carries any message of `request` again."""
        ids = set(request.send_ids)
        return next((r for r in self.requests[request.number + 1:] if ids & set(r.send_ids)), None)

    # -- answering ------------------------------------------------------------------------------

    def _receive(self, raw: bytes) -> tuple[Request | None, list[dict[str, Any]]]:
        """The request's record and its messages, or (None, []) when it is not a valid batch."""
        try:
            batch = json.loads(raw)
        except ValueError:
            return None, []
        if not isinstance(batch, list) or not all(isinstance(m, dict) for m in batch):
            return None, []
        with self._lock:
            fault = self._deck[len(self.requests)] if len(self.requests) < len(self._deck) else None
            request = Request(number=len(self.requests), arrived=time.monotonic(),
                              send_ids=[_send_id(m) for m in batch], to=[str(m.get("To")) for m in batch],
                              fault=fault)
            if fault is Fault.THROTTLE:
                request.retry_after = self.mix.retry_after
            elif fault is Fault.THROTTLE_LONG:
                request.retry_after = self.mix.long_retry_after
            if fault is not None:
                self.faults[str(fault)] += 1
            self.requests.append(request)
        return request, batch

    def _deliver(self, request: Request, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Postmark's per-message answers; what is not rejected counts as delivered."""
        submitted = datetime.now(UTC).isoformat()
        answers = []
        with self._lock:
            for send_id, message in zip(request.send_ids, batch, strict=True):
                to = message.get("To")
                if to in self.mix.inactive:
                    request.rejected.append(to)
                    self.faults[str(Fault.REJECTED)] += 1
                    answers.append({"ErrorCode": 406, "Message": (
                        "You tried to send to a recipient that has been marked as inactive. "
                        f"Found inactive addresses: {to}. Inactive recipients are ones that have generated "
                        "a hard bounce, a spam complaint, or a manual suppression.")})
                    continue
                self._ids += 1
                message_id = f"standin-{self._ids:08d}"
                self.delivered.setdefault(send_id, []).append(message_id)
                self._deliveries += 1
                answers.append({"To": to, "SubmittedAt": submitted, "MessageID": message_id,
                                "ErrorCode": 0, "Message": "OK"})
        return answers


def _send_id(message: dict[str, Any]) -> int:
    headers = {h.get("Name"): h.get("Value") for h in message.get("Headers") or [] if isinstance(h, dict)}
    return int(headers.get("X-Send-ID") or (message.get("Metadata") or {})["send_id"])


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timed out, was killed) is part of the game, not an error."""


def _handler_for(standin: ProviderStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool reuses connections

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/email/batch":
                self._answer(404, {"ErrorCode": 404, "Message": "Not found"})
                return
            if self.headers.get("X-Postmark-Server-Token") != standin.token:
                self._answer(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
                return
            request, batch = standin._receive(raw)
            if request is None:
                self._answer(422, {"ErrorCode": 402, "Message": "Received invalid JSON input."})
                return
            fault = request.fault
            if fault is Fault.RESET:
                # SO_LINGER 0: closing sends a TCP RST, the client sees "connection reset".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if fault is Fault.SERVER_ERROR:
                self._answer(503, {"ErrorCode": 100, "Message": "Maintenance"})
            elif fault in (Fault.THROTTLE, Fault.THROTTLE_LONG):
                self._answer(429, {"ErrorCode": 429, "Message": "Rate limit exceeded."},
                             {"Retry-After": f"{request.retry_after:g}"})
            elif fault is Fault.HTML:
                self._answer(200, HTML_PAGE, content_type="text/html; charset=utf-8")
            else:
                if fault is Fault.STALL:
                    time.sleep(standin.mix.stall_seconds)
                self._answer(200, standin._deliver(request, batch))
            request.late = time.monotonic() - request.arrived >= standin.mix.late_after

        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None,
                    content_type: str = "application/json") -> None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client hung up first (it timed out, or was killed)
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
