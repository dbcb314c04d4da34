"""One function over time: its arrivals, routing, provisioned and on-demand environments, second by second.

The account-wide limits (the unreserved pool, the account's request rate) are applied by
`medic_tools.world.workload.model`,
which calls, every second: `begin` → `attempts` → `serve_provisioned` → `plan` → `finish` (with the environments the
account granted). Concurrency is fluid: `n` invocations of `d` ms started in a second keep n·min(d, 1000)/1000
environments busy in that second and the rest of their time in the next ones (`Occupancy`).

This runs for every function every second of every replay: what depends only on the configuration (the invoked
alias and version, each version's `Shape`, the gauge keys) is computed in `reconfigure` or on first use and kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from medic_tools.world.workload.arrivals import ArrivalStream
from medic_tools.world.workload.config import LATEST, AliasConfig, FunctionConfig
from medic_tools.world.workload.physics import handler_work
from medic_tools.world.workload.pools import Occupancy, ProvisionedPool, ScalingBucket, WarmPool
from medic_tools.world.workload.queues import AsyncQueue, SqsQueue
from medic_tools.world.workload.shapes import Part, Shape
from medic_tools.world.workload.spec import ModelSpec
from medic_tools.world.workload.trace import GaugeKey, Trace

_EPSILON = 1e-9


@dataclass(slots=True)
class Entry:
    """Invocations of one second on one resource and executed version (PC of `alias` applies when set)."""

    resource: str | None
    version: str
    alias: str | None
    count: int
    spill: bool = False


@dataclass(slots=True)
class VersionPool:
    warm: WarmPool
    occupancy: Occupancy = field(default_factory=Occupancy)
    carry: float = 0.0
    size: int = 0
    busy: float = 0.0


@dataclass(slots=True)
class Plan:
    """The on-demand side of one version this second: who fits on warm environments, how many new ones it needs
    (`shape`: the version's work and the sizes derived from it)."""

    version: str
    entries: list[Entry]
    shape: Shape
    warm_served: int
    rest: int
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
        self._timeouts_carry = self._errors_carry = 0.0  # the fractions `_whole` carries over
        self._routing_carry = 0.0
        self._shapes: dict[tuple[str, bool], Shape] = {}
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
                    alias.pc,
                    alias.version,
                    self.model.pc_allocation_s,
                    self.model.scale_out_periods,
                    self.model.scale_in_periods,
                )
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
        self._configured(config)

    def _configured(self, config: FunctionConfig) -> None:
        """What the configuration alone decides, kept for the seconds to come."""
        workload = config.workload
        qualifier = workload.invoke.qualifier if workload else LATEST
        self.path = config.invoke_path
        #: the alias the traffic invokes (None: $LATEST or a version)
        self.alias: AliasConfig | None = config.alias(qualifier) if workload else None
        if qualifier == LATEST:
            self._resource_version: tuple[str | None, str] = (None, LATEST)
        else:
            alias = config.alias(qualifier)
            self._resource_version = (f"{config.name}:{qualifier}", alias.version if alias else qualifier)
        self._memory = dict(config.versions)
        self._shapes = {}
        function = (("FunctionName", config.name),)
        self.async_keys = tuple(
            GaugeKey("AWS/Lambda", metric, function)
            for metric in ("AsyncEventAge", "AsyncEventsReceived", "AsyncEventsDropped")
        )
        queue = (("QueueName", self.sqs.name),) if self.sqs is not None else ()
        self.sqs_keys = tuple(
            GaugeKey("AWS/SQS", metric, queue)
            for metric in ("NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted")
        )

    def memory_of(self, version: str) -> int:
        return self._memory.get(version, self.config.memory_mb)

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
            pool.carry = pool.busy = pool.occupancy.advance(second)
            pool.size = pool.warm.size(second)
        self.plans, self.arrived, self.due = [], 0, []

    def shape(self, version: str, second: int) -> Shape:
        """The work of an invocation of `version` started at `second` (the dependency may be slow then), and what
        follows from it."""
        workload = self.config.workload
        assert workload is not None
        slow = workload.dependency
        is_slow = (
            slow is not None
            and second >= slow.slow_from_min * 60
            and (slow.slow_until_min is None or second < slow.slow_until_min * 60)
        )
        found = self._shapes.get((version, is_slow))
        if found is None:
            duration = workload.duration
            io = slow.io_ms if is_slow and slow is not None else duration.io_ms
            memory = self.memory_of(version)
            work = handler_work(duration.cpu_ms, io, duration.parallelism, self.used_mb, memory)
            found = self._shapes[(version, is_slow)] = Shape(
                work,
                init_ms=duration.init_ms,
                first_ms=duration.first_run_ms,
                oom=self.used_mb > memory,
                noise=duration.noise,
                timeout_ms=self.config.timeout_s * 1000.0,
            )
        return found

    def attempts(self, second: int) -> int:
        """Arrivals of this second, and the invocations Lambda attempts now (async retries, SQS batches)."""
        if self.arrivals is None:
            return 0
        arrived = self.arrived = self.arrivals.next(second)
        path = self.path
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
        per_poller = 1.0 / self.shape(self._resource_version[1], second).unit
        return min(self.sqs.batches_waiting(), math.floor(max(0.0, self.sqs.pollers - busy) * per_poller + _EPSILON))

    def resource_version(self) -> tuple[str | None, str]:
        return self._resource_version

    def route(self, count: int) -> list[Entry]:
        resource, version = self._resource_version
        alias = self.alias
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
        if not self.provisioned:
            return entries
        left: list[Entry] = []
        for entry in entries:
            pc = self.provisioned.get(entry.alias) if entry.alias else None
            if pc is None or pc.requested <= 0 or entry.count <= 0:
                left.append(entry)
                continue
            shape = self.shape(entry.version, second)
            untouched = max(0, pc.allocated - pc.touched)
            first = min(entry.count, untouched)
            free = max(0.0, pc.touched - pc.busy_now)
            warm = min(entry.count - first, math.floor(free / shape.unit + first * shape.spare_per_first + _EPSILON))
            pc.touched += first
            pc.occupancy.schedule(second, first, shape.pc_first_ms)
            pc.occupancy.schedule(second, warm, shape.total)
            pc.busy_now += first * shape.pc_first_occupancy + warm * shape.pc_occupancy
            if trace is not None and second >= 0:
                self._record(trace, second, entry, shape.pc_first_part, first, pc_served=True)
                self._record(trace, second, entry, shape.pc_part, warm, pc_served=True)
            spilled = entry.count - first - warm
            if spilled:
                left.append(Entry(entry.resource, entry.version, entry.alias, spilled, spill=True))
        return left

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
            shape = self.shape(version, second)
            unit = shape.unit
            count = sum(entry.count for entry in group)
            warm_served = min(count, math.floor(max(0.0, pool.size - pool.carry) / unit + _EPSILON))
            rest = count - warm_served
            self.plans.append(
                Plan(
                    version,
                    group,
                    shape,
                    warm_served,
                    rest,
                    -(-rest // shape.per_new_env),
                    pool.carry + warm_served * unit,
                )
            )

    def shed(self, occupancy: float) -> None:
        """Take warm invocations back (a cap fell below what runs): they need new environments, which are refused."""
        for plan in reversed(self.plans):
            if occupancy <= _EPSILON:
                return
            unit = plan.shape.unit
            back = min(plan.warm_served, math.ceil(occupancy / unit - _EPSILON))
            plan.warm_served -= back
            plan.rest += back
            plan.need = -(-plan.rest // plan.shape.per_new_env)
            plan.occupancy -= back * unit
            occupancy -= back * unit

    @property
    def pc_allocated(self) -> int:
        return sum(pc.allocated for pc in self.provisioned.values()) if self.provisioned else 0

    # Sums over lists, not generators: these lists have a few items and the properties are read many times a second.
    @property
    def need(self) -> int:
        return sum([plan.need for plan in self.plans])

    @property
    def warm_occupancy(self) -> float:
        plans = self.plans
        if not plans:  # (0 + the pools' sum: the same number as with plans' empty sum added)
            return sum([pool.carry for pool in self.pools.values()])
        planned = {plan.version for plan in plans}
        return sum([plan.occupancy for plan in plans]) + sum(
            [pool.carry for version, pool in self.pools.items() if version not in planned]
        )

    def finish(self, second: int, granted: int, wall: str, trace: Trace | None) -> tuple[int, int]:
        """Serve with `granted` new environments (the rest is throttled, refused by `wall`); (served, throttled)."""
        self.bucket.take(granted)
        plans = self.plans
        need = self.need
        served_total = throttled_total = 0
        left = granted
        last = len(plans) - 1
        recording = trace is not None and second >= 0
        for index, plan in enumerate(plans):
            share = left if index == last else min(left, plan.need * granted // max(need, 1))
            left -= share
            rest = plan.rest
            cold = min(rest, share)
            shape = plan.shape
            extra = min(rest - cold, share * (shape.per_new_env - 1))
            throttled = rest - cold - extra
            pool = self.pool(plan.version)
            warm_ms = shape.warm_ms
            pool.occupancy.schedule(second, plan.warm_served + extra, warm_ms)
            pool.occupancy.schedule(second, cold, shape.cold_ms)
            pool.busy = plan.occupancy + cold * shape.cold_occupancy + extra * shape.unit
            pool.warm.record(second, max(math.ceil(pool.busy - _EPSILON), pool.size + cold if cold else 0))
            served_total += plan.warm_served + cold + extra
            throttled_total += throttled
            if recording:
                assert trace is not None
                self._record_plan(trace, second, plan, cold, extra, throttled, wall)
        if len(self.pools) > len(plans):  # the versions without a plan this second
            planned = {plan.version for plan in plans}
            for version, pool in self.pools.items():
                if version not in planned:
                    pool.warm.record(second, math.ceil(pool.busy - _EPSILON))
        return served_total, throttled_total

    def _record_plan(
        self, trace: Trace, second: int, plan: Plan, cold: int, extra: int, throttled: int, wall: str
    ) -> None:
        """Spread the plan's outcome over its entries (in order) and record each part: warm, cold, throttled."""
        shape = plan.shape
        warm_left, cold_left, throttled_left = plan.warm_served + extra, cold, throttled
        for entry in plan.entries:
            left = entry.count
            take = min(left, warm_left)
            warm_left -= take
            left -= take
            self._record(trace, second, entry, shape.warm_part, take, pc_served=False)
            take = min(left, cold_left)
            cold_left -= take
            left -= take
            self._record(trace, second, entry, shape.cold_part, take, pc_served=False)
            take = min(left, throttled_left)
            throttled_left -= take
            trace.cell(second // 60, (self.config.name, entry.resource, entry.version)).add_throttles(wall, take)

    def _record(self, trace: Trace, second: int, entry: Entry, part: Part, count: int, *, pc_served: bool) -> None:
        if count <= 0:
            return
        cell = trace.cell(second // 60, (self.config.name, entry.resource, entry.version))
        cell.invocations += count
        cell.add_durations(part.key, count)
        if pc_served:
            cell.pc_invocations += count
        elif entry.spill:
            cell.spillover += count
        if part.oom:
            failing = 1.0  # Runtime.OutOfMemory
        else:
            failing = part.timeout_share
            cell.timeouts += self._whole_timeouts(count * failing)
        failing = min(1.0, failing + self.db_failure * (1 - failing))
        cell.errors += self._whole_errors(count * failing)

    # Whole counts from expected ones, the fractions carried over (so that rare errors still happen).
    def _whole_timeouts(self, expected: float) -> int:
        carried = self._timeouts_carry + expected
        whole = math.floor(carried + _EPSILON)
        self._timeouts_carry = carried - whole
        return whole

    def _whole_errors(self, expected: float) -> int:
        carried = self._errors_carry + expected
        whole = math.floor(carried + _EPSILON)
        self._errors_carry = carried - whole
        return whole

    def settle(self, second: int, attempted: int, served: int, trace: Trace | None) -> None:
        """What the queue in front of the function does with this second's outcome (async retries, SQS deletes)."""
        recording = trace is not None and second >= 0
        minute = second // 60
        if self.path == "async" and self.async_queue is not None:
            left, dropped = served, 0
            for enqueued, attempts, count in self.due:
                ran = min(left, count)
                left -= ran
                if ran and trace is not None and recording:
                    trace.gauge(minute, self.async_keys[0]).add(1000.0 * (second - enqueued), ran)
                if count - ran:
                    dropped += self.async_queue.retry(
                        second, enqueued=enqueued, attempts=attempts + 1, count=count - ran
                    )
            if trace is not None and recording:
                arrived = sum(c for e, a, c in self.due if e == second and a == 0)
                trace.count(minute, self.async_keys[1], arrived)
                trace.count(minute, self.async_keys[2], dropped)
        elif self.path == "sqs" and self.sqs is not None:
            waiting = self.sqs.visible
            received = min(waiting, attempted * self.sqs.batch_size)
            deleted = sum(count for _, count in self.sqs.delete(served * self.sqs.batch_size))
            if trace is not None and recording:
                sent_key, received_key, deleted_key = self.sqs_keys
                trace.count(minute, sent_key, self.arrived)
                trace.count(minute, received_key, received)
                trace.count(minute, deleted_key, deleted)
