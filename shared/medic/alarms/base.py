"""What the alarm event's models share: their pydantic configuration, the error a validator raises to name the field
below the one it validates, and how an error message shows a value."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class FieldProblemError(ValueError):
    """A validator's complaint about a field below the one being validated (``field`` is relative)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


class EventModel(BaseModel):
    """Frozen, read by its camelCase names (or its own), ignoring fields it does not know."""

    # defer_build: the nested models are validated inside AlarmStateChangeEvent's schema; building a validator of
    # their own at import would cost every cold start (they build on first direct use).
    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", alias_generator=to_camel, defer_build=True
    )


def json_type(value: object) -> str:
    """What kind of JSON value `value` is, in words (for an error)."""
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def short(value: object, limit: int = 80) -> str:
    """`value`'s repr, cut to `limit` characters (for an error)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
