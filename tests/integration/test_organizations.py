"""Organizations: an alarm in a member account is triaged, approved, applied and verified there, on the embedded world.

moto keeps one backend per account, and the credentials of an assumed role act in the role's account: a function
built with a member account's credentials lives in that account only. Medic's own resources (tables, queue, the
actions role) are in the central account, which also holds a decoy: the same function with another provisioned
concurrency. docs/organizations.md describes the flow; templates/member-account.yaml the member side.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from medic import aws as medic_aws
from medic.aws import AwsClients
from medic.errors import ConfigError
from medic.runtime import Runtime, install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import ACCOUNT, APPROVER, Simulation, Story, build_world
from medic_tools.world import alarms, moto_ext
from medic_tools.world.server import EmbeddedAWS

FLOOR = Path(__file__).resolve().parents[2] / "scenarios" / "spillover-fixed-floor.yaml"
MEMBER = "222222222222"
REMEDIATION, READ_ONLY = "medic-remediation", "medic-readonly"
DECOY_PC = 5  # the central account's checkout:live; the member's starts at the scenario's 20


def _member_clients(sim: Simulation) -> AwsClients:
    """Clients acting in the member account (a role there, as an administrator would build the world with)."""
    clients, _ = sim.clients.assume(f"arn:aws:iam::{MEMBER}:role/world-builder", "world-builder")
    return clients


def _runtime(sim: Simulation, **settings: object) -> Runtime:
    """Medic's runtime for the simulation, with Medic's account and the member roles configured (or not)."""
    assert sim.runtime is not None
    runtime = Runtime(
        sim.runtime.settings.model_copy(update=settings), clients=sim.clients, clock=sim.clock, slack=sim.console,
        metrics_stream=io.StringIO(),
    )  # fmt: skip
    install(runtime)
    sim.runtime = runtime
    return runtime


def _alarm_in(clients: AwsClients, sim: Simulation, account: str) -> list[dict[str, object]]:
    """The scenario's alarm, created in `account` and evaluated there: the events EventBridge would forward."""
    spec = sim.scenario.alarm
    assert spec is not None
    clients.cloudwatch.put_metric_alarm(
        AlarmName=spec.name, Namespace=spec.namespace, MetricName=spec.metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in spec.dimensions.items()], Period=spec.period,
        EvaluationPeriods=spec.evaluation_periods, Threshold=spec.threshold, ComparisonOperator=spec.comparison,
        Statistic=spec.stat,  # type: ignore[arg-type]
    )  # fmt: skip
    events = alarms.evaluate_alarms(sim.clock.now(), account, sim.region, names=[spec.name])
    return [event for event in events if event["detail"]["state"]["value"] == "ALARM"]


def _pc(clients: AwsClients) -> int:
    config = clients.lambda_.get_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live")
    return int(config["RequestedProvisionedConcurrentExecutions"])


@pytest.fixture
def organization(aws: EmbeddedAWS) -> Iterator[tuple[Simulation, AwsClients]]:
    """Medic in the central account (with a decoy checkout:live), the scenario's world in the member account, and
    the member roles templates/member-account.yaml creates."""
    scenario = load_scenario(FLOOR)
    sim = Simulation(scenario, str(FLOOR), aws.endpoint_url, Story(None))
    sim.setup()  # Medic's resources and the scenario's world, in the central account
    sim.clients.lambda_.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=DECOY_PC
    )
    member = _member_clients(sim)
    moto_ext.set_account_concurrency_limit(scenario.world.account_concurrency_limit, MEMBER, sim.region)
    build_world(member, scenario, sim.clock, Story(None))
    central = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": central}],
    }
    for name in (REMEDIATION, READ_ONLY):
        member.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    yield sim, member
    install(None)


def test_an_alarm_in_a_member_account_is_remediated_there_and_not_in_medics_account(
    organization: tuple[Simulation, AwsClients],
) -> None:
    sim, member = organization
    runtime = _runtime(sim, account_id=ACCOUNT, member_role_name=REMEDIATION, member_read_role_name=READ_ONLY)
    [event] = _alarm_in(member, sim, MEMBER)
    assert event["account"] == MEMBER

    # Triage read the member account (through its read-only role): the floor it found is the member's 20.
    [plan] = sim.triage([event])
    assert (plan.account, plan.status, plan.diagnosis) == (MEMBER, "PROPOSED", "pc_floor_too_low")
    [action] = plan.changes
    assert action.before == {"provisioned_concurrency": 20}
    after = int(action.after["provisioned_concurrency"])
    assert after > 20

    sim.click(plan, "approve")
    sim.drain_executor()

    applied = runtime.ledger.get(plan.id)
    assert applied is not None and applied.status == "APPLIED"
    assert _pc(member) == after  # the change landed in the member account...
    assert _pc(sim.clients) == DECOY_PC  # ...and not on the same-named function in Medic's own account

    # The session is in the log: the member's remediation role, chained from the actions role, named after the plan,
    # the approver as its SourceIdentity.
    events = runtime.ledger.events(plan.id)
    [session] = [e.data for e in events if e.kind == "session"]
    assert session["role_arn"] == f"arn:aws:iam::{MEMBER}:role/{REMEDIATION}"
    assert session["account"] == MEMBER
    assert session["assumed_role_arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/{REMEDIATION}/{plan.id}"
    assert (session["session_name"], session["source_identity"]) == (plan.id, APPROVER)
    assert session["via"]["role_arn"] == sim.infra["actions_role_arn"]
    assert session["via"]["assumed_role_arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/medic-actions/{plan.id}"
    assert "secret" not in json.dumps(session).lower()
    call = next(e for e in events if e.kind == "aws_call")
    assert events.index(call) > events.index(next(e for e in events if e.kind == "session"))

    # The verifier reads the alarm and its metric in the member account: back to OK there → VERIFIED.
    assert sim.scenario.after_fix is not None
    [fix] = sim.scenario.after_fix.metrics
    begin = datetime.fromtimestamp(-(-int(sim.clock.now().timestamp()) // fix.period) * fix.period, tz=UTC)
    member.cloudwatch.put_metric_data(Namespace=fix.namespace, MetricData=[{
        "MetricName": fix.name, "Value": value, "Timestamp": begin + timedelta(seconds=fix.period * (i + 0.5)),
        "Dimensions": [{"Name": k, "Value": v} for k, v in fix.dimensions.items()],
    } for i, value in enumerate(fix.values)])  # fmt: skip
    sim.clock.set(begin + timedelta(seconds=fix.period * len(fix.values)))
    alarms.evaluate_alarms(sim.clock.now(), MEMBER, sim.region)
    assert sim.handlers["verifier"]({"source": "aws.events"}, None)["outcomes"] == {plan.id: "VERIFIED"}


def test_an_alarm_of_another_account_is_refused_without_member_roles(
    organization: tuple[Simulation, AwsClients],
) -> None:
    sim, member = organization
    runtime = _runtime(sim, account_id=ACCOUNT)  # Medic knows its account, but cross-account is off
    [event] = _alarm_in(member, sim, MEMBER)

    with pytest.raises(ConfigError, match=f"account {MEMBER}"):
        sim.handlers["triage"](event, None)  # propagates: Lambda retries, then the event waits in TriageDLQ
    assert runtime.ledger.all_plans() == []
    assert _pc(sim.clients) == DECOY_PC and _pc(member) == 20  # neither account was touched


def test_the_read_only_session_is_assumed_once_and_renewed_before_it_expires(
    organization: tuple[Simulation, AwsClients], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, _ = organization
    role = f"arn:aws:iam::{MEMBER}:role/{READ_ONLY}"
    first = sim.clients.reader(role, "medic-read")
    assert sim.clients.reader(role, "medic-read") is first
    assert first.lambda_.get_function(FunctionName="checkout")["Configuration"]["FunctionArn"].startswith(
        f"arn:aws:lambda:{sim.region}:{MEMBER}:function:checkout"
    )
    monkeypatch.setattr(medic_aws, "READER_REFRESH_S", 3600)  # every session now counts as about to expire
    assert sim.clients.reader(role, "medic-read") is not first


def test_medic_in_a_single_account_acts_as_itself(organization: tuple[Simulation, AwsClients]) -> None:
    sim, _ = organization
    runtime = _runtime(sim, account_id="", member_role_name=REMEDIATION, member_read_role_name=READ_ONLY)
    # Without Medic's account (a single-account deployment, the simulator), every alarm is read and changed locally.
    assert medic_aws.member_role_arn(runtime.settings.account_id, MEMBER, REMEDIATION) is None
    assert medic_aws.member_role_arn(ACCOUNT, ACCOUNT, REMEDIATION) is None
    assert medic_aws.member_role_arn(ACCOUNT, MEMBER, REMEDIATION, "aws-cn") == (
        f"arn:aws-cn:iam::{MEMBER}:role/{REMEDIATION}"
    )
    assert medic_aws.partition_of(f"arn:aws-us-gov:cloudwatch:us-gov-west-1:{MEMBER}:alarm:x") == "aws-us-gov"
