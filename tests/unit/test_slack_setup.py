"""The Slack app's setup: the manifest asks for exactly the scopes the code uses, points both URLs at the stack's
Function URL output, and the doc page covers the commands and settings a team configures."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from medic.config import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "slack" / "manifest.yaml"
PLACEHOLDER = "https://replace-with-interactions-url.invalid/"
#: Each Web API method Medic calls, and the bot scope Slack requires for it.
SCOPE_OF_METHOD = {
    "chat_postMessage": "chat:write",
    "chat_postEphemeral": "chat:write",  # a refused click is told to its clicker alone
    "chat_update": "chat:write",
    "files_upload_v2": "files:write",
    "usergroups_users_list": "usergroups:read",
}


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return loaded


def web_api_methods() -> set[str]:
    """The `self.client.<method>(...)` calls of the Web API transport."""
    tree = ast.parse((ROOT / "shared" / "medic" / "chatops" / "transport.py").read_text(encoding="utf-8"))
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "client"
    }


def test_the_manifest_asks_for_the_scopes_the_code_uses_and_no_more() -> None:
    scopes = manifest()["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}, "no user scopes"
    called = web_api_methods()
    assert called == set(SCOPE_OF_METHOD), "a new Web API call needs its scope here and in the manifest"
    assert set(scopes["bot"]) == {SCOPE_OF_METHOD[m] for m in called} | {"commands"}  # commands: /medic


def test_both_urls_are_the_stacks_function_url() -> None:
    app = manifest()
    [command] = app["features"]["slash_commands"]
    assert command["command"] == "/medic"
    assert command["url"] == app["settings"]["interactivity"]["request_url"] == PLACEHOLDER
    assert app["settings"]["interactivity"]["is_enabled"] is True
    assert app["settings"]["socket_mode_enabled"] is False and "event_subscriptions" not in app["settings"]
    for word in ("status", "pause", "resume", "log", "explain"):
        assert word in command["usage_hint"]
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    text = MANIFEST.read_text(encoding="utf-8")
    for output in ("InteractionsUrl", "SlashCommandUrl"):
        assert f"\n  {output}:\n" in template and output in text


def test_the_setup_page_covers_the_commands_the_settings_and_the_security_model() -> None:
    page = (ROOT / "docs" / "slack.md").read_text(encoding="utf-8")
    for needle in ("slack/manifest.yaml", "/medic status", "/medic pause", "/medic resume", "/medic log",
                   "/medic explain", "1 of 2 approvals", "slack-card-example.json", "## Security model"):  # fmt: skip
        assert needle in page, needle
    for setting in ("approvers", "approver_group", "approver_group_ttl_s", "two_person_actions", "two_person_cost_usd",
                    "slack_team_id", "slack_app_id"):  # fmt: skip
        assert ENV_VARS[setting] in page, ENV_VARS[setting]
