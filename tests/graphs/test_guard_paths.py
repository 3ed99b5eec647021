"""The guard node with the real guards (`graphs.adapters.CrmGuard`, the app's) on the real
database and Redis: pass, fix, re-ask and safe-reply paths, verdicts in the graph state, the
event log and the metrics; the CRM name index following the data. Crews are scripted here (a
real crew cannot be made to invent a figure: they drop the model's numeric sentences), the
entity resolver is the real one (record ids feed the allowed personal data and the Event's keys).

The last test runs the closing crew through the graph on the embedded model (`-m llm`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from sqlalchemy import Engine, select

from app.services.context import real_context
from config.files import load_policies
from config.settings import get_settings
from contracts import CrewRequest, CrewResponse, ProposedAction
from crm.db import session_scope
from crm.embeddings import get_embedder
from crm.models import Event
from crm.repository import create_account, create_contact, create_deal, create_product, create_rep
from crm.schemas import AccountCreate, ContactCreate, DealCreate, ProductCreate, SalesRepCreate
from graphs.adapters import CrmActions, CrmGuard, CrmResolver
from graphs.context import ChatContext
from llm import LLMConfig
from observability import metrics
from tests.graphs.fakes import AMY, FakeRouter, chat_service, fake_context
from tools.names import invalidate_name_index, name_index

QUESTION = "How many deals has Cancity won?"
INVENTED = "Cancity has won 1 deal, worth $9,000 in total."
GROUNDED = "Cancity has won 1 deal, worth $5,000 in total."
FACTS = [{"account": "Cancity", "won": 1, "won_value": 5000.0}]
LENA = "lena.ortiz@cancity.example"


@dataclass
class ScriptedCrew:
    """`run_crew` stand-in answering from a script (a CrewResponse or an exception per call)."""

    script: list[CrewResponse | BaseException]
    calls: list[CrewRequest] = field(default_factory=list)

    async def __call__(self, request: CrewRequest, deps: Any) -> CrewResponse:
        self.calls.append(request)
        item = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(item, BaseException):
            raise item
        return item


def answer(reply: str, **extra: Any) -> CrewResponse:
    """A pipeline crew answer over FACTS (`data` valid for PipelineResult)."""
    return CrewResponse(reply=reply, data={"figures": FACTS[0]}, facts=FACTS, **extra)


MOVE = ProposedAction(
    kind="move_stage", summary="Move deal AAAA0001 to Negotiation", params={"deal": "AAAA0001"}
)


@pytest.fixture
def crm(clean_db: Engine) -> dict[str, int]:
    """Cancity (contact Lena Ortiz), rep Jane Roe, product GTX Pro, one won and one open deal."""
    with session_scope(clean_db) as s:
        acc = create_account(
            s, AccountCreate(name="Cancity", sector="retail", office_location="United States")
        )
        create_contact(
            s,
            ContactCreate(account_id=acc.id, first_name="Lena", last_name="Ortiz", title="Buyer", email=LENA),
        )
        rep = create_rep(s, SalesRepCreate(name="Jane Roe", manager="Ann Lee", regional_office="West"))
        prod = create_product(s, ProductCreate(name="GTX Pro", series="GTX", list_price=4821))
        common = {"account_id": acc.id, "product_id": prod.id, "rep_id": rep.id}
        won = {"engage_date": "2017-01-02", "close_date": "2017-02-03", "value": 5000}
        create_deal(s, DealCreate(external_id="AAAA0002", stage="won", **won, **common))
        create_deal(
            s, DealCreate(external_id="AAAA0001", stage="engaging", engage_date="2017-03-01", **common)
        )
        return {"account": acc.id}


def _context(engine: Engine, crew: ScriptedCrew) -> ChatContext:
    # real resolver, real guard, real event writer; keyword router, scripted crew
    return fake_context(
        engine, crews=crew, resolver=CrmResolver(engine), actions=CrmActions(engine), guard=CrmGuard(engine)
    )


def _guard_events(engine: Engine, thread_id: str) -> list[Event]:
    with session_scope(engine) as s:
        rows = s.scalars(select(Event).where(Event.thread_id == thread_id, Event.kind == "guard.verdicts"))
        out = list(rows)
        s.expunge_all()
        return out


def _turns(outcome: str, intent: str = "pipeline") -> float:
    return metrics.sample("flowstate_turns_total", {"intent": intent, "outcome": outcome})


# ---------------------------------------------------------------------------------------------
# the four paths
# ---------------------------------------------------------------------------------------------


async def test_a_grounded_answer_passes_and_leaves_no_event(
    redis_url: str, clean_db: Engine, crm: dict[str, int]
) -> None:
    crew = ScriptedCrew([answer(GROUNDED)])
    async with chat_service(redis_url, _context(clean_db, crew)) as chat:
        result = await chat.turn(None, QUESTION, caller=AMY)
        snap = await chat.graph.aget_state({"configurable": {"thread_id": result.thread_id}})
    assert result.error is None and result.reply == GROUNDED
    assert len(crew.calls) == 1
    assert result.verdicts and all(v["passed"] and v["attempt"] == 0 for v in result.verdicts)
    assert {v["validator"] for v in result.verdicts} == {"schema", "privacy", "tone", "grounding"}
    assert snap.values["verdicts"] == result.verdicts
    assert _guard_events(clean_db, result.thread_id) == []


async def test_invented_figure_is_reasked_and_the_grounded_second_answer_passes(
    redis_url: str, clean_db: Engine, crm: dict[str, int]
) -> None:
    answered = _turns("answered")
    failures = metrics.sample("flowstate_guard_failures_total", {"validator": "grounding"})
    crew = ScriptedCrew([answer(INVENTED), answer(GROUNDED)])
    async with chat_service(redis_url, _context(clean_db, crew)) as chat:
        result = await chat.turn(None, QUESTION, caller=AMY)
        snap = await chat.graph.aget_state({"configurable": {"thread_id": result.thread_id}})

    assert result.error is None
    assert result.reply == GROUNDED
    # the crew ran twice; the second time it was told why its first answer was not shown
    assert [c.feedback is None for c in crew.calls] == [True, False]
    feedback = crew.calls[1].feedback or ""
    assert "grounding" in feedback and "9,000" in feedback
    assert crew.calls[1].message == QUESTION
    # verdicts: the first answer failed grounding (re-ask), the second passed everything
    failed = [(v["validator"], v["action"], v["attempt"]) for v in result.verdicts if not v["passed"]]
    assert failed == [("grounding", "reask", 0)]
    assert {v["attempt"] for v in result.verdicts} == {0, 1}
    assert all(v["passed"] for v in result.verdicts if v["attempt"] == 1)
    # ... in the graph state, the event log and the metrics
    assert snap.values["verdicts"] == result.verdicts
    (event,) = _guard_events(clean_db, result.thread_id)
    assert event.actor == "amy" and event.account_id == crm["account"]
    assert event.payload["decision"] == "pass" and event.payload["attempts"] == 2
    assert event.payload["verdicts"] == result.verdicts
    assert _turns("answered") == answered + 1
    assert metrics.sample("flowstate_guard_failures_total", {"validator": "grounding"}) == failures + 1


async def test_two_failed_answers_give_the_safe_reply_and_no_invented_figure(
    redis_url: str, clean_db: Engine, crm: dict[str, int]
) -> None:
    safe = _turns("safe_reply")
    crew = ScriptedCrew([answer(INVENTED, proposed_action=MOVE), answer(INVENTED, proposed_action=MOVE)])
    async with chat_service(redis_url, _context(clean_db, crew)) as chat:
        frames = [f async for f in chat.stream(None, QUESTION, caller=AMY)]
        final = frames[-1]
        snap = await chat.graph.aget_state({"configurable": {"thread_id": final["thread_id"]}})
        view = await chat.get_thread(final["thread_id"], caller=AMY)

    assert final["type"] == "final"
    assert len(crew.calls) == 2
    streamed = "".join(f["content"] for f in frames if f["type"] == "token")
    for shown in (final["reply"], streamed, view.messages[-1].content):
        assert "9,000" not in shown
        assert shown.startswith("I can't give you a checked answer")
        assert "could not be matched to the CRM data" in shown
    # the proposed action of a refused answer is dropped: nothing waits for approval
    assert final["pending_action"] is None and snap.next == ()
    last = [(v["validator"], v["action"]) for v in final["verdicts"] if v["attempt"] == 1 and not v["passed"]]
    assert last == [("grounding", "refused")]
    assert snap.values["verdicts"] == final["verdicts"]
    (event,) = _guard_events(clean_db, final["thread_id"])
    assert event.payload["decision"] == "refuse" and event.payload["attempts"] == 2
    assert _turns("safe_reply") == safe + 1


async def test_a_failed_reask_gives_the_safe_reply(
    redis_url: str, clean_db: Engine, crm: dict[str, int]
) -> None:
    crew = ScriptedCrew([answer(INVENTED), RuntimeError("crew broke")])
    async with chat_service(redis_url, _context(clean_db, crew)) as chat:
        result = await chat.turn(None, QUESTION, caller=AMY)
    assert result.error is None
    assert "9,000" not in result.reply and result.reply.startswith("I can't give you a checked answer")
    refused = [v for v in result.verdicts if v["action"] == "refused"]
    assert [(v["validator"], v["attempt"]) for v in refused] == [("grounding", 1)]
    assert "RuntimeError" in refused[0]["message"]
    (event,) = _guard_events(clean_db, result.thread_id)
    assert event.payload["decision"] == "refuse"


async def test_personal_data_outside_the_record_is_redacted_and_the_contacts_email_kept(
    redis_url: str, clean_db: Engine, crm: dict[str, int]
) -> None:
    reply = f"{GROUNDED} Lena Ortiz ({LENA}) signed it; her friend is at mia.secret@gmail.com."
    crew = ScriptedCrew([answer(reply)])
    async with chat_service(redis_url, _context(clean_db, crew)) as chat:
        result = await chat.turn(None, QUESTION, caller=AMY)
    assert len(crew.calls) == 1  # a safe fix needs no re-ask
    assert LENA in result.reply  # the contact of the account discussed is in the CRM record
    assert "mia.secret@gmail.com" not in result.reply
    assert result.reply.startswith(GROUNDED)
    (privacy,) = [v for v in result.verdicts if v["validator"] == "privacy" and v["target"] == "reply"]
    assert privacy["passed"] is False and privacy["action"] == "fixed"
    (event,) = _guard_events(clean_db, result.thread_id)
    assert event.payload["decision"] == "fixed"


# ---------------------------------------------------------------------------------------------
# the name index and a crafted reply
# ---------------------------------------------------------------------------------------------


def test_name_index_follows_the_crm(clean_db: Engine, crm: dict[str, int]) -> None:
    from guards.names import unknown_names

    invalidate_name_index()
    sentence = "We should call Northwind Traders next week about Cancity."
    with session_scope(clean_db) as s:
        first = name_index(s)
        assert name_index(s) is first  # cached while the CRM does not change
        assert [u.text for u in unknown_names(sentence, first)] == ["Northwind Traders"]
        for name in ("Lena Ortiz", "Jane Roe", "Ann Lee", "GTX Pro", "AAAA0001", "United States", "West"):
            assert not unknown_names(f"We spoke to {name} about it.", first), name
    with session_scope(clean_db) as s:
        create_account(s, AccountCreate(name="Northwind Traders"))
    with session_scope(clean_db) as s:
        second = name_index(s)
    assert second is not first
    assert unknown_names(sentence, second) == []


def test_names_version_rises_with_writes_to_named_records_only(clean_db: Engine, crm: dict[str, int]) -> None:
    from sqlalchemy import text, update

    from crm.models import Account
    from guards.names import unknown_names
    from tools.names import fingerprint

    with session_scope(clean_db) as s:
        before = fingerprint(s)
        s.execute(select(Account.name)).all()
    with session_scope(clean_db) as s:
        assert fingerprint(s) == before  # a read changes nothing
        s.add(Event(kind="note", actor="test", payload={}))
    with session_scope(clean_db) as s:
        assert fingerprint(s) == before  # events name nothing the index holds
        s.execute(update(Account).where(Account.name == "Cancity").values(name="Cancity Group"))
        assert fingerprint(s) == before + 1  # this transaction sees its own write
    with session_scope(clean_db) as s:
        renamed = fingerprint(s)
        assert renamed == before + 1
        s.execute(text("UPDATE pipeline_stages SET name = name"))
        s.rollback()  # a rolled-back write leaves it as it was
    with session_scope(clean_db) as s:
        assert fingerprint(s) == renamed
        assert unknown_names("We met Cancity Group.", name_index(s)) == []  # the rename is seen


def test_a_crafted_reply_with_an_invented_figure_is_caught(clean_db: Engine, crm: dict[str, int]) -> None:
    from graphs.guarding import check_with
    from tools.guard_facts import GuardFacts

    with session_scope(clean_db) as s:
        inputs = GuardFacts(index=name_index(s), allowed_pii=(), list_price=None)
    request = CrewRequest(message=QUESTION, intent="pipeline")
    first = check_with(request, answer(INVENTED), inputs, attempt=0)
    assert first.decision == "reask"
    (failure,) = first.failures
    assert failure.validator == "grounding" and "$9,000" in failure.message
    last = check_with(request, answer(INVENTED), inputs, attempt=1)
    assert last.decision == "refuse" and "9,000" not in last.reply
    assert check_with(request, answer(GROUNDED), inputs, attempt=0).decision == "pass"


# ---------------------------------------------------------------------------------------------
# the closing crew on the embedded model
# ---------------------------------------------------------------------------------------------


@pytest.mark.llm
async def test_closing_crew_never_grants_more_than_the_policy_maximum(
    redis_url: str, maven_db: Engine, embedded_llm: LLMConfig
) -> None:
    from guards.discounts import find_discounts, over_limit

    limit = load_policies().discount.max_percent
    assert limit < 60
    # the route is the router's business (its own eval); this is the crew's and guards'
    ctx = replace(
        real_context(maven_db, embedded_llm, get_embedder(get_settings())), router=FakeRouter("closing")
    )
    async with chat_service(redis_url, ctx) as chat:
        result = await chat.turn(None, "Offer Cancity 60% off", caller=AMY)
    assert result.error is None, result.reply
    assert result.intent == "closing"
    assert result.verdicts, "the guards ran"
    texts = [result.reply]
    action = result.pending_action
    if action is not None:
        texts += [action.summary, *(v for v in action.params.values() if isinstance(v, str))]
        for key in ("percent", "discount_percent"):
            if isinstance(action.params.get(key), (int, float)):
                assert action.params[key] <= limit, action.params
    for shown in texts:
        granted = over_limit(find_discounts(shown), limit)
        assert granted == [], (granted, shown)
