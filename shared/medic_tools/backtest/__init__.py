"""`medic backtest`: what Medic would have done with the alarms of a past period, and what a runbook change alters.

The period's transitions to ALARM of the opted-in functions' alarms are read from CloudWatch's alarm history; each one's
EventBridge event is rebuilt, classified, its facts collected as of the transition (metrics and REPORT lines of then;
configuration facts are today's), decided by the runbook (and `--against` another), planned, and compared with the
remediation log's plan for the same transition. Read-only, rate-limited, resumable. docs/BACKTEST.md.

Modules: `period` (`--since`/`--until`), `events` (a history item → the event), `history` (what is in scope and its
state changes), `calls` (read-only, rate limit, counts), `verdicts` (one transition replayed and compared), `resume`,
`progress`, `model` (the `--json` document and its schema), `render` (the table), `report` (Markdown/HTML with charts),
`run` (the command).
"""
