"""Generated codes: an HMAC of the send under the shop's coupon secret, spelled in an unambiguous alphabet.

The same send gets the same code in every process and on every attempt, so nothing needs storing;
`lifecycle coupons export` recomputes the codes of the ledger's sends for the shop to load.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import Problem
from .settings import COUPON_SECRET
from .spec import GenerateSpec

if TYPE_CHECKING:
    from ..campaigns import Campaign

#: 32 characters without the look-alikes 0/O and 1/I: five bits each
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def generated_code(secret: bytes, spec: GenerateSpec, campaign_id: str, occurrence_key: str) -> str:
    """The code of one send (campaign, occurrence key): the prefix and `length` characters of its HMAC."""
    digest = hmac.new(secret, f"coupon\0{campaign_id}\0{occurrence_key}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(spec.length):
        number, index = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[index])
    return spec.prefix + "".join(chars)


def missing_secret(generating: Iterable[Campaign]) -> list[Problem]:
    """A problem for each campaign that generates codes, for a shop that has set no secret to generate them with."""
    return [Problem(str(c.path), c.message_lines.get("coupon"),
                    f"message.coupon.generate: {COUPON_SECRET.name} is not set",
                    "set it in the environment to a long random text, e.g. the output of "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`; it keys every generated code")
            for c in generating]
