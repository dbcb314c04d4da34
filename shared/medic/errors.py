"""The errors Medic raises on purpose.

Every error is a :class:`MedicError` and carries the data a human (or a log query) needs to act on it,
not only a message. Catch the narrowest class you can; only the top-level dispatcher catches
``MedicError`` broadly.

Example::

    >>> err = EventError(field="detail.state.value", source="event", problem="field required")
    >>> str(err)
    'event: detail.state.value: field required'
    >>> isinstance(err, InputError), err.field
    (True, 'detail.state.value')
"""

from __future__ import annotations


class MedicError(Exception):
    """Base class of every error Medic raises on purpose."""


class InputError(MedicError):
    """Something Medic was given (a file, an event, a request) is invalid.

    Attributes:
        field: dotted path of the first failing field, e.g. ``detail.state.value``
            (``(root)`` when the input as a whole is wrong, e.g. not JSON).
        source: where the input came from: a file name, or ``"event"``.
        problem: what is wrong with it, in one line.
    """

    def __init__(self, field: str, source: str, problem: str) -> None:
        # Positional args keep the error picklable (Lambda, multiprocessing) and its repr useful.
        super().__init__(field, source, problem)
        self.field = field
        self.source = source
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.problem}"


class EventError(InputError):
    """An incoming event (EventBridge, Slack, …) is not one Medic can act on."""


class ConfigError(InputError):
    """A setting (environment variable or explicit argument) is invalid."""


class RunbookError(InputError):
    """A runbook is invalid: names the file, table, row and field."""

    def __init__(self, source: str, problem: str, *, table: str = "", row: str = "", field: str = "") -> None:
        location = ".".join(
            part for part in (f"tables.{table}" if table else "", f"rows.{row}" if row else "", field) if part
        )
        super().__init__(field=location or "(root)", source=source, problem=problem)
        self.table = table
        self.row = row


class ScenarioError(InputError):
    """A simulation scenario file is invalid."""


class GuardrailRefused(MedicError):
    """A guardrail refused a change: which guard, the limit and the observed value."""

    def __init__(self, guard: str, limit: object, observed: object, message: str) -> None:
        super().__init__(guard, limit, observed, message)
        self.guard = guard
        self.limit = limit
        self.observed = observed
        self.message = message

    def __str__(self) -> str:
        return f"{self.guard}: {self.message} (limit {self.limit}, observed {self.observed})"


class ActionFailed(MedicError):
    """An AWS change failed or did not take effect."""

    def __init__(self, kind: str, target: str, reason: str) -> None:
        super().__init__(kind, target, reason)
        self.kind = kind
        self.target = target
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.kind} on {self.target} failed: {self.reason}"


class LeaseHeld(MedicError):
    """Another executor is applying the plan and its lease has not expired: not this one's to touch (yet)."""

    def __init__(self, plan_id: str, owner: str, until: str) -> None:
        super().__init__(plan_id, owner, until)
        self.plan_id = plan_id
        self.owner = owner
        self.until = until

    def __str__(self) -> str:
        return f"{self.plan_id} is being applied by executor {self.owner or '?'} until {self.until}"


class VerificationIncomplete(MedicError):
    """The verifier's run could not handle some plans (the others were handled): plan id → the error."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors

    def __str__(self) -> str:
        return f"{len(self.errors)} plan(s) not verified: " + "; ".join(f"{k}: {v}" for k, v in self.errors.items())


class StateConflict(MedicError):
    """A plan was not in the expected state for a transition (someone else moved it first)."""

    def __init__(self, plan_id: str, expected: str, actual: str | None) -> None:
        super().__init__(plan_id, expected, actual)
        self.plan_id = plan_id
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        return f"plan {self.plan_id}: expected state {self.expected}, found {self.actual}"


class SlackRequestRefused(MedicError):
    """A Slack request was refused: the HTTP status to answer with and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.status}: {self.reason}"
