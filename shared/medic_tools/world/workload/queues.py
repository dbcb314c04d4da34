"""The queues in front of a function: Lambda's internal queue for asynchronous invocations, and an SQS queue read by
an event source mapping.

Asynchronous invocation (Lambda developer guide, "How Lambda handles errors and retries with asynchronous
invocation"): "For throttling errors (429) and system errors (500-series), Lambda returns the event to the queue and
attempts to run the function again for up to 6 hours by default. The retry interval increases exponentially from 1
second after the first attempt to a maximum of 5 minutes." An event older than MaximumEventAgeInSeconds is dropped.
Not modelled: "If the queue contains many entries, Lambda increases the retry interval and reduces the rate at which
it reads events from the queue."

SQS event source mapping (Lambda developer guide, "Configuring scaling behavior for SQS event source mappings"):
"When messages are available, Lambda starts processing five batches at a time with five concurrent invocations ...
Lambda increases the number of processes that are reading batches by up to 300 more instances per minute. The maximum
number of batches that an event source mapping can process simultaneously is 1,000", capped by MaximumConcurrency.
We add 5 pollers a second (300 a minute) while messages wait, and take 5 a second away while none do, never below 5.

>>> queue = AsyncQueue(max_age_s=3600); queue.enqueue(0, 10)
>>> queue.due(0)
[(0, 0, 10)]
>>> dropped = queue.retry(0, enqueued=0, attempts=1, count=4); dropped, queue.due(1)
(0, [(0, 1, 4)])
"""

from __future__ import annotations

from collections import deque

MAX_RETRY_INTERVAL_S = 300
INITIAL_POLLERS = 5.0
POLLERS_PER_S = 5.0
MAX_POLLERS = 1000.0


class AsyncQueue:
    """Events waiting for an invocation attempt: {due second: {(enqueued second, attempts so far): count}}."""

    def __init__(self, max_age_s: int) -> None:
        self.max_age_s = max_age_s
        self._due: dict[int, dict[tuple[int, int], int]] = {}

    def enqueue(self, second: int, count: int) -> None:
        if count > 0:
            self._add(second, second, 0, count)

    def _add(self, due: int, enqueued: int, attempts: int, count: int) -> None:
        bucket = self._due.setdefault(due, {})
        bucket[(enqueued, attempts)] = bucket.get((enqueued, attempts), 0) + count

    def due(self, second: int) -> list[tuple[int, int, int]]:
        """The events to attempt at `second`, oldest first: (enqueued second, attempts so far, count)."""
        bucket = self._due.pop(second, {})
        return sorted((enqueued, attempts, count) for (enqueued, attempts), count in bucket.items())

    def retry(self, second: int, *, enqueued: int, attempts: int, count: int) -> int:
        """Throttled events go back to the queue; returns how many are dropped instead (too old)."""
        wait = min(MAX_RETRY_INTERVAL_S, 2 ** max(0, attempts - 1))
        if second + wait - enqueued > self.max_age_s:
            return count
        self._add(second + wait, enqueued, attempts, count)
        return 0


class SqsQueue:
    """Visible messages (oldest first) and the event source mapping's pollers."""

    def __init__(self, name: str, cap: int | None, batch_size: int) -> None:
        self.name = name
        self.cap = float(min(cap or MAX_POLLERS, MAX_POLLERS))
        self.batch_size = batch_size
        self.pollers = 0.0
        self._messages: deque[list[int]] = deque()
        self.visible = 0

    def send(self, second: int, count: int) -> None:
        if count > 0:
            self._messages.append([second, count])
            self.visible += count

    def scale(self) -> None:
        """Once a second: more pollers while messages wait, fewer while none do."""
        if self.visible > 0:
            self.pollers = min(self.cap, max(INITIAL_POLLERS, self.pollers + POLLERS_PER_S))
        else:
            self.pollers = max(min(INITIAL_POLLERS, self.cap), self.pollers - POLLERS_PER_S)

    def oldest_age(self, second: int) -> int:
        return second - self._messages[0][0] if self._messages else 0

    def batches_waiting(self) -> int:
        return -(-self.visible // self.batch_size)

    def delete(self, messages: int) -> list[tuple[int, int]]:
        """Remove processed messages, oldest first; returns (enqueued second, count) pieces."""
        taken: list[tuple[int, int]] = []
        left = min(messages, self.visible)
        while left > 0 and self._messages:
            head = self._messages[0]
            part = min(left, head[1])
            taken.append((head[0], part))
            head[1] -= part
            left -= part
            self.visible -= part
            if head[1] == 0:
                self._messages.popleft()
        return taken
