"""The plans in the plans table: created with the first records of their chain, moved from state to state and
saved by conditional writes on the state they were read in (the records that explain a write go in the same
transaction), leased to one executor, their approvers and attached alarms added atomically, and read back one by
one (many at once: `plan_reads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from medic.clock import iso
from medic.errors import LeaseHeld, StateConflict
from medic.finite import refuse_non_finite, storable
from medic.ledger.items import ClaimLost, TableItems
from medic.ledger.plan_reads import PlanReads, plan_of
from medic.ledger.records import TRANSACTION_ITEMS, Mark, Record, RecordChains
from medic.plan import INITIAL_STATES, Plan, can_transition, plan_content_hash


class Plans(PlanReads, TableItems, RecordChains):
    """Reads and writes plans, and the records their writes carry. A part of `Ledger`, which sets up the client, the
    tables and the per-plan caches."""

    _stored_hash: dict[str, str | None]  # the approval_hash attribute of each plan `get` read

    def create(
        self,
        plan: Plan,
        events: Sequence[Record] = (),
        now: datetime | None = None,
        *,
        claim: tuple[str, str | None] | None = None,
    ) -> bool:
        """Store a new plan; False if a plan with this id exists (a duplicate delivery).

        With `events` (kind, data), the plan and the first records of its chain are written together, in one
        TransactWriteItems: a plan never exists without the records that explain it, and it costs one call. With
        `claim` (target, stale holder), the plan also claims its target in that write (as `claim` does); if another
        plan holds the target, nothing is written and `ClaimLost` is raised.

        A plan holding a non-finite number (inf, NaN) is never stored as it is (it could not be read back): the
        numbers are removed and a plan that would be acted on is stored BLOCKED by a `non_finite_number` refusal,
        logged as a `blocked` record with the other records (`non_finite_removed` for a plan that keeps its state;
        `medic.finite.refuse_non_finite`). `plan` itself is updated to what is stored, so the caller goes on with
        the refused plan."""
        if plan.status not in INITIAL_STATES:
            raise ValueError(f"a plan cannot start in {plan.status}")
        refusal = refuse_non_finite(plan)
        if refusal is not None:
            blocked = refusal in plan.blocked_by
            if blocked:
                claim = None  # a refused plan holds no target
            if now is not None:
                events = [*events, ("blocked" if blocked else "non_finite_removed", refusal.model_dump(mode="json"))]
        put = {
            "TableName": self.plans_table,
            "Item": self._item(plan),
            "ConditionExpression": "attribute_not_exists(plan_id)",
        }
        if claim is not None and (not events or now is None):
            if not self.claim(claim[0], plan.id, claim[1]):
                raise ClaimLost(claim[0])
            claim = None
        mark = _mark(plan)
        if not events or now is None:
            try:
                self.dynamodb.put_item(**put)  # type: ignore[arg-type]
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                return False
            self.remember(plan)
            self._marks[plan.id] = mark
            self._empty.add(plan.id)
            return True
        self.remember(plan)
        chain = self._chain(plan.id, events, now, after=None, mark=mark)
        claiming = [{"Put": self._claim_put(claim[0], plan.id, claim[1])}] if claim else []
        actions: list[dict[str, Any]] = [{"Put": put}, *claiming, *self._chain_writes(chain)]
        try:
            self.dynamodb.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
        except self.dynamodb.exceptions.TransactionCanceledException as exc:
            codes = [reason.get("Code") for reason in exc.response.get("CancellationReasons") or []]
            if codes and codes[0] == "ConditionalCheckFailed":
                return False  # the plan exists: a duplicate delivery
            if claim and len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise ClaimLost(claim[0]) from None
            if not any(code == "ConditionalCheckFailed" for code in codes):
                raise
            # The plan was free but its chain was not (records left by an earlier crash, or put there by someone
            # else): create, then append after the chain's committed end.
            if not self.create(plan, claim=claim):
                return False
            self._empty.discard(plan.id)
            for kind, data in events:
                self._append(plan.id, kind, data, now, mark)
            return True
        self._marks[plan.id] = mark
        self._written(chain)
        return True

    def get(self, plan_id: str) -> Plan | None:
        """The plan, or None when there is none, or when its item cannot be read as a plan (logged: a redelivery or
        a click on such a plan then finds nothing to act on, instead of failing; `plan_or_problem` tells them
        apart)."""
        plan, problem = self.plan_or_problem(plan_id)
        if problem is not None:
            from medic.log import get_logger

            get_logger(component="ledger", plan_id=plan_id).warning("unreadable_plan", problem=problem)
        return plan

    def plan_or_problem(self, plan_id: str) -> tuple[Plan | None, str | None]:
        """The plan (None when no plan item has this id), or why its item cannot be read."""
        found = self.item(plan_id)
        if not found or "doc" not in found:
            return None, None
        plan, problem = plan_of(found)
        if plan is not None:
            self.remember(plan)
            self._stored_hash[plan_id] = found["approval_hash"]["S"] if "approval_hash" in found else None
        return plan, problem

    def stored_approval_hash(self, plan_id: str) -> str | None:
        """The `approval_hash` attribute of the plan's item as `get` last read it: written once, with the plan, by its
        creator (IAM lets no other role write it); None on an item written before the attribute existed."""
        return self._stored_hash.get(plan_id)

    def transition(
        self,
        plan: Plan,
        new_state: str,
        now: datetime,
        *,
        record: Record | None = None,
        unleased: bool = False,
        **changes: Any,
    ) -> Plan:
        """Move `plan` to `new_state` if (and only if) it is still in its current state (and, `unleased`, no executor's
        lease on it is running). `record` (kind, data) is appended to its chain in the same write (with any records
        `deferred()` holds)."""
        expected = plan.status
        if not can_transition(expected, new_state):
            raise StateConflict(plan.id, f"a state that may become {new_state}", expected)
        # A lease lasts while the plan stays in the state it was taken for (`lease`): a transition ends it.
        updated = plan.model_copy(
            update={"lease_owner": "", "lease_until": None, **changes, "status": new_state, "updated_at": iso(now)}
        )
        self._conditional_put(updated, expected, record, now, lease=(iso(now), iso(now)) if unleased else None)
        return updated

    def save(self, plan: Plan, now: datetime, *, record: Record | None = None, **changes: Any) -> Plan:
        """Update a plan's details without changing its state (still conditional on that state); `record` as in
        `transition`."""
        updated = plan.model_copy(update={**changes, "updated_at": iso(now)})
        self._conditional_put(updated, plan.status, record, now)
        return updated

    def lease(
        self,
        plan: Plan,
        now: datetime,
        until: datetime,
        owner: str,
        *,
        hold: str = "APPLYING",
        record: Record | None = None,
    ) -> Plan:
        """Take `plan` for one executor until `until`, in state `hold`: APPROVED → APPLYING, an APPLYING plan whose
        lease has expired (the executor that held it died), or a FAILED plan to roll back (`hold="FAILED"`). The
        write is conditional on the state *and* on no live lease, so of two executors given the same message only
        one acts. The lease ends with the next transition. `record` as in `transition`.

        Raises `LeaseHeld` while another executor's lease runs, `StateConflict` if the plan moved on."""
        if plan.status != hold and not can_transition(plan.status, hold):
            raise StateConflict(plan.id, f"{hold} or a state that may become it", plan.status)
        updated = plan.model_copy(
            update={"status": hold, "lease_owner": owner, "lease_until": iso(until), "updated_at": iso(now)}
        )
        try:
            self._conditional_put(updated, plan.status, record, now, lease=(iso(until), iso(now)))
        except StateConflict:
            current = self.get(plan.id)
            if current is not None and current.status == hold and (current.lease_until or "") > iso(now):
                raise LeaseHeld(plan.id, current.lease_owner, current.lease_until or "") from None
            raise
        return updated

    def _conditional_put(
        self,
        plan: Plan,
        expected_state: str,
        record: Record | None = None,
        now: datetime | None = None,
        *,
        lease: tuple[str, str] | None = None,
    ) -> None:
        """Rewrite an existing plan's item only if it is still in `expected_state` (UpdateItem: it can never
        create a plan, so the roles that decide and verify need no PutItem on the plans table).

        With a record, or records held by `deferred()`, the update and the records are one TransactWriteItems: the
        state and the record that explains it are written together or not at all."""
        item = self._item(plan)
        update: dict[str, Any] = {
            "TableName": self.plans_table,
            "Key": {"plan_id": item["plan_id"]},
            "UpdateExpression": "SET #state = :state, #target = :target, created_at = :created, "
            "updated_at = :updated, doc = :doc",
            "ConditionExpression": "attribute_exists(plan_id) AND #state = :expected",
            "ExpressionAttributeNames": {"#state": "state", "#target": "target"},
            "ExpressionAttributeValues": {
                ":state": item["state"],
                ":target": item["target"],
                ":created": item["created_at"],
                ":updated": item["updated_at"],
                ":doc": item["doc"],
                ":expected": {"S": expected_state},
            },
        }
        if lease is not None:  # (until, now): only if no other executor's lease is still running
            update["UpdateExpression"] += ", lease_until = :lease_until"
            update["ConditionExpression"] += " AND (attribute_not_exists(lease_until) OR lease_until <= :lease_now)"
            update["ExpressionAttributeValues"].update({":lease_until": {"S": lease[0]}, ":lease_now": {"S": lease[1]}})
        elif plan.status != expected_state:
            update["UpdateExpression"] += " REMOVE lease_until"  # a transition ends the lease
        self.remember(plan)
        if record is not None and now is not None and self._pending is None:
            with self.deferred():  # one transaction for this update and its record
                self._conditional_put(plan, expected_state, record, now, lease=lease)
            return
        previous = self._marks.get(plan.id)
        self._marks[plan.id] = _mark(plan)  # the records of this write (and after it) log the plan as written
        try:
            self._write_update(plan, expected_state, update, record, now)
        except Exception:
            if previous is None:
                self._marks.pop(plan.id, None)
            else:
                self._marks[plan.id] = previous
            raise

    def _write_update(
        self, plan: Plan, expected_state: str, update: dict[str, Any], record: Record | None, now: datetime | None
    ) -> None:
        pending = self._pending
        if record is not None and now is not None and pending is not None:
            self.append(plan.id, record[0], record[1], now)
        if pending:
            held = pending[: TRANSACTION_ITEMS - 1 - len({e.plan_id for e, _ in pending})]
            if len(held) == len(pending):
                try:
                    actions: list[Any] = [{"Update": update}, *self._writes_for(held)]
                    self.dynamodb.transact_write_items(TransactItems=actions)
                except self.dynamodb.exceptions.TransactionCanceledException as exc:
                    reasons = exc.response.get("CancellationReasons") or []
                    if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                        if record is not None:
                            pending.pop()  # the state moved on: the step it describes did not happen (others stay held)
                        current = self.get(plan.id)
                        raise StateConflict(plan.id, expected_state, current.status if current else None) from None
                    # A record lost a race for its seq: the update alone, then the records after the chain's end.
                    held_now = list(pending)
                    pending.clear()
                    self._put_update(update, plan, expected_state)
                    self._reappend(held_now)
                    return
                except Exception:
                    if record is not None:
                        pending.pop()  # the state change failed: its record must not be written at the block's end
                    raise
                self._written(held)
                pending.clear()
                return
        self._put_update(update, plan, expected_state)

    def _put_update(self, update: dict[str, Any], plan: Plan, expected_state: str) -> None:
        try:
            self.dynamodb.update_item(**update)
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            current = self.get(plan.id)
            raise StateConflict(plan.id, expected_state, current.status if current else None) from None

    @staticmethod
    def _item(plan: Plan) -> dict[str, Any]:
        return {
            "plan_id": {"S": plan.id},
            "state": {"S": plan.status},
            "target": {"S": plan.target},
            "created_at": {"S": plan.created_at},
            "updated_at": {"S": plan.updated_at},
            "doc": {"S": storable(plan).model_dump_json()},  # never a non-finite number: it would not read back
            **({"approval_hash": {"S": plan.approval_hash}} if plan.approval_hash else {}),
        }

    def count_attached(self, plan_id: str) -> int:
        """Count one more alarm attached to an open plan; returns the new count (one atomic ADD)."""
        response = self.dynamodb.update_item(
            TableName=self.plans_table,
            Key={"plan_id": {"S": plan_id}},
            UpdateExpression="ADD attached :one",
            ConditionExpression="attribute_exists(plan_id)",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["attached"]["N"])

    def add_approval(self, plan_id: str, user: str) -> frozenset[str] | None:
        """Add `user` to the plan item's `approvals` set in one conditional write (the plan still PROPOSED, the user not
        yet in it); the approvals after the write, or None when the condition failed. Concurrent approvals all
        count."""
        try:
            response = self.dynamodb.update_item(
                TableName=self.plans_table,
                Key={"plan_id": {"S": plan_id}},
                UpdateExpression="ADD approvals :users",
                ConditionExpression="attribute_exists(plan_id) AND #state = :proposed "
                "AND NOT contains(approvals, :user)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":users": {"SS": [user]},
                    ":proposed": {"S": "PROPOSED"},
                    ":user": {"S": user},
                },
                ReturnValues="UPDATED_NEW",  # the set after the write; IAM refuses interactions ALL_NEW (template.yaml)
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return None
        return frozenset(response["Attributes"]["approvals"]["SS"])

    def remember(self, plan: Plan) -> None:
        """Keep the plan's context for the events logged about it from now on."""
        context = {"alarm_arn": plan.alarm_arn, "state_timestamp": plan.state_timestamp}
        if plan.slack.ts:
            context["slack_ts"] = plan.slack.ts
        self._context[plan.id] = {k: v for k, v in context.items() if v}


def _mark(plan: Plan) -> Mark:
    return plan.status, plan_content_hash(plan)
