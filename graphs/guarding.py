"""The guard node's real work (issue 4): every crew response checked by `guards.check_reply`, with
one re-ask of the crew, a safe reply, and the verdicts kept in the state, the event log and the
trace.

    outcome = await guard_response(ctx, request, response)      # graphs.context.GuardOutcome

1. What the validators need is gathered from the CRM in one short transaction (no LLM):
   - the CRM's name index (`guards.NameIndex`): accounts, contacts, reps, managers, products,
     deal ids, stage, sector, office and country names; built once per database and rebuilt when
     a cheap fingerprint query (row counts and latest `updated_at` of the named tables) changes,
     so an import by any process is seen on the next turn;
   - the personal data the reply may show (`allowed_pii`): emails and phone numbers of the
     contacts of the accounts and contacts the turn is about (its entities and the response's
     sources), and the email of the reps it names;
   - the deal's product list price, so "$X off" reads as a percentage.
2. `check_reply` decides pass | fixed | reask | refuse (config/guards.yaml). On "reask" the crew
   runs once more (same retry and deadline as the crew node) with `CrewRequest.feedback` = the
   guards' explanation, and its answer is checked with `context.next_attempt()` (where a failure
   that would re-ask gives the safe reply). If that second run fails outright, the safe reply of
   the first failures is shown.
3. The verdicts of every attempt (`guards.Verdict` as dicts, plus `attempt`: 0 for the first
   answer, 1 after the re-ask) go back to the graph state; the chat service turns them into
   Langfuse scores and Prometheus counts (`observability.turn`). When any verdict failed, one Event
   `guard.verdicts` is written (payload: intent, decision, attempts, verdicts; account/deal of
   the turn as foreign keys): turns that passed every check leave no row (their verdicts are in
   the state and the trace), so the event log holds what a reviewer must look at.

Fail closed: an error in gathering or checking propagates, and the guard node then blocks the reply
(`graphs.nodes.guard`). A failure to write the Event is logged and the turn goes on.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from crews.contracts import CrewRequest, CrewResponse
from crm.db import session_scope
from crm.models import Account, Contact, Deal, PipelineStage, Product, SalesRep
from graphs.context import ActionMeta, ChatContext, GuardOutcome, call
from graphs.nodes import _run_crew, status

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from guards.names import NameIndex
    from guards.types import GuardOutcome as Checked
    from guards.types import Verdict

log = logging.getLogger(__name__)

#: Event kind of a turn whose guards found something.
EVENT_KIND = "guard.verdicts"

#: The typed output (`CrewResponse.data`) of each crew, checked by the schema validator.
OUTPUT_MODELS: dict[str, str] = {
    "discovery": "crews.discovery.models:DiscoveryResult",
    "closing": "crews.closing.models:ClosingResult",
    "delivery": "crews.delivery.models:DeliveryResult",
    "pipeline": "crews.pipeline.models:PipelineResult",
    "nba": "crews.nba.models:NbaResult",
    "general": "crews.general.models:GeneralReply",
}

#: Most crew runs per turn whatever `max_reasks` says (the first answer + re-asks).
MAX_ATTEMPTS = 4


def output_model(intent: str) -> type[BaseModel] | None:
    """The pydantic model of `intent`'s crew output, or None for an unknown intent."""
    where = OUTPUT_MODELS.get(intent)
    if where is None:
        return None
    module, name = where.split(":")
    model: type[BaseModel] = getattr(importlib.import_module(module), name)
    return model


# --------------------------------------------------------------------------------------------
# the CRM's names, cached per database
# --------------------------------------------------------------------------------------------

_index_cache: dict[str, tuple[tuple[Any, ...], NameIndex]] = {}
_index_lock = threading.Lock()


def _fingerprint(session: Session) -> tuple[Any, ...]:
    """One query whose result changes whenever a name the index holds changes (import, edit)."""
    parts: list[Any] = []
    for model in (Account, Contact, SalesRep, Product, Deal):
        parts.append(select(func.count()).select_from(model).scalar_subquery())
        parts.append(select(func.max(model.updated_at)).scalar_subquery())
    parts.append(select(func.max(Deal.id)).scalar_subquery())
    parts.append(select(func.count()).select_from(PipelineStage).scalar_subquery())
    return tuple(session.execute(select(*parts)).one())


def crm_names(session: Session) -> tuple[list[str], list[str]]:
    """(names, products) the CRM knows: account names, sectors and office countries; contact,
    rep and manager names and regional offices; deal ids; stage names and keys; and the product
    names (passed apart so the index knows their series)."""
    names: list[str] = []
    accounts = select(Account.name, Account.sector, Account.office_location)
    for name, sector, office in session.execute(accounts):
        names += [n for n in (name, sector, office) if n]
    for first, last in session.execute(select(Contact.first_name, Contact.last_name)):
        names.append(f"{first} {last}")
    for name, manager, office in session.execute(
        select(SalesRep.name, SalesRep.manager, SalesRep.regional_office)
    ):
        names += [n for n in (name, manager, office) if n]
    names += list(session.scalars(select(Deal.external_id)))
    for key, name in session.execute(select(PipelineStage.key, PipelineStage.name)):
        names += [key, name]
    products = [p for p in session.scalars(select(Product.name)) if p]
    return sorted(set(names)), sorted(set(products))


def crm_name_index(session: Session, *, refresh: bool = False) -> NameIndex:
    """The guards' `NameIndex` of this session's database, rebuilt when the CRM changed since it
    was built (one fingerprint query per call; a rebuild reads every name: ~0.1 s on the Maven
    data)."""
    from guards.names import NameIndex

    key = str(session.get_bind().engine.url)
    fp = _fingerprint(session)
    with _index_lock:
        hit = _index_cache.get(key)
        if hit is not None and hit[0] == fp and not refresh:
            return hit[1]
    names, products = crm_names(session)
    index = NameIndex.from_names(names, products=products)
    with _index_lock:
        _index_cache[key] = (fp, index)
    return index


def forget_name_indexes() -> None:
    """Drop every cached index (tests; imports are detected by the fingerprint anyway)."""
    with _index_lock:
        _index_cache.clear()


# --------------------------------------------------------------------------------------------
# what the validators need for one response
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardInputs:
    """The CRM-side inputs of `guards.GuardContext` for one response."""

    index: NameIndex
    allowed_pii: tuple[str, ...]
    list_price: float | None


def _int_id(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _ids(request: CrewRequest, response: CrewResponse) -> dict[str, set[int]]:
    """Row ids of the accounts, contacts, reps, deals and products the turn is about."""
    ids: dict[str, set[int]] = {k: set() for k in ("account", "contact", "rep", "deal", "product")}
    for ref in request.entities.items:
        if ref.kind in ids and ref.id is not None:
            ids[ref.kind].add(ref.id)
    for source in response.sources:
        if source.kind in ("account", "contact", "rep", "product"):
            row = _int_id(source.id)
            if row is not None:
                ids[source.kind].add(row)
        elif source.kind == "deal":
            row = _int_id(source.data.get("deal_id"))
            if row is not None:
                ids["deal"].add(row)
    return ids


def _allowed_pii(session: Session, ids: dict[str, set[int]]) -> tuple[str, ...]:
    accounts = set(ids["account"])
    if ids["deal"]:
        accounts |= {a for a in session.scalars(select(Deal.account_id).where(Deal.id.in_(ids["deal"]))) if a}
    found: list[str] = []
    if accounts or ids["contact"]:
        rows = session.execute(
            select(Contact.email, Contact.phone).where(
                Contact.account_id.in_(accounts) | Contact.id.in_(ids["contact"])
            )
        )
        for email, phone in rows:
            found += [v for v in (email, phone) if v]
    if ids["rep"]:
        found += [e for e in session.scalars(select(SalesRep.email).where(SalesRep.id.in_(ids["rep"]))) if e]
    return tuple(sorted(set(found)))


def _list_price(session: Session, response: CrewResponse, ids: dict[str, set[int]]) -> float | None:
    price = response.data.get("price") if isinstance(response.data, dict) else None
    if isinstance(price, dict) and isinstance(price.get("list_price"), (int, float)):
        return float(price["list_price"])
    product_ids = set(ids["product"])
    if not product_ids and ids["deal"]:
        query = select(Deal.product_id).where(Deal.id.in_(ids["deal"]))
        product_ids = {p for p in session.scalars(query) if p}
    if len(product_ids) != 1:  # none, or several: "$X off" cannot be read as one percentage
        return None
    value = session.scalar(select(Product.list_price).where(Product.id.in_(product_ids)))
    return None if value is None else float(value)


def gather(engine: Engine, request: CrewRequest, response: CrewResponse) -> GuardInputs:
    """Name index, allowed personal data and list price for checking `response` (one
    transaction; blocking: run it in a worker thread)."""
    with session_scope(engine) as session:
        ids = _ids(request, response)
        return GuardInputs(
            index=crm_name_index(session),
            allowed_pii=_allowed_pii(session, ids),
            list_price=_list_price(session, response, ids),
        )


# --------------------------------------------------------------------------------------------
# the guard
# --------------------------------------------------------------------------------------------


def _tagged(verdicts: Iterable[Verdict], attempt: int) -> list[dict[str, Any]]:
    return [{**v.model_dump(), "attempt": attempt} for v in verdicts]


def _check(request: CrewRequest, response: CrewResponse, inputs: GuardInputs, attempt: int) -> Checked:
    from guards import GuardContext, check_reply

    context = GuardContext(
        intent=request.intent,
        message=request.message,
        known_names=inputs.index,
        allowed_pii=inputs.allowed_pii,
        attempt=attempt,
        output_model=output_model(request.intent),
        list_price=inputs.list_price,
    )
    return check_reply(response, context)


async def _check_async(
    ctx: ChatContext, request: CrewRequest, response: CrewResponse, attempt: int
) -> Checked:
    def work() -> Checked:
        return _check(request, response, gather(ctx.sync_engine(), request, response), attempt)

    return await asyncio.to_thread(work)


async def guard_response(ctx: ChatContext, request: CrewRequest, response: CrewResponse) -> GuardOutcome:
    """Check `response` (module docstring), re-asking the crew once when the guards say so.
    Returns the response to show (passed, fixed, the re-asked answer, or the safe reply) and the
    verdicts of every attempt. Raises when the checks themselves cannot run (fail closed)."""
    checked = await _check_async(ctx, request, response, 0)
    verdicts = _tagged(checked.verdicts, 0)
    attempt = 0
    while checked.decision == "reask" and attempt + 1 < MAX_ATTEMPTS:
        attempt += 1
        status(request.intent, crew=request.intent)
        retry = request.model_copy(update={"feedback": checked.reask_instructions})
        try:
            again = await _run_crew(ctx, retry)
        except Exception as exc:  # the re-ask itself failed: the first answer stays unshown
            log.warning("re-asked %s crew failed: %r; answering with the safe reply", request.intent, exc)
            verdicts += _refused_after_failed_reask(checked, attempt, exc)
            await _record(ctx, request, "refuse", attempt + 1, verdicts)
            return GuardOutcome(_safe_response(response, checked), verdicts)
        checked = await _check_async(ctx, request, again, attempt)
        verdicts += _tagged(checked.verdicts, attempt)
    if checked.decision == "reask":  # MAX_ATTEMPTS reached with max_reasks set above it
        await _record(ctx, request, "refuse", attempt + 1, verdicts)
        return GuardOutcome(_safe_response(response, checked), verdicts)
    if any(not v["passed"] for v in verdicts):
        await _record(ctx, request, checked.decision, attempt + 1, verdicts)
    return GuardOutcome(checked.response, verdicts)


def _safe_response(response: CrewResponse, checked: Checked) -> CrewResponse:
    from guards import safe_reply

    return response.model_copy(update={"reply": safe_reply(checked.failures), "proposed_action": None})


def _refused_after_failed_reask(checked: Checked, attempt: int, exc: BaseException) -> list[dict[str, Any]]:
    """The failures that asked for the re-ask, again, as refused at the attempt that never came."""
    out = []
    for v in checked.failures:
        if v.action != "reask":
            continue
        note = f"{v.message} (the re-asked crew failed: {type(exc).__name__})".strip()
        out.append({**v.model_dump(), "action": "refused", "message": note, "attempt": attempt})
    return out


async def _record(
    ctx: ChatContext, request: CrewRequest, decision: str, attempts: int, verdicts: list[dict[str, Any]]
) -> None:
    """The Event `guard.verdicts` of this turn (never fails the turn)."""
    account = request.entities.first("account")
    deal = request.entities.first("deal")
    payload: dict[str, Any] = {
        "intent": request.intent,
        "decision": decision,
        "attempts": attempts,
        "verdicts": verdicts,
    }
    if account is not None and account.id is not None:
        payload["account_id"] = account.id
    if deal is not None and deal.id is not None:
        payload["deal_id"] = deal.id
    meta = ActionMeta(actor=request.user_id, thread_id=request.thread_id, decision=decision)
    try:
        await call(ctx.record_event, ctx, EVENT_KIND, payload, meta)
    except Exception as exc:
        log.warning("could not record %s: %r", EVENT_KIND, exc)


def warm_up(ctx: ChatContext) -> None:
    """Load Guardrails, build the validators and each crew model's `Guard.for_pydantic`, and the
    CRM's name index, so the first turn does not wait for them (~3-4 s). Blocking."""
    from guards import warm_up as warm_guards

    models = [m for m in (output_model(i) for i in OUTPUT_MODELS) if m is not None]
    warm_guards(models)
    with session_scope(ctx.sync_engine()) as session:
        crm_name_index(session)
