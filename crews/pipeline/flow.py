"""The pipeline crew: sales analytics and deal operations.

`run(request, deps)`:
1. a stage move ("move deal 1C1I7A6R to negotiation") is checked against the pipeline's entry
   rules by a dry run (`tools.deals.check_stage_move`) and proposed as a `move_stage` action,
   never executed here (no LLM call);
2. a question about an account's or rep's attributes (sector, manager, subsidiaries, accounts in
   a sector) is answered as the discovery crew does (`tools.account_facts`); a deal named
   without a question about figures gets its record;
3. otherwise a query plan: rules first (`tools.query_plan.plan_from_rules`), then, for a short
   follow-up, the rules' plan of the previous question (`follow_up_plan`); the tools compute the
   figures (`tools.pipeline_answers.compute`);
4. when neither gave a plan, the planner crew (one LLM call, JSON constrained to the semantic
   layer's closed lists: `tools.semantic_plan.SemanticPlan`) fills a query over the whole
   CRM, which SQL computes (`crm.semantic`); when it cannot, the records named get their
   summary, and a question naming nothing gets what Flowstate can answer instead.
Every figure is computed by SQL; `facts` carries them and `sources` the records. The reply is the
computed answer's template sentence (`tools.answers.Answer.draft`), not a model's rewording of
it: the template already states the figure, its scope and its period, and rewording it cost one
LLM call per turn (about 300 prompt and 40 generated tokens, 3-6 s on 2 cores) for the same
figures. A question the rules plan therefore needs no LLM call at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from sqlalchemy.orm import Session

from config.files import load_pipeline
from contracts import CrewRequest, CrewResponse, Entities, ProposedAction
from contracts.identity import Caller
from crews.common import in_session, reading
from crews.deps import CrewDeps
from crews.pipeline.models import PipelineResult
from crews.pipeline.requests import add_tasks, remind, which_deal
from crews.planner import answer_over_crm
from observability.llm_meter import usage_scope
from tools import deals
from tools.account_facts import safe_answer_fact
from tools.action_requests import read_request, won_value
from tools.answers import Answer
from tools.deal_comparisons import special_answer
from tools.errors import DomainError
from tools.formatting import money
from tools.pipeline_answers import compute
from tools.query_plan import QueryPlan, plan_from_rules
from tools.reminders import local_now
from tools.semantic_answers import what_i_can_answer
from tools.sources import deal_source

log = logging.getLogger(__name__)

__all__ = ["detect_stage_move", "follow_up_plan", "run"]

MOVE_VERB = re.compile(
    r"\b(move|moving|moved|advance|push|progress|promote|bump|shift|transition|set|put|change|update|"
    r"mark|close|reopen|take)\b",
    re.I,
)
TO_STAGE = re.compile(
    r"\b(?:to|into|as|at)\s+(?:the\s+)?(?:stage\s+)?([a-z][a-z ]{1,30}?)(?:\s+stage)?\s*(?:[.!?,]|$)", re.I
)


def detect_stage_move(message: str, entities: Entities) -> str | None:
    """The target stage key when `message` asks to move a deal ("move deal X to negotiation",
    "mark 1C1I7A6R as won"), else None. The target is the stage named after "to/into/as", else
    the last stage named."""
    if not MOVE_VERB.search(message):
        return None
    pipeline = load_pipeline()
    m = TO_STAGE.search(message)
    if m:
        words = m.group(1).strip()
        for n in range(len(words.split()), 0, -1):
            stage = pipeline.resolve(" ".join(words.split()[:n]))
            if stage is not None:
                return stage.key
    stages = entities.of("stage")
    if stages:
        return stages[-1].key
    return None


def _not_yours(ref: str, verb: str) -> CrewResponse:
    """The honest answer about a deal outside the caller's scope (no action, no record shown)."""
    return CrewResponse(
        reply=f"Deal {ref} belongs to another team; you can't {verb} it.",
        data={"deal": ref, "allowed": False},
        facts=[{"deal": ref, "allowed": False, "reason": "another team's deal"}],
    )


def _move(
    session: Session,
    message: str,
    entities: Entities,
    stage: str,
    caller: Caller | None = None,
    *,
    note: str | None = None,
) -> CrewResponse:
    target = load_pipeline().get(stage)
    assert target is not None
    pick = deals.deal_for_request(session, entities, caller)
    if pick.deal is None:
        return which_deal(pick, entities, f"move to {target.name}")
    ref = pick.deal.external_id
    if caller is not None:
        # refused before the dry run: another team's deal gets no proposal, and no details
        try:
            owner = deals.find_deal(session, ref).rep_id
        except DomainError:
            owner = None  # the dry run below says it does not exist
        else:
            if not caller.may_act_for_rep(owner):
                return _not_yours(ref, "move")
    value = won_value(message) if target.won else None
    if target.won and value is None and pick.deal.value is None:
        # Closed Won needs the deal's value: ask for it rather than propose a move that fails
        return CrewResponse(
            reply=f"What value did deal {ref} ({pick.deal.account_name or 'no account'}, "
            f"{pick.deal.product_name or 'no product'}) close at? Tell me (e.g. 'won at $4,500') "
            f"and I'll propose moving it to {target.name}.",
            data={"deal": ref, "missing": "value"},
            sources=[deal_source(pick.deal)],
        )
    check = deals.check_stage_move(session, ref, stage, value=value)
    if not check.ok or check.deal is None:
        reply = f"I can't move deal {ref} to {target.name}: {check.reason}."
        sources = [deal_source(check.deal)] if check.deal else []
        return CrewResponse(
            reply=reply,
            data={"check": check.model_dump(mode="json")},
            sources=sources,
            facts=[{"deal": ref, "to_stage": stage, "allowed": False, "reason": check.reason}],
        )
    d = check.deal
    params: dict[str, Any] = {"deal": d.external_id, "deal_id": d.id, "stage": check.to_stage}
    if value is not None:
        params["value"] = value
    if note and not target.won and target.closed:
        params["note"] = note
    fills = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in check.fills.items() if k not in params)
    what = f"{d.account_name or 'no account'}, {d.product_name or 'no product'}"
    summary = f"Move deal {d.external_id} ({what}) from {d.stage_name} to {check.to_stage_name}"
    reply = f"Deal {d.external_id} ({what}) is in {d.stage_name}. I can move it to {check.to_stage_name}"
    if value is not None:
        reply += f" with a value of {money(value)}"
    if "note" in params:
        reply += f" (reason: {params['note']})"
    reply += f" (this also sets {fills})" if fills else ""
    reply += "; approve to go ahead."
    return CrewResponse(
        reply=reply,
        data={"check": check.model_dump(mode="json")},
        sources=[deal_source(d)],
        facts=[
            {
                "deal": d.external_id,
                "from_stage": d.stage,
                "to_stage": check.to_stage,
                "allowed": True,
                **({"value": value} if value is not None else {}),
            }
        ],
        proposed_action=ProposedAction(kind="move_stage", summary=summary, params=params),
    )


def _deal_info(session: Session, ref: str, caller: Caller | None = None) -> Answer:
    d = deals.find_deal(session, ref)
    if caller is not None and not caller.may_read_rep(d.rep_id):
        refused = _not_yours(d.external_id, "see")
        return Answer(refused.reply, refused.facts, [], data=refused.data)
    parts = [f"Deal {d.external_id}"]
    parts.append(f"with {d.account_name}" if d.account_name else "with no account yet")
    if d.product_name:
        parts.append(f"for {d.product_name}")
    if d.rep_name:
        parts.append(f"(rep {d.rep_name})")
    text = " ".join(parts) + f" is in {d.stage_name}"
    details = []
    if d.engage_date:
        details.append(f"engaged {d.engage_date.isoformat()}")
    if d.close_date:
        details.append(f"closed {d.close_date.isoformat()}")
    if d.value is not None:
        details.append(f"value {money(d.value)}")
    draft = text + (": " + ", ".join(details) if details else "") + "."
    return Answer(draft, [d.model_dump(mode="json")], [deal_source(d)], data={"deal": d.external_id})


#: Asking for one deal's record ("show me the open GTK 500 deal with Warephase", "what's the
#: status of the Hatfan opportunity"): one deal, no figure asked for.
_SHOW_ONE_DEAL = re.compile(
    r"^\s*(?:(?:ok|so|and|please)[\s,]+)*(?:show|pull up|open up|find|look up|tell me about|give me|"
    r"what'?s|what is|where(?:'s| is| are| do we stand with)|status of|details of)\b"
    r"[^?]*\b(?:deal|opportunity)\b(?!s)",
    re.I,
)


def _named_deal(session: Session, entities: Entities, caller: Caller | None) -> Answer:
    """The record of the deal an account (and product) names, or the account's open deals when
    they name several."""
    pick = deals.deal_for_request(session, entities, caller)
    if pick.deal is not None:
        return _deal_info(session, pick.deal.external_id, caller)
    asked = which_deal(pick, entities, "show")
    return Answer(asked.reply, asked.facts, asked.sources, data=asked.data)


#: A message the rules cannot plan and this short (words) may be a follow-up of the previous
#: question ("what about Cassey Cress?", "and in 2016?"): see `follow_up_plan`.
FOLLOW_UP_MAX_WORDS = 8


def follow_up_plan(request: CrewRequest) -> QueryPlan | None:
    """The plan of the rep's previous question in the thread, read with this message's entities
    (the resolver already put the new name or period in place of the old one), when this message
    is short and the rules planned the previous one; else None. No LLM call: "How many deals has
    Kary Hendrixson won?" then "what about Cassey Cress?" counts Cassey Cress's won deals."""
    if len(request.message.split()) > FOLLOW_UP_MAX_WORDS:
        return None
    previous = next((t.content for t in reversed(request.history) if t.role == "user"), None)
    if previous is None:
        return None
    plan = plan_from_rules(previous, request.entities)
    return plan.model_copy(update={"source": "follow-up"}) if plan is not None else None


#: A message that starts by asking to move a deal ("Move the deal to negotiation"): a request
#: even when it names no deal (the crew asks which), not a question about deals.
_MOVE_REQUEST = re.compile(
    r"^\s*(?:(?:ok|okay|please|now|so)[\s,]+)*(?:can you |could you |please )?"
    r"(move|advance|push|progress|promote|bump|shift|set|put|mark|close|reopen|update)\b",
    re.I,
)


def _act(session: Session, request: CrewRequest, today: dt.date | None) -> CrewResponse | None:
    """The proposal (or the question back) for an action request: a stage move, won with its
    value or lost with its reason, a reminder or tasks; None for a question about the CRM."""
    message, entities, caller = request.message, request.entities, request.caller
    now = local_now(session, caller.rep_id if caller else None, today=today)
    req = read_request(message, now=now.replace(tzinfo=None))
    if req is not None and req.kind == "create_reminder":
        return remind(session, request, req, now)
    if req is not None and req.kind == "create_task":
        return add_tasks(session, request, req, now)
    pipeline = load_pipeline()
    stage = detect_stage_move(message, entities)
    note = None
    if req is not None and req.kind == "move_stage":
        stage = (
            pipeline.won_key
            if req.stage == "won"
            else (stage if stage in pipeline.lost_keys else pipeline.lost_keys[0])
        )
        note = req.note
    named = entities.first("deal") or entities.first("account")
    if stage is not None and (named or req is not None or _MOVE_REQUEST.match(message)):
        return _move(session, message, entities, stage, caller, note=note)
    return None


def _bare_count(plan: QueryPlan) -> bool:
    """A plan that only counts deals, with no status, grouping or ranking of its own."""
    return plan.metric == "deals" and plan.group_by == "none"


async def run(request: CrewRequest, deps: CrewDeps) -> CrewResponse:
    """Answer a pipeline question or propose a stage move (see the module docstring)."""
    message, entities, caller = request.message, request.entities, request.caller
    rep_ids = reading(request)
    with usage_scope() as usage:
        acted = await in_session(deps, lambda s: _act(s, request, deps.today))
        if acted is not None:
            return acted.model_copy(update={"llm_calls": usage.calls})
        deal = entities.first("deal")
        plan: QueryPlan | None = None
        fact = await in_session(deps, lambda s: safe_answer_fact(s, message, entities, rep_ids=rep_ids))
        if fact is not None:  # an account/rep fact routed here ("how many accounts in retail?")
            answer = fact
        elif deal is not None and plan_from_rules(message, entities) is None:
            answer = await in_session(deps, lambda s: _deal_info(s, deal.key, caller))
        elif (
            _SHOW_ONE_DEAL.search(message)
            and entities.first("account")
            and not plan_from_rules(message, entities)
        ):
            # "show me the open GTK 500 deal with Warephase": the record, as for its opportunity id
            answer = await in_session(deps, lambda s: _named_deal(s, entities, caller))
        else:
            rules_plan = plan_from_rules(message, entities)
            special = await in_session(
                deps, lambda s: special_answer(s, rules_plan, entities, message, rep_ids=rep_ids)
            )
            if special is not None:  # two records compared, or a share
                return _response(special, rules_plan, usage.calls)
            follow = follow_up_plan(request)
            if rules_plan is not None and follow is not None and _bare_count(rules_plan):
                # "and how many MG Special?" after "how many GTX Pro deals did Kan-code sign?":
                # the count is of the previous question's deals (won), for the new record
                rules_plan = follow
            plan = rules_plan or follow
            if plan is None:
                semantic = await answer_over_crm(deps, request, rep_ids)
                if semantic is not None:
                    return _response(semantic, None, usage.calls)
                if not any(e.kind != "contact" for e in entities.items) and entities.period is None:
                    # nothing named and no plan: say what can be asked, not something else
                    data = PipelineResult().model_dump(mode="json")
                    return CrewResponse(reply=what_i_can_answer(), data=data, llm_calls=usage.calls)
                plan = QueryPlan(metric="summary", source="default")  # the named records' summary
            chosen = plan
            try:
                answer = await in_session(
                    deps, lambda s: compute(s, chosen, entities, message, rep_ids=rep_ids)
                )
            except DomainError as exc:
                return CrewResponse(
                    reply=f"I couldn't compute that: {exc}.",
                    data=PipelineResult(plan=plan).model_dump(mode="json"),
                    llm_calls=usage.calls,
                )
        return _response(answer, plan, usage.calls)


def _response(answer: Answer, plan: QueryPlan | None, llm_calls: int) -> CrewResponse:
    """The crew's response of a computed answer: its template sentence, figures and records;
    `data` names the rules' `plan` or the semantic layer's query (`answer.data["query"]`)."""
    query = answer.data.get("query")
    figures = {k: v for k, v in answer.data.items() if k != "query"}
    result = PipelineResult(plan=plan, query=query, figures=figures)
    return CrewResponse(
        reply=answer.draft,
        data=result.model_dump(mode="json"),
        sources=answer.sources,
        facts=answer.facts,
        llm_calls=llm_calls,
    )
