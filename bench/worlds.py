"""The worlds the benchmarks run in: the embedded AWS (moto's server in this process, its requests
counted), a fake Slack, a scenario built by `medic_tools.simulate.Simulation`, and the environment a Medic
function gets in a child process (the same settings as the simulation's runtime, read from MEDIC_*).

The bench process builds the state each measurement starts from (a world, a proposed plan, an approved
plan in the queue, an applied plan) with Medic's own simulator; only the measured step runs in the
emulated Lambda environment.
"""

from __future__ import annotations

import atexit
import base64
import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import aws_counter
from lambda_env import Environment, FakeSlack, Package, closure

from medic.config import ENV_VARS, Settings
from medic.plan import Plan
from medic.planning.runbook import Runbook
from medic_tools import simulation_steps
from medic_tools.scenario import Scenario, load_scenario
from medic_tools.simulate import Simulation
from medic_tools.simulation_constants import APPROVER
from medic_tools.story import Story
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
RUNBOOK = ROOT / "runbooks" / "lambda-latency.yaml"
#: What the Medic layer ships (shared/requirements.in); boto3 comes with the runtime.
LAYER_REQUIREMENTS = [
    line.split("#", 1)[0].strip()
    for line in (ROOT / "shared" / "requirements.in").read_text().splitlines()
    if line.split("#", 1)[0].strip()
]
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six")
BOT_TOKEN_SECRET = "medic/chatops-bot-token"


@dataclass
class World:
    aws: EmbeddedAWS
    slack: FakeSlack
    counter: aws_counter.EndpointCounter


@contextmanager
def world() -> Iterator[World]:
    counter = aws_counter.install()
    slack = FakeSlack()
    from medic.log import configure

    configure("WARNING")  # the bench process's own Medic logs (setup steps) are not news
    try:
        with EmbeddedAWS() as aws:
            yield World(aws, slack, counter)
    finally:
        slack.stop()


#: The Medic layer, built once per process and bytecode variant; each function's package is a copy of it.
_LAYERS: dict[bool, Package] = {}


def medic_package(function: str | None, *, precompiled: bool) -> Package:
    """Medic as deployed: functions/<function>/ as the task root, the medic layer + its requirements, the
    runbook layer (at <opt>/lambda-latency.yaml). Remove it when done (the shared layer goes at exit)."""
    layer = _LAYERS.get(precompiled)
    if layer is None:
        layer = Package.build(
            function=None,
            packages=closure(*LAYER_REQUIREMENTS),
            extra={"medic": ROOT / "shared" / "medic"},
            precompiled=precompiled,
            skip=RUNTIME_PACKAGES,
        )
        (layer.layer.parent / "lambda-latency.yaml").write_bytes(RUNBOOK.read_bytes())
        _LAYERS[precompiled] = layer
        atexit.register(layer.remove)
    return layer.with_function(ROOT / "functions" / function if function else None)


def scenario(w: World, name: str, *, realtime: bool = True, runbook: Runbook | None = None) -> Simulation:
    """A fresh world for `scenarios/<name>.yaml`, Medic's resources, the bot token secret; Medic's runtime
    installed in this process (the simulator's, with the console as Slack).

    `realtime`: the world's clock is now (the child's system clock then sees the metrics in its window);
    otherwise the simulator's default, an hour ago (for the verifier, whose window must have passed)."""
    return simulation(
        w, load_scenario(SCENARIOS / f"{name}.yaml"), f"scenarios/{name}.yaml", realtime=realtime, runbook=runbook
    )


def simulation(
    w: World, spec: Scenario, source: str, *, realtime: bool = True, runbook: Runbook | None = None
) -> Simulation:
    """`scenario()` for a scenario built in code (a storm's hundred functions)."""
    w.aws.reset()
    sim = Simulation(spec, source, w.aws.endpoint_url, Story(None), show_json=False, runbook=runbook)
    if realtime:
        sim.clock.set(datetime.now(UTC).replace(second=0, microsecond=0))
    sim.setup()
    sim.clients.secrets.create_secret(Name=BOT_TOKEN_SECRET, SecretString="xoxb-bench-token")
    return sim


def medic_env(w: World, sim: Simulation, package: Package, **overrides: Any) -> dict[str, str]:
    """The function's environment variables: the simulation's settings as MEDIC_*, Slack's Web API (the fake),
    the runbook from the layer, AWS at the embedded endpoint."""
    assert sim.runtime is not None
    token = sim.clients.secrets.describe_secret(SecretId=BOT_TOKEN_SECRET)["ARN"]
    values = sim.runtime.settings.model_dump()
    values.update(
        slack_bot_token_secret_arn=token,
        slack_api_url=w.slack.url,
        runbook_path=package.layer.parent / "lambda-latency.yaml",
        **overrides,
    )
    Settings.model_validate(values)  # the same settings the child will build from the environment
    env = {
        "AWS_ENDPOINT_URL": w.aws.endpoint_url,
        "AWS_REGION": sim.region,
        "AWS_DEFAULT_REGION": sim.region,
        "PYTHONPATH": str(package.layer),
        "LAMBDA_TASK_ROOT": str(package.task_root),
        "MEDIC_LOG_LEVEL": "INFO",
    }
    for name, var in ENV_VARS.items():
        text = _env_text(name, values.get(name))
        if text:
            env[var] = text
    return env


def _env_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, frozenset | set):
        return ",".join(sorted(value))
    if name == "opt_in_tag":
        return f"{value[0]}={value[1]}"
    if isinstance(value, tuple | list):
        return ",".join(str(part) for part in value)
    return str(value)


def medic_environment(env: dict[str, str]) -> Environment:
    """A Medic function's execution environment (the handler module is the task root's app.py)."""
    return Environment(init="import app", handler="app.handler", env=env)


def executor_event(sim: Simulation) -> dict[str, Any]:
    """The executor queue's messages as the SQS event source mapping delivers them (deleted from the queue)."""
    queue = sim.infra["queue"]
    messages = sim.clients.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])
    records = simulation_steps.executor_records(messages.get("Messages", []), sim.region)
    for m in messages.get("Messages", []):
        sim.clients.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    if not records:
        raise RuntimeError("the executor queue is empty: nothing was approved")
    return {"Records": records}


def wipe_log(sim: Simulation) -> None:
    """Forget Medic's own state (plans, claims, anchors, events; the queue) but not the world: the next triage
    of the same alarm is a first delivery again. Used between warm invocations."""
    ddb = sim.clients.dynamodb
    for table, keys in ((sim.infra["plans"], ("plan_id",)), (sim.infra["events"], ("plan_id", "seq"))):
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = ddb.scan(**kwargs)
            for item in page.get("Items", []):
                ddb.delete_item(TableName=table, Key={k: item[k] for k in keys})
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    while True:
        messages = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"], MaxNumberOfMessages=10)
        if not messages.get("Messages"):
            return
        for m in messages["Messages"]:
            sim.clients.sqs.delete_message(QueueUrl=sim.infra["queue"], ReceiptHandle=m["ReceiptHandle"])


def signed_click(
    w: World, sim: Simulation, plan: Plan, decide: str = "approve", user: str = APPROVER
) -> dict[str, Any]:
    """The simulator's signed `block_actions` click on the plan's card, with its `response_url` on the fake
    Slack (the simulator's points at hooks.slack.com: the benchmark never leaves the machine), signed again."""
    from slack_sdk.signature import SignatureVerifier

    assert sim.runtime is not None
    event = simulation_steps.signed_click(plan, decide, sim.console, sim.runtime, user)  # type: ignore[arg-type]
    form = parse_qs(base64.b64decode(event["body"]).decode())
    payload = json.loads(form["payload"][0])
    payload["response_url"] = w.slack.url.removesuffix("/api/") + "/hooks/response_url"
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = event["headers"]["x-slack-request-timestamp"]
    signature = SignatureVerifier(sim.runtime.signing_secret).generate_signature(timestamp=timestamp, body=body)
    event["headers"]["x-slack-signature"] = signature or ""
    event["body"] = base64.b64encode(body).decode()
    return event


def retimed(event: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The same alarm, another transition: its state timestamp moved by `seconds` (so another plan id) and a new
    event id. Warm runs use it after `wipe_log`, so each triage is a first delivery of a transition this
    environment never saw (the ledger's per-plan caches do not flatter it)."""
    moved = copy.deepcopy(event)
    state = moved["detail"]["state"]
    stamp = datetime.strptime(state["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z") + timedelta(seconds=seconds)
    state["timestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"
    moved["id"] = str(uuid.uuid4())
    return moved
