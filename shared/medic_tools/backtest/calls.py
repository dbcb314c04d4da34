"""Every AWS call a backtest makes goes through here: read-only (refused before it is sent otherwise), rate-limited
(a token bucket, one token per HTTP attempt, retries included), and counted by operation.

The hooks sit on the boto3 session the backtest's clients are made from (botocore's `before-call` and `before-send`
events), so the fact collector's calls, run concurrently in its threads, are limited and counted like the rest.
Retries are botocore's "standard" mode (`medic.aws.retry_config`): throttling and 5xx answers back off and retry.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

#: Operation names that read: `Describe…`, `Get…`, `List…`, `Query`, `Filter…` (CloudWatch Logs' FilterLogEvents),
#: DynamoDB's `BatchGetItem`, and Logs Insights' `StartQuery` (it runs a query over the logs and writes nothing).
READ_PREFIXES: Final = ("Describe", "Get", "List", "Query", "Filter")
READ_OPERATIONS: Final = frozenset({"StartQuery", "BatchGetItem"})


def is_read(operation: str) -> bool:
    """Whether an AWS operation (its API name) only reads.

    >>> [is_read(op) for op in ("DescribeAlarmHistory", "GetMetricData", "StartQuery", "PutMetricAlarm")]
    [True, True, True, False]
    """
    return operation.startswith(READ_PREFIXES) or operation in READ_OPERATIONS


class NotReadOnly(RuntimeError):
    """A call that would change something was about to be sent by a backtest: a bug, refused before it left."""

    def __init__(self, service: str, operation: str) -> None:
        super().__init__(f"backtest refused {service}:{operation}: a backtest only reads (Describe/Get/List/Query)")
        self.service = service
        self.operation = operation


class TokenBucket:
    """At most `rate` tokens a second on average, `burst` at once (default: one second's worth, at least one).
    `take()` blocks until a token is free. Thread-safe; `clock` and `sleep` are injectable for tests.

    >>> moments = iter([0.0, 0.0, 0.0, 0.5])
    >>> slept = []
    >>> bucket = TokenBucket(2, burst=1, clock=lambda: next(moments), sleep=slept.append)
    >>> bucket.take(); bucket.take(); slept
    [0.5]
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def take(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
                self.waited_s += wait
            self._sleep(wait)


class CallLog:
    """How many calls (not attempts) of each `service:Operation` were made; thread-safe."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, service: str, operation: str) -> None:
        with self._lock:
            self._counts[f"{service}:{operation}"] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def by_operation(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


def instrument(session: Any, bucket: TokenBucket, log: CallLog) -> None:
    """Hook `session` (a boto3 Session, before any client is made from it): every call is checked to be a read
    (`NotReadOnly` otherwise, raised before anything is sent) and counted, every HTTP attempt takes a token."""

    def before_call(event_name: str, model: Any, **_: Any) -> None:
        service = event_name.split(".")[1] if event_name.count(".") >= 2 else "?"
        if not is_read(model.name):
            raise NotReadOnly(service, model.name)
        log.add(service, model.name)

    def before_send(**_: Any) -> None:
        bucket.take()

    session.events.register("before-call", before_call)
    session.events.register("before-send", before_send)
