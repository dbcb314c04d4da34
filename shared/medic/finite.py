"""Non-finite numbers (inf, -inf, NaN) kept out of the remediation log.

JSON has no infinity and no NaN. Pydantic writes them as `null`, which a `float` field then refuses to read back:
one plan holding `recent_datapoints: [inf]` would be stored unreadable and take every tool that reads the plans
table down with it. Python's `json` writes them as the non-standard tokens `Infinity` and `NaN`, which other JSON
readers refuse. So Medic stores none: a plan that holds one is refused (`refuse_non_finite`), and a record's data
carries the number's name as text instead (`finite_json`).

    >>> non_finite_paths({"facts": {"x": float("inf"), "y": 2.0}, "points": [1.0, float("nan")]})
    ['facts.x = inf', 'points[1] = nan']
    >>> finite_json({"after": {"provisioned_concurrency": float("-inf")}})
    {'after': {'provisioned_concurrency': '-inf'}}
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medic.plan import Plan, Refusal

#: The guard named in the refusal of a plan that holds a non-finite number.
NON_FINITE_GUARD = "non_finite_number"
#: States in which a plan would be acted on: a non-finite number there blocks the plan.
ACTING_STATES = frozenset({"PROPOSED", "APPROVED"})


def non_finite_paths(value: Any, path: str = "") -> list[str]:
    """Where `value` (nested dicts, lists, tuples, pydantic models) holds inf, -inf or NaN, as `path = value`."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="python")
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path or '(value)'} = {value}"]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += non_finite_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += non_finite_paths(item, f"{path}[{index}]")
    return found


def finite_json(value: Any) -> Any:
    """`value` as strict JSON data: non-finite numbers become their names as text ("inf", "-inf", "nan"), anything
    JSON cannot hold becomes its `str` (as `json.dumps(default=str)` would)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(key): finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.loads(json.dumps(value, default=str))


def _without_non_finite(value: Any) -> Any:
    """`value` with every non-finite number removed: a list drops it, a dict or a field keeps `None`."""
    if isinstance(value, dict):
        return {key: _without_non_finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_non_finite(item) for item in value if not _is_non_finite(item)]
    return None if _is_non_finite(value) else value


def _is_non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def storable(plan: Plan) -> Plan:
    """`plan` itself when it holds no non-finite number, else a copy without them: a list drops them, a field (or a
    key of a dict of numbers) becomes empty. What is stored from it reads back."""
    from pydantic import ValidationError

    from medic.plan import Plan

    found = non_finite_paths(plan)
    if not found:
        return plan
    document = _without_non_finite(plan.model_dump(mode="python"))
    for _ in range(len(found) + 1):  # a key of a dict of numbers cannot be None: drop it, once per such key
        try:
            return Plan.model_validate(document)
        except ValidationError as exc:
            for error in exc.errors():
                if error["input"] is None:
                    _drop(document, error["loc"])
    raise ValueError(f"plan {plan.id}: cannot remove its non-finite numbers ({', '.join(found[:5])})")


def refuse_non_finite(plan: Plan) -> Refusal | None:
    """If `plan` holds a non-finite number: update it to a plan that can be stored and read back (`storable`), and
    return the refusal that says where the numbers were (None when it holds none).

    A plan that would be acted on (PROPOSED, APPROVED) becomes BLOCKED by the refusal: Medic never acts on a number
    it cannot compare with a cap. Other plans (NOOP, SUPERSEDED, BLOCKED) keep their state; the refusal is returned
    for the log only.

    >>> from medic.plan import Plan
    >>> plan = Plan(id="p-1", status="PROPOSED", alarm_arn="a", alarm_name="n", state_timestamp="t", account="1",
    ...             region="r", signal="spillover", target="f:live", created_at="c", updated_at="c",
    ...             recent_datapoints=[3.0, float("inf")])
    >>> refuse_non_finite(plan).observed, plan.status, plan.recent_datapoints
    ('recent_datapoints[1] = inf', 'BLOCKED', [3.0])
    """
    from medic.plan import Plan, Refusal

    found = non_finite_paths(plan)
    if not found:
        return None
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    refusal = Refusal(
        guard=NON_FINITE_GUARD,
        limit="finite numbers",
        observed=shown,
        message=f"the plan holds {len(found)} non-finite number{'s' if len(found) != 1 else ''} ({shown}): "
        "Medic never acts on a number it cannot compare with a cap",
    )
    cleaned = storable(plan)
    if cleaned.status in ACTING_STATES:
        cleaned.status = "BLOCKED"
        cleaned.blocked_by.append(refusal)
        cleaned.expires_at = None
    for name in Plan.model_fields:
        setattr(plan, name, getattr(cleaned, name))
    return refusal


def _drop(document: Any, location: tuple[int | str, ...]) -> None:
    *parents, last = location
    for key in parents:
        document = document[key]
    if isinstance(document, dict):
        document.pop(last, None)
    elif isinstance(document, list) and isinstance(last, int) and last < len(document):
        del document[last]
