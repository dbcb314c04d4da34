"""`medic simulate`: build a fresh embedded AWS world from a scenario and run the real pipeline on it.

The alarm is evaluated by the world (as CloudWatch would) and its "CloudWatch Alarm State Change"
event is delivered to the real triage handler; the Slack card goes to the console transport; the
approval is a correctly signed `block_actions` request to the real interactions handler; queued
plans are delivered from the real SQS queue to the executor handler; after the fix, the world
writes the scenario's post-fix metrics, re-evaluates the alarm, and the verifier handler runs.

`Simulation` runs those steps in order; the world is built by `medic_tools.world.scenario_world`, the steps around the
handlers (the alarm, the fix, the signed click, the executor queue) are `medic_tools.simulation_steps`, and what the
operator is told is `medic_tools.story`.

A developer tool: no Lambda function imports this module (nor moto).
"""

from __future__ import annotations

import importlib.util
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from medic.aws import AwsClients
from medic.chatops.transport import ConsoleTransport, render_block
from medic.clock import ManualClock
from medic.config import Settings
from medic.errors import ScenarioError
from medic.ledger.store import LogEvent
from medic.plan import Plan, contract_json
from medic.planning.runbook import Runbook
from medic.runtime import Runtime, install
from medic_tools import simulation_steps as steps
from medic_tools.scenario import Scenario, load_scenario
from medic_tools.simulation_constants import (
    ACCOUNT,
    APP,
    APPROVER,
    CHANNEL,
    REPO_ROOT,
    SECOND_APPROVER,
    TEAM,
    Decide,
)
from medic_tools.story import Story, tell_ending, tell_plan, tell_truth, world_after
from medic_tools.world.scenario_world import build_medic_infra, build_world, put_metric

if TYPE_CHECKING:
    from medic_tools.backtest.model import BacktestDocument
    from medic_tools.world.server import EmbeddedAWS
    from medic_tools.world.workload.account import ModelledAccount


@dataclass
class Outcome:
    """What a simulation produced."""

    scenario: str
    plans: list[Plan] = field(default_factory=list)
    log: list[LogEvent] = field(default_factory=list)
    world_after: dict[str, Any] = field(default_factory=dict)
    ground_truth: dict[str, Any] | None = None
    backtest: dict[str, Any] | None = None
    promotions: list[dict[str, Any]] | None = None

    def contract(self) -> dict[str, Any]:
        """The `--json` document (docs/SCENARIOS.md); `ground_truth` only when the scenario has a workload, `backtest`
        only when asked for (`medic simulate --backtest`)."""
        document = {
            "scenario": self.scenario,
            "plans": [contract_json(plan) for plan in self.plans],
            "log": [event.model_dump(mode="json") for event in self.log],
            "world_after": self.world_after,
        }
        if self.ground_truth is not None:
            document["ground_truth"] = self.ground_truth
        if self.backtest is not None:
            document["backtest"] = self.backtest
        if self.promotions:
            document["promotions"] = self.promotions
        return document


def load_handler(name: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The real `functions/<name>/app.py` handler, loaded from the repository."""
    path = REPO_ROOT / "functions" / name / "app.py"
    if not path.exists():
        raise ScenarioError(field="functions", source=str(path), problem="handler not found (run from a checkout)")
    spec = importlib.util.spec_from_file_location(f"medic_function_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = module.handler
    return handler


def simulate(
    path: str | Path,
    *,
    decide: Decide = "approve",
    stream: IO[str] | None = None,
    show_json: bool = True,
    aws: EmbeddedAWS | None = None,
    backtest: bool = False,
) -> Outcome:
    """Run one scenario end to end on a fresh world; raises `ScenarioError` on invalid input.

    `aws`: an already running embedded AWS to reuse (it is reset first); by default one is started. `backtest`: then
    backtest the world it ran (`Simulation.backtest`), into `Outcome.backtest`.
    """
    scenario = load_scenario(path)
    from medic.log import configure
    from medic_tools.world.server import EmbeddedAWS

    configure("WARNING")  # the story is the output; Medic's own JSON logs would drown it
    if aws is not None:
        aws.reset()
        return Simulation(scenario, str(path), aws.endpoint_url, Story(stream), show_json).run(decide, backtest)
    with EmbeddedAWS() as world:
        world.reset()  # moto's state is per process: a new server does not mean a new world
        return Simulation(scenario, str(path), world.endpoint_url, Story(stream), show_json).run(decide, backtest)


def triage_only(path: str | Path, runbook: Runbook | None = None, aws: EmbeddedAWS | None = None) -> list[Plan]:
    """Build the scenario's world and triage its alarm (nothing is approved or applied, no ground truth is told): for
    `medic explain`.

    `aws`: an already running embedded AWS to reuse (it is reset first); by default one is started."""
    scenario = load_scenario(path)
    from medic.log import configure
    from medic_tools.world.server import EmbeddedAWS

    configure("WARNING")

    def run(world: EmbeddedAWS) -> list[Plan]:
        world.reset()
        simulation = Simulation(scenario, str(path), world.endpoint_url, Story(None), runbook=runbook, truth=False)
        try:
            simulation.setup()
            return simulation.triage(simulation.alarm_events())
        finally:
            install(None)

    if aws is not None:
        return run(aws)
    with EmbeddedAWS() as world:
        return run(world)


class Simulation:
    """One scenario on one world, step by step (tests drive the steps one at a time)."""

    def __init__(
        self,
        scenario: Scenario,
        source: str,
        endpoint: str,
        story: Story,
        show_json: bool = True,
        runbook: Runbook | None = None,
        truth: bool = True,
    ) -> None:
        """`truth`: tell the modelled incident's ground truth and replay Medic's plan through the model (`medic
        explain` needs neither: both replay the workload, most of a modelled scenario's time)."""
        import boto3

        self.runbook, self.tell_truth = runbook, truth
        self.scenario, self.source, self.story = scenario, source, story
        self.region = scenario.world.region
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region)  # noqa: S106
        self.clients = AwsClients(session=session, region=self.region, endpoint_url=endpoint)
        self.clock = ManualClock(datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1))
        self.started = self.clock.now()
        self.console = ConsoleTransport(
            story.stream or io.StringIO(), show_json=show_json, ts=lambda: f"{int(self.clock.now().timestamp())}.000100"
        )
        self.infra: dict[str, str] = {}
        self.handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {}
        self.runtime: Runtime | None = None
        self.account: ModelledAccount | None = None
        self.truth: dict[str, Any] | None = None

    def setup(self) -> Runtime:
        """Build the world and Medic's own resources; install Medic's runtime for the handlers."""
        from medic_tools.world import moto_ext

        self.story.write(f"Scenario {self.source}: {self.scenario.description or '(no description)'}")
        self.story.section("The world (embedded AWS: moto over HTTP on 127.0.0.1)")
        moto_ext.set_account_concurrency_limit(self.scenario.world.account_concurrency_limit, ACCOUNT, self.region)
        self.infra = build_medic_infra(self.clients)
        self.account = build_world(self.clients, self.scenario, self.clock, self.story)
        defaults: dict[str, Any] = {
            "approvers": frozenset({APPROVER, SECOND_APPROVER}),
            "dry_run": False,
            "verify_after_s": steps.verification_window(self.scenario),
        }
        settings = Settings(
            **{**defaults, **self.scenario.settings},  # the scenario's overrides win over the simulator's defaults
            plans_table=self.infra["plans"],
            events_table=self.infra["events"],
            executor_queue_url=self.infra["queue"],
            slack_channel=CHANNEL,
            slack_signing_secret_arn=self.infra["signing_secret_arn"],
            slack_team_id=TEAM,
            slack_app_id=APP,
            region=self.region,
            actions_role_arn=self.infra["actions_role_arn"],
        )
        self.metrics = io.StringIO()  # the EMF lines Lambda would print (stdout is the story here)
        self.runtime = Runtime(
            settings,
            clients=self.clients,
            clock=self.clock,
            slack=self.console,
            runbook=self.runbook,
            metrics_stream=self.metrics,
        )
        install(self.runtime)
        self.handlers = {name: load_handler(name) for name in ("triage", "interactions", "executor", "verifier")}
        return self.runtime

    def alarm_events(self) -> list[dict[str, Any]]:
        from medic_tools.world import alarms

        events = steps.alarm_events(self.scenario, self.source, self.clock, self.region, alarms)
        if self.tell_truth and self.account is not None and self.scenario.alarm is not None:
            self.truth = tell_truth(self.account, self.scenario, self.story)
        self.story.section("The alarm fires")
        for event in events:
            detail = event.get("detail", {})
            state = detail.get("state", {})
            self.story.write(
                f"EventBridge → triage: {detail.get('alarmName')} {state.get('value')} at "
                f"{state.get('timestamp')}\n  {state.get('reason', '')}"
            )
        return events

    def triage(self, events: list[dict[str, Any]]) -> list[Plan]:
        assert self.runtime is not None
        self.story.section("Triage: signal → facts → runbook → plan")
        triaged = [self.handlers["triage"](event, None) for event in events]
        for result in triaged:
            self.story.write("triage returned " + json.dumps(result))
        plans = [p for p in (self.runtime.ledger.get(r["plan_id"]) for r in triaged if r.get("plan_id")) if p]
        for plan in plans:
            tell_plan(plan, self.story)
        if self.account is not None and self.truth is not None and self.scenario.alarm is not None:
            self._predict(plans)
        return plans

    def _predict(self, plans: list[Plan]) -> None:
        """Medic's plan replayed through the workload model: what the card's change is predicted to do (told, and in
        `--json` under ground_truth.predicted)."""
        from medic_tools.world.workload.build import alarm_view
        from medic_tools.world.workload.fixes import changes_of

        assert self.account is not None and self.truth is not None and self.scenario.alarm is not None
        changes = [change for plan in plans for change in changes_of(plan.changes)]
        if not changes:
            return
        fix = self.account.predict(alarm_view(self.scenario.alarm), changes)
        after = fix.after
        verdict = "clears the alarm" if fix.clears else "does NOT clear the alarm"
        self.story.write(
            f"  predicted by the workload model: {fix.describe()} {verdict} (worst period after {after.alarm_value}, "
            f"throttles {after.throttles}, spillover {after.spillover}, p99 {after.p99_ms} ms)"
        )
        self.truth["predicted"] = {"changes": fix.describe(), "clears": fix.clears, "after": vars(after)}

    def click(self, plan: Plan, decide: Decide, user: str = APPROVER) -> dict[str, Any]:
        """Click the card's button as `user`, through a correctly signed request to the interactions handler."""
        assert self.runtime is not None
        self.story.section(f"Approval in Slack: {user} clicks {decide.title()}")
        response = self.handlers["interactions"](
            steps.signed_click(plan, decide, self.console, self.runtime, user), None
        )
        self.story.write(f"interactions → HTTP {response['statusCode']} {response['body']}")
        return response

    def approve(self, plan: Plan) -> dict[str, Any]:
        """Approve as the on-call approver and, when the two-person rule keeps the plan PROPOSED ("1 of 2
        approvals"), as a second, distinct approver; the last answer of the interactions handler."""
        assert self.runtime is not None
        response = self.click(plan, "approve")
        current = self.runtime.ledger.get(plan.id)
        if current is not None and current.status == "PROPOSED" and APPROVER in current.decided_by:
            response = self.click(plan, "approve", user=SECOND_APPROVER)
        return response

    def click_promotion(self, key: str, promote: bool = True, user: str = APPROVER) -> dict[str, Any]:
        """Click Promote (or Keep approving) on the promotion card of `key` (`medic.promotions`), signed as Slack
        signs it, through the interactions handler."""
        from medic.chatops.requests import PROMOTE_ACTION_ID, PROMOTE_REJECT_ACTION_ID

        assert self.runtime is not None
        item = self.runtime.ledger.promotion_item(key) or {}
        ts = str(item.get("slack_ts") or "")
        message = self.console.messages.get(ts)
        if message is None:
            raise ScenarioError(field="slack", source="simulate", problem=f"no card was posted for {key}")
        wanted = PROMOTE_ACTION_ID if promote else PROMOTE_REJECT_ACTION_ID
        button = steps.card_button(message, wanted)
        if button is None:
            raise ScenarioError(field="slack", source="simulate", problem=f"the card of {key} has no {wanted} button")
        self.story.section(f"Promotion in Slack: {user} clicks {button['text']['text']}")
        event = steps.signed_button(ts, message, button, f"promote:{key}"[:255], self.runtime, user)
        response = self.handlers["interactions"](event, None)
        self.story.write(f"interactions → HTTP {response['statusCode']} {response['body']}")
        return response

    def recur(self) -> list[dict[str, Any]]:
        """The incident comes back on the same target: the world's configuration is set back to the scenario's (a
        deploy restores its aliases' provisioned concurrency), its metrics repeat from now, and the alarm, evaluated
        again once they are in, fires with a new state timestamp. The ALARM events, for triage."""
        from medic_tools.world import alarms

        for function in self.scenario.world.functions:
            for alias in function.aliases:
                if alias.provisioned_concurrency:
                    self.clients.lambda_.put_provisioned_concurrency_config(
                        FunctionName=function.name,
                        Qualifier=alias.name,
                        ProvisionedConcurrentExecutions=alias.provisioned_concurrency,
                    )
        begin = datetime.fromtimestamp(-(-int(self.clock.now().timestamp()) // 60) * 60, tz=UTC)
        longest = max((len(m.values) * m.period for m in self.scenario.world.metrics), default=60)
        for metric in self.scenario.world.metrics:
            put_metric(
                self.clients, metric, begin=begin + timedelta(seconds=longest - len(metric.values) * metric.period)
            )
        self.clock.set(begin + timedelta(seconds=longest))
        self.story.section("The incident comes back (the floor set back, the same demand again)")
        events = alarms.evaluate_alarms(self.clock.now(), ACCOUNT, self.region)
        return [event for event in events if event["detail"]["state"]["value"] == "ALARM"]

    def drain_executor(self) -> None:
        steps.drain_executor(self.clients, self.infra["queue"], self.handlers["executor"], self.story)

    def after_fix_and_verify(self) -> None:
        from medic_tools.world import alarms

        steps.after_fix(
            self.scenario,
            self.clients,
            self.clock,
            self.region,
            alarms,
            self.handlers["triage"],
            self.story,
            self.account,
        )
        self.story.section("Verifier (scheduled): is the alarm back to OK?")
        for _ in range(steps.MAX_VERIFIER_RUNS):
            result = self.handlers["verifier"]({"source": "aws.events"}, None)
            self.story.write("verifier returned " + json.dumps(result))
            if not set(result.get("outcomes", {}).values()) & steps.WAITING:
                return
            self._run_on(alarms)

    def redeploy(self, plans: list[Plan]) -> None:
        """The function's stack is deployed again: each field a VERIFIED plan changed gets its value before (what
        the template still holds) back, by the calls an undo of the change makes; a minute later the verifier runs."""
        from medic.actions import get_action

        self.story.section("A deploy of the function's stack: the template's values come back")
        for plan in plans:
            if plan.status != "VERIFIED":
                continue
            for action in plan.changes:
                get_action(action.kind).rollback(self.clients, action)
                self.story.write(
                    f"deploy: {action.target} {action.primary} back to {action.before.get(action.primary)}"
                )
        self.clock.advance(60)
        result = self.handlers["verifier"]({"source": "aws.events"}, None)
        self.story.write("verifier returned " + json.dumps(result))

    def _run_on(self, alarms: Any) -> None:
        """A plan the verifier keeps waiting on (connections settling): the world runs on one more verification
        window (the model continues; hand-written post-fix metrics stay as written) and the alarms are evaluated."""
        window = steps.verification_window(self.scenario)
        until = self.clock.now() + timedelta(seconds=window)
        if self.account is not None and not (self.scenario.after_fix and self.scenario.after_fix.metrics):
            from medic_tools.world.workload.build import run_world_on

            run_world_on(self.clients, self.account, until)
        self.clock.set(until)
        self.story.write(f"the world runs on until {until:%H:%M} UTC")
        for event in alarms.evaluate_alarms(self.clock.now(), ACCOUNT, self.region):
            state = event["detail"]["state"]
            self.story.write(f"alarm {event['detail']['alarmName']} → {state['value']} at {state['timestamp']}")

    def _handle(self, plans: list[Plan], decide: Decide) -> list[Plan]:
        """Decide the triaged plans as `decide` says, run the executor, verify what was applied; the plans as stored."""
        assert self.runtime is not None
        for plan in plans:
            if plan.status == "PROPOSED" and not plan.dry_run and decide != "none":
                if decide == "approve":
                    self.approve(plan)  # a high-risk plan takes two distinct approvers
                else:
                    self.click(plan, decide)
        self.drain_executor()
        plans = [self.runtime.ledger.get(plan.id) or plan for plan in plans]
        if any(plan.status == "APPLIED" for plan in plans):
            self.after_fix_and_verify()
            self.drain_executor()  # a rollback the verifier queued (the rule asked for it)
            if self.scenario.after_fix and self.scenario.after_fix.redeploy:
                self.redeploy([self.runtime.ledger.get(plan.id) or plan for plan in plans])
        return [self.runtime.ledger.get(plan.id) or plan for plan in plans]

    def _promote_proposed(self) -> None:
        """Approve every open promotion card (medic.promotions) as two distinct approvers."""
        assert self.runtime is not None
        for item in self.runtime.ledger.promotion_items():
            if item.get("promotion_state") == "PROPOSED" and item.get("slack_ts"):
                for user in (APPROVER, SECOND_APPROVER):
                    self.click_promotion(str(item["plan_id"]), user=user)

    def promotions(self, plans: list[Plan]) -> list[dict[str, Any]]:
        """The world's promotions (medic.promotions) as its log holds them: the scope, its state, the evidence, the
        approvers, and the plans of this run applied in mode auto because of it."""
        from medic.promotions.scope import standing

        assert self.runtime is not None
        ledger, found = self.runtime.ledger, []
        for item in ledger.promotion_items():
            key = str(item["plan_id"])
            events = ledger.events(key)
            chain = standing(key, events, ledger.head(key), self.runtime.settings)
            proposed = next((e.data for e in events if e.kind == "promotion_proposed"), {})
            auto = [p.id for p in plans if p.mode == "auto" and p.decision and key in p.decision.reason]
            found.append(
                {
                    "key": key,
                    "row": item.get("row", ""),
                    "target": item.get("target", ""),
                    "state": item.get("promotion_state", ""),
                    "chain_state": chain.state,
                    "evidence": [e["plan_id"] for e in proposed.get("evidence", [])],
                    "approvers": sorted({str(e.data.get("user")) for e in events if e.kind == "promotion_approval"}),
                    "applied_in_auto": auto,
                }
            )
        return found

    def outcome(self, plans: list[Plan]) -> Outcome:
        assert self.runtime is not None
        plans = [self.runtime.ledger.get(plan.id) or plan for plan in plans]
        log = [event for plan in plans for event in self.runtime.ledger.events(plan.id)]
        return Outcome(
            scenario=self.source,
            plans=plans,
            log=log,
            world_after=world_after(self.clients, self.scenario),
            ground_truth=self.truth,
        )

    def backtest(self) -> BacktestDocument:
        """`medic backtest` over this world, from the clock's start to now (or to the clock, when it ran past now)."""
        import boto3

        from medic_tools.backtest.model import LogRef
        from medic_tools.backtest.period import Period
        from medic_tools.backtest.run import Runbooks, backtest, load_runbooks

        assert self.runtime is not None
        settings = self.runtime.settings
        runbooks = (
            load_runbooks(settings, None, (), None)
            if self.runbook is None
            else Runbooks(self.runbook, [self.runbook.source])
        )
        until = max(datetime.now(UTC), self.clock.now()) + timedelta(seconds=1)
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region)  # noqa: S106
        log = LogRef(available=True, plans_table=settings.plans_table, events_table=settings.events_table)
        return backtest(
            Period(self.started, until),
            settings=settings,
            runbooks=runbooks,
            session=session,
            log=log,
            now=until,
            endpoint_url=self.clients.endpoint_url,
            rate=1000.0,
        )

    def run(self, decide: Decide, backtest: bool = False) -> Outcome:
        try:
            self.setup()
            plans = self._handle(self.triage(self.alarm_events()), decide)
            for _ in range(self.scenario.recurs):
                if decide == "approve":
                    self._promote_proposed()
                plans += self._handle(self.triage(self.recur()), decide)
            outcome = self.outcome(plans)
            outcome.promotions = self.promotions(outcome.plans)
            if backtest:
                outcome.backtest = backtest_summary(self.backtest())
            tell_ending(outcome, self.story)
            return outcome
        finally:
            install(None)


def backtest_summary(document: BacktestDocument) -> dict[str, int]:
    """What `medic simulate --backtest` adds to a scenario's `--json` document (`backtest`) and sums in its summary
    line: the transitions to ALARM replayed, how many decisions equal the log's, how many differ, and of those how
    many after a configuration change (a fix applied since: the replay reads today's configuration)."""
    summary = document.summary
    return {
        "alarm_transitions": summary.alarm_transitions,
        "replayed": summary.replayed,
        "equal_to_log": summary.equal_to_log,
        "differ_from_log": summary.differ_from_log,
        "differ_after_a_change": sum(
            1 for row in document.transitions if row.log.equal is False and row.configuration_changed
        ),
        "calls": summary.calls.total,
    }


__all__ = [
    "ACCOUNT",
    "APP",
    "APPROVER",
    "CHANNEL",
    "REPO_ROOT",
    "SECOND_APPROVER",
    "TEAM",
    "Decide",
    "Outcome",
    "Story",
    "build_medic_infra",
    "build_world",
    "render_block",
    "simulate",
]
