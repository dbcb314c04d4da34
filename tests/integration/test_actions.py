"""The concurrency, memory, buffer and pre-warm actions against the embedded AWS (moto over real HTTP).

Each action goes through what the executor does with it: read the live state (it must read as `before`), apply,
apply again (idempotent: nothing more changes), read it back (it must read as `after`), wait, roll back (it must
read as `before` again). The world is built with boto3 the way a human would have built it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from medic.actions import PlannedAction, get_action
from medic.actions.memory import UNRELEASED_CODE
from medic.actions.provisioned import PC_DIMENSION
from medic.alarms.signals import Target
from medic.aws import AwsClients
from medic.clock import ManualClock
from medic.config import Settings
from medic.errors import ActionFailed
from medic.facts import ConsumerFacts, EventSourceFacts, Facts
from medic.planning.guardrails import check_plan
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS

ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
TIMEOUT_S = 60.0


def _zip(body: str = "return event") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", f"def handler(event, context):\n    {body}\n")
    return buffer.getvalue()


def make_function(aws: EmbeddedAWS, name: str, *, memory: int = 256, timeout: int = 30,
                  tags: dict[str, str] | None = None, aliases: bool = True) -> Any:  # fmt: skip
    """A function with version 1 published and alias live → 1; returns a Lambda client."""
    iam = aws.client("iam")
    try:
        role = iam.get_role(RoleName="medic-test")["Role"]["Arn"]
    except ClientError:
        role = iam.create_role(RoleName="medic-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = aws.client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": _zip()}, MemorySize=memory, Timeout=timeout,
                        Tags=tags or {"medic:managed": "true"})  # fmt: skip
    if aliases:
        lam.publish_version(FunctionName=name)
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    return lam


@pytest.fixture
def clients(aws: EmbeddedAWS) -> AwsClients:
    return AwsClients(region=REGION)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))


def settings() -> Settings:
    return Settings(plans_table="p", events_table="e")


def same(live: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """The executor's comparison: every field the plan names reads as planned."""
    return all(live.get(key) == value for key, value in expected.items())


def apply_twice(clients: AwsClients, action: PlannedAction) -> str:
    impl = get_action(action.kind)
    assert same(impl.read_live(clients, action), action.before), "the world must read as the plan's before-state"
    assert not same(impl.read_live(clients, action), action.after)
    request = impl.apply(clients, action)
    assert request, "apply returns the AWS request id"
    impl.apply(clients, action)
    return request


# --- set_reserved_concurrency ---------------------------------------------------------------------


def test_reserved_concurrency_is_set_and_removed_again_on_rollback(aws: EmbeddedAWS, clients: AwsClients,
                                                                   clock: ManualClock) -> None:  # fmt: skip
    lam = make_function(aws, "checkout")
    facts = Facts(function_name="checkout", reserved_concurrency=None, has_reserved_concurrency=False, managed=True)
    [action] = get_action("set_reserved_concurrency").plan(Target.function("checkout"), {"concurrency": 49.5}, facts)
    impl = get_action(action.kind)

    apply_twice(clients, action)

    assert lam.get_function_concurrency(FunctionName="checkout")["ReservedConcurrentExecutions"] == 50
    assert impl.read_live(clients, action) == {"reserved_concurrency": 50}
    assert impl.wait(clients, action, clock, TIMEOUT_S) == {"reserved_concurrency": 50}
    impl.rollback(clients, action)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="checkout")
    assert impl.read_live(clients, action) == {"reserved_concurrency": None}


def test_reserved_concurrency_rollback_restores_the_previous_value(aws: EmbeddedAWS, clients: AwsClients) -> None:
    lam = make_function(aws, "checkout")
    lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=30)
    facts = Facts(function_name="checkout", reserved_concurrency=30, has_reserved_concurrency=True, managed=True)
    [action] = get_action("set_reserved_concurrency").plan(Target.function("checkout"), {"concurrency": 45}, facts)

    apply_twice(clients, action)
    assert lam.get_function_concurrency(FunctionName="checkout")["ReservedConcurrentExecutions"] == 45
    get_action(action.kind).rollback(clients, action)

    assert lam.get_function_concurrency(FunctionName="checkout")["ReservedConcurrentExecutions"] == 30


def test_the_guardrail_clamp_is_exactly_what_aws_accepts(aws: EmbeddedAWS, clients: AwsClients) -> None:
    """With 300 unreserved, AWS refuses a reservation of 250 and accepts the clamped 200, leaving exactly 100."""
    moto_ext.set_account_concurrency_limit(300)
    lam = make_function(aws, "checkout")
    unreserved = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    facts = Facts(function_name="checkout", managed=True, has_reserved_concurrency=False, pc_requested=0,
                  unreserved_concurrency=unreserved, unreserved_concurrency_peak=0.0)  # fmt: skip
    [action] = get_action("set_reserved_concurrency").plan(Target.function("checkout"), {"concurrency": 250}, facts)

    with pytest.raises(ClientError) as refused:
        lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=250)
    assert check_plan([action], facts, settings()) == []
    get_action(action.kind).apply(clients, action)

    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert action.after == {"reserved_concurrency": 200}
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100


def test_toward_a_database_each_consumer_gets_its_share(aws: EmbeddedAWS, clients: AwsClients) -> None:
    lam = make_function(aws, "api")
    make_function(aws, "report")
    lam.put_function_concurrency(FunctionName="report", ReservedConcurrentExecutions=90)
    facts = Facts(db_instance="orders-db", unreserved_concurrency=900, unreserved_concurrency_peak=150.0, consumers=[
        ConsumerFacts(function_name="api", managed=True, peak_concurrency=150),
        ConsumerFacts(function_name="report", managed=True, peak_concurrency=50, reserved_concurrency=90),
    ])  # fmt: skip
    actions = get_action("set_reserved_concurrency").plan(Target.db_instance("orders-db"), {"concurrency": 100}, facts)
    assert check_plan(actions, facts, settings()) == []

    for action in actions:
        apply_twice(clients, action)

    assert [(a.target, a.before, a.after) for a in actions] == [
        ("api", {"reserved_concurrency": None}, {"reserved_concurrency": 75}),
        ("report", {"reserved_concurrency": 90}, {"reserved_concurrency": 25}),
    ]
    assert lam.get_function_concurrency(FunctionName="api")["ReservedConcurrentExecutions"] == 75
    assert lam.get_function_concurrency(FunctionName="report")["ReservedConcurrentExecutions"] == 25
    for action in reversed(actions):
        get_action(action.kind).rollback(clients, action)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="api")
    assert lam.get_function_concurrency(FunctionName="report")["ReservedConcurrentExecutions"] == 90


# --- set_event_source_max_concurrency -------------------------------------------------------------


def mappings_of(lam: Any, name: str) -> list[EventSourceFacts]:
    """The function's mappings as the fact collector reports them."""
    return [
        EventSourceFacts(uuid=m["UUID"], source_arn=m["EventSourceArn"], kind="sqs",
                         maximum_concurrency=(m.get("ScalingConfig") or {}).get("MaximumConcurrency"))
        for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    ]  # fmt: skip


def test_event_source_caps_are_set_and_restored_or_removed(aws: EmbeddedAWS, clients: AwsClients,
                                                           clock: ManualClock) -> None:  # fmt: skip
    lam = make_function(aws, "worker")
    sqs = aws.client("sqs")
    arns = []
    for queue in ("orders", "refunds"):
        url = sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "180"})["QueueUrl"]
        arns.append(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    capped = lam.create_event_source_mapping(EventSourceArn=arns[0], FunctionName="worker",
                                             ScalingConfig={"MaximumConcurrency": 50})["UUID"]  # fmt: skip
    uncapped = lam.create_event_source_mapping(EventSourceArn=arns[1], FunctionName="worker")["UUID"]
    facts = Facts(function_name="worker", managed=True, event_sources=mappings_of(lam, "worker"))
    actions = get_action("set_event_source_max_concurrency").plan(Target.function("worker"), {"concurrency": 20}, facts)
    impl = get_action("set_event_source_max_concurrency")

    for action in actions:
        apply_twice(clients, action)

    assert [(a.target, a.before, a.after) for a in actions] == [
        (f"worker esm {capped}", {"maximum_concurrency": 50}, {"maximum_concurrency": 20}),
        (f"worker esm {uncapped}", {"maximum_concurrency": None}, {"maximum_concurrency": 20}),
    ]
    for uuid in (capped, uncapped):
        assert lam.get_event_source_mapping(UUID=uuid)["ScalingConfig"] == {"MaximumConcurrency": 20}
    assert impl.wait(clients, actions[0], clock, TIMEOUT_S) == {"maximum_concurrency": 20, "state": "Enabled"}
    for action in actions:
        impl.rollback(clients, action)
        assert impl.read_live(clients, action) == action.before
    assert lam.get_event_source_mapping(UUID=capped)["ScalingConfig"] == {"MaximumConcurrency": 50}
    assert "MaximumConcurrency" not in (lam.get_event_source_mapping(UUID=uncapped).get("ScalingConfig") or {})


# --- set_memory -----------------------------------------------------------------------------------


def memory_plan(facts: Facts | None = None, memory_mb: int = 512) -> PlannedAction:
    facts = facts or Facts(function_name="pricing", qualifier="live", memory_mb=256, alias_version="1", managed=True,
                           pc_requested=0)  # fmt: skip
    [action] = get_action("set_memory").plan(Target.function("pricing", "live"), {"memory_mb": memory_mb}, facts)
    return action


def test_memory_is_published_as_a_new_version_and_the_alias_moves_to_it(aws: EmbeddedAWS, clients: AwsClients,
                                                                        clock: ManualClock) -> None:  # fmt: skip
    lam = make_function(aws, "pricing", memory=256)
    action = memory_plan()
    impl = get_action("set_memory")

    apply_twice(clients, action)

    assert lam.get_alias(FunctionName="pricing", Name="live")["FunctionVersion"] == "2"
    assert lam.get_function_configuration(FunctionName="pricing", Qualifier="2")["MemorySize"] == 512
    assert lam.get_function_configuration(FunctionName="pricing")["MemorySize"] == 512
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="pricing")["Versions"]]
    assert versions == ["$LATEST", "1", "2"], "applying twice published one version"
    assert action.resource == {"provisioned_concurrency": 0, "latest_memory_mb_before": 256, "published_version": "2"}
    live = impl.read_live(clients, action)
    assert live == {"memory_mb": 512, "version": "2"}
    assert same(live, action.after) and not same(live, action.before)
    assert impl.wait(clients, action, clock, TIMEOUT_S) == {"memory_mb": 512, "version": "2"}

    impl.rollback(clients, action)

    assert impl.read_live(clients, action) == {"memory_mb": 256, "version": "1"}
    assert lam.get_function_configuration(FunctionName="pricing")["MemorySize"] == 256


def test_memory_is_never_published_with_unreleased_code(aws: EmbeddedAWS, clients: AwsClients) -> None:
    lam = make_function(aws, "pricing", memory=256)
    lam.update_function_code(FunctionName="pricing", ZipFile=_zip("return 'work in progress'"))
    action = memory_plan()

    with pytest.raises(ActionFailed) as failed:
        get_action("set_memory").apply(clients, action)

    assert failed.value.reason == UNRELEASED_CODE == "$LATEST has unreleased code; publishing it would ship it"
    assert lam.get_alias(FunctionName="pricing", Name="live")["FunctionVersion"] == "1"
    assert lam.get_function_configuration(FunctionName="pricing")["MemorySize"] == 256
    assert len(lam.list_versions_by_function(FunctionName="pricing")["Versions"]) == 2


def test_memory_is_never_published_with_unreleased_configuration(aws: EmbeddedAWS, clients: AwsClients) -> None:
    lam = make_function(aws, "pricing", memory=256)
    lam.update_function_configuration(FunctionName="pricing", Environment={"Variables": {"FEATURE_X": "on"}})

    with pytest.raises(ActionFailed) as failed:
        get_action("set_memory").apply(clients, memory_plan())

    assert failed.value.reason == "$LATEST has unreleased configuration (Environment); publishing it would ship it"
    assert lam.get_alias(FunctionName="pricing", Name="live")["FunctionVersion"] == "1"


def test_an_alias_mid_deployment_is_not_moved(aws: EmbeddedAWS, clients: AwsClients) -> None:
    lam = make_function(aws, "pricing", memory=256)
    lam.update_function_configuration(FunctionName="pricing", Description="v2")
    lam.publish_version(FunctionName="pricing")
    lam.update_alias(FunctionName="pricing", Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})  # fmt: skip

    with pytest.raises(ActionFailed) as failed:
        get_action("set_memory").apply(clients, memory_plan())

    assert "a deployment in progress" in failed.value.reason
    assert lam.get_function_configuration(FunctionName="pricing")["MemorySize"] == 256


def test_moving_an_alias_with_pc_waits_for_the_pc_to_be_ready_again(aws: EmbeddedAWS, clients: AwsClients,
                                                                     clock: ManualClock) -> None:  # fmt: skip
    lam = make_function(aws, "pricing", memory=256)
    lam.put_provisioned_concurrency_config(FunctionName="pricing", Qualifier="live", ProvisionedConcurrentExecutions=5)
    facts = Facts(function_name="pricing", qualifier="live", memory_mb=256, alias_version="1", pc_requested=5)
    action = memory_plan(facts, memory_mb=1769)

    get_action("set_memory").apply(clients, action)

    assert "re-provisions its 5 provisioned executions" in action.text
    observed = get_action("set_memory").wait(clients, action, clock, TIMEOUT_S)
    assert observed == {"memory_mb": 1769, "version": "2", "provisioned_concurrency": 5}


# --- enable_sqs_buffer ----------------------------------------------------------------------------

READY = {"medic:managed": "true", "medic:sqs-buffer": "ready"}
LIVE_ARN = f"{FUNCTION_ARN}:thumbnailer:live"
TRANSFORMER = {"InputPathsMap": {"key": "$.detail.key"}, "InputTemplate": '{"key": <key>}'}


def buffer_world(aws: EmbeddedAWS) -> tuple[Any, Any, dict[str, str]]:
    """`thumbnailer:live` (timeout 30 s) invoked by two EventBridge rules; one rule also feeds an audit queue."""
    lam = make_function(aws, "thumbnailer", timeout=30, tags=READY)
    events = aws.client("events")
    sqs = aws.client("sqs")
    audit = sqs.create_queue(QueueName="audit")["QueueUrl"]
    audit_arn = sqs.get_queue_attributes(QueueUrl=audit, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rules = {}
    for rule in ("uploads", "nightly"):
        rules[rule] = events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["photos"]}))["RuleArn"]
    events.put_targets(Rule="uploads", Targets=[
        {"Id": "thumb", "Arn": LIVE_ARN, "InputTransformer": TRANSFORMER},
        {"Id": "audit", "Arn": audit_arn},
    ])  # fmt: skip
    events.put_targets(Rule="nightly", Targets=[{"Id": "1", "Arn": LIVE_ARN, "Input": '{"sweep": true}'}])
    return lam, events, rules


def buffer_plan(**changes: Any) -> PlannedAction:
    world: dict[str, Any] = {
        "function_name": "thumbnailer", "qualifier": "live", "tags": READY, "managed": True, "timeout_s": 30,
        "async_sources": "events:rule/uploads, events:rule/nightly, s3:photos",
        "event_sources": [],
    }  # fmt: skip
    world.update(changes)
    target = Target.function("thumbnailer", "live")
    [action] = get_action("enable_sqs_buffer").plan(target, {"maximum_concurrency": 40}, Facts(**world))
    return action


def targets(events: Any, rule: str) -> list[dict[str, Any]]:
    return sorted(events.list_targets_by_rule(Rule=rule)["Targets"], key=lambda t: t["Id"])


def test_the_buffer_puts_a_queue_between_the_rules_and_the_function(aws: EmbeddedAWS, clients: AwsClients,
                                                                     clock: ManualClock) -> None:  # fmt: skip
    lam, events, rules = buffer_world(aws)
    sqs = aws.client("sqs")
    before = {rule: targets(events, rule) for rule in rules}
    action = buffer_plan()
    impl = get_action("enable_sqs_buffer")

    apply_twice(clients, action)

    queue = sqs.get_queue_url(QueueName="medic-buffer-thumbnailer")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="medic-buffer-thumbnailer-dlq")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert attributes["VisibilityTimeout"] == "180"
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"medic:created-by": "medic"}
    assert sqs.list_queue_tags(QueueUrl=dlq)["Tags"] == {"medic:created-by": "medic"}
    [statement] = json.loads(attributes["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert (statement["Action"], statement["Resource"]) == ("sqs:SendMessage", queue_arn)
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": [rules["uploads"], rules["nightly"]]}}
    [mapping] = lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 40}
    assert mapping["FunctionArn"].split(":")[6] == "thumbnailer"
    assert targets(events, "uploads") == [
        {"Id": "audit", "Arn": before["uploads"][0]["Arn"]},
        {"Id": "thumb", "Arn": queue_arn, "InputTransformer": TRANSFORMER},
    ]
    assert targets(events, "nightly") == [{"Id": "1", "Arn": queue_arn, "Input": '{"sweep": true}'}]
    live = impl.read_live(clients, action)
    assert live == action.after == {"buffered": True, "maximum_concurrency": 40}
    assert impl.wait(clients, action, clock, TIMEOUT_S) == {**action.after, "mapping_state": "Enabled"}

    done = impl.rollback(clients, action)

    assert {rule: targets(events, rule) for rule in rules} == before
    assert impl.read_live(clients, action) == action.before == {"buffered": False, "maximum_concurrency": None}
    assert f"deleted mapping {mapping['UUID']}" in done, "the queue was empty: what apply created is removed"
    assert buffer_mappings(aws) == []
    assert [q for q in sqs.list_queues().get("QueueUrls", []) if "medic-buffer" in q] == []


def buffer_mappings(aws: EmbeddedAWS) -> list[dict[str, Any]]:
    """Every event source mapping from a medic-buffer queue."""
    found = aws.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    return [m for m in found if ":medic-buffer-" in m["EventSourceArn"]]


def buffered_world(aws: EmbeddedAWS, clients: AwsClients) -> tuple[PlannedAction, Any, str, str]:
    """The buffer applied to `thumbnailer:live`: (action, the EventBridge client, queue URL, DLQ URL)."""
    _, events, _ = buffer_world(aws)
    action = buffer_plan()
    get_action(action.kind).apply(clients, action)
    sqs = aws.client("sqs")
    queue = sqs.get_queue_url(QueueName="medic-buffer-thumbnailer")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="medic-buffer-thumbnailer-dlq")["QueueUrl"]
    return action, events, queue, dlq


def hold_a_message(aws: EmbeddedAWS, queue: str, how: str) -> None:
    """One message in `queue`: visible (the mapping is paused), in flight (received, not deleted) or delayed."""
    sqs, lam = aws.client("sqs"), aws.client("lambda")
    if how == "delayed":
        sqs.send_message(QueueUrl=queue, MessageBody='{"key": "a.jpg"}', DelaySeconds=900)
        return
    [mapping] = buffer_mappings(aws)
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)  # moto would invoke the function at once
    sqs.send_message(QueueUrl=queue, MessageBody='{"key": "a.jpg"}')
    if how == "in_flight":
        assert sqs.receive_message(QueueUrl=queue, VisibilityTimeout=600)["Messages"]


@pytest.mark.parametrize("how", ["visible", "in_flight", "delayed"])
def test_a_buffer_still_holding_messages_is_kept_after_the_rules_are_restored(
    aws: EmbeddedAWS, clients: AwsClients, how: str
) -> None:
    action, events, queue, dlq = buffered_world(aws, clients)
    hold_a_message(aws, queue, how)

    done = get_action(action.kind).rollback(clients, action)

    assert targets(events, "nightly") == [{"Id": "1", "Arn": LIVE_ARN, "Input": '{"sweep": true}'}]
    assert "kept medic-buffer-thumbnailer (1 message(s) still buffered)" in done
    assert "delete them once medic-buffer-thumbnailer is empty" in done
    sqs = aws.client("sqs")
    assert sqs.get_queue_url(QueueName="medic-buffer-thumbnailer")["QueueUrl"] == queue
    assert sqs.get_queue_url(QueueName="medic-buffer-thumbnailer-dlq")["QueueUrl"] == dlq
    assert len(buffer_mappings(aws)) == 1


def test_an_empty_buffer_is_removed_but_a_dlq_holding_failed_events_is_kept(
    aws: EmbeddedAWS, clients: AwsClients
) -> None:
    action, events, _, dlq = buffered_world(aws, clients)
    aws.client("sqs").send_message(QueueUrl=dlq, MessageBody='{"key": "poison.jpg"}')

    done = get_action(action.kind).rollback(clients, action)

    assert targets(events, "nightly")[0]["Arn"] == LIVE_ARN
    assert "deleted medic-buffer-thumbnailer (empty)" in done
    assert "kept medic-buffer-thumbnailer-dlq: it holds 1 failed event(s)" in done
    remaining = aws.client("sqs").list_queues(QueueNamePrefix="medic-buffer")["QueueUrls"]
    assert remaining == [dlq]
    assert buffer_mappings(aws) == []


def test_a_buffer_mapping_that_predates_the_plan_is_only_set_back(aws: EmbeddedAWS, clients: AwsClients) -> None:
    earlier, events, queue, _ = buffered_world(aws, clients)  # an earlier buffer, rolled back while not yet empty
    hold_a_message(aws, queue, "delayed")
    get_action(earlier.kind).rollback(clients, earlier)
    [mapping] = buffer_mappings(aws)
    source = EventSourceFacts(uuid=mapping["UUID"], source_arn=mapping["EventSourceArn"], kind="sqs",
                              maximum_concurrency=40)  # fmt: skip
    action = buffer_plan(event_sources=[source])
    action.after["maximum_concurrency"] = 60
    impl = get_action(action.kind)
    assert action.before == {"buffered": False, "maximum_concurrency": 40}
    impl.apply(clients, action)
    assert impl.read_live(clients, action) == {"buffered": True, "maximum_concurrency": 60}

    done = impl.rollback(clients, action)

    assert impl.read_live(clients, action) == action.before
    assert "existed before the plan" in done
    assert targets(events, "nightly")[0]["Arn"] == LIVE_ARN
    assert aws.client("sqs").get_queue_url(QueueName="medic-buffer-thumbnailer")["QueueUrl"] == queue


def test_a_queue_of_that_name_not_created_by_medic_is_not_taken_over(aws: EmbeddedAWS, clients: AwsClients) -> None:
    _, events, _ = buffer_world(aws)
    aws.client("sqs").create_queue(QueueName="medic-buffer-thumbnailer-dlq")

    with pytest.raises(ActionFailed) as failed:
        get_action("enable_sqs_buffer").apply(clients, buffer_plan())

    assert failed.value.reason == "queue medic-buffer-thumbnailer-dlq exists and was not created by Medic"
    assert targets(events, "nightly")[0]["Arn"] == LIVE_ARN


def test_a_rule_gone_since_the_plan_reads_as_drift(aws: EmbeddedAWS, clients: AwsClients) -> None:
    _, events, _ = buffer_world(aws)
    action = buffer_plan()
    events.remove_targets(Rule="nightly", Ids=["1"])
    events.delete_rule(Name="nightly")

    live = get_action("enable_sqs_buffer").read_live(clients, action)

    assert live == {"buffered": None, "maximum_concurrency": None}
    assert not same(live, action.before) and not same(live, action.after)
    with pytest.raises(ActionFailed, match="EventBridge rule nightly no longer exists"):
        get_action("enable_sqs_buffer").apply(clients, action)


# --- enable_sqs_buffer: SNS producers --------------------------------------------------------------

TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:photo-uploads"
FILTER = {"FilterPolicy": json.dumps({"kind": ["photo"]}), "FilterPolicyScope": "MessageAttributes"}
BUFFER_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:medic-buffer-thumbnailer"


def sns_world(aws: EmbeddedAWS, *, function: bool = True) -> Any:
    """The topic photo-uploads: `thumbnailer:live` subscribed with a filter policy, and an audit queue beside it."""
    if function:
        make_function(aws, "thumbnailer", timeout=30, tags=READY)
    sns, sqs = aws.client("sns"), aws.client("sqs")
    assert sns.create_topic(Name="photo-uploads")["TopicArn"] == TOPIC_ARN
    audit = sqs.create_queue(QueueName="sns-audit")["QueueUrl"]
    audit_arn = sqs.get_queue_attributes(QueueUrl=audit, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=audit_arn)
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="lambda", Endpoint=LIVE_ARN, Attributes=FILTER)
    return sns


def subscriptions(sns: Any) -> list[tuple[str, str]]:
    """(protocol, endpoint) of every subscription to photo-uploads."""
    found = sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
    return sorted((s["Protocol"], s["Endpoint"]) for s in found)


def subscription_attributes(sns: Any, protocol: str, endpoint: str) -> dict[str, str]:
    [arn] = [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
             if (s["Protocol"], s["Endpoint"]) == (protocol, endpoint)]  # fmt: skip
    return sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]


def sns_calls(clients: AwsClients) -> list[str]:
    """The SNS operations the action's client makes from now on, in order (reads left out)."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        if model.name in ("Subscribe", "Unsubscribe"):
            calls.append(model.name)

    clients.client("sns").meta.events.register("before-call.sns", record)
    return calls


def test_the_buffer_puts_a_queue_between_an_sns_topic_and_the_function(aws: EmbeddedAWS, clients: AwsClients,
                                                                        clock: ManualClock) -> None:  # fmt: skip
    sns = sns_world(aws)
    audit = ("sqs", f"arn:aws:sqs:{REGION}:{ACCOUNT}:sns-audit")
    original = subscription_attributes(sns, "lambda", LIVE_ARN)["SubscriptionArn"]
    action = buffer_plan(async_sources=f"sns:{TOPIC_ARN}")
    impl = get_action(action.kind)
    calls = sns_calls(clients)

    apply_twice(clients, action)

    assert calls == ["Subscribe", "Unsubscribe"], "the queue is subscribed before the function leaves; once"
    assert subscriptions(sns) == sorted([audit, ("sqs", BUFFER_ARN)])
    queue_subscription = subscription_attributes(sns, "sqs", BUFFER_ARN)
    assert queue_subscription["RawMessageDelivery"] == "false", "the handler gets the SNS envelope"
    assert (queue_subscription["FilterPolicy"], queue_subscription["FilterPolicyScope"]) == (
        FILTER["FilterPolicy"], "MessageAttributes"
    ), "the queue gets what the function got"  # fmt: skip
    assert json.loads(str(action.resource[f"original_subscription:{TOPIC_ARN}"])) == {
        "SubscriptionArn": original, "Attributes": FILTER
    }  # fmt: skip
    sqs = aws.client("sqs")
    queue = sqs.get_queue_url(QueueName="medic-buffer-thumbnailer")["QueueUrl"]
    policy = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"]
    [statement] = json.loads(policy)["Statement"]
    assert statement == {"Sid": "medic-buffer-sns", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                         "Action": "sqs:SendMessage", "Resource": BUFFER_ARN,
                         "Condition": {"ArnEquals": {"aws:SourceArn": [TOPIC_ARN]}}}  # fmt: skip
    [mapping] = buffer_mappings(aws)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 40}
    assert impl.read_live(clients, action) == action.after == {"buffered": True, "maximum_concurrency": 40}
    assert impl.wait(clients, action, clock, TIMEOUT_S) == {**action.after, "mapping_state": "Enabled"}
    calls.clear()

    done = impl.rollback(clients, action)

    assert calls == ["Subscribe", "Unsubscribe"], "the function is back before the queue leaves"
    assert subscriptions(sns) == sorted([audit, ("lambda", LIVE_ARN)])
    restored = subscription_attributes(sns, "lambda", LIVE_ARN)
    assert {key: restored[key] for key in FILTER} == FILTER
    assert f"re-subscribed {LIVE_ARN} to {TOPIC_ARN} as {restored['SubscriptionArn']} (was {original})" in done
    assert f"unsubscribed medic-buffer-thumbnailer from {TOPIC_ARN}" in done
    assert impl.read_live(clients, action) == action.before == {"buffered": False, "maximum_concurrency": None}
    assert buffer_mappings(aws) == []
    assert sqs.list_queues(QueueNamePrefix="medic-buffer").get("QueueUrls", []) == []


def test_a_buffered_topic_delivers_the_sns_envelope_its_filter_lets_through(aws: EmbeddedAWS,
                                                                             clients: AwsClients) -> None:  # fmt: skip
    sns = sns_world(aws)
    action = buffer_plan(async_sources=f"sns:{TOPIC_ARN}")
    get_action(action.kind).apply(clients, action)
    [mapping] = buffer_mappings(aws)
    aws.client("lambda").update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)  # keep it in the queue

    for kind in ("photo", "video"):
        sns.publish(TopicArn=TOPIC_ARN, Message=json.dumps({"key": f"a.{kind}"}),
                    MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}})  # fmt: skip

    sqs = aws.client("sqs")
    queue = sqs.get_queue_url(QueueName="medic-buffer-thumbnailer")["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert (envelope["Type"], envelope["TopicArn"]) == ("Notification", TOPIC_ARN)
    assert json.loads(envelope["Message"]) == {"key": "a.photo"}


def test_a_function_fed_by_rules_and_a_topic_is_buffered_and_restored_as_a_whole(
    aws: EmbeddedAWS, clients: AwsClients
) -> None:
    _, events, rules = buffer_world(aws)
    sns = sns_world(aws, function=False)
    before = {rule: targets(events, rule) for rule in rules}
    action = buffer_plan(async_sources=f"events:rule/uploads, sns:{TOPIC_ARN}, events:rule/nightly, s3:photos")
    impl = get_action(action.kind)
    assert "Not rewired (a human's call): s3:photos (an S3 notification" in action.text

    apply_twice(clients, action)

    assert ("sqs", BUFFER_ARN) in subscriptions(sns) and ("lambda", LIVE_ARN) not in subscriptions(sns)
    assert targets(events, "nightly") == [{"Id": "1", "Arn": BUFFER_ARN, "Input": '{"sweep": true}'}]
    queue = aws.client("sqs").get_queue_url(QueueName="medic-buffer-thumbnailer")["QueueUrl"]
    policy = aws.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"]
    assert [(s["Principal"]["Service"], s["Condition"]["ArnEquals"]["aws:SourceArn"])
            for s in json.loads(policy)["Statement"]] == [
        ("events.amazonaws.com", [rules["uploads"], rules["nightly"]]),
        ("sns.amazonaws.com", [TOPIC_ARN]),
    ]  # fmt: skip
    assert impl.read_live(clients, action) == {"buffered": True, "maximum_concurrency": 40}
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="lambda", Endpoint=LIVE_ARN)  # someone subscribed it again
    assert impl.read_live(clients, action)["buffered"] is False, "one producer still invokes the function"

    impl.rollback(clients, action)

    assert {rule: targets(events, rule) for rule in rules} == before
    assert ("lambda", LIVE_ARN) in subscriptions(sns) and ("sqs", BUFFER_ARN) not in subscriptions(sns)
    assert impl.read_live(clients, action) == action.before
    assert aws.client("sqs").list_queues(QueueNamePrefix="medic-buffer").get("QueueUrls", []) == []


def test_a_topic_gone_or_no_longer_feeding_the_function_reads_as_drift(aws: EmbeddedAWS, clients: AwsClients) -> None:
    sns = sns_world(aws)
    action = buffer_plan(async_sources=f"sns:{TOPIC_ARN}")
    impl = get_action(action.kind)
    [arn] = [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=TOPIC_ARN)["Subscriptions"]
             if s["Protocol"] == "lambda"]  # fmt: skip
    sns.unsubscribe(SubscriptionArn=arn)

    assert impl.read_live(clients, action) == {"buffered": None, "maximum_concurrency": None}
    with pytest.raises(ActionFailed, match=f"SNS topic {TOPIC_ARN} has no lambda subscription to {LIVE_ARN}"):
        impl.apply(clients, action)
    sns.delete_topic(TopicArn=TOPIC_ARN)
    assert impl.read_live(clients, action) == {"buffered": None, "maximum_concurrency": None}
    with pytest.raises(ActionFailed, match=f"SNS topic {TOPIC_ARN} no longer exists"):
        impl.apply(clients, action)
    assert aws.client("sqs").list_queues(QueueNamePrefix="medic-buffer").get("QueueUrls", []) == [], "nothing made"


# --- schedule_prewarm -----------------------------------------------------------------------------


def scheduled(aws: EmbeddedAWS, resource: str = "function:search:live") -> dict[str, tuple[str, dict[str, int]]]:
    found = aws.client("application-autoscaling").describe_scheduled_actions(
        ServiceNamespace="lambda", ResourceId=resource, ScalableDimension=PC_DIMENSION
    )["ScheduledActions"]
    return {a["ScheduledActionName"]: (a["Schedule"], a["ScalableTargetAction"]) for a in found}


def scalable_target(aws: EmbeddedAWS, resource: str = "function:search:live") -> tuple[int, int] | None:
    found = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="lambda", ResourceIds=[resource], ScalableDimension=PC_DIMENSION
    )["ScalableTargets"]
    return (found[0]["MinCapacity"], found[0]["MaxCapacity"]) if found else None


def prewarm_plan(facts: Facts, concurrency: int = 30) -> PlannedAction:
    params = {"concurrency": concurrency, "start_minute_of_day": 525, "duration_min": 60}
    [action] = get_action("schedule_prewarm").plan(Target.function("search", "live"), params, facts)
    return action


def test_a_prewarm_registers_a_target_schedules_up_and_down_and_rollback_removes_it_all(
    aws: EmbeddedAWS, clients: AwsClients, clock: ManualClock
) -> None:
    lam = make_function(aws, "search")
    action = prewarm_plan(Facts(function_name="search", qualifier="live", has_autoscaling=False, pc_requested=0))
    impl = get_action("schedule_prewarm")

    apply_twice(clients, action)

    assert scalable_target(aws) == (0, 30)
    assert scheduled(aws) == {
        "medic-prewarm-search-live-up": ("cron(45 8 * * ? *)", {"MinCapacity": 30, "MaxCapacity": 30}),
        "medic-prewarm-search-live-down": ("cron(45 9 * * ? *)", {"MinCapacity": 0, "MaxCapacity": 30}),
    }
    live = impl.read_live(clients, action)
    assert live == {"prewarm_concurrency": 30, "schedule": "cron(45 8 * * ? *)", "schedule_end": "cron(45 9 * * ? *)",
                    "min_capacity": 0, "max_capacity": 30}  # fmt: skip
    assert same(live, action.after)
    assert impl.wait(clients, action, clock, TIMEOUT_S) == live
    # 08:45 came: the "up" action raised the PC (moto does not run schedules; this is what AWS would do).
    lam.put_provisioned_concurrency_config(FunctionName="search", Qualifier="live", ProvisionedConcurrentExecutions=30)

    impl.rollback(clients, action)

    assert scheduled(aws) == {}
    assert scalable_target(aws) is None
    with pytest.raises(ClientError) as gone:
        lam.get_provisioned_concurrency_config(FunctionName="search", Qualifier="live")
    assert gone.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    assert same(impl.read_live(clients, action), action.before)


def test_a_prewarm_on_an_autoscaled_alias_restores_its_bounds(aws: EmbeddedAWS, clients: AwsClients) -> None:
    make_function(aws, "search")
    autoscaling = aws.client("application-autoscaling")
    autoscaling.register_scalable_target(ServiceNamespace="lambda", ResourceId="function:search:live",
                                         ScalableDimension=PC_DIMENSION, MinCapacity=10, MaxCapacity=50)  # fmt: skip
    facts = Facts(function_name="search", qualifier="live", has_autoscaling=True, autoscaling_min=10,
                  autoscaling_max=50, pc_requested=10)  # fmt: skip
    action = prewarm_plan(facts, concurrency=80)

    apply_twice(clients, action)

    assert scheduled(aws) == {
        "medic-prewarm-search-live-up": ("cron(45 8 * * ? *)", {"MinCapacity": 80, "MaxCapacity": 80}),
        "medic-prewarm-search-live-down": ("cron(45 9 * * ? *)", {"MinCapacity": 10, "MaxCapacity": 50}),
    }
    assert scalable_target(aws) == (10, 50)
    # 08:45 came: the "up" action set the bounds to 80–80.
    autoscaling.register_scalable_target(ServiceNamespace="lambda", ResourceId="function:search:live",
                                         ScalableDimension=PC_DIMENSION, MinCapacity=80, MaxCapacity=80)  # fmt: skip

    get_action("schedule_prewarm").rollback(clients, action)

    assert scheduled(aws) == {}
    assert scalable_target(aws) == (10, 50)


def test_an_existing_prewarm_reads_as_drift(aws: EmbeddedAWS, clients: AwsClients) -> None:
    make_function(aws, "search")
    facts = Facts(function_name="search", qualifier="live", has_autoscaling=False, pc_requested=0)
    get_action("schedule_prewarm").apply(clients, prewarm_plan(facts, concurrency=20))
    action = prewarm_plan(facts, concurrency=30)

    live = get_action("schedule_prewarm").read_live(clients, action)

    assert live["prewarm_concurrency"] == 20
    assert not same(live, action.before) and not same(live, action.after)
