"""`lifecycle schema`: the JSON Schema editors use accepts every shipped campaign and rejects broken ones."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml
from shopkit import ROOT

from runner.schema import CAMPAIGN_SCHEMA, POLICY_SCHEMA, campaign_schema, policy_schema, render

SHIPPED = sorted((ROOT / "campaigns").glob("[!_]*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = campaign_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one():
    assert (ROOT / "schema" / CAMPAIGN_SCHEMA).read_text() == render(campaign_schema()), \
        "regenerate it: lifecycle schema"
    assert (ROOT / "schema" / POLICY_SCHEMA).read_text() == render(policy_schema()), \
        "regenerate it: lifecycle schema"


def test_the_shipped_policy_file_is_valid_and_broken_ones_are_flagged():
    schema = policy_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    path = ROOT / "campaigns" / "_policy.yaml"
    assert path.read_text().startswith(f"# yaml-language-server: $schema=../schema/{POLICY_SCHEMA}\n")
    policy = yaml.safe_load(path.read_text())
    assert list(validator.iter_errors(policy)) == []
    assert list(validator.iter_errors(policy | {"smart_sending": False, "sunset": "off"})) == []
    for broken in ({"frequency_cap": {"max": 3, "pre": "7d"}}, {"smart_sending": "sixteen hours"},
                   {"send_window": {"start": "8am", "end": "21:00"}}, {"on_conflict": "later"}):
        assert list(validator.iter_errors(policy | broken)), broken


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_campaign_is_valid_and_points_editors_at_the_schema(validator, path):
    assert path.read_text().startswith(f"# yaml-language-server: $schema=../schema/{CAMPAIGN_SCHEMA}\n")
    errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
    assert errors == []


def _winback() -> dict:
    return yaml.safe_load((ROOT / "campaigns" / "winback.yaml").read_text())


@pytest.mark.parametrize("breaks", [
    lambda c: c.update(expire_afer="7d"),  # a misspelt key
    lambda c: c["trigger"].update(after="ninety days"),  # not a duration
    lambda c: c["trigger"].update(type="lapse"),  # no such trigger
    lambda c: c["trigger"].update(cycles={"COFFEE-*": "30d"}),  # another trigger's parameter
    lambda c: c.pop("message"),  # required
    lambda c: c.update(kind="newsletter"),  # not one of the kinds
    lambda c: c["audience"].append({"field": "favourite_colour", "eq": "red"}),  # no such field
    lambda c: c.update(id="Win Back"),  # not a slug
    lambda c: c["variants"][0].update(weight=0),  # weights are positive
    lambda c: c["variants"][1].update(subjet="Hi"),  # a misspelt key in a variant
    lambda c: c["variants"][1].update(name="Offer First"),  # variant names are slugs
], ids=["typo", "duration", "trigger-type", "foreign-param", "missing-message", "kind", "field", "id",
        "variant-weight", "variant-key", "variant-name"])
def test_broken_campaigns_are_flagged(validator, breaks):
    campaign = copy.deepcopy(_winback())
    breaks(campaign)
    assert list(validator.iter_errors(json.loads(json.dumps(campaign))))


def test_the_command_writes_the_schema(tmp_path, capsys):
    from runner.cli import main

    main(["schema", "--out", str(tmp_path)])
    assert json.loads((tmp_path / CAMPAIGN_SCHEMA).read_text())["title"] == "lifecycle-runner campaign"
    assert "Wrote" in capsys.readouterr().out
