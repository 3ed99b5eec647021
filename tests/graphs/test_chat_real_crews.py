"""The graph with the real crews (`crews.registry.run_crew`, the `CrewDeps` of the app's context) on
the real database, with a stub OpenAI-compatible LLM that counts requests: the deps plumbing,
the crews' typed responses, approvals through the real pipeline crew, and per-turn usage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import Engine, select

from app.services.context import real_context
from config.settings import get_settings
from crm.db import session_scope
from crm.embeddings import get_embedder
from crm.models import Deal, Event
from crm.repository import create_account, create_deal, create_product, create_rep
from crm.schemas import AccountCreate, DealCreate, ProductCreate, SalesRepCreate
from graphs.context import ChatContext
from llm import LLMConfig
from tests.graphs.fakes import AMY, FakeResolver, FakeRouter, chat_service, decide
from tests.support.stub_llm import StubLLM


@pytest.fixture
def crm(clean_db: Engine) -> dict[str, int]:
    """Account Cancity, rep Jane Roe, product GTX Pro, and three deals of hers."""
    with session_scope(clean_db) as s:
        acc = create_account(s, AccountCreate(name="Cancity", sector="retail"))
        rep = create_rep(s, SalesRepCreate(name="Jane Roe", manager="Ann Lee", regional_office="West"))
        prod = create_product(s, ProductCreate(name="GTX Pro", series="GTX", list_price=4821))
        common = {"account_id": acc.id, "product_id": prod.id, "rep_id": rep.id}
        create_deal(s, DealCreate(external_id="AAAA0001", stage="prospecting", **common))
        create_deal(
            s,
            DealCreate(
                external_id="AAAA0002",
                stage="won",
                engage_date="2017-01-02",
                close_date="2017-02-03",
                value=5000,
                **common,
            ),
        )
        create_deal(
            s,
            DealCreate(
                external_id="AAAA0003",
                stage="won",
                engage_date="2017-01-05",
                close_date="2017-03-01",
                value=4000,
                **common,
            ),
        )
        return {"account": acc.id, "rep": rep.id, "product": prod.id}


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    with StubLLM() as llm:
        yield llm


def _context(engine: Engine, stub: StubLLM) -> ChatContext:
    """Real entity resolver and crews; the keyword router of the fakes (the real one asks the
    LLM when unsure, and the stub's answers are not a router's)."""
    llm = LLMConfig(base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=20, max_tokens=64)
    return replace(real_context(engine, llm, get_embedder(get_settings())), router=FakeRouter())


async def test_real_pipeline_crew_proposes_and_the_approval_executes(
    redis_url: str, clean_db: Engine, crm: dict[str, int], stub: StubLLM
) -> None:
    async with chat_service(redis_url, _context(clean_db, stub)) as chat:
        first = await chat.turn(None, "Please move deal AAAA0001 to qualified", caller=AMY)
        assert first.error is None, first.reply
        assert first.pending_action is not None and first.pending_action.kind == "move_stage"
        assert first.pending_action.params["stage"] == "qualified"
        assert first.sources and first.sources[0].kind == "deal"
        done = await decide(chat, first.thread_id, "approve")
    assert done.action_result is not None and done.action_result.status == "done", done.reply
    with session_scope(clean_db) as s:
        assert s.scalar(select(Deal.stage).where(Deal.external_id == "AAAA0001")) == "qualified"
        kinds = s.scalars(select(Event.kind).where(Event.thread_id == first.thread_id)).all()
    assert "action.executed" in kinds
    assert stub.count == 0, "a stage move needs no LLM call"


async def test_real_pipeline_crew_answers_with_sql_figures_and_counts_llm_usage(
    redis_url: str, clean_db: Engine, crm: dict[str, int], stub: StubLLM
) -> None:
    async with chat_service(redis_url, _context(clean_db, stub)) as chat:
        result = await chat.turn(None, "How many deals has Jane Roe won?", caller=AMY)
        view = await chat.get_thread(result.thread_id, caller=AMY)
    assert [(e.kind, e.key, e.id) for e in view.entities.items if e.kind == "rep"] == [
        ("rep", "Jane Roe", crm["rep"])
    ]
    assert result.error is None, result.reply
    assert result.intent == "pipeline"
    assert "2" in result.reply, result.reply
    assert result.usage.llm_calls == stub.count
    if stub.count:
        assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0


async def test_real_general_crew_greets_without_llm(
    redis_url: str, clean_db: Engine, crm: dict[str, int], stub: StubLLM
) -> None:
    async with chat_service(redis_url, _context(clean_db, stub)) as chat:
        result = await chat.turn(None, "hello there", caller=AMY)
    assert result.intent == "general" and result.reply.startswith("Hi!")
    assert result.usage.llm_calls == 0 and stub.count == 0


async def test_llm_down_with_real_crews_is_an_honest_error(
    redis_url: str, clean_db: Engine, crm: dict[str, int]
) -> None:
    # nothing listens on port 9: every LLM call is refused
    llm = LLMConfig(base_url="http://127.0.0.1:9/v1", api_key="x", model="m", timeout_s=5, max_tokens=16)
    ctx = replace(
        real_context(clean_db, llm, get_embedder(get_settings())),
        resolver=FakeResolver(),
        router=FakeRouter(),
    )
    async with chat_service(redis_url, ctx) as chat:
        # a draft needs the model (a computed figure would be answered by rules, SQL and a template)
        result = await chat.turn(
            None, "Write a short follow-up email to Cancity about their GTX Pro deal", caller=AMY
        )
        view = await chat.get_thread(result.thread_id, caller=AMY)
    assert result.usage.llm_calls >= 1 and result.usage.llm_failures >= 1
    if result.error is not None:  # the turn failed honestly; the message waits to be sent again
        assert result.error.kind in ("llm_unavailable", "llm_bad_output")
        assert "send it again" in result.reply
        assert [m.role for m in view.messages] == ["user"]
    else:  # the crew finished from what it computed without the model, and says nothing invented
        assert result.reply and [m.role for m in view.messages] == ["user", "assistant"]


async def test_real_closing_crew_starts_and_stops_a_follow_up_sequence(
    redis_url: str, clean_db: Engine, crm: dict[str, int], stub: StubLLM
) -> None:
    """ "Start a follow-up sequence" proposes `start_sequence` (its steps written from the
    configuration, no model call); approving it asks for the deal's sequence workflow; "stop"
    proposes `cancel_sequence`, which records the cancellation its next step obeys."""
    from crm.models import WorkflowRun

    ctx = replace(_context(clean_db, stub), router=FakeRouter(intent="closing"))
    async with chat_service(redis_url, ctx) as chat:
        first = await chat.turn(None, "Start a follow-up sequence for deal AAAA0001", caller=AMY)
        assert first.error is None, first.reply
        assert first.pending_action is not None and first.pending_action.kind == "start_sequence"
        assert "day 0: an email drafted for your approval" in first.reply
        started = await decide(chat, first.thread_id, "approve")
        assert started.action_result is not None and started.action_result.status == "done", started.reply
        workflow_id = started.action_result.result["workflows"][0]
        again = await chat.turn(None, "Start a follow-up sequence for deal AAAA0001", caller=AMY)
        refused = await decide(chat, again.thread_id, "approve")
        assert refused.action_result is not None and refused.action_result.status == "failed"
        assert "already runs" in (refused.action_result.detail or "")
        stop = await chat.turn(None, "Stop the follow-up sequence for deal AAAA0001", caller=AMY)
        assert stop.pending_action is not None and stop.pending_action.kind == "cancel_sequence"
        await decide(chat, stop.thread_id, "approve")
    with session_scope(clean_db) as s:
        run = s.scalars(select(WorkflowRun).where(WorkflowRun.workflow_id == workflow_id)).one()
    assert (run.kind, run.status) == ("sequence", "cancelled")
    assert stub.count == 0
