"""Slack requests to the interactions endpoint: signature verification, the `block_actions` payload and the
`/medic` slash command.

Only slack_sdk's `SignatureVerifier` is imported here (not Bolt): the interactions endpoint must
answer within Slack's 3-second budget including its own cold start.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk.signature import SignatureVerifier

from medic.errors import SlackRequestRefused

MAX_BODY_BYTES = 64 * 1024
#: How deeply an interaction payload's JSON may nest. Slack's block_actions payloads nest about ten levels (the
#: message's rich-text blocks are the deepest); 64 KiB of brackets would nest ~20,000, past where Python's JSON
#: decoder gives up with RecursionError.
MAX_PAYLOAD_DEPTH = 64
_JSON_SPECIAL = re.compile(r'[\[\]{}"\\]')
APPROVE_ACTION_ID = "medic_approve"
REJECT_ACTION_ID = "medic_reject"
PROMOTE_ACTION_ID = "medic_promote"
"""The promotion card's buttons (`medic.usecases.promote`): their value is the promotion's key, not a plan id."""
PROMOTE_REJECT_ACTION_ID = "medic_promote_reject"


class _Model(BaseModel):
    # Built at first use, not at import: a click validates only `BlockActionsPayload` (its nested models are built
    # inside its schema), a slash command only `SlashCommand`.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


class SlackUser(_Model):
    id: str
    username: str = ""
    name: str = ""


class SlackTeam(_Model):
    id: str


class SlackChannel(_Model):
    id: str


class SlackMessage(_Model):
    ts: str


class BlockAction(_Model):
    action_id: str
    value: str = ""
    block_id: str = ""
    action_ts: str = ""


class BlockActionsPayload(_Model):
    """The `block_actions` interaction payload (only the fields Medic acts on)."""

    type: str
    user: SlackUser
    team: SlackTeam
    api_app_id: str = ""
    channel: SlackChannel | None = None
    message: SlackMessage | None = None
    response_url: str = ""
    actions: list[BlockAction] = Field(min_length=1)


def function_url_body(event: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers (lower-cased) and the raw body bytes of a Lambda Function URL event."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise SlackRequestRefused(400, "body is not valid base64") from None
    else:
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if len(raw) > MAX_BODY_BYTES:
        raise SlackRequestRefused(413, f"body larger than {MAX_BODY_BYTES} bytes")
    return headers, raw


def verify_signature(headers: Mapping[str, str], body: bytes, signing_secret: str) -> None:
    """Refuse (401) unless the v0 signature over the raw body is valid and fresh (±5 minutes)."""
    if not signing_secret:
        raise SlackRequestRefused(500, "no signing secret configured")
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        raise SlackRequestRefused(401, "missing Slack signature headers")
    try:
        valid = SignatureVerifier(signing_secret).is_valid(body=body, timestamp=timestamp, signature=signature)
    except ValueError:  # a non-numeric timestamp, or a body that is not UTF-8: not Slack
        valid = False
    if not valid:
        raise SlackRequestRefused(401, "invalid or stale Slack signature")


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of a form-encoded Slack request (first value of each); refuse (400) anything else."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise SlackRequestRefused(400, "body is not a Slack interaction payload") from None
    return {key: values[0] for key, values in form.items() if values}


def parse_block_actions(body: bytes | Mapping[str, str]) -> BlockActionsPayload:
    """Parse the form-encoded `payload=` of an interaction request; refuse (400) anything else."""
    form = parse_form(body) if isinstance(body, bytes) else body
    try:
        text = form["payload"]
        if not nests_within(text, MAX_PAYLOAD_DEPTH):
            raise SlackRequestRefused(400, f"payload nested more than {MAX_PAYLOAD_DEPTH} levels deep")
        raw = json.loads(text)
    except (ValueError, KeyError):
        raise SlackRequestRefused(400, "body is not a Slack interaction payload") from None
    if not isinstance(raw, dict) or raw.get("type") != "block_actions":
        raise SlackRequestRefused(400, "only block_actions interactions are handled")
    try:
        return BlockActionsPayload.model_validate(raw)
    except ValidationError as exc:
        raise _refused(exc) from None


def nests_within(text: str, limit: int) -> bool:
    """Whether the JSON `text` nests arrays and objects at most `limit` levels deep (brackets inside strings do not
    count). Linear in the text, no recursion: it runs before the decoder, which recurses.

    >>> nests_within('{"a": [1, {"b": "[[["}]}', 3), nests_within('[[[]]]', 2)
    (True, False)
    """
    if text.count("[") + text.count("{") <= limit:
        return True
    depth, in_string, escaped = 0, False, -1
    for match in _JSON_SPECIAL.finditer(text):
        position, char = match.start(), match.group()
        if position == escaped:  # the character right after a backslash in a string: a quote or a backslash
            continue
        if in_string:
            if char == "\\":
                escaped = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return False
        elif char in "]}":
            depth -= 1
    return True


class SlashCommand(_Model):
    """A slash command request (`/medic status`): form fields, not JSON."""

    command: str = Field(min_length=1)
    text: str = ""
    user_id: str = Field(min_length=1)
    team_id: str = Field(min_length=1)
    api_app_id: str = ""
    channel_id: str = ""
    response_url: str = ""


def parse_slash_command(form: Mapping[str, str]) -> SlashCommand:
    """The slash command in a form; refuse (400) a form that lacks its fields."""
    try:
        return SlashCommand.model_validate(dict(form))
    except ValidationError as exc:
        raise _refused(exc) from None


def _refused(exc: ValidationError) -> SlackRequestRefused:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return SlackRequestRefused(400, f"payload field {field}: {first['msg']}")
