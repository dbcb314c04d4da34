"""Service Quotas for Lambda's concurrent-executions quota, added to moto 5.2.5's `servicequotas` backend.

moto serves only the VPC defaults (kept as they are). `install()` adds, for ServiceCode "lambda" and QuotaCode
"L-B99A9384" ("Concurrent executions"), each with the AWS documentation it follows:

* GetServiceQuota: "Retrieves the applied quota value" (Service Quotas API reference) — the account's Lambda
  concurrency limit as the world holds it (`moto_ext.set_account_concurrency_limit`; the value lives on moto's
  Lambda backend, so GetAccountSettings and Service Quotas always agree).
* GetAWSDefaultServiceQuota: "The default value does not reflect any quota increases" — 1000 ("Concurrent
  executions: 1,000", Lambda developer guide, "Lambda quotas"). Its QuotaArn has no account, as AWS's defaults do.
* RequestServiceQuotaIncrease: a RequestedQuota in status PENDING ("PENDING: The quota increase request is under
  review by Amazon Web Services", RequestedServiceQuotaChange.Status) with a random Id and an empty CaseId. Errors
  as the API reference lists them: NoSuchResourceException ("The specified resource does not exist") for another
  service or quota; IllegalArgumentException ("Invalid input was provided") when DesiredValue is missing, outside
  [0, 10000000000] or not above the applied value; ResourceAlreadyExistsException ("The specified resource already
  exists") while a request for the same quota is open (PENDING or CASE_OPENED) in that account and Region. AWS
  does not document its message texts; ours paraphrase them.
* GetRequestedServiceQuotaChange (NoSuchResourceException for an unknown RequestId) and
  ListRequestedServiceQuotaChangeHistoryByQuota (optional Status and QuotaRequestedAtLevel filters, MaxResults and
  NextToken paging; oldest request first, an order AWS leaves undocumented).

World knob (a Python function, not HTTP):

* `resolve_quota_request(request_id, status="APPROVED")` — what AWS (or its support team) decides: APPROVED
  raises the account's Lambda concurrency limit to DesiredValue (never lowers it), DENIED and CASE_CLOSED close the
  request, CASE_OPENED opens a support case (the request stays open and gets a CaseId).

Requests live on moto's Service Quotas backend (per account and Region), so every reset (`/moto-api/reset` or
`EmbeddedAWS.reset()`) forgets them; `reset_knobs()` has nothing process-wide to restore.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from moto.awslambda.models import lambda_backends
from moto.core.exceptions import JsonRESTError
from moto.moto_api._internal import mock_random
from moto.servicequotas.models import ServiceQuotasBackend, servicequotas_backends
from moto.servicequotas.responses import ServiceQuotasResponse

from medic_tools.world import moto_ext

LAMBDA_SERVICE_CODE: Final = "lambda"
LAMBDA_SERVICE_NAME: Final = "AWS Lambda"
CONCURRENT_EXECUTIONS_QUOTA_CODE: Final = "L-B99A9384"
CONCURRENT_EXECUTIONS_QUOTA_NAME: Final = "Concurrent executions"
OPEN_STATUSES: Final = frozenset({"PENDING", "CASE_OPENED"})
RESOLUTIONS: Final = frozenset({"CASE_OPENED", "APPROVED", "DENIED", "CASE_CLOSED"})
_ALL_STATUSES: Final = frozenset(
    {"PENDING", "CASE_OPENED", "APPROVED", "DENIED", "CASE_CLOSED", "NOT_APPROVED", "INVALID_REQUEST"}
)
_MAX_DESIRED_VALUE: Final = 10_000_000_000
_DEFAULT_PAGE: Final = 100

_installed = False


class NoSuchResource(JsonRESTError):
    """NoSuchResourceException (400)."""

    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("NoSuchResourceException", message)


class IllegalArgument(JsonRESTError):
    """IllegalArgumentException (400)."""

    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("IllegalArgumentException", message)


class ResourceAlreadyExists(JsonRESTError):
    """ResourceAlreadyExistsException (400)."""

    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("ResourceAlreadyExistsException", message)


@dataclass
class _Request:
    id: str
    quota_code: str
    desired_value: float
    requester: str
    created: datetime
    status: str = "PENDING"
    case_id: str = ""
    last_updated: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class _QuotaWorld:
    requests: dict[str, _Request] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# Knobs


def resolve_quota_request(request_id: str, status: str = "APPROVED") -> None:
    """Decide a quota increase request, in whichever account and Region it was filed.

    APPROVED raises the Lambda concurrency limit to the request's DesiredValue (rounded up to a whole number).
    Only an open request (PENDING or CASE_OPENED) can be decided; ValueError otherwise.
    """
    if status not in RESOLUTIONS:
        raise ValueError(f"status must be one of {sorted(RESOLUTIONS)}, not {status!r}")
    with moto_ext._LOCK:
        backend, request = _find(request_id)
        if request.status not in OPEN_STATUSES:
            raise ValueError(f"quota request {request_id} is already {request.status}")
        if status == "APPROVED":
            current = _applied_value(backend)
            desired = math.ceil(request.desired_value)
            if desired > current:
                moto_ext.set_account_concurrency_limit(desired, backend.account_id, backend.region_name)
        if status == "CASE_OPENED" and not request.case_id:
            request.case_id = str(mock_random.randint(10**9, 10**10 - 1))
        request.status = status
        request.last_updated = datetime.now(UTC)


def reset_knobs() -> None:
    """Nothing process-wide to restore: the requests live on moto's backends, which every reset rebuilds."""


# ---------------------------------------------------------------------------------------------------------------
# The quota and its requests


def _world(backend: ServiceQuotasBackend) -> _QuotaWorld:
    # Kept on the backend instance so that moto's reset, which rebuilds backends, clears it.
    world = backend.__dict__.get("_medic_quotas")
    if world is None:
        world = _QuotaWorld()
        backend.__dict__["_medic_quotas"] = world
    assert isinstance(world, _QuotaWorld)
    return world


def _find(request_id: str) -> tuple[ServiceQuotasBackend, _Request]:
    for account_backends in list(servicequotas_backends.values()):
        for backend in list(account_backends.values()):
            request = _world(backend).requests.get(request_id)
            if request is not None:
                return backend, request
    raise ValueError(f"no quota increase request {request_id!r}")


def _require_lambda_quota(service_code: str, quota_code: str) -> None:
    if service_code != LAMBDA_SERVICE_CODE:
        raise NoSuchResource(f"The service {service_code!r} has no quotas in this Region.")
    if quota_code != CONCURRENT_EXECUTIONS_QUOTA_CODE:
        raise NoSuchResource(f"The quota {quota_code!r} does not exist for service {service_code!r}.")


def _applied_value(backend: ServiceQuotasBackend) -> int:
    lambda_backend = lambda_backends[backend.account_id][backend.region_name]
    return moto_ext._world(lambda_backend).concurrency_limit


def _quota_arn(region: str, account_id: str) -> str:
    return f"arn:aws:servicequotas:{region}:{account_id}:{LAMBDA_SERVICE_CODE}/{CONCURRENT_EXECUTIONS_QUOTA_CODE}"


def _quota_view(backend: ServiceQuotasBackend, *, value: float, account_id: str) -> dict[str, Any]:
    return {
        "ServiceCode": LAMBDA_SERVICE_CODE,
        "ServiceName": LAMBDA_SERVICE_NAME,
        "QuotaArn": _quota_arn(backend.region_name, account_id),
        "QuotaCode": CONCURRENT_EXECUTIONS_QUOTA_CODE,
        "QuotaName": CONCURRENT_EXECUTIONS_QUOTA_NAME,
        "Value": float(value),
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
        "QuotaAppliedAtLevel": "ACCOUNT",
    }


def _request_view(backend: ServiceQuotasBackend, request: _Request) -> dict[str, Any]:
    return {
        "Id": request.id,
        "CaseId": request.case_id,
        "ServiceCode": LAMBDA_SERVICE_CODE,
        "ServiceName": LAMBDA_SERVICE_NAME,
        "QuotaCode": request.quota_code,
        "QuotaName": CONCURRENT_EXECUTIONS_QUOTA_NAME,
        "DesiredValue": request.desired_value,
        "Status": request.status,
        "Created": request.created.timestamp(),
        "LastUpdated": request.last_updated.timestamp(),
        "Requester": request.requester,
        "QuotaArn": _quota_arn(backend.region_name, backend.account_id),
        "GlobalQuota": False,
        "Unit": "None",
        "QuotaRequestedAtLevel": "ACCOUNT",
    }


def _desired_value(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise IllegalArgument(f"DesiredValue must be a number, not {value!r}.")
    if not 0 <= value <= _MAX_DESIRED_VALUE:
        raise IllegalArgument(f"DesiredValue must be between 0 and {_MAX_DESIRED_VALUE}, not {value}.")
    return float(value)


# ---------------------------------------------------------------------------------------------------------------
# Backend methods, added to moto's ServiceQuotasBackend

_original_get_service_quota = ServiceQuotasBackend.get_service_quota


def _get_service_quota(self: ServiceQuotasBackend, service_code: str, quota_code: str) -> dict[str, Any]:
    if service_code != LAMBDA_SERVICE_CODE:
        quota: dict[str, Any] = _original_get_service_quota(self, service_code, quota_code)
        return quota
    _require_lambda_quota(service_code, quota_code)
    with moto_ext._LOCK:
        return _quota_view(self, value=_applied_value(self), account_id=self.account_id)


def _get_aws_default_service_quota(self: ServiceQuotasBackend, service_code: str, quota_code: str) -> dict[str, Any]:
    if service_code != LAMBDA_SERVICE_CODE:
        # moto holds only AWS's defaults for the other services: its applied values are the defaults.
        quota: dict[str, Any] = _original_get_service_quota(self, service_code, quota_code)
        return quota
    _require_lambda_quota(service_code, quota_code)
    return _quota_view(self, value=moto_ext.DEFAULT_ACCOUNT_CONCURRENCY_LIMIT, account_id="")


def _request_service_quota_increase(
    self: ServiceQuotasBackend, service_code: str, quota_code: str, desired_value: object, requester: str
) -> dict[str, Any]:
    _require_lambda_quota(service_code, quota_code)
    desired = _desired_value(desired_value)
    with moto_ext._LOCK:
        applied = _applied_value(self)
        if desired <= applied:
            raise IllegalArgument(
                f"The requested value {desired:g} must be greater than the quota's applied value {applied}."
            )
        world = _world(self)
        if any(r.quota_code == quota_code and r.status in OPEN_STATUSES for r in world.requests.values()):
            raise ResourceAlreadyExists("Only one open service quota increase request is allowed per quota.")
        now = datetime.now(UTC)
        request = _Request(
            id=mock_random.uuid4().hex,
            quota_code=quota_code,
            desired_value=desired,
            requester=requester,
            created=now,
            last_updated=now,
        )
        world.requests[request.id] = request
        return _request_view(self, request)


def _get_requested_service_quota_change(self: ServiceQuotasBackend, request_id: str) -> dict[str, Any]:
    with moto_ext._LOCK:
        request = _world(self).requests.get(request_id)
        if request is None:
            raise NoSuchResource(f"The quota increase request {request_id!r} does not exist.")
        return _request_view(self, request)


def _list_requested_service_quota_change_history_by_quota(
    self: ServiceQuotasBackend, service_code: str, quota_code: str, status: str | None, level: str | None
) -> list[dict[str, Any]]:
    _require_lambda_quota(service_code, quota_code)
    if status is not None and status not in _ALL_STATUSES:
        raise IllegalArgument(f"Status must be one of {', '.join(sorted(_ALL_STATUSES))}, not {status!r}.")
    if level is not None and level not in ("ACCOUNT", "RESOURCE", "ALL"):
        raise IllegalArgument(f"QuotaRequestedAtLevel must be ACCOUNT, RESOURCE or ALL, not {level!r}.")
    if level == "RESOURCE":
        return []
    with moto_ext._LOCK:
        requests = sorted(_world(self).requests.values(), key=lambda r: r.created)
        return [_request_view(self, r) for r in requests if r.quota_code == quota_code and status in (None, r.status)]


# ---------------------------------------------------------------------------------------------------------------
# HTTP handlers, added to moto's ServiceQuotasResponse (moto dispatches the JSON protocol by X-Amz-Target)


def _params(response: ServiceQuotasResponse) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(response.body) if response.body else {}
    return params


def _http_get_aws_default_service_quota(self: ServiceQuotasResponse) -> str:
    params = _params(self)
    quota = _get_aws_default_service_quota(self.backend, str(params.get("ServiceCode")), str(params.get("QuotaCode")))
    return json.dumps({"Quota": quota})


def _http_request_service_quota_increase(self: ServiceQuotasResponse) -> str:
    params = _params(self)
    request = _request_service_quota_increase(
        self.backend,
        str(params.get("ServiceCode")),
        str(params.get("QuotaCode")),
        params.get("DesiredValue"),
        requester=f"arn:aws:iam::{self.current_account}:root",
    )
    return json.dumps({"RequestedQuota": request})


def _http_get_requested_service_quota_change(self: ServiceQuotasResponse) -> str:
    request = _get_requested_service_quota_change(self.backend, str(_params(self).get("RequestId")))
    return json.dumps({"RequestedQuota": request})


def _http_list_requested_service_quota_change_history_by_quota(self: ServiceQuotasResponse) -> str:
    params = _params(self)
    history = _list_requested_service_quota_change_history_by_quota(
        self.backend,
        str(params.get("ServiceCode")),
        str(params.get("QuotaCode")),
        params.get("Status"),
        params.get("QuotaRequestedAtLevel"),
    )
    token = params.get("NextToken")
    if token is not None and not str(token).isdigit():
        raise IllegalArgument("The NextToken is not valid.")
    start = int(token or 0)
    size = int(params.get("MaxResults") or _DEFAULT_PAGE)
    page: dict[str, Any] = {"RequestedQuotas": history[start : start + size]}
    if start + size < len(history):
        page["NextToken"] = str(start + size)
    return json.dumps(page)


# ---------------------------------------------------------------------------------------------------------------
# Installation


def install() -> None:
    """Patch moto's Service Quotas in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    with moto_ext._LOCK:
        if _installed:
            return
        ServiceQuotasBackend.get_service_quota = _get_service_quota  # type: ignore[method-assign]
        handlers = {
            "get_aws_default_service_quota": _http_get_aws_default_service_quota,
            "request_service_quota_increase": _http_request_service_quota_increase,
            "get_requested_service_quota_change": _http_get_requested_service_quota_change,
            "list_requested_service_quota_change_history_by_quota": (
                _http_list_requested_service_quota_change_history_by_quota
            ),
        }
        for action, handler in handlers.items():
            setattr(ServiceQuotasResponse, action, handler)
        _installed = True
