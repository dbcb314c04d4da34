"""Medic's use cases, one module each; every Lambda handler calls one of them with the runtime (`medic.runtime`).

    triage        alarm event → signal → facts → plan (medic.planning) → log → executor queue or Slack card
    execute       executor queue → apply an approved plan, bound to its approval; `rollback` undoes a FAILED one
    verify        every minute: APPLIED plans judged on their alarm; stuck applies re-driven, then failed
    interactions  Slack's requests: Approve / Reject clicks and the `/medic` command (medic.chatops)

`steps` holds what apply and rollback share, `repropose` the new plan made after drift. What follows a state change
(the metric, the thread, the card) is `medic.outcomes`; the executor's message is `medic.queue`.
"""
