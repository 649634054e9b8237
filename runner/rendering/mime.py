"""The MIME message of a rendered email: headers encoded, bodies quoted-printable, written directly.

Written out by hand rather than through email.message because building and serialising with the
standard library's objects was most of a tick's cost (docs/performance.md); `build_mime` parses the
same bytes for what needs a Message object (smtplib).
"""

from __future__ import annotations

import datetime as dt
import email.policy
import re
import secrets
from binascii import b2a_base64, b2a_qp
from collections.abc import Mapping
from email import message_from_bytes
from email.message import Message
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from functools import lru_cache
from typing import Protocol


@lru_cache(maxsize=1024)
def _domain(address: str) -> str | None:
    _, addr = parseaddr(address)
    domain = addr.rpartition("@")[2] if "@" in addr else ""
    return domain.strip("[]") or None


class MessageParts(Protocol):
    """What a MIME message is built from: a RenderedEmail, or a provider's OutgoingMessage."""

    subject: str
    from_: str
    reply_to: str | None
    text: str
    html: str


# Messages are written out directly rather than through email.mime and the generator, which took
# most of a tick's time (header objects, folding, a regex compiled for every boundary): RFC 2047
# encoded-words (base64, one per folded line) for non-ASCII header values, ASCII ones as they are up to the
# 998-character line limit, quoted-printable bodies (binascii's encoder), CRLF line endings. The
# boundary starts with "=_", which quoted-printable never leaves in a body, so it needs no search.
SMTP_COMPAT32 = email.policy.compat32.clone(linesep="\r\n", max_line_length=998)


def _header(value: str) -> str:
    if "\r" in value or "\n" in value:  # a line break would let a value add headers of its own
        raise ValueError(f"a header value must be one line: {value!r}")
    return value if value.isascii() else _encoded_words(value)


# UTF-8 bytes per encoded-word: 56 base64 characters, a 68-character word, which fits a 78-character
# line after "Subject: " or an indent.
_WORD_BYTES = 42


def _encoded_words(value: str) -> str:
    """RFC 2047: `value` as base64 UTF-8 encoded-words, each on a line of its own, never splitting a
    character between two words (a reader joins adjacent words without the space between them)."""
    raw = value.encode("utf-8")
    words, start = [], 0
    while start < len(raw):
        end = start + _WORD_BYTES
        while end < len(raw) and raw[end] & 0xC0 == 0x80:  # a continuation byte: back to the character's start
            end -= 1
        words.append(f"=?utf-8?b?{b2a_base64(raw[start:end], newline=False).decode('ascii')}?=")
        start = end
    return "\r\n ".join(words)


# A bare address, which parseaddr and formataddr would give back unchanged.
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


@lru_cache(maxsize=1024)  # a campaign's From and Reply-To are the same for most of its emails
def _address(value: str) -> str:
    if _BARE_ADDRESS.fullmatch(value):
        return value
    name, addr = parseaddr(value)
    if not addr or not addr.isascii():
        return _header(value)
    return _header(formataddr((name, addr), charset="utf-8"))


# Quoted-printable encodes each line on its own (soft breaks and trailing spaces stay within the
# line), and most lines of a batch's HTML are the template's, the same in every email: encoding
# each distinct line once and joining them is four times faster than encoding every body whole.
# Cleared when full, so the lines that vary from email to email do not make it grow; long lines
# (rarely a template's) are not kept.
QP_LINES: dict[str, bytes] = {}
_QP_LINES_MAX, _QP_LINE_KEPT = 10_000, 500


def _quoted_printable(body: str) -> bytes:
    """The body as quoted-printable UTF-8 with CRLF line endings (hard and soft)."""
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    known = QP_LINES
    encoded = []
    for line in body.split("\n"):
        qp = known.get(line)
        if qp is None:
            # binascii takes its soft line break from the first line ending it meets: give it one
            qp = b2a_qp((line + "\r\n").encode("utf-8"), istext=True)[:-2]
            if len(line) <= _QP_LINE_KEPT:
                if len(known) >= _QP_LINES_MAX:
                    known.clear()
                known[line] = qp
        encoded.append(qp)
    return b"\r\n".join(encoded)


@lru_cache(maxsize=64)  # a batch's messages share their date
def _date_header(moment: dt.datetime) -> str:
    return format_datetime(moment)


def mime_bytes(rendered: MessageParts, *, to: str, headers: Mapping[str, str], date: dt.datetime,
               message_id_domain: str | None = None) -> bytes:
    """A multipart/alternative message (text/plain, then text/html) with every header set, as sent:
    7-bit, CRLF.

    `date` becomes the Date header (naive values are taken as UTC); the Message-ID is new, at
    `message_id_domain`, else the From address's domain. `headers` are added last and replace any
    header of the same name.
    """
    moment = date if date.tzinfo is not None else date.replace(tzinfo=dt.UTC)
    fields = {"subject": ("Subject", _header(rendered.subject)), "from": ("From", _address(rendered.from_)),
              "to": ("To", _address(to))}
    if rendered.reply_to:
        fields["reply-to"] = ("Reply-To", _address(rendered.reply_to))
    fields["date"] = ("Date", _date_header(moment))
    fields["message-id"] = ("Message-ID", make_msgid(domain=message_id_domain or _domain(rendered.from_)
                                                     or "localhost"))
    for name, value in headers.items():
        fields.pop(name.lower(), None)  # replaced, and moved last as the classic API did
        fields[name.lower()] = (name, _header(value))
    boundary = f"=_{secrets.token_hex(16)}"
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.values())
    return b"".join((
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\nMIME-Version: 1.0\r\n{head}\r\n'.encode(),
        *(b"--%s\r\nContent-Type: text/%s; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable"
          b"\r\n\r\n%s\r\n" % (boundary.encode(), subtype, _quoted_printable(body))
          for body, subtype in ((rendered.text, b"plain"), (rendered.html, b"html"))),
        b"--%s--\r\n" % boundary.encode(),
    ))


def build_mime(rendered: MessageParts, *, to: str, headers: Mapping[str, str], date: dt.datetime,
               message_id_domain: str | None = None) -> Message:
    """`mime_bytes` as a Message object, for what needs one (smtplib's send_message); `as_bytes()`
    gives the same bytes back."""
    return message_from_bytes(mime_bytes(rendered, to=to, headers=headers, date=date,
                                         message_id_domain=message_id_domain), policy=SMTP_COMPAT32)
