"""Changing a function's configuration while Lambda may still be updating it: a change call is retried, bounded,
after waiting for the update in progress to settle (LastUpdateStatus Successful, botocore's `function_updated_v2`
waiter); an update that does not settle fails the action, never loops."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from medic.aws import error_code
from medic.errors import ActionFailed

if TYPE_CHECKING:
    from medic.actions.base import PlannedAction
    from medic.aws import AwsClients

#: The configuration update must settle (LastUpdateStatus Successful) before PublishVersion.
UPDATE_POLL_DELAY_S = 1
UPDATE_POLL_ATTEMPTS = 120
#: Lambda answers ResourceConflictException while an update of the function is in progress (a deploy, or Medic's own
#: change settling): each change call is tried this many times, waiting for the update to settle in between.
CONFLICT_ATTEMPTS: Final = 3

_T = TypeVar("_T")


def when_settled(kind: str, clients: AwsClients, action: PlannedAction, call: Callable[..., _T], **kwargs: Any) -> _T:
    """`call(**kwargs)`; on ResourceConflictException wait for the update to settle, try again (bounded)."""
    from botocore.exceptions import ClientError

    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return call(**kwargs)
        except ClientError as exc:
            if error_code(exc) != "ResourceConflictException":
                raise
            if attempt == CONFLICT_ATTEMPTS:
                raise ActionFailed(
                    kind,
                    action.target,
                    f"an update of {action.function_name} was still in progress after {CONFLICT_ATTEMPTS} "
                    f"attempts: {exc}",
                ) from exc
            settle(kind, clients, action)
    raise AssertionError("unreachable")  # pragma: no cover


def settle(kind: str, clients: AwsClients, action: PlannedAction) -> None:
    """Wait until the function's last update succeeded; one that failed, or never settles, fails the action."""
    from botocore.exceptions import WaiterError

    try:
        clients.lambda_.get_waiter("function_updated_v2").wait(
            FunctionName=str(action.function_name),
            WaiterConfig={"Delay": UPDATE_POLL_DELAY_S, "MaxAttempts": UPDATE_POLL_ATTEMPTS},
        )
    except WaiterError as exc:
        raise ActionFailed(kind, action.target, f"$LATEST's update did not succeed: {exc}") from exc
