"""The delivery crew: for a won deal, an onboarding plan (tasks, owners, dates, milestones) and a
client status report.

`run(request, deps)`:
1. finds the won deal: the one named, else the account's latest won deal (of the product named,
   if any); a deal that is not won gets an honest answer and no plan;
2. builds the plan in Python (`build_plan`): the milestones of `ONBOARDING` dated from the close
   date, each with tasks and owners (the rep, the account's contact, delivery and customer
   success teams); the status of each milestone as of the data's reference date;
3. the onboarding manager (one LLM call) writes a short summary and points to watch, without
   dates or numbers (sentences with digits are dropped); the milestones and dates in the reply
   are written from the plan;
4. proposes `create_task` with every task of the plan (a new plan) or `create_reminder` for the
   next milestone (a status report).

The reply streams (`crews.streaming.ReplyWriter`): the heading as soon as the plan is computed,
then the model's summary sentence by sentence as it writes them (plain text, not JSON), the plan's
milestones when the model moves on to its points to watch, and each point as it is complete. A
model that answers with a JSON object anyway is read whole at its end instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts import CrewRequest, CrewResponse, ProposedAction, Source
from crews.common import drop_numeric_sentences, in_session, list_item, question_of
from crews.delivery.models import DeliveryNote, DeliveryResult, Milestone, OnboardingPlan, PlanTask
from crews.deps import CrewDeps
from crews.runner import CrewOutputError, compact_json, kickoff_text
from crews.streaming import ReplyWriter
from guards.text import SentenceSplitter
from llm import StopGeneration, parse_output
from observability.llm_meter import usage_scope
from tools import accounts, deals
from tools.analytics import reference_date
from tools.deals import DealOut, account_deals
from tools.errors import DomainError
from tools.sources import deal_source

log = logging.getLogger(__name__)

__all__ = ["ONBOARDING", "build_plan", "plan_of", "plan_tasks", "run"]

#: The onboarding template: (milestone, days after the close date, owner role, tasks). Owner roles:
#: "rep" (the deal's sales rep), "customer" (the account's contact), or a team name. The offsets
#: follow a common 45-day hardware onboarding: kickoff within the first week, delivery in two,
#: training in three, go-live at a month, a review after six weeks.
ONBOARDING: list[tuple[str, int, str, list[str]]] = [
    (
        "Kickoff",
        3,
        "rep",
        ["Hold the kickoff call and confirm scope and contacts", "Share the onboarding plan"],
    ),
    (
        "Delivery and installation",
        14,
        "Delivery team",
        ["Ship {product}", "Install and configure {product} on site"],
    ),
    ("Training", 21, "Customer success", ["Train the {account} team on {product}"]),
    (
        "Go-live",
        30,
        "customer",
        ["Confirm {product} is in production use", "Sign off the acceptance checklist"],
    ),
    (
        "Review",
        45,
        "rep",
        ["Run the 45-day review with {account}", "Agree next steps and expansion opportunities"],
    ),
]

STATUS = re.compile(
    r"\b(status|report|update|progress|what'?s left|remaining|where (are|do) we stand|review|quality|check|"
    r"deliverables|how is|how'?s)\b",
    re.I,
)

NOTE_MAX_TOKENS = 200
#: Points to watch kept before the model is stopped (the task asks for three).
MAX_RISKS = 3


def build_plan(deal: DealOut, contact: str | None, as_of: dt.date) -> OnboardingPlan:
    """The onboarding plan of a won deal, dated from its close date (engage date, else `as_of`,
    when it has none), with each milestone's status as of `as_of`: done when its date has
    passed, due for the first one not passed, upcoming after it."""
    start = deal.close_date or deal.engage_date or as_of
    names = {"account": deal.account_name or "the client", "product": deal.product_name or "the product"}
    owners = {"rep": deal.rep_name or "Sales rep", "customer": contact or f"{names['account']} project lead"}
    milestones = []
    due_found = False
    for name, offset, role, tasks in ONBOARDING:
        due = start + dt.timedelta(days=offset)
        owner = owners.get(role, role)
        if due < as_of:
            status = "done"
        elif not due_found:
            status, due_found = "due", True
        else:
            status = "upcoming"
        milestones.append(
            Milestone(
                name=name,
                due=due,
                owner=owner,
                status=status,  # type: ignore[arg-type]
                tasks=[PlanTask(title=t.format(**names), owner=owner, due=due) for t in tasks],
            )
        )
    return OnboardingPlan(
        deal=deal.external_id,
        account=deal.account_name,
        product=deal.product_name,
        rep=deal.rep_name,
        close_date=start,
        as_of=as_of,
        milestones=milestones,
    )


def plan_of(session: Session, deal: DealOut, as_of: dt.date) -> OnboardingPlan:
    """`build_plan` for `deal` with the account's first contact on file as the customer's owner."""
    contact = None
    if deal.account_id is not None:
        people = accounts.contacts(session, deal.account_id, limit=1)
        if people:
            contact = f"{people[0].first_name} {people[0].last_name}"
    return build_plan(deal, contact, as_of)


def plan_tasks(plan: OnboardingPlan, not_before: dt.date | None = None) -> list[dict[str, Any]]:
    """Every task of the plan as `create_task` items ({"title": "<milestone>: <task>", "due": ISO
    date, "owner"}), a due date before `not_before` moved to it."""
    return [
        {
            "title": f"{m.name}: {t.title}",
            "due": (max(t.due, not_before) if not_before else t.due).isoformat(),
            "owner": t.owner,
        }
        for m in plan.milestones
        for t in m.tasks
    ]


def _find_won_deal(session: Session, request: CrewRequest) -> tuple[DealOut | None, str | None]:
    """(won deal, None) or (None, why not). When the product named has no won deal with the
    account, the account's latest won deal is used and the second item says so. Only deals the
    caller reads (`Caller.read_rep_ids`) are considered: another team's deal is refused."""
    ents = request.entities
    caller = request.caller
    ref = ents.first("deal")
    if ref is not None:
        try:
            d = deals.find_deal(session, ref.key)
        except DomainError as exc:
            return None, str(exc)
        if caller is not None and not caller.may_read_rep(d.rep_id):
            return None, f"deal {d.external_id} belongs to another team"
        if d.status != "won":
            return None, f"deal {d.external_id} is in {d.stage_name}, not won yet"
        return d, None
    acc = ents.first("account")
    if acc is None:
        return None, "no account or deal named"
    try:
        account_id = acc.id if acc.id is not None else accounts.account_profile(session, acc.key).account.id
    except DomainError as exc:
        return None, str(exc)
    won = account_deals(session, account_id, status="won", limit=50)
    if caller is not None:
        won = [d for d in won if caller.may_read_rep(d.rep_id)]
    product = ents.first("product")
    note = None
    if product is not None:
        same = [d for d in won if d.product_name and d.product_name.lower() == product.key.lower()]
        if not same and won:
            note = f"{acc.key} has no won {product.key} deal; this is its latest won deal"
        won = same or won
    if not won:
        scoped = "" if caller is None or caller.read_rep_ids is None else " that you can see"
        return None, f"{acc.key} has no won deal{scoped} in the CRM yet"
    return won[0], note


def _gather(session: Session, request: CrewRequest) -> dict[str, Any]:
    deal, why = _find_won_deal(session, request)
    if deal is None:
        return {"deal": None, "why": why}
    return {"deal": deal, "plan": plan_of(session, deal, reference_date(session)), "note": why}


def _plan_lines(plan: OnboardingPlan, with_status: bool) -> str:
    lines = []
    for m in plan.milestones:
        mark = {"done": "[done] ", "due": "[next] ", "upcoming": ""}[m.status] if with_status else ""
        tasks = "; ".join(t.title for t in m.tasks)
        lines.append(f"- {mark}{m.name} by {m.due.isoformat()} (owner: {m.owner}): {tasks}")
    return "\n".join(lines)


class _NoteStream:
    """The model's plain-text note (a summary, then "- " points to watch) written to the reply as
    it arrives, with the plan's milestones (`plan_text`) between the two; `feed` is the model's
    text callback, `finish` writes what is left and returns the note (None when the model wrote
    nothing usable). An answer that starts with "{" is a JSON `DeliveryNote`, read at the end."""

    def __init__(self, writer: ReplyWriter, plan_text: str, keep: list[str]) -> None:
        self.writer = writer
        self.plan_text = plan_text
        self.keep = keep
        self.splitter = SentenceSplitter()
        self.raw = ""
        self.json: bool | None = None  # decided by the answer's first character
        self.summary: list[str] = []
        self.risks: list[str] = []
        self.plan_written = False
        self.done = False

    def feed(self, piece: str) -> None:
        if self.done:
            raise StopGeneration
        self.raw += piece
        if self.json is None:
            if not self.raw.strip():
                return
            self.json = self.raw.lstrip().startswith("{")
            piece = self.raw
        if not self.json:
            for unit in self.splitter.feed(piece):
                self._unit(unit)
        if self.done:
            raise StopGeneration

    def _plan(self) -> None:
        if not self.plan_written:
            self.plan_written = True
            self.writer.write("\n\n" + self.plan_text)

    def _unit(self, unit: str) -> None:
        if self.done:
            return
        point, text = list_item(unit, self.keep)
        if not text:
            return
        if point:
            self._risk(text)
        elif not self.risks:
            self.writer.write((" " if self.summary else "\n\n") + text)
            self.summary.append(text)
        # prose after the points is not part of the note

    def _risk(self, text: str) -> None:
        self._plan()
        self.writer.write(("\n- " if self.risks else "\n\nPoints to watch:\n- ") + text)
        self.risks.append(text)
        self.done = len(self.risks) >= MAX_RISKS

    def finish(self) -> DeliveryNote | None:
        self.done = True
        if self.json:
            try:
                note = parse_output(self.raw, DeliveryNote)
            except ValidationError:
                note = None
            if note is not None:
                summary = drop_numeric_sentences(note.summary, self.keep)
                if summary:
                    self.writer.write("\n\n" + summary)
                    self.summary.append(summary)
                    for risk in note.risks:
                        kept = drop_numeric_sentences(risk, self.keep)
                        if kept and len(self.risks) < MAX_RISKS:
                            self._risk(kept)
        else:
            self.done = False
            for unit in self.splitter.flush():
                self._unit(unit)
            self.done = True
        self._plan()
        if not self.summary:
            return None
        return DeliveryNote(summary=" ".join(self.summary), risks=self.risks)


async def _note(
    deps: CrewDeps, request: CrewRequest, plan: OnboardingPlan, kind: str, writer: ReplyWriter, plan_text: str
) -> DeliveryNote | None:
    """The note, streamed into `writer` around `plan_text` (written in any case)."""
    from crews.delivery.crew import DeliveryCrew

    records = {
        "account": plan.account,
        "product": plan.product,
        "milestones": [{"name": m.name, "owner": m.owner, "status": m.status} for m in plan.milestones],
    }
    stream = _NoteStream(writer, plan_text, [n for n in (plan.product, plan.account) if n])
    try:
        await kickoff_text(
            "delivery",
            lambda llm: DeliveryCrew(llm).crew(),
            {"kind": kind, "question": question_of(request), "records": compact_json(records)},
            deps.llm,
            stream.feed,
            max_tokens=NOTE_MAX_TOKENS,
        )
    except CrewOutputError as exc:
        log.info("delivery note failed (%s); replying with the plan only", exc.reason)
    return stream.finish()


async def run(request: CrewRequest, deps: CrewDeps) -> CrewResponse:
    """Plan onboarding or report its status (see the module docstring). Raises
    `crews.streaming.ReplyRejected` when the reply's stream refuses a sentence."""
    writer = ReplyWriter()
    with usage_scope() as usage:
        found = await in_session(deps, lambda s: _gather(s, request))
        if found["deal"] is None:
            reply = (
                f"I can't plan delivery: {found['why']}. Onboarding starts from a won deal; name the account "
                "or the opportunity id of a won deal."
            )
            data = DeliveryResult(kind="not_won").model_dump(mode="json")
            return CrewResponse(reply=reply, data=data, facts=[{"why": found["why"]}], llm_calls=usage.calls)
        deal: DealOut = found["deal"]
        plan: OnboardingPlan = found["plan"]
        sources: list[Source] = [deal_source(deal)]
        facts = [plan.model_dump(mode="json")]
        await writer.ground(facts, sources)
        status = STATUS.search(request.message) is not None
        kind = "client status report" if status else "onboarding plan introduction"
        who = f"{plan.account or 'the client'} ({plan.product or 'the product'}, deal {plan.deal})"
        if status:
            head = (
                f"Status of the onboarding for {who}, won on {plan.close_date.isoformat()}, "
                f"as of {plan.as_of.isoformat()}:"
            )
        else:
            head = f"Onboarding plan for {who}, won on {plan.close_date.isoformat()}:"
        writer.write(head + (f" ({found['note']}.)" if found.get("note") else ""))
        note = await _note(deps, request, plan, kind, writer, _plan_lines(plan, with_status=status))
        action: ProposedAction
        base: dict[str, Any] = {"deal_id": deal.id, "account_id": deal.account_id, "rep_id": deal.rep_id}
        nxt = next((m for m in plan.milestones if m.status != "done"), None)
        if status and nxt is not None:
            action = ProposedAction(
                kind="create_reminder",
                summary=(
                    f"Remind me of the {nxt.name.lower()} milestone for {plan.account or plan.deal} "
                    f"on {nxt.due.isoformat()}"
                ),
                params={
                    **base,
                    "due_at": nxt.due.isoformat(),
                    "message": f"Onboarding {nxt.name} for {plan.account or plan.deal}: "
                    + "; ".join(t.title for t in nxt.tasks),
                },
            )
        else:
            tasks = plan_tasks(plan)
            action = ProposedAction(
                kind="create_task",
                summary=f"Create {len(tasks)} onboarding tasks for {plan.account or plan.deal}",
                params={**base, "tasks": tasks},
            )
        result = DeliveryResult(kind="status" if status else "plan", plan=plan, note=note)
        return CrewResponse(
            reply=writer.text,
            data=result.model_dump(mode="json"),
            sources=sources,
            facts=facts,
            proposed_action=action,
            llm_calls=usage.calls,
        )
