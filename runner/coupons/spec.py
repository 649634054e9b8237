"""The `coupon:` key of a campaign's message: a code from an imported pool, or one generated per send."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

POOL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
PoolName = Annotated[str, Field(pattern=POOL_NAME)]
#: what a generated code starts with: letters, digits, '-' and '_' (Shopify codes are case-insensitive)
Prefix = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]*$", max_length=20)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateSpec(_Strict):
    """A code computed from LIFECYCLE_COUPON_SECRET and the send: the same for a send every time."""

    prefix: Prefix = Field(default="", description="what every code starts with, e.g. WB-")
    length: int = Field(default=12, ge=8, le=24, description=(
        "characters after the prefix, from 32 unambiguous ones (no 0/O, no 1/I): 12 give 60 bits"))
    title: str | None = Field(default=None, min_length=1, max_length=255, description=(
        "the Shopify discount the codes belong to, written in the Title column of `lifecycle coupons export` "
        "(default: the campaign id)"))


class CouponSpec(_Strict):
    """A unique code per send, in the template as `coupon.code`: give exactly one of `pool` and `generate`."""

    pool: PoolName | None = Field(default=None, description=(
        "hand out codes imported with `lifecycle coupons import POOL FILE.csv`, each once"))
    generate: GenerateSpec | None = Field(default=None, description="compute a code per send from a secret")

    @model_validator(mode="after")
    def _one_source(self) -> CouponSpec:
        if (self.pool is None) == (self.generate is None):
            raise ValueError("give exactly one of `pool: NAME` and `generate: {prefix: ..., length: ...}`")
        return self
