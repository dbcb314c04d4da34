"""The function's configuration on Lambda and the concurrency around it: `GetFunction` (configuration, tags, reserved
concurrency and logging config together), the alias's version, the provisioned concurrency on the qualifier and on
the others, Application Auto Scaling's target and policies on the qualifier, and the account's settings (its limit
and what is left unreserved). Each reader fills its facts and names its source; failures are the caller's (`jobs`).
"""

from __future__ import annotations

from typing import Any, Final

from medic.aws import AwsClients
from medic.facts.model import DATABASE_TAG, SQS_BUFFER_TAG, VCPU_MB, Facts
from medic.facts.reports import default_log_group
from medic.planning.pool import minimum_unreserved

PC_DIMENSION: Final = "lambda:function:ProvisionedConcurrency"
FUNCTION_FACTS: Final = (
    "function_arn",
    "memory_mb",
    "timeout_s",
    "runtime",
    "architecture",
    "tags",
    "managed",
    "has_reserved_concurrency",
    "reserved_concurrency",
    "vcpus",
    "downstream_database",
    "is_db_consumer",
    "log_group",
    "log_format",
    "sqs_buffer_ready",
)
PC_FACTS: Final = ("pc_requested", "pc_allocated", "pc_available", "pc_status", "pc_status_reason")
AUTOSCALING_FACTS: Final = ("has_autoscaling", "autoscaling_min", "autoscaling_max", "target_utilization")
PC_ELSEWHERE_FACTS: Final = ("pc_qualifiers", "pc_on_other_qualifiers", "pc_version_taken")
ACCOUNT_FACTS: Final = ("account_limit", "unreserved_concurrency", "minimum_unreserved")


def function_config(
    clients: AwsClients, facts: Facts, name: str, qualifier: str | None, opt_in_tag: tuple[str, str]
) -> None:
    kwargs = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
    response = clients.lambda_.get_function(**kwargs)
    config = response["Configuration"]
    facts.function_arn = config.get("FunctionArn")
    facts.memory_mb = config.get("MemorySize")
    facts.timeout_s = config.get("Timeout")
    facts.runtime = config.get("Runtime")
    facts.architecture = (config.get("Architectures") or ["x86_64"])[0]
    logging = config.get("LoggingConfig") or {}
    facts.log_group = str(logging.get("LogGroup") or default_log_group(name))
    facts.log_format = str(logging.get("LogFormat") or "Text")
    tags = dict(response.get("Tags") or {})
    facts.tags = tags
    key, value = opt_in_tag
    facts.managed = tags.get(key) == value
    reserved = (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
    facts.has_reserved_concurrency = reserved is not None
    facts.reserved_concurrency = int(reserved) if reserved is not None else None
    if facts.memory_mb:
        facts.vcpus = round(facts.memory_mb / VCPU_MB, 3)
    facts.sqs_buffer_ready = tags.get(SQS_BUFFER_TAG[0]) == SQS_BUFFER_TAG[1]
    facts.downstream_database = tags.get(DATABASE_TAG)
    facts.is_db_consumer = facts.downstream_database is not None
    for fact in FUNCTION_FACTS:
        facts.sources[fact] = "lambda:GetFunction"
    facts.sources["log_group"] = facts.sources["log_format"] = "lambda:GetFunction LoggingConfig"


def alias(clients: AwsClients, facts: Facts, name: str, qualifier: str) -> None:
    if qualifier.isdigit() or qualifier == "$LATEST":
        facts.alias_version = qualifier
    else:
        facts.alias_version = clients.lambda_.get_alias(FunctionName=name, Name=qualifier)["FunctionVersion"]
    facts.sources["alias_version"] = "lambda:GetAlias"


def provisioned(clients: AwsClients, facts: Facts, name: str, qualifier: str) -> None:
    client = clients.lambda_
    try:
        config = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
    except client.exceptions.ProvisionedConcurrencyConfigNotFoundException:
        facts.pc_requested = facts.pc_allocated = facts.pc_available = 0
        facts.pc_status = "NONE"
    else:
        facts.pc_requested = config.get("RequestedProvisionedConcurrentExecutions", 0)
        facts.pc_allocated = config.get("AllocatedProvisionedConcurrentExecutions", 0)
        facts.pc_available = config.get("AvailableProvisionedConcurrentExecutions", 0)
        facts.pc_status = config.get("Status", "UNKNOWN")
        facts.pc_status_reason = config.get("StatusReason")
    for fact in PC_FACTS:
        facts.sources[fact] = "lambda:GetProvisionedConcurrencyConfig"


def provisioned_elsewhere(
    clients: AwsClients, facts: Facts, name: str, qualifier: str | None, aliases: list[Any] | None = None
) -> None:
    """PC configured on other qualifiers than the one the traffic hits (a misconfiguration of its own). `aliases`:
    the function's aliases when they were just listed whole (the traffic's qualifier), else they are listed here."""
    configs: list[Any] = []
    paginator = clients.lambda_.get_paginator("list_provisioned_concurrency_configs")
    for page in paginator.paginate(FunctionName=name):
        configs.extend(page.get("ProvisionedConcurrencyConfigs", []))
    described, elsewhere, others = [], 0, []
    for config in configs:
        other = str(config.get("FunctionArn", "")).rsplit(":", 1)[-1]
        requested = int(config.get("RequestedProvisionedConcurrentExecutions", 0))
        described.append(f"{other}:{requested}({config.get('Status', '?')})")
        if other != qualifier:
            elsewhere += requested
            others.append(other)
    facts.pc_qualifiers = ", ".join(sorted(described)) or "none"
    facts.pc_on_other_qualifiers = elsewhere
    source = "lambda:ListProvisionedConcurrencyConfigs"
    facts.sources["pc_qualifiers"] = facts.sources["pc_on_other_qualifiers"] = source
    if qualifier and qualifier != "$LATEST":
        # "Each version of a function can only have one provisioned concurrency configuration" (Lambda developer
        # guide): PC on another alias of the same version means AWS refuses PC on this one.
        versions: dict[str, str] = {}
        pages = (
            [{"Aliases": aliases}]
            if aliases is not None
            else (clients.lambda_.get_paginator("list_aliases").paginate(FunctionName=name))
        )
        for listed in pages:
            versions.update({alias["Name"]: str(alias["FunctionVersion"]) for alias in listed.get("Aliases", [])})
        mine = versions.get(qualifier, qualifier)
        facts.pc_version_taken = any(versions.get(other, other) == mine for other in others)
        facts.sources["pc_version_taken"] = f"{source} + lambda:ListAliases (version {mine})"


def autoscaling(clients: AwsClients, facts: Facts, name: str, qualifier: str) -> None:
    client = clients.autoscaling
    resource_id = f"function:{name}:{qualifier}"
    targets = client.describe_scalable_targets(
        ServiceNamespace="lambda", ResourceIds=[resource_id], ScalableDimension=PC_DIMENSION
    )["ScalableTargets"]
    facts.has_autoscaling = bool(targets)
    if targets:
        facts.autoscaling_min = targets[0]["MinCapacity"]
        facts.autoscaling_max = targets[0]["MaxCapacity"]
        policies = client.describe_scaling_policies(
            ServiceNamespace="lambda", ResourceId=resource_id, ScalableDimension=PC_DIMENSION
        )["ScalingPolicies"]
        for policy in policies:
            tracking = policy.get("TargetTrackingScalingPolicyConfiguration")
            if tracking:
                facts.target_utilization = float(tracking["TargetValue"])
    for fact in AUTOSCALING_FACTS:
        facts.sources[fact] = "application-autoscaling:DescribeScalableTargets/DescribeScalingPolicies"


def account(clients: AwsClients, facts: Facts) -> None:
    limits = clients.lambda_.get_account_settings()["AccountLimit"]
    facts.account_limit = limits.get("ConcurrentExecutions")
    facts.unreserved_concurrency = limits.get("UnreservedConcurrentExecutions")
    facts.sources["account_limit"] = facts.sources["unreserved_concurrency"] = "lambda:GetAccountSettings"
    if facts.account_limit is not None:
        facts.minimum_unreserved = minimum_unreserved(int(facts.account_limit))
        facts.sources["minimum_unreserved"] = "min(100, account_limit): what AWS keeps unreserved (medic.planning.pool)"
