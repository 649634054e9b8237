"""Reading `_policy.yaml` beside the campaigns and giving each campaign its effective policy.

The file is read and located the way campaign files are (`runner/yamlfiles/reading.py`, `file:line (hint)`
problems); without it, no rule applies and campaigns are sent as they fall due.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap

from ..campaigns import Campaign
from ..errors import Problem
from ..yamlfiles.problems import line_of, plain, validation_problems
from ..yamlfiles.reading import read_yaml
from .spec import Policy, PolicySpec

POLICY_FILE = "_policy.yaml"


def load_shop_policy(folder: Path) -> tuple[PolicySpec, list[Problem]]:
    """The shop-wide policy in `folder/_policy.yaml` (no rules when there is no such file)."""
    path = folder / POLICY_FILE
    if not path.is_file():
        return PolicySpec(), []
    doc, problems = read_yaml(path)
    if problems or doc is None:  # an empty file declares no rules
        return PolicySpec(), problems
    if not isinstance(doc, CommentedMap):
        return PolicySpec(), [Problem(str(path), 1, "a policy file must be a mapping of keys (frequency_cap:, "
                                      "smart_sending:, send_window:, sunset:, ...)",
                                      "see docs/deliverability.md#policies for a complete example")]
    try:
        return PolicySpec.model_validate(plain(doc)), []
    except ValidationError as exc:
        return PolicySpec(), validation_problems(path, doc, exc, PolicySpec)


def with_policies(folder: Path, campaigns: list[Campaign]) -> tuple[list[Campaign], list[Problem]]:
    """Each campaign with its effective policy, and the problems in the policy file and `policy:` keys."""
    shop, problems = load_shop_policy(folder)
    transactional = frozenset(c.id for c in campaigns if not c.marketing)
    resolved = []
    for campaign in campaigns:
        if not campaign.marketing and campaign.spec.policy is not None:
            doc, _ = read_yaml(campaign.path)
            problems.append(Problem(
                str(campaign.path), line_of(doc, ("policy",)),
                "policy: transactional campaigns ignore caps, smart sending, priority, send windows and sunset",
                "remove the `policy:` key, or make the campaign `kind: marketing`"))
        resolved.append(replace(campaign, policy=Policy.resolve(shop, campaign.spec.policy, transactional)))
    return resolved, problems
