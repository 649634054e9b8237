"""Each provider's side of a webhook, with real keys made for the test: an ECDSA P-256 key pair for
SendGrid, an HMAC signing key for Mailgun, a whsec_ secret for Resend, basic auth for Postmark.

A `Case` builds the request the provider would post for one event, signed (or authenticated) at
an instant, and knows how to sign with a key the runner was not given.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

Request = tuple[dict[str, str], bytes]


def unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())


@dataclass
class Event:
    """What the provider reports, in neutral words the cases turn into each provider's JSON."""

    kind: str  # delivered, opened, clicked, bounced, soft_bounced, complained, unsubscribed, other
    email: str
    event_id: str
    send_id: int | None = None
    message_id: str | None = None
    at: dt.datetime = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


class SendGridSigner:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, at: dt.datetime) -> dict[str, str]:
        timestamp = str(unix(at))
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp, "Content-Type": "application/json"}


class MailgunSigner:
    def __init__(self) -> None:
        self.key = secrets.token_hex(16)

    def signature(self, at: dt.datetime, token: str | None = None) -> dict[str, str]:
        timestamp, token = str(unix(at)), token or secrets.token_hex(25)
        digest = hmac.new(self.key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
        return {"timestamp": timestamp, "token": token, "signature": digest}


class ResendSigner:
    def __init__(self) -> None:
        self.raw = secrets.token_bytes(24)
        self.secret = "whsec_" + base64.b64encode(self.raw).decode()

    def headers(self, message_id: str, body: bytes, at: dt.datetime) -> dict[str, str]:
        timestamp = str(unix(at))
        digest = hmac.new(self.raw, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        return {"svix-id": message_id, "svix-timestamp": timestamp,
                "svix-signature": "v1," + base64.b64encode(digest).decode(), "Content-Type": "application/json"}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---------------------------------------------------------------- each provider's JSON for an Event

def sendgrid_json(event: Event) -> dict[str, Any]:
    names = {"delivered": ("delivered", {}), "opened": ("open", {"sg_machine_open": False}),
             "clicked": ("click", {"url": "https://shop.example.com/p"}),
             "bounced": ("bounce", {"type": "bounce", "reason": "550 5.1.1 unknown user"}),
             "soft_bounced": ("bounce", {"type": "blocked", "reason": "421 try later"}),
             "complained": ("spamreport", {}), "unsubscribed": ("unsubscribe", {}), "other": ("processed", {})}
    name, extra = names[event.kind]
    item: dict[str, Any] = {"email": event.email, "timestamp": unix(event.at), "event": name,
                            "sg_event_id": event.event_id, "category": ["winback"], **extra}
    if event.message_id:
        item["sg_message_id"] = f"{event.message_id}.filterdrecv-p3mdw1-1.0"
    if event.send_id is not None:
        item |= {"campaign_id": "winback", "send_id": str(event.send_id)}
    return item


def mailgun_json(event: Event) -> dict[str, Any]:
    names = {"delivered": ("delivered", {}), "opened": ("opened", {}),
             "clicked": ("clicked", {"url": "https://shop.example.com/p"}),
             "bounced": ("failed", {"severity": "permanent", "reason": "bounce",
                                    "delivery-status": {"code": 550, "description": "mailbox does not exist"}}),
             "soft_bounced": ("failed", {"severity": "temporary", "reason": "generic"}),
             "complained": ("complained", {}), "unsubscribed": ("unsubscribed", {}), "other": ("accepted", {})}
    name, extra = names[event.kind]
    data: dict[str, Any] = {"event": name, "id": event.event_id, "timestamp": event.at.timestamp(),
                            "recipient": event.email, "tags": ["winback"], "log-level": "info", **extra,
                            "user-variables": {} if event.send_id is None else
                            {"campaign_id": "winback", "send_id": str(event.send_id)}}
    if event.message_id:
        data["message"] = {"headers": {"message-id": event.message_id.strip("<>"), "to": event.email}}
    return data


def resend_json(event: Event) -> dict[str, Any]:
    names = {"delivered": ("email.delivered", {}), "opened": ("email.opened", {}),
             "clicked": ("email.clicked", {"click": {"link": "https://shop.example.com/p", "ipAddress": "192.0.2.1",
                                                     "timestamp": event.at.isoformat(), "userAgent": "test"}}),
             "bounced": ("email.bounced", {"bounce": {"type": "Permanent", "subType": "General",
                                                      "message": "mailbox does not exist", "diagnosticCode": []}}),
             "soft_bounced": ("email.bounced", {"bounce": {"type": "Transient", "subType": "MailboxFull",
                                                           "message": "mailbox full", "diagnosticCode": []}}),
             "complained": ("email.complained", {}), "other": ("email.sent", {})}
    name, extra = names[event.kind]
    data: dict[str, Any] = {"email_id": event.message_id or "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
                            "created_at": event.at.isoformat(), "from": "Shop <hello@shop.example.com>",
                            "to": [event.email], "subject": "We miss you", **extra}
    if event.send_id is not None:
        data["tags"] = {"campaign_id": "winback", "send_id": str(event.send_id)}
    return {"type": name, "created_at": event.at.isoformat().replace("+00:00", "Z"), "data": data}


def postmark_json(event: Event) -> dict[str, Any]:
    metadata = {} if event.send_id is None else {"campaign_id": "winback", "send_id": str(event.send_id)}
    common = {"MessageID": event.message_id or "883953f4-6105-42a2-a16a-77a8eac79483", "Metadata": metadata,
              "Tag": "winback", "MessageStream": "broadcast", "ServerID": 23}
    stamp = event.at.isoformat()
    if event.kind in {"bounced", "soft_bounced", "complained"}:
        kind = {"bounced": ("Bounce", "HardBounce", 1), "soft_bounced": ("Bounce", "SoftBounce", 4096),
                "complained": ("SpamComplaint", "SpamComplaint", 512)}[event.kind]
        return {"RecordType": kind[0], "ID": int(event.event_id), "Type": kind[1], "TypeCode": kind[2],
                "Email": event.email, "BouncedAt": stamp, "Description": "The server was unable to deliver",
                "Details": "smtp;550 5.1.1", "Inactive": event.kind != "soft_bounced", **common}
    if event.kind == "unsubscribed":
        return {"RecordType": "SubscriptionChange", "Recipient": event.email, "ChangedAt": stamp,
                "Origin": "Recipient", "SuppressSending": True, "SuppressionReason": "ManualSuppression",
                **common}
    record = {"delivered": {"RecordType": "Delivery", "DeliveredAt": stamp, "Details": "250 OK"},
              "opened": {"RecordType": "Open", "ReceivedAt": stamp, "FirstOpen": True},
              "clicked": {"RecordType": "Click", "ReceivedAt": stamp, "OriginalLink": "https://shop.example.com/p"},
              "other": {"RecordType": "Inbound", "ReceivedAt": stamp}}[event.kind]
    # the event id keeps otherwise equal test records apart, as real ones differ in their details
    return {**record, "Recipient": event.email, "UserAgent": event.event_id, **common}


# ---------------------------------------------------------------- cases

@dataclass
class Case:
    name: str
    settings: dict[str, str]
    # request(events, at) with the configured key; foreign(events, at) signed with another key
    request: Callable[[list[Event], dt.datetime], Request]
    foreign: Callable[[list[Event], dt.datetime], Request]
    # headers authenticating any body with the configured key (None for Mailgun: its signature is in the body)
    sign: Callable[[bytes, dt.datetime], dict[str, str]] | None = None
    batches: bool = False  # posts several events per request
    kinds: set[str] = field(default_factory=lambda: {"delivered", "opened", "clicked", "bounced", "soft_bounced",
                                                     "complained", "unsubscribed", "other"})


def sendgrid_case() -> Case:
    signer, stranger = SendGridSigner(), SendGridSigner()

    def build(who: SendGridSigner) -> Callable[[list[Event], dt.datetime], Request]:
        def request(events: list[Event], at: dt.datetime) -> Request:
            body = json.dumps([sendgrid_json(e) for e in events]).encode()
            return who.headers(body, at), body
        return request

    return Case("sendgrid", {"LIFECYCLE_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key}, build(signer),
                build(stranger), sign=signer.headers, batches=True)


def mailgun_case() -> Case:
    signer, stranger = MailgunSigner(), MailgunSigner()

    def build(who: MailgunSigner) -> Callable[[list[Event], dt.datetime], Request]:
        def request(events: list[Event], at: dt.datetime) -> Request:
            (event,) = events
            body = json.dumps({"signature": who.signature(at), "event-data": mailgun_json(event)}).encode()
            return {"Content-Type": "application/json"}, body
        return request

    return Case("mailgun", {"LIFECYCLE_MAILGUN_WEBHOOK_SIGNING_KEY": signer.key}, build(signer), build(stranger))


def resend_case() -> Case:
    signer, stranger = ResendSigner(), ResendSigner()

    def build(who: ResendSigner) -> Callable[[list[Event], dt.datetime], Request]:
        def request(events: list[Event], at: dt.datetime) -> Request:
            (event,) = events
            body = json.dumps(resend_json(event)).encode()
            return who.headers(event.event_id, body, at), body
        return request

    return Case("resend", {"LIFECYCLE_RESEND_WEBHOOK_SECRET": signer.secret}, build(signer), build(stranger),
                sign=lambda body, at: signer.headers("msg_2pXbMd9kTqK8", body, at),
                kinds={"delivered", "opened", "clicked", "bounced", "soft_bounced", "complained", "other"})


def postmark_case() -> Case:
    user, password = "postmark", secrets.token_urlsafe(24)

    def build(credentials: str) -> Callable[[list[Event], dt.datetime], Request]:
        def request(events: list[Event], at: dt.datetime) -> Request:
            (event,) = events
            return ({"Authorization": credentials, "Content-Type": "application/json"},
                    json.dumps(postmark_json(event)).encode())
        return request

    return Case("postmark", {"LIFECYCLE_POSTMARK_WEBHOOK_USERNAME": user,
                             "LIFECYCLE_POSTMARK_WEBHOOK_PASSWORD": password},
                build(basic(user, password)), build(basic(user, secrets.token_urlsafe(24))),
                sign=lambda body, at: {"Authorization": basic(user, password), "Content-Type": "application/json"})


CASES = {"sendgrid": sendgrid_case, "mailgun": mailgun_case, "resend": resend_case, "postmark": postmark_case}
