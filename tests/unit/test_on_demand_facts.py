"""Facts read on demand (`medic.facts.on_demand`): a group is read the first time one of its facts is, once, with
the groups its reader depends on; what was never asked for is never read, nor recorded."""

from __future__ import annotations

import pytest

from medic.facts.on_demand import Group, OnDemandFacts
from medic.planning.runbook import decide, parse_runbook


def _facts(reads: list[str]) -> OnDemandFacts:
    facts = OnDemandFacts(function_name="checkout")

    def config() -> None:
        reads.append("config")
        facts.memory_mb, facts.tags = 512, {"team": "pay"}
        facts.vcpus = facts.memory_mb / 1769  # a reader reads its own facts without reading itself again

    def reports() -> None:
        reads.append("reports")
        facts.report_lines = 10
        facts.max_memory_used_mb = 500.0
        facts.memory_used_ratio = facts.max_memory_used_mb / (facts.memory_mb or 1)  # depends on config

    def account() -> None:
        reads.append("account")
        facts.account_limit = 1000

    facts.defer([
        Group(("memory_mb", "tags", "vcpus"), config),
        Group(("report_lines", "max_memory_used_mb", "memory_used_ratio"), reports),
        Group(("account_limit",), account),
    ])  # fmt: skip
    return facts


def test_a_group_is_read_once_when_one_of_its_facts_is_first_read_with_what_it_depends_on() -> None:
    reads: list[str] = []
    facts = _facts(reads)
    assert reads == [] and facts.function_name == "checkout"
    assert facts.memory_used_ratio == 500 / 512
    assert reads == ["reports", "config"]
    assert (facts.memory_mb, facts.report_lines, facts.vcpus) == (512, 10, 512 / 1769)
    assert reads == ["reports", "config"]
    assert facts.pending == {"account_limit"}


def test_what_was_never_read_is_not_recorded_and_recording_reads_nothing() -> None:
    reads: list[str] = []
    facts = _facts(reads)
    assert facts.memory_mb == 512
    assert facts.recorded() == {"function_name": "checkout", "memory_mb": 512, "vcpus": 512 / 1769}
    assert reads == ["config"]


def test_decide_reads_the_groups_its_rows_read_in_order_and_no_other() -> None:
    runbook = parse_runbook(
        """
runbook: t
version: 1
tables:
  p99_latency:
    rows:
      - id: small
        when: ["memory_mb < 256", "account_limit > 0"]
        diagnosis: cpu_starved
        mode: notify
        actions: [{kind: advise}]
        rationale: small
      - id: teams
        scope: {tags: {team: pay}}
        when: ["memory_used_ratio >= 0.9"]
        diagnosis: memory_pressure
        mode: notify
        actions: [{kind: advise}]
        rationale: "{memory_used_ratio} of {memory_mb} MB"
"""
    )
    reads: list[str] = []
    facts = _facts(reads)
    decision = decide(runbook, "p99_latency", facts.environment(), facts.target_tags())
    assert decision.row == "teams"
    assert reads == ["config", "reports"]  # the first row's first condition is false: the account is never read
    assert decision.model_dump() == decide(runbook, "p99_latency", {**facts.values()}, facts.tags).model_dump()


def test_the_tags_are_read_only_when_a_row_is_scoped_by_tag() -> None:
    reads: list[str] = []
    facts = _facts(reads)
    tags = facts.target_tags()
    assert reads == []
    assert tags is not None and dict(tags) == {"team": "pay"}
    assert reads == ["config"]


def test_a_fact_belongs_to_one_group() -> None:
    facts = OnDemandFacts()
    facts.defer([Group(("memory_mb",), lambda: None)])
    with pytest.raises(ValueError, match="memory_mb"):
        facts.defer([Group(("memory_mb", "timeout_s"), lambda: None)])
    with pytest.raises(ValueError, match="sources"):
        facts.defer([Group(("sources",), lambda: None)])
