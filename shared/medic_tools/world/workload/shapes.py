"""What the runtime derives from one version's invocation (its `Work` at one dependency speed), computed once.

The runtime reads these numbers for every function every second; they depend only on the configuration (and on
whether the dependency is slow), so `FunctionRuntime` builds a `Shape` the first time it needs one and keeps it until
the configuration changes. Each value is computed with the same expression, in the same order, as where it is read,
so that the floating-point results are the same bits.
"""

from __future__ import annotations

import math

from medic_tools.world.workload.physics import Work, fraction_above, occupancy_now
from medic_tools.world.workload.trace import WorkKey


class Part:
    """One kind of invocation as it is recorded: its duration key, and its error and timeout shares."""

    __slots__ = ("key", "oom", "timeout_share", "work")

    def __init__(self, work: Work, oom: bool, noise: float, timeout_ms: float) -> None:
        self.work = work
        self.key: WorkKey = work.key()
        self.oom = oom  # Runtime.OutOfMemory: every invocation fails
        self.timeout_share = 0.0 if oom else fraction_above(work.total, noise, timeout_ms)


class Shape:
    """One version's warm `work` and, derived from it: the on-demand sizes (`unit`: the environment-seconds an
    invocation takes in its first second, `cold_ms`, `per_new_env`), the provisioned ones and the recorded parts."""

    __slots__ = (
        "cold_ms",
        "cold_occupancy",
        "cold_part",
        "pc_first_ms",
        "pc_first_occupancy",
        "pc_first_part",
        "pc_occupancy",
        "pc_part",
        "per_new_env",
        "spare_per_first",
        "total",
        "unit",
        "warm_ms",
        "warm_part",
        "work",
    )

    def __init__(self, work: Work, *, init_ms: float, first_ms: float, oom: bool, noise: float, timeout_ms: float):
        total = work.total
        self.work = work
        self.total = total
        self.warm_ms = max(total, 1.0)
        self.unit = occupancy_now(self.warm_ms)
        self.cold_ms = init_ms + first_ms + total
        self.cold_occupancy = occupancy_now(self.cold_ms)
        self.per_new_env = 1 + math.floor(max(0.0, 1000.0 - self.cold_ms) / max(total, 1.0))
        self.spare_per_first = max(0.0, 1000.0 - first_ms - total) / max(total, 1.0)
        self.pc_first_ms = first_ms + total  # a provisioned environment's first run
        self.pc_first_occupancy = occupancy_now(self.pc_first_ms)
        self.pc_occupancy = occupancy_now(total)
        self.warm_part = Part(work, oom, noise, timeout_ms)
        self.cold_part = Part(work.first(first_ms, "cold"), oom, noise, timeout_ms)
        self.pc_first_part = Part(work.first(first_ms, "pc_first"), oom, noise, timeout_ms)
        pc = Work("pc", work.cpu, work.io, work.pressure, work.first_run)
        self.pc_part = Part(pc, oom, noise, timeout_ms)
