"""`medic backtest` over real HTTP on a world where alarms fired and triage ran: the transitions it finds in the alarm
history, the decisions it replays (equal to what triage logged for the same transitions), `--against` a runbook
change, `--resume`, the JSON document, the reports, and that it only ever reads."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from medic.clock import iso
from medic_tools.backtest.calls import is_read
from medic_tools.backtest.events import parse_history_item, rebuild_event
from medic_tools.backtest.model import BacktestDocument
from medic_tools.cli import main
from medic_tools.scenario import load_scenario
from medic_tools.simulate import ACCOUNT, Simulation, Story
from medic_tools.world import moto_ext
from medic_tools.world.alarms import evaluate_alarms
from medic_tools.world.server import EmbeddedAWS

HERE = Path(__file__).parent
SCENARIO = HERE / "scenarios" / "backtest-two-walls.yaml"
FLOOR_PLUS_HALF = HERE / "runbooks" / "floor-plus-half.yaml"


class World:
    """The two-walls world after triage ran on its alarms (nothing approved: the configuration is as it was)."""

    def __init__(self, sim: Simulation, events: list[dict[str, Any]]) -> None:
        self.sim = sim
        self.events = events  # the events triage received, as the world emitted them
        assert sim.runtime is not None
        self.ledger = sim.runtime.ledger


def throttles_alarm(sim: Simulation, function: str) -> None:
    sim.clients.cloudwatch.put_metric_alarm(
        AlarmName=f"{function}-throttles", Namespace="AWS/Lambda", MetricName="Throttles", Statistic="Sum",
        Dimensions=[{"Name": "FunctionName", "Value": function}], Period=60, EvaluationPeriods=1, Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip


@pytest.fixture
def world(aws: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from medic.runtime import install

    for name in [name for name in os.environ if name.startswith("MEDIC_")]:
        monkeypatch.delenv(name)
    sim = Simulation(load_scenario(SCENARIO), str(SCENARIO), aws.endpoint_url, Story(None))
    sim.setup()
    events = sim.alarm_events()
    throttles_alarm(sim, "thumbnailer")
    throttles_alarm(sim, "legacy")
    sim.clock.advance(60)  # the second wall is seen a minute later
    events += evaluate_alarms(sim.clock.now(), ACCOUNT, sim.region, names=["thumbnailer-throttles", "legacy-throttles"])
    sim.triage(events)
    monkeypatch.setenv("MEDIC_PLANS_TABLE", sim.infra["plans"])
    monkeypatch.setenv("MEDIC_EVENTS_TABLE", sim.infra["events"])
    yield World(sim, events)
    install(None)
    moto_ext.reset_knobs()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[BacktestDocument, str]:
    """`medic backtest --json` over the last three hours (the world's clock started one hour ago); the document and
    what went to stderr."""
    assert main(["backtest", "--since", "3h", "--quiet", "--rate", "1000", "--json", *args]) == 0
    captured = capsys.readouterr()
    return BacktestDocument.model_validate_json(captured.out), captured.err


def backtest(capsys: pytest.CaptureFixture[str], *args: str) -> BacktestDocument:
    return run(capsys, *args)[0]


def test_each_transition_to_alarm_is_replayed_and_decided_as_triage_decided_it(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    document = backtest(capsys)

    rows = {row.alarm: row for row in document.transitions}
    assert set(rows) == {"checkout-live-spillover", "thumbnailer-throttles"}
    assert [row.time for row in document.transitions] == sorted(row.time for row in document.transitions)
    skipped = {alarm.alarm: alarm.reason for alarm in document.skipped_alarms}
    assert skipped == {"legacy-throttles": "function legacy not opted in (medic:managed=true)"}
    for event in world.events:
        if event["detail"]["alarmName"] == "legacy-throttles":
            continue
        row = rows[event["detail"]["alarmName"]]
        logged = world.ledger.get(row.plan_id)
        assert logged is not None, "the backtest's plan id is the one triage gave the transition"
        assert logged.state_timestamp == row.time
        assert (row.signal, row.target) == (logged.signal, logged.target)
        assert (row.decision.diagnosis, row.decision.rule, row.decision.mode) == (
            logged.diagnosis, logged.rule, logged.mode,
        )  # fmt: skip
        assert [(a.kind, a.target, a.before, a.after) for a in row.decision.actions] == [
            (a.kind, a.target, a.before.get(a.primary), a.after.get(a.primary)) for a in logged.actions
        ]
        assert row.log.found and row.log.equal and row.log.differences == []
        assert row.log.plan_status == logged.status
        assert row.configuration_changed == {}
    assert rows["checkout-live-spillover"].decision.diagnosis == "pc_floor_too_low"
    assert rows["thumbnailer-throttles"].decision.diagnosis == "reserved_limit"
    assert document.summary.model_dump(exclude={"calls"}) == {
        "alarm_transitions": 2, "replayed": 2, "resumed": 0, "equal_to_log": 2, "differ_from_log": 0,
        "not_in_log": 0, "altered": None,
    }  # fmt: skip
    calls = document.summary.calls
    assert calls.by_operation["cloudwatch:DescribeAlarmHistory"] == 2  # one per alarm in scope, one page each
    assert calls.per_transition is not None and calls.per_transition <= 16


def test_the_rebuilt_event_is_the_one_the_world_sent(world: World) -> None:
    cloudwatch = world.sim.clients.cloudwatch
    for sent in world.events:
        name = sent["detail"]["alarmName"]
        [alarm] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        [item] = cloudwatch.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]

        rebuilt = rebuild_event(alarm, parse_history_item(item))

        assert rebuilt["detail"]["state"] == sent["detail"]["state"]
        assert rebuilt["detail"]["configuration"] == sent["detail"]["configuration"]
        assert {k: rebuilt[k] for k in ("account", "region", "resources", "time", "detail-type", "source")} == {
            k: sent[k] for k in ("account", "region", "resources", "time", "detail-type", "source")
        }
        assert "previousState" not in rebuilt  # the first change read: its old state's start is not known


def test_the_facts_are_the_transition_s_later_datapoints_play_no_part(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    later = world.sim.clock.now() + timedelta(minutes=10)
    dimensions = [{"Name": "FunctionName", "Value": "checkout"}, {"Name": "Resource", "Value": "checkout:live"}]
    world.sim.clients.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": name, "Dimensions": dimensions, "Timestamp": later, "Value": value}
        for name, value in (("ConcurrentExecutions", 900.0), ("ProvisionedConcurrencySpilloverInvocations", 5000.0),
                            ("Invocations", 90000.0))
    ])  # fmt: skip

    row = next(row for row in backtest(capsys).transitions if row.alarm == "checkout-live-spillover")

    assert row.log.equal, row.log.differences
    assert [action.after for action in row.decision.actions] == [78]


def test_an_alarm_state_set_by_hand_is_replayed_as_triage_would_take_it_and_is_not_in_the_log(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    cloudwatch = world.sim.clients.cloudwatch
    cloudwatch.set_alarm_state(AlarmName="thumbnailer-throttles", StateValue="OK", StateReason="drill over")
    cloudwatch.set_alarm_state(AlarmName="thumbnailer-throttles", StateValue="ALARM", StateReason="alarm drill")

    document = backtest(capsys)

    drill = document.transitions[-1]
    assert (drill.alarm, drill.signal, drill.decision.status, drill.decision.actions) == (
        "thumbnailer-throttles", "throttles", "NOOP", [],
    )  # fmt: skip
    assert drill.decision.reason  # why nothing is done: triage's reason for an event without reason data
    assert drill.notes == ["the history item has no stateReasonData: the alarm's value and threshold are unknown"]
    assert (drill.log.found, drill.log.equal, drill.log.note) == (False, None, "no plan in the log for this transition")
    assert document.summary.not_in_log == 1 and document.summary.equal_to_log == 2
    [timeline] = [alarm for alarm in document.alarms if alarm.alarm == "thumbnailer-throttles"]
    assert [(change.old, change.new) for change in timeline.changes] == [
        ("INSUFFICIENT_DATA", "ALARM"), ("ALARM", "OK"), ("OK", "ALARM"),
    ]  # fmt: skip


def test_a_runbook_change_that_changes_one_row_alters_one_decision(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    document = backtest(capsys, "--against", str(FLOOR_PLUS_HALF))

    assert document.summary.altered == 1
    rows = {row.alarm: row for row in document.transitions}
    floor = rows["checkout-live-spillover"]
    assert floor.altered == ["actions"]
    assert floor.against is not None and [a.after for a in floor.against.actions] == [83]  # ceil(55 × 1.5)
    assert [a.after for a in floor.decision.actions] == [78]
    assert rows["thumbnailer-throttles"].altered == []
    assert document.against is not None and document.against.layers[-1] == str(FLOOR_PLUS_HALF)

    assert main(["backtest", "--since", "3h", "--quiet", "--rate", "1000", "--against", str(FLOOR_PLUS_HALF)]) == 0
    text = capsys.readouterr().out
    assert "this change alters 1 of 2 decisions" in text
    assert "set_provisioned_concurrency checkout:live 20 → 78  →  pc_floor_too_low (floor-too-low) · approve · " \
           "set_provisioned_concurrency checkout:live 20 → 83" in text  # fmt: skip


def test_resume_skips_the_transitions_a_previous_run_finished(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    resume = tmp_path / "progress.jsonl"
    first = backtest(capsys, "--resume", str(resume))
    assert len(resume.read_text().splitlines()) == 2

    with moto_ext.count_requests() as served:
        again = backtest(capsys, "--resume", str(resume))

    assert again.summary.resumed == 2 and again.summary.replayed == 0
    assert again.transitions == first.transitions
    replaying = {"GetMetricData", "GetFunction", "GetItem", "Query"}
    assert not replaying & {request.operation for request in served.requests}
    assert len(resume.read_text().splitlines()) == 2

    other, err = run(capsys, "--resume", str(resume), "--against", str(FLOOR_PLUS_HALF))  # another run: replayed
    assert other.summary.resumed == 0 and other.summary.replayed == 2
    assert "0 unreadable line(s) and 2 of another runbook or settings ignored" in err


def test_a_backtest_only_reads(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with moto_ext.count_requests() as served:
        backtest(capsys, "--against", str(FLOOR_PLUS_HALF))

    operations = {request.operation for request in served.requests}
    assert {"DescribeAlarmHistory", "GetMetricData", "GetItem"} <= operations
    assert {operation for operation in operations if not is_read(operation)} == set()


def test_without_the_log_s_tables_each_row_says_the_log_is_not_available(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDIC_EVENTS_TABLE")

    document = backtest(capsys)

    assert not document.log.available
    assert document.log.note == "log not available: MEDIC_EVENTS_TABLE unset (or give --stack)"
    assert [row.log.available for row in document.transitions] == [False, False]
    assert document.summary.not_in_log == 2
    assert [row.decision.diagnosis for row in document.transitions] == ["pc_floor_too_low", "reserved_limit"]
    floor = document.transitions[0]
    [note] = floor.notes  # per row, the configuration the decision read, today's
    assert note.startswith("decided on today's configuration (") and "pc_allocated 20" in note, note
    assert note.endswith("): no plan in the log to tell what it was")


def test_an_applied_fix_shows_as_a_configuration_change_and_a_different_decision(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.sim.clients.lambda_.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=78
    )

    row = next(row for row in backtest(capsys).transitions if row.alarm == "checkout-live-spillover")

    assert row.configuration_changed["pc_requested"] == [20, 78]
    assert row.log.equal is False
    assert "diagnosis: pc_floor_too_low then, unexplained now" in row.log.differences
    assert any(note.startswith("configuration changed since then (") for note in row.notes)


def test_the_reports_chart_each_function_and_list_its_decisions(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    markdown, page = tmp_path / "backtest.md", tmp_path / "backtest.html"

    document = backtest(capsys, "--report", str(markdown))
    backtest(capsys, "--report", str(page))

    text = markdown.read_text(encoding="utf-8")
    assert "## checkout\n" in text and "## thumbnailer\n" in text and "legacy" not in text
    charts = text.split("```")[1::2]
    assert len(charts) == 2
    for chart, alarm in zip(charts, ("checkout-live-spillover", "thumbnailer-throttles"), strict=True):
        states, decided = chart.strip("\n").splitlines()
        assert states.startswith(alarm) and states.endswith("█")  # in ALARM since its transition, to the period's end
        assert decided.count("▲") == 1
    for row in document.transitions:
        assert f"| {row.time} | {row.alarm} | {row.signal} |" in text
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 2 and html.count("<polygon") == 2
    assert "pc_floor_too_low (floor-too-low)" in html and "reserved_limit (reserved-limit)" in html


def test_the_document_matches_its_schema(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from medic_tools.backtest.model import backtest_schema

    assert main(["backtest", "--since", "3h", "--quiet", "--rate", "1000", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)

    jsonschema.Draft202012Validator(backtest_schema()).validate(document)
    assert document["version"] == 1 and document["period"]["until"] > iso(world.sim.clock.now())
