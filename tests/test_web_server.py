"""The web service on the real uvicorn server, on 127.0.0.1: real HTTP, malformed requests on raw sockets,
and `lifecycle serve` as a user runs it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from shopkit import ShopBuilder
from sqlmodel import select
from webkit import KEY, raw_exchange, serving, web_context

from runner.errors import WebError
from runner.links.unsubscribe import sign
from runner.models import Customer, Suppression
from runner.settings import Settings
from runner.store import Store
from runner.web import WebServer, create_app


@pytest.fixture
def ada(store: Store) -> int:
    return ShopBuilder(store).customer("ada@example.com")


def state(store: Store) -> tuple[list[str], bool]:
    """What an unsubscribe changes: the suppression list and Ada's consent."""
    with store.session() as session:
        emails = list(session.exec(select(Suppression.email)).all())
        consent = session.exec(select(Customer.accepts_marketing).where(Customer.email == "ada@example.com")).one()
    return emails, consent


def test_the_real_server_shows_the_page_unsubscribes_and_reports(store: Store, ada: int) -> None:
    path = f"/unsubscribe/{sign(KEY, ada, 'ada@example.com')}"
    with serving(web_context(store)) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url) and not server.url.endswith(":0/")
        with httpx.Client(base_url=server.url) as client:
            page = client.get(path)
            assert page.status_code == 200 and "Stop marketing emails to" in page.text
            assert "server" not in page.headers  # no advertising of the server software
            one_click = client.post(path, content=b"List-Unsubscribe=One-Click",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert one_click.status_code == 200 and "unsubscribed" in one_click.text
            assert client.get("/healthz").json() == {"status": "ok", "checks": {"database": "ok"}}
            assert "lifecycle_store_up 1.0" in client.get("/metrics").text
    assert state(store) == (["ada@example.com"], False)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "healthz")


def request(method: str, target: str, body: bytes = b"", headers: str = "") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def chunked(target: str, total: int) -> bytes:
    chunk = b"z" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(total // len(chunk)))
    return request("POST", target, headers="Transfer-Encoding: chunked\r\n") + body + b"0\r\n\r\n"


def malformed(token: str) -> dict[str, bytes]:
    path = f"/unsubscribe/{token}"
    return {
        "not HTTP": b"HELLO\r\n\r\n",
        "bad request line": b"GET\r\n\r\n",
        "oversized URL": request("POST", "/unsubscribe/" + "a" * 200_000),
        "oversized token": request("POST", "/unsubscribe/" + "a" * 5000, b"List-Unsubscribe=One-Click"),
        "oversized header": request("GET", path, headers=f"X-Filler: {'b' * 200_000}\r\n"),
        "oversized body": request("POST", path, b"List-Unsubscribe=One-Click&" + b"x" * 2_000_000),
        "oversized chunked body": chunked(path, 2 * 1024 * 1024),
        "invalid Content-Length": request("POST", path, headers="Content-Length: lots\r\n"),
        "binary garbage": bytes(range(256)) * 4,
    }


CASES = list(malformed("x"))


@pytest.mark.parametrize("case", CASES)
def test_a_malformed_request_gets_a_4xx_and_changes_nothing(store: Store, ada: int, case: str) -> None:
    with serving(web_context(store)) as server:
        answer = raw_exchange(server.url, malformed(sign(KEY, ada, "ada@example.com"))[case])
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, answer[:200]
        with httpx.Client(base_url=server.url) as client:  # and the server still answers
            assert client.get("/healthz").status_code == 200
    assert state(store) == ([], True)


def wait_for(path: Path, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := re.search(pattern, path.read_text()):
            return found
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not logged within {timeout}s:\n{path.read_text()}")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_lifecycle_serve_logs_each_malformed_request_on_one_line_and_stops_on_sigterm(store: Store, ada: int,
                                                                                      tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env["LIFECYCLE_SECRET_KEY"] = KEY.decode()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen([sys.executable, "-m", "runner.cli", "serve", "--port", "0"], cwd=tmp_path,
                                 env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = wait_for(log, r"web service listening on (http://127\.0\.0\.1:\d+/)").group(1)
        requests = malformed(sign(KEY, ada, "ada@example.com"))
        for payload in requests.values():
            raw_exchange(url, payload)
        time.sleep(0.3)  # the access log line is written as the answer completes
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=20) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
    lines = log.read_text().splitlines()
    assert "Traceback" not in log.read_text()
    request_lines = [line for line in lines if "Invalid HTTP request" in line or re.search(r'" 4\d\d \d+B', line)]
    assert len(request_lines) == len(requests), "\n".join(lines)
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (INFO|WARNING) ", line) for line in lines[1:])
    assert "web service stopped" in lines[-1]
    assert state(store) == ([], True)


def test_an_address_in_use_is_a_one_line_error_with_a_fix(store: Store) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = WebServer(create_app(web_context(store)), "127.0.0.1", port)
        with pytest.raises(WebError) as caught:
            server.start()
    assert str(caught.value) == f"the web service cannot listen on 127.0.0.1:{port}: Address already in use"
    assert "LIFECYCLE_HTTP_PORT" in (caught.value.hint or "")


def test_host_and_port_come_from_settings_unless_given() -> None:
    settings = Settings({"LIFECYCLE_HTTP_HOST": "0.0.0.0", "LIFECYCLE_HTTP_PORT": "9000"})
    assert (WebServer.from_settings(None, settings).host, WebServer.from_settings(None, settings).port) == (  # type: ignore[arg-type]
        "0.0.0.0", 9000)
    given = WebServer.from_settings(None, settings, "127.0.0.1", 0)  # type: ignore[arg-type]
    assert (given.host, given.port) == ("127.0.0.1", 0)
