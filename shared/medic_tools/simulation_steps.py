"""The simulator's steps around Medic's handlers, each taken as AWS or Slack would take it: the alarm that fires (a
hand-written event, or the scenario's alarm evaluated on the world's metrics), the world after a fix (post-fix metrics
or the workload model run on) with the alarm evaluated again, the signed Slack click on a card's button, and the
executor queue delivered as SQS events."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from medic.chatops.blocks import APPROVE_ACTION_ID, REJECT_ACTION_ID
from medic.errors import ScenarioError
from medic_tools.simulation_constants import ACCOUNT, APP, APPROVER, CHANNEL, REPO_ROOT, TEAM, Decide
from medic_tools.world.scenario_world import put_metric

if TYPE_CHECKING:
    from medic.aws import AwsClients
    from medic.chatops.transport import ConsoleTransport
    from medic.clock import ManualClock
    from medic.plan import Plan
    from medic.runtime import Runtime
    from medic_tools.scenario import Scenario
    from medic_tools.story import Story
    from medic_tools.world.workload.account import ModelledAccount


#: The verifier runs a scenario waits through, at most (one verification window of world time each).
MAX_VERIFIER_RUNS = 6
#: The verifier's outcomes that leave a plan APPLIED for a later run to judge, once the world has run on.
WAITING = frozenset({"settling"})


def verification_window(scenario: Scenario) -> int:
    if scenario.after_fix and scenario.after_fix.metrics:
        return max(len(m.values) * m.period for m in scenario.after_fix.metrics)
    if scenario.world.has_workload:
        return scenario.world.after_fix_min * 60
    return 300


# -- the alarm -------------------------------------------------------------------------------------


def alarm_events(scenario: Scenario, source: str, clock: ManualClock, region: str, alarms: Any) -> list[dict[str, Any]]:
    if scenario.alarm_event:
        path = Path(scenario.alarm_event)
        if not path.is_absolute():
            candidates = [Path(source).parent / path, REPO_ROOT / path]
            path = next((c for c in candidates if c.exists()), candidates[0])
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ScenarioError(field="alarm_event", source=source, problem=f"cannot read {path}: {exc}") from None
        return [event]
    spec = scenario.alarm
    assert spec is not None
    kwargs: dict[str, Any] = {
        "AlarmName": spec.name,
        "Namespace": spec.namespace,
        "MetricName": spec.metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in spec.dimensions.items()],
        "Period": spec.period,
        "EvaluationPeriods": spec.evaluation_periods,
        "Threshold": spec.threshold,
        "ComparisonOperator": spec.comparison,
        "TreatMissingData": spec.treat_missing_data,
        "AlarmDescription": spec.description or f"Medic scenario alarm on {spec.metric}",
    }
    if spec.stat.startswith(("p", "tm", "tc", "ts", "wm", "PR", "TM", "TC", "TS", "WM")):
        kwargs["ExtendedStatistic"] = spec.stat
    else:
        kwargs["Statistic"] = spec.stat
    if spec.datapoints_to_alarm:
        kwargs["DatapointsToAlarm"] = spec.datapoints_to_alarm
    from medic.runtime import current

    current().clients.cloudwatch.put_metric_alarm(**kwargs)
    events: list[dict[str, Any]] = alarms.evaluate_alarms(clock.now(), ACCOUNT, region, names=[spec.name])
    fired = [e for e in events if e["detail"]["state"]["value"] == "ALARM"]
    if not fired:
        raise ScenarioError(
            field="alarm",
            source=source,
            problem="the alarm does not fire on the world's metrics (check metrics and threshold)",
        )
    return fired


def after_fix(
    scenario: Scenario,
    clients: AwsClients,
    clock: ManualClock,
    region: str,
    alarms: Any,
    triage: Callable[[dict[str, Any], Any], dict[str, Any]],
    story: Story,
    account: ModelledAccount | None = None,
) -> None:
    story.section("After the change: what the world's metrics do")
    if (not scenario.after_fix or not scenario.after_fix.metrics) and account is not None:
        _replay_after_fix(scenario, clients, clock, account, story)
    elif not scenario.after_fix or not scenario.after_fix.metrics:
        story.write("the scenario has no post-fix data: the plan stays APPLIED, awaiting verification")
        clock.advance(verification_window(scenario))
        return
    else:
        period = min(metric.period for metric in scenario.after_fix.metrics)
        fix_time = datetime.fromtimestamp(-(-int(clock.now().timestamp()) // period) * period, tz=UTC)
        for metric in scenario.after_fix.metrics:
            put_metric(clients, metric, begin=fix_time)
            story.write(f"metric {metric.name} {metric.dimensions}: {', '.join(f'{v:g}' for v in metric.values)}")
        clock.set(fix_time + timedelta(seconds=verification_window(scenario)))
    for event in alarms.evaluate_alarms(clock.now(), ACCOUNT, region):
        state = event["detail"]["state"]
        story.write(
            f"alarm {event['detail']['alarmName']} → {state['value']} at {state['timestamp']}: {state['reason']}"
        )
        if state["value"] == "ALARM":  # the deployed rule forwards ALARM only (template.yaml, TriageFunction)
            story.write("EventBridge → triage: " + json.dumps(triage(event, None)))


def _replay_after_fix(
    scenario: Scenario, clients: AwsClients, clock: ManualClock, account: ModelledAccount, story: Story
) -> None:
    """No post-fix metrics were written: the model continues from the world's live configuration (read back)."""
    from medic_tools.world.workload.build import continue_world
    from medic_tools.world.workload.live import read_live_config

    fix_time = datetime.fromtimestamp(-(-int(clock.now().timestamp()) // 60) * 60, tz=UTC)
    fixed = read_live_config(clients, account.config, account.start)
    until = fix_time + timedelta(seconds=verification_window(scenario))
    continue_world(clients, account, fixed, fix_time, until)
    story.write(f"the model continues from the live configuration at {fix_time:%H:%M} UTC until {until:%H:%M} UTC")
    first = account.second_of(fix_time) // 60
    for line in account.summary(first, account.second_of(until) // 60):
        story.write(f"  after: {line}")
    clock.set(until)


# -- Slack click -----------------------------------------------------------------------------------


def card_button(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    """The button of a posted card's actions blocks with `action_id`, if the card has one."""
    return next(
        (
            element
            for block in message["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
            if element.get("action_id") == action_id
        ),
        None,
    )


def signed_click(
    plan: Plan, decide: Decide, console: ConsoleTransport, runtime: Runtime, user: str = APPROVER
) -> dict[str, Any]:
    """A Function URL event carrying Slack's signed `block_actions` request for the rendered button."""
    message = console.messages.get(plan.slack.ts)
    if message is None:
        raise ScenarioError(field="slack", source="simulate", problem=f"no card was posted for plan {plan.id}")
    wanted = APPROVE_ACTION_ID if decide == "approve" else REJECT_ACTION_ID
    button = card_button(message, wanted)
    if button is None:
        raise ScenarioError(field="slack", source="simulate", problem=f"the card of {plan.id} has no {decide} button")
    return signed_button(plan.slack.ts, message, button, f"decide:{plan.id}", runtime, user)


def signed_button(
    ts: str, message: dict[str, Any], button: dict[str, Any], block_id: str, runtime: Runtime, user: str
) -> dict[str, Any]:
    """The Function URL event of a click by `user` on `button` of the message `ts`, signed as Slack signs it."""
    from slack_sdk.signature import SignatureVerifier

    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "oncall", "name": "oncall", "team_id": TEAM},
        "api_app_id": APP,
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": "1337.42.abcdef",
        "team": {"id": TEAM, "domain": "medic-demo"},
        "channel": {"id": CHANNEL, "name": "ops-incidents"},
        "message": {"type": "message", "ts": ts, "text": message["text"], "blocks": message["blocks"]},
        "response_url": f"https://hooks.slack.com/actions/{TEAM}/1/demo",
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": block_id,
                "value": button["value"],
                "text": button["text"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(runtime.signing_secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature or "",
            "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        },
        "requestContext": {"http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def executor_records(messages: list[Any], region: str | None) -> list[dict[str, Any]]:
    """Messages received from the executor queue as the records of the SQS event its mapping would deliver."""
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{region}:{ACCOUNT}:medic-executor",
            "awsRegion": region,
        }
        for m in messages
    ]


def drain_executor(
    clients: AwsClients, queue: str, executor: Callable[[dict[str, Any], Any], dict[str, Any]], story: Story
) -> None:
    """Deliver the executor queue's messages as SQS events (as the event source mapping would)."""
    for _ in range(10):
        messages = clients.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not messages:
            return
        story.section("Executor: approved plan from SQS → change applied through boto3")
        result = executor({"Records": executor_records(messages, clients.region)}, None)
        story.write("executor returned " + json.dumps(result))
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                clients.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        if failed:
            return
