"""Who may write what in the plans table, checked against what the code actually sends (issue 18, finding 1).

A whole remediation runs through the real handlers on the embedded AWS (triage, a two-person approval, drift and its
re-proposal, the re-proposal approved, applied and verified, `/medic pause` and `resume`) while every DynamoDB
request is recorded with the function that made it. Each write on the plans table is then judged against that
function's statements in template.yaml, with IAM's documented semantics for the DynamoDB condition keys Medic uses
(dynamodb:LeadingKeys, dynamodb:Attributes, dynamodb:ReturnValues; a TransactWriteItems is authorized item by item as
the PutItem/UpdateItem it contains). Both ways: the template allows everything the code does, grants the roles that
move plans no attribute their code never names, and refuses them the write an attacker holding them would need: the
`approval_hash` attribute a plan is bound to (moto does not evaluate IAM; this test does, on the real requests).
The events table's appends are judged the same way: each role may put records only on the chains its code appends
to (dynamodb:LeadingKeys)."""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import APP, APPROVER, CHANNEL, TEAM, Simulation, Story
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS
from support import slack_signed_headers

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"
FUNCTIONS = {"triage": "TriageFunction", "interactions": "InteractionsFunction", "executor": "ExecutorFunction",
             "verifier": "VerifierFunction"}  # fmt: skip
#: Words of DynamoDB's expression grammar (not attribute names).
KEYWORDS = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN", "attribute_exists",
            "attribute_not_exists", "attribute_type", "begins_with", "contains", "size", "if_not_exists",
            "list_append"}  # fmt: skip


# -- the template's statements, as IAM reads them ---------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags kept as their long forms (!Sub x → {"Fn::Sub": x})."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _tag)


def plans_statements(function: str, table: str = "PlansTable") -> list[dict[str, Any]]:
    """The function's statements on the table itself (the plans table unless said; an Fn::If takes its organization
    branch)."""
    template = yaml.load((ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=_CfnLoader)
    found = []
    for policy in template["Resources"][function]["Properties"]["Policies"]:
        for written in policy["Statement"]:
            statement = written["Fn::If"][1] if "Fn::If" in written else written
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if any(json.dumps(r) == json.dumps({"Fn::GetAtt": f"{table}.Arn"}) for r in resources):
                found.append(statement)
    return found


def _holds(operator: str, values: list[str] | None, allowed: list[str]) -> bool:
    if operator == "ForAllValues:StringEquals":
        return all(value in allowed for value in values or [])
    if operator == "ForAllValues:StringLike":
        return all(any(fnmatch.fnmatchcase(value, pattern) for pattern in allowed) for value in values or [])
    if operator == "StringEqualsIfExists":
        return values is None or all(value in allowed for value in values)
    raise AssertionError(f"the test does not know the condition operator {operator}: teach it IAM's meaning first")


def allowed(function: str, request: dict[str, Any]) -> bool:
    """Whether one of `function`'s statements allows `request` (action, leading key, attributes, return values)."""
    context = {"dynamodb:LeadingKeys": [request["key"]], "dynamodb:Attributes": sorted(request["attributes"]),
               "dynamodb:ReturnValues": [request["returns"]] if request["returns"] else None}  # fmt: skip
    for statement in plans_statements(function, request.get("table", "PlansTable")):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if request["action"] not in actions:
            continue
        conditions = statement.get("Condition", {})
        if all(_holds(op, context[key], values if isinstance(values, list) else [values])
               for op, keys in conditions.items() for key, values in keys.items()):  # fmt: skip
            return True
    return False


# -- the requests the code makes -------------------------------------------------------------------------------------


def _names(expression: str, aliases: dict[str, str]) -> set[str]:
    names = {aliases[alias] for alias in re.findall(r"#\w+", expression)}
    bare = re.sub(r"[#:]\w+", " ", expression)
    return names | {word for word in re.findall(r"[A-Za-z_]\w*", bare) if word not in KEYWORDS}


def plan_writes(operation: str, params: dict[str, Any], plans_table: str, events_table: str = "") -> Iterator[
    dict[str, Any]
]:  # fmt: skip
    """Each write of a request on the plans table (and the events table, when named), as IAM authorizes it (a
    transaction: each of its items); `table` says which (its logical id)."""
    if operation == "TransactWriteItems":
        for item in params["TransactItems"]:
            [(kind, inner)] = item.items()
            if kind != "ConditionCheck":
                yield from plan_writes({"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}[kind],
                                       inner, plans_table, events_table)  # fmt: skip
        return
    tables = {plans_table: "PlansTable", **({events_table: "EventsTable"} if events_table else {})}
    if operation not in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem") or params.get("TableName") not in (
        tables
    ):
        assert operation != "BatchWriteItem", "BatchWriteItem: not a write Medic makes"
        return
    aliases = params.get("ExpressionAttributeNames", {})
    key = params["Item"] if operation == "PutItem" else params["Key"]
    attributes = set(key)
    for expression in ("UpdateExpression", "ConditionExpression"):
        attributes |= _names(params.get(expression, ""), aliases)
    yield {"action": f"dynamodb:{operation}", "key": key["plan_id"]["S"], "attributes": attributes,
           "returns": params.get("ReturnValues"), "table": tables[params["TableName"]]}  # fmt: skip


# -- the remediation -------------------------------------------------------------------------------------------------


def slash_command(sim: Simulation, text: str) -> dict[str, Any]:
    """`/medic <text>` from the on-call approver, signed as Slack signs it, as a Function URL event."""
    assert sim.runtime is not None
    form = {"command": "/medic", "text": text, "user_id": APPROVER, "user_name": "oncall", "team_id": TEAM,
            "api_app_id": APP, "channel_id": CHANNEL, "response_url": f"https://hooks.slack.com/commands/{TEAM}/1/x",
            "trigger_id": "1.2.3"}  # fmt: skip
    body = urlencode(form).encode()
    return {"headers": {"content-type": "application/x-www-form-urlencoded",
                        **slack_signed_headers(sim.runtime.signing_secret, body)},
            "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "127.0.0.1"}},
            "body": base64.b64encode(body).decode(), "isBase64Encoded": True}  # fmt: skip


@pytest.fixture(scope="module")
def recorded(aws_server: EmbeddedAWS) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every write of one remediation on the plans and events tables, with the function that made it (a refused
    Slack request and a rejected event included: their chains are the log's too)."""
    aws_server.reset()
    scenario = load_scenario(FLOOR)
    scenario = scenario.model_copy(update={"settings": {**scenario.settings, "two_person_cost_usd": 0.0,
                                                        "promotion_after": 1, "cooldown_s": 0}})  # fmt: skip
    sim = Simulation(scenario, str(FLOOR), aws_server.endpoint_url, Story(None))
    sim.setup()
    calling: list[str] = []
    writes: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if calling:
            made = plan_writes(model.name, params, sim.infra["plans"], sim.infra["events"])
            writes.extend((calling[-1], w) for w in made)

    sim.clients.dynamodb.meta.events.register("before-parameter-build.dynamodb", record)
    for name, handler in list(sim.handlers.items()):

        def as_function(event: Any, context: Any, name: str = name, handler: Any = handler) -> Any:
            calling.append(name)
            try:
                return handler(event, context)
            finally:
                calling.pop()

        sim.handlers[name] = as_function
    try:
        [plan] = sim.triage(sim.alarm_events())
        sim.approve(plan)  # two approvers: the approvals set
        sim.clients.lambda_.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live",
                                                               ProvisionedConcurrentExecutions=30)  # fmt: skip
        sim.drain_executor()  # drift: DRIFTED, and a re-proposal from the live state
        assert sim.runtime is not None
        fresh = sim.runtime.ledger.get(plan.id + "-r1")
        assert fresh is not None and fresh.status == "PROPOSED"
        sim.approve(fresh)
        sim.drain_executor()
        sim.after_fix_and_verify()
        assert sim.runtime.ledger.get(fresh.id).status == "VERIFIED"  # type: ignore[union-attr]
        promote_apply_and_demote(sim)  # graduated autonomy: its writes judged like the plans'
        for text in ("pause drill", "resume"):
            assert sim.handlers["interactions"](slash_command(sim, text), None)["statusCode"] == 200
        unsigned = {**slash_command(sim, "pause"), "headers": {}}
        assert sim.handlers["interactions"](unsigned, None)["statusCode"] == 401  # kept on the day's refused# chain
        assert sim.handlers["triage"]({"not": "an alarm"}, None)["status"] == "rejected"  # kept as rejected-…
        yield writes
    finally:
        install(None)
        moto_ext.reset_knobs()


def promote_apply_and_demote(sim: Simulation) -> None:
    """The verified re-proposal proposed its scope (promotion_after 1; the drift had restarted its evidence): two
    approvers promote it, the incident comes back and is applied without a click, the alarm goes on firing, and the
    verifier's FAILED demotes it."""
    from datetime import timedelta

    from medic.promotions import promotion_key
    from medic_tools.simulate import ACCOUNT, SECOND_APPROVER
    from medic_tools.world import alarms
    from medic_tools.world.scenario_world import put_metric

    assert sim.runtime is not None
    key = promotion_key("floor-too-low", "checkout:live")
    for user in (APPROVER, SECOND_APPROVER):
        assert sim.click_promotion(key, user=user)["statusCode"] == 200
    [auto] = sim.triage(sim.recur())
    assert auto.status == "APPROVED"
    sim.drain_executor()
    metric = next(m for m in sim.scenario.world.metrics if m.name == "ProvisionedConcurrencySpilloverInvocations")
    begin = sim.clock.now().replace(second=0) + timedelta(minutes=1)
    put_metric(sim.clients, metric.model_copy(update={"values": [90.0, 95.0, 99.0]}), begin=begin)
    sim.clock.set(begin + timedelta(minutes=3))
    alarms.evaluate_alarms(sim.clock.now(), ACCOUNT, sim.region)
    sim.handlers["verifier"]({"source": "aws.events"}, None)
    assert (sim.runtime.ledger.promotion_item(key) or {}).get("promotion_state") == "DEMOTED"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_template_allows_every_plans_table_write_the_code_makes(
    recorded: list[tuple[str, dict[str, Any]]], function: str
) -> None:
    made = [request for caller, request in recorded if caller == function]
    assert made, f"the remediation made no write from {function}"
    refused = [request for request in made if not allowed(FUNCTIONS[function], request)]
    assert refused == []


@pytest.mark.parametrize("function", ["interactions", "executor", "verifier"])
def test_the_roles_that_move_plans_are_granted_no_attribute_their_code_never_names(
    recorded: list[tuple[str, dict[str, Any]]], function: str
) -> None:
    for promotions in (False, True):  # the plans' statement, then the promotions' (medic.promotions)
        named = set().union(*(r["attributes"] for caller, r in recorded if caller == function and
                              r["action"] == "dynamodb:UpdateItem" and r["table"] == "PlansTable" and
                              r["key"].startswith("promotion#") == promotions))  # fmt: skip
        [moving] = [
            s
            for s in plans_statements(FUNCTIONS[function])
            if "dynamodb:UpdateItem" in s["Action"] and _promotions_only(s) == promotions
        ]
        granted = set(moving["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
        # A promotion's rejection (`since`) is not part of this remediation: the promotions' statement holds more.
        assert granted == named if not promotions else granted >= named


def _promotions_only(statement: dict[str, Any]) -> bool:
    return bool(statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["promotion#*"])


#: The writes an attacker holding a role would need to make a rewritten plan pass as approved.
def _forged(key: str, action: str = "dynamodb:UpdateItem", returns: str | None = None) -> dict[str, Any]:
    attributes = {"plan_id", "doc", "approval_hash"} if action == "dynamodb:UpdateItem" else {"plan_id", "doc"}
    return {"action": action, "key": key, "attributes": attributes, "returns": returns}


@pytest.mark.parametrize("function", ["interactions", "executor", "verifier"])
def test_no_role_but_triage_may_rewrite_the_hash_a_plan_is_bound_to(function: str) -> None:
    assert not allowed(FUNCTIONS[function], _forged("p-0123456789abcdef"))
    assert not allowed(FUNCTIONS[function], _forged("p-0123456789abcdef", "dynamodb:PutItem"))
    doc_only = {"action": "dynamodb:UpdateItem", "key": "p-0123456789abcdef", "attributes": {"plan_id", "doc"},
                "returns": "ALL_OLD"}  # fmt: skip
    assert not allowed(FUNCTIONS[function], doc_only), "a whole item is never returned to them"
    assert not allowed(FUNCTIONS[function], {**doc_only, "key": "control#circuit-breaker", "returns": None})
    assert allowed("TriageFunction", _forged("p-0123456789abcdef"))  # the writer of plans
    assert not allowed("TriageFunction", _forged("control#kill-switch", "dynamodb:PutItem")), "not the approvers' flag"


# -- the events table: each role appends to its own chains only ------------------------------------------------------

#: The chains each function appends to (`plan_id` of the events table), as the remediation above shows them.
APPENDED_CHAINS = {"triage": ("p-", "rejected-"),
                   "interactions": ("p-", "promotion#", "refused#", "control#kill-switch"),
                   "executor": ("p-", "promotion#"), "verifier": ("p-", "promotion#")}  # fmt: skip


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_role_appends_to_the_log_only_on_the_chains_its_code_writes(
    recorded: list[tuple[str, dict[str, Any]]], function: str
) -> None:
    appended = {r["key"] for caller, r in recorded if caller == function and r["table"] == "EventsTable"}
    assert all(r["action"] == "dynamodb:PutItem" for _, r in recorded if r["table"] == "EventsTable")
    assert {prefix for prefix in APPENDED_CHAINS[function] if any(k.startswith(prefix) for k in appended)} == set(
        APPENDED_CHAINS[function]
    ), "the remediation reaches every chain the role is granted"
    others = {"p-0123456789abcdef", "rejected-0123456789abcdef", "refused#2026-12-03", "control#kill-switch",
              "control#circuit-breaker", "head#p-0123456789abcdef",
              "promotion#floor-too-low#checkout:live"}  # fmt: skip
    for chain in others:
        record = {"action": "dynamodb:PutItem", "key": chain, "attributes": {"plan_id", "seq"}, "returns": None,
                  "table": "EventsTable"}  # fmt: skip
        granted = allowed(FUNCTIONS[function], record)
        assert granted == chain.startswith(APPENDED_CHAINS[function]), f"{function} on {chain}"
