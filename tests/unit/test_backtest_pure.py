"""`medic backtest`'s pure parts: the period, the event rebuilt from a history item, the differences between verdicts
and with the log, the rate limit, the resume file, the progress bar, the report's charts, and the one-line refusals
of bad input (before any AWS call)."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from medic.actions.base import PlannedAction
from medic.alarms.events import parse_alarm_event
from medic.alarms.signals import classify
from medic.errors import InputError
from medic.plan import Plan, plan_id
from medic_tools.backtest.calls import TokenBucket, is_read
from medic_tools.backtest.events import parse_history_item, rebuild_event, state_timestamp
from medic_tools.backtest.model import AlarmTimeline, LogOutcome, StateChangeRow, TransitionRow, Verdict
from medic_tools.backtest.period import Period, parse_moment
from medic_tools.backtest.progress import Progress
from medic_tools.backtest.report import marks, spans, sparkline
from medic_tools.backtest.resume import ResumeFile
from medic_tools.backtest.verdicts import Decided, altered, compare_with_log, transition_notes
from medic_tools.cli import main

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ARN = "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:checkout-live-spillover"
ALARM: dict[str, Any] = {  # as DescribeAlarms describes a single-metric alarm
    "AlarmName": "checkout-live-spillover", "AlarmArn": ARN, "AlarmDescription": "spillover on checkout:live",
    "Namespace": "AWS/Lambda", "MetricName": "ProvisionedConcurrencySpilloverInvocations", "Statistic": "Sum",
    "Dimensions": [{"Name": "FunctionName", "Value": "checkout"}, {"Name": "Resource", "Value": "checkout:live"}],
    "Period": 60, "EvaluationPeriods": 3, "Threshold": 0.0, "ComparisonOperator": "GreaterThanThreshold",
}  # fmt: skip
REASON_DATA = {"version": "1.0", "queryDate": "2026-11-27T09:30:00.101+0000", "statistic": "Sum", "period": 60,
               "recentDatapoints": [35.0, 120.0, 180.0], "threshold": 0.0}  # fmt: skip
ITEM: dict[str, Any] = {  # as DescribeAlarmHistory returns a StateUpdate item
    "AlarmName": "checkout-live-spillover", "AlarmType": "MetricAlarm", "HistoryItemType": "StateUpdate",
    "Timestamp": datetime(2026, 11, 27, 9, 30, 0, 123456, tzinfo=UTC),
    "HistorySummary": "Alarm updated from OK to ALARM",
    "HistoryData": json.dumps({"version": "1.0",
                               "oldState": {"stateValue": "OK", "stateReason": "Threshold Crossed: fine"},
                               "newState": {"stateValue": "ALARM", "stateReason": "Threshold Crossed: 3 datapoints",
                                            "stateReasonData": REASON_DATA}}),
}  # fmt: skip


# -- the period ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", NOW - timedelta(seconds=90)), ("30m", NOW - timedelta(minutes=30)), ("12h", NOW - timedelta(hours=12)),
     ("30d", NOW - timedelta(days=30)), ("2w", NOW - timedelta(days=14)), (" 7D ", NOW - timedelta(days=7)),
     ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC)),
     ("2026-11-27T09:30Z", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
     ("2026-11-27T09:30", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
     ("2026-11-27T10:30+01:00", datetime(2026, 11, 27, 9, 30, tzinfo=UTC))],
)  # fmt: skip
def test_since_is_a_duration_back_from_now_or_an_iso_time(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "30", "3y", "-2d", "2026-13-01", ""])
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_moment(text, NOW, field="--until")
    assert refused.value.field == "--until"


def test_the_period_runs_from_since_to_until_or_now() -> None:
    assert Period.parse("2d", None, NOW) == Period(NOW - timedelta(days=2), NOW)
    assert Period.parse("2026-11-27", "2026-11-28", NOW).until == datetime(2026, 11, 28, tzinfo=UTC)
    with pytest.raises(InputError, match="is not before --until") as refused:
        Period.parse("2026-11-28", "2026-11-27", NOW)
    assert refused.value.field == "--since"
    with pytest.raises(InputError, match="is in the future") as future:
        Period.parse("1d", "2027-01-01", NOW)
    assert future.value.field == "--until"


# -- the event ----------------------------------------------------------------------------------------


def test_the_event_is_rebuilt_from_the_alarm_and_its_history_item() -> None:
    change = parse_history_item(ITEM)

    event = rebuild_event(ALARM, change, previous=datetime(2026, 11, 27, 8, 0, tzinfo=UTC))

    assert event["detail"]["state"] == {
        "value": "ALARM", "reason": "Threshold Crossed: 3 datapoints",
        "reasonData": json.dumps(REASON_DATA, separators=(",", ":")), "timestamp": "2026-11-27T09:30:00.123+0000",
    }  # fmt: skip
    assert event["detail"]["previousState"] == {"value": "OK", "reason": "Threshold Crossed: fine",
                                                "timestamp": "2026-11-27T08:00:00.000+0000"}  # fmt: skip
    assert (event["account"], event["region"], event["resources"], event["time"]) == (
        "111122223333", "eu-west-1", [ARN], "2026-11-27T09:30:00Z",
    )  # fmt: skip
    parsed = parse_alarm_event(event)
    signal = classify(parsed)
    assert (signal.kind, signal.target.display, signal.noop_reason) == ("spillover", "checkout:live", None)
    assert parsed.detail.configuration.description == "spillover on checkout:live"
    assert parsed.detail.state.reason_data is not None and parsed.detail.state.reason_data.recent_datapoints[-1] == 180
    # The log's key for the transition: what triage computed from the event AWS sent.
    assert plan_id(parsed.alarm_arn, "2026-11-27T09:30:00.123Z") == plan_id(ARN, "2026-11-27T09:30:00.123Z")
    assert state_timestamp(parsed.detail.state.timestamp) == "2026-11-27T09:30:00.123+0000"


def test_a_metric_math_alarm_keeps_its_queries_and_the_first_change_has_no_previous_state() -> None:
    alarm = {"AlarmName": "checkout-p99", "AlarmArn": ARN.replace("checkout-live-spillover", "checkout-p99"),
             "Metrics": [{"Id": "m1", "ReturnData": False, "MetricStat": {
                 "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Duration",
                            "Dimensions": [{"Name": "FunctionName", "Value": "checkout"}]},
                 "Period": 60, "Stat": "p99", "Unit": "Milliseconds"}},
                 {"Id": "e1", "Expression": "m1 / 1000", "Label": "seconds", "ReturnData": True}]}  # fmt: skip

    event = rebuild_event(alarm, parse_history_item({**ITEM, "AlarmName": "checkout-p99"}))

    assert "previousState" not in event["detail"]
    assert event["detail"]["configuration"]["metrics"] == [
        {"id": "m1", "metricStat": {"metric": {"namespace": "AWS/Lambda", "name": "Duration",
                                               "dimensions": {"FunctionName": "checkout"}},
                                    "period": 60, "stat": "p99", "unit": "Milliseconds"}, "returnData": False},
        {"id": "e1", "expression": "m1 / 1000", "label": "seconds", "returnData": True},
    ]  # fmt: skip
    parsed = parse_alarm_event(event)
    assert parsed.detail.configuration.kind == "metric_math"
    assert classify(parsed).kind == "p99_latency"


def test_unreadable_history_data_keeps_the_states_its_summary_names_and_says_so() -> None:
    change = parse_history_item({**ITEM, "HistoryData": "{not json"})

    assert (change.old_value, change.new_value, change.new_reason_data) == ("OK", "ALARM", None)
    assert change.problem.startswith("HistoryData unreadable")
    assert "reasonData" not in rebuild_event(ALARM, change)["detail"]["state"]


def test_a_row_says_when_its_history_item_lacks_reason_data_or_is_older_than_the_minute_datapoints() -> None:
    change = parse_history_item(ITEM)
    bare = parse_history_item({**ITEM, "HistoryData": json.dumps({"version": "1.0", "oldState": {"stateValue": "OK"},
                                                                  "newState": {"stateValue": "ALARM"}})})  # fmt: skip

    assert transition_notes(change, change.time + timedelta(days=15)) == []
    assert transition_notes(bare, bare.time) == [
        "the history item has no stateReasonData: the alarm's value and threshold are unknown"
    ]
    [old] = transition_notes(change, change.time + timedelta(days=15, seconds=1))
    assert old.startswith("older than 15 days")
    [unreadable] = transition_notes(parse_history_item({**ITEM, "HistoryData": "?"}), change.time)
    assert unreadable.startswith("HistoryData unreadable") and unreadable.endswith("no state reason or reason data")


# -- what differs ---------------------------------------------------------------------------------------


def pc(after: int, before: int = 20) -> PlannedAction:
    return PlannedAction(kind="set_provisioned_concurrency", target="checkout:live", function_name="checkout",
                         qualifier="live", primary="provisioned_concurrency",
                         before={"provisioned_concurrency": before},
                         after={"provisioned_concurrency": after})  # fmt: skip


def decided(diagnosis: str | None, mode: str | None, actions: list[PlannedAction], rule: str = "floor") -> Decided:
    return Decided(Verdict(runbook="r v1", status="PROPOSED", diagnosis=diagnosis, rule=rule, mode=mode), actions)


def test_two_verdicts_differ_in_their_diagnosis_mode_or_actions_not_in_their_rule() -> None:
    base = decided("pc_floor_too_low", "approve", [pc(78)])

    assert altered(base, decided("pc_floor_too_low", "approve", [pc(78)], rule="another-row")) == []
    assert altered(base, decided("pc_floor_too_low", "approve", [pc(83)])) == ["actions"]
    assert altered(base, decided("pc_floor_too_low", "approve", [pc(78, before=21)])) == ["actions"]
    assert altered(base, decided("pc_floor_too_low", "notify", [pc(78)])) == ["mode"]
    assert altered(base, decided("unexplained", "notify", [])) == ["diagnosis", "mode", "actions"]


def test_the_replayed_decision_is_compared_with_the_logged_plan() -> None:
    logged = Plan(id="p-1", status="VERIFIED", alarm_arn=ARN, alarm_name="a", state_timestamp="t", account="1",
                  region="eu-west-1", signal="spillover", target="checkout:live", diagnosis="pc_floor_too_low",
                  rule="floor", mode="approve", actions=[pc(78)], created_at="c", updated_at="c")  # fmt: skip

    assert compare_with_log(decided("pc_floor_too_low", "approve", [pc(78)]), logged) == []
    assert compare_with_log(decided("unexplained", "notify", [], rule="spillover-unexplained"), logged) == [
        "diagnosis: pc_floor_too_low then, unexplained now", "rule: floor then, spillover-unexplained now",
        "mode: approve then, notify now",
        "actions: set_provisioned_concurrency checkout:live 20 → 78 then; none now",
    ]  # fmt: skip


# -- calls -------------------------------------------------------------------------------------------------


def test_only_reads_pass() -> None:
    reads = ["DescribeAlarms", "DescribeAlarmHistory", "GetMetricData", "GetFunction", "ListAliases", "Query",
             "GetItem", "BatchGetItem", "FilterLogEvents", "StartQuery", "GetQueryResults", "GetResources"]  # fmt: skip
    writes = ["PutMetricAlarm", "SetAlarmState", "PutItem", "UpdateItem", "TransactWriteItems", "DeleteAlarms",
              "PutProvisionedConcurrencyConfig", "StopQuery", "SendMessage", "BatchWriteItem", "Scan"]  # fmt: skip
    assert [op for op in reads if not is_read(op)] == []
    assert [op for op in writes if is_read(op)] == []


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_token_bucket_lets_a_burst_through_then_holds_the_rate() -> None:
    time = FakeTime()
    bucket = TokenBucket(4, clock=time.clock, sleep=time.sleep)

    for _ in range(4 + 8):
        bucket.take()

    assert time.slept[:1] == [pytest.approx(0.25)] and len(time.slept) == 8
    assert time.now == pytest.approx(2.0)  # 8 calls past the burst at 4 a second
    assert bucket.waited_s == pytest.approx(2.0)
    time.now += 10  # idle: the bucket refills to its burst, not beyond
    slept = len(time.slept)
    for _ in range(5):
        bucket.take()
    assert len(time.slept) == slept + 1


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)


# -- resume, progress -----------------------------------------------------------------------------------------


def row(pid: str) -> TransitionRow:
    return TransitionRow(plan_id=pid, time="2026-11-27T09:30:00.123Z", alarm="a", alarm_arn=ARN, target="f",
                         signal="throttles", decision=Verdict(runbook="r v1", status="NOOP"),
                         log=LogOutcome(available=False))  # fmt: skip


def test_the_resume_file_keeps_the_rows_of_runs_with_the_same_runbooks_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "resume.jsonl"
    first = ResumeFile(path, "key-1")
    first.append(row("p-1"))
    first.append(row("p-2"))
    first.close()
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "key-1", "row": {"plan_id": "p-3", "ti')  # a run stopped mid-line

    again = ResumeFile(path, "key-1")
    other = ResumeFile(path, "key-2")

    assert set(again.done) == {"p-1", "p-2"} and again.done["p-1"] == row("p-1") and again.unreadable == 1
    assert other.done == {} and other.ignored == 2
    again.append(row("p-3"))
    again.close()
    assert set(ResumeFile(path, "key-1").done) == {"p-1", "p-2", "p-3"}  # the cut line did not swallow the next


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_only_on_a_terminal_and_not_when_quiet() -> None:
    for stream, quiet, drawn in ((io.StringIO(), False, False), (Terminal(), True, False), (Terminal(), False, True)):
        progress = Progress(stream, quiet=quiet, calls=lambda: 41, clock=lambda: 10.0)
        progress.start("replaying", 12)
        progress.step(3)
        progress.close()
        assert bool(stream.getvalue()) == drawn
    assert "replaying [######------------------] 3/12 · 41 AWS calls" in stream.getvalue()


# -- the report's charts -----------------------------------------------------------------------------------


def timeline(*changes: tuple[str, str, str]) -> AlarmTimeline:
    return AlarmTimeline(alarm="a", target="f", signal="throttles",
                         changes=[StateChangeRow(time=t, old=old, new=new) for t, old, new in changes])  # fmt: skip


def test_a_sparkline_shows_the_worst_state_of_each_slice_so_a_one_minute_alarm_shows() -> None:
    since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC)  # 10 days, 10 slices
    alarm = timeline(("2026-11-03T12:00:00.000Z", "OK", "ALARM"), ("2026-11-03T12:01:00.000Z", "ALARM", "OK"),
                     ("2026-11-08T00:00:00.000Z", "OK", "INSUFFICIENT_DATA"))  # fmt: skip

    assert sparkline(alarm, since, until, slices=10) == "▁▁█▁▁▁▁▄▄▄"
    assert sparkline(timeline(), since, until, slices=10) == "··········"
    assert [span.state for span in spans(alarm, since, until)] == ["OK", "ALARM", "OK", "INSUFFICIENT_DATA"]
    assert marks([datetime(2026, 11, 3, 12, tzinfo=UTC), until], since, until, slices=10) == "  ▲      ▲"


# -- bad input: one line naming the field, exit 2, before any AWS call ---------------------------------------


@pytest.mark.parametrize(
    ("argv", "field"),
    [(["--since", "last friday"], "--since"), (["--until", "2999-01-01"], "--until"),
     (["--since", "1d", "--until", "2d"], "--since"), (["--rate", "0"], "--rate"), (["--rate", "nan"], "--rate"),
     (["--report", "out.pdf"], "--report"), (["--report", "no/such/folder/out.md"], "--report")],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_field(
    argv: list[str], field: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: a call would fail differently

    assert main(["backtest", "--quiet", *argv]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"medic: backtest: {field}: ")


def test_a_runbook_that_cannot_be_read_is_named(
    bare_shell: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.yaml"

    assert main(["backtest", "--quiet", "--against", str(missing)]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{missing}" in err and "cannot read" in err


@pytest.fixture
def bare_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A shell with no AWS configuration at all: no files, no profile, no instance credentials, no MEDIC_*."""
    for name in [name for name in os.environ if name.startswith(("AWS_", "MEDIC_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_without_a_region_or_credentials_the_backtest_says_what_to_set(
    bare_shell: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bare_shell.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    bare_shell.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert main(["backtest", "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("medic: backtest: no AWS region configured: set AWS_REGION")

    bare_shell.delenv("AWS_ACCESS_KEY_ID")
    bare_shell.delenv("AWS_SECRET_ACCESS_KEY")
    bare_shell.setenv("AWS_REGION", "eu-west-1")
    bare_shell.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached: signing fails first
    assert main(["backtest", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medic: backtest: no AWS credentials found: set AWS_PROFILE") and err.count("\n") == 1


def test_the_resume_key_is_the_same_in_every_process(tmp_path: Path) -> None:
    """Settings hold sets (the approvers): their order changes with each process's hash seed, the key must not."""
    import subprocess
    import sys

    runbook = tmp_path / "runbook.yaml"
    runbook.write_text("runbook: r\n")
    code = ("import sys; from medic.config import Settings; from medic_tools.backtest.resume import fingerprint; "
            "s = Settings(plans_table='p', events_table='e', approvers='U1,U2,U3,U4,U5,U6'); "
            f"print(fingerprint([{str(runbook)!r}], s.model_dump()))")  # fmt: skip
    keys = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout.strip()
        for seed in range(4)
    }  # fmt: skip
    assert len(keys) == 1 and "" not in keys


def test_in_scope_are_the_alarms_of_opted_in_functions_and_of_their_databases() -> None:
    from medic_tools.backtest.history import scope

    def alarm(name: str, namespace: str, metric: str, **dimensions: str) -> dict[str, Any]:
        return {**ALARM, "AlarmName": name, "AlarmArn": ARN.replace("checkout-live-spillover", name),
                "Namespace": namespace, "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]}  # fmt: skip

    alarms = [
        alarm("checkout-throttles", "AWS/Lambda", "Throttles", FunctionName="checkout"),
        alarm("legacy-throttles", "AWS/Lambda", "Throttles", FunctionName="legacy"),
        alarm("orders-db-connections", "AWS/RDS", "DatabaseConnections", DBInstanceIdentifier="orders-db"),
        alarm("account-concurrency", "AWS/Lambda", "ConcurrentExecutions"),
        alarm("queue-depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName="orders"),
    ]
    functions = {"checkout": {"medic:managed": "true"},
                 "worker": {"medic:managed": "true", "medic:database": "orders-db"}}  # fmt: skip

    skipped = {a.name: a.skipped for a in scope(alarms, functions, ("medic:managed", "true"), now=NOW)}
    only_checkout = {a.name: a.skipped for a in scope(alarms, functions, ("medic:managed", "true"), ("checkout",), NOW)}
    only_worker = {a.name: a.skipped for a in scope(alarms, functions, ("medic:managed", "true"), ("worker",), NOW)}

    assert skipped["checkout-throttles"] == "" and skipped["orders-db-connections"] == ""
    assert skipped["legacy-throttles"] == "function legacy not opted in (medic:managed=true)"
    assert skipped["account-concurrency"].startswith("no function or database target")
    assert skipped["queue-depth"].startswith("no function or database target")
    assert only_checkout["checkout-throttles"] == "" and only_checkout["orders-db-connections"] == (
        "no consumer among --function"
    )
    assert only_worker["orders-db-connections"] == "" and only_worker["checkout-throttles"] == "not among --function"
