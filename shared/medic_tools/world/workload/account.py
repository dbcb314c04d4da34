"""A modelled account anchored in time: the window before the alarm, then the time after a fix.

>>> from datetime import UTC, datetime
>>> from medic_tools.scenario import WorldSpec
>>> world = WorldSpec.model_validate({"window_min": 5, "functions": [{"name": "api", "workload": {
...     "arrivals": {"base_rps": 5, "seed": 1}}}]})
>>> account = ModelledAccount(account_config(world), window_end=datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
>>> account.start.isoformat(), len({d.metric for d in account.series()}) > 5
('2026-01-01T11:55:00+00:00', True)
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from medic_tools.world.workload.alarm import AlarmView
from medic_tools.world.workload.config import AccountConfig, account_config
from medic_tools.world.workload.emit import Datum, series
from medic_tools.world.workload.model import AccountModel
from medic_tools.world.workload.reports import ReportLine, report_lines
from medic_tools.world.workload.trace import Trace

if TYPE_CHECKING:
    from medic_tools.world.workload.fixes import Change
    from medic_tools.world.workload.truth import Fix, GroundTruth

__all__ = ["ModelledAccount", "account_config"]


class ModelledAccount:
    """The model of a scenario's account: `start` is the window's first second, `window_end` the alarm's moment."""

    def __init__(self, config: AccountConfig, window_end: datetime) -> None:
        self.config = config
        self.window_s = config.window_minutes * 60
        self.window_end = window_end
        self.start = window_end - timedelta(seconds=self.window_s)
        self.model = AccountModel(config)
        self.model.run(self.window_s)
        self.after: AccountConfig | None = None
        self.fix_s: int | None = None
        self.synced: list[str] = []  # PC the model's autoscaling changed, put into the world

    @property
    def trace(self) -> Trace:
        return self.model.trace

    def second_of(self, moment: datetime) -> int:
        return math.floor((moment - self.start).total_seconds())

    def series(self, first: int = 0, last: int | None = None) -> list[Datum]:
        """The series of minutes [first, last) (default: the window)."""
        return series(self.trace, self.config, first, self.config.window_minutes if last is None else last)

    def reports(self, first: int = 0, last: int | None = None) -> list[ReportLine]:
        return report_lines(
            self.trace, self.config, self.start, first, self.config.window_minutes if last is None else last
        )

    def continue_after_fix(self, fixed: AccountConfig, fix_at: datetime, until: datetime) -> tuple[int, int]:
        """Run on with the old configuration until `fix_at`, then with `fixed` until `until`; the minutes added."""
        first = math.ceil(self.model.second / 60)
        self.fix_s = max(self.model.second, self.second_of(fix_at))
        self.model.run(self.fix_s)
        self.model.reconfigure(fixed)
        self.after = fixed
        last_s = self.second_of(until)
        self.model.run(last_s)
        return first, math.ceil(last_s / 60)

    def run_on(self, until: datetime) -> tuple[int, int]:
        """Run on with the configuration the model has until `until`; the minutes added."""
        first = math.ceil(self.model.second / 60)
        last_s = self.second_of(until)
        self.model.run(last_s)
        return first, math.ceil(last_s / 60)

    def ground_truth(self, alarm: AlarmView) -> GroundTruth:
        """The incident's truth for an alarm evaluated at the window's end."""
        from medic_tools.world.workload.truth import Incident, ground_truth

        return ground_truth(Incident(self.config, self.trace, alarm, self.config.window_minutes))

    def predict(self, alarm: AlarmView, changes: list[Change]) -> Fix:
        """What `changes` would have done to this incident: the same workload (same seeds) replayed from the window's
        start with them (and what AWS requires with them), judged on the alarm's evaluation window."""
        from medic_tools.world.workload.remedies import verify
        from medic_tools.world.workload.truth import Incident

        return verify(Incident(self.config, self.trace, alarm, self.config.window_minutes), changes)

    def summary(self, first: int = 0, last: int | None = None) -> list[str]:
        """One line per modelled function (and database), for the story."""
        last = self.config.window_minutes if last is None else last
        lines = []
        for function in self.config.functions:
            if function.workload is None:
                continue
            cells = [
                c for m in range(first, last) for k, c in self.trace.cells.get(m, {}).items() if k[0] == function.name
            ]
            walls: dict[str, int] = {}
            for cell in cells:
                for wall, count in cell.walls.items():
                    walls[wall] = walls.get(wall, 0) + count
            cold = sum(n for c in cells for w, n in c.durations.items() if w[0] == "cold")
            arrivals = function.workload.arrivals
            shape = f"{arrivals.shape} {arrivals.base_rps:g}" + (
                f"→{arrivals.peak_rps:g}" if arrivals.peak_rps is not None else ""
            )
            refused = ", ".join(f"{count} by {wall}" for wall, count in walls.items()) or "none"
            lines.append(
                f"{function.name} ({function.invoke_path} on {function.workload.invoke.qualifier}, {shape} rps): "
                f"{sum(c.invocations for c in cells)} invocations, {cold} cold, "
                f"{sum(c.spillover for c in cells)} spilled, {sum(c.errors for c in cells)} errors, "
                f"throttled: {refused}"
            )
        return lines
