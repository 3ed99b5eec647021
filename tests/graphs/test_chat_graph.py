"""The chat graph end to end with fake crews and a fake router, on real Redis (checkpoints) and
the real database (actions, events): routing per intent, typed state, approvals, failures,
restart survival, streaming frames, the drawing of the graph."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest
import redis.asyncio as aioredis
from sqlalchemy import Engine, select

from app.services.chat import ChatService
from app.services.chat_types import NothingPending, NotThePendingAction, ThreadNotFound
from contracts import (
    INTENTS,
    ActionResult,
    CrewRequest,
    CrewResponse,
    Entities,
    GuardOutcome,
    Intent,
    ResumeValue,
    Verdict,
)
from crm.db import session_scope
from crm.models import Deal, Event
from crm.repository import create_account, create_deal
from crm.schemas import AccountCreate, DealCreate
from graphs.canned import HELP
from graphs.graph import build_graph, graph
from graphs.guarding import MAX_ATTEMPTS
from graphs.intent import IntentResult
from tests.graphs.fakes import (
    AMY,
    MESSAGES,
    FakeCrews,
    MemoryActions,
    chat_service,
    decide,
    fake_context,
    redis_saver,
)

#: The intents answered by a crew ("general" is answered by canned replies).
CREW_INTENTS = [i for i in INTENTS if i != "general"]


def _conn_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions"))


@pytest.mark.parametrize("intent", CREW_INTENTS)
async def test_each_intent_runs_its_crew_and_is_checkpointed(redis_url: str, intent: Intent) -> None:
    crews = FakeCrews()
    prefix = f"test:intent-{intent}"
    async with chat_service(redis_url, fake_context(crews=crews), prefix=prefix) as chat:
        result = await chat.turn(None, MESSAGES[intent], caller=AMY)
        assert result.intent == intent
        assert [c.intent for c in crews.calls] == [intent]
        assert result.reply.startswith(f"[{intent}] answer")
        assert result.sources[0].id == f"{intent}-1"
        assert result.error is None and result.pending_action is None

        snap = await chat.graph.aget_state({"configurable": {"thread_id": result.thread_id}})
        assert isinstance(snap.values["response"], CrewResponse)
        assert isinstance(snap.values["entities"], Entities)
        assert snap.values["intent"] == intent
        assert [m.type for m in snap.values["messages"]] == ["human", "ai"]
        assert snap.next == ()

    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(f"{prefix}:cp:{result.thread_id}:*")]
    finally:
        await client.aclose()
    assert keys, "checkpoints of the thread are in Redis"


async def test_general_is_answered_without_a_crew_and_checkpointed(redis_url: str) -> None:
    crews = FakeCrews()
    async with chat_service(redis_url, fake_context(crews=crews)) as chat:
        result = await chat.turn(None, MESSAGES["general"], caller=AMY)
        snap = await chat.graph.aget_state({"configurable": {"thread_id": result.thread_id}})
    assert result.intent == "general" and crews.calls == []
    assert result.reply == "Hi! How can I help with your accounts and deals today?\n\n" + HELP
    assert result.data == {"kind": "greeting", "reply": result.reply}
    assert result.error is None and result.pending_action is None
    assert [m.type for m in snap.values["messages"]] == ["human", "ai"]


def test_the_drawing_shows_every_route_and_the_reask_edge() -> None:
    mermaid = graph.get_graph().draw_mermaid()
    for intent in INTENTS:
        assert f"classify_intent -.-> {intent};" in mermaid
        assert f"{intent} --> guard;" in mermaid
        assert f"guard -.-> {intent};" in mermaid  # the guard's re-ask
    assert "guard -.-> propose;" in mermaid and "guard -.-> respond;" in mermaid


async def test_crew_request_carries_history_and_follow_up_entities(redis_url: str) -> None:
    crews = FakeCrews()
    async with chat_service(redis_url, fake_context(crews=crews)) as chat:
        first = await chat.turn(None, "How many deals has Darcel Schlecht won?", caller=AMY)
        await chat.turn(first.thread_id, "and how many deals did he lose?", caller=AMY)
    follow_up = crews.calls[1]
    assert [e.key for e in follow_up.entities.items] == ["Darcel Schlecht"]
    assert [t.role for t in follow_up.history] == ["user", "assistant"]
    assert follow_up.history[0].content == "How many deals has Darcel Schlecht won?"
    assert follow_up.user_id == "amy" and follow_up.thread_id == first.thread_id


async def test_stream_frames_status_tokens_final(redis_url: str) -> None:
    async with chat_service(redis_url, fake_context()) as chat:
        frames = [f async for f in chat.stream(None, "What is the win rate of Cancity?", caller=AMY)]
    kinds = [f["type"] for f in frames]
    assert kinds[-1] == "final" and kinds.count("final") == 1
    statuses = [f["node"] for f in frames if f["type"] == "status"]
    assert statuses == ["resolve_entities", "classify_intent", "pipeline"]
    crew_frame = next(f for f in frames if f["type"] == "status" and f["node"] == "pipeline")
    assert crew_frame["crew"] == "pipeline"
    tokens = "".join(f["content"] for f in frames if f["type"] == "token")
    assert tokens == frames[-1]["reply"] == "[pipeline] answer about Cancity."
    assert kinds.index("token") > kinds.index("status")


class RenamingGuard:
    """A guard that fixes every reply by renaming Cancity (`graphs.context.ReplyGuard`)."""

    def check(self, request: CrewRequest, response: CrewResponse, attempt: int) -> GuardOutcome:
        fixed = response.model_copy(update={"reply": response.reply.replace("Cancity", "[checked]")})
        verdict = Verdict(validator="test", passed=False, action="fixed", message="renamed")
        return GuardOutcome(
            decision="fixed", response=fixed, original_reply=response.reply, verdicts=[verdict]
        )


async def test_guard_hook_replaces_reply_and_records_verdicts(redis_url: str) -> None:
    actions = MemoryActions()
    async with chat_service(redis_url, fake_context(guard=RenamingGuard(), actions=actions)) as chat:
        frames = [f async for f in chat.stream(None, "How many deals with Cancity?", caller=AMY)]
    final = frames[-1]
    assert final["reply"] == "[pipeline] answer about [checked]."
    assert final["verdicts"] == [
        {
            "validator": "test",
            "target": "reply",
            "passed": False,
            "action": "fixed",
            "message": "renamed",
            "latency_ms": 0.0,
            "attempt": 0,
        }
    ]
    streamed = "".join(f["content"] for f in frames if f["type"] == "token")
    assert "Cancity" not in streamed, "only the guarded reply is streamed"
    assert [(kind, payload["decision"]) for kind, payload, _ in actions.events] == [
        ("guard.verdicts", "fixed")
    ]


class AlwaysReask:
    """A guard that re-asks every answer (as if `max_reasks` were above MAX_ATTEMPTS)."""

    def __init__(self) -> None:
        self.attempts: list[int] = []

    def check(self, request: CrewRequest, response: CrewResponse, attempt: int) -> GuardOutcome:
        self.attempts.append(attempt)
        verdict = Verdict(validator="grounding", passed=False, action="reask", message="invented")
        return GuardOutcome(
            decision="reask",
            response=response,
            original_reply=response.reply,
            verdicts=[verdict],
            reask_instructions=f"try again ({attempt})",
        )


async def test_the_reask_loop_runs_the_crew_again_and_stops_at_max_attempts(redis_url: str) -> None:
    crews = FakeCrews()
    guard, actions = AlwaysReask(), MemoryActions()
    async with chat_service(redis_url, fake_context(crews=crews, guard=guard, actions=actions)) as chat:
        frames = [f async for f in chat.stream(None, "How many deals with Cancity?", caller=AMY)]
    final = frames[-1]
    assert final["type"] == "final" and final["reply"].startswith("I can't give you a checked answer")
    assert guard.attempts == list(range(MAX_ATTEMPTS))
    assert [c.feedback for c in crews.calls] == [None, *(f"try again ({n})" for n in range(MAX_ATTEMPTS - 1))]
    assert [v["attempt"] for v in final["verdicts"]] == list(range(MAX_ATTEMPTS))
    statuses = [(f["node"], f.get("crew")) for f in frames if f["type"] == "status"]
    assert statuses == [
        ("resolve_entities", None),
        ("classify_intent", None),
        ("pipeline", "pipeline"),
        ("guard", None),
        *[("pipeline", "pipeline")] * (MAX_ATTEMPTS - 1),
    ]
    ((kind, payload, meta),) = actions.events
    assert kind == "guard.verdicts" and payload["decision"] == "refuse"
    assert payload["attempts"] == MAX_ATTEMPTS and meta.actor == "amy"


# ---------------------------------------------------------------------------------------------
# approvals: real tools.actions.execute on the real database
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def deal(clean_db: Engine) -> str:
    with session_scope(clean_db) as s:
        acc = create_account(s, AccountCreate(name="Cancity"))
        create_deal(s, DealCreate(external_id="ABCD1234", account_id=acc.id, stage="prospecting"))
    return "ABCD1234"


def _stage(engine: Engine, external_id: str) -> str:
    with session_scope(engine) as s:
        return str(s.scalar(select(Deal.stage).where(Deal.external_id == external_id)))


def _events(engine: Engine, thread_id: str) -> list[tuple[str, dict[str, Any]]]:
    with session_scope(engine) as s:
        rows = s.scalars(select(Event).where(Event.thread_id == thread_id).order_by(Event.id)).all()
        return [(e.kind, e.payload) for e in rows]


async def test_approve_moves_the_deal_and_logs_it(redis_url: str, clean_db: Engine, deal: str) -> None:
    async with chat_service(redis_url, fake_context(engine=clean_db)) as chat:
        first = await chat.turn(None, f"Please move deal {deal} to qualified", caller=AMY)
        assert first.pending_action is not None and first.pending_action.kind == "move_stage"
        assert first.reply == f"Deal {deal} can move to Qualified. Shall I do it?"
        assert _stage(clean_db, deal) == "prospecting", "nothing changes before approval"
        assert _events(clean_db, first.thread_id) == []
        view = await chat.get_thread(first.thread_id, caller=AMY)
        assert view.pending_action is not None and view.messages[-1].kind == "proposal"

        done = await decide(chat, first.thread_id, "approve")
    assert done.pending_action is None
    assert done.action_result is not None and done.action_result.status == "done"
    assert done.reply == f"Done: Move deal {deal} to Qualified."
    assert _stage(clean_db, deal) == "qualified"
    kinds = [k for k, _ in _events(clean_db, first.thread_id)]
    assert "action.executed" in kinds
    executed = dict(_events(clean_db, first.thread_id))["action.executed"]
    assert executed["params"]["stage"] == "qualified"


async def test_reject_changes_nothing_and_logs_the_rejection(
    redis_url: str, clean_db: Engine, deal: str
) -> None:
    async with chat_service(redis_url, fake_context(engine=clean_db)) as chat:
        first = await chat.turn(None, f"move deal {deal} to qualified", caller=AMY)
        rejected = await decide(chat, first.thread_id, "reject")
        view = await chat.get_thread(first.thread_id, caller=AMY)
    assert rejected.action_result is not None and rejected.action_result.status == "rejected"
    assert rejected.reply.startswith("Cancelled:")
    assert _stage(clean_db, deal) == "prospecting"
    events = _events(clean_db, first.thread_id)
    assert [k for k, _ in events] == ["action.rejected"]
    assert events[0][1]["action"]["params"] == {"deal": deal, "stage": "qualified"}
    assert view.pending_action is None
    assert [m.kind for m in view.messages if m.role == "assistant"] == ["proposal", "outcome"]


async def test_edit_runs_the_edited_action(redis_url: str, clean_db: Engine, deal: str) -> None:
    async with chat_service(redis_url, fake_context(engine=clean_db)) as chat:
        first = await chat.turn(None, f"move deal {deal} to qualified", caller=AMY)
        edited = await decide(chat, first.thread_id, "edit", {"stage": "engaging"})
        snap = await chat.graph.aget_state({"configurable": {"thread_id": first.thread_id}})
    assert edited.action_result is not None and edited.action_result.decision == "edit"
    assert edited.action_result.action.params["stage"] == "engaging"
    assert edited.reply == f"Done with your edits: move stage deal={deal}, stage=engaging."
    assert isinstance(snap.values["action_result"], ActionResult)
    assert _stage(clean_db, deal) == "engaging"
    kinds = [k for k, _ in _events(clean_db, first.thread_id)]
    assert "action.executed" in kinds and "action.edited" in kinds


async def test_refused_action_is_reported_and_logged(redis_url: str, clean_db: Engine, deal: str) -> None:
    # Proposal requires a product: the CRM refuses the move, nothing changes.
    async with chat_service(redis_url, fake_context(engine=clean_db)) as chat:
        first = await chat.turn(None, f"move deal {deal} to proposal", caller=AMY)
        failed = await decide(chat, first.thread_id, "approve")
    assert failed.action_result is not None and failed.action_result.status == "failed"
    assert "product" in failed.action_result.detail
    assert failed.reply.startswith("Could not do it:")
    assert _stage(clean_db, deal) == "prospecting"
    assert [k for k, _ in _events(clean_db, first.thread_id)] == ["action.failed"]


async def test_resume_needs_the_pending_action(redis_url: str, clean_db: Engine, deal: str) -> None:
    async with chat_service(redis_url, fake_context(engine=clean_db)) as chat:
        with pytest.raises(ThreadNotFound):
            await decide(chat, "never-started", "approve")
        first = await chat.turn(None, "hello", caller=AMY)
        with pytest.raises(NothingPending):
            await decide(chat, first.thread_id, "approve")
        pending = await chat.turn(first.thread_id, f"move deal {deal} to qualified", caller=AMY)
        assert pending.pending_action is not None
        stale = ResumeValue(decision="approve", action_id="not-" + str(pending.pending_action.id))
        with pytest.raises(NotThePendingAction):
            await chat.resume(pending.thread_id, stale, caller=AMY)
        with pytest.raises(ValueError):
            await decide(chat, pending.thread_id, "edit")  # edit without edits
        await decide(chat, pending.thread_id, "reject")
        assert _stage(clean_db, deal) == "prospecting"


# ---------------------------------------------------------------------------------------------
# honest failure
# ---------------------------------------------------------------------------------------------


async def test_llm_down_keeps_the_message_and_the_turn_can_be_retried(redis_url: str) -> None:
    crews = FakeCrews(fail=[_conn_error(), _conn_error()])
    async with chat_service(redis_url, fake_context(crews=crews)) as chat:
        failed = await chat.turn(None, "How many deals did we win?", caller=AMY)
        assert failed.error is not None and failed.error.kind == "llm_unavailable"
        assert "not reachable" in failed.reply and "send it again" in failed.reply
        assert len(crews.calls) == 2, "a transient failure is retried once"
        view = await chat.get_thread(failed.thread_id, caller=AMY)
        assert [(m.role, m.content) for m in view.messages] == [("user", "How many deals did we win?")]
        assert view.error is not None

        again = await chat.turn(failed.thread_id, "How many deals did we win?", caller=AMY)
        assert again.error is None and again.reply.startswith("[pipeline] answer")
        view = await chat.get_thread(failed.thread_id, caller=AMY)
    assert [m.role for m in view.messages] == ["user", "assistant"], "the retried message is not repeated"
    assert view.error is None


async def test_transient_failure_then_success_answers(redis_url: str) -> None:
    crews = FakeCrews(fail=[_conn_error()])
    async with chat_service(redis_url, fake_context(crews=crews)) as chat:
        result = await chat.turn(None, "How many deals did we win?", caller=AMY)
    assert result.error is None and len(crews.calls) == 2


async def test_slow_llm_times_out_honestly(redis_url: str) -> None:
    crews = FakeCrews(delay_s=2.0)
    async with chat_service(redis_url, fake_context(crews=crews, crew_timeout_s=0.2)) as chat:
        frames = [f async for f in chat.stream(None, "How many deals did we win?", caller=AMY)]
    assert frames[-1]["type"] == "error"
    assert frames[-1]["kind"] == "llm_timeout" and frames[-1]["retryable"] is True
    assert len(crews.calls) == 1, "a timeout is not retried"


async def test_garbage_output_is_reported(redis_url: str) -> None:
    from crews.runner import CrewOutputError

    crews = FakeCrews(fail=[CrewOutputError("pipeline", "invalid JSON after 2 attempts", raw="{oops")])
    async with chat_service(redis_url, fake_context(crews=crews)) as chat:
        result = await chat.turn(None, "How many deals did we win?", caller=AMY)
    assert result.error is not None and result.error.kind == "llm_bad_output"
    assert "could not use" in result.reply


async def test_a_bug_in_a_crew_is_not_a_crash(redis_url: str) -> None:
    crews = FakeCrews(fail=[KeyError("boom")])
    async with chat_service(redis_url, fake_context(crews=crews)) as chat:
        result = await chat.turn(None, "How many deals did we win?", caller=AMY)
    assert result.error is not None and result.error.kind == "internal" and not result.error.retryable


# ---------------------------------------------------------------------------------------------
# state in Redis survives a restart
# ---------------------------------------------------------------------------------------------


async def test_conversation_survives_a_restart(redis_url: str) -> None:
    prefix = "test:restart"
    crews = FakeCrews()
    async with chat_service(redis_url, fake_context(crews=crews), prefix=prefix) as chat:
        first = await chat.turn(None, "How many deals has Darcel Schlecht won?", caller=AMY)

    # a new graph and a new checkpointer (a new Redis client) on the same Redis: a restarted app
    async with redis_saver(redis_url, prefix) as saver:
        chat2 = ChatService(build_graph(saver), fake_context(crews=crews), saver)
        view = await chat2.get_thread(first.thread_id, caller=AMY)
        assert view.messages[0].content == "How many deals has Darcel Schlecht won?"
        second = await chat2.turn(first.thread_id, "and his win rate?", caller=AMY)
    assert second.error is None
    assert crews.calls[-1].history[0].content == "How many deals has Darcel Schlecht won?"
    assert [e.key for e in crews.calls[-1].entities.items] == ["Darcel Schlecht"]


async def test_turns_of_one_thread_run_one_at_a_time(redis_url: str) -> None:
    crews = FakeCrews(delay_s=0.05)
    async with chat_service(redis_url, fake_context(crews=crews)) as chat:
        first = await chat.turn(None, "hello", caller=AMY)
        results = await asyncio.gather(
            *(chat.turn(first.thread_id, f"deals question {i}", caller=AMY) for i in range(3))
        )
        view = await chat.get_thread(first.thread_id, caller=AMY)
    assert all(r.error is None for r in results)
    assert [m.role for m in view.messages] == ["user", "assistant"] * 4


# ---------------------------------------------------------------------------------------------
# usage: LLM calls and tokens of a turn, counted at the LLM boundary
# ---------------------------------------------------------------------------------------------


async def test_usage_counts_chat_model_calls_and_tokens(redis_url: str) -> None:
    from llm import LLMConfig, chat_model
    from tests.support.stub_llm import StubLLM, estimate_tokens, prompt_tokens_of

    with StubLLM(answers=["pipeline"]) as stub:
        cfg = LLMConfig(base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=10, max_tokens=8)

        class ModelRouter:
            async def aclassify(
                self, message: str, previous_intent: Intent | None = None, entities: Entities | None = None
            ) -> IntentResult:
                answer = await chat_model(cfg).ainvoke(message)
                intent: Intent = "pipeline" if "pipeline" in str(answer.content) else "general"
                return IntentResult(intent=intent, confidence=1.0, method="llm", llm_calls=1)

        async with chat_service(redis_url, fake_context(router=ModelRouter())) as chat:
            result = await chat.turn(None, "How many deals did we win?", caller=AMY)
        assert stub.count == 1
        expected_prompt = prompt_tokens_of(stub.requests[0])
    assert result.intent == "pipeline"
    assert result.usage.llm_calls == 1 and result.usage.llm_failures == 0
    assert result.usage.prompt_tokens == expected_prompt
    assert result.usage.completion_tokens == estimate_tokens("pipeline")
