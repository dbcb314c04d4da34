"""Which qualifier of a function an action may change: an alias (or, for provisioned concurrency, a published version),
never the unqualified function or $LATEST; and when the traffic itself runs on $LATEST."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medic.errors import GuardrailRefused

if TYPE_CHECKING:
    from medic.alarms.signals import Target
    from medic.facts import Facts


def qualified(target: Target, kind: str) -> tuple[str, str]:
    """(function, qualifier) of a target on an alias or a published version; the unqualified function and $LATEST
    are refused (provisioned concurrency can never go there)."""
    if target.kind != "function" or not target.function_name:
        raise GuardrailRefused("target", "a function alias", target.display, f"{kind} needs a function target")
    if not target.qualifier or target.qualifier == "$LATEST":
        raise GuardrailRefused(
            "target", "an alias or version", target.qualifier or "(unqualified)", publish_an_alias(kind, target)
        )
    return target.function_name, target.qualifier


def publish_an_alias(kind: str, target: Target) -> str:
    """Why a change that needs an alias refuses the unqualified function, and what a human does about it."""
    name = target.function_name or "the function"
    return (
        f"{kind} needs an alias (or, for provisioned concurrency, a published version), never the unqualified "
        f"function: provisioned concurrency can never go on $LATEST (AWS refuses it). Publish a version of {name}, "
        f"point an alias at it and send the traffic to the alias"
    )


def alias_of(target: Target, kind: str) -> tuple[str, str]:
    """(function, alias) of a function alias target; anything else (unqualified, $LATEST, a version) is refused."""
    if target.kind != "function" or not target.function_name:
        raise GuardrailRefused("target", "a function alias", target.display, f"{kind} needs a function alias target")
    qualifier = target.qualifier
    if not qualifier or qualifier == "$LATEST":
        raise GuardrailRefused("target", "an alias", qualifier or "(unqualified)", publish_an_alias(kind, target))
    if qualifier.isdigit():
        raise GuardrailRefused(
            "target",
            "an alias",
            qualifier,
            f"{kind} applies to an alias (what traffic is routed to), never $LATEST or a published version",
        )
    return target.function_name, qualifier


def serves_latest(target: Target, facts: Facts) -> bool:
    """Whether the traffic runs on the unqualified function: no alias in the target, and $LATEST is what the
    collector found serving it (the target's qualifier, or the qualifier the traffic hits)."""
    return (
        target.kind == "function"
        and bool(target.function_name)
        and target.qualifier in (None, "$LATEST")
        and "$LATEST" in (facts.qualifier, facts.traffic_qualifier)
    )
