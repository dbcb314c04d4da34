"""Each action declares, in its own class, what the guardrails, the costs, the two-person rule and IAM need to know
(medic.actions.base.Action); the stages read the declarations, and these tests keep them complete and consistent."""

from __future__ import annotations

import pytest

from medic.actions import ACTION_KINDS, registry
from medic.actions.base import Action
from medic.config import Settings


def test_every_action_is_free_or_priced_by_its_own_estimate() -> None:
    for kind, action in registry().items():
        priced = type(action).estimate is not Action.estimate
        assert (action.free is not None) != priced, f"{kind}: exactly one of `free` and its own `estimate`"


def test_an_action_with_template_properties_declares_the_reads_of_its_read_live() -> None:
    """The verifier reads a fix back to notice a deploy that undid it (medic.stacks): with `read_permissions`, a subset
    of what the action may do."""
    with_template = {kind for kind, action in registry().items()
                     if type(action).template_properties is not Action.template_properties}  # fmt: skip
    assert with_template == {"set_provisioned_concurrency", "set_autoscaling_bounds", "set_reserved_concurrency",
                             "set_event_source_max_concurrency", "set_memory"}  # fmt: skip
    for kind in with_template:
        action = registry()[kind]
        assert action.read_permissions, f"{kind}: its read_live's permissions"
        assert set(action.read_permissions) <= set(action.permissions), kind


def test_caps_name_a_field_and_a_setting_that_exist() -> None:
    settings = Settings(plans_table="p", events_table="e")
    capped = {kind: action.cap for kind, action in registry().items() if action.cap is not None}
    assert set(capped) == {"set_reserved_concurrency", "set_memory", "request_quota_increase"}
    for kind, (_, setting) in capped.items():
        assert isinstance(getattr(settings, setting), int), f"{kind}: {setting} is not an integer setting"


def test_the_two_person_default_is_what_the_actions_declare() -> None:
    # Settings cannot import the actions (the Slack endpoint builds Settings and must stay light at a click), so the
    # default is written out in medic.config; this keeps it equal to the declarations.
    declared = {kind for kind, action in registry().items() if action.risk == "high"}
    declared |= {f"{kind}:cut" for kind, action in registry().items() if action.risk == "cut"}
    assert set(Settings.model_fields["two_person_actions"].default) == declared


@pytest.mark.parametrize("kind", ACTION_KINDS)
def test_provisioned_concurrency_fields_are_fields_the_action_changes(kind: str) -> None:
    action = registry()[kind]
    assert not action.pc_fields or action.must_change, "a PC change that changes nothing is refused"
    assert all(field.endswith(("concurrency", "capacity")) for field in action.pc_fields)
