"""Carry out an approved `ProposedAction` (the graph calls this only after the rep approves or
edits it; rejecting never reaches here).

Every action writes an Event "action.executed" (actor, thread, params, result) besides what the
domain itself logs (a stage move also writes "deal.stage_changed"). Parameters are validated per
kind (pydantic); a bad or unknown value raises `crm.errors.Invalid(field)` and, like any domain
error, leaves the caller's transaction to roll back: nothing half-done.

Action kinds and their `params`:
- move_stage: `deal` (opportunity id) or `deal_id`, `stage` (key or name); optional `note`,
  `value` (USD, needed to enter Closed Won), `close_date`.
- create_reminder: `due_at` (ISO datetime; a date means 09:00 UTC), `message`; optional
  `deal_id`, `account_id`, `rep_id`.
- create_task: `tasks` = [{`title`, `due` (ISO date or datetime), `owner`?}] (or one `title` +
  `due`); optional `deal_id`, `account_id`, `rep_id`. Decision: a task is a Reminder whose message
  starts with "Task:". Tasks are dated to-dos for a person, and a Reminder already has what they
  need (due time, owner rep, status pending/done, its workflow that fires and escalates it).
- queue_email: `subject`, `body`; optional `to` (email address), `contact_id`, `account_id`,
  `deal_id`. Written to the outbox (`crm.outbox`, with the request for its delivery workflow),
  plus an Event "email.queued". Nothing is sent here: the delivery workflow sends it once.
- start_sequence: `deal` or `deal_id` (an open deal with no sequence running): asks for its
  follow-up sequence (`config/sequences.yaml`), started by the caller after the commit.
- cancel_sequence: `deal` or `deal_id` whose sequence runs: it ends at its next step.
- accept_discount: `percent` (0 < p <= the policy's `discount.max_percent`); optional `deal` /
  `deal_id`, `account_id`, `requested_percent`, `note`. Writes an Event "discount.accepted" and a
  deal note (a Document of kind "deal_note"; embedded when an embedder is given, else stored
  without a vector until `flowstate reembed`). A percent above the maximum is refused even after
  an edit.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from config.files import load_pipeline, load_policies
from crm import insights, outbox, repository, workflow_runs
from crm.documents import DocumentIn, add_documents
from crm.embeddings import Embedder
from crm.errors import Invalid
from crm.models import Contact, Document, ExecutedAction
from crm.schemas import EventCreate, ReminderCreate
from tools import sequences

if TYPE_CHECKING:  # the contract type only; tools must not import crews at run time
    from contracts import ProposedAction

__all__ = ["TASK_PREFIX", "execute"]

#: Start of the message of a Reminder that is a task (see module docstring).
TASK_PREFIX = "Task: "
#: Hour (UTC) a reminder or task given only as a date falls due.
DEFAULT_DUE_HOUR = 9


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _DealRef(_Params):
    deal: str | None = None
    deal_id: int | None = None

    def resolve(self, session: Session) -> int | None:
        if self.deal_id is not None:
            return self.deal_id
        if self.deal:
            return insights.deal_by_ref(session, self.deal).id
        return None


class MoveStageParams(_DealRef):
    stage: str = Field(min_length=1)
    note: str | None = None
    value: float | None = Field(None, ge=0)
    close_date: dt.date | None = None

    @model_validator(mode="after")
    def _needs_deal(self) -> MoveStageParams:
        if self.deal is None and self.deal_id is None:
            raise ValueError("deal or deal_id is required")
        return self


def _due(value: str | dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(DEFAULT_DUE_HOUR), tzinfo=dt.UTC)
    text = value.strip()
    if len(text) == 10:
        return _due(dt.date.fromisoformat(text))
    return _due(dt.datetime.fromisoformat(text))


class ReminderParams(_DealRef):
    due_at: str | dt.datetime
    message: str = Field(min_length=1, max_length=4000)
    account_id: int | None = None
    rep_id: int | None = None


class TaskItem(BaseModel):
    title: str = Field(min_length=1, max_length=500)
    due: str | dt.date | dt.datetime
    owner: str | None = None


class TaskParams(_DealRef):
    tasks: list[TaskItem] = []
    title: str | None = None
    due: str | None = None
    account_id: int | None = None
    rep_id: int | None = None

    @model_validator(mode="after")
    def _one_task(self) -> TaskParams:
        if not self.tasks and self.title and self.due:
            self.tasks = [TaskItem(title=self.title, due=self.due)]
        if not self.tasks:
            raise ValueError("tasks (or title and due) is required")
        return self


class EmailParams(_DealRef):
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=20_000)
    to: str | None = Field(None, max_length=254)
    contact_id: int | None = None
    account_id: int | None = None


class SequenceParams(_DealRef):
    @model_validator(mode="after")
    def _needs_deal(self) -> SequenceParams:
        if self.deal is None and self.deal_id is None:
            raise ValueError("deal or deal_id is required")
        return self


class DiscountParams(_DealRef):
    percent: float = Field(gt=0, le=100)
    requested_percent: float | None = None
    account_id: int | None = None
    note: str | None = None


def _params(model: type[BaseModel], params: dict[str, Any]) -> Any:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "params"
        raise Invalid(field, str(err.get("msg"))) from None


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with dates and decimals as strings (event payloads are JSONB)."""
    out: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return out


def _account_of(session: Session, deal_id: int | None, account_id: int | None) -> int | None:
    if account_id is not None or deal_id is None:
        return account_id
    return repository.get_deal(session, deal_id).account_id


def execute(
    session: Session,
    action: ProposedAction,
    actor: str | None,
    *,
    thread_id: str | None = None,
    embedder: Embedder | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Carry out `action` in the caller's transaction and log it; returns what was done
    ({"kind", "status": "done", ...ids and values, "workflows": the ids of the workflows it asked
    for, which the caller starts after its commit}). Raises crm.errors (NotFound, Invalid,
    Conflict) when the CRM refuses it; the caller rolls back.

    With an `idempotency_key` (where the approval came from), the action runs at most once per
    key: the key is claimed first in this transaction (a concurrent claim waits for ours to
    commit or roll back), and a key already claimed returns the stored result with
    `"replayed": True` and changes nothing.
    """
    if idempotency_key is not None:
        claimed = session.execute(
            insert(ExecutedAction)
            .values(key=idempotency_key, kind=action.kind)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(ExecutedAction.key)
        ).scalar()
        if claimed is None:
            stored = session.scalar(
                select(ExecutedAction.result).where(ExecutedAction.key == idempotency_key)
            )
            return {**(stored or {}), "replayed": True}
    done = _run(session, action, actor, thread_id=thread_id, embedder=embedder, key=idempotency_key)
    if idempotency_key is not None:
        row = session.get(ExecutedAction, idempotency_key)
        assert row is not None
        row.result = _jsonable(done)
        session.flush()
    return done


def _run(
    session: Session,
    action: ProposedAction,
    actor: str | None,
    *,
    thread_id: str | None,
    embedder: Embedder | None,
    key: str | None,
) -> dict[str, Any]:
    result: dict[str, Any]
    deal_id: int | None = None
    account_id: int | None = None
    if action.kind == "move_stage":
        mp: MoveStageParams = _params(MoveStageParams, action.params)
        deal_id = mp.resolve(session)
        assert deal_id is not None
        deal = repository.move_deal_stage(
            session,
            deal_id,
            mp.stage,
            changed_by=actor,
            note=mp.note,
            value=mp.value,
            close_date=mp.close_date,
        )
        account_id = deal.account_id
        won = deal.stage == load_pipeline().won_key
        onboarding = workflow_runs.workflow_id_of(session, "onboarding", deal.id) if won else None
        result = {
            "deal_id": deal.id,
            "deal": deal.external_id,
            "stage": deal.stage,
            "stage_name": deal.stage_name,
            "won": won,
            "workflows": [onboarding] if onboarding else [],
        }
    elif action.kind == "create_reminder":
        rp: ReminderParams = _params(ReminderParams, action.params)
        deal_id = rp.resolve(session)
        reminder = repository.create_reminder(
            session,
            ReminderCreate(
                rep_id=rp.rep_id,
                account_id=rp.account_id,
                deal_id=deal_id,
                due_at=_due(rp.due_at),
                message=rp.message,
            ),
        )
        account_id = reminder.account_id
        result = {
            "reminder_id": reminder.id,
            "due_at": reminder.due_at.isoformat(),
            "workflows": workflow_runs.workflow_ids_of(session, "reminder", [reminder.id]),
        }
    elif action.kind == "create_task":
        tp: TaskParams = _params(TaskParams, action.params)
        deal_id = tp.resolve(session)
        ids = []
        for task in tp.tasks:
            owner = f" (owner: {task.owner})" if task.owner else ""
            reminder = repository.create_reminder(
                session,
                ReminderCreate(
                    rep_id=tp.rep_id,
                    account_id=tp.account_id,
                    deal_id=deal_id,
                    due_at=_due(task.due),
                    message=f"{TASK_PREFIX}{task.title}{owner}",
                ),
            )
            account_id = reminder.account_id
            ids.append(reminder.id)
        result = {
            "reminder_ids": ids,
            "tasks": len(ids),
            "workflows": workflow_runs.workflow_ids_of(session, "reminder", ids),
        }
    elif action.kind == "queue_email":
        ep: EmailParams = _params(EmailParams, action.params)
        deal_id = ep.resolve(session)
        account_id = _account_of(session, deal_id, ep.account_id)
        to = ep.to
        if to is None and ep.contact_id is not None:
            to = session.scalar(select(Contact.email).where(Contact.id == ep.contact_id))
        rep_id = repository.get_deal(session, deal_id).rep_id if deal_id is not None else None
        message, _created = outbox.enqueue(
            session,
            key or f"email:{uuid.uuid4()}",
            subject=ep.subject,
            body=ep.body,
            to_addr=to,
            rep_id=rep_id,
            account_id=account_id,
            deal_id=deal_id,
            thread_id=thread_id,
        )
        repository.append_event(
            session,
            EventCreate(
                kind="email.queued",
                actor=actor,
                thread_id=thread_id,
                account_id=account_id,
                deal_id=deal_id,
                payload={"outbox_id": message.id, "to": to, "subject": ep.subject},
            ),
        )
        result = {
            "outbox_id": message.id,
            "to": to,
            "subject": ep.subject,
            "workflows": workflow_runs.workflow_ids_of(session, "email", [message.id]),
        }
    elif action.kind == "start_sequence":
        sp: SequenceParams = _params(SequenceParams, action.params)
        deal_id = sp.resolve(session)
        assert deal_id is not None
        account_id = repository.get_deal(session, deal_id).account_id
        run = sequences.request(session, deal_id)
        result = {"deal_id": deal_id, "workflows": [run.workflow_id]}
    elif action.kind == "cancel_sequence":
        cp: SequenceParams = _params(SequenceParams, action.params)
        deal_id = cp.resolve(session)
        assert deal_id is not None
        account_id = repository.get_deal(session, deal_id).account_id
        run = sequences.cancel(session, deal_id)
        result = {"deal_id": deal_id, "cancelled": run.workflow_id}
    elif action.kind == "accept_discount":
        dp: DiscountParams = _params(DiscountParams, action.params)
        limit = load_policies().discount.max_percent
        if dp.percent > limit:
            raise Invalid(
                "percent", f"{dp.percent:g}% is above the {limit:g}% maximum discount of the sales policy"
            )
        deal_id = dp.resolve(session)
        account_id = _account_of(session, deal_id, dp.account_id)
        text = (
            f"Discount of {dp.percent:g}% accepted by {actor or 'the rep'} on {dt.date.today().isoformat()}"
        )
        if dp.requested_percent is not None and dp.requested_percent != dp.percent:
            text += f" (the customer asked for {dp.requested_percent:g}%)"
        if dp.note:
            text += f". {dp.note}"
        note_in = DocumentIn(
            content=text + ".",
            metadata={"kind": "deal_note", "source": "accept_discount"},
            account_id=account_id,
            deal_id=deal_id,
        )
        if embedder is not None:
            note_id = add_documents(session, embedder, [note_in])[0]
        else:
            doc = Document(
                content=note_in.content, metadata_=note_in.metadata, account_id=account_id, deal_id=deal_id
            )
            session.add(doc)
            session.flush()
            note_id = doc.id
        repository.append_event(
            session,
            EventCreate(
                kind="discount.accepted",
                actor=actor,
                thread_id=thread_id,
                account_id=account_id,
                deal_id=deal_id,
                payload={
                    "percent": dp.percent,
                    "requested_percent": dp.requested_percent,
                    "note_id": note_id,
                },
            ),
        )
        result = {"percent": dp.percent, "note_id": note_id}
    else:  # pragma: no cover - ActionKind is a closed Literal
        raise Invalid("kind", f"unknown action kind {action.kind!r}")

    event = repository.append_event(
        session,
        EventCreate(
            kind="action.executed",
            actor=actor,
            thread_id=thread_id,
            account_id=account_id,
            deal_id=deal_id,
            payload=_jsonable(
                {"action": action.kind, "summary": action.summary, "params": action.params, "result": result}
            ),
        ),
    )
    return {"kind": action.kind, "status": "done", "event_id": event.id, **result}
