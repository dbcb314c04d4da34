"""`medic backtest`'s table: one line per transition to ALARM, what differs beneath it, and the summary."""

from __future__ import annotations

from collections.abc import Sequence

from medic_tools.backtest.model import ActionRow, BacktestDocument, TransitionRow, Verdict


def _value(value: object) -> str:
    return "unset" if value is None else str(value)


def plan_text(verdict: Verdict) -> str:
    """The plan in a line: each change before → after, the advice, a refusal.

    >>> plan_text(Verdict(runbook="r v1", status="PROPOSED", actions=[ActionRow(kind="set_memory", target="f",
    ...     before=512, after=1024), ActionRow(kind="advise", target="f")]))
    'set_memory f 512 → 1024, advice'
    """
    changes = [
        f"{a.kind} {a.target} {_value(a.before)} → {_value(a.after)}" for a in verdict.actions if a.kind != "advise"
    ]
    advice = sum(1 for action in verdict.actions if action.kind == "advise")
    if advice:
        changes.append("advice" if advice == 1 else f"{advice} pieces of advice")
    text = ", ".join(changes) or "no change"
    if verdict.blocked_by:
        text += " — BLOCKED: " + "; ".join(refusal.guard for refusal in verdict.blocked_by)
    return text


def decision_text(verdict: Verdict) -> str:
    if verdict.diagnosis is None:
        return f"— ({verdict.reason})" if verdict.reason else "—"
    return f"{verdict.diagnosis} ({verdict.rule})"


def cost_text(verdict: Verdict) -> str:
    return "—" if verdict.cost_monthly_usd is None else f"{verdict.cost_monthly_usd:+,.2f}"


def log_text(row: TransitionRow) -> str:
    log = row.log
    if not log.available:
        return "log n/a"
    if not log.found:
        return "not in log"
    if log.superseded_by:
        return f"SUPERSEDED by {log.superseded_by}"
    verdict = "" if log.equal is None else ", equal" if log.equal else ", differs"
    return f"{log.plan_status}{verdict}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]


def table(document: BacktestDocument) -> str:
    """The text `medic backtest` prints."""
    summary = document.summary
    lines = [
        f"backtest {document.period.since} → {document.period.until} · runbook {document.runbook.name} "
        f"v{document.runbook.version} · {len(document.alarms)} alarm(s) in scope, {len(document.skipped_alarms)} "
        f"skipped · log {'read' if document.log.available else 'not available'}"
    ]
    header = ("time", "alarm", "target", "signal", "decision (rule)", "mode", "$/month", "log", "plan")
    rows = [header]
    for row in document.transitions:
        verdict = row.decision
        rows.append(
            (
                row.time[:16].replace("T", " ") + "Z",
                _short(row.alarm, 40),
                row.target,
                row.signal,
                _short(decision_text(verdict), 60),
                verdict.mode or "—",
                cost_text(verdict),
                log_text(row),
                plan_text(verdict),
            )
        )
    if document.transitions:
        table_lines = _columns(rows)
        lines.append(table_lines[0])
        for row, line in zip(document.transitions, table_lines[1:], strict=True):
            lines.append(line)
            lines.extend(f"    {detail}" for detail in _details(row))
    else:
        lines.append("no transition to ALARM of an opted-in function's alarm in the period")
    lines.append(_summary_line(document))
    if document.against is not None:
        lines.extend(_altered(document))
    calls = summary.calls
    per = f" ({calls.per_transition:g} per transition replayed)" if calls.per_transition is not None else ""
    lines.append(
        f"{calls.total} AWS calls, all reads{per}, at most {calls.rate_limit:g}/s (waited {calls.waited_s:g} s)"
    )
    lines.append(
        "note: metrics and REPORT lines are as of each transition; configuration facts (memory, reserved and "
        "provisioned concurrency, autoscaling, the account's limit) are today's"
    )
    if not document.log.available:
        lines.append(f"note: {document.log.note}")
    return "\n".join(lines)


def _details(row: TransitionRow) -> list[str]:
    details = [f"≠ log: {difference}" for difference in row.log.differences]
    if row.log.note and row.log.available:
        details.append(f"log: {row.log.note}")
    details += [f"note: {note}" for note in row.notes]
    if row.against is not None and row.altered:
        details.append(
            f"against: {decision_text(row.against)} · {row.against.mode or '—'} · {plan_text(row.against)}"
            f"  (alters {', '.join(row.altered)})"
        )
    return details


def _summary_line(document: BacktestDocument) -> str:
    summary = document.summary
    resumed = f" ({summary.resumed} from --resume)" if summary.resumed else ""
    return (
        f"{summary.alarm_transitions} ALARM transitions, {summary.alarm_transitions} decisions replayed{resumed}: "
        f"{summary.equal_to_log} equal to the log, {summary.differ_from_log} differ, {summary.not_in_log} not "
        "compared"
    )


def _altered(document: BacktestDocument) -> list[str]:
    summary = document.summary
    assert document.against is not None
    lines = [
        f"against {document.against.name} v{document.against.version} ({' + '.join(document.against.layers)}): "
        f"this change alters {summary.altered} of {summary.alarm_transitions} decisions"
    ]
    for row in document.transitions:
        if row.against is not None and row.altered:
            lines.append(
                f"  {row.time} {row.alarm}: {decision_text(row.decision)} · {row.decision.mode or '—'} · "
                f"{plan_text(row.decision)}  →  {decision_text(row.against)} · {row.against.mode or '—'} · "
                f"{plan_text(row.against)}"
            )
    return lines


__all__ = ["ActionRow", "cost_text", "decision_text", "log_text", "plan_text", "table"]
