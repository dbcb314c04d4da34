"""Account-level actions: ask AWS to raise the account's Lambda concurrency quota."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from medic.actions.base import Action, PlannedAction, Scalar
from medic.errors import ActionFailed, GuardrailRefused

if TYPE_CHECKING:
    from collections.abc import Iterator

    from medic.alarms.signals import Target
    from medic.aws import AwsClients
    from medic.clock import Clock
    from medic.facts import Facts

SERVICE_CODE: Final = "lambda"
#: Service Quotas' code of Lambda's "Concurrent executions" quota.
QUOTA_CODE: Final = "L-B99A9384"
#: A request in these states is still open: AWS refuses a second one for the same quota until it closes.
OPEN_STATUSES: Final = ("PENDING", "CASE_OPENED")
#: After AWS approved an increase, Medic files no other request for this long: never stepwise creeping.
APPROVAL_HOLD: Final = timedelta(days=30)


def _requests(clients: AwsClients) -> Iterator[dict[str, Any]]:
    """Every increase request for the quota in this account and Region, page by page."""
    client = clients.client("service-quotas")
    kwargs: dict[str, Any] = {"ServiceCode": SERVICE_CODE, "QuotaCode": QUOTA_CODE}
    while True:
        page = client.list_requested_service_quota_change_history_by_quota(**kwargs)
        yield from page.get("RequestedQuotas", [])
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def _open_request(clients: AwsClients) -> dict[str, Any] | None:
    """The open increase request for the quota, if any (AWS allows one at a time)."""
    return next((r for r in _requests(clients) if r.get("Status") in OPEN_STATUSES), None)


def _recent_approval(requests: list[dict[str, Any]], now: datetime) -> dict[str, Any] | None:
    """The latest request AWS approved within APPROVAL_HOLD of `now` (its LastUpdated is the decision), if any."""
    approved = [
        r
        for r in requests
        if r.get("Status") == "APPROVED"
        and isinstance(r.get("LastUpdated"), datetime)
        and now - r["LastUpdated"] < APPROVAL_HOLD
    ]
    return max(approved, key=lambda r: r["LastUpdated"], default=None)


def _earlier(requests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The request that forbids filing another: the open one, else the latest approved within APPROVAL_HOLD."""
    open_request = next((r for r in requests if r.get("Status") in OPEN_STATUSES), None)
    return open_request or _recent_approval(requests, datetime.now(UTC))


def _describe(request: dict[str, Any]) -> str:
    when = request.get("LastUpdated")
    at = f" on {when.astimezone(UTC):%Y-%m-%d}" if isinstance(when, datetime) else ""
    value = _whole(float(request.get("DesiredValue") or 0))
    return f"request {request.get('Id')} for {value} ({request.get('Status')}{at})"


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def read_quota(clients: AwsClients) -> int | float:
    """The account's applied concurrent-executions quota (Service Quotas' view of AccountLimit)."""
    quota = clients.client("service-quotas").get_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=QUOTA_CODE)
    return _whole(quota["Quota"]["Value"])


class RequestQuotaIncrease(Action):
    """File a Service Quotas request to raise the account's Lambda concurrent-executions quota.

    The increase is asynchronous (AWS reviews it, sometimes through a support case): applying files one request
    and does not wait for the decision. A request cannot be withdrawn through the API, so there is no rollback,
    and the action is never applied without a human's approval.

    Never stepwise creeping: the guardrails cap the request at ``max_quota_request`` (a hard limit), and the history
    of requests for the quota (ListRequestedServiceQuotaChangeHistoryByQuota) decides before anything is filed. An
    open request, or one AWS APPROVED within the last 30 days, for at least the desired value is the change already
    made (`read_live` reports `after`, `apply` files nothing and records that request); an open or recently approved
    request for less is not followed by another one: `apply` raises ActionFailed naming it, and a human decides
    (with AWS Support) what the account needs. Denied or closed requests do not count.

    Runbook example::

        actions:
          - kind: request_quota_increase
            params: {concurrency: "ceil(account_concurrency_peak * 2)"}
    """

    kind = "request_quota_increase"
    cap = ("account_concurrency_limit", "max_quota_request")
    risk = "high"
    free = "no charge for a quota increase (concurrency is billed only when used)"
    permissions = (
        "servicequotas:GetServiceQuota",
        "servicequotas:RequestServiceQuotaIncrease",
        "servicequotas:ListRequestedServiceQuotaChangeHistoryByQuota",
    )
    params = ("concurrency",)
    max_mode = "approve"

    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        current = facts.account_limit
        if current is None:
            raise GuardrailRefused(
                "account_limit",
                "known",
                None,
                "the account's concurrency limit is unknown, so no increase can be sized",
            )
        desired = float(params["concurrency"])
        if not math.isfinite(desired):
            raise GuardrailRefused("valid_value", "a finite number", params["concurrency"], "concurrency is not finite")
        after = math.ceil(desired)
        if after <= current:
            raise GuardrailRefused(
                "quota_increase",
                f"> {current}",
                after,
                f"the desired account concurrency limit {after} does not exceed the current {current}",
            )
        return [
            PlannedAction(
                kind=self.kind,
                target="account",
                primary="account_concurrency_limit",
                before={"account_concurrency_limit": current},
                after={"account_concurrency_limit": after},
                resource={"service_code": SERVICE_CODE, "quota_code": QUOTA_CODE},
                text=(
                    f"Request a Lambda concurrent-executions quota increase for the account: {current} → {after} "
                    f"(Service Quotas {SERVICE_CODE}/{QUOTA_CODE}; AWS decides later, at times through a support case)"
                ),
            )
        ]

    def read_live(self, clients: AwsClients, action: PlannedAction) -> dict[str, Scalar]:
        # An open request, or a recent approval, of at least `after` is the change made: never file a second one.
        # An open request for less is someone else's change (drift); a smaller approval is refused by `apply`.
        earlier = _earlier(list(_requests(clients)))
        if earlier is not None:
            if float(earlier["DesiredValue"]) >= float(action.after.get("account_concurrency_limit") or 0):
                return {"account_concurrency_limit": action.after.get("account_concurrency_limit")}
            if earlier.get("Status") in OPEN_STATUSES:
                return {"account_concurrency_limit": _whole(earlier["DesiredValue"])}
        return {"account_concurrency_limit": read_quota(clients)}

    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        client = clients.client("service-quotas")
        desired = float(action.after["account_concurrency_limit"] or 0)
        earlier = _earlier(list(_requests(clients)))
        if earlier is not None:
            return self._adopt(action, earlier, desired)
        try:
            response = client.request_service_quota_increase(
                ServiceCode=SERVICE_CODE, QuotaCode=QUOTA_CODE, DesiredValue=desired
            )
        except client.exceptions.ResourceAlreadyExistsException as exc:
            request = _open_request(clients)  # filed meanwhile by someone else (or by a concurrent retry)
            if request is None:
                raise ActionFailed(
                    self.kind, action.target, f"AWS reports an open request but lists none: {exc}"
                ) from exc
            return self._adopt(action, request, desired)
        quota_request_id = str(response["RequestedQuota"]["Id"])
        action.resource["request_id"] = quota_request_id
        return quota_request_id

    def _adopt(self, action: PlannedAction, request: dict[str, Any], desired: float) -> str:
        """Record an earlier request for at least `desired` as this change; refuse to follow a smaller one."""
        if float(request.get("DesiredValue") or 0) < desired:
            hold = "" if request.get("Status") in OPEN_STATUSES else f" within {APPROVAL_HOLD.days} days of an approval"
            raise ActionFailed(
                self.kind,
                action.target,
                f"{_describe(request)} precedes this one: Medic files no further increase{hold} (never stepwise "
                f"creeping); ask AWS Support for what the account needs ({_whole(desired)} wanted)",
            )
        quota_request_id = str(request["Id"])
        action.resource["request_id"] = quota_request_id
        return quota_request_id

    def wait(self, clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float) -> dict[str, Scalar]:
        # AWS decides a quota request asynchronously: report the request, never block on it.
        quota_request_id = str(action.resource.get("request_id") or "")
        if not quota_request_id:
            request = _open_request(clients)
            quota_request_id = str(request["Id"]) if request is not None else ""
        status = next(
            (str(r.get("Status")) for r in _requests(clients) if quota_request_id and r.get("Id") == quota_request_id),
            "UNKNOWN",
        )
        return {
            "account_concurrency_limit": read_quota(clients),
            "request_status": status,
            "request_id": quota_request_id,
        }

    def rollback(self, clients: AwsClients, action: PlannedAction) -> str:
        request = action.resource.get("request_id") or "(unknown)"
        raise ActionFailed(
            self.kind,
            action.target,
            f"a Service Quotas increase request cannot be withdrawn through the API; request {request} stays "
            "open until AWS decides it (ask AWS Support to close its case if the increase is no longer wanted)",
        )
