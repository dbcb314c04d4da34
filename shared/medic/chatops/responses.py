"""Answering Slack's requests: the HTTP answer, the card replaced in place (through the click's response_url while it
is fresh and points at Slack, else `chat.update`), the clicker told why a click changed nothing, and refusals kept
in the remediation log.

**Refusals** are answered with their HTTP status and kept in the remediation log: on the plan's chain
(`approval_refused`) once a plan is known, else on the day's `refused#YYYY-MM-DD` chain (`request_refused`, with the
body's size and digest, never the body), at most `REFUSALS_LOGGED_PER_MINUTE` per environment (a flood of forged
requests must not become a flood of writes; the next entry counts what was skipped).

Light at import, like the endpoint that uses it (medic.usecases.interactions): what is heavy is imported where used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from medic.errors import SlackRequestRefused, StateConflict
from medic.ledger.keys import REFUSED_PREFIX
from medic.log import get_logger

if TYPE_CHECKING:
    from medic.chatops.requests import BlockActionsPayload
    from medic.config import Settings
    from medic.plan import Plan
    from medic.runtime import Runtime

#: Slack's response_url accepts messages for 30 minutes after the interaction.
RESPONSE_URL_TTL_S = 30 * 60
SLACK_HOOKS = "https://hooks.slack.com/"
REFUSALS_LOGGED_PER_MINUTE = 30


@dataclass
class HandledRequest:
    """What is known about the request being handled (for its answer and its log entry)."""

    source_ip: str = ""
    user_agent: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    raw_size: int = 0  # of the event's body as received (base64 or not): known even when it is refused unread
    signed: bool = False
    user: str = ""
    plan_id: str = ""
    channel: str = ""
    response_url: str = ""

    @property
    def digest(self) -> str:
        """Identifies this exact request (Slack's signature covers its timestamp and body): replays share it."""
        signed = self.headers.get("x-slack-request-timestamp", "") + ":" + self.headers.get("x-slack-signature", "")
        return hashlib.sha256(signed.encode()).hexdigest()[:24]

    @property
    def sent_at(self) -> datetime | None:
        try:
            return datetime.fromtimestamp(int(self.headers.get("x-slack-request-timestamp", "")), tz=UTC)
        except (ValueError, OverflowError, OSError):
            return None


def http_response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


# -- the card --------------------------------------------------------------------------------------


def show_card(
    plan: Plan,
    rt: Runtime,
    payload: BlockActionsPayload,
    request: HandledRequest,
    now: datetime,
    *,
    decided_note: str = "",
    approval_note: str = "",
) -> None:
    """Replace the card in place: through the click's response_url while it is valid (no bot token needed, so none
    is read), else `chat.update`. A Slack failure is logged and never undoes the decision (which is already written
    and enqueued)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from slack_sdk.errors import SlackClientError

    if not plan.slack.ts:
        return
    transport = rt.slack
    if transport is None:
        return
    log = get_logger(use_case="interactions", plan_id=plan.id)
    from medic.chatops.blocks import plan_blocks, plan_summary

    blocks = plan_blocks(plan, decided_note=decided_note, approval_note=approval_note)
    text = plan_summary(plan)
    url = fresh_response_url(payload.response_url, request.sent_at, now, allowed_origins(rt.settings))
    if url:
        try:
            transport.replace(url, plan.slack.channel, plan.slack.ts, text, blocks)
            return
        except SlackClientError as exc:
            log.warning("response_url_failed", error=str(exc)[:200])
    try:
        transport.update(plan.slack.channel, plan.slack.ts, text, blocks)  # the bot token: read once per environment
    except (ClientError, BotoCoreError) as exc:  # reading the bot token from Secrets Manager failed
        rt.ledger.append(plan.id, "slack_failed", {"call": "bot token", "error": type(exc).__name__}, now)
    except SlackClientError as exc:
        rt.ledger.append(
            plan.id, "slack_failed", {"call": "chat.update", "error": type(exc).__name__, "detail": str(exc)[:500]}, now
        )


def allowed_origins(settings: Settings) -> tuple[str, ...]:
    """Where a response_url may point: Slack's hooks (and a fake Slack's own origin when one is configured)."""
    if not settings.slack_api_url:
        return (SLACK_HOOKS,)
    parts = urlsplit(settings.slack_api_url)
    return SLACK_HOOKS, f"{parts.scheme}://{parts.netloc}/"


def fresh_response_url(url: str, issued_at: datetime | None, now: datetime, allowed: tuple[str, ...]) -> str:
    """`url` when it is a response_url to use: from Slack (one of `allowed`) and issued less than 30 minutes ago.

    >>> t = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    >>> fresh_response_url("https://hooks.slack.com/actions/T/1/x", t, t + timedelta(minutes=29), (SLACK_HOOKS,))
    'https://hooks.slack.com/actions/T/1/x'
    >>> fresh_response_url("https://hooks.slack.com/actions/T/1/x", t, t + timedelta(minutes=31), (SLACK_HOOKS,))
    ''
    """
    if not url or issued_at is None or not url.startswith(allowed):
        return ""
    return url if now - issued_at < timedelta(seconds=RESPONSE_URL_TTL_S) else ""


# -- telling the clicker, and refusals ------------------------------------------------------------


def tell_clicker(plan: Plan, request: HandledRequest, rt: Runtime, now: datetime, text: str) -> dict[str, Any]:
    """Answer a verified click that changed nothing. Slack shows the clicker nothing of an HTTP answer to a button
    but, when it is not 200, a warning icon: the answer is 200 and the reason goes to the clicker alone, through the
    click's response_url (else `chat.postEphemeral`). A refusal's status stays in the plan's log."""
    from botocore.exceptions import BotoCoreError, ClientError
    from slack_sdk.errors import SlackClientError

    transport = rt.slack
    if transport is not None and request.user:
        url = fresh_response_url(request.response_url, request.sent_at, now, allowed_origins(rt.settings))
        try:
            transport.whisper(url, request.channel or plan.slack.channel, request.user, text)
        except (SlackClientError, ClientError, BotoCoreError) as exc:  # logged already; the clicker does not hear why
            get_logger(use_case="interactions", plan_id=plan.id).warning("whisper_failed", error=str(exc)[:200])
    return http_response(200, {"response_type": "ephemeral", "replace_original": False, "text": text})


def refuse_on_plan(
    plan: Plan, request: HandledRequest, rt: Runtime, now: datetime, status: int, reason: str, clicked: str = ""
) -> dict[str, Any]:
    rt.ledger.append(
        plan.id,
        "approval_refused",
        {"user": request.user, "reason": reason, "status": status, "clicked": clicked, "request": request.digest},
        now,
    )
    get_logger(use_case="interactions", plan_id=plan.id).warning("approval_refused", user=request.user, reason=reason)
    return tell_clicker(plan, request, rt, now, reason)


@dataclass
class _RefusalBudget:
    """Per execution environment: how many refusals were logged this minute, and how many skipped since the last."""

    minute: str = ""
    refusals_logged: int = 0
    refusals_skipped: int = 0


_BUDGETS: WeakKeyDictionary[Runtime, _RefusalBudget] = WeakKeyDictionary()


def _budget(rt: Runtime) -> _RefusalBudget:
    return _BUDGETS.setdefault(rt, _RefusalBudget())


def log_refusal(rt: Runtime, request: HandledRequest, refused: SlackRequestRefused, now: datetime) -> None:
    """Keep a refused request in the log (the day's `refused#…` chain), within the per-minute budget."""
    from botocore.exceptions import BotoCoreError, ClientError

    budget = _budget(rt)
    minute = now.strftime("%Y-%m-%dT%H:%M")
    if budget.minute != minute:
        budget.minute, budget.refusals_logged = minute, 0
    if budget.refusals_logged >= REFUSALS_LOGGED_PER_MINUTE:
        budget.refusals_skipped += 1
        return
    budget.refusals_logged += 1
    data = {
        "status": refused.status,
        "reason": refused.reason,
        "signed": request.signed,
        "user": request.user,
        "plan_id": request.plan_id,
        "bytes": len(request.body) or request.raw_size,
        "sha256": hashlib.sha256(request.body).hexdigest(),
        "source_ip": request.source_ip,
        "user_agent": request.user_agent,
        "request": request.digest,
        "skipped_before": budget.refusals_skipped,
    }
    budget.refusals_skipped = 0
    try:
        rt.ledger.append(f"{REFUSED_PREFIX}{now:%Y-%m-%d}", "request_refused", data, now)
    except (StateConflict, ClientError, BotoCoreError) as exc:
        get_logger(use_case="interactions").warning("refusal_not_logged", error=str(exc)[:200])
