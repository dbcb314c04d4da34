"""What a remediation would act on (:class:`Target`: a function and its alias or version, a DB instance, or nothing),
and how an alarm's metrics name it.

- The target comes from the dimensions: ``FunctionName`` (an ARN is reduced to the name), ``Resource``
  (``fn:alias`` or ``fn:version``) or ``ExecutedVersion`` for the qualifier; ``DBInstanceIdentifier`` for a DB
  instance. A ``Resource`` naming another function than ``FunctionName``, an invalid name, or no name at all gives
  ``Target(kind="none")``, and the reason says why: an empty target never means "all".
- Queries that name different targets give no target: Medic never guesses.
- A metric in another account gives ``Target(kind="none")`` too: a metric query's ``accountId`` (CloudWatch
  cross-account observability: an alarm in a monitoring account on a source account's metric; ``MetricDataQuery``
  API reference, "AccountId") or a ``FunctionName`` ARN naming another account or Region than the alarm's. Medic
  acts in the alarm's account and Region (``Plan.account``, ``Plan.region``), where a function of the same name
  may exist and is not the one the metric is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, model_validator

if TYPE_CHECKING:
    from medic.alarms.configuration import AlarmConfiguration, MetricStat

_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_QUALIFIER = re.compile(r"^(?:\$LATEST|[A-Za-z0-9_-]{1,128})$")
_FUNCTION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:(?P<rest>.+)$")
_DB_INSTANCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")


class Target(BaseModel):
    """What a remediation would act on: a function (and alias/version), a DB instance, or nothing.

    ``kind="none"`` carries no names; a ``function`` target always has a valid function name. There is
    no wildcard: a target names exactly one resource or none.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["function", "db_instance", "none"]
    function_name: str | None = None
    qualifier: str | None = None
    db_instance_id: str | None = None

    @model_validator(mode="after")
    def _names_match_kind(self) -> Target:
        if self.kind == "function":
            if not self.function_name or not _FUNCTION_NAME.match(self.function_name):
                raise ValueError(f"a function target needs a valid function name, got {self.function_name!r}")
            if self.qualifier is not None and not _QUALIFIER.match(self.qualifier):
                raise ValueError(f"invalid function qualifier {self.qualifier!r}")
            if self.db_instance_id is not None:
                raise ValueError("a function target has no db_instance_id")
        elif self.kind == "db_instance":
            if not self.db_instance_id or not _DB_INSTANCE_ID.match(self.db_instance_id):
                raise ValueError(f"a db_instance target needs a valid instance id, got {self.db_instance_id!r}")
            if self.function_name is not None or self.qualifier is not None:
                raise ValueError("a db_instance target has no function name or qualifier")
        elif (self.function_name, self.qualifier, self.db_instance_id) != (None, None, None):
            raise ValueError("a 'none' target names nothing")
        return self

    @classmethod
    def none(cls) -> Target:
        return cls(kind="none")

    @classmethod
    def function(cls, name: str, qualifier: str | None = None) -> Target:
        return cls(kind="function", function_name=name, qualifier=qualifier)

    @classmethod
    def db_instance(cls, instance_id: str) -> Target:
        return cls(kind="db_instance", db_instance_id=instance_id)

    @property
    def display(self) -> str:
        """``checkout:live``, ``checkout``, ``db orders-db`` or ``(none)``."""
        if self.kind == "function":
            return f"{self.function_name}:{self.qualifier}" if self.qualifier else f"{self.function_name}"
        if self.kind == "db_instance":
            return f"db {self.db_instance_id}"
        return "(none)"


def metric_in_another_account(config: AlarmConfiguration, account: str) -> str:
    """Why the alarm's metrics are not the alarm's account's (a query's ``accountId``), or ``""``."""
    for query in config.metrics:
        if query.account_id and query.account_id.strip() != account:
            return (
                f"the metric is in account {query.account_id} (configuration.metrics[{query.id}].accountId), not the "
                f"alarm's account {account}: Medic never changes a same-named function in {account}; create the "
                f"alarm in {query.account_id} (its member stack forwards the event to Medic, docs/organizations.md)"
            )
    return ""


def resolve_target(stats: Iterable[MetricStat], account: str, region: str, *, function: bool) -> tuple[Target, str]:
    """One target agreed on by every query that names one (a function when `function`, else a DB instance); else
    ``Target.none()`` and the reason."""
    targets: list[Target] = []
    missing = ""
    for stat in stats:
        if function:
            target, problem, named = _function_target(stat.metric.dimensions, account, region)
        else:
            target, problem, named = _db_target(stat.metric.dimensions)
        if target is not None:
            targets.append(target)
        elif named:
            return Target.none(), problem
        else:
            missing = missing or problem
    distinct = list(dict.fromkeys(targets))
    if len(distinct) == 1:
        return distinct[0], ""
    if len(distinct) > 1:
        return Target.none(), f"queries name different targets ({', '.join(t.display for t in distinct)})"
    return Target.none(), missing


def _function_target(dimensions: Mapping[str, str], account: str, region: str) -> tuple[Target | None, str, bool]:
    """(target, problem, whether the dimensions tried to name a function) for an alarm in ``account``/``region``."""
    function_dim = dimensions.get("FunctionName", "").strip()
    resource_dim = dimensions.get("Resource", "").strip()
    version_dim = dimensions.get("ExecutedVersion", "").strip()
    if not function_dim and not resource_dim:
        return None, "no FunctionName dimension (account-level metric, no single function)", False
    for dimension in (function_dim, resource_dim):
        arn = _FUNCTION_ARN.match(dimension)
        if arn and (arn.group("account"), arn.group("region")) != (account, region):
            where = f"account {arn.group('account')} ({arn.group('region')})"
            problem = f"the function ARN {dimension!r} is in {where}, not the alarm's account {account} ({region})"
            return None, problem + ": Medic never changes a same-named function there", True

    name, qualifier = _split_function(function_dim) if function_dim else (None, None)
    if resource_dim:
        resource_name, resource_qualifier = _split_function(resource_dim)
        if name is not None and resource_name != name:
            return None, f"Resource {resource_dim!r} names another function than FunctionName {function_dim!r}", True
        name = resource_name
        if qualifier is not None and resource_qualifier is not None and qualifier != resource_qualifier:
            return None, f"Resource {resource_dim!r} and FunctionName {function_dim!r} name different qualifiers", True
        qualifier = resource_qualifier or qualifier
    qualifier = qualifier or version_dim or None

    if name is None or not _FUNCTION_NAME.match(name):
        return None, f"{name or function_dim!r} is not a valid function name", True
    if qualifier is not None and not _QUALIFIER.match(qualifier):
        return None, f"{qualifier!r} is not a valid alias or version", True
    return Target.function(name, qualifier), "", True


def _split_function(value: str) -> tuple[str, str | None]:
    """``checkout`` → (checkout, None); ``checkout:live`` or a function ARN → (checkout, live)."""
    arn = _FUNCTION_ARN.match(value)
    if arn:
        value = arn.group("rest")
    name, _, qualifier = value.partition(":")
    return name, qualifier or None


def _db_target(dimensions: Mapping[str, str]) -> tuple[Target | None, str, bool]:
    """(target, problem, whether the dimensions tried to name a DB instance)."""
    instance_id = dimensions.get("DBInstanceIdentifier", "").strip()
    if not instance_id:
        scope = " (cluster-level metric)" if "DBClusterIdentifier" in dimensions else ""
        return None, f"no DBInstanceIdentifier dimension{scope}", False
    if not _DB_INSTANCE_ID.match(instance_id):
        return None, f"{instance_id!r} is not a valid DB instance identifier", True
    return Target.db_instance(instance_id), "", True
