"""Advice: no change to AWS, the finding and the facts behind it for an engineer to act on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medic.actions.base import Action, PlannedAction

if TYPE_CHECKING:
    from medic.alarms.signals import Target
    from medic.facts import Facts


class Advise(Action):
    """No change: the advice an engineer needs, with the facts behind it.

    Runbook example::

        actions:
          - kind: advise
            params: {}
    """

    kind = "advise"
    free = "no charge for advice (nothing changes)"
    changes_aws = False
    params = ()

    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        return [PlannedAction(kind=self.kind, target=target.display, primary="advice", text="advice only")]
