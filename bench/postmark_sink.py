"""A local stand-in for Postmark's `POST /email/batch`, on a real socket, for tests and benches.

    with PostmarkSink() as sink:                 # listens on 127.0.0.1, an ephemeral port
        sink.fail_next(500)                      # the next request gets HTTP 500
        sink.inactive.add("gone@example.com")   # this recipient gets ErrorCode 406
        sink.throttle_once.add("busy@example.com")  # ErrorCode 429 the first time, then OK
        provider = PostmarkProvider("sink-token", base_url=sink.url)
        ...
        sink.accepted  # every message answered with ErrorCode 0, in arrival order

    PostmarkSink(latency=0.03)  # every answer 30 ms late, like a mail API across a network;
                                # `peak_in_flight` tells how many requests it held at once

Answers follow Postmark's documented shapes: 200 with one {To, SubmittedAt, MessageID,
ErrorCode, Message} per message; 401 for a wrong X-Postmark-Server-Token; 422 with
{ErrorCode, Message} for a malformed request.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

MAX_BATCH = 500


@dataclass
class ScriptedFailure:
    """A whole-request answer to give instead of processing the batch."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class PostmarkSink:
    def __init__(self, token: str = "sink-token", *, record: bool = True, latency: float = 0.0) -> None:
        self.token = token
        self.record = record
        self.latency = latency
        self.in_flight = 0
        self.peak_in_flight = 0
        self.inactive: set[str] = set()
        self.throttle_once: set[str] = set()
        self.accepted: list[dict[str, Any]] = []
        self.requests: list[int] = []  # messages per request, in arrival order
        self.accepted_count = 0
        self._failures: list[ScriptedFailure] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the sink first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                  times: int = 1) -> None:
        """Answer the next `times` requests with `status` (and body/headers) instead of sending."""
        with self._lock:
            self._failures.extend(ScriptedFailure(status, body, headers or {}) for _ in range(times))

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="postmark-sink", daemon=True)
        self._thread.start()
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

    def _answer(self, token: str | None, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, headers) for one request to /email/batch."""
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            return self._process(token, raw)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _process(self, token: str | None, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return failure.status, failure.body, failure.headers
        if token != self.token:
            return 401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."}, {}
        try:
            batch = json.loads(raw)
        except ValueError:
            return 422, {"ErrorCode": 402, "Message": "Received invalid JSON input."}, {}
        if not isinstance(batch, list):
            return 422, {"ErrorCode": 403, "Message": "Incompatible JSON input."}, {}
        if len(batch) > MAX_BATCH:
            return 422, {"ErrorCode": 410, "Message": f"Too many batch messages ({len(batch)})."}, {}
        now = datetime.now(UTC).isoformat()
        answers = []
        with self._lock:
            self.requests.append(len(batch))
            for message in batch:
                to = message.get("To") if isinstance(message, dict) else None
                if not to or not message.get("From") or not (message.get("HtmlBody") or message.get("TextBody")):
                    answers.append({"ErrorCode": 300, "Message": "Invalid email request"})
                elif to in self.inactive:
                    answers.append({"ErrorCode": 406, "Message": (
                        "You tried to send to a recipient that has been marked as inactive. "
                        f"Found inactive addresses: {to}.")})
                elif to in self.throttle_once:
                    self.throttle_once.discard(to)
                    answers.append({"ErrorCode": 429, "Message": "Rate limit exceeded."})
                else:
                    message_id = f"sink-{next(self._ids):08d}"
                    self.accepted_count += 1
                    if self.record:
                        self.accepted.append(message)
                    answers.append({"To": to, "SubmittedAt": now, "MessageID": message_id,
                                    "ErrorCode": 0, "Message": "OK"})
        return 200, answers, {}


def _handler_for(sink: PostmarkSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so a pooled client reuses its connection
        # The headers and the body are two writes: with Nagle's algorithm the body waits for the
        # client's delayed ACK of the headers, about 40 ms on every answer (1.2 ms without).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/email/batch":
                status, body, headers = 404, {"ErrorCode": 404, "Message": "Not found"}, {}
            else:
                status, body, headers = sink._answer(self.headers.get("X-Postmark-Server-Token"), raw)
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    """Serve until interrupted, printing the base URL on the first line (for a bench subprocess)."""
    import argparse
    import contextlib
    import sys

    parser = argparse.ArgumentParser(description="Serve a local Postmark /email/batch stand-in.")
    parser.add_argument("--token", default="sink-token")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every answer waits (default 0)")
    args = parser.parse_args()
    with PostmarkSink(args.token, record=False, latency=args.latency) as sink:
        print(sink.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    main()
