"""Telling the story: the operator's view of a simulation, printed as it happens (silent with `--json`) — the ground
truth of a modelled incident, each plan as triage made it, the world after, the log and the outcome."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medic.aws import AwsClients
    from medic.plan import Plan
    from medic_tools.scenario import Scenario
    from medic_tools.simulate import Outcome
    from medic_tools.world.workload.account import ModelledAccount


class Story:
    """The operator's view of the run, printed as it happens (silent with --json)."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream
        self.step = 0

    def section(self, title: str) -> None:
        self.step += 1
        self.write(f"\n━━ {self.step}. {title} " + "━" * max(0, 70 - len(title)))

    def write(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()


def tell_truth(account: ModelledAccount, scenario: Scenario, story: Story) -> dict[str, Any]:
    """The ground truth of the modelled incident (from the model, not from Medic), told and returned as JSON."""
    from medic_tools.world.workload.build import alarm_view

    assert scenario.alarm is not None
    truth = account.ground_truth(alarm_view(scenario.alarm))
    story.section("Ground truth (from the workload model, not from Medic)")
    before = truth.before
    story.write(f"{truth.signal} on {truth.target}: {truth.diagnosis} (alarm's worst period {before.alarm_value})")
    for key, value in truth.evidence.items():
        story.write(f"  {key}: {json.dumps(value, default=str)}")
    if truth.fix is not None:
        verdict = "clears the alarm" if truth.fix.clears else "does NOT clear the alarm"
        after = truth.fix.after
        story.write(
            f"  fix: {truth.fix.describe()} — replayed, {verdict} (worst period after: {after.alarm_value}, "
            f"throttles {after.throttles}, spillover {after.spillover}, p99 {after.p99_ms} ms)"
        )
    for alternative in truth.alternatives:
        story.write(f"  also clears it: {alternative.describe()}")
    if truth.note:
        story.write(f"  {truth.note}")
    document = truth.as_json()
    for edge, minute in (("start", truth.window[0]), ("end", truth.window[1])):
        document["window"][edge] = (account.start + timedelta(minutes=minute)).isoformat()
    return document


def tell_plan(plan: Plan, story: Story) -> None:
    story.write(
        f"plan {plan.id}: signal {plan.signal} on {plan.target} → {plan.diagnosis or 'no diagnosis'} → {plan.status}"
    )
    if plan.decision and plan.decision.trace:
        for row in plan.decision.trace:
            mark = "✔ matched" if row.matched else "✘"
            why = "; ".join(f"{c.expression} → {c.result}" for c in row.conditions if c.result != "true") or row.note
            story.write(f"  row {row.row}: {mark}{'' if row.matched else ' (' + why + ')'}")
    for action in plan.actions:
        if action.kind != "advise":
            story.write(
                f"  change: {action.text}" + (f" [clamped: {'; '.join(action.clamps)}]" if action.clamps else "")
            )
    for refusal in plan.blocked_by:
        story.write(
            f"  blocked by {refusal.guard}: {refusal.message} (limit {refusal.limit}, observed {refusal.observed})"
        )
    if plan.reason and not plan.diagnosis:
        story.write(f"  reason: {plan.reason}")


def world_after(clients: AwsClients, scenario: Scenario) -> dict[str, Any]:
    """What the actions may have changed, read back from the world (printed, and in `--json` as `world_after`)."""
    state: dict[str, Any] = {}
    lam = clients.lambda_
    for spec in scenario.world.functions:
        function = lam.get_function(FunctionName=spec.name)
        entry: dict[str, Any] = {
            "memory_mb": function["Configuration"].get("MemorySize"),
            "reserved_concurrency": (function.get("Concurrency") or {}).get("ReservedConcurrentExecutions"),
        }
        mappings = lam.list_event_source_mappings(FunctionName=spec.name).get("EventSourceMappings", [])
        if mappings:
            entry["event_sources"] = {
                str(m.get("EventSourceArn", "")).rsplit(":", 1)[-1]: (m.get("ScalingConfig") or {}).get(
                    "MaximumConcurrency"
                )
                for m in mappings
            }
        if spec.invoked_by:
            events = clients.client("events")
            entry["rule_targets"] = {
                invoker.eventbridge_rule: [
                    str(t["Arn"]).rsplit(":", 1)[-1]
                    for t in events.list_targets_by_rule(Rule=invoker.eventbridge_rule)["Targets"]
                ]
                for invoker in spec.invoked_by
            }
        state[spec.name] = entry
        for alias in spec.aliases:
            key = f"{spec.name}:{alias.name}"
            try:
                config = clients.lambda_.get_provisioned_concurrency_config(
                    FunctionName=spec.name, Qualifier=alias.name
                )
                state[key] = {
                    "provisioned_concurrency": config.get("RequestedProvisionedConcurrentExecutions"),
                    "allocated": config.get("AllocatedProvisionedConcurrentExecutions"),
                    "status": config.get("Status"),
                }
            except clients.lambda_.exceptions.ProvisionedConcurrencyConfigNotFoundException:
                state[key] = {"provisioned_concurrency": 0}
            targets = clients.autoscaling.describe_scalable_targets(
                ServiceNamespace="lambda", ResourceIds=[f"function:{key}"]
            )["ScalableTargets"]
            if targets:
                state[key]["autoscaling"] = {"min": targets[0]["MinCapacity"], "max": targets[0]["MaxCapacity"]}
            scheduled = clients.autoscaling.describe_scheduled_actions(
                ServiceNamespace="lambda", ResourceId=f"function:{key}"
            )["ScheduledActions"]
            if scheduled:
                state[key]["scheduled"] = {
                    a["ScheduledActionName"]: [a["Schedule"], (a.get("ScalableTargetAction") or {}).get("MinCapacity")]
                    for a in scheduled
                }
    quotas = clients.client("service-quotas")
    try:
        history = quotas.list_requested_service_quota_change_history_by_quota(
            ServiceCode="lambda", QuotaCode="L-B99A9384"
        ).get("RequestedQuotas", [])
    except Exception:  # noqa: BLE001 - a world without the quota API extension has no requests to show
        history = []
    if history:
        state["account"] = {"quota_requests": [[r.get("DesiredValue"), r.get("Status")] for r in history]}
    return state


def tell_ending(outcome: Outcome, story: Story) -> None:
    story.section("The world now")
    for key, value in outcome.world_after.items():
        story.write(f"{key}: {json.dumps(value)}")
    story.section("Remediation log (DynamoDB, append-only, hash-chained)")
    for event in outcome.log:
        summary = json.dumps(event.data, default=str)
        story.write(
            f"{event.at}  {event.plan_id}  #{event.seq:<2} {event.kind:<18} "
            f"{summary[:150] + ('…' if len(summary) > 150 else '')}"
        )
    story.section("Outcome")
    for plan in outcome.plans:
        from medic.outcomes import describe_change

        changes = "; ".join(describe_change(a) for a in plan.changes) or "no change"
        story.write(f"plan {plan.id}: {plan.signal}/{plan.diagnosis} → {plan.status} ({changes})")
