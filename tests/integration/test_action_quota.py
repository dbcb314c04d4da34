"""request_quota_increase against the embedded AWS: one Service Quotas request per remediation, never a rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from medic.actions import get_action
from medic.actions.base import PlannedAction
from medic.actions.quota import RequestQuotaIncrease
from medic.alarms.signals import Target
from medic.aws import AwsClients
from medic.clock import ManualClock
from medic.errors import ActionFailed, GuardrailRefused
from medic.facts import Facts
from medic_tools.world import moto_ext, moto_quotas
from medic_tools.world.server import EmbeddedAWS

LAMBDA = {"ServiceCode": "lambda", "QuotaCode": "L-B99A9384"}
CHECKOUT = Target(kind="function", function_name="checkout", qualifier="live")
ACTION = RequestQuotaIncrease()


def planned(desired: Any = 2000, limit: int | None = 1000) -> PlannedAction:
    (action,) = ACTION.plan(CHECKOUT, {"concurrency": desired}, Facts(account_limit=limit))
    return action


def history(aws: EmbeddedAWS) -> list[tuple[str, float, str]]:
    requests = aws.client("service-quotas").list_requested_service_quota_change_history_by_quota(**LAMBDA)
    return [(r["Id"], r["DesiredValue"], r["Status"]) for r in requests["RequestedQuotas"]]


@pytest.fixture
def clients(aws: EmbeddedAWS) -> AwsClients:
    """Medic's own clients, pointed at the embedded AWS by the environment the `aws` fixture sets."""
    return AwsClients(region="us-east-1")


def test_it_is_registered_as_an_action_a_human_must_approve() -> None:
    action = get_action("request_quota_increase")

    assert isinstance(action, RequestQuotaIncrease)
    assert (action.max_mode, action.params, action.changes_aws) == ("approve", ("concurrency",), True)
    assert action.permissions == (
        "servicequotas:GetServiceQuota",
        "servicequotas:RequestServiceQuotaIncrease",
        "servicequotas:ListRequestedServiceQuotaChangeHistoryByQuota",
    )


def test_the_plan_raises_the_account_limit_to_the_whole_number_asked_for() -> None:
    action = planned(1999.2)

    assert action.model_dump(exclude={"text"}) == {
        "kind": "request_quota_increase",
        "target": "account",
        "function_name": None,
        "qualifier": None,
        "primary": "account_concurrency_limit",
        "before": {"account_concurrency_limit": 1000},
        "after": {"account_concurrency_limit": 2000},
        "clamps": [],
        "applied": False,
        "observed_after": {},
        "request_ids": [],
        "resource": {"service_code": "lambda", "quota_code": "L-B99A9384"},
        "cost_monthly_usd": None,
        "cost_basis": "",
    }
    assert "1000 → 2000" in action.text and "L-B99A9384" in action.text


def test_no_plan_without_a_known_limit() -> None:
    with pytest.raises(GuardrailRefused) as refused:
        planned(limit=None)

    assert (refused.value.guard, refused.value.observed) == ("account_limit", None)


@pytest.mark.parametrize("desired", [1000, 999.5, 10])
def test_no_plan_that_does_not_increase_the_limit(desired: float) -> None:
    with pytest.raises(GuardrailRefused) as refused:
        planned(desired)

    assert (refused.value.guard, refused.value.limit, refused.value.observed) == (
        "quota_increase",
        "> 1000",
        1000 if desired > 10 else 10,
    )


def test_no_plan_for_an_infinite_limit() -> None:
    with pytest.raises(GuardrailRefused) as refused:
        planned(float("inf"))

    assert refused.value.guard == "valid_value"


def test_read_live_is_the_applied_quota(aws: EmbeddedAWS, clients: AwsClients) -> None:
    action = planned()

    assert ACTION.read_live(clients, action) == {"account_concurrency_limit": 1000}
    moto_ext.set_account_concurrency_limit(1200)
    assert ACTION.read_live(clients, action) == {"account_concurrency_limit": 1200}


def test_apply_files_one_request_and_read_live_then_sees_the_change_made(aws: EmbeddedAWS, clients: AwsClients) -> None:
    action = planned()

    request_id = ACTION.apply(clients, action)

    assert history(aws) == [(request_id, 2000.0, "PENDING")]
    assert action.resource["request_id"] == request_id
    # The executor compares read_live with `after`: an open request is the change already made.
    assert ACTION.read_live(clients, action) == action.after


def test_applying_twice_files_one_request(aws: EmbeddedAWS, clients: AwsClients) -> None:
    first = ACTION.apply(clients, planned())
    again = planned()

    second = ACTION.apply(clients, again)

    assert second == first
    assert again.resource["request_id"] == first
    assert history(aws) == [(first, 2000.0, "PENDING")]


def test_a_request_someone_else_opened_is_drift(aws: EmbeddedAWS, clients: AwsClients) -> None:
    aws.client("service-quotas").request_service_quota_increase(**LAMBDA, DesiredValue=1500)
    action = planned(2000)

    live = ACTION.read_live(clients, action)

    assert live == {"account_concurrency_limit": 1500}
    assert live not in (action.before, action.after)


def test_wait_reports_the_pending_request_at_once(aws: EmbeddedAWS, clients: AwsClients) -> None:
    action = planned()
    request_id = ACTION.apply(clients, action)
    clock = ManualClock(datetime(2026, 11, 22, 5, 0, tzinfo=UTC))

    observed = ACTION.wait(clients, action, clock, timeout_s=600)

    assert observed == {"account_concurrency_limit": 1000, "request_status": "PENDING", "request_id": request_id}
    assert clock.now() == datetime(2026, 11, 22, 5, 0, tzinfo=UTC)  # it never sleeps


def test_wait_finds_the_open_request_when_apply_was_not_recorded(aws: EmbeddedAWS, clients: AwsClients) -> None:
    request_id = ACTION.apply(clients, planned())
    clock = ManualClock(datetime(2026, 11, 22, 5, 0, tzinfo=UTC))

    observed = ACTION.wait(clients, planned(), clock, timeout_s=600)

    assert observed == {"account_concurrency_limit": 1000, "request_status": "PENDING", "request_id": request_id}


def test_once_approved_the_quota_is_the_new_limit(aws: EmbeddedAWS, clients: AwsClients) -> None:
    action = planned()
    request_id = ACTION.apply(clients, action)

    moto_quotas.resolve_quota_request(request_id)

    clock = ManualClock(datetime(2026, 11, 22, 5, 0, tzinfo=UTC))
    assert ACTION.wait(clients, action, clock, timeout_s=0) == {
        "account_concurrency_limit": 2000,
        "request_status": "APPROVED",
        "request_id": request_id,
    }
    assert ACTION.read_live(clients, action) == action.after
    assert aws.client("lambda").get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 2000


def test_after_a_denial_the_next_plan_files_a_new_request(aws: EmbeddedAWS, clients: AwsClients) -> None:
    denied = ACTION.apply(clients, planned())
    moto_quotas.resolve_quota_request(denied, "DENIED")
    action = planned()

    assert ACTION.read_live(clients, action) == action.before
    fresh = ACTION.apply(clients, action)

    assert fresh != denied
    assert history(aws) == [(denied, 2000.0, "DENIED"), (fresh, 2000.0, "PENDING")]


def approved(request_id: str, days_ago: float = 0) -> None:
    """AWS approves the request; `days_ago` moves the decision into the past."""
    moto_quotas.resolve_quota_request(request_id)
    if days_ago:
        _, request = moto_quotas._find(request_id)
        request.last_updated = datetime.now(UTC) - timedelta(days=days_ago)


def test_a_recent_approval_of_at_least_the_desired_value_is_the_change_made(
    aws: EmbeddedAWS, clients: AwsClients
) -> None:
    earlier = ACTION.apply(clients, planned(2500))
    approved(earlier, days_ago=29)
    action = planned(2000, limit=1000)  # planned before the approval was applied

    assert ACTION.read_live(clients, action) == action.after
    assert ACTION.apply(clients, action) == earlier
    assert action.resource["request_id"] == earlier
    assert history(aws) == [(earlier, 2500.0, "APPROVED")]


def test_no_stepwise_creeping_after_a_recent_approval(aws: EmbeddedAWS, clients: AwsClients) -> None:
    earlier = ACTION.apply(clients, planned(2000))
    approved(earlier, days_ago=29)
    action = planned(3000, limit=2000)

    assert ACTION.read_live(clients, action) == action.before  # the approved 2000 is applied: apply decides
    with pytest.raises(ActionFailed) as failed:
        ACTION.apply(clients, action)

    assert earlier in failed.value.reason and "APPROVED" in failed.value.reason
    assert "no further increase within 30 days" in failed.value.reason
    assert history(aws) == [(earlier, 2000.0, "APPROVED")]
    assert "request_id" not in action.resource


def test_thirty_days_after_an_approval_a_new_request_may_be_filed(aws: EmbeddedAWS, clients: AwsClients) -> None:
    earlier = ACTION.apply(clients, planned(2000))
    approved(earlier, days_ago=31)
    action = planned(3000, limit=2000)

    assert ACTION.read_live(clients, action) == action.before
    fresh = ACTION.apply(clients, action)

    assert history(aws) == [(earlier, 2000.0, "APPROVED"), (fresh, 3000.0, "PENDING")]


def test_an_open_request_for_less_is_never_followed_by_another(aws: EmbeddedAWS, clients: AwsClients) -> None:
    theirs = aws.client("service-quotas").request_service_quota_increase(**LAMBDA, DesiredValue=1500)
    action = planned(2000)

    with pytest.raises(ActionFailed) as failed:
        ACTION.apply(clients, action)

    assert theirs["RequestedQuota"]["Id"] in failed.value.reason and "PENDING" in failed.value.reason
    assert len(history(aws)) == 1


def test_an_open_request_for_more_covers_the_change(aws: EmbeddedAWS, clients: AwsClients) -> None:
    theirs = aws.client("service-quotas").request_service_quota_increase(**LAMBDA, DesiredValue=2500)
    action = planned(2000)

    assert ACTION.read_live(clients, action) == action.after
    assert ACTION.apply(clients, action) == theirs["RequestedQuota"]["Id"]
    assert len(history(aws)) == 1


def test_a_request_cannot_be_rolled_back(aws: EmbeddedAWS, clients: AwsClients) -> None:
    action = planned()
    request_id = ACTION.apply(clients, action)

    with pytest.raises(ActionFailed) as failed:
        ACTION.rollback(clients, action)

    assert (failed.value.kind, failed.value.target) == ("request_quota_increase", "account")
    assert "cannot be withdrawn" in failed.value.reason and request_id in failed.value.reason
    assert history(aws) == [(request_id, 2000.0, "PENDING")]
