"""The account, second by second: every function together, sharing the account's concurrency (AWS's rules).

Capacity (Lambda developer guide, "Configuring reserved concurrency", "Lambda scaling behavior", "Understanding
Lambda function scaling"):

* A function with reserved concurrency R runs at most R at once, its provisioned concurrency (PC) included: its
  on-demand environments may use R − (its allocated PC).
* Functions without a reservation share the unreserved pool: the account limit − Σ reserved − the PC allocated to
  functions without a reservation ("Provisioned concurrency counts towards ... Regional quotas").
* A function adds at most 1,000 new environments every 10 seconds (`ScalingBucket`).
* The account serves at most 10 × its concurrency limit requests a second, a function with reserved concurrency
  10 × R ("Understanding concurrency and requests per second"; our reading: those refusals count against the
  account limit and the reserved cap respectively).

A request that finds no free environment and cannot get a new one is throttled; the model records which constraint
refused it (the tightest of the three when several bind; a static cap wins a tie): `reserved_limit`,
`account_limit` (the account's limit or the unreserved pool) or `burst_limit` (the scaling rate).

>>> from medic_tools.world.workload.config import AccountConfig, FunctionConfig
>>> from medic_tools.world.workload.spec import WorkloadSpec
>>> busy = WorkloadSpec.model_validate({"arrivals": {"base_rps": 100, "poisson": False},
...                                     "duration": {"cpu_ms": 0, "io_ms": 200, "init_ms": 0, "noise": 0}})
>>> model = AccountModel(AccountConfig(limit=1000, functions=(FunctionConfig("api", 512, 10, workload=busy),)))
>>> trace = model.run(120)
>>> trace.gauges[1][GaugeKey("AWS/Lambda", "ConcurrentExecutions", (("FunctionName", "api"),))].maximum
20.0
"""

from __future__ import annotations

import math

from medic_tools.world.workload.config import AccountConfig
from medic_tools.world.workload.pools import ScalingBucket
from medic_tools.world.workload.runtime import FunctionRuntime
from medic_tools.world.workload.trace import Gauge, GaugeKey, ProvisionedMinute, Trace

_EPSILON = 1e-9
RPS_PER_CONCURRENCY = 10
LAMBDA = "AWS/Lambda"


class FunctionGauges:
    """The keys of a function's per-second gauges, made once per configuration (keys are tuples: building them
    every second was a good part of the model's time)."""

    def __init__(self, runtime: FunctionRuntime) -> None:
        name = runtime.config.name
        function = (("FunctionName", name),)
        self.function = GaugeKey(LAMBDA, "ConcurrentExecutions", function)
        resource, version = runtime.resource_version()
        alias = runtime.alias
        #: the versions the invoked resource runs (the alias' routing adds one), and each one's gauge key
        self.versions = [version, *(other for other, _ in (alias.routing if alias else ()))]
        self.resource: GaugeKey | None = None
        self.executed: list[tuple[str, GaugeKey]] = []
        if resource is not None:
            dims = (("FunctionName", name), ("Resource", resource))
            self.resource = GaugeKey(LAMBDA, "ConcurrentExecutions", dims)
            if alias is not None:
                self.executed = [
                    (executed, GaugeKey(LAMBDA, "ConcurrentExecutions", (*dims, ("ExecutedVersion", executed))))
                    for executed in self.versions
                ]
        self.provisioned: dict[str, tuple[GaugeKey, GaugeKey, GaugeKey]] = {}
        for alias_name in runtime.provisioned:
            dims = (("FunctionName", name), ("Resource", f"{name}:{alias_name}"))
            self.provisioned[alias_name] = (
                GaugeKey(LAMBDA, "ProvisionedConcurrentExecutions", dims),
                GaugeKey(LAMBDA, "ProvisionedConcurrentExecutions", dims[:1]),
                GaugeKey(LAMBDA, "ProvisionedConcurrencyUtilization", dims),
            )
        queue = (("QueueName", runtime.sqs.name),) if runtime.sqs is not None else ()
        self.sqs = (
            GaugeKey("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue),
            GaugeKey("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", queue),
            GaugeKey("AWS/SQS", "ApproximateAgeOfOldestMessage", queue),
        )


_ACCOUNT = GaugeKey(LAMBDA, "ConcurrentExecutions", ())
_UNRESERVED = GaugeKey(LAMBDA, "UnreservedConcurrentExecutions", ())
_CLAIMED = GaugeKey(LAMBDA, "ClaimedAccountConcurrency", ())


class AccountModel:
    """Run with `run(until)`; change the configuration between runs with `reconfigure` (an action ran)."""

    def __init__(self, config: AccountConfig, *, record: bool = True, limitless: bool = False) -> None:
        """`limitless`: no scaling-rate limit (with a huge limit and no reservation: the demand, unconstrained)."""
        self.config = config
        self.trace = Trace()
        self.record = record
        self.functions = [FunctionRuntime(function, config.model) for function in config.functions]
        for runtime in self.functions:
            runtime.bucket = ScalingBucket(limitless=limitless)
        self.second = -config.model.keep_warm_s  # a warm-up at the curve's starting rate, not recorded
        self._db_failure: dict[str, float] = {}
        self.connections: dict[str, float] = {}
        self._by_name = {runtime.config.name: runtime for runtime in self.functions}
        self._configured()

    def reconfigure(self, config: AccountConfig) -> None:
        self.config = config
        for runtime in self.functions:
            runtime.reconfigure(config.function(runtime.config.name), self.second)
        self._configured()

    def _configured(self) -> None:
        """What the configuration alone decides, kept for the seconds to come."""
        self._gauge_keys = [FunctionGauges(runtime) for runtime in self.functions]
        self._reserved = sum(r.config.reserved for r in self.functions if r.config.reserved is not None)
        self._pool_of: dict[int, int] = {}  # the unreserved pool by the PC allocated to functions without a reservation
        self._database_keys = {
            database.id: GaugeKey("AWS/RDS", "DatabaseConnections", (("DBInstanceIdentifier", database.id),))
            for database in self.config.databases
        }

    def run(self, until: int) -> Trace:
        """Advance to `until` (seconds after the window's start, exclusive)."""
        while self.second < until:
            self._step(self.second)
            self.second += 1
        return self.trace

    def _step(self, t: int) -> None:
        trace = self.trace if self.record and t >= 0 else None
        functions = self.functions
        db_failure = self._db_failure
        for runtime in functions:
            runtime.begin(t)
            runtime.db_failure = db_failure.get(runtime.config.name, 0.0)
        attempts = [runtime.attempts(t) for runtime in functions]
        admitted = self._request_rate(attempts, t, trace)
        pc_served = []
        for runtime, count in zip(functions, admitted, strict=True):
            entries = runtime.route(count) if count else []
            on_demand = runtime.serve_provisioned(entries, t, trace)
            runtime.plan(on_demand, t)
            pc_served.append(count - sum([entry.count for entry in on_demand]))
        grants, walls = self._grants()
        for index, runtime in enumerate(functions):
            served, _ = runtime.finish(t, grants[index], walls[index], trace)
            runtime.settle(t, attempts[index], served + pc_served[index], trace)
            for pc in runtime.provisioned.values():
                pc.record(min(pc.busy_now, pc.allocated))
        self._databases()
        if trace is not None:
            self._gauges(t, trace)

    def _request_rate(self, attempts: list[int], t: int, trace: Trace | None) -> list[int]:
        admitted = list(attempts)
        for index, runtime in enumerate(self.functions):
            reserved = runtime.config.reserved
            if reserved is not None and admitted[index] > RPS_PER_CONCURRENCY * reserved:
                self._refuse(runtime, admitted[index] - RPS_PER_CONCURRENCY * reserved, "reserved_limit", t, trace)
                admitted[index] = RPS_PER_CONCURRENCY * reserved
        total, cap = sum(admitted), RPS_PER_CONCURRENCY * self.config.limit
        if total > cap:
            for index, runtime in enumerate(self.functions):
                keep = admitted[index] * cap // total
                self._refuse(runtime, admitted[index] - keep, "account_limit", t, trace)
                admitted[index] = keep
        return admitted

    @staticmethod
    def _refuse(runtime: FunctionRuntime, count: int, wall: str, t: int, trace: Trace | None) -> None:
        if trace is not None and count > 0:
            resource, version = runtime.resource_version()
            trace.cell(t // 60, (runtime.config.name, resource, version)).add_throttles(wall, count)

    def _grants(self) -> tuple[list[int], list[str]]:
        """New environments each function may create now, and what refused the others."""
        functions = self.functions
        grants = [0] * len(functions)
        walls = ["burst_limit"] * len(functions)
        requests: dict[int, int] = {}
        for index, runtime in enumerate(functions):
            tokens = runtime.bucket.available()
            reserved = runtime.config.reserved
            if reserved is None:
                requests[index] = min(runtime.need, tokens)
                continue
            cap = reserved - runtime.pc_allocated
            occupancy = runtime.warm_occupancy
            if occupancy > cap + _EPSILON:
                runtime.shed(occupancy - cap)
                occupancy = runtime.warm_occupancy
            head = max(0, math.floor(cap - occupancy + _EPSILON))
            need = runtime.need
            grants[index] = min(need, tokens, head)
            if grants[index] < need and head <= tokens:
                walls[index] = "reserved_limit"
        if not requests:  # every function has a reservation: the unreserved pool has no one to serve
            return grants, walls
        pool = self.unreserved_pool()
        used = sum(functions[i].warm_occupancy for i in requests)
        if used > pool + _EPSILON:
            excess = used - pool
            for i in requests:
                runtime = functions[i]
                runtime.shed(excess * runtime.warm_occupancy / used)
                requests[i] = min(runtime.need, runtime.bucket.available())
            used = sum(functions[i].warm_occupancy for i in requests)
        head = max(0, math.floor(pool - used + _EPSILON))
        total = sum(requests.values())
        for i, wanted in requests.items():
            granted = wanted if total <= head else wanted * head // total
            grants[i] = granted
            if granted < functions[i].need and granted < wanted:
                walls[i] = "account_limit"
        if total > head:  # hand out what the floors left, biggest requests first
            left = head - sum(grants[i] for i in requests)
            for i in sorted(requests, key=lambda k: requests[k] - grants[k], reverse=True):
                extra = min(left, requests[i] - grants[i])
                grants[i] += extra
                left -= extra
        return grants, walls

    def unreserved_pool(self) -> int:
        """The concurrency functions without a reservation share (their PC taken out)."""
        pc = sum(r.pc_allocated for r in self.functions if r.config.reserved is None)
        found = self._pool_of.get(pc)  # asked every second: the PC rarely changes
        if found is None:
            from medic.planning import pool

            unreserved = pool.UnreservedPool(self.config.limit - self._reserved, pc, self.config.minimum_unreserved)
            found = self._pool_of[pc] = max(0, unreserved.left)
        return found

    def _databases(self) -> None:
        """Each environment of a consumer holds its connections while it exists; past max_connections, connects
        fail: that share of the consumers' next invocations are errors."""
        if not self.config.databases:
            if self._db_failure or self.connections:
                self._db_failure, self.connections = {}, {}
            return
        self._db_failure = {}
        self.connections = {}
        by_name = self._by_name
        for database in self.config.databases:
            wanted = 0.0
            for consumer in database.consumers:
                runtime = by_name.get(consumer)
                if runtime is None or runtime.config.workload is None:
                    continue
                environments = sum(max(pool.size, math.ceil(pool.busy - _EPSILON)) for pool in runtime.pools.values())
                wanted += runtime.config.workload.connections_per_env * (environments + runtime.pc_allocated)
            self.connections[database.id] = min(wanted, database.max_connections)
            if wanted > database.max_connections:
                failing = (wanted - database.max_connections) / wanted
                for consumer in database.consumers:
                    self._db_failure[consumer] = max(self._db_failure.get(consumer, 0.0), failing)

    def _gauges(self, t: int, trace: Trace) -> None:
        minute = t // 60
        gauges = trace.gauges_of(minute)
        account = unreserved = 0
        claimed = 0
        for runtime, keys in zip(self.functions, self._gauge_keys, strict=True):
            on_demand = sum([pool.busy for pool in runtime.pools.values()])
            if runtime.provisioned:
                provisioned = {alias: min(pc.busy_now, pc.allocated) for alias, pc in runtime.provisioned.items()}
                total = math.ceil(on_demand + sum(provisioned.values()) - _EPSILON)
            else:  # (on_demand + 0: the same number)
                provisioned = _NO_PC
                total = math.ceil(on_demand - _EPSILON)
            account += total
            reserved = runtime.config.reserved
            if reserved is None:
                unreserved += math.ceil(on_demand - _EPSILON)
                claimed += runtime.pc_allocated
            else:
                claimed += reserved
            if runtime.config.workload is not None or total:
                _add(gauges, keys.function, total)
            self._resource_gauges(runtime, keys, minute, trace, gauges, provisioned)
        _add(gauges, _ACCOUNT, account)
        _add(gauges, _UNRESERVED, unreserved)
        _add(gauges, _CLAIMED, unreserved + claimed)
        for database, connections in self.connections.items():
            _add(gauges, self._database_keys[database], round(connections))

    def _resource_gauges(
        self,
        runtime: FunctionRuntime,
        keys: FunctionGauges,
        minute: int,
        trace: Trace,
        gauges: dict[GaugeKey, Gauge],
        provisioned: dict[str, float],
    ) -> None:
        alias = runtime.alias
        pools = runtime.pools
        if keys.resource is not None:
            version = keys.versions[0]
            busy = sum(pools[v].busy for v in keys.versions if v in pools)
            on_pc = provisioned.get(alias.name, 0.0) if alias else 0.0
            _add(gauges, keys.resource, math.ceil(busy + on_pc - _EPSILON))
            for executed, key in keys.executed:
                pool = pools.get(executed)
                value = (pool.busy if pool else 0.0) + (on_pc if executed == version else 0.0)
                _add(gauges, key, math.ceil(value - _EPSILON))
        name = runtime.config.name
        for alias_name, pc in runtime.provisioned.items():
            if pc.requested <= 0 and pc.allocated <= 0:
                continue
            on_resource, on_function, utilization_key = keys.provisioned[alias_name]
            busy_pc = math.ceil(provisioned[alias_name] - _EPSILON)
            _add(gauges, on_resource, busy_pc)
            _add(gauges, on_function, busy_pc)
            if pc.allocated:
                _add(gauges, utilization_key, provisioned[alias_name] / pc.allocated)
            trace.provisioned.setdefault(minute, {})[(name, alias_name)] = ProvisionedMinute(
                pc.requested, pc.allocated, pc.status, pc.bounds
            )
        sqs = runtime.sqs
        if sqs is not None:
            visible, not_visible, age = keys.sqs
            _add(gauges, visible, sqs.visible)
            in_flight = sum(pool.busy for pool in pools.values()) * sqs.batch_size
            _add(gauges, not_visible, round(in_flight))
            _add(gauges, age, sqs.oldest_age(self.second))


_NO_PC: dict[str, float] = {}


def _add(gauges: dict[GaugeKey, Gauge], key: GaugeKey, value: float) -> None:
    """A sample into the minute's gauge (made at its first sample)."""
    gauge = gauges.get(key)
    if gauge is None:
        gauge = gauges[key] = Gauge()
    gauge.add(value)
