"""8. Load: bursts of alarm events and of signed Slack clicks against the handlers and the embedded world, on
loopback. Shows no duplicate effects, no lost events and bounded memory; bounded and self-stopping.

The world (built in code on the embedded AWS): `functions × bursts` opted-in functions, each with a fixed
provisioned-concurrency floor (2 on `:live`) that its traffic outgrew (the spillover-fixed-floor story), so each
alarm leads to a proposal to raise the floor. Slack is a fake Web API on 127.0.0.1.

Each burst, on the next `functions` functions:
1. **alarms**: every function's `alarms` alarms fire at once (a storm: one plan per function, the other alarms
   attached to it as SUPERSEDED); each event is delivered `1 + duplicates` times (EventBridge delivers at least
   once) and `new_ids` more times under a new event id (a re-emission of the same transition), all shuffled and sent
   concurrently to triage by `workers` execution environments;
2. **clicks**: on every card, `clicks` signed Approve clicks (double clicks), a Reject by the second approver and
   a replay of the first click's very request, shuffled and sent concurrently to the interactions endpoint;
3. **executor**: the queue drained as the SQS event source mapping does (batches of 10, 2 environments at once),
   then every batch delivered once more (SQS delivers at least once).

An execution environment is one thread with its own runtime (settings, clients, ledger and caches, as Lambda builds
them once per environment) and its own copy of `functions/<name>/app.py`, handling one event at a time, as Lambda
does. Every AWS request is counted at the endpoint (`medic_tools.world.moto_ext.count_requests`).

Checked at the end, from the world and the log: no lost event (every distinct transition has its plan; every plan
its chain, intact), no duplicate effect (one decision per card, one executor message per approval, one changing
call per applied plan, redeliveries change nothing), no error. Memory: Medic's own retained memory
(`tracemalloc`, allocations made in `shared/medic`, the embedded world excepted) after each burst. What an
environment keeps per plan it has seen is capped (`medic.ledger.store.CACHED_PLANS`), so its memory is bounded by its
baseline plus the cap times the growth per plan: that ceiling must stay under `MEMORY_CEILING` (far below any Lambda
memory size). With `cache_plans` set to a small cap (the tests do), the plateau itself is checked: past the cap,
Medic's retained memory stops growing (under `PLATEAU_PER_PLAN` bytes per plan).

Bounded and self-stopping: a fixed number of bursts, each of a fixed size, and a deadline (`--deadline`) checked
between phases; the run stops early (and says so) when it is reached. `run()` is the core: the bench runs it at full
size (`main`), tests/integration/test_reliability_load.py in a tiny configuration.
"""

from __future__ import annotations

import argparse
import base64
import copy
import gc
import json
import random
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

SECTION = "load"
ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "events" / "spillover-alarm.json"
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"
#: An execution environment's retained memory at its caches' cap (bytes): far below any Lambda memory size.
MEMORY_CEILING = 16 * 1024 * 1024
#: Past a (small) cache cap, growth per plan handled must stay under this (bytes): noise, not a per-plan cache.
PLATEAU_PER_PLAN = 1024
PEAK, FLOOR_PC = 4, 2  # each function's peak concurrency and its provisioned floor: the plan raises it to 5


@dataclass(frozen=True)
class Config:
    functions: int = 12  # functions per burst (each burst acts on new ones)
    bursts: int = 5
    alarms: int = 2  # alarms per function firing at once
    duplicates: int = 1  # extra deliveries of each event (same id)
    new_ids: int = 1  # re-emissions of each transition under a new event id
    clicks: int = 3  # Approve clicks per card (+ one Reject by the second approver + one replayed request)
    workers: int = 4  # execution environments per function (triage, interactions); the executor has 2
    deadline_s: float = 600.0
    seed: int = 8
    cache_plans: int | None = None  # cap Medic's per-plan caches lower for the run (None: medic.ledger.store's own)


@dataclass
class Burst:
    index: int
    deliveries: int = 0
    transitions: int = 0
    clicks: int = 0
    alarms_s: float = 0.0
    clicks_s: float = 0.0
    executor_s: float = 0.0
    medic_bytes: int = 0  # Medic's retained memory after the burst (all environments)
    plans_so_far: int = 0


@dataclass
class Figures:
    config: Config
    bursts: list[Burst] = field(default_factory=list)
    triage_s: list[float] = field(default_factory=list)
    click_s: list[float] = field(default_factory=list)
    executor_batch_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)  # the interactions endpoint's answers, by kind
    triage_answers: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    transitions: int = 0
    missing_plans: int = 0
    open_per_target: Counter[int] = field(default_factory=Counter)  # how many targets had n non-superseded plans
    decisions_per_card: Counter[int] = field(default_factory=Counter)
    enqueued: int = 0  # SendMessage to the executor queue, succeeded
    approved: int = 0  # plans approved by a click
    changes: int = 0  # PutProvisionedConcurrencyConfig, succeeded
    applied: int = 0
    aws_calls_per_applied: Counter[int] = field(default_factory=Counter)
    redelivered: int = 0
    redelivery_changes: int = 0
    broken_chains: int = 0
    left_in_queue: int = 0
    left_in_dlq: int = 0
    requests: int = 0
    environments: int = 0
    peak_rss_mb: float = 0.0
    stopped_early: str = ""
    wall_s: float = 0.0

    @property
    def plans(self) -> int:
        return sum(self.statuses.values())

    def growth_per_plan(self) -> float | None:
        """Bytes of Medic's retained memory per plan handled, from the end of the warm-up (the first burst, the
        second too when there are three or more: every environment has then handled each kind of input) to the last.
        """
        if len(self.bursts) < 2:
            return None
        first, last = self.bursts[1 if len(self.bursts) >= 3 else 0], self.bursts[-1]
        plans = last.plans_so_far - first.plans_so_far
        return (last.medic_bytes - first.medic_bytes) / plans if plans else None

    def ceiling(self) -> float | None:
        """An environment's retained memory once its caches are full: its share after the first burst plus the cap
        times the growth per plan (all of it charged to one environment: an upper bound)."""
        growth = self.growth_per_plan()
        if growth is None or not self.bursts:
            return None
        from medic.ledger import store as ledger

        return self.bursts[0].medic_bytes / max(1, self.environments) + ledger.CACHED_PLANS * max(0.0, growth)


def violations(f: Figures) -> list[str]:
    """The invariants that did not hold (empty: no duplicate effect, no lost event, no error, bounded memory)."""
    found = []
    if f.errors:
        found.append(f"{len(f.errors)} handler errors, e.g. {f.errors[0]}")
    if f.missing_plans:
        found.append(f"{f.missing_plans} of {f.transitions} transitions have no plan (lost)")
    if f.plans != f.transitions:
        found.append(f"{f.plans} plans for {f.transitions} distinct transitions")
    if set(f.open_per_target) != {1}:
        found.append(f"targets by number of non-superseded plans: {dict(f.open_per_target)} (expected one each)")
    if set(f.decisions_per_card) - {1}:
        found.append(f"cards by number of decisions: {dict(f.decisions_per_card)} (expected one each)")
    if f.enqueued != f.approved:
        found.append(f"{f.enqueued} executor messages for {f.approved} approvals")
    if f.changes != f.applied or set(f.aws_calls_per_applied) - {1}:
        found.append(f"{f.changes} changing calls for {f.applied} applied plans ({dict(f.aws_calls_per_applied)})")
    if f.statuses.get("APPROVED") or f.statuses.get("APPLYING"):
        found.append(f"approved plans never applied: {f.statuses.get('APPROVED', 0) + f.statuses.get('APPLYING', 0)}")
    if f.redelivery_changes:
        found.append(f"{f.redelivery_changes} changes made by redeliveries")
    if f.broken_chains:
        found.append(f"{f.broken_chains} broken hash chains")
    if f.left_in_queue or f.left_in_dlq:
        found.append(f"left in the executor queue {f.left_in_queue}, in its DLQ {f.left_in_dlq}")
    if f.triage_answers.get("rejected") or f.answers.get("5xx"):
        found.append(f"triage rejected {f.triage_answers.get('rejected', 0)}, clicks answered 5xx {f.answers['5xx']}")
    growth, ceiling = f.growth_per_plan(), f.ceiling()
    if ceiling is not None and ceiling > MEMORY_CEILING:
        found.append(
            f"an environment would retain {ceiling / 2**20:,.1f} MiB at its cache cap (> {MEMORY_CEILING:,} B)"
        )
    if f.config.cache_plans is not None and growth is not None and growth > PLATEAU_PER_PLAN:
        found.append(f"past a cache cap of {f.config.cache_plans} plans, memory still grows {growth:,.0f} B per plan")
    return found


# -- the world -------------------------------------------------------------------------------------


class _Current:
    """What an environment's copy of a handler module sees as `medic.runtime`: its own runtime."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def current(self) -> Any:
        return self._runtime


class Environments:
    """Lambda's execution environments for one function: one per worker thread, each with its own runtime and its
    own copy of the handler module, handling one event at a time."""

    def __init__(self, function: str, make_runtime: Callable[[], Any], registry: list[Any]) -> None:
        self.function, self.make_runtime, self.registry = function, make_runtime, registry
        self._local = threading.local()

    def handler(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        """This thread's environment's handler; the first call is the environment's init (its runtime, its import
        of the handler module)."""
        handler = getattr(self._local, "handler", None)
        if handler is None:
            from medic_tools.simulate import load_handler

            runtime = self.make_runtime()
            self.registry.append(runtime)
            handler = load_handler(self.function)
            handler.__globals__["runtime"] = _Current(runtime)
            self._local.handler = handler
        return handler  # type: ignore[no-any-return]

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler()(event, None)

    def start(self, pool: ThreadPoolExecutor, count: int) -> None:
        """Init one environment on each of the pool's `count` threads now, so that none starts mid-measurement."""
        barrier = threading.Barrier(count)

        def init() -> None:
            self.handler()
            barrier.wait(timeout=60)  # every thread holds one task: each inits its own environment

        for future in [pool.submit(init) for _ in range(count)]:
            future.result()


def build(aws: Any, slack_url: str, config: Config) -> tuple[Any, Callable[[], Any]]:
    """Medic's resources and the functions, on the (reset) embedded AWS; a factory of execution runtimes."""
    import boto3

    from medic.aws import AwsClients
    from medic.chatops.transport import WebApiTransport
    from medic.clock import SystemClock
    from medic.runtime import Runtime
    from medic_tools.scenario import load_scenario
    from medic_tools.simulate import Simulation
    from medic_tools.story import Story

    aws.reset()
    spec = load_scenario(FLOOR)
    spec = spec.model_copy(update={
        "world": spec.world.model_copy(update={"account_concurrency_limit": 100_000}),
        # The machinery under load, not the guardrails: no global rate limit, no breaker, no cooldown in the way.
        "settings": {"max_changes_per_hour": 1_000_000, "circuit_breaker_failures": 1_000_000, "cooldown_s": 0,
                     "slack_api_url": slack_url},
    })  # fmt: skip
    sim = Simulation(spec, "load", aws.endpoint_url, Story(None), show_json=False)
    sim.clock.set(sim.clock.now() + timedelta(hours=1))  # now: the workers run on the system clock
    sim.setup()
    _functions(sim, config.functions * config.bursts)
    assert sim.runtime is not None
    settings = sim.runtime.settings

    def make_runtime() -> Any:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name=sim.region)  # fmt: skip
        clients = AwsClients(session=session, region=sim.region, endpoint_url=aws.endpoint_url)
        return Runtime(settings, clients=clients, clock=SystemClock(), slack=WebApiTransport("xoxb-load", slack_url),
                       metrics_stream=_Discard())  # fmt: skip

    return sim, make_runtime


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


def _functions(sim: Any, count: int) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    lam = sim.clients.lambda_
    role = sim.clients.client("iam").create_role(RoleName="load", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    metrics = []
    for index in range(count):
        name = f"load{index:03d}"
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": buffer.getvalue()}, Tags={"medic:managed": "true"})  # fmt: skip
        lam.publish_version(FunctionName=name)
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live",
                                               ProvisionedConcurrentExecutions=FLOOR_PC)  # fmt: skip
        for metric, value in (("ProvisionedConcurrencySpilloverInvocations", 30.0), ("ConcurrentExecutions", PEAK)):
            metrics.append({"MetricName": metric, "Value": value, "Timestamp": sim.clock.now() - timedelta(minutes=2),
                            "Dimensions": [{"Name": "FunctionName", "Value": name},
                                           {"Name": "Resource", "Value": f"{name}:live"}]})  # fmt: skip
    for chunk in range(0, len(metrics), 500):
        sim.clients.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=metrics[chunk : chunk + 500])


# -- the inputs ------------------------------------------------------------------------------------


def alarm_events(sim: Any, functions: list[str], config: Config, rng: random.Random) -> tuple[list[Any], list[Any]]:
    """(the deliveries, shuffled; the distinct transitions as (alarm ARN, state timestamp))."""
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    deliveries, transitions = [], []
    for function in functions:
        for alarm in range(config.alarms):
            event = copy.deepcopy(template)
            name = f"{function}-live-spillover-{alarm}"
            arn = f"arn:aws:cloudwatch:{sim.region}:123456789012:alarm:{name}"
            # Formatted here, not with medic.clock.iso: what the harness keeps must not count as Medic's memory.
            moment = sim.clock.now() - timedelta(seconds=30 - alarm)
            fired = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
            event.update(id=f"{function}-{alarm}", resources=[arn])
            event["detail"]["alarmName"] = name
            event["detail"]["state"]["timestamp"] = fired.replace("Z", "+0000")
            dims = event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]
            dims.update({"FunctionName": function, "Resource": f"{function}:live"})
            transitions.append((arn, fired))
            deliveries += [event] * (1 + config.duplicates)
            for copy_index in range(config.new_ids):
                deliveries.append({**copy.deepcopy(event), "id": f"{function}-{alarm}-re{copy_index}"})
    rng.shuffle(deliveries)
    return deliveries, transitions


def click(plan: Any, secret: str, slack_url: str, *, approve: bool, user: str, nonce: int) -> dict[str, Any]:
    """A Function URL event carrying Slack's signed `block_actions` request (a click on the plan's card)."""
    from slack_sdk.signature import SignatureVerifier

    from medic.chatops.requests import APPROVE_ACTION_ID, REJECT_ACTION_ID
    from medic_tools.simulation_constants import APP, CHANNEL, TEAM

    payload = {
        "type": "block_actions", "user": {"id": user, "username": "oncall"}, "api_app_id": APP, "team": {"id": TEAM},
        "channel": {"id": CHANNEL}, "message": {"ts": plan.slack.ts, "type": "message"},
        "response_url": slack_url.removesuffix("/api/") + f"/hooks/{plan.id}/{nonce}",
        "actions": [{"type": "button", "action_id": APPROVE_ACTION_ID if approve else REJECT_ACTION_ID,
                     "block_id": f"decide:{plan.id}", "value": plan.id, "action_ts": f"{time.time():.6f}.{nonce}"}],
    }  # fmt: skip
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "version": "2.0", "rawPath": "/", "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
        "headers": {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": timestamp,
                    "x-slack-signature": signature or ""},
        "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "127.0.0.1"}},
    }  # fmt: skip


# -- the run ---------------------------------------------------------------------------------------


def run(aws: Any, slack_url: str, config: Config, say: Callable[[str], None] = lambda text: None) -> Figures:
    """The load test's core: build the world, run the bursts, check the world and the log. Never raises for a
    failed invariant: `violations(figures)` lists them."""
    from medic.ledger import store as ledger

    started = time.perf_counter()
    figures = Figures(config)
    cap = ledger.CACHED_PLANS
    if config.cache_plans is not None:
        ledger.CACHED_PLANS = config.cache_plans  # a knob of the run, restored at its end
    try:
        return _run(aws, slack_url, config, say, figures, started)
    finally:
        ledger.CACHED_PLANS = cap


def _run(
    aws: Any, slack_url: str, config: Config, say: Callable[[str], None], figures: Figures, started: float
) -> Figures:
    from medic_tools.world import moto_ext

    sim, make_runtime = build(aws, slack_url, config)
    secret = sim.runtime.signing_secret
    runtimes: list[Any] = []
    triage = Environments("triage", make_runtime, runtimes)
    interactions = Environments("interactions", make_runtime, runtimes)
    executor = Environments("executor", make_runtime, runtimes)
    rng = random.Random(config.seed)
    names = [f"load{index:03d}" for index in range(config.functions * config.bursts)]
    transitions: list[Any] = []
    redeliveries: list[dict[str, Any]] = []
    # The environments live for the whole run (a thread each, as Lambda keeps environments warm between bursts).
    triage_pool, click_pool = ThreadPoolExecutor(config.workers), ThreadPoolExecutor(config.workers)
    executor_pool = ThreadPoolExecutor(2)  # the template caps the executor at MaximumConcurrency 2
    triage.start(triage_pool, config.workers)
    interactions.start(click_pool, config.workers)
    executor.start(executor_pool, 2)
    with triage_pool, click_pool, executor_pool, _traced() as medic_bytes, moto_ext.count_requests() as served:
        for index in range(config.bursts):
            if time.perf_counter() - started > config.deadline_s:
                figures.stopped_early = f"deadline {config.deadline_s:.0f} s reached after {index} bursts"
                break
            burst = Burst(index)
            mine = names[index * config.functions : (index + 1) * config.functions]
            deliveries, new = alarm_events(sim, mine, config, rng)
            transitions += new
            burst.deliveries, burst.transitions = len(deliveries), len(new)
            began = time.perf_counter()
            for outcome in triage_pool.map(lambda event: _call(triage, event, figures.triage_s, figures), deliveries):
                figures.triage_answers[_triage_kind(outcome)] += 1
            burst.alarms_s = time.perf_counter() - began

            cards = [p for p in (sim.runtime.ledger.get(_pid(arn, ts)) for arn, ts in new) if p and p.slack.ts]
            requests = []
            for plan in cards:
                approvals = [click(plan, secret, slack_url, approve=True, user="U0ONCALL", nonce=n)
                             for n in range(config.clicks)]  # fmt: skip
                reject = click(plan, secret, slack_url, approve=False, user="U0SECOND", nonce=99)
                requests += [*approvals, reject, approvals[0]]  # the first click's very request, replayed
            rng.shuffle(requests)
            burst.clicks = len(requests)
            began = time.perf_counter()
            for outcome in click_pool.map(lambda event: _call(interactions, event, figures.click_s, figures), requests):
                figures.answers[_answer_kind(outcome)] += 1
            burst.clicks_s = time.perf_counter() - began

            began = time.perf_counter()
            redeliveries += _drain(sim, executor, executor_pool, figures)
            burst.executor_s = time.perf_counter() - began
            gc.collect()
            burst.medic_bytes = medic_bytes()
            burst.plans_so_far = len(transitions)
            figures.bursts.append(burst)
            say(f"8. load: burst {index + 1}/{config.bursts}: {burst.deliveries} alarm deliveries in "
                f"{burst.alarms_s:.1f} s, {burst.clicks} clicks in {burst.clicks_s:.1f} s, executor "
                f"{burst.executor_s:.1f} s; Medic retains {burst.medic_bytes / 1024:,.0f} KiB")  # fmt: skip
        changes_before = served.count("PutProvisionedConcurrencyConfig", succeeded=True)
        for records in redeliveries:  # SQS delivers at least once: every batch once more, nothing may change
            result = executor_pool.submit(_call, executor, records, figures.executor_batch_s, figures).result()
            figures.redelivered += len(records["Records"])
            if isinstance(result, dict) and result.get("batchItemFailures"):
                figures.errors.append(f"redelivery failed: {result['batchItemFailures']}")
        figures.redelivery_changes = served.count("PutProvisionedConcurrencyConfig", succeeded=True) - changes_before
        figures.changes = changes_before
        figures.enqueued = served.count("SendMessage", succeeded=True, service="sqs")
        figures.requests = len(served.requests)
    figures.environments = len(runtimes)
    _check(sim, transitions, figures)
    figures.peak_rss_mb = _peak_rss_mb()
    figures.wall_s = time.perf_counter() - started
    return figures


def _call(env: Environments, event: dict[str, Any], latencies: list[float], figures: Figures) -> Any:
    began = time.perf_counter()
    try:
        return env(event)
    except Exception as exc:  # noqa: BLE001 - counted: a handler that raises is a violation, the run goes on
        figures.errors.append(f"{env.function}: {type(exc).__name__}: {str(exc)[:200]}")
        return exc
    finally:
        latencies.append(time.perf_counter() - began)


def _triage_kind(outcome: Any) -> str:
    if not isinstance(outcome, dict):
        return "error"
    if outcome.get("duplicate"):
        return "duplicate"
    return str(outcome.get("status", "?"))


def _answer_kind(outcome: Any) -> str:
    if not isinstance(outcome, dict):
        return "error"
    status = int(outcome.get("statusCode", 0))
    text = str(json.loads(outcome.get("body") or "{}").get("text", ""))
    if status >= 500:
        return "5xx"
    if status == 200 and text.startswith(("APPROVED by", "REJECTED by")):
        return "decided"
    if status == 200 and text.startswith("Already"):
        return "already decided"
    if status == 409:
        return "replay refused (409)"
    return f"{status}"


def _drain(sim: Any, executor: Environments, pool: ThreadPoolExecutor, figures: Figures) -> list[dict[str, Any]]:
    """Deliver the executor queue as the event source mapping does: batches of 10, two environments at once."""
    queue = sim.infra["queue"]
    sqs = sim.clients.sqs
    delivered: list[dict[str, Any]] = []
    lock = threading.Lock()

    def poll() -> None:
        while True:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return
            records = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                                    "body": m["Body"], "eventSource": "aws:sqs"} for m in messages]}  # fmt: skip
            result = _call(executor, records, figures.executor_batch_s, figures)
            failed = (
                {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
                if isinstance(result, dict)
                else set()
            )
            if failed:
                figures.errors.append(f"executor batch items failed: {sorted(failed)}")
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            with lock:
                delivered.append(records)

    for future in [pool.submit(poll) for _ in range(2)]:
        future.result()
    return delivered


def _pid(arn: str, state_timestamp: str) -> str:
    from medic.plan import plan_id

    return plan_id(arn, state_timestamp)


def _check(sim: Any, transitions: list[Any], figures: Figures) -> None:
    """Read the world and the log: every transition's plan, one open plan per target, one decision per card, one
    change per applied plan, every chain intact, nothing left in the queues."""
    ledger = sim.runtime.ledger
    figures.transitions = len(transitions)
    plans = [p for p in ledger.all_plans() if p.target.startswith("load")]
    figures.statuses = Counter(p.status for p in plans)
    known = {p.id for p in plans}
    figures.missing_plans = sum(1 for arn, ts in transitions if _pid(arn, ts) not in known)
    by_target: Counter[str] = Counter(p.target for p in plans if p.status != "SUPERSEDED")
    figures.open_per_target = Counter(by_target.values())
    for plan in plans:
        events = ledger.events(plan.id)
        kinds = [e.kind for e in events]
        if plan.slack.ts and plan.status != "SUPERSEDED":
            figures.decisions_per_card[kinds.count("approval") + kinds.count("rejection")] += 1
        if "approval" in kinds:
            figures.approved += 1
        if plan.status in ("APPLIED", "VERIFIED"):
            figures.applied += 1
            figures.aws_calls_per_applied[kinds.count("aws_call")] += 1
        if ledger.verify_chain(plan.id) is not None:
            figures.broken_chains += 1
    figures.left_in_queue = _depth(sim, sim.infra["queue"])
    dlq = sim.clients.sqs.get_queue_url(QueueName="medic-executor-dlq")["QueueUrl"]
    figures.left_in_dlq = _depth(sim, dlq)


def _depth(sim: Any, url: str) -> int:
    attributes = sim.clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@contextmanager
def _traced() -> Iterator[Callable[[], int]]:
    """Trace allocations; yields a function giving the bytes still held by allocations made in Medic's own code
    (shared/medic, the embedded world excepted: moto's state is the world's, not Medic's)."""
    import medic

    package = str(Path(medic.__file__).resolve().parent) + "/"
    world = package + "world/"
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(1)

    def medic_bytes() -> int:
        # Grouped by file first (one pass over the traces), then Medic's files picked: far faster than filter_traces.
        stats = tracemalloc.take_snapshot().statistics("filename")
        return sum(
            stat.size
            for stat in stats
            if (name := stat.traceback[0].filename).startswith(package) and not name.startswith(world)
        )

    try:
        yield medic_bytes
    finally:
        if started:
            tracemalloc.stop()


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# -- the report ------------------------------------------------------------------------------------


def main() -> None:
    from report import mode_note, save, say, size
    from worlds import world

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--functions", type=int, default=size(12, 4), help="functions per burst")
    parser.add_argument("--bursts", type=int, default=size(5, 3))
    parser.add_argument("--workers", type=int, default=4, help="execution environments per function")
    parser.add_argument("--deadline", type=float, default=size(480, 180), help="seconds: stop early after it")
    args = parser.parse_args()
    config = Config(functions=args.functions, bursts=args.bursts, workers=args.workers, deadline_s=args.deadline)
    with world() as w:
        figures = run(w.aws, w.slack.url, config, say)
    problems = violations(figures)
    body, targets = render(figures, problems)
    save(SECTION, mode_note() + body, targets)
    say(body)


def render(f: Figures, problems: list[str]) -> tuple[str, list[Any]]:
    from report import Stat, Target, table

    c = f.config
    deliveries = sum(b.deliveries for b in f.bursts)
    clicks = sum(b.clicks for b in f.bursts)
    alarm_s = sum(b.alarms_s for b in f.bursts)
    click_s = sum(b.clicks_s for b in f.bursts)
    growth = f.growth_per_plan()
    from medic.ledger import store as ledger

    cache = ledger.CACHED_PLANS
    per_env = [b.medic_bytes / max(1, f.environments) / 1024 for b in f.bursts]
    rows = [
        ["alarm deliveries → triage", f"{deliveries:,} ({f.transitions:,} distinct transitions)",
         f"{deliveries / alarm_s:,.0f}/s" if alarm_s else "-", Stat.of(f.triage_s).ms(0) if f.triage_s else "-"],
        ["signed clicks → interactions", f"{clicks:,}", f"{clicks / click_s:,.0f}/s" if click_s else "-",
         Stat.of(f.click_s).ms(0) if f.click_s else "-"],
        ["executor batches (SQS, ≤ 10)", f"{len(f.executor_batch_s):,} ({f.redelivered:,} records redelivered)", "-",
         Stat.of(f.executor_batch_s).ms(0) if f.executor_batch_s else "-"],
    ]  # fmt: skip
    checks = [
        ["no lost event", f"{f.transitions - f.missing_plans:,} of {f.transitions:,} transitions have their plan; "
         f"plans by state {dict(sorted(f.statuses.items()))}; {f.broken_chains} broken chains",
         f.missing_plans == 0 and f.plans == f.transitions and not f.broken_chains],
        ["one open plan per target", f"targets by non-superseded plans: {dict(f.open_per_target)}",
         set(f.open_per_target) == {1}],
        ["one decision per card", f"cards by decisions: {dict(f.decisions_per_card)}; answers {dict(f.answers)}",
         not set(f.decisions_per_card) - {1}],
        ["one executor message per approval", f"{f.enqueued:,} messages, {f.approved:,} approvals",
         f.enqueued == f.approved],
        ["one change per applied plan", f"{f.changes:,} PutProvisionedConcurrencyConfig for {f.applied:,} applied; "
         f"{f.redelivery_changes} by {f.redelivered:,} redelivered records",
         f.changes == f.applied and not f.redelivery_changes and not set(f.aws_calls_per_applied) - {1}],
        ["nothing left, no error", f"queue {f.left_in_queue}, DLQ {f.left_in_dlq}; {len(f.errors)} handler errors; "
         f"triage answers {dict(f.triage_answers)}", not (f.left_in_queue or f.left_in_dlq or f.errors)],
    ]  # fmt: skip
    memory = [[b.index + 1, f"{b.plans_so_far:,}", f"{b.medic_bytes / 1024:,.0f} KiB", f"{per_env[i]:,.0f} KiB"]
              for i, b in enumerate(f.bursts)]  # fmt: skip
    body = "\n".join([
        f"{len(f.bursts)} bursts of {c.functions} functions × {c.alarms} alarms (each event delivered "
        f"{1 + c.duplicates}× and re-emitted {c.new_ids}× under a new id), then {c.clicks} Approve clicks + 1 Reject "
        f"+ 1 replayed request per card, then the executor queue (2 environments, batches of 10) and every batch "
        f"redelivered once. {c.workers} execution environments each for triage and interactions, "
        f"{f.environments} in all; {f.requests:,} AWS requests served on loopback; {f.wall_s:.0f} s in all"
        + (f"; **stopped early: {f.stopped_early}**" if f.stopped_early else "") + ".",
        "",
        table(["stream", "inputs", "throughput (wall)", "handler time per input"], rows),
        "",
        table(["invariant", "observed", "holds"], [[n, o, "yes" if ok else "**NO**"] for n, o, ok in checks]),
        "",
        "Medic's retained memory (tracemalloc: allocations made in `shared/medic` still held after the burst and a "
        "garbage collection, all environments; the embedded world excepted):",
        "",
        table(["after burst", "plans so far", "Medic retains", "per environment"], memory),
        "",
        f"Growth after the first burst: **{growth:,.0f} B per plan** (the ledger's per-plan caches, capped at "
        f"{cache} plans per environment): an environment's ceiling is **{(f.ceiling() or 0) / 2**20:,.1f} MiB** "
        f"(≤ {MEMORY_CEILING / 2**20:.0f} MiB); peak RSS of the bench process {f.peak_rss_mb:,.0f} MB (the "
        "embedded world included). Times are taken under tracemalloc and on 2 shared cores: read them as orders of "
        "magnitude." if growth is not None else "",
    ])  # fmt: skip
    targets = [
        Target("load: no duplicate effects, no lost events, no errors", "every invariant holds",
               "all hold" if not problems else "; ".join(problems)[:300], not problems),
        Target("load: bounded memory", f"an environment at its cache cap ≤ {MEMORY_CEILING / 2**20:.0f} MiB",
               f"{(f.ceiling() or 0) / 2**20:,.1f} MiB ({growth:,.0f} B per plan × {cache} plans + baseline)"
               if growth is not None else "n/a (one burst)",
               f.ceiling() is not None and (f.ceiling() or 0) <= MEMORY_CEILING),
    ]  # fmt: skip
    return body, targets


if __name__ == "__main__":
    main()
