"""The executor queue's one message type, written by triage, the Slack approvals, the verifier and `medic replay`, and
read by the executor (`functions/executor`).

    {"plan_id": "p-…", "approval_hash": "…"}   apply the plan, if it still is what was approved
    {"plan_id": "p-…", "rollback": true}       roll the FAILED plan back

`events/executor-sqs.json` is a sample. A body that does not parse (not JSON, no `plan_id`, a `rollback` that is not
the JSON `true`) raises `ValueError` (pydantic's `ValidationError` is one): the executor reports it as a batch item
failure, so it ends in the queue's DLQ, where `medic replay` finds it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, StrictBool

if TYPE_CHECKING:
    from medic.plan import Plan
    from medic.runtime import Runtime


class ExecutorMessage(BaseModel):
    """What the executor is asked to do with one plan."""

    model_config = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)

    plan_id: str
    #: The hash the plan was approved with; the executor refuses a plan whose content no longer hashes to it.
    approval_hash: str = ""
    rollback: StrictBool = False

    @classmethod
    def apply(cls, plan: Plan) -> ExecutorMessage:
        return cls(plan_id=plan.id, approval_hash=plan.approval_hash)

    @classmethod
    def undo(cls, plan: Plan) -> ExecutorMessage:
        return cls(plan_id=plan.id, rollback=True)

    @classmethod
    def parse(cls, body: str) -> ExecutorMessage:
        """A message body as SQS delivers it (`ValueError` when it is not one of the two shapes)."""
        return cls.model_validate(json.loads(body))

    def body(self) -> str:
        if self.rollback:
            return json.dumps({"plan_id": self.plan_id, "rollback": True})
        return json.dumps({"plan_id": self.plan_id, "approval_hash": self.approval_hash})


def send(message: ExecutorMessage, rt: Runtime) -> str:
    """Put the message on the executor queue; its SQS message id."""
    response = rt.clients.sqs.send_message(QueueUrl=rt.settings.executor_queue_url, MessageBody=message.body())
    return str(response.get("MessageId", ""))


def enqueue(plan: Plan, rt: Runtime, now: datetime) -> None:
    """Hand an APPROVED plan to the executor, and record it on the plan's chain (`enqueued`)."""
    message_id = send(ExecutorMessage.apply(plan), rt)
    rt.ledger.append(plan.id, "enqueued", {"queue": "executor", "message_id": message_id}, now)
