"""What CloudFormation manages: a function created by a stack carries the tags CloudFormation puts on the resources it
creates (`aws:cloudformation:stack-name`, `…:logical-id`, `…:stack-id`). A change Medic makes to such a function lives
outside the stack's template, so the stack's next deploy puts the template's value back. The plan says so, naming the
template property to set (each action declares its own: `Action.template_properties`), and the verifier notices when
a deploy did put the old value back (`medic.usecases.verify.watch_templates`).

>>> stack_of({"aws:cloudformation:stack-name": "orders", "aws:cloudformation:logical-id": "OrdersFunction"})
StackRef(name='orders', logical_id='OrdersFunction', stack_id='')
>>> stack_of({"medic:managed": "true"}) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict

from medic.actions.base import Scalar

if TYPE_CHECKING:
    from medic.actions.base import PlannedAction

STACK_NAME_TAG: Final = "aws:cloudformation:stack-name"
LOGICAL_ID_TAG: Final = "aws:cloudformation:logical-id"
STACK_ID_TAG: Final = "aws:cloudformation:stack-id"
#: The plan's record of each warning, and of a deploy that put a value back.
WARNING_RECORD: Final = "template_drift_warning"
REVERTED_RECORD: Final = "reverted_by_deploy"
#: The record an operator's acknowledgement leaves (`medic log template-updated`): the template holds the value now.
UPDATED_RECORD: Final = "template_updated"


def settled_by(kinds: set[str] | frozenset[str]) -> str | None:
    """The record (of a plan's record kinds) that ends its wait for the template: a deploy put the old value back
    (`reverted_by_deploy`) or an operator said the template holds the new one (`template_updated`); None: waiting."""
    return next((kind for kind in (REVERTED_RECORD, UPDATED_RECORD) if kind in kinds), None)


@dataclass(frozen=True)
class StackRef:
    """The stack that created a resource, from the resource's CloudFormation tags."""

    name: str
    logical_id: str
    stack_id: str = ""


def stack_of(tags: Mapping[str, str] | None) -> StackRef | None:
    """The stack that manages a resource with these tags; None when it carries no stack name and logical id."""
    tags = tags or {}
    name, logical_id = tags.get(STACK_NAME_TAG), tags.get(LOGICAL_ID_TAG)
    if not name or not logical_id:
        return None
    return StackRef(name=name, logical_id=logical_id, stack_id=tags.get(STACK_ID_TAG, ""))


class TemplateWarning(BaseModel):
    """One changed field of one planned action that the stack's template still holds at its old value."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    stack: str
    stack_id: str = ""
    logical_id: str
    resource_type: str
    resource: str
    property: str
    value: Scalar = None
    field: str
    before: Scalar = None
    kind: str
    target: str
    sam: str = ""

    def setting(self) -> str:
        """What to set in the template, e.g. `OrdersFunction.ReservedConcurrentExecutions to 150`."""
        where = (
            f"{self.resource}.{self.property}"
            if self.resource == self.logical_id
            else f"{self.property} of {self.resource} ({self.resource_type})"
        )
        sam = f"; in AWS SAM, {self.sam}" if self.sam else ""
        return f"{where} to {_shown(self.value)}{sam}"

    def text(self) -> str:
        return f"The next deploy of stack {self.stack} will undo this: set {self.setting()} in its template."

    def reverted_text(self) -> str:
        return (
            f"A deploy of stack {self.stack} put {self.field} of {self.target} back to {_shown(self.before)} "
            f"(Medic had set {_shown(self.value)}): set {self.setting()} in its template."
        )


def template_warnings(
    actions: list[PlannedAction], function_name: str | None, tags: Mapping[str, str] | None
) -> list[TemplateWarning]:
    """The warnings for the changes `actions` plan on `function_name`, whose tags are `tags`: one per changed field
    an action declares a template property for, when the function belongs to a stack; none otherwise. Changes on
    other functions (a database's consumers) are not judged from this function's tags."""
    from medic.actions import get_action

    stack = stack_of(tags)
    if stack is None or not function_name:
        return []
    warnings = []
    for action in actions:
        if action.function_name != function_name or not action.changes:
            continue
        for prop in get_action(action.kind).template_properties(action):
            if action.before.get(prop.field) == action.after.get(prop.field):
                continue
            warnings.append(
                TemplateWarning(
                    stack=stack.name,
                    stack_id=stack.stack_id,
                    logical_id=stack.logical_id,
                    resource_type=prop.resource_type,
                    resource=prop.resource.format(function=stack.logical_id),
                    property=prop.property,
                    value=prop.value,
                    field=prop.field,
                    before=action.before.get(prop.field),
                    kind=action.kind,
                    target=action.target,
                    sam=prop.sam.format(function=stack.logical_id),
                )
            )
    return warnings


def _shown(value: Scalar) -> str:
    return "unset" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
