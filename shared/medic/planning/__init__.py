"""Facts → plan: the runbook's decision tables, each action's change, the guardrails, the costs.

`medic.planning.make.make_plan` is the public step that turns facts into a plan, used by triage, by the re-proposal
after drift, and by the property tests. The package itself imports nothing, so that reading one of its modules (the
Slack endpoint reads none) never loads the rest.
"""
