"""Account-level actions: ask AWS to raise the account's Lambda concurrency quota."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from medic.actions.base import Action, PlannedAction, Scalar
from medic.errors import ActionFailed, GuardrailRefused

if TYPE_CHECKING:
    from collections.abc import Iterator

    from medic.aws import AwsClients
    from medic.clock import Clock
    from medic.facts import Facts
    from medic.signals import Target

SERVICE_CODE: Final = "lambda"
#: Service Quotas' code of Lambda's "Concurrent executions" quota.
QUOTA_CODE: Final = "L-B99A9384"
#: A request in these states is still open: AWS refuses a second one for the same quota until it closes.
OPEN_STATUSES: Final = ("PENDING", "CASE_OPENED")


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

    Runbook example::

        actions:
          - kind: request_quota_increase
            params: {concurrency: "ceil(account_concurrency_peak * 2)"}
    """

    kind = "request_quota_increase"
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
                "account_limit", "known", None,
                "the account's concurrency limit is unknown, so no increase can be sized",
            )  # fmt: skip
        desired = float(params["concurrency"])
        if not math.isfinite(desired):
            raise GuardrailRefused("valid_value", "a finite number", params["concurrency"], "concurrency is not finite")
        after = math.ceil(desired)
        if after <= current:
            raise GuardrailRefused(
                "quota_increase", f"> {current}", after,
                f"the desired account concurrency limit {after} does not exceed the current {current}",
            )  # fmt: skip
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
        # An open request counts as the change made: the executor must never file a second one.
        request = _open_request(clients)
        if request is not None:
            return {"account_concurrency_limit": _whole(request["DesiredValue"])}
        return {"account_concurrency_limit": read_quota(clients)}

    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        client = clients.client("service-quotas")
        try:
            response = client.request_service_quota_increase(
                ServiceCode=SERVICE_CODE,
                QuotaCode=QUOTA_CODE,
                DesiredValue=float(action.after["account_concurrency_limit"] or 0),
            )
        except client.exceptions.ResourceAlreadyExistsException as exc:
            request = _open_request(clients)
            if request is None:
                raise ActionFailed(
                    self.kind, action.target, f"AWS reports an open request but lists none: {exc}"
                ) from exc
            quota_request_id = str(request["Id"])
        else:
            quota_request_id = str(response["RequestedQuota"]["Id"])
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
            self.kind, action.target,
            f"a Service Quotas increase request cannot be withdrawn through the API; request {request} stays "
            "open until AWS decides it (ask AWS Support to close its case if the increase is no longer wanted)",
        )  # fmt: skip
