"""A storm: 500 alarm events over 50 functions (10 alarms each, some delivered twice) yield at most one open plan
and one card per function; the other alarms are recorded as SUPERSEDED by the open plan, nothing is lost."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from medic.clock import iso
from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = json.loads((ROOT / "events" / "spillover-alarm.json").read_text())
FUNCTIONS, ALARMS_EACH = 50, 10


def _event(function: str, alarm: int, when: str) -> dict[str, Any]:
    event = copy.deepcopy(TEMPLATE)
    name = f"{function}-live-spillover-{alarm}"
    arn = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    event["id"] = f"{function}-{alarm}"
    event["resources"] = [arn]
    event["detail"]["alarmName"] = name
    event["detail"]["state"]["timestamp"] = when
    dims = event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]
    dims.update({"FunctionName": function, "Resource": f"{function}:live"})
    return event


def _world(sim: Simulation) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    lam = sim.clients.lambda_
    role = sim.clients.client("iam").create_role(RoleName="storm", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    metrics = []
    for index in range(FUNCTIONS):
        name = f"fn{index:02d}"
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": buffer.getvalue()}, Tags={"medic:managed": "true"})  # fmt: skip
        lam.publish_version(FunctionName=name)
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=2)
        for metric, value in (("ProvisionedConcurrencySpilloverInvocations", 30.0), ("ConcurrentExecutions", 6.0)):
            metrics.append({"MetricName": metric, "Value": value, "Timestamp": sim.clock.now() - timedelta(minutes=2),
                            "Dimensions": [{"Name": "FunctionName", "Value": name},
                                           {"Name": "Resource", "Value": f"{name}:live"}]})  # fmt: skip
    for chunk in range(0, len(metrics), 500):
        sim.clients.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=metrics[chunk : chunk + 500])


def test_a_storm_yields_one_open_plan_and_one_card_per_function(aws: EmbeddedAWS) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "spillover-fixed-floor.yaml")
    sim = Simulation(scenario, "storm", aws.endpoint_url, Story(None))
    try:
        runtime = sim.setup()
        _world(sim)
        events = []
        for alarm in range(ALARMS_EACH):
            when = iso(sim.clock.now() - timedelta(seconds=ALARMS_EACH - alarm)).replace("Z", "+0000")
            for index in range(FUNCTIONS):
                events.append(_event(f"fn{index:02d}", alarm, when))
                if alarm == 3:
                    events.append(events[-1])  # EventBridge delivered it twice
        with ThreadPoolExecutor(max_workers=8) as pool:  # a storm arrives concurrently
            results = list(pool.map(lambda event: sim.handlers["triage"](event, None), events))
        plans = runtime.ledger.all_plans()
    finally:
        install(None)

    statuses = Counter(plan.status for plan in plans if plan.target != "checkout:live")
    open_plans = [p for p in plans if p.status in ("PROPOSED", "APPROVED", "APPLYING", "APPLIED")]
    assert len(results) == FUNCTIONS * ALARMS_EACH + FUNCTIONS
    assert sum(1 for r in results if r.get("duplicate")) == FUNCTIONS
    assert statuses == {"PROPOSED": FUNCTIONS, "SUPERSEDED": FUNCTIONS * (ALARMS_EACH - 1)}
    assert len({p.target for p in open_plans}) == len(open_plans) == FUNCTIONS
    cards = list(sim.console.messages.values())
    assert len(cards) == FUNCTIONS  # one card per plan; attachments are thread replies at most
    first = next(p for p in plans if p.status == "PROPOSED")
    attached = [e for e in runtime.ledger.events(first.id) if e.kind == "alarm_attached"]
    assert len(attached) == ALARMS_EACH - 1
    assert len(sim.console.replies) <= FUNCTIONS  # at most one "fired too" reply per open plan
    superseded = runtime.ledger.get(attached[0].data["plan_id"])
    assert superseded is not None and superseded.reason == f"attached to the open plan {first.id} on {first.target}"
