"""The next-best-action crew: ranked actions for a rep, an account or a deal, each with its reason
and the records behind it, stored as recommendations.

`run(request, deps)`:
1. the scope: the deal named, else the account, else the rep (named, or the user when the user id
   is a rep's name), else everyone; always within the caller's reading (`Caller.read_rep_ids`:
   a manager's "everyone" is their team, a deal, account or rep outside it is refused);
2. the signals are computed by SQL (`tools.recommendations.nba_signals`: late-stage deals, deals stuck in
   their stage, open deals without a follow-up, accounts with past wins and no open deal to
   upsell, recent losses to win back), ranked by their documented scores; an explicit upsell
   question about an account adds its cross-sell signal (products it has not bought);
3. the top N (default 5, "top 3" in the message) are stored as recommendations with their
   sources (`tools.recommendations`: advice is not a customer-facing side effect, so no approval)
   and one Event "nba.recommended";
4. the coach (one LLM call) says where to focus in two sentences without figures; the list itself
   is written from the signals;
5. proposes `create_reminder` for the top action (tomorrow, 09:00 UTC).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from sqlalchemy.orm import Session

from contracts import CrewRequest, CrewResponse, ProposedAction, Source
from crews.common import drop_numeric_sentences, in_session, question_of, reading
from crews.deps import CrewDeps
from crews.nba.models import NbaResult, NbaWording, NextAction
from crews.runner import CrewOutputError, compact_json, kickoff_validated
from observability.llm_meter import usage_scope
from tools import accounts, deals
from tools.accounts import account_purchases, find_reps
from tools.errors import DomainError, Forbidden, NotFound
from tools.recommendations import RecommendationCreate, Signal, nba_signals, store_recommendations
from tools.sources import account_source, deal_source

log = logging.getLogger(__name__)

__all__ = ["run"]

TOP_N = re.compile(
    r"\btop\s+(\d{1,2})\b|\b(\d{1,2})\s+(?:actions|things|next steps|priorities|deals|customers)\b", re.I
)
UPSELL = re.compile(
    r"\b(upsell\w*|up-sell\w*|cross-?sell\w*|expand\w*|expansion|sell (them )?more|add-?on)\b", re.I
)
WORDING_MAX_TOKENS = 120
DEFAULT_N = 5


def _scope(session: Session, request: CrewRequest) -> tuple[str, str | None, dict[str, int]]:
    ents = request.entities
    caller = request.caller
    deal = ents.first("deal")
    if deal is not None:
        d = deals.find_deal(session, deal.key)
        if caller is not None and not caller.may_read_rep(d.rep_id):
            raise Forbidden(f"deal {d.external_id} belongs to another team")
        return "deal", d.external_id, {"deal_id": d.id}
    acc = ents.first("account")
    if acc is not None:
        ref = acc.id if acc.id is not None else acc.key
        try:
            profile = accounts.account_profile(session, ref, rep_ids=reading(request))
        except NotFound:
            raise Forbidden(f"{acc.key} is not among the accounts you can see") from None
        return "account", profile.account.name, {"account_id": profile.account.id}
    rep = ents.first("rep")
    if rep is not None:
        found = find_reps(session, rep.key, limit=1)
        if found:
            if caller is not None and not caller.may_read_rep(found[0].id):
                raise Forbidden(f"{found[0].name}'s deals are outside the deals you can see")
            return "rep", found[0].name, {"rep_id": found[0].id}
    if caller is not None and caller.rep_id is not None and caller.rep_name:
        return "rep", caller.rep_name, {"rep_id": caller.rep_id}  # a rep asking: their own deals
    if request.user_id:
        found = find_reps(session, request.user_id, limit=2)
        if len(found) == 1 and found[0].name.lower() == request.user_id.strip().lower():
            return "rep", found[0].name, {"rep_id": found[0].id}
    return "all", None, {}


def _upsell_signal(session: Session, account_id: int, rep_ids: frozenset[int] | None) -> Signal | None:
    bought = account_purchases(session, [account_id], rep_ids=rep_ids)
    if not bought or bought[0].won_deals == 0 or not bought[0].products_not_won:
        return None
    a = bought[0]
    offer = a.products_not_won[0]
    return Signal(
        kind="upsell",
        score=50,
        action=f"Offer {offer} to {a.account.name} (never bought yet)",
        reason=(
            f"{a.account.name} has won {a.won_deals} deals worth ${a.won_value:,.0f} on "
            f"{', '.join(a.products_won[:3])}; not yet bought: {', '.join(a.products_not_won[:3])}."
        ),
        account=a.account,
        figures={"won_deals": a.won_deals, "won_value": round(a.won_value, 2)},
    )


def _gather_and_store(session: Session, request: CrewRequest) -> dict[str, Any]:
    scope, name, ids = _scope(session, request)
    m = TOP_N.search(request.message)
    n = max(1, min(10, int(m.group(1) or m.group(2)))) if m else DEFAULT_N
    signals = nba_signals(
        session,
        rep_id=ids.get("rep_id"),
        account_id=ids.get("account_id"),
        deal_id=ids.get("deal_id"),
        limit=n,
        rep_ids=reading(request),
    )
    if "account_id" in ids and UPSELL.search(request.message):
        extra = _upsell_signal(session, ids["account_id"], reading(request))
        if extra is not None and not any(s.kind == "upsell" for s in signals):
            signals = [extra, *signals][:n]  # asked for explicitly: it leads
    items = [
        RecommendationCreate(
            rep_id=s.rep_id if s.rep_id is not None else ids.get("rep_id"),
            account_id=s.account.id if s.account else ids.get("account_id"),
            deal_id=s.deal.id if s.deal else ids.get("deal_id"),
            action=s.action,
            reason=s.reason,
            priority=s.score,
            sources={
                "kind": s.kind,
                "deal": s.deal.external_id if s.deal else None,
                "account": s.account.name if s.account else None,
                "figures": s.figures,
            },
        )
        for s in signals
    ]
    stored = store_recommendations(session, items, actor=request.user_id, thread_id=request.thread_id)
    return {"scope": scope, "name": name, "ids": ids, "signals": signals, "stored": stored}


async def _wording(
    deps: CrewDeps, request: CrewRequest, actions: list[NextAction], keep: list[str]
) -> str | None:
    from crews.nba.crew import NbaCrew

    records = [
        {"action": a.action, "why": drop_numeric_sentences(a.reason, keep) or a.kind} for a in actions[:5]
    ]
    try:
        run = await kickoff_validated(
            "nba",
            lambda llm: NbaCrew(llm).crew(),
            {"question": question_of(request), "records": compact_json(records)},
            NbaWording,
            deps.llm,
            max_tokens=WORDING_MAX_TOKENS,
        )
    except CrewOutputError as exc:
        log.info("nba wording failed (%s); replying with the list only", exc.reason)
        return None
    return drop_numeric_sentences(run.output.summary, keep) or None


async def run(request: CrewRequest, deps: CrewDeps) -> CrewResponse:
    """Rank, store and explain next best actions (see the module docstring)."""
    with usage_scope() as usage:
        try:
            found = await in_session(deps, lambda s: _gather_and_store(s, request))
        except DomainError as exc:
            return CrewResponse(reply=f"I couldn't look that up: {exc}.", llm_calls=usage.calls)
        signals: list[Signal] = found["signals"]
        stored = found["stored"]
        actions = [
            NextAction(
                rank=i,
                kind=s.kind,
                action=s.action,
                reason=s.reason,
                score=s.score,
                deal=s.deal.external_id if s.deal else None,
                account=s.account.name if s.account else None,
                recommendation_id=r.id,
            )
            for i, (s, r) in enumerate(zip(signals, stored, strict=True), 1)
        ]
        scope, name = found["scope"], found["name"]
        who = {"deal": f"deal {name}", "account": name, "rep": name, "all": "the team"}[scope]
        if not actions:
            reply = (
                f"Nothing needs action for {who} right now: no open deal is stuck or unattended, "
                "and no upsell is due."
            )
            data = NbaResult(scope=scope, scope_name=name, actions=[]).model_dump(mode="json")
            return CrewResponse(reply=reply, data=data, llm_calls=usage.calls)
        keep = [
            n
            for s in signals
            for n in (s.deal.product_name if s.deal else None, s.account.name if s.account else None)
            if n
        ]
        summary = await _wording(deps, request, actions, keep)
        lines = [f"Next best actions for {who}:"]
        if summary:
            lines.append(summary)
        lines += [f"{a.rank}. {a.action} (priority {a.score}/100). {a.reason}" for a in actions]
        top, first = signals[0], actions[0]
        due = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(9), tzinfo=dt.UTC)
        action = ProposedAction(
            kind="create_reminder",
            summary=f"Remind me tomorrow at 09:00 UTC: {first.action}",
            params={
                "due_at": due.isoformat(),
                "message": first.action,
                "deal_id": top.deal.id if top.deal else None,
                "account_id": top.account.id if top.account else None,
                "rep_id": top.rep_id if top.rep_id is not None else found["ids"].get("rep_id"),
            },
        )
        sources: list[Source] = []
        for s in signals:
            if s.deal is not None:
                sources.append(deal_source(s.deal))
            elif s.account is not None:
                sources.append(account_source(s.account))
        facts = [
            {"action": a.action, "reason": a.reason, "score": a.score, **s.figures}
            for a, s in zip(actions, signals, strict=True)
        ]
        result = NbaResult(scope=scope, scope_name=name, actions=actions, summary=summary)
        return CrewResponse(
            reply="\n".join(lines),
            data=result.model_dump(mode="json"),
            sources=sources,
            facts=facts,
            proposed_action=action,
            llm_calls=usage.calls,
        )
