"""Meta-tests against drift: settings documented, commands documented, providers registered."""

from __future__ import annotations

from shopkit import ROOT

from runner.cli import cli
from runner.plugins import PROVIDERS, TRIGGERS, available
from runner.settings import Settings, all_settings, example_env


def test_config_example_env_is_the_generated_one():
    assert (ROOT / "config.example.env").read_text() == example_env(), \
        "regenerate it: lifecycle settings --example > config.example.env"


def test_every_setting_is_documented_and_its_default_parses():
    text = (ROOT / "config.example.env").read_text()
    for _, settings in all_settings():
        for setting in settings:
            assert f"# {setting.name}=" in text
            if setting.default:
                Settings({})[setting]


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, command in cli.commands.items():
        if name == "import":
            for sub in command.commands:  # type: ignore[attr-defined]
                assert f"lifecycle import {sub}" in readme or "import customers|orders|products" in readme
        else:
            assert f"lifecycle {name}" in readme, name


def test_builtins_register_as_entry_points():
    assert {"file", "console", "smtp", "postmark", "sendgrid", "mailgun", "resend"} <= set(available(PROVIDERS))
    assert {"order", "replenishment", "lapsed", "birthday", "anniversary", "milestone"} <= set(available(TRIGGERS))
    for entry in [*available(PROVIDERS).values(), *available(TRIGGERS).values()]:
        entry.load()


def test_every_doc_linked_from_the_readme_exists():
    import re

    for link in re.findall(r"\]\(([\w/.-]+\.(?:md|env))\)", (ROOT / "README.md").read_text()):
        assert (ROOT / link).is_file(), link
