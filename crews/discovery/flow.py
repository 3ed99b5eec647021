"""The discovery crew: account and contact research, lead qualification (BANT) with a lead score,
and factual account questions.

`run(request, deps)` first gathers records with the tools, then (only when words are needed)
kicks off the researcher, then builds the reply:
1. factual questions (sector, subsidiaries, manager, accounts in a sector, prospects...) are
   answered from the CRM (`tools.account_facts`) with the answer's template sentence, no LLM
   call (the sentence already states the fact; a model's rewording cost 3-6 s on 2 cores); deal
   figures asked here are computed as the pipeline crew does (`tools.query_plan`,
   `tools.pipeline_answers`);
2. "score our prospecting deals" ranks open deals as leads (`tools.deal_leads`, no LLM);
3. "qualify this lead: ..." -> the researcher judges BANT from the text and the CRM records,
   rules catch explicit signals, the score is computed (`crews.discovery.scoring.lead_score`);
4. a question over the CRM's records the rules did not answer ("which medical accounts with
   more than 1,000 employees ...") goes to the query planner (`crews.planner`: the semantic
   layer, one LLM call, SQL figures);
5. otherwise, for a named account: profile, history, contacts and memory go to the researcher,
   which writes a briefing; the key facts are appended from the records (never from the model).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from contracts import CrewRequest, CrewResponse, Entities, EntityRef, Source
from crews.common import drop_numeric_sentences, in_session, question_of, reading, strip_ungrounded
from crews.deps import CrewDeps
from crews.discovery.models import BantAssessment, DiscoveryResult, ResearchBrief
from crews.discovery.scoring import lead_score, merge_bant
from crews.planner import answer_over_crm
from crews.runner import CrewOutputError, compact_json, kickoff_validated
from observability.llm_meter import usage_scope
from tools import accounts, memory
from tools.account_facts import safe_answer_fact
from tools.accounts import AccountBrief
from tools.answers import Answer
from tools.deal_leads import score_deal_leads
from tools.errors import DomainError, NotFound
from tools.formatting import count, money
from tools.pipeline_answers import compute
from tools.query_plan import QueryPlan, asks_about_records, deal_filter, plan_from_rules
from tools.semantic_words import read_question
from tools.sources import account_source, deal_source

log = logging.getLogger(__name__)

__all__ = ["run"]

QUALIFY = re.compile(
    r"\b(qualif\w*|bant|lead score|score (this|the|a|my) (new )?(lead|prospect)|is (this|it|she|"
    r"he) a (good|real) (lead|prospect)|"
    r"worth pursuing|good fit)\b",
    re.I,
)
RANK_LEADS = re.compile(
    r"\b(score|rank|rate|prioriti[sz]e|strongest|best|hottest|most promising)\b.{0,40}\b(deals|"
    r"leads|prospects|opportunities)\b|"
    r"\b(deals|leads|prospects|opportunities)\b.{0,40}\b(strongest|most promising|best|hottest)\b",
    re.I,
)
DEAL_WORDS = re.compile(r"\b(deals?|won|revenue|win rate|pipeline|opportunit\w*|sold)\b", re.I)

#: Reply caps (tokens) of the researcher: a briefing, a BANT judgement.
RESEARCH_MAX_TOKENS = 220
QUALIFY_MAX_TOKENS = 200


def _researcher(task: str) -> Any:
    from crews.discovery.crew import DiscoveryCrew

    if task == "research":
        return lambda llm: DiscoveryCrew(llm).research_crew()
    return lambda llm: DiscoveryCrew(llm).qualify_crew()


def _iso(d: Any) -> str | None:
    return d.isoformat() if d is not None else None


def _account_records(
    session: Session, ref: int | str, embedder: Any, question: str, rep_ids: frozenset[int] | None = None
) -> dict[str, Any]:
    """What the researcher reads about an account (kept short: prompt tokens cost ~8 ms each on
    the local model) plus `_full` (the figures for the reply) and `_sources`; deal figures and
    history of the deals of `rep_ids` only (the caller's scope; None: all)."""
    profile = accounts.account_profile(session, ref, rep_ids=rep_ids)
    deals = accounts.recent_deals(session, profile.account.id, limit=3, rep_ids=rep_ids)
    people = accounts.contacts(session, profile.account.id, limit=3, rep_ids=rep_ids)
    bought = accounts.products_won(session, profile.account.id, rep_ids=rep_ids)
    hits = memory.search_memory(session, embedder, question, k=2, account_id=profile.account.id)
    a, m = profile.account, profile.metrics
    return {
        "name": a.name,
        "sector": a.sector,
        "location": a.office_location,
        "parent": profile.parent.name if profile.parent else None,
        "subsidiaries": [s.name for s in profile.subsidiaries],
        "deals": {"open": m.open, "won": m.won, "lost": m.lost},
        "products_bought": bought[:3],
        "recent_deals": [
            {
                "product": d.product_name,
                "stage": d.stage_name,
                "date": _iso(d.close_date or d.engage_date),
            }
            for d in deals
        ],
        "contacts": [f"{c.first_name} {c.last_name}" + (f", {c.title}" if c.title else "") for c in people],
        "notes": [h.content for h in hits],
        "_full": {
            "id": a.id,
            "name": a.name,
            "sector": a.sector,
            "employees": a.employees,
            "revenue_musd": a.revenue_musd,
            "parent": profile.parent.name if profile.parent else None,
            "total": m.deals,
            "open": m.open,
            "won": m.won,
            "lost": m.lost,
            "won_revenue": round(m.won_value, 2),
            "win_rate_pct": None if m.win_rate is None else round(m.win_rate, 1),
            "contacts": [
                f"{c.first_name} {c.last_name}" + (f" ({c.title})" if c.title else "") for c in people
            ],
        },
        "_sources": [deal_source(d) for d in deals],
    }


def _key_facts(full: dict[str, Any]) -> str:
    """The figures of an account as a sentence built from the records (never from the model)."""
    parts = []
    if full["sector"]:
        parts.append(f"{full['sector']} sector")
    if full["employees"]:
        parts.append(f"{full['employees']:,} employees")
    if full["revenue_musd"]:
        parts.append(f"annual revenue {money(full['revenue_musd'])} million")
    if full["parent"]:
        parts.append(f"subsidiary of {full['parent']}")
    line = f"Key facts on {full['name']}: " + (", ".join(parts) + "." if parts else "")
    line += f" Deals: {count(full['total'], 'deal')}, {full['open']} open, {full['won']} won"
    line += f" ({money(full['won_revenue'])}), {full['lost']} lost"
    line += f", win rate {full['win_rate_pct']:.1f}%." if full["win_rate_pct"] is not None else "."
    if full["contacts"]:
        line += " Contacts: " + ", ".join(full["contacts"]) + "."
    return line


class _NotVisible:
    """An account outside the caller's reading (or gone since its name was resolved)."""


#: The records of a briefing (`_account_records`), or `_NotVisible()`.
Records = dict[str, Any] | _NotVisible


def _research_records(session: Session, deps: CrewDeps, request: CrewRequest, account: EntityRef) -> Records:
    """`_account_records` of `account` in the caller's reading, or `_NotVisible()`."""
    ref = account.id if account.id is not None else account.key
    try:
        return _account_records(session, ref, deps.embedder, request.message, reading(request))
    except NotFound:
        return _NotVisible()


async def _research(deps: CrewDeps, request: CrewRequest, account: EntityRef, rec: Records) -> CrewResponse:
    """The briefing on `account` from its records (`_research_records`, read by the caller)."""
    if isinstance(rec, _NotVisible):
        # outside the caller's reading (or gone since the name was resolved): nothing shown
        return CrewResponse(
            reply=f"{account.key} is not among the accounts you can see, so I can't research it.",
            data=DiscoveryResult(kind="research", account=None).model_dump(mode="json"),
            facts=[{"account": account.key, "visible": False}],
        )
    full = rec.pop("_full")
    sources: list[Source] = [
        account_source(AccountBrief(id=full["id"], name=full["name"], sector=full["sector"])),
        *rec.pop("_sources"),
    ]
    records = compact_json(rec)
    key = _key_facts(full)
    brief: ResearchBrief | None = None
    try:
        run = await kickoff_validated(
            "discovery",
            _researcher("research"),
            {"question": question_of(request), "records": records},
            ResearchBrief,
            deps.llm,
            max_tokens=RESEARCH_MAX_TOKENS,
        )
        brief = run.output
    except CrewOutputError as exc:
        log.info("discovery research wording failed (%s); replying with the records", exc.reason)
    if brief is not None:
        keep = [full["name"], *rec.get("products_bought", []), *rec.get("subsidiaries", [])]
        summary = drop_numeric_sentences(brief.summary, keep)
        points = [p for p in (drop_numeric_sentences(p, keep) for p in brief.talking_points[:3]) if p]
        brief = ResearchBrief(summary=summary or key, talking_points=points)
        reply = summary + "\n\n" + key if summary else key
        if points:
            reply += "\n\nTalking points:\n" + "\n".join(f"- {p}" for p in points)
    else:
        reply = key
    result = DiscoveryResult(kind="research", account=full["name"], brief=brief, figures=full)
    return CrewResponse(reply=reply, data=result.model_dump(mode="json"), sources=sources, facts=[full, rec])


def _lead_account(
    session: Session, entities: Entities, rep_ids: frozenset[int] | None
) -> dict[str, Any] | None:
    e = entities.first("account")
    if e is None:
        return None
    try:
        profile = accounts.account_profile(session, e.id if e.id is not None else e.key, rep_ids=rep_ids)
    except DomainError:
        return None
    return {
        "name": profile.account.name,
        "sector": profile.account.sector,
        "employees": profile.account.employees,
        "won_deals": profile.metrics.won,
        "open_deals": profile.metrics.open,
    }


async def _qualify(deps: CrewDeps, request: CrewRequest) -> CrewResponse:
    account = await in_session(deps, lambda s: _lead_account(s, request.entities, reading(request)))
    records = compact_json(account or {"account": "not in the CRM"})
    judged: BantAssessment | None = None
    try:
        run = await kickoff_validated(
            "discovery",
            _researcher("qualify"),
            {"question": question_of(request), "records": records},
            BantAssessment,
            deps.llm,
            max_tokens=QUALIFY_MAX_TOKENS,
        )
        judged = run.output
    except CrewOutputError as exc:
        log.info("BANT judgement failed (%s); scoring from the explicit signals only", exc.reason)
    bant = merge_bant(judged, request.message)
    score = lead_score(bant, request.message, account)
    lines = [f"Lead score: {score.score}/100."]
    lines += [f"- {r}" for r in score.reasons]
    next_step = strip_ungrounded(bant.next_step, [request.message]) if bant.next_step else ""
    if next_step:
        lines.append(f"Next step: {next_step}")
    result = DiscoveryResult(
        kind="qualification", account=account["name"] if account else None, bant=bant, lead_score=score
    )
    # the reasons carry each criterion's points ("+20"), which the reply prints line by line
    facts = [
        {"lead_score": score.score, "reasons": score.reasons, "bant": bant.model_dump(), "account": account}
    ]
    sources = [
        Source(kind="lead", id="lead", label="Lead described in the message", data={"text": request.message})
    ]
    return CrewResponse(
        reply="\n".join(lines), data=result.model_dump(mode="json"), sources=sources, facts=facts
    )


async def _rank_leads(deps: CrewDeps, request: CrewRequest) -> CrewResponse:
    stages = [e.key for e in request.entities.of("stage")]
    f = deal_filter(QueryPlan(metric="deals"), request.entities, request.message)
    f = f.model_copy(update={"status": "open", "stages": stages or None, "rep_ids": reading(request)})
    leads = await in_session(deps, lambda s: score_deal_leads(s, f, limit=5))
    if not leads:
        reply = "There are no open deals to score."
    else:
        items = [
            f"{i}. {lead.deal} ({lead.account or 'no account'}, {lead.product or 'no product'}, "
            f"{lead.stage}): "
            f"{lead.score}/100: " + "; ".join(lead.reasons)
            for i, lead in enumerate(leads, 1)
        ]
        reply = "The strongest open leads:\n" + "\n".join(items)
    result = DiscoveryResult(kind="lead_ranking", leads=leads)
    facts = [lead.model_dump() for lead in leads]
    sources = [
        Source(kind="deal", id=lead.deal, label=f"Deal {lead.deal}", data={"score": lead.score})
        for lead in leads
    ]
    return CrewResponse(reply=reply, data=result.model_dump(mode="json"), sources=sources, facts=facts)


def _pipeline_fact(session: Session, request: CrewRequest) -> Answer | None:
    plan = plan_from_rules(request.message, request.entities)
    if plan is None or plan.metric in ("summary", "deal_list") or not DEAL_WORDS.search(request.message):
        return None
    try:
        return compute(session, plan, request.entities, request.message, rep_ids=reading(request))
    except DomainError:
        return None


#: Asking to research or brief on an account (work for the researcher), not for a figure.
RESEARCH = re.compile(
    r"\b(research|brief\w*|background|tell me about|what do (we|you) know|overview|profile|prepare|"
    r"dig into|look into|learn about|who are they)\b",
    re.I,
)


def _data_question(message: str, entities: Entities) -> bool:
    """A question over the CRM's records that the rules did not answer ("which medical accounts
    with more than 1,000 employees ..."), not a request to research an account or qualify a
    lead: the query planner answers it (`crews.planner`)."""
    if RESEARCH.search(message) or QUALIFY.search(message):
        return False
    return asks_about_records(message, entities) or read_question(message).measure is not None


@dataclass(frozen=True)
class _FirstReads:
    """What one transaction reads before any model call: a factual answer (`fact`), else a deal
    figure (`deal_fact`), else, for a named account when the question is not one for the query
    planner, the briefing's records (`records`, see `_research_records`); None where not read."""

    fact: Answer | None = None
    deal_fact: Answer | None = None
    records: Records | None = None


def _first_reads(session: Session, deps: CrewDeps, request: CrewRequest) -> _FirstReads:
    """The reads of `run` that need no model, in one transaction (one worker-thread hop and one
    pooled connection for the turn's first answer, not three)."""
    message, entities = request.message, request.entities
    fact = safe_answer_fact(session, message, entities, rep_ids=reading(request))
    if fact is not None:
        return _FirstReads(fact=fact)
    deal_fact = _pipeline_fact(session, request)
    if deal_fact is not None:
        return _FirstReads(deal_fact=deal_fact)
    account = entities.first("account")
    if account is None or _data_question(message, entities):
        return _FirstReads()
    return _FirstReads(records=_research_records(session, deps, request, account))


def _answer(answer: Answer, kind: str) -> CrewResponse:
    result = DiscoveryResult(kind=kind, figures=answer.data)  # type: ignore[arg-type]
    return CrewResponse(
        reply=answer.draft, data=result.model_dump(mode="json"), sources=answer.sources, facts=answer.facts
    )


async def run(request: CrewRequest, deps: CrewDeps) -> CrewResponse:
    """Research, qualify or answer (see the module docstring)."""
    message, entities = request.message, request.entities
    with usage_scope() as usage:
        if QUALIFY.search(message) and not RANK_LEADS.search(message):
            response = await _qualify(deps, request)
        elif RANK_LEADS.search(message) and entities.first("account") is None:
            response = await _rank_leads(deps, request)
        else:
            first = await in_session(deps, lambda s: _first_reads(s, deps, request))
            account = entities.first("account")
            answer = None
            if first.fact is None and first.deal_fact is None and _data_question(message, entities):
                answer = await answer_over_crm(deps, request, reading(request))
            if first.fact is not None:
                response = _answer(first.fact, "fact")
            elif first.deal_fact is not None:
                response = _answer(first.deal_fact, "pipeline_fact")
            elif answer is not None:
                response = _answer(answer, "fact")  # a question over the CRM's records
            elif account is not None:
                records = first.records
                if records is None:  # the planner had nothing to say: a briefing after all
                    records = await in_session(deps, lambda s: _research_records(s, deps, request, account))
                response = await _research(deps, request, account, records)
            elif QUALIFY.search(message) or re.search(r"\b(lead|prospect)\b", message, re.I):
                response = await _qualify(deps, request)
            else:
                response = CrewResponse(
                    reply="Which account, contact or lead should I look into? Name it and I'll pull "
                    "what the "
                    "CRM has on it.",
                    data=DiscoveryResult(kind="unknown").model_dump(mode="json"),
                )
        return response.model_copy(update={"llm_calls": usage.calls})
