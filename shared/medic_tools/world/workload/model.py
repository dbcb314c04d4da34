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
from medic_tools.world.workload.trace import GaugeKey, ProvisionedMinute, Trace

_EPSILON = 1e-9
RPS_PER_CONCURRENCY = 10
LAMBDA = "AWS/Lambda"


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

    def reconfigure(self, config: AccountConfig) -> None:
        self.config = config
        for runtime in self.functions:
            runtime.reconfigure(config.function(runtime.config.name), self.second)

    def run(self, until: int) -> Trace:
        """Advance to `until` (seconds after the window's start, exclusive)."""
        while self.second < until:
            self._step(self.second)
            self.second += 1
        return self.trace

    def _step(self, t: int) -> None:
        trace = self.trace if self.record and t >= 0 else None
        functions = self.functions
        for runtime in functions:
            runtime.begin(t)
            runtime.db_failure = self._db_failure.get(runtime.config.name, 0.0)
        attempts = [runtime.attempts(t) for runtime in functions]
        admitted = self._request_rate(attempts, t, trace)
        pc_served = []
        for runtime, count in zip(functions, admitted, strict=True):
            entries = runtime.route(count) if count else []
            on_demand = runtime.serve_provisioned(entries, t, trace)
            runtime.plan(on_demand, t)
            pc_served.append(count - sum(entry.count for entry in on_demand))
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
        grants = [0] * len(self.functions)
        walls = ["burst_limit"] * len(self.functions)
        requests: dict[int, int] = {}
        for index, runtime in enumerate(self.functions):
            tokens = runtime.bucket.available()
            reserved = runtime.config.reserved
            if reserved is None:
                requests[index] = min(runtime.need, tokens)
                continue
            cap = reserved - runtime.pc_allocated
            if runtime.warm_occupancy > cap + _EPSILON:
                runtime.shed(runtime.warm_occupancy - cap)
            head = max(0, math.floor(cap - runtime.warm_occupancy + _EPSILON))
            grants[index] = min(runtime.need, tokens, head)
            if grants[index] < runtime.need and head <= tokens:
                walls[index] = "reserved_limit"
        pool = self.unreserved_pool()
        used = sum(self.functions[i].warm_occupancy for i in requests)
        if used > pool + _EPSILON:
            excess = used - pool
            for i in requests:
                runtime = self.functions[i]
                runtime.shed(excess * runtime.warm_occupancy / used)
                requests[i] = min(runtime.need, runtime.bucket.available())
            used = sum(self.functions[i].warm_occupancy for i in requests)
        head = max(0, math.floor(pool - used + _EPSILON))
        total = sum(requests.values())
        for i, wanted in requests.items():
            granted = wanted if total <= head else wanted * head // total
            grants[i] = granted
            if granted < self.functions[i].need and granted < wanted:
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
        from medic.planning import pool

        reserved = sum(r.config.reserved for r in self.functions if r.config.reserved is not None)
        pc = sum(r.pc_allocated for r in self.functions if r.config.reserved is None)
        unreserved = pool.UnreservedPool(self.config.limit - reserved, pc, self.config.minimum_unreserved)
        return max(0, unreserved.left)

    def _databases(self) -> None:
        """Each environment of a consumer holds its connections while it exists; past max_connections, connects
        fail: that share of the consumers' next invocations are errors."""
        self._db_failure = {}
        self.connections = {}
        by_name = {runtime.config.name: runtime for runtime in self.functions}
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
        account = unreserved = 0
        claimed = 0
        for runtime in self.functions:
            name = runtime.config.name
            on_demand = sum(pool.busy for pool in runtime.pools.values())
            provisioned = {alias: min(pc.busy_now, pc.allocated) for alias, pc in runtime.provisioned.items()}
            total = math.ceil(on_demand + sum(provisioned.values()) - _EPSILON)
            account += total
            if runtime.config.reserved is None:
                unreserved += math.ceil(on_demand - _EPSILON)
                claimed += runtime.pc_allocated
            else:
                claimed += runtime.config.reserved
            function = (("FunctionName", name),)
            if runtime.config.workload is not None or total:
                trace.gauge(minute, GaugeKey(LAMBDA, "ConcurrentExecutions", function)).add(total)
            self._resource_gauges(runtime, minute, trace, provisioned)
        trace.gauge(minute, GaugeKey(LAMBDA, "ConcurrentExecutions", ())).add(account)
        trace.gauge(minute, GaugeKey(LAMBDA, "UnreservedConcurrentExecutions", ())).add(unreserved)
        trace.gauge(minute, GaugeKey(LAMBDA, "ClaimedAccountConcurrency", ())).add(unreserved + claimed)
        for database, connections in self.connections.items():
            key = GaugeKey("AWS/RDS", "DatabaseConnections", (("DBInstanceIdentifier", database),))
            trace.gauge(minute, key).add(round(connections))

    def _resource_gauges(self, runtime: FunctionRuntime, minute: int, trace: Trace,
                         provisioned: dict[str, float]) -> None:  # fmt: skip
        name = runtime.config.name
        resource, version = runtime.resource_version()
        workload = runtime.config.workload
        alias = runtime.config.alias(workload.invoke.qualifier) if workload else None
        if resource is not None:
            versions = [version, *(other for other, _ in (alias.routing if alias else ()))]
            busy = sum(runtime.pools[v].busy for v in versions if v in runtime.pools)
            on_pc = provisioned.get(alias.name, 0.0) if alias else 0.0
            dims = (("FunctionName", name), ("Resource", resource))
            trace.gauge(minute, GaugeKey(LAMBDA, "ConcurrentExecutions", dims)).add(math.ceil(busy + on_pc - _EPSILON))
            if alias is not None:
                for executed in versions:
                    pool = runtime.pools.get(executed)
                    value = (pool.busy if pool else 0.0) + (on_pc if executed == version else 0.0)
                    key = GaugeKey(LAMBDA, "ConcurrentExecutions", (*dims, ("ExecutedVersion", executed)))
                    trace.gauge(minute, key).add(math.ceil(value - _EPSILON))
        for alias_name, pc in runtime.provisioned.items():
            if pc.requested <= 0 and pc.allocated <= 0:
                continue
            dims = (("FunctionName", name), ("Resource", f"{name}:{alias_name}"))
            busy_pc = math.ceil(provisioned[alias_name] - _EPSILON)
            trace.gauge(minute, GaugeKey(LAMBDA, "ProvisionedConcurrentExecutions", dims)).add(busy_pc)
            trace.gauge(minute, GaugeKey(LAMBDA, "ProvisionedConcurrentExecutions", dims[:1])).add(busy_pc)
            if pc.allocated:
                utilization = provisioned[alias_name] / pc.allocated
                trace.gauge(minute, GaugeKey(LAMBDA, "ProvisionedConcurrencyUtilization", dims)).add(utilization)
            trace.provisioned.setdefault(minute, {})[(name, alias_name)] = ProvisionedMinute(
                pc.requested, pc.allocated, pc.status, pc.bounds
            )
        if runtime.sqs is not None:
            dims_q = (("QueueName", runtime.sqs.name),)
            trace.gauge(minute, GaugeKey("AWS/SQS", "ApproximateNumberOfMessagesVisible", dims_q)).add(
                runtime.sqs.visible
            )
            in_flight = sum(pool.busy for pool in runtime.pools.values()) * runtime.sqs.batch_size
            trace.gauge(minute, GaugeKey("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", dims_q)).add(
                round(in_flight)
            )
            trace.gauge(minute, GaugeKey("AWS/SQS", "ApproximateAgeOfOldestMessage", dims_q)).add(
                runtime.sqs.oldest_age(self.second)
            )
