"""`tools.actions.execute`: every approved action changes the CRM as described and writes its
Events; a refused one changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from config.files import load_policies
from contracts import ProposedAction
from crm.db import session_scope
from crm.errors import Conflict, Invalid
from crm.models import Deal, Document, Event, ExecutedAction, OutboxMessage, Reminder, WorkflowRun
from tests.tools.conftest import CRM
from tools.actions import TASK_PREFIX, execute


def _events(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return list(s.scalars(select(Event.kind).order_by(Event.id)))


def test_move_stage(crm_data: CRM, clean_db: Engine) -> None:
    action = ProposedAction(
        kind="move_stage", summary="Move", params={"deal": "D0000005", "stage": "negotiation"}
    )
    with session_scope(clean_db) as s:
        out = execute(s, action, "ann", thread_id="t1")
    assert out["stage"] == "negotiation" and out["status"] == "done"
    with session_scope(clean_db) as s:
        assert s.get(Deal, crm_data.deal["D0000005"]).stage == "negotiation"  # type: ignore[union-attr]
        ev = s.scalars(select(Event).where(Event.kind == "action.executed")).one()
        assert ev.thread_id == "t1" and ev.actor == "ann" and ev.payload["action"] == "move_stage"
    assert _events(clean_db)[-2:] == ["deal.stage_changed", "action.executed"]


def test_refused_move_changes_nothing(crm_data: CRM, clean_db: Engine) -> None:
    action = ProposedAction(
        kind="move_stage", summary="Move", params={"deal": "D0000007", "stage": "proposal"}
    )
    before = _events(clean_db)
    with pytest.raises(Conflict), session_scope(clean_db) as s:
        execute(s, action, "ann")
    with session_scope(clean_db) as s:
        assert s.get(Deal, crm_data.deal["D0000007"]).stage == "prospecting"  # type: ignore[union-attr]
    assert _events(clean_db) == before


def test_reminder_and_tasks(crm_data: CRM, clean_db: Engine) -> None:
    deal_id = crm_data.deal["D0000006"]
    with session_scope(clean_db) as s:
        r = execute(
            s,
            ProposedAction(
                kind="create_reminder",
                summary="r",
                params={"deal_id": deal_id, "due_at": "2017-06-10", "message": "Call Gammaco"},
            ),
            "cy",
        )
        t = execute(
            s,
            ProposedAction(
                kind="create_task",
                summary="t",
                params={
                    "deal_id": deal_id,
                    "tasks": [
                        {"title": "Kickoff", "due": "2017-06-12", "owner": "Cy Gamma"},
                        {"title": "Install", "due": "2017-06-23"},
                    ],
                },
            ),
            "cy",
        )
    assert t["tasks"] == 2
    with session_scope(clean_db) as s:
        rows = s.scalars(select(Reminder).order_by(Reminder.id)).all()
        assert [x.message for x in rows] == [
            "Call Gammaco",
            f"{TASK_PREFIX}Kickoff (owner: Cy Gamma)",
            f"{TASK_PREFIX}Install",
        ]
        assert rows[0].id == r["reminder_id"] and rows[0].due_at.hour == 9
        assert rows[0].account_id == crm_data.account["Gammaco"]  # filled from the deal
    assert _events(clean_db).count("action.executed") == 2


def test_queue_email(crm_data: CRM, clean_db: Engine) -> None:
    action = ProposedAction(
        kind="queue_email",
        summary="e",
        params={
            "to": "dana.diaz@acme.example",
            "subject": "Hello",
            "body": "Body",
            "account_id": crm_data.account["Acme"],
        },
    )
    with session_scope(clean_db) as s:
        out = execute(s, action, "ann", thread_id="t2")
    with session_scope(clean_db) as s:
        msg = s.get(OutboxMessage, out["outbox_id"])
        assert msg is not None and msg.status == "queued" and msg.thread_id == "t2"
        assert msg.to_addr == "dana.diaz@acme.example" and msg.subject == "Hello"
        assert msg.message_id.startswith("<") and msg.message_id.endswith("@flowstate.local>")
        run = s.query(WorkflowRun).filter_by(outbox_id=msg.id).one()
        assert (run.kind, run.status) == ("email", "pending")
        assert run.workflow_id.startswith(f"email-{msg.id}-") and out["workflows"] == [run.workflow_id]
    assert _events(clean_db)[-2:] == ["email.queued", "action.executed"]


def test_an_approval_runs_once_per_key(crm_data: CRM, clean_db: Engine) -> None:
    """The same approval key (a duplicate resume, a retried activity) runs the action once; the
    repeat returns the first result, marked replayed."""
    action = ProposedAction(
        kind="queue_email",
        summary="e",
        params={
            "to": "x@acme.example",
            "subject": "Once",
            "body": "B",
            "account_id": crm_data.account["Acme"],
        },
    )
    with session_scope(clean_db) as s:
        first = execute(s, action, "ann", idempotency_key="approval:t9:approve:1")
    with session_scope(clean_db) as s:
        again = execute(s, action, "ann", idempotency_key="approval:t9:approve:1")
    assert again["replayed"] is True and again["outbox_id"] == first["outbox_id"]
    with session_scope(clean_db) as s:
        assert s.query(OutboxMessage).count() == 1
        assert s.get(ExecutedAction, "approval:t9:approve:1") is not None
    assert _events(clean_db).count("action.executed") == 1


def test_accept_discount_within_policy_and_refused_above(crm_data: CRM, clean_db: Engine) -> None:
    limit = load_policies().discount.max_percent
    ok = ProposedAction(
        kind="accept_discount",
        summary="d",
        params={"deal": "D0000005", "percent": limit, "requested_percent": limit + 40},
    )
    with session_scope(clean_db) as s:
        out = execute(s, ok, "bob")
    with session_scope(clean_db) as s:
        note = s.get(Document, out["note_id"])
        assert (
            note is not None and f"{limit:g}%" in note.content and note.deal_id == crm_data.deal["D0000005"]
        )
    assert _events(clean_db)[-2:] == ["discount.accepted", "action.executed"]
    # an edit that raises the percent above the policy is refused, and nothing is written
    before = _events(clean_db)
    too_much = ProposedAction(
        kind="accept_discount", summary="d", params={"deal": "D0000005", "percent": limit + 1}
    )
    with pytest.raises(Invalid) as info, session_scope(clean_db) as s:
        execute(s, too_much, "bob")
    assert info.value.field == "percent"
    assert _events(clean_db) == before
    with session_scope(clean_db) as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 1


def test_bad_params_name_the_field(crm_data: CRM, clean_db: Engine) -> None:
    with pytest.raises(Invalid) as info, session_scope(clean_db) as s:
        execute(s, ProposedAction(kind="create_reminder", summary="r", params={"message": "x"}), "ann")
    assert info.value.field == "due_at"
