"""Extensions of moto 5.2.5's backends: the AWS behaviour Medic needs and moto lacks, served over moto's HTTP endpoint.

`install()` patches moto in this process (idempotent; call it before the server handles its first request, as
`EmbeddedAWS` does). What it adds, each with the AWS documentation it follows:

* Lambda provisioned concurrency (PC): Put/Get/Delete/ListProvisionedConcurrencyConfig(s) with AWS's validation
  and errors (Lambda API reference; error texts as AWS returns them where known), and the status
  IN_PROGRESS → READY | FAILED. Allocated/Available stay at the previous allocation while IN_PROGRESS or FAILED
  and become the requested value when READY. "Each version of a function can only have one provisioned
  concurrency configuration ... Two aliases can't allocate provisioned concurrency for the same version" and
  "You can't allocate more provisioned concurrency than reserved concurrency for a function" (Lambda developer
  guide, "Managing Lambda provisioned concurrency").
* Lambda GetAccountSettings. `UnreservedConcurrentExecutions` is the limit minus reserved concurrency only,
  as AWS documents it ("The maximum number of simultaneous function executions, minus the capacity that's
  reserved for individual functions with PutFunctionConcurrency", API reference, AccountLimit); PC of functions
  without reserved concurrency is *not* subtracted there, but it does count against the 100-execution minimum
  when PC or reserved concurrency is put ("Provisioned concurrency counts towards ... Regional quotas"), which is
  the "decreases account's UnreservedConcurrentExecution below its minimum value of [100]" error AWS returns.
  The minimum is min(100, limit): accounts with a limit of 10 get "[10]".
* Lambda reserved concurrency: always enforces the account minimum (moto does only with an env var), refuses a
  reserved value below the function's PC ("You can't set reserved concurrency below the provisioned concurrency
  that is requested for this function"; the exact AWS message is not documented, ours paraphrases it), applies
  to every version (GetFunction with a qualifier reports it too) and reports 0 (moto hid it).
* Lambda `LoggingConfig` (format, levels, log group; per version), in `medic_tools.world.moto_lambda_logging`
  (installed from here).
* CloudWatch, in `medic_tools.world.moto_cloudwatch` (installed from here): PutMetricData keeps Values/Counts whole as
  weighted datums; GetMetricData, GetMetricStatistics (percentiles included) and the alarm evaluation compute every
  statistic with `medic_tools.world.metric_statistics`; alarms start in INSUFFICIENT_DATA and keep their state on
  update;
  GetMetricWidgetImage answers a clean NotImplemented error; DescribeAlarmHistory serves the history every state
  change and configuration change records (`medic_tools.world.moto_alarm_history`).
* Application Auto Scaling → Lambda PC: registering `lambda:function:ProvisionedConcurrency` for
  `function:NAME:QUALIFIER` moves the qualifier's PC into [MinCapacity, MaxCapacity] at once, through the same
  validation as PutProvisionedConcurrencyConfig ("If the specified resource is not active in the target service,
  this operation does not change the resource's current capacity. Otherwise, it changes the resource's current
  capacity to a value that is inside of this range", RegisterScalableTarget API reference). A qualifier without
  PC counts as capacity 0; a missing function or alias is "not active" and left alone.
* Two more services, in their own modules and installed (and reset) from here: Service Quotas for Lambda's
  concurrent-executions quota and its increase requests, decided by the knob `resolve_quota_request`
  (`medic_tools.world.moto_quotas`), and Logs Insights `filter` and `stats` for Lambda REPORT lines
  (`medic_tools.world.moto_logs`).

World knobs (Python functions, not HTTP), and what a reset does to them (every reset: `/moto-api/reset` or
`EmbeddedAWS.reset()`):

* `set_account_concurrency_limit` — per account and region; back to 1000 on reset (it lives on moto's Lambda
  backend, which a reset rebuilds).
* `inject_provisioned_concurrency_failure` — one-shot, consumed by the next Put (or Auto Scaling change) on that
  function and qualifier; cleared on reset.
* `set_provisioned_concurrency_ready_delay` — process-wide; back to 0 s on reset.
* `count_requests()` — a context manager yielding a `RequestLog`: every request the world serves while it is open,
  as `ServedRequest(service, operation, status, injected)` (botocore's service and operation names, the HTTP status
  answered). Tests count the *changing* calls that reached the endpoint with it (retries included: each attempt is
  one request). Process-wide; a reset detaches every open log.
* `inject_fault(operation, error_code, http_status, times=1)` — the next `times` requests of `operation` (botocore's
  name, in whichever service, e.g. "PutProvisionedConcurrencyConfig") fail with `error_code` and `http_status` before
  the backend sees them (nothing changes), serialized by moto as AWS serializes errors in that service's protocol, so
  botocore raises the ClientError (or retries) exactly as it would on AWS. Faults queue up per operation; a reset
  clears them.

Both hook into `moto.core.responses.BaseResponse._dispatch`, the one method every service's HTTP dispatch goes
through in moto 5.2.5 (`dispatch` → `cls()._dispatch` → `setup_class`, `call_action`); the hook does the same two
steps, with the fault check and the record in between. With no log open and no fault queued it is moto's own.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
from moto.awslambda import urls as lambda_urls
from moto.awslambda.models import LambdaBackend, LambdaFunction, lambda_backends
from moto.awslambda.responses import LambdaResponse
from moto.awslambda.utils import make_function_arn
from moto.core.exceptions import JsonRESTError, ServiceException
from moto.core.responses import ActionResult, BaseResponse
from moto.moto_api._internal.models import MotoAPIBackend
from werkzeug.exceptions import HTTPException

from medic.planning import pool

DEFAULT_ACCOUNT_ID: Final = "123456789012"
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT_CONCURRENCY_LIMIT: Final = 1000
PC_SCALABLE_DIMENSION: Final = "lambda:function:ProvisionedConcurrency"

# AWS's defaults for the code-storage quotas (Lambda developer guide, "Lambda quotas"); Medic never reads them.
_TOTAL_CODE_SIZE: Final = 80_530_636_800
_CODE_SIZE_UNZIPPED: Final = 262_144_000
_CODE_SIZE_ZIPPED: Final = 52_428_800

_PC_URL: Final = r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[\w_:%-]+)/provisioned-concurrency/?$"
_ACCOUNT_SETTINGS_URL: Final = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"

_UNPUBLISHED: Final = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
_NOT_ALIAS_OR_VERSION: Final = "The function resource provided must be an alias or a published version."
_ALIAS_ON_PROVISIONED_VERSION: Final = (
    "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
)
_VERSION_POINTED_BY_ALIAS: Final = "Version is pointed by a Provisioned Concurrency alias"

# Server threads handle requests concurrently; every read-modify-write of the PC store holds this lock.
_LOCK = threading.RLock()
_installed = False

_Response = tuple[int, dict[str, Any], str]


class _LambdaError(JsonRESTError):
    """A Lambda error serialized the way boto3 parses rest-json errors."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(error_type, message)
        self.error_message = message


class InvalidParameterValue(_LambdaError):
    """InvalidParameterValueException (400)."""

    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterValueException", message)


class ParameterValidation(_LambdaError):
    """ValidationException (400): a request that breaks the API model's constraints."""

    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


class ResourceNotFound(_LambdaError):
    """ResourceNotFoundException (404)."""

    code = 404

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


class ResourceConflict(_LambdaError):
    """ResourceConflictException (409)."""

    code = 409

    def __init__(self, message: str) -> None:
        super().__init__("ResourceConflictException", message)


class ProvisionedConcurrencyConfigNotFound(_LambdaError):
    """ProvisionedConcurrencyConfigNotFoundException (404)."""

    code = 404

    def __init__(self) -> None:
        super().__init__(
            "ProvisionedConcurrencyConfigNotFoundException", "No Provisioned Concurrency Config found for this function"
        )


@dataclass(frozen=True)
class ServedRequest:
    """One request the world answered: botocore's service and operation names, and the HTTP status."""

    service: str
    operation: str
    status: int
    injected: bool = False

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class RequestLog:
    """The requests served while `count_requests()` was open, in the order they were answered."""

    requests: list[ServedRequest] = field(default_factory=list)

    def count(self, operation: str, *, succeeded: bool | None = None, service: str | None = None) -> int:
        """How many requests of `operation` were served (only the 2xx ones, or only the others, if asked)."""
        return sum(
            1
            for r in list(self.requests)
            if r.operation == operation
            and (service is None or r.service == service)
            and (succeeded is None or r.succeeded == succeeded)
        )


class InjectedFault(ServiceException):
    """An injected error. Defined outside moto's packages so moto serializes it with the called service's model."""


@dataclass
class _Fault:
    operation: str
    error_code: str
    http_status: int
    message: str
    left: int


@dataclass
class _Knobs:
    ready_delay_s: float = 0.0
    faults: list[_Fault] = field(default_factory=list)
    logs: list[RequestLog] = field(default_factory=list)


_knobs = _Knobs()


@dataclass
class _PCConfig:
    requested: int
    previous_allocated: int
    ready_at: float
    last_modified: str
    failure_reason: str | None = None

    def state(self) -> tuple[str, int, str | None]:
        """(Status, allocated executions, StatusReason) at this moment."""
        if time.monotonic() < self.ready_at:
            return "IN_PROGRESS", self.previous_allocated, None
        if self.failure_reason is not None:
            return "FAILED", self.previous_allocated, self.failure_reason
        return "READY", self.requested, None


@dataclass
class _LambdaWorld:
    concurrency_limit: int = DEFAULT_ACCOUNT_CONCURRENCY_LIMIT
    pc: dict[tuple[str, str], _PCConfig] = field(default_factory=dict)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def minimum_unreserved(self) -> int:
        return pool.minimum_unreserved(self.concurrency_limit)


@dataclass(frozen=True)
class _Target:
    name: str
    qualifier: str
    version: str
    arn: str

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.qualifier


@dataclass(frozen=True)
class PeriodPoint:
    """One period of a metric: its start, the statistic (None when it cannot be computed) and the sample count."""

    start: datetime
    value: float | None
    sample_count: float


# ---------------------------------------------------------------------------------------------------------------
# Knobs


def set_account_concurrency_limit(
    limit: int, account_id: str = DEFAULT_ACCOUNT_ID, region: str = DEFAULT_REGION
) -> None:
    """Set the account's concurrent-executions quota (AccountLimit.ConcurrentExecutions; default 1000)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"the account concurrency limit must be a non-negative integer, not {limit!r}")
    with _LOCK:
        _world(lambda_backends[account_id][region]).concurrency_limit = limit


def set_provisioned_concurrency_ready_delay(seconds: float) -> None:
    """Set how long a PC allocation stays IN_PROGRESS (wall-clock seconds; default 0: the first Get sees READY)."""
    if seconds < 0:
        raise ValueError(f"the ready delay must not be negative, not {seconds!r}")
    _knobs.ready_delay_s = float(seconds)


def inject_provisioned_concurrency_failure(
    function_name: str,
    qualifier: str,
    reason: str,
    account_id: str = DEFAULT_ACCOUNT_ID,
    region: str = DEFAULT_REGION,
) -> None:
    """Make the next PC allocation on function_name:qualifier end FAILED with StatusReason `reason`."""
    with _LOCK:
        _world(lambda_backends[account_id][region]).failures[(function_name, qualifier)] = reason


@contextmanager
def count_requests() -> Iterator[RequestLog]:
    """Record every request the world serves while the block runs.

    >>> with count_requests() as served:  # doctest: +SKIP
    ...     medic_runs_the_plan()
    >>> served.count("PutProvisionedConcurrencyConfig", succeeded=True)  # doctest: +SKIP
    1
    """
    log = RequestLog()
    with _LOCK:
        _knobs.logs.append(log)
    try:
        yield log
    finally:
        with _LOCK:
            if log in _knobs.logs:
                _knobs.logs.remove(log)


def inject_fault(operation: str, error_code: str, http_status: int, times: int = 1, message: str = "") -> None:
    """Make the next `times` requests of `operation` fail with AWS's error `error_code` and `http_status`.

    E.g. ``inject_fault("PutProvisionedConcurrencyConfig", "TooManyRequestsException", 429, times=2)``: throttled
    twice, then served. The failing requests never reach the backend.
    """
    if times < 1 or not 400 <= http_status < 600:
        raise ValueError(f"a fault needs times >= 1 and an error status (4xx/5xx), not {times} × {http_status}")
    with _LOCK:
        _knobs.faults.append(_Fault(operation, error_code, http_status, message or f"injected {error_code}", times))


def reset_knobs() -> None:
    """Restore the process-wide knobs' defaults (the per-account ones go with moto's backends on reset)."""
    from medic_tools.world import moto_quotas  # it builds on this module

    with _LOCK:
        _knobs.ready_delay_s = 0.0
        _knobs.faults.clear()
        _knobs.logs.clear()
    moto_quotas.reset_knobs()


# ---------------------------------------------------------------------------------------------------------------
# Lambda: the PC store and its arithmetic


def _world(backend: LambdaBackend) -> _LambdaWorld:
    # Kept on the backend instance so that moto's reset, which rebuilds backends, clears it.
    world = backend.__dict__.get("_medic_world")
    if world is None:
        world = _LambdaWorld()
        backend.__dict__["_medic_world"] = world
    assert isinstance(world, _LambdaWorld)
    return world


def _groups(backend: LambdaBackend) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = backend._lambdas._functions
    return groups


def _functions_of(group: Mapping[str, Any]) -> list[LambdaFunction]:
    latest = group.get("latest")
    return ([latest] if latest is not None else []) + list(group.get("versions", []))


def _reserved_of(group: Mapping[str, Any]) -> int | None:
    functions = _functions_of(group)
    value = functions[0].reserved_concurrency if functions else None
    return None if value is None else int(value)


def _aliases(backend: LambdaBackend, name: str) -> dict[str, Any]:
    arn = make_function_arn(backend.region_name, backend.account_id, name)
    aliases: dict[str, Any] = backend._lambdas._aliases.get(arn, {})
    return aliases


def _version_of(backend: LambdaBackend, name: str, qualifier: str) -> str | None:
    """The published version a qualifier resolves to, or None when it no longer exists."""
    group = _groups(backend).get(name)
    if group is None:
        return None
    if qualifier.isdigit():
        versions = {str(fn.version) for fn in group.get("versions", [])}
        return qualifier if qualifier in versions else None
    alias = _aliases(backend, name).get(qualifier)
    return None if alias is None else str(alias.function_version)


def _purge(backend: LambdaBackend, world: _LambdaWorld) -> None:
    """Forget the PC of deleted functions, versions and aliases (AWS deletes it with them)."""
    for key in [k for k in world.pc if _version_of(backend, *k) is None]:
        del world.pc[key]


def _split_function(name_or_arn: str) -> tuple[str, str | None]:
    rest = name_or_arn.split(":function:", 1)[1] if ":function:" in name_or_arn else name_or_arn
    name, _, qualifier = rest.partition(":")
    return name, qualifier or None


def _resolve(backend: LambdaBackend, function: str, qualifier: str | None, *, for_put: bool) -> _Target:
    name, qualifier_in_name = _split_function(unquote(function))
    qualifier = qualifier or qualifier_in_name
    arn = make_function_arn(backend.region_name, backend.account_id, name)
    if not qualifier:
        raise ParameterValidation(
            "1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: "
            "Member must not be null"
        )
    if qualifier == "$LATEST":
        raise InvalidParameterValue(_UNPUBLISHED if for_put else _NOT_ALIAS_OR_VERSION)
    if name not in _groups(backend):
        raise ResourceNotFound(f"Function not found: {arn}")
    version = _version_of(backend, name, qualifier)
    if version is None:
        if qualifier.isdigit():
            raise ResourceNotFound(f"Function not found: {arn}:{qualifier}")
        raise ResourceNotFound(f"Cannot find alias arn: {arn}:{qualifier}")
    if version == "$LATEST" and for_put:
        raise InvalidParameterValue(_UNPUBLISHED)
    return _Target(name=name, qualifier=qualifier, version=version, arn=f"{arn}:{qualifier}")


def _pool_left(
    backend: LambdaBackend,
    world: _LambdaWorld,
    *,
    reserved: Mapping[str, int | None] | None = None,
    pc: Mapping[tuple[str, str], int] | None = None,
) -> pool.UnreservedPool:
    """The account's unreserved pool (`medic.planning.pool`), with `reserved` and `pc` changed as a request would."""
    reserved_by_function = {name: _reserved_of(group) for name, group in _groups(backend).items()}
    reserved_by_function.update(reserved or {})
    pc_by_key = {key: cfg.requested for key, cfg in world.pc.items()}
    pc_by_key.update(pc or {})
    return pool.UnreservedPool(
        unreserved=world.concurrency_limit - sum(r for r in reserved_by_function.values() if r is not None),
        provisioned=sum(n for (name, _), n in pc_by_key.items() if reserved_by_function.get(name) is None),
        minimum=world.minimum_unreserved,
    )


def _pc_total(world: _LambdaWorld, name: str, *, excluding: tuple[str, str] | None = None) -> int:
    return sum(cfg.requested for key, cfg in world.pc.items() if key[0] == name and key != excluding)


def _check_conflicts(backend: LambdaBackend, world: _LambdaWorld, target: _Target) -> None:
    for key in world.pc:
        if key[0] != target.name or key == target.key:
            continue
        other_is_alias = not key[1].isdigit()
        if _version_of(backend, *key) != target.version:
            continue
        if target.qualifier.isdigit() and other_is_alias:
            raise ResourceConflict(_VERSION_POINTED_BY_ALIAS)
        if not target.qualifier.isdigit():
            raise ResourceConflict(_ALIAS_ON_PROVISIONED_VERSION)


def _requested_executions(value: object) -> int:
    if value is None:
        raise ParameterValidation(
            "1 validation error detected: Value null at 'provisionedConcurrentExecutions' failed to satisfy "
            "constraint: Member must not be null"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterValidation(
            f"1 validation error detected: Value '{value}' at 'provisionedConcurrentExecutions' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1"
        )
    return value


def _lambda_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _put_pc(
    backend: LambdaBackend, function: str, qualifier: str | None, requested: object, *, dry_run: bool = False
) -> tuple[_Target, _PCConfig | None]:
    """Validate (and unless dry_run, store) a PC configuration; the caller holds _LOCK."""
    executions = _requested_executions(requested)
    target = _resolve(backend, function, qualifier, for_put=True)
    world = _world(backend)
    _purge(backend, world)
    _check_conflicts(backend, world, target)
    group = _groups(backend)[target.name]
    reserved = _reserved_of(group)
    refused = pool.pc_above_reserved_refusal(
        reserved, _pc_total(world, target.name, excluding=target.key), executions
    ) or pool.unreserved_refusal(
        _pool_left(backend, world), _pool_left(backend, world, pc={target.key: executions}), "ConcurrentExecutions"
    )
    if refused:
        raise InvalidParameterValue(refused)
    if dry_run:
        return target, None
    previous = world.pc.get(target.key)
    config = _PCConfig(
        requested=executions,
        previous_allocated=previous.state()[1] if previous is not None else 0,
        ready_at=time.monotonic() + _knobs.ready_delay_s,
        last_modified=_lambda_timestamp(),
        failure_reason=world.failures.pop(target.key, None),
    )
    world.pc[target.key] = config
    return target, config


def _config_view(config: _PCConfig, *, at_put: bool = False) -> dict[str, Any]:
    status, allocated, reason = ("IN_PROGRESS", config.previous_allocated, None) if at_put else config.state()
    view: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": allocated,
        "AllocatedProvisionedConcurrentExecutions": allocated,
        "Status": status,
        "LastModified": config.last_modified,
    }
    if reason is not None:
        view["StatusReason"] = reason
    return view


def _account_settings(backend: LambdaBackend) -> dict[str, Any]:
    world = _world(backend)
    groups = _groups(backend)
    reserved = sum(r for r in (_reserved_of(g) for g in groups.values()) if r is not None)
    code_size = sum(int(fn.code_size or 0) for g in groups.values() for fn in _functions_of(g))
    return {
        "AccountLimit": {
            "TotalCodeSize": _TOTAL_CODE_SIZE,
            "CodeSizeUnzipped": _CODE_SIZE_UNZIPPED,
            "CodeSizeZipped": _CODE_SIZE_ZIPPED,
            "ConcurrentExecutions": world.concurrency_limit,
            "UnreservedConcurrentExecutions": max(0, world.concurrency_limit - reserved),
        },
        "AccountUsage": {"TotalCodeSize": code_size, "FunctionCount": len(groups)},
    }


# ---------------------------------------------------------------------------------------------------------------
# Lambda: HTTP handlers, added to moto's LambdaResponse (moto dispatches rest-json by the botocore operation name)


def _path_function(response: LambdaResponse) -> str:
    return unquote(response.path.rstrip("/").split("/")[-2])


def _put_provisioned_concurrency_config(self: LambdaResponse) -> _Response:
    body = json.loads(self.body) if self.body else {}
    with _LOCK:
        _, config = _put_pc(
            self.backend,
            _path_function(self),
            self.querystring.get("Qualifier", [None])[0],
            body.get("ProvisionedConcurrentExecutions"),
        )
    assert config is not None
    return 202, {"status": 202}, json.dumps(_config_view(config, at_put=True))


def _get_provisioned_concurrency_config(self: LambdaResponse) -> _Response:
    with _LOCK:
        target = _resolve(
            self.backend, _path_function(self), self.querystring.get("Qualifier", [None])[0], for_put=False
        )
        world = _world(self.backend)
        _purge(self.backend, world)
        config = world.pc.get(target.key)
        if config is None:
            raise ProvisionedConcurrencyConfigNotFound()
        return 200, {"status": 200}, json.dumps(_config_view(config))


def _delete_provisioned_concurrency_config(self: LambdaResponse) -> _Response:
    with _LOCK:
        target = _resolve(
            self.backend, _path_function(self), self.querystring.get("Qualifier", [None])[0], for_put=False
        )
        _world(self.backend).pc.pop(target.key, None)
    return 204, {"status": 204}, ""


def _list_provisioned_concurrency_configs(self: LambdaResponse) -> _Response:
    name, _ = _split_function(_path_function(self))
    backend = self.backend
    with _LOCK:
        if name not in _groups(backend):
            raise ResourceNotFound(
                f"Function not found: {make_function_arn(backend.region_name, backend.account_id, name)}"
            )
        world = _world(backend)
        _purge(backend, world)
        items = [
            {"FunctionArn": f"{make_function_arn(backend.region_name, backend.account_id, name)}:{q}"}
            | _config_view(cfg)
            for (fn, q), cfg in sorted(world.pc.items())
            if fn == name
        ]
    start = int(self.querystring.get("Marker", ["0"])[0] or 0)
    size = int(self.querystring.get("MaxItems", ["50"])[0] or 50)
    page: dict[str, Any] = {"ProvisionedConcurrencyConfigs": items[start : start + size]}
    if start + size < len(items):
        page["NextMarker"] = str(start + size)
    return 200, {"status": 200}, json.dumps(page)


def _get_account_settings(self: LambdaResponse) -> _Response:
    with _LOCK:
        return 200, {"status": 200}, json.dumps(_account_settings(self.backend))


# ---------------------------------------------------------------------------------------------------------------
# Lambda: reserved concurrency


def _put_function_concurrency(self: LambdaBackend, function_name: str, reserved_concurrency: str) -> int:
    name = self.get_function(function_name).function_name
    value = int(reserved_concurrency)
    with _LOCK:
        world = _world(self)
        _purge(self, world)
        refused = pool.reserved_below_pc_refusal(value, _pc_total(world, name)) or pool.unreserved_refusal(
            _pool_left(self, world), _pool_left(self, world, reserved={name: value}), "ReservedConcurrentExecutions"
        )
        if refused:
            raise InvalidParameterValue(refused)
        for fn in _functions_of(_groups(self)[name]):
            fn.reserved_concurrency = value
    return value


def _delete_function_concurrency(self: LambdaBackend, function_name: str) -> None:
    name = self.get_function(function_name).function_name
    with _LOCK:
        for fn in _functions_of(_groups(self)[name]):
            fn.reserved_concurrency = None


_original_get_code = LambdaFunction.get_code


def _get_code(self: LambdaFunction) -> dict[str, Any]:
    code = _original_get_code(self)
    if self.reserved_concurrency is not None:
        code["Concurrency"] = {"ReservedConcurrentExecutions": int(self.reserved_concurrency)}
    return code


# ---------------------------------------------------------------------------------------------------------------
# Application Auto Scaling → Lambda PC

_original_register_scalable_target = ApplicationAutoscalingBackend.register_scalable_target


def _autoscaled_pc(
    autoscaling: ApplicationAutoscalingBackend, resource_id: str, low: int | None, high: int | None
) -> tuple[LambdaBackend, str, str, int] | None:
    """The PC change that registering [low, high] implies for resource_id, validated; None when there is none.

    The change is judged as PutProvisionedConcurrencyConfig judges it: the qualifier's PC *replaced* by the new
    value (`_put_pc`), so the PC it already holds counts once. A minimum above the maximum is refused, as Application
    Auto Scaling refuses it (its message is paraphrased: AWS does not document it).
    """
    if low is not None and high is not None and low > high:
        raise AWSValidationException(f"Minimum capacity [{low}] cannot be greater than maximum capacity [{high}].")
    parts = resource_id.split(":")
    if len(parts) != 3 or parts[0] != "function":
        return None
    _, name, qualifier = parts
    backend = lambda_backends[autoscaling.account_id][autoscaling.region_name]
    world = _world(backend)
    if _version_of(backend, name, qualifier) is None:
        return None
    _purge(backend, world)
    current = world.pc.get((name, qualifier))
    capacity = current.requested if current is not None else 0
    if low is not None and capacity < low:
        desired = low
    elif high is not None and current is not None and capacity > high:
        desired = high
    else:
        return None
    if desired > 0:
        try:
            _put_pc(backend, name, qualifier, desired, dry_run=True)
        except _LambdaError as error:
            raise AWSValidationException(error.error_message) from error
    return backend, name, qualifier, desired


def _register_scalable_target(
    self: ApplicationAutoscalingBackend,
    namespace: str,
    r_id: str,
    dimension: str,
    min_capacity: int | None = None,
    max_capacity: int | None = None,
    role_arn: Any = None,
    suspended_state: Any = None,
) -> Any:
    with _LOCK:
        change = None
        if namespace == "lambda" and dimension == PC_SCALABLE_DIMENSION:
            existing = self.targets.get(dimension, {}).get(r_id)
            low = min_capacity if min_capacity is not None else getattr(existing, "min_capacity", None)
            high = max_capacity if max_capacity is not None else getattr(existing, "max_capacity", None)
            change = _autoscaled_pc(self, r_id, low, high)
        target = _original_register_scalable_target(
            self,
            namespace,
            r_id,
            dimension,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            role_arn=role_arn,
            suspended_state=suspended_state,
        )
        if change is not None:
            backend, name, qualifier, desired = change
            if desired > 0:
                _put_pc(backend, name, qualifier, desired)
            else:
                _world(backend).pc.pop((name, qualifier), None)
    return target


# ---------------------------------------------------------------------------------------------------------------
# Every request: the request log and injected faults

_original_dispatch = BaseResponse._dispatch


def _take_fault(operation: str) -> _Fault | None:
    with _LOCK:
        fault = next((f for f in _knobs.faults if f.operation == operation), None)
        if fault is not None:
            fault.left -= 1
            if fault.left == 0:
                _knobs.faults.remove(fault)
        return fault


def _record(service: str, operation: str, status: int, injected: bool = False) -> None:
    with _LOCK:
        for log in _knobs.logs:
            log.requests.append(ServedRequest(service, operation, status, injected))


def _dispatch(self: BaseResponse, request: Any, full_url: str | None = None, headers: Any = None) -> Any:
    if not _knobs.logs and not _knobs.faults:
        return _original_dispatch(self, request, full_url, headers)
    self.setup_class(request, full_url, headers)
    try:
        operation = str(self._get_action() or "")
    except Exception:  # noqa: BLE001 - an unroutable request: moto's call_action answers it as it would anyway
        operation = ""
    service = str(self.boto3_service_name)
    fault = _take_fault(operation) if operation else None
    if fault is not None:
        _, response_headers, body = self.serialized(ActionResult(InjectedFault(fault.error_code, fault.message)))
        _record(service, operation, fault.http_status, injected=True)
        return fault.http_status, response_headers, body
    try:
        response = self.call_action()
    except HTTPException as error:  # moto's errors (ours too) are raised and answered by its Flask app
        _record(service, operation, int(error.code or 500))
        raise
    except Exception:
        _record(service, operation, 500)
        raise
    _record(service, operation, int(response[0]))
    return response


# ---------------------------------------------------------------------------------------------------------------
# Installation

_original_moto_api_reset = MotoAPIBackend.reset


def _moto_api_reset(self: MotoAPIBackend) -> None:
    _original_moto_api_reset(self)
    reset_knobs()


def install() -> None:
    """Patch moto in this process (idempotent). Install before the server serves its first Lambda request."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    with _LOCK:
        if _installed:
            return
        lambda_urls.url_paths[_PC_URL] = LambdaResponse.dispatch
        lambda_urls.url_paths[_ACCOUNT_SETTINGS_URL] = LambdaResponse.dispatch
        handlers = {
            "put_provisioned_concurrency_config": _put_provisioned_concurrency_config,
            "get_provisioned_concurrency_config": _get_provisioned_concurrency_config,
            "delete_provisioned_concurrency_config": _delete_provisioned_concurrency_config,
            "list_provisioned_concurrency_configs": _list_provisioned_concurrency_configs,
            "get_account_settings": _get_account_settings,
        }
        for action, handler in handlers.items():
            setattr(LambdaResponse, action, handler)
        LambdaBackend.put_function_concurrency = _put_function_concurrency  # type: ignore[method-assign,assignment]
        LambdaBackend.delete_function_concurrency = _delete_function_concurrency  # type: ignore[method-assign]
        LambdaFunction.get_code = _get_code  # type: ignore[method-assign]
        ApplicationAutoscalingBackend.register_scalable_target = _register_scalable_target  # type: ignore[method-assign]
        MotoAPIBackend.reset = _moto_api_reset  # type: ignore[method-assign]
        BaseResponse._dispatch = _dispatch  # type: ignore[method-assign]
        # moto warns when an error code is not in the service's model; an injected code need not be.
        warnings.filterwarnings("ignore", message=r"Exception\(InjectedFault\)", category=UserWarning)
        from medic_tools.world import (  # they build on this module
            moto_alarm_history,
            moto_cloudwatch,
            moto_dynamodb,
            moto_lambda_logging,
            moto_logs,
            moto_partiql,
            moto_quotas,
            moto_s3_lock,
        )

        moto_lambda_logging.install()
        moto_cloudwatch.install()
        moto_alarm_history.install()  # wraps moto_cloudwatch's PutMetricAlarm
        moto_quotas.install()
        moto_logs.install()
        moto_dynamodb.install()
        moto_partiql.install()
        moto_s3_lock.install()
        _installed = True
