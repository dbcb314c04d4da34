"""`--report FILE.md|FILE.html`: the backtest as a small report — the summary, then per function a chart of its alarms'
states over the period with the replayed decisions marked, and its transitions' table.

HTML draws each chart as inline SVG (one lane per alarm: ALARM red, OK green, INSUFFICIENT_DATA grey, unknown before
the first change blank; a triangle per replayed decision, its details in the tooltip). Markdown draws a text sparkline
per alarm (each character a slice of the period, showing the worst state in it, so a one-minute alarm still shows) and
a line of ▲ under the slices with a replayed decision. No dependency beyond the standard library.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from medic.clock import parse_iso
from medic.errors import InputError
from medic_tools.backtest.model import AlarmTimeline, BacktestDocument, TransitionRow
from medic_tools.backtest.period import SOURCE
from medic_tools.backtest.render import cost_text, decision_text, log_text, plan_text

SLICES: Final = 60
SPARK: Final = {"ALARM": "█", "INSUFFICIENT_DATA": "▄", "OK": "▁", None: "·"}
COLOURS: Final = {"ALARM": "#d64545", "INSUFFICIENT_DATA": "#b0b0b0", "OK": "#3c9a5f"}
WORST: Final = {"ALARM": 3, "INSUFFICIENT_DATA": 2, "OK": 1, None: 0}


def check_report_path(path: str) -> None:
    """`--report`'s file: a .md or .html name in a folder that exists (checked before any AWS call)."""
    target = Path(path)
    if target.suffix.lower() not in (".md", ".html", ".htm"):
        raise InputError(field="--report", source=SOURCE, problem=f"{path!r}: name a .md or .html file")
    if not target.parent.is_dir():
        raise InputError(field="--report", source=SOURCE, problem=f"{path!r}: no folder {str(target.parent)!r}")


def write_report(document: BacktestDocument, path: Path) -> None:
    text = html_report(document) if path.suffix.lower() in (".html", ".htm") else markdown_report(document)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            field="--report", source=SOURCE, problem=f"cannot write {path}: {exc.strerror or exc}"
        ) from None


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime
    state: str | None  # None: unknown (before the period's first change)


def spans(alarm: AlarmTimeline, since: datetime, until: datetime) -> list[Span]:
    """The alarm's states over [since, until]: before its first change, the state it changed from."""
    result: list[Span] = []
    moment, state = since, (alarm.changes[0].old if alarm.changes else None)
    for change in alarm.changes:
        at = parse_iso(change.time)
        if at > moment:
            result.append(Span(moment, at, state))
        moment, state = max(moment, at), change.new
    if until > moment:
        result.append(Span(moment, until, state))
    return result


def sparkline(alarm: AlarmTimeline, since: datetime, until: datetime, slices: int = SLICES) -> str:
    """One character per slice of the period: the worst state the alarm was in during it."""
    step = (until - since) / slices
    cells: list[str | None] = [None] * slices
    for span in spans(alarm, since, until):
        first = int((span.start - since) / step)
        last = min(slices - 1, int((span.end - since) / step - 1e-9))
        for index in range(max(0, first), last + 1):
            if WORST[span.state] > WORST[cells[index]]:
                cells[index] = span.state
    return "".join(SPARK[cell] for cell in cells)


def marks(times: Sequence[datetime], since: datetime, until: datetime, slices: int = SLICES) -> str:
    step = (until - since) / slices
    cells = [" "] * slices
    for moment in times:
        cells[min(slices - 1, max(0, int((moment - since) / step)))] = "▲"
    return "".join(cells).rstrip()


def _groups(document: BacktestDocument) -> dict[str, tuple[list[AlarmTimeline], list[TransitionRow]]]:
    groups: dict[str, tuple[list[AlarmTimeline], list[TransitionRow]]] = defaultdict(lambda: ([], []))
    of_alarm = {}
    for alarm in document.alarms:
        name = alarm.function or alarm.target
        groups[name][0].append(alarm)
        of_alarm[alarm.alarm] = name
    for row in document.transitions:
        groups[of_alarm.get(row.alarm, row.function or row.target)][1].append(row)
    return dict(sorted(groups.items()))


def _summary(document: BacktestDocument) -> list[str]:
    summary = document.summary
    lines = [
        f"{summary.alarm_transitions} ALARM transitions of {len(document.alarms)} alarm(s) in scope, "
        f"{summary.alarm_transitions} decisions replayed ({summary.resumed} from --resume): {summary.equal_to_log} "
        f"equal to the log, {summary.differ_from_log} differ, {summary.not_in_log} not compared.",
        f"{summary.calls.total} AWS calls, all reads"
        + (f", {summary.calls.per_transition:g} per transition replayed" if summary.calls.per_transition else "")
        + f", at most {summary.calls.rate_limit:g} a second.",
    ]
    if document.against is not None:
        lines.append(
            f"Against {document.against.name} v{document.against.version} "
            f"({' + '.join(document.against.layers)}): this change alters {summary.altered} of "
            f"{summary.alarm_transitions} decisions."
        )
    return lines


def _row_cells(row: TransitionRow) -> list[str]:
    cells = [
        row.time,
        row.alarm,
        row.signal,
        decision_text(row.decision),
        row.decision.mode or "—",
        plan_text(row.decision),
        cost_text(row.decision),
        log_text(row),
    ]
    extra = [*row.log.differences, *row.notes]
    if row.against is not None and row.altered:
        extra.append(f"against: {decision_text(row.against)} · {row.against.mode or '—'} · {plan_text(row.against)}")
    return [*cells, "; ".join(extra)]


HEADER: Final = ("time", "alarm", "signal", "decision (rule)", "mode", "plan", "$/month", "log", "notes")


def markdown_report(document: BacktestDocument) -> str:
    since, until = parse_iso(document.period.since), parse_iso(document.period.until)
    lines = [
        f"# Medic backtest, {document.period.since} → {document.period.until}",
        "",
        f"Runbook {document.runbook.name} v{document.runbook.version} ({' + '.join(document.runbook.layers)}); "
        f"opt-in tag `{document.opt_in_tag}`; log: "
        f"{'read' if document.log.available else document.log.note}.",
        "",
        *(f"- {line}" for line in _summary(document)),
        "",
    ]
    legend = "█ ALARM, ▄ INSUFFICIENT_DATA, ▁ OK, · unknown; ▲ a replayed decision"
    for name, (alarms, rows) in _groups(document).items():
        lines += [
            f"## {name}",
            "",
            f"{SLICES} slices of {_duration(until - since, SLICES)} each ({legend}):",
            "",
            "```",
        ]
        width = max((len(alarm.alarm) for alarm in alarms), default=0)
        for alarm in alarms:
            times = [parse_iso(row.time) for row in rows if row.alarm == alarm.alarm]
            lines.append(f"{alarm.alarm.ljust(width)}  {sparkline(alarm, since, until)}")
            if times:
                lines.append(f"{''.ljust(width)}  {marks(times, since, until)}")
        lines += ["```", ""]
        if rows:
            lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _row_cells(row)) + " |" for row in rows]
        else:
            lines.append("No transition to ALARM in the period.")
        lines.append("")
    lines += ["## Notes", "", *(f"- {note}" for note in document.notes), ""]
    return "\n".join(lines)


def _duration(span: timedelta, parts: int) -> str:
    """A slice's length, rounded for people: "3 min", "12 h", "2 d 4 h".

    >>> _duration(timedelta(hours=3), 60), _duration(timedelta(days=30), 60)
    ('3 min', '12 h')
    """
    seconds = round(span.total_seconds() / parts)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 2 * 86_400:
        return f"{round(seconds / 3600)} h"
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def svg_chart(alarms: Sequence[AlarmTimeline], rows: Sequence[TransitionRow], since: datetime, until: datetime) -> str:
    """One lane per alarm of a function: its states as coloured spans, its replayed decisions as triangles."""
    label, width, lane, top = 220, 560, 22, 16
    height = top + lane * len(alarms) + 22
    total = (until - since).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        return round(label + width * (moment - since).total_seconds() / total, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label + width + 10}" height="{height}" '
        'font-family="sans-serif" font-size="11">'
    ]
    for index, alarm in enumerate(alarms):
        y = top + index * lane
        parts.append(f'<text x="0" y="{y + 12}">{html.escape(alarm.alarm[:34])}</text>')
        parts.append(f'<rect x="{label}" y="{y + 2}" width="{width}" height="12" fill="#f3f3f3"/>')
        for span in spans(alarm, since, until):
            if span.state is None:
                continue
            start, end = x(span.start), x(span.end)
            parts.append(
                f'<rect x="{start}" y="{y + 2}" width="{max(end - start, 1.0)}" height="12" '
                f'fill="{COLOURS.get(span.state, "#999")}"><title>{html.escape(span.state)} '
                f"{span.start:%Y-%m-%d %H:%M} → {span.end:%Y-%m-%d %H:%M}</title></rect>"
            )
        for row in rows:
            if row.alarm != alarm.alarm:
                continue
            at = x(parse_iso(row.time))
            tip = f"{row.time}: {decision_text(row.decision)} · {row.decision.mode or '—'} · {plan_text(row.decision)}"
            tip += f" · log: {log_text(row)}"
            parts.append(
                f'<polygon points="{at - 5},{y - 4} {at + 5},{y - 4} {at},{y + 3}" fill="#222">'
                f"<title>{html.escape(tip)}</title></polygon>"
            )
    axis = top + lane * len(alarms) + 14
    for fraction in (0.0, 0.5, 1.0):
        moment = since + (until - since) * fraction
        anchor = ("start", "middle", "end")[int(fraction * 2)]
        parts.append(
            f'<text x="{label + width * fraction}" y="{axis}" text-anchor="{anchor}">{moment:%Y-%m-%d %H:%M}Z</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def html_report(document: BacktestDocument) -> str:
    since, until = parse_iso(document.period.since), parse_iso(document.period.until)
    esc = html.escape
    body = [
        f"<h1>Medic backtest, {esc(document.period.since)} → {esc(document.period.until)}</h1>",
        f"<p>Runbook {esc(document.runbook.name)} v{document.runbook.version} "
        f"({esc(' + '.join(document.runbook.layers))}); opt-in tag <code>{esc(document.opt_in_tag)}</code>; log: "
        f"{'read' if document.log.available else esc(document.log.note)}.</p>",
        "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in _summary(document)) + "</ul>",
    ]
    for name, (alarms, rows) in _groups(document).items():
        body.append(f"<h2>{esc(name)}</h2>")
        body.append(svg_chart(alarms, rows, since, until))
        if rows:
            body.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADER) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in _row_cells(row)) + "</tr>" for row in rows]
            body.append("</table>")
        else:
            body.append("<p>No transition to ALARM in the period.</p>")
    body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(note)}</li>" for note in document.notes) + "</ul>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>Medic backtest</title><style>{style}</style>'
        f"</head><body>{''.join(body)}</body></html>\n"
    )
