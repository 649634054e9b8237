"""JSON Schemas of the campaign file format, generated from the models that validate it, for editors.

Editors with a YAML language server (VS Code's YAML extension, JetBrains IDEs, Neovim's yamlls) read
the `# yaml-language-server: $schema=...` line at the top of a campaign file and then complete keys,
show each key's help and flag mistakes while the marketer types. `lifecycle validate` stays the
authority: it also checks templates, cron expressions and everything a schema cannot say.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from .campaigns import CampaignSpec
from .durations import format_duration
from .plugins import TRIGGERS, available
from .policies.spec import PolicySpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
CAMPAIGN_SCHEMA = "campaign.schema.json"
POLICY_SCHEMA = "policy.schema.json"  # of the shop's _policy.yaml


class _Generator(GenerateJsonSchema):
    """Defaults written the way campaign files write them (durations as `1d`, not ISO 8601)."""

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, dt.timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def _trigger_schemas() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One schema per installed trigger type (its parameters plus `type: <name>`), and their $defs."""
    variants, defs = [], {}
    for name, entry in sorted(available(TRIGGERS).items()):
        params = entry.load().Params.model_json_schema(schema_generator=_Generator,
                                                       ref_template="#/$defs/{model}")
        defs.update(params.pop("$defs", {}))
        params["properties"] = {"type": {"const": name, "description": f"the `{name}` trigger"},
                                **params.get("properties", {})}
        params["required"] = ["type", *params.get("required", [])]
        params["title"] = f"{name} trigger"
        variants.append(params)
    return variants, defs


def campaign_schema() -> dict[str, Any]:
    """The JSON Schema of one campaign file, with one branch per installed trigger type."""
    schema = CampaignSpec.model_json_schema(schema_generator=_Generator, by_alias=True)
    variants, defs = _trigger_schemas()
    schema.setdefault("$defs", {}).update(defs)
    schema["$defs"].pop("TriggerSpec", None)
    schema["properties"]["trigger"] = {"description": "what makes an email due; `type` picks the trigger",
                                       "anyOf": variants}
    return {"$schema": SCHEMA_DIALECT, "$id": CAMPAIGN_SCHEMA, **schema, "title": "lifecycle-runner campaign"}


def policy_schema() -> dict[str, Any]:
    """The JSON Schema of the shop's policy file, `_policy.yaml`."""
    schema = PolicySpec.model_json_schema(schema_generator=_Generator)
    return {"$schema": SCHEMA_DIALECT, "$id": POLICY_SCHEMA, **schema, "title": "lifecycle-runner sending policies"}


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every file format the runner reads from the campaigns folder."""
    return {CAMPAIGN_SCHEMA: campaign_schema(), POLICY_SCHEMA: policy_schema()}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    """Write every schema into `folder` (created when missing); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = folder / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
