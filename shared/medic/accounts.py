"""Which AWS clients a plan is read and changed with: Medic's own account, or a member account of the organization
through its read-only or remediation role (docs/organizations.md)."""

from __future__ import annotations

from typing import Any

from medic.aws import AwsClients, member_role_arn, partition_of
from medic.facts import FactCollector
from medic.plan import Plan
from medic.runtime import Runtime


def action_clients(plan: Plan, rt: Runtime) -> AwsClients:
    """The clients the plan's changes are made with: the actions role assumed for this plan (session = plan id,
    SourceIdentity = the approver, both in CloudTrail), or the runtime's own clients when no role is set. A plan in
    another account of the organization goes one hop further, into that account's remediation role (which trusts the
    actions role only): the `session` event then names the member session, its account, and the first hop (`via`)."""
    approver = plan.decided_by[0] if plan.decided_by else "medic"
    clients, session = rt.clients, dict[str, Any]()
    if rt.settings.actions_role_arn:
        clients, session = rt.clients.assume(rt.settings.actions_role_arn, plan.id, approver)
    member = member_role_arn(
        rt.settings.account_id, plan.account, rt.settings.member_role_name, partition_of(plan.alarm_arn)
    )
    if member is not None:
        clients, hop = clients.assume(member, plan.id, approver)
        session = {**hop, "account": plan.account, **({"via": session} if session else {})}
    if session:
        rt.ledger.append(plan.id, "session", session, rt.clock.now())
    return clients


#: The session name of the read-only role in member accounts (CloudTrail in the member account: Medic read this).
READ_SESSION_NAME = "medic-read"


def target_clients(plan: Plan, rt: Runtime) -> AwsClients:
    """The clients that read the plan's account: the runtime's own in Medic's account; in another account of the
    organization, that account's read-only role (assumed once per environment, renewed before it expires)."""
    role = member_role_arn(
        rt.settings.account_id,
        plan.account,
        rt.settings.member_read_role_name,
        partition_of(plan.alarm_arn),
        setting="MEDIC_MEMBER_READ_ROLE_NAME",
    )
    return rt.clients if role is None else rt.clients.reader(role, READ_SESSION_NAME)


def fact_collector(plan: Plan, rt: Runtime) -> FactCollector:
    """The runtime's collector, or, for a plan in a member account, one reading it through `target_clients`."""
    clients = target_clients(plan, rt)
    return rt.collector if clients is rt.clients else FactCollector(clients, rt.settings.opt_in_tag)


def member_graph_client(plan: Plan, rt: Runtime) -> Any:
    """CloudWatch in the plan's member account for the card's graph, with slack.graph's one-attempt, short-timeout
    config (None in Medic's own account: the graph makes its own client)."""
    clients = target_clients(plan, rt)
    if clients is rt.clients:
        return None
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
    return clients.with_config(config).cloudwatch
