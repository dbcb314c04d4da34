"""Memory of the code an alias (or a function without an alias) serves: memory is CPU, about one vCPU at 1,769 MB."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Final

from medic.actions.base import Action, PlannedAction, Scalar, TemplateProperty
from medic.actions.function_update import settle, when_settled
from medic.actions.provisioned import wait_for_pc
from medic.actions.qualifiers import alias_of, serves_latest
from medic.actions.request_checks import confine
from medic.aws import request_id
from medic.errors import ActionFailed, GuardrailRefused
from medic.facts import VCPU_MB
from medic.planning.cost import (
    MB_PER_GB,
    SECONDS_PER_HOUR,
    Estimate,
    Rates,
    count_text,
    field_number,
    format_usd,
    invocations_text,
    missing,
    monthly_invocations,
    price_text,
    signed_gb_text,
    signed_text,
    unknown_field,
)

if TYPE_CHECKING:
    from medic.alarms.signals import Target
    from medic.aws import AwsClients
    from medic.clock import Clock
    from medic.facts import Facts

#: Lambda's memory range (MB).
MIN_MEMORY_MB: Final = 128
MAX_MEMORY_MB: Final = 10240
#: Configuration that is released with the code: a difference between $LATEST and the alias's version is unreleased.
RELEASED_FIELDS: Final = ("Handler", "Runtime", "Environment", "Layers", "Architectures", "ImageConfigResponse")
UNRELEASED_CODE: Final = "$LATEST has unreleased code; publishing it would ship it"


class SetMemory(Action):
    """Give the code an alias (or the unqualified function) serves more (or less) memory, hence CPU, without
    shipping anything else.

    A function without an alias, whose traffic runs on $LATEST (:func:`serves_latest`), gets the memory directly:
    UpdateFunctionConfiguration(MemorySize) on the unqualified function, then a wait until its LastUpdateStatus is
    Successful (Lambda's `function_updated_v2` waiter). ``before`` and ``after`` are ``{"memory_mb"}``, read back from
    the unqualified function (the same drift check as an alias's); rollback restores the previous memory unless
    someone changed it since. Everything below is about an alias.

    A published version is immutable, so changing $LATEST alone does nothing for the alias. `apply`:
    UpdateFunctionConfiguration(MemorySize) on $LATEST → wait until LastUpdateStatus is Successful →
    PublishVersion (with the released CodeSha256 as a precondition) → UpdateAlias to the new version. It refuses
    first (ActionFailed) when $LATEST's code (CodeSha256) or released configuration (handler, runtime, environment,
    layers…) differs from the alias's version: publishing would ship unreleased work. It also refuses an alias with
    weighted routing (a deployment in progress). Moving an alias that has provisioned concurrency re-provisions it
    on the new version; `wait` waits for it to be READY again. A change call answered ResourceConflictException (an
    update of the function in progress) waits for the update to settle (Lambda's `function_updated_v2` waiter) and
    is tried again, at most CONFLICT_ATTEMPTS times in all; then the action fails (ActionFailed), never loops.

    Every UpdateFunctionConfiguration it sends carries the function and ``MemorySize`` only, checked on the client
    before it is sent (`medic.actions.request_checks`): IAM lets the actions role change any field of an opted-in
    function's configuration, and no condition key names the fields.

    ``before`` is ``{"memory_mb", "version"}`` (the alias's version and its memory); ``after`` is only
    ``{"memory_mb"}``, because the new version's number exists only once published: the executor's drift check then
    reads "already applied" when the alias serves the new memory whatever the version, and "drifted" when the alias
    moved to another version or memory meanwhile. The published version is kept in ``resource["published_version"]``
    and in the observed state. Rollback moves the alias back to the old version and restores $LATEST's memory when it
    still holds Medic's value.

    Runbook example::

        actions:
          - kind: set_memory
            params: {memory_mb: "min(1769, memory_mb * 2)"}
    """

    kind = "set_memory"
    read_permissions = ("lambda:GetAlias", "lambda:GetFunctionConfiguration")
    cap = ("memory_mb", "max_memory_mb")
    must_change = True
    risk = "high"
    permissions = (
        "lambda:GetAlias",
        "lambda:GetFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionConfiguration",
        "lambda:PublishVersion",
        "lambda:UpdateAlias",
        "lambda:GetProvisionedConcurrencyConfig",
    )
    params = ("memory_mb",)
    max_mode = "approve"

    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        if serves_latest(target, facts):
            return [self._plan_unqualified(str(target.function_name), params, facts)]
        function_name, alias = alias_of(target, self.kind)
        if facts.memory_mb is None or facts.alias_version is None:
            unknown = [name for name in ("memory_mb", "alias_version") if getattr(facts, name) is None]
            raise GuardrailRefused(
                "facts",
                "memory_mb and alias_version known",
                f"unknown: {', '.join(unknown)}",
                f"{self.kind}: the memory and version {alias} serves could not be read",
            )
        value, clamps = _memory_size(params["memory_mb"])
        pc = facts.pc_requested or 0
        text = (
            f"Memory of {function_name}:{alias}: {facts.memory_mb} MB → {value} MB "
            f"({facts.memory_mb / VCPU_MB:.2f} → {value / VCPU_MB:.2f} vCPU): $LATEST gets {value} MB, is published "
            f"as a new version (same code as version {facts.alias_version}), and {alias} moves to it"
        )
        if pc:
            text += (
                f". Moving {alias} re-provisions its {pc} provisioned executions on the new version (spillover "
                f"to on-demand until READY)"
            )
        return [
            PlannedAction(
                kind=self.kind,
                target=f"{function_name}:{alias}",
                function_name=function_name,
                qualifier=alias,
                primary="memory_mb",
                before={"memory_mb": facts.memory_mb, "version": facts.alias_version},
                after={"memory_mb": value},
                text=text,
                clamps=clamps,
                resource={"provisioned_concurrency": pc},
            )
        ]

    def _plan_unqualified(self, function_name: str, params: dict[str, Any], facts: Facts) -> PlannedAction:
        if facts.memory_mb is None:
            raise GuardrailRefused(
                "facts",
                "memory_mb known",
                "unknown: memory_mb",
                f"{self.kind}: the memory of {function_name} could not be read",
            )
        value, clamps = _memory_size(params["memory_mb"])
        return PlannedAction(
            kind=self.kind,
            target=function_name,
            function_name=function_name,
            primary="memory_mb",
            before={"memory_mb": facts.memory_mb},
            after={"memory_mb": value},
            text=(
                f"Memory of {function_name} (no alias: its traffic runs on $LATEST): {facts.memory_mb} MB → {value} MB "
                f"({facts.memory_mb / VCPU_MB:.2f} → {value / VCPU_MB:.2f} vCPU), set on the unqualified function"
            ),
            clamps=clamps,
        )

    def template_properties(self, action: PlannedAction) -> list[TemplateProperty]:
        return [
            TemplateProperty(
                resource_type="AWS::Lambda::Function",
                property="MemorySize",
                field="memory_mb",
                value=action.after.get("memory_mb"),
            )
        ]

    def read_live(self, clients: AwsClients, action: PlannedAction) -> dict[str, Scalar]:
        assert action.function_name
        if action.qualifier is None:
            config = clients.lambda_.get_function_configuration(FunctionName=action.function_name)
            return {"memory_mb": config.get("MemorySize")}
        assert action.qualifier
        version = clients.lambda_.get_alias(FunctionName=action.function_name, Name=action.qualifier)["FunctionVersion"]
        config = clients.lambda_.get_function_configuration(FunctionName=action.function_name, Qualifier=version)
        return {"memory_mb": config.get("MemorySize"), "version": version}

    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        if action.qualifier is None:
            return self._apply_unqualified(clients, action)
        assert action.function_name and action.qualifier
        client = confine(clients.lambda_)
        name, alias_name, memory = action.function_name, action.qualifier, int(action.after["memory_mb"] or 0)
        alias = client.get_alias(FunctionName=name, Name=alias_name)
        if (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"):
            raise ActionFailed(
                self.kind,
                action.target,
                f"{alias_name} routes traffic to several versions (a deployment in progress); Medic does not move it",
            )
        released = client.get_function_configuration(FunctionName=name, Qualifier=alias["FunctionVersion"])
        latest = client.get_function_configuration(FunctionName=name)
        if latest.get("CodeSha256") != released.get("CodeSha256"):
            raise ActionFailed(self.kind, action.target, UNRELEASED_CODE)
        unreleased = [
            field for field in RELEASED_FIELDS if _canonical(latest.get(field)) != _canonical(released.get(field))
        ]
        if unreleased:
            raise ActionFailed(
                self.kind,
                action.target,
                f"$LATEST has unreleased configuration ({', '.join(unreleased)}); publishing it would ship it",
            )
        latest_memory = int(latest.get("MemorySize") or 0)
        action.resource.setdefault("latest_memory_mb_before", latest_memory)
        try:
            if latest_memory != memory:
                when_settled(
                    self.kind,
                    clients,
                    action,
                    client.update_function_configuration,
                    FunctionName=name,
                    MemorySize=memory,
                )
                settle(self.kind, clients, action)
            published = when_settled(
                self.kind,
                clients,
                action,
                client.publish_version,
                FunctionName=name,
                CodeSha256=str(released.get("CodeSha256", "")),
                Description=f"medic: memory {action.before.get('memory_mb')} → {memory} MB",
            )
            version = published["Version"]
            if published.get("MemorySize") != memory or published.get("CodeSha256") != released.get("CodeSha256"):
                raise ActionFailed(
                    self.kind,
                    action.target,
                    f"version {version} has {published.get('MemorySize')} MB "
                    f"and code {published.get('CodeSha256')}, not {memory} MB and the released code",
                )
            response = when_settled(
                self.kind,
                clients,
                action,
                client.update_alias,
                FunctionName=name,
                Name=alias_name,
                FunctionVersion=version,
            )
        except Exception:
            self._restore_latest(clients, action, int(action.resource["latest_memory_mb_before"] or 0), memory)
            raise
        action.resource["published_version"] = version
        return request_id(dict(response))

    def _apply_unqualified(self, clients: AwsClients, action: PlannedAction) -> str:
        """UpdateFunctionConfiguration(MemorySize) on the function itself, settled (idempotent: a second call finds
        the memory already set and changes nothing)."""
        assert action.function_name
        client, memory = confine(clients.lambda_), int(action.after["memory_mb"] or 0)
        if client.get_function_configuration(FunctionName=action.function_name).get("MemorySize") == memory:
            settle(self.kind, clients, action)
            return str(action.resource.get("request_id") or "already applied")
        response = when_settled(
            self.kind,
            clients,
            action,
            client.update_function_configuration,
            FunctionName=action.function_name,
            MemorySize=memory,
        )
        settle(self.kind, clients, action)
        action.resource["request_id"] = request_id(dict(response))
        return str(action.resource["request_id"])

    def wait(self, clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float) -> dict[str, Scalar]:
        live = self.read_live(clients, action)
        if live["memory_mb"] != action.after["memory_mb"]:
            where = (
                f"{action.function_name}"
                if action.qualifier is None
                else f"{action.qualifier} serves {live['memory_mb']} MB (version {live['version']}),"
            )
            if action.qualifier is None:
                where += f" has {live['memory_mb']} MB,"
            raise ActionFailed(self.kind, action.target, f"{where} not {action.after['memory_mb']} MB")
        pc = int(action.resource.get("provisioned_concurrency") or 0)
        if pc:
            live["provisioned_concurrency"] = wait_for_pc(clients, action, clock, timeout_s, pc)["allocated"]
        return live

    def rollback(self, clients: AwsClients, action: PlannedAction) -> str:
        if action.qualifier is None:
            return self._rollback_unqualified(clients, action)
        assert action.function_name and action.qualifier
        response = when_settled(
            self.kind,
            clients,
            action,
            clients.lambda_.update_alias,
            FunctionName=action.function_name,
            Name=action.qualifier,
            FunctionVersion=str(action.before["version"]),
        )
        previous = action.resource.get("latest_memory_mb_before")
        if previous is not None:
            self._restore_latest(clients, action, int(previous), int(action.after["memory_mb"] or 0))
        return request_id(dict(response))

    def _rollback_unqualified(self, clients: AwsClients, action: PlannedAction) -> str:
        """The function's previous memory, unless someone changed it since Medic set it (then nothing is touched
        and the rollback fails, naming what it found: Medic does not fight the human)."""
        assert action.function_name
        before_mb, ours = int(action.before["memory_mb"] or 0), int(action.after["memory_mb"] or 0)
        current = clients.lambda_.get_function_configuration(FunctionName=action.function_name).get("MemorySize")
        if current == before_mb:
            return ""
        if current != ours:
            raise ActionFailed(
                self.kind,
                action.target,
                f"{action.function_name} has {current} MB, changed since Medic set {ours} MB: not restored to "
                f"{before_mb} MB (Medic does not fight the human)",
            )
        return self._restore_latest(clients, action, before_mb, ours)

    def _restore_latest(self, clients: AwsClients, action: PlannedAction, previous: int, ours: int) -> str:
        """Put $LATEST's memory back to `previous`, unless someone changed it since Medic set `ours`; return the
        request id ("" when nothing was restored)."""
        assert action.function_name
        current = clients.lambda_.get_function_configuration(FunctionName=action.function_name).get("MemorySize")
        if current != ours or previous == ours or previous < MIN_MEMORY_MB:
            return ""
        response = when_settled(
            self.kind,
            clients,
            action,
            confine(clients.lambda_).update_function_configuration,
            FunctionName=action.function_name,
            MemorySize=previous,
        )
        settle(self.kind, clients, action)
        return request_id(dict(response))

    def estimate(self, action: PlannedAction, facts: Facts, rates: Rates) -> Estimate:
        after = field_number(action.after, "memory_mb")
        if after is None:
            return None, unknown_field(action, "after", "memory_mb")
        before = field_number(action.before, "memory_mb")
        if before is None:
            before = float(facts.memory_mb) if facts.memory_mb is not None else None
        monthly = monthly_invocations(facts, rates.table)
        seconds = facts.warm_duration_avg_ms / 1000 if facts.warm_duration_avg_ms is not None else None
        if before is None or seconds is None or monthly is None or facts.pc_requested is None:
            known = {
                "memory_mb": before,
                "warm_duration_avg_ms": seconds,
                "invocations": monthly,
                "pc_requested": facts.pc_requested,
            }
            return None, missing(facts, *(name for name, value in known.items() if value is None))
        prices, table = rates.lambda_, rates.table
        delta_mb = after - before
        usd = delta_mb / MB_PER_GB * seconds * monthly * prices.duration_gb_s
        basis = (
            f"{signed_text(delta_mb)} MB ({signed_gb_text(delta_mb)}) × {seconds:g} s average warm duration × "
            f"{invocations_text(facts, monthly, table)} × {price_text(prices.duration_gb_s)}/GB-s on demand, "
            f"before any speed-up (more memory is more CPU, which usually shortens the duration)"
        )
        if facts.pc_requested:
            pool = delta_mb / MB_PER_GB * facts.pc_requested * rates.month_s * prices.provisioned_gb_s
            usd += pool
            basis += (
                f"; plus its {facts.pc_requested} provisioned executions at the new size: "
                f"{signed_gb_text(delta_mb)} × {facts.pc_requested} × {count_text(table.hours_per_month)} h × "
                f"{SECONDS_PER_HOUR} s × {price_text(prices.provisioned_gb_s)}/GB-s = {format_usd(pool)}"
            )
        return usd, f"{basis} ({rates.label})"


def _memory_size(wanted_mb: Any) -> tuple[int, list[str]]:
    """A whole number of MB within Lambda's range, and the clamp when it had to be moved into it."""
    wanted = float(wanted_mb)
    if not math.isfinite(wanted) or wanted <= 0:
        raise GuardrailRefused("valid_value", "> 0", wanted_mb, "memory_mb must be a finite size")
    value = min(max(round(wanted), MIN_MEMORY_MB), MAX_MEMORY_MB)
    if value == round(wanted):
        return value, []
    return value, [f"memory_mb {round(wanted)} → {value}: Lambda's range is {MIN_MEMORY_MB}–{MAX_MEMORY_MB} MB"]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
