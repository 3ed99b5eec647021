"""What the scheduled agents file, per rep: SQL picks the records, each becomes an inbox item
(a digest, an alert, a drafted email or an action awaiting approval); nothing is sent or changed
by itself. A deal that needs a touch (follow-up, closure, nurture) gets an email written by a
`Drafter` (the closing crew, in the workflows) when one is given, else a proposed reminder.

- reminder_digest: the rep's reminders due by the end of their local day, in one digest.
- follow_up: open deals with no follow-up scheduled that have sat in their stage over `days`
  days -> a proposed follow-up reminder each; and stuck deals (over their stage's `max_days` in
  `config/pipeline.yaml`) -> one alert to the owner, and one to the owner's manager at twice the
  limit.
- closure: deals in the last open stage for longer than the median sales cycle of won deals ->
  a proposed reminder to ask for the decision.
- nurture: deals in the first two open stages quiet for over `days` days -> a proposed reminder
  to re-engage.
- upsell: accounts of the rep with won deals and no open deal -> a proposed reminder to offer
  the product they have not bought (`crm.insights.nba_signals`).

"Days in stage" is counted at the CRM's reference date (`crm.analytics.reference_date`, as every
answer of the chat counts it); due times are the rep's local 09:00 on the next day. Every item
has a dedupe key of (agent, record, rep's local date): a retried run files nothing twice.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.files import AgentSchedule, load_pipeline
from contracts import ProposedAction
from contracts.notifications import Notification
from crm import analytics, inbox, insights
from crm.filters import DealFilter
from crm.models import Deal, Reminder, SalesRep
from crm.schemas import DealOut, InboxKind
from tools.reminders import OPEN_STATUSES, manager_of, rep_person

#: Local hour a proposed reminder falls due (the next day).
DUE_HOUR = 9


@dataclass
class Filed:
    """What one run filed: counts per item kind, and the notifications of new items."""

    counts: dict[str, int] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, UTC when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def rep_time_zones(session: Session) -> list[str]:
    """The distinct time zones of the reps (["UTC"] when there are no reps)."""
    zones = sorted(set(session.scalars(select(SalesRep.time_zone).distinct())))
    return zones or ["UTC"]


def _label(d: DealOut) -> str:
    what = f" ({d.product_name})" if d.product_name else ""
    return f"{d.account_name or 'no account'}{what}, deal {d.external_id}"


#: Writes a follow-up email for a deal (`brief`: what it is for): the `queue_email` action to
#: approve and the email's text, or None when it cannot (the closing crew, in the workflows).
Drafter = Callable[[DealOut, str], "tuple[ProposedAction, str] | None"]


@dataclass
class Proposal:
    """A deal that needs a touch: filed as a drafted email when a drafter writes one, else as a
    proposed reminder (`message`) to approve."""

    deal: DealOut
    title: str
    message: str
    body: str
    brief: str
    key: str


class AgentRun:
    def __init__(self, session: Session, agent: str, rep: SalesRep, now: dt.datetime, filed: Filed) -> None:
        self.session, self.agent, self.rep, self.filed = session, agent, rep, filed
        self.pending: list[Proposal] = []
        self.local_now = now.astimezone(zone(rep.time_zone))
        self.day = self.local_now.date().isoformat()
        tomorrow = self.local_now.date() + dt.timedelta(days=1)
        self.due = dt.datetime.combine(tomorrow, dt.time(DUE_HOUR), tzinfo=zone(rep.time_zone))

    def file(
        self,
        kind: InboxKind,
        key: str,
        title: str,
        body: str,
        *,
        deal: DealOut | None = None,
        action: ProposedAction | None = None,
        recipient: str | None = None,
        rep_id: int | None = -1,
        once: bool = False,
    ) -> None:
        """File an item for the rep (or `recipient` / `rep_id`), keyed by (agent, `key`, local day),
        or by (agent, `key`) alone when `once`."""
        item, created = inbox.file_item(
            self.session,
            recipient=recipient or self.rep.name,
            rep_id=self.rep.id if rep_id == -1 else rep_id,
            kind=kind,
            title=title,
            body=body,
            action=action.model_dump(mode="json") if action else None,
            deal_id=deal.id if deal else None,
            account_id=deal.account_id if deal else None,
            dedupe_key=f"{self.agent}:{key}" + ("" if once else f":{self.day}"),
        )
        if created:
            self.filed.counts[kind] = self.filed.counts.get(kind, 0) + 1
            self.filed.notifications.append(inbox.notification_of(item))

    def propose(self, deal: DealOut, title: str, message: str, body: str, brief: str) -> None:
        """Keep a proposal for `file_proposal` (one filed today already is left out, so a repeated
        run drafts nothing twice)."""
        key = f"deal-{deal.id}"
        if inbox.is_filed(self.session, f"{self.agent}:{key}:{self.day}"):
            return
        self.pending.append(Proposal(deal, title, message, body, brief, key))

    def file_proposal(self, p: Proposal, drafted: tuple[ProposedAction, str] | None) -> None:
        """File `p`: the drafted email to approve, else a reminder to approve."""
        if drafted is not None:
            action, text = drafted
            self.file("draft", p.key, p.title, f"{p.body}\n\n{text}", deal=p.deal, action=action)
            return
        action = ProposedAction(
            kind="create_reminder",
            summary=f"Remind me on {self.due.date().isoformat()}: {p.message}",
            params={
                "deal_id": p.deal.id,
                "rep_id": self.rep.id,
                "due_at": self.due.isoformat(),
                "message": p.message,
            },
        )
        self.file("action", p.key, p.title, p.body, deal=p.deal, action=action)


def _open_reminder_deals(session: Session, deal_ids: list[int]) -> set[int]:
    if not deal_ids:
        return set()
    rows = session.scalars(
        select(Reminder.deal_id).where(Reminder.deal_id.in_(deal_ids), Reminder.status.in_(OPEN_STATUSES))
    )
    return {r for r in rows if r is not None}


def _in_stage(session: Session, rep_id: int, stages: list[str], as_of: dt.date) -> list[Any]:
    out = []
    for key in stages:
        out.extend(
            analytics.stuck_deals(session, key, 0, as_of, filter=DealFilter(rep=rep_id), limit=100_000)
        )
    return out


def _median_cycle_days(session: Session) -> int | None:
    won = load_pipeline().won_key
    rows = session.execute(
        select(Deal.engage_date, Deal.close_date).where(
            Deal.stage == won, Deal.engage_date.isnot(None), Deal.close_date.isnot(None)
        )
    ).all()
    days = [(c - e).days for e, c in rows if e is not None and c is not None and c >= e]
    return int(statistics.median(days)) if days else None


def run_for_rep(
    session: Session, agent: str, rep: SalesRep, schedule: AgentSchedule, now: dt.datetime, filed: Filed
) -> AgentRun:
    """File what `agent` finds for `rep` (at most `schedule.max_items` items of each kind); the
    deals that need an email or a reminder are left in the run's `pending`, for `file_proposal`
    (after drafting, outside the transaction, when a drafter is given)."""
    run = AgentRun(session, agent, rep, now, filed)
    cap = schedule.max_items
    pipeline = load_pipeline()
    as_of = analytics.reference_date(session)
    if agent == "reminder_digest":
        end_of_day = dt.datetime.combine(
            run.local_now.date() + dt.timedelta(days=1), dt.time(0), tzinfo=run.local_now.tzinfo
        )
        due = session.scalars(
            select(Reminder)
            .where(
                Reminder.rep_id == rep.id, Reminder.status.in_(OPEN_STATUSES), Reminder.due_at < end_of_day
            )
            .order_by(Reminder.due_at)
        ).all()
        if due:
            lines = [
                f"- {r.due_at.astimezone(run.local_now.tzinfo):%Y-%m-%d %H:%M}: {r.message}" for r in due[:50]
            ]
            more = f"\n... and {len(due) - 50} more" if len(due) > 50 else ""
            run.file("digest", f"rep-{rep.id}", f"{len(due)} reminder(s) due today", "\n".join(lines) + more)
    elif agent == "follow_up":
        limit = schedule.days or 14
        rows = _in_stage(session, rep.id, pipeline.open_keys, as_of)
        reminded = _open_reminder_deals(session, [r.deal.id for r in rows])
        picked = [r for r in rows if r.days_in_stage > limit and r.deal.id not in reminded]
        for r in sorted(picked, key=lambda r: -r.days_in_stage)[:cap]:
            run.propose(
                r.deal,
                f"Follow up: {_label(r.deal)}",
                f"Follow up with {r.deal.account_name or 'the buyer'} on deal {r.deal.external_id}",
                f"No follow-up is scheduled and it has been in {r.deal.stage_name} "
                f"for {r.days_in_stage} days.",
                "a follow-up after a quiet spell, with one clear next step",
            )
        _stuck_alerts(session, run, rows, cap)
    elif agent == "closure":
        cycle = _median_cycle_days(session)
        last_open = pipeline.open_keys[-1:]
        rows = _in_stage(session, rep.id, last_open, as_of)
        late = [
            r
            for r in rows
            if cycle is not None
            and r.deal.engage_date is not None
            and (as_of - r.deal.engage_date).days > cycle
        ]
        for r in sorted(late, key=lambda r: r.deal.engage_date)[:cap]:
            age = (as_of - r.deal.engage_date).days
            run.propose(
                r.deal,
                f"Ask for the decision: {_label(r.deal)}",
                f"Ask {r.deal.account_name or 'the buyer'} for a decision on deal {r.deal.external_id}",
                f"It is in {r.deal.stage_name}, engaged {age} days ago; "
                f"won deals close in a median of {cycle} days.",
                "a polite request for their decision, offering to answer what is still open",
            )
    elif agent == "nurture":
        quiet = schedule.days or 30
        rows = _in_stage(session, rep.id, pipeline.open_keys[:2], as_of)
        reminded = _open_reminder_deals(session, [r.deal.id for r in rows])
        picked = [r for r in rows if r.days_in_stage > quiet and r.deal.id not in reminded]
        for r in sorted(picked, key=lambda r: -r.days_in_stage)[:cap]:
            run.propose(
                r.deal,
                f"Re-engage: {_label(r.deal)}",
                f"Re-engage {r.deal.account_name or 'the lead'} on deal {r.deal.external_id}",
                f"It has been quiet in {r.deal.stage_name} for {r.days_in_stage} days.",
                "a light touch to re-engage, with something useful for them",
            )
    elif agent == "upsell":
        for sig in insights.nba_signals(session, rep_id=rep.id, as_of=as_of, limit=50):
            if sig.kind != "upsell" or sig.account is None or cap <= 0:
                continue
            cap -= 1
            action = ProposedAction(
                kind="create_reminder",
                summary=f"Remind me on {run.due.date().isoformat()}: {sig.action}",
                params={
                    "account_id": sig.account.id,
                    "rep_id": rep.id,
                    "due_at": run.due.isoformat(),
                    "message": sig.action,
                },
            )
            run.file("action", f"account-{sig.account.id}", sig.action, sig.reason, action=action)
    else:
        raise ValueError(f"unknown agent {agent!r}")
    return run


def _stuck_alerts(session: Session, run: AgentRun, rows: list[Any], cap: int) -> None:
    """One alert per stuck deal and stage to its owner; one more to the manager past twice the
    stage's `max_days`."""
    limits = {s.key: s.max_days for s in load_pipeline().stages if s.max_days}
    stuck = [r for r in rows if r.deal.stage in limits and r.days_in_stage > limits[r.deal.stage]]
    manager = manager_of(session, rep_person(session, run.rep.id))
    for r in sorted(stuck, key=lambda r: -r.days_in_stage)[:cap]:
        limit = limits[r.deal.stage]
        key = f"stuck-{r.deal.id}-{r.deal.stage}-{r.in_stage_since.isoformat()}"
        body = f"In {r.deal.stage_name} for {r.days_in_stage} days; the limit is {limit}."
        # one alert per stage entry, not one per day
        run.file("alert", key, f"Stuck deal: {_label(r.deal)}", body, deal=r.deal, once=True)
        if manager is not None and r.days_in_stage > 2 * limit:
            run.file(
                "alert",
                key + "-manager",
                f"Stuck deal of {run.rep.name}: {_label(r.deal)}",
                body,
                deal=r.deal,
                recipient=manager.name,
                rep_id=manager.rep_id,
                once=True,
            )


def reps_in(session: Session, time_zone: str) -> list[SalesRep]:
    """The reps whose time zone is `time_zone`, by id."""
    return list(
        session.scalars(select(SalesRep).where(SalesRep.time_zone == time_zone).order_by(SalesRep.id))
    )


def run_agent(
    session: Session, agent: str, schedules: Mapping[str, AgentSchedule], time_zone: str, now: dt.datetime
) -> Filed:
    """Run `agent` for every rep whose time zone is `time_zone`, in `session`, with no drafting
    (the deals that need a touch get a proposed reminder). Raises ValueError for an agent not in
    `schedules`."""
    if agent not in schedules:
        raise ValueError(f"unknown agent {agent!r}; configured: {sorted(schedules)}")
    filed = Filed()
    for rep in reps_in(session, time_zone):
        run = run_for_rep(session, agent, rep, schedules[agent], now, filed)
        for proposal in run.pending:
            run.file_proposal(proposal, None)
    return filed
