"""The pipeline crew's follow-up requests: a reminder or tasks the rep asks for, proposed as
`create_reminder` / `create_task` for approval (no LLM call; `tools.action_requests` reads the
words, the CRM the records). What they are about: the deal named (opportunity id, or an
account's only open deal of the product named), else the account named; a request that points
back ("call them", "that deal") with nothing to point at, or with no date, gets a question back
and no action.

Due times are the rep's local wall time (`tools.reminders.local_now`: the rep's time zone, UTC
for a caller who is not a rep) and are proposed as aware ISO datetimes; a task is due on a date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from contracts import CrewRequest, CrewResponse, Entities, ProposedAction
from tools import deals
from tools.action_requests import ActionRequest
from tools.deals import DealOut, DealPick
from tools.sources import deal_source

__all__ = ["add_tasks", "remind", "which_deal"]


def which_deal(pick: DealPick, entities: Entities, doing: str) -> CrewResponse:
    """The question back when a request does not settle its deal (`doing`: what would be done,
    "move to Closed Won"): the candidates to choose from, or what to name. No action."""
    account = entities.first("account")
    if pick.candidates:
        listed = "; ".join(
            f"{d.external_id} ({d.product_name or 'no product'}, {d.stage_name})" for d in pick.candidates
        )
        who = account.key if account else "That account"
        return CrewResponse(
            reply=f"{who} has {len(pick.candidates)} open deals: {listed}. Which one should I {doing}?",
            data={"candidates": [d.external_id for d in pick.candidates]},
            sources=[deal_source(d) for d in pick.candidates],
            facts=[{"deal": d.external_id, "stage": d.stage} for d in pick.candidates],
        )
    if account is not None and pick.named:
        return CrewResponse(
            reply=f"{account.key} has no open deal I could {doing}. Which deal do you mean? "
            "Give me its opportunity id (e.g. 1C1I7A6R).",
            data={"candidates": []},
        )
    return CrewResponse(
        reply=f"Which deal should I {doing}? Give me its opportunity id (e.g. 1C1I7A6R) or its account.",
        data={"candidates": []},
    )


def _about(
    session: Session, request: CrewRequest, req: ActionRequest
) -> tuple[DealOut | None, int | None, str | None, CrewResponse | None]:
    """What a reminder or task is about: (deal, account id, label, question back). A deal named
    by id, or by account and product, is the deal; an account alone is the account (its open
    deals need not be told apart); nothing named is fine for a plain "remind me at 5" but not
    when the words point back at someone ("call them")."""
    entities = request.entities
    account = entities.first("account")
    if entities.first("deal") is not None or (account is not None and entities.first("product") is not None):
        pick = deals.deal_for_request(session, entities, request.caller)
        if pick.deal is None:
            return None, None, None, which_deal(pick, entities, "attach this to")
        d = pick.deal
        label = f"deal {d.external_id} ({d.account_name or 'no account'}, {d.product_name or 'no product'})"
        return d, d.account_id, label, None
    if account is not None and account.id is not None:
        return None, account.id, account.key, None
    if req.refers_back:
        return (
            None,
            None,
            None,
            CrewResponse(
                reply="Who is this about? Name the account or the deal (its opportunity id) and I'll set it.",
                data={"missing": "record"},
            ),
        )
    return None, None, None, None


def _caller_rep(request: CrewRequest) -> int | None:
    return request.caller.rep_id if request.caller is not None else None


def _when(moment: dt.datetime) -> str:
    return f"{moment:%a %d %b %Y} at {moment:%H:%M}"


def remind(session: Session, request: CrewRequest, req: ActionRequest, now: dt.datetime) -> CrewResponse:
    """Propose `create_reminder` for `req` (read at `now`, the rep's aware local time): due at
    its local time, with what to be reminded of, the record it is about and the caller's rep id.
    A missing or past time, or a missing record the words point to, is asked back."""
    deal, account_id, label, question = _about(session, request, req)
    if question is not None:
        return question
    if req.due_at is None:
        return CrewResponse(
            reply="When should I remind you? Give me a date or a time "
            "(e.g. 'tomorrow at 3pm', 'on 2027-01-15').",
            data={"missing": "due_at"},
        )
    due = req.due_at.replace(tzinfo=now.tzinfo)
    if due <= now:
        return CrewResponse(
            reply=f"{_when(due)} has already passed. When should I remind you instead?",
            data={"missing": "due_at", "past": due.isoformat()},
        )
    what = req.what or (f"Follow up on {label}" if label else "Follow up")
    params: dict[str, Any] = {"due_at": due.isoformat(), "message": what, "rep_id": _caller_rep(request)}
    if deal is not None:
        params.update(deal=deal.external_id, deal_id=deal.id)
    if account_id is not None:
        params["account_id"] = account_id
    about = f" (about {label})" if label and label.lower() not in what.lower() else ""
    zone = due.tzname() or "UTC"
    reply = f"I can remind you on {_when(due)} ({zone}): {what}{about}. Approve to set it."
    return CrewResponse(
        reply=reply,
        data={"reminder": {"due_at": due.isoformat(), "message": what}},
        sources=[deal_source(deal)] if deal else [],
        facts=[{"due_at": due.isoformat(), "reminder": what, **({"deal": deal.external_id} if deal else {})}],
        proposed_action=ProposedAction(
            kind="create_reminder", summary=f"Remind you on {due:%Y-%m-%d %H:%M}: {what}", params=params
        ),
    )


def add_tasks(session: Session, request: CrewRequest, req: ActionRequest, now: dt.datetime) -> CrewResponse:
    """Propose `create_task` with the tasks of `req`, each due on its date (a task without one
    is asked back, as is a record the words point to and do not name)."""
    deal, account_id, label, question = _about(session, request, req)
    if question is not None:
        return question
    if not req.tasks:
        return CrewResponse(
            reply="What is the task, and by when? (e.g. 'add a task to send the pricing sheet by Friday')",
            data={"missing": "tasks"},
        )
    undated = [t.title for t in req.tasks if t.due is None]
    if undated:
        return CrewResponse(
            reply=f"By when should '{undated[0]}' be done? Give me a date "
            "(e.g. 'by Friday', 'due 2027-01-15').",
            data={"missing": "due"},
        )
    past = [t for t in req.tasks if t.due is not None and t.due < now.date()]
    if past:
        return CrewResponse(
            reply=f"{past[0].due:%a %d %b %Y} has already passed. By when should '{past[0].title}' be done?",
            data={"missing": "due"},
        )
    tasks = [{"title": t.title, "due": t.due.isoformat() if t.due else None} for t in req.tasks]
    params: dict[str, Any] = {"tasks": tasks, "rep_id": _caller_rep(request)}
    if deal is not None:
        params.update(deal=deal.external_id, deal_id=deal.id)
    if account_id is not None:
        params["account_id"] = account_id
    about = f" for {label}" if label else ""
    lines = "\n".join(f"- {t['title']} (due {t['due']})" for t in tasks)
    count = "a task" if len(tasks) == 1 else f"{len(tasks)} tasks"
    reply = f"I can add {count}{about}:\n{lines}\nApprove to add {'it' if len(tasks) == 1 else 'them'}."
    summary = f"Add {count}{about}: " + "; ".join(f"{t['title']} by {t['due']}" for t in tasks)
    return CrewResponse(
        reply=reply,
        data={"tasks": tasks},
        sources=[deal_source(deal)] if deal else [],
        facts=[{"tasks": tasks, **({"deal": deal.external_id} if deal else {})}],
        proposed_action=ProposedAction(kind="create_task", summary=summary, params=params),
    )
