"""The policy schema, as `_policy.yaml` and a campaign's `policy:` key write it, and the resolved `Policy`."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from ..durations import Duration

_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")


def _off(value: Any) -> Any:
    """`off` or `false` turns a rule off (also in a campaign whose shop policy has it on)."""
    return None if value is False or (isinstance(value, str) and value.strip().lower() == "off") else value


def _may_be_off(schema: dict[str, Any]) -> None:
    """In the JSON Schema for editors: a rule may also be written `off` (or `false`)."""
    schema.setdefault("anyOf", []).extend([{"const": "off"}, {"const": False}])


def _switchable(description: str) -> Any:
    return Field(default=None, description=f"{description}; `off` turns it off", json_schema_extra=_may_be_off)


def _time_of_day(value: Any) -> Any:
    if isinstance(value, dt.time):
        return value
    match = _TIME.match(str(value).strip()) if isinstance(value, str | int) and not isinstance(value, bool) else None
    if match and int(match[1]) < 24 and int(match[2] or 0) < 60:
        return dt.time(int(match[1]), int(match[2] or 0))
    raise ValueError(f"{value!r} is not a time of day; write it as HH:MM in 24-hour time, e.g. '08:00'")


TimeOfDay = Annotated[dt.time, BeforeValidator(_time_of_day),
                     WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}(:\d{2})?$",
                                     "description": "a time of day, HH:MM in 24-hour time", "examples": ["08:00"]})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive(span: dt.timedelta) -> dt.timedelta:
    if span <= dt.timedelta(0):
        raise ValueError("give a duration longer than zero, e.g. 7d")
    return span


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


class FrequencyCap(_Strict):
    """At most `max` marketing emails per customer in any `per` (a rolling window)."""

    max: int = Field(ge=1)
    per: PositiveDuration


class SendWindow(_Strict):
    """Local hours at which marketing mail may go out: start <= time < end (may wrap past midnight)."""

    start: TimeOfDay
    end: TimeOfDay

    @model_validator(mode="after")
    def _not_empty(self) -> SendWindow:
        if self.start == self.end:
            raise ValueError("start and end are the same time: the window would be empty (write `off` for none)")
        return self

    def contains(self, local: dt.time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Sunset(_Strict):
    """Stop marketing mail to customers without an order or a click for `after`."""

    after: PositiveDuration
    opens: bool = Field(default=False, description=(
        "count opens as engagement too; off by default, because Apple Mail Privacy Protection opens "
        "every message it delivers, whether or not anyone reads it"))


class PolicySpec(_Strict):
    """Sending policies for marketing mail (docs/deliverability.md#policies): the keys of `_policy.yaml`
    and of a campaign's `policy:`; in a campaign, a key given replaces the shop's."""

    priority: int = Field(default=0, description="when campaigns compete for one customer in one evaluation, "
                                                 "the highest goes first")
    on_conflict: Literal["defer", "skip"] = Field(
        default="defer", description="when other mail is in the way (cap, smart sending, priority): wait for the "
                                     "next allowed moment within expire_after, or skip")
    frequency_cap: Annotated[FrequencyCap | None, BeforeValidator(_off)] = _switchable(
        "at most `max` marketing emails per customer in any `per`")
    smart_sending: Annotated[Duration | None, BeforeValidator(_off)] = _switchable(
        "no marketing email within this long of another one, e.g. 16h")
    send_window: Annotated[SendWindow | None, BeforeValidator(_off)] = _switchable(
        "local hours (the customer's time zone) at which marketing mail may go out")
    sunset: Annotated[Sunset | None, BeforeValidator(_off)] = _switchable(
        "no marketing mail to customers without an order or a click for `after`")


@dataclass(frozen=True)
class Policy:
    """The rules one campaign applies: the shop's policy with the campaign's own keys over it.

    `uncounted` names the campaigns whose mail no cap or smart-sending gap counts (the
    transactional ones); mail of any other campaign id in the ledger counts as marketing.
    """

    priority: int = 0
    on_conflict: Literal["defer", "skip"] = "defer"
    frequency_cap: FrequencyCap | None = None
    smart_sending: dt.timedelta | None = None
    send_window: SendWindow | None = None
    sunset: Sunset | None = None
    uncounted: frozenset[str] = frozenset()

    @classmethod
    def resolve(cls, shop: PolicySpec, campaign: PolicySpec | None, uncounted: frozenset[str]) -> Policy:
        merged = shop.model_copy(update={key: getattr(campaign, key) for key in campaign.model_fields_set}
                                 if campaign else {})
        return cls(priority=merged.priority, on_conflict=merged.on_conflict, frequency_cap=merged.frequency_cap,
                   smart_sending=merged.smart_sending or None, send_window=merged.send_window,
                   sunset=merged.sunset, uncounted=uncounted)

    @property
    def spacing(self) -> dt.timedelta | None:
        """How far from an evaluation's instant other marketing mail matters (cap and smart sending)."""
        spans = [span for span in (self.frequency_cap and self.frequency_cap.per, self.smart_sending) if span]
        return max(spans) if spans else None

    @property
    def restricts(self) -> bool:
        """Whether any rule can hold back or skip this campaign's mail."""
        return bool(self.spacing or self.send_window or self.sunset)
