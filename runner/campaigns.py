"""Campaign files: the YAML schema, strict validation with file:line messages, and loading a folder."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from ruamel.yaml.comments import CommentedMap

from .coupons.spec import CouponSpec
from .durations import Duration
from .errors import Problem
from .journeys.rules import journey_problems
from .plugins import TRIGGERS, available
from .policies.spec import Policy, PolicySpec
from .segments import SEGMENT_NAMES
from .triggers.base import Trigger
from .variants import choose
from .yamlfiles.problems import did_you_mean, line_of, plain, validation_problems
from .yamlfiles.reading import read_yaml


def _check_cron(value: str) -> str:
    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a cron expression ({exc})") from None
    return value


Cron = Annotated[str, AfterValidator(_check_cron)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
TemplateName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MessageSpec(Strict):
    """What to send: a template name plus Jinja strings for subject and preheader."""

    template: TemplateName
    subject: str = Field(min_length=1)
    from_: str | None = Field(default=None, alias="from")
    reply_to: str | None = None
    preheader: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    coupon: CouponSpec | None = Field(default=None, description=(
        "a unique code per send, in the template as `coupon.code` (docs/coupons.md)"))


#: The message keys a variant replaces; its `params` are merged over the message's instead.
REPLACED_BY_VARIANTS = ("subject", "preheader", "template")


class VariantSpec(Strict):
    """One version of the message in an A/B test: its share of customers and what it changes."""

    name: Slug = Field(description="recorded in the ledger with each send and shown by preview and report")
    weight: float = Field(default=1, gt=0, allow_inf_nan=False,
                          description="share of customers, relative to the other variants' weights")
    subject: str | None = Field(default=None, min_length=1)
    preheader: str | None = None
    template: TemplateName | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="merged over message.params")


COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in")
OPERATORS = (*COMPARISONS, "older_than", "within", "is_set", "includes", "excludes")


class Condition(Strict):
    """One audience filter: a field and exactly one operator, e.g. `{field: total_spent, gte: 100}`."""

    field: Literal["order_count", "total_spent", "last_order_at", "first_order_at", "created_at",
                   "tags", "accepts_marketing", "email", "time_zone", "birthday", "first_name", "last_name",
                   "nps_score", "segment"]
    eq: Any = None
    ne: Any = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    older_than: Duration | None = None
    within: Duration | None = None
    is_set: bool | None = None
    includes: str | list[str] | None = None
    excludes: str | list[str] | None = None

    @property
    def operator(self) -> tuple[str, Any]:
        for op in OPERATORS:
            value = getattr(self, "in_" if op == "in" else op)
            if value is not None:
                return op, value
        raise AssertionError("validated conditions have one operator")

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        ops = [op for op in OPERATORS if getattr(self, "in_" if op == "in" else op) is not None]
        if len(ops) != 1:
            raise ValueError(f"give exactly one operator, one of: {', '.join(OPERATORS)}")
        op = ops[0]
        dates = {"last_order_at", "first_order_at", "created_at", "birthday"}
        if op in {"older_than", "within"} and self.field not in dates:
            raise ValueError(f"{op} applies to dates ({', '.join(sorted(dates))}), not {self.field}")
        if op in {"includes", "excludes"} and self.field != "tags":
            raise ValueError(f"{op} applies to tags only")
        if self.field == "tags" and op not in {"includes", "excludes"}:
            raise ValueError("tags take includes or excludes")
        if op in {"gt", "gte", "lt", "lte"} and self.field not in {"order_count", "total_spent", "nps_score"}:
            raise ValueError(f"{op} applies to order_count, total_spent and nps_score")
        if self.field == "nps_score" and op != "is_set":
            values = self.operator[1] if op in {"in", "not_in"} else [self.operator[1]]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and v in range(11) for v in values):
                raise ValueError("nps_score is a whole number from 0 to 10: e.g. {field: nps_score, lte: 6} "
                                 "for detractors, gte: 9 for promoters")
        if self.field == "segment" and op not in {"eq", "ne", "in", "not_in"}:
            raise ValueError(f"segment takes eq, ne, in or not_in, not {op}")
        return self

    @property
    def segments(self) -> list[Any]:
        """The segment names a `segment` condition gives (one for eq and ne, a list for in and not_in)."""
        _, value = self.operator
        return list(value) if isinstance(value, list) else [value]


class StepSpec(Strict):
    """One email of a journey: when it falls due, what it changes in the message, whom it reaches."""

    after: Duration = Field(default="0s", validate_default=True,  # type: ignore[assignment]
                            description="how long after `from` this step falls due; 0s for the first step")
    from_: Literal["previous", "trigger"] = Field(default="previous", alias="from", description=(
        "previous: the previous step's email was sent (or skipped); trigger: the journey began"))
    subject: str | None = Field(default=None, min_length=1)
    preheader: str | None = None
    template: TemplateName | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="merged over message.params")
    audience: list[Condition] = Field(default_factory=list, description="added to the campaign's audience")


#: why a journey stops: an order placed since it began, or a click on the previous step's email
ExitCondition = Literal["ordered", "clicked"]


class TriggerSpec(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    type: str


class CampaignSpec(Strict):
    id: Slug
    name: str = Field(min_length=1)
    enabled: bool = True
    kind: Literal["marketing", "transactional"] = "marketing"
    trigger: TriggerSpec
    audience: list[Condition] = Field(default_factory=list)
    message: MessageSpec
    variants: list[VariantSpec] = Field(default_factory=list, description=(
        "A/B test: each customer gets one variant of the message, chosen by weight, the same one every time"))
    steps: list[StepSpec] = Field(default_factory=list, description=(
        "a journey: emails in order, each its own occurrence, the first when the trigger fires"))
    exit: list[ExitCondition] = Field(default_factory=list, description="what stops a journey's later steps")
    expire_after: Duration = Field(default="1d", validate_default=True)  # type: ignore[assignment]
    schedule: Cron = "*/15 * * * *"
    description: str = ""
    policy: PolicySpec | None = None  # overrides of the shop's `_policy.yaml` (runner/policies/)


@dataclass(frozen=True)
class Campaign:
    """A validated campaign with its trigger instantiated and the file it came from."""

    spec: CampaignSpec
    trigger: Trigger
    path: Path
    #: line of each `message` key in the file (subject, preheader, from, reply_to, template, coupon)
    message_lines: Mapping[str, int | None] = field(default_factory=dict)
    #: the sending rules in force: the shop's policy with this campaign's `policy:` over it
    policy: Policy = field(default_factory=Policy)
    #: per variant, in the file's order: the line of each key it sets (subject, preheader, template)
    variant_lines: tuple[Mapping[str, int | None], ...] = ()
    #: per journey step, in order: the line of each key it sets (subject, preheader, template)
    step_lines: tuple[Mapping[str, int | None], ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def marketing(self) -> bool:
        return self.spec.kind == "marketing"

    @property
    def coupon(self) -> CouponSpec | None:
        """The unique code each send carries, if any (variants share the message's)."""
        return self.spec.message.coupon

    @property
    def step_numbers(self) -> list[int]:
        """A journey's steps, numbered from 1; empty for a campaign of one email."""
        return list(range(1, len(self.spec.steps) + 1))

    @property
    def variant_names(self) -> list[str]:
        """The variants in the file's order; the first is the control that reports compare against."""
        return [variant.name for variant in self.spec.variants]

    def variant_for(self, customer_id: int) -> str | None:
        """The variant a customer gets (None for a campaign without variants); stable across processes."""
        return choose(self._weights, self.id, customer_id) if self._weights else None

    def variant_to_send(self, recorded: str | None, customer_id: int) -> str | None:
        """The variant a planned send renders: the one recorded when it was planned, unless the campaign
        has lost that variant (or gained or dropped variants) since; then the customer's variant now."""
        names = self.variant_names
        still_valid = recorded in names if names else recorded is None
        return recorded if still_valid else self.variant_for(customer_id)

    @cached_property
    def _weights(self) -> list[tuple[str, float]]:
        return [(variant.name, variant.weight) for variant in self.spec.variants]

    @cached_property
    def _messages(self) -> dict[tuple[str | None, int | None], MessageSpec]:
        base = self.spec.message
        messages = {(None, None): base}
        changed = [((v.name, None), v) for v in self.spec.variants]
        changed += [((None, number), step) for number, step in zip(self.step_numbers, self.spec.steps, strict=True)]
        for key, change in changed:
            changes = {name: value for name in REPLACED_BY_VARIANTS if (value := getattr(change, name)) is not None}
            messages[key] = base.model_copy(update={**changes, "params": {**base.params, **change.params}})
        return messages

    def step_to_send(self, recorded: int | None) -> int | None:
        """The journey step a send renders: the one recorded (the first when None), or the last when the
        journey has fewer steps now; None for a campaign of one email."""
        count = len(self.spec.steps)
        return min(recorded or 1, count) if count else None

    def message_for(self, variant: str | None, step: int | None = None) -> MessageSpec:
        """The message a send of `variant` or of a journey's `step` renders (`step_to_send`): the
        campaign's message with that variant's or step's changes."""
        return self._messages[variant, self.step_to_send(step)]

    def message_keys(self, variant: str | None, step: int | None = None) -> dict[str, tuple[str, int | None]]:
        """Where each of the message's keys comes from for `variant` or `step`: its name in problems and its line."""
        keys = {key: (f"message.{key}", line) for key, line in self.message_lines.items()}
        if variant is not None:
            index = self.variant_names.index(variant)
            for key, line in self.variant_lines[index].items():
                keys[key] = (f"variants.{index}.{key}", line)
        if step is not None:
            for key, line in self.step_lines[step - 1].items():
                keys[key] = (f"steps.{step - 1}.{key}", line)
        return keys


# ---------------------------------------------------------------- loading

def parse_campaign(path: Path) -> tuple[Campaign | None, list[Problem]]:
    """Validate one campaign file; returns the campaign or the problems found in it."""
    doc, problems = read_yaml(path)
    if problems:
        return None, problems
    if not isinstance(doc, CommentedMap):
        return None, [Problem(str(path), 1, "a campaign file must be a mapping of keys (id:, name:, trigger:, ...)",
                              "see docs/campaigns.md for a complete example")]
    values = plain(doc)
    problems = []
    try:
        spec = CampaignSpec.model_validate(values)
    except ValidationError as exc:
        spec = None
        problems.extend(validation_problems(path, doc, exc, CampaignSpec))
    trigger, trigger_problems = _trigger(path, doc, values.get("trigger"))
    problems.extend(trigger_problems)
    if spec is None or trigger is None or problems:
        return None, sorted(problems, key=lambda p: p.line or 0)
    problems = _repeated_variant_names(path, doc, spec) + _unknown_segments(path, doc, spec) + [
        Problem(str(path), line_of(doc, where), message, hint) for where, message, hint in journey_problems(spec)]
    if problems:
        return None, problems
    lines = {key: line_of(doc, ("message", key))
             for key in ("subject", "preheader", "from", "reply_to", "template", "coupon")}
    variant_lines, step_lines = (tuple(
        {key: line_of(doc, (part, index, key)) for key in REPLACED_BY_VARIANTS if getattr(item, key) is not None}
        for index, item in enumerate(getattr(spec, part))) for part in ("variants", "steps"))
    return Campaign(spec, trigger, path, lines, variant_lines=variant_lines, step_lines=step_lines), []


def _repeated_variant_names(path: Path, doc: CommentedMap, spec: CampaignSpec) -> list[Problem]:
    """A variant name used twice: the ledger and the report could not tell the two apart."""
    problems, seen = [], set()
    for index, variant in enumerate(spec.variants):
        if variant.name in seen:
            problems.append(Problem(str(path), line_of(doc, ("variants", index, "name")),
                                    f"variants.{index}.name: {variant.name!r} names another variant too",
                                    "give every variant its own name: it is recorded with each send"))
        seen.add(variant.name)
    return problems


def _unknown_segments(path: Path, doc: CommentedMap, spec: CampaignSpec) -> list[Problem]:
    """A `segment` condition naming no segment (runner/segments/) would keep nobody in the audience."""
    problems = []
    for index, condition in enumerate(spec.audience):
        if condition.field != "segment":
            continue
        op = condition.operator[0]
        for name in condition.segments:
            if name not in SEGMENT_NAMES:
                problems.append(Problem(str(path), line_of(doc, ("audience", index, op)),
                                        f"audience.{index}.{op}: unknown segment {name!r}",
                                        did_you_mean(name, list(SEGMENT_NAMES), "segments")))
    return problems


def _trigger(path: Path, doc: CommentedMap, raw: Any) -> tuple[Trigger | None, list[Problem]]:
    """The trigger of a campaign file, validated against its type's parameters."""
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        return None, []  # reported by the campaign schema
    params = {k: v for k, v in raw.items() if k != "type"}
    triggers = available(TRIGGERS)
    if raw["type"] not in triggers:
        return None, [Problem(str(path), line_of(doc, ("trigger", "type")), f"unknown trigger type {raw['type']!r}",
                              did_you_mean(raw["type"], sorted(triggers), "trigger types"))]
    trigger_cls: type[Trigger] = triggers[raw["type"]].load()
    try:
        return trigger_cls(trigger_cls.Params.model_validate(params)), []
    except ValidationError as exc:
        return None, validation_problems(path, doc, exc, trigger_cls.Params, prefix=("trigger",))


def campaign_files(folder: Path) -> Iterator[Path]:
    """The campaign files of a folder; files whose name starts with `_` (the policy file) are not campaigns."""
    yield from sorted(p for p in folder.glob("*.y*ml") if p.suffix in {".yaml", ".yml"} and not p.name.startswith("_"))


def load_campaigns(folder: Path) -> tuple[list[Campaign], list[Problem]]:
    """Every campaign in a folder, and every problem found (including duplicate ids)."""
    if not folder.is_dir():
        return [], [Problem(str(folder), None, "campaigns folder not found",
                            "set LIFECYCLE_CAMPAIGNS_DIR or run from the folder that holds campaigns/")]
    campaigns: list[Campaign] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for path in campaign_files(folder):
        campaign, found = parse_campaign(path)
        problems.extend(found)
        if campaign is None:
            continue
        if campaign.id in seen:
            problems.append(Problem(str(path), None, f"campaign id {campaign.id!r} is also used by {seen[campaign.id]}",
                                    "give every campaign its own id: it keys the send ledger"))
            continue
        seen[campaign.id] = path
        campaigns.append(campaign)
    return campaigns, problems
