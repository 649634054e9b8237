"""What a journey's steps and exits may not say, beyond what their models check key by key."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..campaigns import CampaignSpec


def journey_problems(spec: CampaignSpec) -> list[tuple[tuple[Any, ...], str, str]]:
    """(where in the file, message, hint) for each rule a campaign's `steps` and `exit` break."""
    problems = []
    if spec.exit and not spec.steps:
        problems.append((("exit",), "exit: only a journey (a campaign with `steps:`) has later steps to stop",
                         "add `steps:` or remove `exit:`"))
    if spec.steps and spec.variants:
        problems.append((("variants",), "variants: a journey cannot also be an A/B test",
                         "give each step its own subject or template, or test variants in a campaign of one email"))
    if spec.steps and spec.steps[0].after != dt.timedelta(0):
        problems.append((("steps", 0, "after"), "steps.0.after: the first step goes out when the trigger fires",
                         "remove its `after:` and set the wait in the trigger (its `after:` or `delay:`)"))
    return problems
