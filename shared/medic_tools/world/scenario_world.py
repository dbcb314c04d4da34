"""Building a scenario's world in the embedded AWS: Medic's own resources (as template.yaml declares them), then the
scenario's functions, aliases, event sources, rules, databases, REPORT lines and metrics; with workloads, the modelled
window (`medic_tools.world.workload`). Used by `medic_tools.simulate`; a developer tool, never shipped."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from medic_tools.simulation_constants import ACCOUNT

if TYPE_CHECKING:
    from medic.aws import AwsClients
    from medic.clock import ManualClock
    from medic_tools.scenario import MetricSpec, Scenario
    from medic_tools.story import Story
    from medic_tools.world.workload.account import ModelledAccount


def build_medic_infra(clients: AwsClients) -> dict[str, str]:
    """Medic's own resources, as template.yaml declares them."""
    ddb = clients.dynamodb
    ddb.create_table(
        TableName="medic-plans",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("plan_id", "state", "updated_at")],
        KeySchema=[{"AttributeName": "plan_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_state",
                "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [
                    {"AttributeName": "state", "KeyType": "HASH"},
                    {"AttributeName": "updated_at", "KeyType": "RANGE"},
                ],
            },
        ],
    )
    ddb.create_table(
        TableName="medic-events",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "plan_id", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "plan_id", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
    )
    sqs = clients.sqs
    dlq = sqs.create_queue(QueueName="medic-executor-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="medic-executor",
        Attributes={
            "VisibilityTimeout": "1800",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
        },
    )["QueueUrl"]
    secret = clients.secrets.create_secret(Name="medic/chatops-signing-secret", SecretString=secrets.token_hex(16))
    executor = {"AWS": f"arn:aws:iam::{ACCOUNT}:role/medic-executor"}
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"], "Principal": executor}
        ],
    }
    role = clients.client("iam").create_role(RoleName="medic-actions", AssumeRolePolicyDocument=json.dumps(trust))
    return {
        "plans": "medic-plans",
        "events": "medic-events",
        "queue": queue,
        "signing_secret_arn": secret["ARN"],
        "actions_role_arn": role["Role"]["Arn"],
    }


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def build_world(clients: AwsClients, scenario: Scenario, clock: ManualClock, story: Story) -> ModelledAccount | None:
    """Build the scenario's world; with workloads, model the window and write its series and REPORT lines."""
    from medic_tools.world.workload import build

    world = scenario.world
    role = clients.client("iam").create_role(
        RoleName="world-function-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    lam, aas = clients.lambda_, clients.autoscaling
    code = _zip()
    story.write(f"account {ACCOUNT} in {world.region}: concurrency limit {world.account_concurrency_limit}")
    for spec in world.functions:
        lam.create_function(
            FunctionName=spec.name,
            Runtime=spec.runtime,  # type: ignore[arg-type]
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": code},
            MemorySize=spec.memory_mb,
            Timeout=spec.timeout_s,
            Tags=spec.tags,
            **build.logging_config(spec),
        )
        versions = build.publish_versions(lam, spec)
        line = f"function {spec.name}: {spec.memory_mb} MB, timeout {spec.timeout_s}s, tags {spec.tags or '{}'}"
        if spec.logging is not None:
            line += f", logs {spec.logging.format} in {spec.logging.log_group or f'/aws/lambda/{spec.name}'}"
        if spec.reserved_concurrency is not None:
            lam.put_function_concurrency(FunctionName=spec.name, ReservedConcurrentExecutions=spec.reserved_concurrency)
            line += f", reserved concurrency {spec.reserved_concurrency}"
        story.write(line)
        for alias in spec.aliases:
            kwargs = build.alias_kwargs(spec, alias, versions)
            lam.create_alias(**kwargs)
            text = f"  alias {alias.name} → version {kwargs['FunctionVersion']}"
            if alias.routing:
                text += f" (+ {', '.join(f'version {v} at {w:.0%}' for v, w in alias.routing.items())})"
            if alias.provisioned_concurrency:
                from medic_tools.world import moto_ext

                if alias.pc_status == "IN_PROGRESS":
                    if alias.pc_allocated:  # what was allocated before: READY at once, then the stuck request
                        lam.put_provisioned_concurrency_config(
                            FunctionName=spec.name,
                            Qualifier=alias.name,
                            ProvisionedConcurrentExecutions=alias.pc_allocated,
                        )
                        lam.get_provisioned_concurrency_config(FunctionName=spec.name, Qualifier=alias.name)
                    moto_ext.set_provisioned_concurrency_ready_delay(24 * 3600)  # reset with the world
                elif alias.pc_status == "FAILED":
                    moto_ext.inject_provisioned_concurrency_failure(
                        spec.name, alias.name, alias.pc_status_reason, region=world.region
                    )
                lam.put_provisioned_concurrency_config(
                    FunctionName=spec.name,
                    Qualifier=alias.name,
                    ProvisionedConcurrentExecutions=alias.provisioned_concurrency,
                )
                text += f", provisioned concurrency {alias.provisioned_concurrency} ({alias.pc_status})"
            if alias.autoscaling:
                resource = f"function:{spec.name}:{alias.name}"
                aas.register_scalable_target(
                    ServiceNamespace="lambda",
                    ResourceId=resource,
                    ScalableDimension="lambda:function:ProvisionedConcurrency",
                    MinCapacity=alias.autoscaling.min,
                    MaxCapacity=alias.autoscaling.max,
                )
                aas.put_scaling_policy(
                    PolicyName=f"{spec.name}-{alias.name}-utilization",
                    ServiceNamespace="lambda",
                    ResourceId=resource,
                    ScalableDimension="lambda:function:ProvisionedConcurrency",
                    PolicyType="TargetTrackingScaling",
                    TargetTrackingScalingPolicyConfiguration={
                        "TargetValue": alias.autoscaling.target_utilization,
                        "PredefinedMetricSpecification": {
                            "PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"
                        },
                    },
                )
                text += (
                    f", autoscaling min {alias.autoscaling.min} max {alias.autoscaling.max} "
                    f"(target tracking at {alias.autoscaling.target_utilization:.0%})"
                )
                window_start = clock.now() - timedelta(minutes=world.window_min)
                for scheduled in build.scheduled_actions(aas, spec, alias, window_start):
                    text += f", scheduled {scheduled}"
            story.write(text)
        for source in spec.event_sources:
            queue = clients.sqs.create_queue(QueueName=source.queue)["QueueUrl"]
            arn = clients.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
            kwargs = {"EventSourceArn": arn["QueueArn"], "FunctionName": spec.name, "BatchSize": source.batch_size}
            if source.maximum_concurrency:
                kwargs["ScalingConfig"] = {"MaximumConcurrency": source.maximum_concurrency}
            lam.create_event_source_mapping(**kwargs)
            story.write(f"  SQS event source {source.queue} (maximum concurrency {source.maximum_concurrency})")
        for invoker in spec.invoked_by:
            events = clients.client("events")
            rule_arn = events.put_rule(Name=invoker.eventbridge_rule, EventPattern=json.dumps(invoker.event_pattern))
            function_arn = lam.get_function(FunctionName=spec.name)["Configuration"]["FunctionArn"]
            events.put_targets(Rule=invoker.eventbridge_rule, Targets=[{"Id": spec.name, "Arn": function_arn}])
            lam.add_permission(
                FunctionName=spec.name,
                StatementId=f"events-{invoker.eventbridge_rule}",
                Action="lambda:InvokeFunction",
                Principal="events.amazonaws.com",
                SourceArn=rule_arn["RuleArn"],
            )
            story.write(f"  invoked asynchronously by EventBridge rule {invoker.eventbridge_rule}")
        if spec.invocations:
            _write_report_lines(clients, spec.name, spec.memory_mb, spec.invocations, clock)
    for database in world.databases:
        _build_database(clients, database)
        story.write(
            f"database {database.id}: max_connections {database.max_connections}, "
            f"consumers {', '.join(database.consumers) or 'none'}"
        )
    for metric in world.metrics:
        put_metric(clients, metric, end=clock.now())
        story.write(
            f"metric {metric.namespace} {metric.name} {metric.dimensions} ({metric.stat}, {metric.period}s): "
            f"{', '.join(f'{v:g}' for v in metric.values)}"
        )
    if not world.has_workload:
        return None
    account = build.model_world(clients, world, window_end=clock.now())
    story.write(f"workload model: {world.window_min} minutes to {clock.now():%H:%M} UTC (docs/WORKLOAD.md)")
    for line in account.summary():
        story.write(f"  {line}")
    for change in account.synced:
        story.write(f"  provisioned concurrency at the window's end (autoscaling): {change}")
    return account


def _build_database(clients: AwsClients, database: Any) -> None:
    rds = clients.client("rds")
    group = f"{database.id}-params"
    family = "postgres16" if database.engine == "postgres" else f"{database.engine}8.0"
    rds.create_db_parameter_group(DBParameterGroupName=group, DBParameterGroupFamily=family, Description="world")
    rds.modify_db_parameter_group(
        DBParameterGroupName=group,
        Parameters=[
            {
                "ParameterName": "max_connections",
                "ParameterValue": str(database.max_connections),
                "ApplyMethod": "pending-reboot",
            }
        ],
    )
    rds.create_db_instance(
        DBInstanceIdentifier=database.id,
        Engine=database.engine,
        DBInstanceClass=database.instance_class,
        AllocatedStorage=20,
        MasterUsername="medic",
        MasterUserPassword=secrets.token_hex(12),
        DBParameterGroupName=group,
    )
    for consumer in database.consumers:
        arn = clients.lambda_.get_function(FunctionName=consumer)["Configuration"]["FunctionArn"]
        clients.lambda_.tag_resource(Resource=arn, Tags={"medic:database": database.id})


def _write_report_lines(clients: AwsClients, name: str, memory_mb: int, spec: Any, clock: ManualClock) -> None:
    logs = clients.client("logs")
    group = f"/aws/lambda/{name}"
    logs.create_log_group(logGroupName=group)
    from medic_tools.world.moto_lambda_logging import log_stream_name

    # Named as Lambda names an environment's stream (the hand-written lines do not say which version ran: $LATEST).
    stream = log_stream_name(name, "$LATEST", "0" * 32, clock.now().date(), log_group=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    base = int((clock.now() - timedelta(minutes=10)).timestamp() * 1000)
    used = spec.memory_used_mb or memory_mb // 2
    events = []
    for index in range(spec.count):
        cold = index < spec.cold
        init = f"\tInit Duration: {spec.init_ms:.2f} ms" if cold else ""
        duration = spec.cold_duration_ms if cold and spec.cold_duration_ms is not None else spec.duration_ms
        events.append(
            {
                "timestamp": base + index * 100,
                "message": (
                    f"REPORT RequestId: {index:08d}-0000-4000-8000-000000000000\tDuration: {duration:.2f} ms"
                    f"\tBilled Duration: {int(duration) + 1} ms\tMemory Size: {memory_mb} MB"
                    f"\tMax Memory Used: {used} MB{init}"
                ),
            }
        )
    for chunk in range(0, len(events), 1000):
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[chunk : chunk + 1000])


def put_metric(
    clients: AwsClients, metric: MetricSpec, *, end: datetime | None = None, begin: datetime | None = None
) -> None:
    """One datapoint per period, in the middle of its period; the last period ends at `end` (or starts at `begin`)."""
    period = timedelta(seconds=metric.period)
    count = len(metric.values)
    first = begin if begin is not None else (end or datetime.now(UTC)) - count * period
    data = []
    for index, value in enumerate(metric.values):
        datum: dict[str, Any] = {
            "MetricName": metric.name,
            "Value": value,
            "Timestamp": first + index * period + period / 2,
            "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions.items()],
        }
        if metric.unit:
            datum["Unit"] = metric.unit
        data.append(datum)
    for chunk in range(0, len(data), 500):
        clients.cloudwatch.put_metric_data(Namespace=metric.namespace, MetricData=data[chunk : chunk + 500])  # type: ignore[arg-type]
