"""Graduated autonomy: a runbook row earns mode `auto` on one target from evidence.

After `Settings.promotion_after` plans of one row on one target were approved by humans and then VERIFIED (no
failure, rollback or drift of that scope since), the verifier proposes promoting that scope (`evidence`): a Slack card
with the evidence and a ready runbook override (`override`). Two distinct approvers promote it (`medic.usecases.
promote`); triage then raises that row's mode from approve to auto on that target (`standing.promoted_mode`), never
above an action's `max_mode` nor in dry run, and only when the promotion's own hash chain (`promotion#<row>#<target>`)
holds the proposal and both approvals (`standing`). Any FAILED, ROLLED_BACK or DRIFTED plan of the scope demotes it.
"""

from medic.promotions.scope import DEMOTING_STATES, promotion_key

__all__ = ["DEMOTING_STATES", "promotion_key"]
