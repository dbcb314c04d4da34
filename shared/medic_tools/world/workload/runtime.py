"""One function over time: its arrivals, routing, provisioned and on-demand environments, second by second.

The account-wide limits (the unreserved pool, the account's request rate) are applied by
`medic_tools.world.workload.model`,
which calls, every second: `begin` → `attempts` → `serve_provisioned` → `plan` → `finish` (with the environments the
account granted). Concurrency is fluid: `n` invocations of `d` ms started in a second keep n·min(d, 1000)/1000
environments busy in that second and the rest of their time in the next ones (`Occupancy`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from medic_tools.world.workload.arrivals import ArrivalStream
from medic_tools.world.workload.config import LATEST, FunctionConfig
from medic_tools.world.workload.physics import Work, fraction_above, handler_work, occupancy_now
from medic_tools.world.workload.pools import Occupancy, ProvisionedPool, ScalingBucket, WarmPool
from medic_tools.world.workload.queues import AsyncQueue, SqsQueue
from medic_tools.world.workload.spec import ModelSpec
from medic_tools.world.workload.trace import GaugeKey, Trace

_EPSILON = 1e-9


@dataclass
class Entry:
    """Invocations of one second on one resource and executed version (PC of `alias` applies when set)."""

    resource: str | None
    version: str
    alias: str | None
    count: int
    spill: bool = False


@dataclass
class VersionPool:
    warm: WarmPool
    occupancy: Occupancy = field(default_factory=Occupancy)
    carry: float = 0.0
    size: int = 0
    busy: float = 0.0


@dataclass
class Plan:
    """The on-demand side of one version this second: who fits on warm environments, how many new ones it needs."""

    version: str
    entries: list[Entry]
    work: Work
    cold_ms: float
    warm_served: int
    rest: int
    per_new_env: int
    need: int
    occupancy: float


class FunctionRuntime:
    def __init__(self, config: FunctionConfig, model: ModelSpec) -> None:
        self.config = config
        self.model = model
        workload = config.workload
        self.arrivals = ArrivalStream(workload.arrivals, config.name) if workload else None
        self.used_mb = float((workload.duration.memory_used_mb if workload else None) or max(1, config.memory_mb // 2))
        self.pools: dict[str, VersionPool] = {}
        self.provisioned: dict[str, ProvisionedPool] = {}
        self.bucket = ScalingBucket()
        self.async_queue = AsyncQueue(workload.invoke.max_event_age_s) if workload else None
        self.sqs: SqsQueue | None = None
        self.due: list[tuple[int, int, int]] = []
        self.arrived = 0
        self._fractions: dict[str, float] = {}
        self._routing_carry = 0.0
        self.reconfigure(config, 0)
        self.plans: list[Plan] = []
        self.db_failure = 0.0

    # -- configuration -------------------------------------------------------------------------------------------

    def reconfigure(self, config: FunctionConfig, second: int) -> None:
        self.config = config
        for alias in config.aliases:
            pool = self.provisioned.get(alias.name)
            if alias.pc is None and pool is None:
                continue
            if pool is None:
                assert alias.pc is not None
                self.provisioned[alias.name] = ProvisionedPool.start(
                    alias.pc, alias.version, self.model.pc_allocation_s, self.model.scale_out_periods,
                    self.model.scale_in_periods,
                )  # fmt: skip
            else:
                pool.reconfigure(alias.pc, alias.version, second)
        workload = config.workload
        if workload is not None and config.invoke_path == "sqs":
            source = next(
                (s for s in config.event_sources if workload.invoke.queue in (None, s.queue)), config.event_sources[0]
            )
            if self.sqs is None or self.sqs.name != source.queue:
                self.sqs = SqsQueue(source.queue, source.maximum_concurrency, source.batch_size)
            else:
                self.sqs.cap = float(min(source.maximum_concurrency or 1000, 1000))

    def pool(self, version: str) -> VersionPool:
        found = self.pools.get(version)
        if found is None:
            found = self.pools[version] = VersionPool(WarmPool(self.model.keep_warm_s))
        return found

    # -- each second ---------------------------------------------------------------------------------------------

    def begin(self, second: int) -> None:
        self.bucket.refill()
        for pc in self.provisioned.values():
            pc.tick(second, second)
            pc.busy_now = pc.occupancy.advance(second)
        for pool in self.pools.values():
            pool.carry = pool.occupancy.advance(second)
            pool.size = pool.warm.size(second)
            pool.busy = pool.carry
        self.plans, self.arrived, self.due = [], 0, []

    def work(self, version: str, second: int) -> Work:
        workload = self.config.workload
        assert workload is not None
        io = workload.duration.io_ms
        slow = workload.dependency
        if (
            slow is not None
            and second >= slow.slow_from_min * 60
            and (slow.slow_until_min is None or second < slow.slow_until_min * 60)
        ):
            io = slow.io_ms
        duration = workload.duration
        return handler_work(duration.cpu_ms, io, duration.parallelism, self.used_mb, self.config.memory_of(version))

    def attempts(self, second: int) -> int:
        """Arrivals of this second, and the invocations Lambda attempts now (async retries, SQS batches)."""
        if self.arrivals is None:
            return 0
        arrived = self.arrived = self.arrivals.next(second)
        path = self.config.invoke_path
        if path == "sync":
            return arrived
        if path == "async":
            assert self.async_queue is not None
            self.async_queue.enqueue(second, arrived)
            self.due = self.async_queue.due(second)
            return sum(count for _, _, count in self.due)
        assert self.sqs is not None
        self.sqs.send(second, arrived)
        self.sqs.scale()
        busy = sum(pool.carry for pool in self.pools.values())
        per_poller = 1.0 / occupancy_now(max(self.work(self.resource_version()[1], second).total, 1.0))
        return min(self.sqs.batches_waiting(), math.floor(max(0.0, self.sqs.pollers - busy) * per_poller + _EPSILON))

    def resource_version(self) -> tuple[str | None, str]:
        workload = self.config.workload
        qualifier = workload.invoke.qualifier if workload else LATEST
        if qualifier == LATEST:
            return None, LATEST
        alias = self.config.alias(qualifier)
        return f"{self.config.name}:{qualifier}", alias.version if alias else qualifier

    def route(self, count: int) -> list[Entry]:
        resource, version = self.resource_version()
        workload = self.config.workload
        alias = self.config.alias(workload.invoke.qualifier) if workload else None
        if alias is None or not alias.routing:
            return [Entry(resource, version, alias.name if alias else None, count)]
        other, weight = alias.routing[0]
        self._routing_carry += count * weight
        routed = min(count, math.floor(self._routing_carry + _EPSILON))
        self._routing_carry -= routed
        return [Entry(resource, version, None, count - routed), Entry(resource, other, None, routed)]

    def serve_provisioned(self, entries: list[Entry], second: int, trace: Trace | None) -> list[Entry]:
        """Invocations on a qualifier with PC run there first; the rest spill to on-demand environments.

        Invocations spread over the pool: an environment that never ran takes the next one first, and that first
        run pays the handler's lazy setup (the init phase ran ahead of traffic). AWS does not document which idle
        environment gets a request; spreading means a pool with steady traffic has run everywhere before a spike."""
        left: list[Entry] = []
        for entry in entries:
            pc = self.provisioned.get(entry.alias) if entry.alias else None
            if pc is None or pc.requested <= 0 or entry.count <= 0:
                left.append(entry)
                continue
            work = self.work(entry.version, second)
            first_ms = self.config.workload.duration.first_run_ms if self.config.workload else 0.0
            unit = occupancy_now(max(work.total, 1.0))
            untouched = max(0, pc.allocated - pc.touched)
            first = min(entry.count, untouched)
            spare_per_first = max(0.0, 1000.0 - first_ms - work.total) / max(work.total, 1.0)
            free = max(0.0, pc.touched - pc.busy_now)
            warm = min(entry.count - first, math.floor(free / unit + first * spare_per_first + _EPSILON))
            pc.touched += first
            pc.occupancy.schedule(second, first, first_ms + work.total)
            pc.occupancy.schedule(second, warm, work.total)
            pc.busy_now += first * occupancy_now(first_ms + work.total) + warm * occupancy_now(work.total)
            if trace is not None and second >= 0:
                self._record(trace, second, entry, work.first(first_ms, "pc_first"), first, pc_served=True)
                self._record(trace, second, entry, Work("pc", *self._parts(work)), warm, pc_served=True)
            spilled = entry.count - first - warm
            if spilled:
                left.append(Entry(entry.resource, entry.version, entry.alias, spilled, spill=True))
        return left

    @staticmethod
    def _parts(work: Work) -> tuple[float, float, float, float]:
        return work.cpu, work.io, work.pressure, work.first_run

    def plan(self, entries: list[Entry], second: int) -> None:
        """Fit this second's on-demand invocations on warm environments; count the new environments needed."""
        workload = self.config.workload
        if workload is None or not entries:
            return
        by_version: dict[str, list[Entry]] = {}
        for entry in entries:
            if entry.count > 0:
                by_version.setdefault(entry.version, []).append(entry)
        for version, group in by_version.items():
            pool = self.pool(version)
            work = self.work(version, second)
            unit = occupancy_now(max(work.total, 1.0))
            count = sum(entry.count for entry in group)
            warm_served = min(count, math.floor(max(0.0, pool.size - pool.carry) / unit + _EPSILON))
            cold_ms = workload.duration.init_ms + workload.duration.first_run_ms + work.total
            per_new_env = 1 + math.floor(max(0.0, 1000.0 - cold_ms) / max(work.total, 1.0))
            rest = count - warm_served
            self.plans.append(Plan(version, group, work, cold_ms, warm_served, rest, per_new_env,
                                   -(-rest // per_new_env), pool.carry + warm_served * unit))  # fmt: skip

    def shed(self, occupancy: float) -> None:
        """Take warm invocations back (a cap fell below what runs): they need new environments, which are refused."""
        for plan in reversed(self.plans):
            if occupancy <= _EPSILON:
                return
            unit = occupancy_now(max(plan.work.total, 1.0))
            back = min(plan.warm_served, math.ceil(occupancy / unit - _EPSILON))
            plan.warm_served -= back
            plan.rest += back
            plan.need = -(-plan.rest // plan.per_new_env)
            plan.occupancy -= back * unit
            occupancy -= back * unit

    @property
    def pc_allocated(self) -> int:
        return sum(pc.allocated for pc in self.provisioned.values())

    @property
    def need(self) -> int:
        return sum(plan.need for plan in self.plans)

    @property
    def warm_occupancy(self) -> float:
        return sum(plan.occupancy for plan in self.plans) + sum(
            pool.carry for version, pool in self.pools.items() if version not in {p.version for p in self.plans}
        )

    def finish(self, second: int, granted: int, wall: str, trace: Trace | None) -> tuple[int, int]:
        """Serve with `granted` new environments (the rest is throttled, refused by `wall`); (served, throttled)."""
        self.bucket.take(granted)
        need = self.need
        served_total = throttled_total = 0
        left = granted
        for index, plan in enumerate(self.plans):
            share = left if index == len(self.plans) - 1 else min(left, plan.need * granted // max(need, 1))
            left -= share
            cold = min(plan.rest, share)
            extra = min(plan.rest - cold, share * (plan.per_new_env - 1))
            throttled = plan.rest - cold - extra
            pool = self.pool(plan.version)
            warm_ms = max(plan.work.total, 1.0)
            pool.occupancy.schedule(second, plan.warm_served + extra, warm_ms)
            pool.occupancy.schedule(second, cold, plan.cold_ms)
            pool.busy = plan.occupancy + cold * occupancy_now(plan.cold_ms) + extra * occupancy_now(warm_ms)
            pool.warm.record(second, max(math.ceil(pool.busy - _EPSILON), pool.size + cold if cold else 0))
            served_total += plan.warm_served + cold + extra
            throttled_total += throttled
            if trace is not None and second >= 0:
                self._record_plan(trace, second, plan, cold, extra, throttled, wall)
        for version, pool in self.pools.items():
            if version not in {plan.version for plan in self.plans}:
                pool.warm.record(second, math.ceil(pool.busy - _EPSILON))
        return served_total, throttled_total

    def _record_plan(self, trace: Trace, second: int, plan: Plan, cold: int, extra: int, throttled: int,
                     wall: str) -> None:  # fmt: skip
        """Spread the plan's outcome over its entries (in order) and record each part."""
        first_ms = self.config.workload.duration.first_run_ms if self.config.workload else 0.0
        parts = {"warm": plan.warm_served + extra, "cold": cold, "throttled": throttled}
        for entry in plan.entries:
            left = entry.count
            for part in ("warm", "cold", "throttled"):
                take = min(left, parts[part])
                parts[part] -= take
                left -= take
                if part == "throttled":
                    trace.cell(second // 60, (self.config.name, entry.resource, entry.version)).add_throttles(
                        wall, take
                    )
                else:
                    work = plan.work if part == "warm" else plan.work.first(first_ms, "cold")
                    self._record(trace, second, entry, work, take, pc_served=False)

    def _record(self, trace: Trace, second: int, entry: Entry, work: Work, count: int, *, pc_served: bool) -> None:
        if count <= 0:
            return
        cell = trace.cell(second // 60, (self.config.name, entry.resource, entry.version))
        cell.invocations += count
        cell.add_durations(work.key(), count)
        if pc_served:
            cell.pc_invocations += count
        elif entry.spill:
            cell.spillover += count
        workload = self.config.workload
        assert workload is not None
        if self.used_mb > self.config.memory_of(entry.version):
            failing = 1.0  # Runtime.OutOfMemory
        else:
            failing = fraction_above(work.total, workload.duration.noise, self.config.timeout_s * 1000.0)
            cell.timeouts += self._whole("timeouts", count * failing)
        failing = min(1.0, failing + self.db_failure * (1 - failing))
        cell.errors += self._whole("errors", count * failing)

    def _whole(self, what: str, expected: float) -> int:
        """Whole counts from expected ones, the fractions carried over (so that rare errors still happen)."""
        carried = self._fractions.get(what, 0.0) + expected
        whole = math.floor(carried + _EPSILON)
        self._fractions[what] = carried - whole
        return whole

    def settle(self, second: int, attempted: int, served: int, trace: Trace | None) -> None:
        """What the queue in front of the function does with this second's outcome (async retries, SQS deletes)."""
        name = self.config.name
        recording = trace is not None and second >= 0
        minute = second // 60
        if self.config.invoke_path == "async" and self.async_queue is not None:
            left, dropped = served, 0
            for enqueued, attempts, count in self.due:
                ran = min(left, count)
                left -= ran
                if ran and trace is not None and recording:
                    trace.gauge(minute, _key("AsyncEventAge", name)).add(1000.0 * (second - enqueued), ran)
                if count - ran:
                    dropped += self.async_queue.retry(second, enqueued=enqueued, attempts=attempts + 1,
                                                      count=count - ran)  # fmt: skip
            if trace is not None and recording:
                arrived = sum(c for e, a, c in self.due if e == second and a == 0)
                trace.count(minute, _key("AsyncEventsReceived", name), arrived)
                trace.count(minute, _key("AsyncEventsDropped", name), dropped)
        elif self.config.invoke_path == "sqs" and self.sqs is not None:
            waiting = self.sqs.visible
            received = min(waiting, attempted * self.sqs.batch_size)
            deleted = sum(count for _, count in self.sqs.delete(served * self.sqs.batch_size))
            if trace is not None and recording:
                dims = (("QueueName", self.sqs.name),)
                trace.count(minute, GaugeKey("AWS/SQS", "NumberOfMessagesSent", dims), self.arrived)
                trace.count(minute, GaugeKey("AWS/SQS", "NumberOfMessagesReceived", dims), received)
                trace.count(minute, GaugeKey("AWS/SQS", "NumberOfMessagesDeleted", dims), deleted)


def _key(metric: str, function: str) -> GaugeKey:
    return GaugeKey("AWS/Lambda", metric, (("FunctionName", function),))
