"""The remediation log against a rewrite with Medic's own permissions (issue 18, item 3), over HTTP.

The fixed-floor scenario runs through the real handlers; the digest writer's handler (functions/digest) writes its
digests to a bucket with Object Lock in compliance mode, as template.yaml declares it; the attacker then uses boto3
with what any of Medic's roles may do (PutItem, UpdateItem on the tables; a put in the bucket standing in for a
principal the bucket policy would not stop), and `medic log verify` is run as an operator would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from medic.clock import iso
from medic.ledger.chain import recomputed_hash
from medic.ledger.digests.model import digest_key, sha256
from medic.ledger.digests.writer import LogTampered
from medic.ledger.store import HEAD_PREFIX, Ledger, LogEvent
from medic.plan import Plan, approval_hash
from medic.runtime import install
from medic_tools.cli import main
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Outcome, Simulation, Story, load_handler
from medic_tools.world.server import EmbeddedAWS

FLOOR = Path(__file__).resolve().parents[2] / "scenarios" / "spillover-fixed-floor.yaml"
OK_EVENT = FLOOR.parents[1] / "events" / "ok-state.json"
BUCKET = "medic-log-digests"


class Log:
    """The run's tables and bucket, and the writer's handler."""

    def __init__(self, sim: Simulation, outcome: Outcome) -> None:
        self.sim, self.outcome = sim, outcome
        self.plan = outcome.plans[0]
        self.dynamodb = sim.clients.dynamodb
        self.s3 = sim.clients.client("s3")
        self.plans, self.events = sim.infra["plans"], sim.infra["events"]

    def write_digest(self) -> dict[str, Any]:
        install(None)  # the handler builds its runtime from the environment, as in Lambda
        try:
            return load_handler("digest")({"source": "aws.events"}, None)
        finally:
            install(None)

    def digest(self, sequence: int) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=BUCKET, Key=digest_key(sequence))["Body"].read()
        return dict(json.loads(body))

    def noop_from_an_ok_transition(self) -> list[Plan]:
        """A second chain: the OK transition of events/ok-state.json, triaged as EventBridge would hand it over."""
        assert self.sim.runtime is not None
        install(self.sim.runtime)
        try:
            result = self.sim.handlers["triage"](json.loads(OK_EVENT.read_text()), None)
        finally:
            install(None)
        return [p for p in self.sim.runtime.ledger.all_plans() if p.id == result.get("plan_id")]

    def records(self) -> list[LogEvent]:
        return Ledger(self.dynamodb, self.plans, self.events).events(self.plan.id)

    def rewrite(self, events: list[LogEvent]) -> None:
        """Put records over the chain's and move its anchor to the last one: UpdateItem and PutItem suffice."""
        for event in events:
            item = {"plan_id": {"S": event.plan_id}, "seq": {"N": str(event.seq)}, "at": {"S": event.at},
                    "kind": {"S": event.kind}, "data": {"S": json.dumps(event.data, sort_keys=True)},
                    "prev_hash": {"S": event.prev_hash}, "hash": {"S": event.hash}}  # fmt: skip
            if event.context:
                item["context"] = {"S": json.dumps(event.context, sort_keys=True)}
            if event.plan_content:
                item |= {"plan_state": {"S": event.plan_state}, "plan_content": {"S": event.plan_content}}
            self.dynamodb.put_item(TableName=self.events, Item=item)
        last = events[-1]
        self.dynamodb.update_item(
            TableName=self.plans, Key={"plan_id": {"S": HEAD_PREFIX + last.plan_id}},
            UpdateExpression="SET head_seq = :s, head_hash = :h",
            ExpressionAttributeValues={":s": {"N": str(last.seq)}, ":h": {"S": last.hash}},
        )  # fmt: skip


@pytest.fixture
def log(aws: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch) -> Iterator[Log]:
    """The fixed-floor scenario, approved, applied and verified; the digest bucket as template.yaml makes it."""
    sim = Simulation(load_scenario(FLOOR), str(FLOOR), aws.endpoint_url, Story(None))
    outcome = sim.run("approve")
    s3 = sim.clients.client("s3")
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=BUCKET, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}},
    })  # fmt: skip
    for name, value in {"MEDIC_PLANS_TABLE": sim.infra["plans"], "MEDIC_EVENTS_TABLE": sim.infra["events"],
                        "MEDIC_DIGEST_BUCKET": BUCKET}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    yield Log(sim, outcome)
    install(None)


def test_the_writer_digests_every_chain_head_into_a_locked_chain_of_digests(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    first = log.write_digest()
    second = log.write_digest()

    last = log.outcome.log[-1]
    digest = log.digest(1)
    assert (first["sequence"], first["chains"], digest["previous"]) == (1, first["chains_in_log"], None)
    assert digest["chains"][log.plan.id] == {"seq": last.seq, "hash": last.hash}
    head = log.s3.head_object(Bucket=BUCKET, Key=digest_key(1))
    assert head["ObjectLockMode"] == "COMPLIANCE"
    body = log.s3.get_object(Bucket=BUCKET, Key=digest_key(1))["Body"].read()
    assert log.digest(2)["previous"] == {"sequence": 1, "key": digest_key(1), "sha256": sha256(body)}
    assert (second["sequence"], second["chains"]) == (2, 0), "nothing moved between the two runs"
    assert main(["log", "verify"]) == 0
    out = capsys.readouterr().out
    assert "0 broken" in out and "digests: 2 checked (#1..#2" in out and "0 problem(s) in the digests" in out


def test_a_chain_rewritten_with_medics_own_permissions_no_longer_matches_its_digest(
    log: Log, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log.write_digest()
    events = log.records()
    call = next(e for e in events if e.kind == "aws_call")
    forged: list[LogEvent] = []  # the chain is unkeyed: every hash after the edit can be recomputed
    for original in events[call.seq - 1 :]:
        event = original.model_copy(update={"prev_hash": forged[-1].hash}) if forged else original
        if event.seq == call.seq:
            event = event.model_copy(update={"data": {**event.data, "after": {"provisioned_concurrency": 20}}})
        forged.append(event.model_copy(update={"hash": recomputed_hash(event)}))
    log.rewrite(forged)

    monkeypatch.delenv("MEDIC_DIGEST_BUCKET")
    assert main(["log", "verify", "--plan", log.plan.id]) == 0, "the chain alone cannot tell"
    capsys.readouterr()
    assert main(["log", "verify", "--plan", log.plan.id, "--digest-bucket", BUCKET]) == 1
    last = events[-1]
    assert (f"{log.plan.id}: BROKEN at record #{last.seq} (of {last.seq}): record #{last.seq} no longer has the hash "
            f"digest #1 recorded ({last.hash[:16]}…): the chain was rewritten") in capsys.readouterr().out  # fmt: skip

    monkeypatch.setenv("MEDIC_DIGEST_BUCKET", BUCKET)
    with pytest.raises(LogTampered):  # the writer pages once, and never blesses the rewritten head
        log.write_digest()
    digest = log.digest(2)
    assert digest["chains"][log.plan.id] == {"seq": last.seq, "hash": last.hash}
    assert digest["problems"] == {
        log.plan.id: f"record #{last.seq} no longer has the hash digest #1 recorded: the chain was rewritten"
    }
    assert log.write_digest()["sequence"] == 3, "the same problem pages once"
    assert main(["log", "verify", "--plan", log.plan.id]) == 1


def test_a_plan_item_edited_after_the_fact_no_longer_matches_its_log(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = log.plan.model_copy(deep=True)
    edited.actions[0].after["provisioned_concurrency"] = 900
    edited.approval_hash = approval_hash(edited)
    log.dynamodb.update_item(TableName=log.plans, Key={"plan_id": {"S": log.plan.id}}, UpdateExpression="SET doc = :d",
                             ExpressionAttributeValues={":d": {"S": edited.model_dump_json()}})  # fmt: skip

    assert main(["log", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"{log.plan.id}: BROKEN: the plan item does not match its log: its content hash is" in out
    assert "(edited after the fact)" in out


def test_a_shortened_chain_and_a_vanished_chain_are_named_against_the_digest(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    [noop] = log.noop_from_an_ok_transition()
    log.write_digest()
    *kept, last = log.records()
    log.dynamodb.delete_item(TableName=log.events, Key={"plan_id": {"S": log.plan.id}, "seq": {"N": str(last.seq)}})
    log.rewrite([kept[-1]])  # the anchor moved back: the chain alone looks whole
    for event in Ledger(log.dynamodb, log.plans, log.events).events(noop.id):
        log.dynamodb.delete_item(TableName=log.events, Key={"plan_id": {"S": noop.id}, "seq": {"N": str(event.seq)}})
    for key in (noop.id, HEAD_PREFIX + noop.id):
        log.dynamodb.delete_item(TableName=log.plans, Key={"plan_id": {"S": key}})

    assert main(["log", "verify"]) == 1
    out = capsys.readouterr().out
    assert (f"{log.plan.id}: BROKEN at record #{last.seq} (of {last.seq - 1}): the chain ends at #{last.seq - 1}, "
            f"before #{last.seq} that digest #1 recorded: records were removed") in out  # fmt: skip
    assert f"{noop.id}: BROKEN: digest #1 recorded the chain up to #" in out and "the log holds no record of it" in out


def test_the_digests_are_checked_link_by_link_and_version_by_version(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    log.write_digest()
    log.write_digest()
    log.s3.put_object(Bucket=BUCKET, Key=digest_key(1), Body=b'{"forged": true}')  # a second version on top
    log.s3.delete_object(Bucket=BUCKET, Key=digest_key(2))  # a delete marker: the locked version stays
    fourth = {"version": 1, "sequence": 4, "written_at": "2026-11-22T09:00:00.000Z", "chains": {}, "problems": {},
              "chains_in_log": 0, "previous": {"sequence": 3, "key": digest_key(3), "sha256": "0" * 64}}  # fmt: skip
    log.s3.put_object(Bucket=BUCKET, Key=digest_key(4), Body=json.dumps(fourth).encode())
    fifth = fourth | {"sequence": 5, "previous": {"sequence": 4, "key": digest_key(4), "sha256": "f" * 64}}
    log.s3.put_object(Bucket=BUCKET, Key=digest_key(5), Body=json.dumps(fifth).encode())

    assert main(["log", "verify"]) == 1
    problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith("DIGEST PROBLEM")]
    assert problems == [
        "DIGEST PROBLEM: digest #1 was written 2 times: its first version is checked, the later ones are not Medic's",
        "DIGEST PROBLEM: digest #2 is hidden by a delete marker (its locked version is checked)",
        "DIGEST PROBLEM: digest #3 is missing from the sequence",
        f"DIGEST PROBLEM: digest #5's previous-digest hash does not match digest #4 (it names {'f' * 16}…, digest #4 "
        f"hashes to {sha256(json.dumps(fourth).encode())[:16]}…)",
    ]


def test_records_the_writer_was_made_to_skip_are_named(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    log.write_digest()
    log.write_digest()  # the chain did not move: #2 does not list it, so the next run goes by the anchor's time
    ledger = Ledger(log.dynamodb, log.plans, log.events)
    appended = ledger.append(log.plan.id, "replayed", {"by": "U0ONCALL"}, log.sim.clock.now() - timedelta(hours=2))
    log.dynamodb.update_item(  # the anchor's time held back, so that the writer takes the chain as unmoved
        TableName=log.plans, Key={"plan_id": {"S": HEAD_PREFIX + log.plan.id}}, UpdateExpression="SET head_at = :t",
        ExpressionAttributeValues={":t": {"S": iso(log.sim.clock.now() - timedelta(days=30))}},
    )  # fmt: skip
    log.write_digest()

    assert log.plan.id not in log.digest(3)["chains"]
    assert main(["log", "verify", "--plan", log.plan.id]) == 1
    assert (f"record #{appended.seq} was written before the latest digest but no digest covers it"
            in capsys.readouterr().out)  # fmt: skip
