"""Signed unsubscribe tokens and the one-click (RFC 8058) routes, against a real SQLite store."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterator

import pytest
from sqlmodel import select
from starlette.testclient import TestClient
from webkit import KEY, web_context

from runner.errors import LifecycleError
from runner.links.unsubscribe import InvalidToken, sign, unsubscribe_url, verify
from runner.models import Customer, Suppression
from runner.store import Store
from runner.web import create_app


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# ---------------------------------------------------------------- tokens

def test_sign_and_verify_round_trip() -> None:
    token = sign(KEY, 42, "Zoë+news@Example.com")
    assert verify(KEY, token) == (42, "Zoë+news@Example.com")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    payload, mac = token.split(".")
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) == "42:Zoë+news@Example.com".encode()
    assert mac == b64(hmac.new(KEY, "42:Zoë+news@Example.com".encode(), hashlib.sha256).digest())


def test_tokens_signed_one_after_another_with_two_keys_are_each_their_own_hmac() -> None:
    """The keyed HMAC is kept per key and copied for each token: no token carries another's state."""
    other = b"another shop's key"
    for key, customer in [(KEY, 1), (other, 2), (KEY, 3), (KEY, 1), (other, 2)]:
        payload = f"{customer}:c{customer}@example.com".encode()
        assert sign(key, customer, f"c{customer}@example.com") == (
            f"{b64(payload)}.{b64(hmac.new(key, payload, hashlib.sha256).digest())}")


def test_unsubscribe_url() -> None:
    token = sign(KEY, 1, "a@example.com")
    assert unsubscribe_url("https://mail.example.com/", KEY, 1, "a@example.com") == (
        f"https://mail.example.com/unsubscribe/{token}")


def tampered_tokens() -> list[str]:
    token = sign(KEY, 1, "a@example.com")
    payload, mac = token.split(".")
    return [
        f"{b64(b'2:a@example.com')}.{mac}",  # another customer, old signature
        f"{b64(b'1:b@example.com')}.{mac}",  # another address, old signature
        f"{payload}.{mac[:-2]}{'A' if mac[-2] != 'A' else 'B'}{mac[-1]}",  # signature changed
        f"{payload}.{mac}=",  # padding
        f"{payload}.{mac}.x",  # an extra part
        f"{payload}+.{mac}",  # not base64url
        f"{payload}",  # no signature
        "",
        ".",
        "a" * 5000,
        sign(b"another key", 1, "a@example.com"),  # signed with another key
    ]


@pytest.mark.parametrize("token", tampered_tokens())
def test_verify_refuses_tampered_and_malformed_tokens(token: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        verify(KEY, token)
    assert isinstance(caught.value, LifecycleError) and caught.value.hint


def test_verify_refuses_a_signed_but_malformed_payload() -> None:
    for payload in (b"x:a@example.com", b"1", b"1:", b"-1:a@example.com", b"\xff:a@example.com"):
        token = f"{b64(payload)}.{b64(hmac.new(KEY, payload, hashlib.sha256).digest())}"
        with pytest.raises(InvalidToken):
            verify(KEY, token)


# ---------------------------------------------------------------- the routes

@pytest.fixture
def customer_id(store: Store) -> int:
    with store.session() as session:
        row = Customer(email="ada@example.com", first_name="Ada", accepts_marketing=True,
                       created_at=dt.datetime(2026, 1, 1))
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(web_context(store)), base_url="http://mail.example.com") as client:
        yield client


def suppressions(store: Store) -> list[Suppression]:
    with store.session() as session:
        return list(session.exec(select(Suppression)).all())


def accepts_marketing(store: Store, customer_id: int) -> bool:
    with store.session() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return customer.accepts_marketing


ONE_CLICK = {"content": b"List-Unsubscribe=One-Click",
             "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


def test_get_shows_a_confirmation_and_changes_nothing(client: TestClient, store: Store, customer_id: int) -> None:
    response = client.get(f"/unsubscribe/{sign(KEY, customer_id, 'Ada@Example.com')}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Ada@Example.com" in response.text
    assert '<form method="post">' in response.text
    assert response.headers["cache-control"] == "no-store"
    assert suppressions(store) == []
    assert accepts_marketing(store, customer_id) is True


def test_post_unsubscribes_once(client: TestClient, store: Store, customer_id: int) -> None:
    path = f"/unsubscribe/{sign(KEY, customer_id, 'Ada@Example.com')}"
    first = client.post(path, **ONE_CLICK)  # type: ignore[arg-type]
    assert first.status_code == 200
    assert "<h1 style=\"margin:0 0 16px; font-size:22px;\">You&#x27;re unsubscribed</h1>" in first.text
    second = client.post(path, content=b"")
    assert second.status_code == 200
    rows = suppressions(store)
    assert [(r.email, r.reason, r.created_at, r.source) for r in rows] == [
        ("ada@example.com", "unsubscribed", dt.datetime(2026, 11, 24, 9, 30), "unsubscribe-link")]
    assert accepts_marketing(store, customer_id) is False
    again = client.get(path)
    assert again.status_code == 200 and "already unsubscribed" in again.text


def test_post_keeps_an_existing_suppression(client: TestClient, store: Store, customer_id: int) -> None:
    with store.session() as session:
        session.add(Suppression(email="ada@example.com", reason="bounced", created_at=dt.datetime(2026, 2, 1)))
        session.commit()
    response = client.post(f"/unsubscribe/{sign(KEY, customer_id, 'ada@example.com')}", **ONE_CLICK)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert [(r.email, r.reason) for r in suppressions(store)] == [("ada@example.com", "bounced")]
    assert accepts_marketing(store, customer_id) is False


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_token_is_refused_and_changes_nothing(client: TestClient, store: Store, customer_id: int,
                                                      method: str) -> None:
    token = sign(KEY, customer_id, "ada@example.com")
    payload, mac = token.split(".")
    other = f"{b64(f'{customer_id}:grace@example.com'.encode())}.{mac}"
    for bad in (other, f"{payload}.{mac[::-1]}", "garbage"):
        response = client.request(method, f"/unsubscribe/{bad}", content=b"List-Unsubscribe=One-Click")
        assert response.status_code == 400
        assert "not valid" in response.text
    assert suppressions(store) == []
    assert accepts_marketing(store, customer_id) is True


def test_token_signed_with_another_key_is_refused(client: TestClient, store: Store, customer_id: int) -> None:
    response = client.post(f"/unsubscribe/{sign(b'another key', customer_id, 'ada@example.com')}", **ONE_CLICK)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert suppressions(store) == []
    assert accepts_marketing(store, customer_id) is True


def test_echoed_address_is_escaped(client: TestClient, store: Store) -> None:
    response = client.get(f"/unsubscribe/{sign(KEY, 99, '<script>x</script>@example.com')}")
    assert response.status_code == 200
    assert "<script>" not in response.text and "&lt;script&gt;x&lt;/script&gt;@example.com" in response.text


def test_unsubscribing_an_unknown_customer_still_suppresses_the_address(client: TestClient,
                                                                        store: Store) -> None:
    response = client.post(f"/unsubscribe/{sign(KEY, 999, 'gone@example.com')}", **ONE_CLICK)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert [r.email for r in suppressions(store)] == ["gone@example.com"]


def test_not_found_and_methods(client: TestClient, customer_id: int) -> None:
    assert client.get("/").status_code == 404
    assert client.get("/unsubscribe/").status_code == 404
    assert client.get("/unsubscribe/a/b").status_code == 404
    put = client.put(f"/unsubscribe/{sign(KEY, customer_id, 'ada@example.com')}")
    assert put.status_code == 405 and "POST" in put.headers["allow"]
    head = client.head(f"/unsubscribe/{sign(KEY, customer_id, 'ada@example.com')}")
    assert head.status_code == 200 and head.content == b""
