"""Langfuse tracing against a local OTLP receiver (what Langfuse would receive) and a stub LLM
that counts requests: one trace per turn, every LLM request exactly one generation, guard scores,
nothing at all without keys, and no failure of a turn when tracing fails."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

import pytest
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

from config.settings import REPO_ROOT, get_settings
from observability import llm_meter
from observability.prices import use_price_table
from observability.tracing import (
    GUARD_SCORE_PREFIX,
    Tracing,
    current_turn,
    enrich_generation_spans,
    ensure_crewai_instrumented,
    generation_patch,
    get_tracing,
    setup_tracing,
)
from tests.observability.conftest import BASIC_AUTH, PUBLIC_KEY, STUB_PRICE, TEST_PRICES, langfuse_settings
from tests.support.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.support.stub_llm import StubLLM

THREAD_ID = "thread-42"
USER_ID = "rep-darcel"


class _State(TypedDict, total=False):
    question: str
    label: str
    crew_output: str
    reply: str


def _chat(stub: StubLLM, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=stub.base_url,
        api_key="x",
        model=stub.model,
        max_retries=0,
        **llm_meter.openai_http_clients(),
        **kwargs,
    )


def _crew(stub: StubLLM) -> Any:
    ensure_crewai_instrumented()
    from crewai import LLM, Agent, Crew, Task

    llm = LLM(
        model=f"openai/{stub.model}",
        base_url=stub.base_url,
        api_key="x",
        max_retries=0,
        interceptor=llm_meter.crewai_interceptor(),
    )
    agent = Agent(
        role="Account researcher",
        goal="Summarise the account",
        backstory="Knows the CRM.",
        llm=llm,
        max_retry_limit=0,
    )
    task = Task(description="Summarise Cancity in one line.", expected_output="One line.", agent=agent)
    return Crew(agents=[agent], tasks=[task])


def _graph(stub: StubLLM) -> Any:
    """resolve -> classify (ChatOpenAI) -> crew (CrewAI, `akickoff`) -> respond (streaming
    ChatOpenAI): the shape of a Flowstate turn, every node async like the app's."""

    async def classify(state: _State) -> _State:
        reply = await _chat(stub).ainvoke(f"Classify: {state['question']}")
        return {"label": str(reply.content)}

    async def crew(state: _State) -> _State:
        out = await _crew(stub).akickoff()
        return {"crew_output": out.raw}

    async def respond(state: _State) -> _State:
        parts = [c.content async for c in _chat(stub, streaming=True, stream_usage=True).astream("Reply")]
        return {"reply": "".join(str(p) for p in parts)}

    graph = StateGraph(_State)
    graph.add_node("classify", classify)
    graph.add_node("crew", crew)
    graph.add_node("respond", respond)
    graph.add_edge(START, "classify")
    graph.add_edge("classify", "crew")
    graph.add_edge("crew", "respond")
    graph.add_edge("respond", END)
    return graph.compile()


@dataclass
class Turn:
    receiver: OTLPReceiver
    stub: StubLLM
    trace_id: str | None
    state: dict[str, Any]
    exchanges: list[llm_meter.LLMExchange] = field(default_factory=list)

    @property
    def spans(self) -> list[ReceivedSpan]:
        return self.receiver.snapshot()


@pytest.fixture(scope="module")
async def turn() -> AsyncIterator[Turn]:
    """One traced chat turn through an async LangGraph graph with a crew, run once for the
    assertions below."""
    with pytest.MonkeyPatch.context() as mp, OTLPReceiver() as receiver, StubLLM() as stub:
        tracing = setup_tracing(langfuse_settings(mp, receiver.base_url), prices=TEST_PRICES)
        exchanges: list[llm_meter.LLMExchange] = []
        remove = llm_meter.add_listener(exchanges.append)
        try:
            graph = _graph(stub)
            with tracing.turn_span(THREAD_ID, USER_ID, input="What about Cancity?") as trace:
                state = await graph.ainvoke(
                    {"question": "What about Cancity?"}, config={"callbacks": tracing.callbacks()}
                )
                trace.set_intent("discovery")
                # the dict form of guards.types.Verdict, as the graph state keeps them: grounding
                # failed, the crew was re-asked, the second answer passed
                trace.record_guard_verdicts(
                    [
                        {
                            "validator": "grounding",
                            "target": "reply",
                            "passed": False,
                            "action": "reask",
                            "message": "invented figure 42",
                        },
                        {
                            "validator": "tone",
                            "target": "reply",
                            "passed": True,
                            "action": "pass",
                            "message": "",
                        },
                        {
                            "validator": "grounding",
                            "target": "reply",
                            "passed": True,
                            "action": "pass",
                            "message": "",
                        },
                    ]
                )
                trace.set_output(state["reply"])
            tracing.flush()
            receiver.wait_for(lambda r: len(r.scores) >= 2 and any(s.parent_span_id is None for s in r.spans))
            yield Turn(
                receiver=receiver, stub=stub, trace_id=trace.trace_id, state=dict(state), exchanges=exchanges
            )
        finally:
            remove()
            tracing.shutdown()
            use_price_table(None)
            get_settings.cache_clear()


def test_every_llm_request_is_exactly_one_generation(turn: Turn) -> None:
    assert turn.stub.count == 3  # classify + crew + respond
    generations = [s for s in turn.spans if s.observation_type == "generation"]
    assert len(generations) == turn.stub.count
    served = sorted(
        (r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"]) for r in turn.stub.responses
    )
    reported = []
    for gen in generations:
        assert gen.attributes["langfuse.observation.model.name"] == "stub-model"
        assert gen.attributes.get("langfuse.observation.input"), gen.name
        assert gen.attributes.get("langfuse.observation.output"), gen.name
        usage = gen.json_attr("langfuse.observation.usage_details")
        reported.append((usage["input"], usage["output"]))
        cost = gen.json_attr("langfuse.observation.cost_details")
        expected = (usage["input"] * STUB_PRICE.prompt + usage["output"] * STUB_PRICE.completion) / 1e6
        assert cost["total"] == pytest.approx(expected)
    # the token counts of each generation are the ones the server reported
    assert sorted(reported) == served
    # the crew's call is one of them (OpenInference's LLM span, marked a generation at export)
    assert any(g.scope.startswith("openinference.instrumentation.crewai") for g in generations)


def test_all_spans_share_the_turns_trace(turn: Turn) -> None:
    assert turn.trace_id is not None and len(turn.trace_id) == 32
    assert {s.trace_id for s in turn.spans} == {turn.trace_id}
    ids = {s.span_id for s in turn.spans}
    roots = [s for s in turn.spans if s.parent_span_id is None]
    assert len(roots) == 1
    assert all(s.parent_span_id in ids for s in turn.spans if s.parent_span_id is not None)


def test_trace_is_named_after_the_intent_with_session_and_user(turn: Turn) -> None:
    (root,) = [s for s in turn.spans if s.parent_span_id is None]
    assert root.name == "discovery"
    assert root.attributes["langfuse.trace.name"] == "discovery"
    assert root.json_attr("langfuse.observation.input") == "What about Cancity?"
    assert root.json_attr("langfuse.observation.output") == turn.state["reply"]
    for span in turn.spans:
        assert span.attributes.get("session.id") == THREAD_ID, span.name
        assert span.attributes.get("user.id") == USER_ID, span.name


def test_crew_spans_nest_under_the_graph_node_that_ran_the_crew(turn: Turn) -> None:
    by_id = {s.span_id: s for s in turn.spans}
    (kickoff,) = [s for s in turn.spans if s.name == "crew.kickoff"]
    assert kickoff.parent_span_id is not None
    assert by_id[kickoff.parent_span_id].name == "crew"  # the LangGraph node's span
    crew_generation = next(
        s for s in turn.spans if s.observation_type == "generation" and s.scope.startswith("openinference")
    )
    ancestors = []
    node: ReceivedSpan | None = crew_generation
    while node is not None and node.parent_span_id is not None:
        node = by_id.get(node.parent_span_id)
        ancestors.append(node.name if node else None)
    assert "crew.kickoff" in ancestors


def test_guard_verdicts_are_scores_and_guardrail_observations(turn: Turn) -> None:
    scores = {s["name"]: s for s in turn.receiver.scores}
    assert set(scores) == {f"{GUARD_SCORE_PREFIX}grounding", f"{GUARD_SCORE_PREFIX}tone"}
    grounding = scores[f"{GUARD_SCORE_PREFIX}grounding"]
    assert grounding["traceId"] == turn.trace_id
    assert grounding["value"] == 0.0
    assert grounding["comment"] == "reply: invented figure 42 (reask)"
    assert grounding["dataType"] == "BOOLEAN"
    assert scores[f"{GUARD_SCORE_PREFIX}tone"]["value"] == 1.0
    guardrails = [s for s in turn.spans if s.observation_type == "guardrail"]
    assert sorted(g.name for g in guardrails) == [
        f"{GUARD_SCORE_PREFIX}grounding",
        f"{GUARD_SCORE_PREFIX}grounding",
        f"{GUARD_SCORE_PREFIX}tone",
    ]
    failed = [g for g in guardrails if g.json_attr("langfuse.observation.output")["passed"] is False]
    assert len(failed) == 1 and failed[0].attributes["langfuse.observation.level"] == "WARNING"


def test_export_is_authenticated_gzip_otlp(turn: Turn) -> None:
    assert turn.receiver.errors == []
    assert turn.receiver.authorizations and set(turn.receiver.authorizations) == {BASIC_AUTH}


def test_meter_saw_the_same_requests(turn: Turn) -> None:
    assert len(turn.exchanges) == turn.stub.count
    served = sorted(
        (r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"]) for r in turn.stub.responses
    )
    assert sorted((e.prompt_tokens, e.completion_tokens) for e in turn.exchanges) == served
    assert [e.stream for e in turn.exchanges].count(True) == 1


# ---------------------------------------------------------------------------------------------
# off, failing, torn down
# ---------------------------------------------------------------------------------------------
def test_without_keys_nothing_is_loaded_or_sent() -> None:
    """In a fresh interpreter: no Langfuse/OpenTelemetry SDK import, no thread, every call a
    no-op."""
    code = """
import sys, threading
from config.settings import Settings
from observability.tracing import setup_tracing
t = setup_tracing(Settings(_env_file=None))
with t.turn_span("th", "u") as turn:
    turn.set_intent("pipeline")
    assert turn.trace_id is None
    assert t.callbacks() == []
    assert t.record_guard_verdicts([{"validator": "tone", "passed": False}]) == 0
    with t.observation("tool") as obs:
        assert obs is None
t.flush(); t.shutdown()
assert not t.enabled
loaded = [m for m in ("langfuse", "opentelemetry.sdk", "crewai") if m in sys.modules]
assert not loaded, loaded
assert threading.active_count() == 1, threading.enumerate()
print("ok")
"""
    env = {"PATH": "/usr/bin:/bin", "FLOWSTATE_ENV": "test", "HOME": str(REPO_ROOT / ".data")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "langfuse" not in done.stderr.lower()


async def test_without_keys_a_turn_exports_nothing(
    otlp_receiver: OTLPReceiver, stub_llm: StubLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracing = setup_tracing(langfuse_settings(monkeypatch, otlp_receiver.base_url, keys=False))
    assert tracing is get_tracing() and not tracing.enabled
    with tracing.turn_span(THREAD_ID, USER_ID) as trace:
        reply = await _chat(stub_llm).ainvoke("hi", config={"callbacks": tracing.callbacks()})
        assert current_turn() is trace
    assert reply.content and stub_llm.count == 1
    tracing.flush()
    await asyncio.sleep(0.3)
    assert otlp_receiver.spans == [] and otlp_receiver.scores == [] and otlp_receiver.other == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_langfuse_never_fails_a_turn(
    stub_llm: StubLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_TIMEOUT", "1")
    tracing = setup_tracing(langfuse_settings(monkeypatch, f"http://127.0.0.1:{_closed_port()}"))
    try:
        assert tracing.enabled
        with tracing.turn_span(THREAD_ID, USER_ID) as trace:
            reply = await _chat(stub_llm).ainvoke("hi", config={"callbacks": tracing.callbacks()})
            trace.set_intent("general")
            trace.record_guard_verdicts([{"validator": "tone", "passed": True}])
        assert reply.content == "This is a stub answer."
        tracing.flush()  # export fails in the background; nothing raises here
    finally:
        tracing.shutdown()


async def test_an_error_in_the_turn_propagates_and_marks_the_trace(
    tracing: Tracing, otlp_receiver: OTLPReceiver
) -> None:
    with pytest.raises(ValueError, match="crew blew up"), tracing.turn_span(THREAD_ID, USER_ID):
        raise ValueError("crew blew up")
    tracing.flush()
    assert otlp_receiver.wait_for(lambda r: len(r.spans) == 1)
    (root,) = otlp_receiver.spans
    assert root.status_code == 2  # STATUS_CODE_ERROR
    assert "crew blew up" in root.status_message


async def test_observation_adds_a_child_span(tracing: Tracing, otlp_receiver: OTLPReceiver) -> None:
    with (
        tracing.turn_span(THREAD_ID, USER_ID) as trace,
        tracing.observation("tools.deal_metrics", as_type="tool", input={"rep": "Darcel"}) as obs,
    ):
        obs.update(output={"win_rate": 0.63})
    tracing.flush()
    assert otlp_receiver.wait_for(lambda r: len(r.spans) == 2)
    (tool,) = otlp_receiver.by_name("tools.deal_metrics")
    assert tool.observation_type == "tool" and tool.trace_id == trace.trace_id
    assert tool.json_attr("langfuse.observation.output") == {"win_rate": 0.63}


async def test_shutdown_leaves_no_tracing_behind(
    stub_llm: StubLLM, otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langfuse._client.resource_manager import LangfuseResourceManager
    from openinference.instrumentation.crewai import CrewAIInstrumentor

    first = setup_tracing(langfuse_settings(monkeypatch, otlp_receiver.base_url), prices=TEST_PRICES)
    _crew(stub_llm)  # instruments CrewAI
    assert CrewAIInstrumentor().is_instrumented_by_opentelemetry
    first.shutdown()
    assert not first.enabled and not get_tracing().enabled
    assert not CrewAIInstrumentor().is_instrumented_by_opentelemetry
    assert PUBLIC_KEY not in LangfuseResourceManager._instances

    # a crew now is not traced, and a new setup with the same key exports to its own URL
    await _crew(stub_llm).akickoff()
    with OTLPReceiver() as second_receiver:
        second = setup_tracing(langfuse_settings(monkeypatch, second_receiver.base_url), prices=TEST_PRICES)
        try:
            with second.turn_span(THREAD_ID, USER_ID):
                await _crew(stub_llm).akickoff()
            second.flush()
            assert second_receiver.wait_for(lambda r: len(r.generations()) == 1)
        finally:
            second.shutdown()
            use_price_table(None)
        assert {s.trace_id for s in second_receiver.spans} and len(
            {s.trace_id for s in second_receiver.spans}
        ) == 1
    assert otlp_receiver.spans == []


# ---------------------------------------------------------------------------------------------
# export-time enrichment
# ---------------------------------------------------------------------------------------------
def test_openinference_llm_span_becomes_a_priced_generation() -> None:
    patch = generation_patch(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "stub-model",
            "llm.token_count.prompt": 1000,
            "llm.token_count.completion": 500,
            "input.value": '[{"role": "user", "content": "hi"}]',
            "output.value": "hello",
        },
        TEST_PRICES,
    )
    assert patch["langfuse.observation.type"] == "generation"
    assert patch["langfuse.observation.model.name"] == "stub-model"
    assert json.loads(patch["langfuse.observation.usage_details"]) == {
        "input": 1000,
        "output": 500,
        "total": 1500,
    }
    assert json.loads(patch["langfuse.observation.cost_details"]) == pytest.approx(
        {"input": 0.001, "output": 0.001, "total": 0.002}
    )
    assert patch["langfuse.observation.output"] == "hello"


def test_langfuse_generation_gets_a_cost_only_when_priced_and_not_set() -> None:
    base = {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "stub-model"}
    openai_keys = {
        **base,
        "langfuse.observation.usage_details": json.dumps({"prompt_tokens": 10, "completion_tokens": 5}),
    }
    assert json.loads(generation_patch(openai_keys, TEST_PRICES)["langfuse.observation.cost_details"])[
        "total"
    ] == (pytest.approx(10e-6 + 10e-6))
    already = {**openai_keys, "langfuse.observation.cost_details": '{"total": 1}'}
    assert generation_patch(already, TEST_PRICES) == {}
    unknown = {**openai_keys, "langfuse.observation.model.name": "mystery-model"}
    assert generation_patch(unknown, TEST_PRICES) == {}
    not_llm = {"langfuse.observation.type": "span", "langfuse.observation.usage_details": "{}"}
    assert generation_patch(not_llm, TEST_PRICES) == {}


def test_enrichment_hook_never_raises() -> None:
    class Broken:
        @property
        def spans(self) -> Any:
            raise RuntimeError("boom")

    assert enrich_generation_spans(params=Broken()) is None  # type: ignore[arg-type]


class FakeSession:  # stands in for sqlalchemy.orm.Session: left out of the recorded input
    pass


async def test_traced_tools_become_tool_observations(tracing: Tracing, otlp_receiver: OTLPReceiver) -> None:
    from observability.tracing import traced

    @traced()
    def deal_metrics(session: FakeSession, rep: str) -> dict[str, float]:
        return {"win_rate": 0.63}

    @traced("memory.search", as_type="retriever")
    async def search(session: FakeSession, query: str, k: int = 3) -> list[str]:
        return ["note 1"]

    with tracing.turn_span(THREAD_ID, USER_ID) as trace:
        assert deal_metrics(FakeSession(), rep="Darcel Schlecht") == {"win_rate": 0.63}
        assert await search(FakeSession(), "pricing") == ["note 1"]
    tracing.flush()
    assert otlp_receiver.wait_for(lambda r: len(r.spans) == 3)
    (tool,) = otlp_receiver.by_name("test_tracing.deal_metrics")
    assert tool.observation_type == "tool" and tool.trace_id == trace.trace_id
    assert tool.json_attr("langfuse.observation.input") == {"rep": "Darcel Schlecht"}
    assert tool.json_attr("langfuse.observation.output") == {"win_rate": 0.63}
    (retriever,) = otlp_receiver.by_name("memory.search")
    assert retriever.observation_type == "retriever"
    assert retriever.json_attr("langfuse.observation.input") == {"query": "pricing"}


def test_traced_is_transparent_when_tracing_is_off() -> None:
    from observability.tracing import traced

    assert not get_tracing().enabled

    @traced()
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add.__name__ == "add"


async def test_observe_turn_traces_and_counts_a_turn(tracing: Tracing, otlp_receiver: OTLPReceiver) -> None:
    from observability import metrics
    from observability.turn import observe_turn

    labels = {"intent": "closing", "outcome": "safe_reply"}
    turns_before = metrics.sample("flowstate_turns_total", labels)
    policy_before = metrics.sample("flowstate_guard_failures_total", {"validator": "policy"})
    verdicts = [
        {
            "validator": "policy",
            "target": "reply",
            "passed": False,
            "action": "refused",
            "message": "60% > 20%",
        }
    ]
    with observe_turn(THREAD_ID, USER_ID, input="offer Cancity 60% off") as turn:
        turn.finish(intent="closing", outcome="safe_reply", verdicts=verdicts, output="I can't offer that.")
    assert metrics.sample("flowstate_turns_total", labels) == turns_before + 1
    assert metrics.sample("flowstate_guard_failures_total", {"validator": "policy"}) == policy_before + 1
    tracing.flush()
    assert otlp_receiver.wait_for(lambda r: len(r.scores) == 1 and any(s.name == "closing" for s in r.spans))
    assert otlp_receiver.scores[0]["comment"] == "reply: 60% > 20% (refused)"
    assert otlp_receiver.scores[0]["traceId"] == turn.trace.trace_id


def test_observe_turn_counts_errors_without_tracing() -> None:
    from observability import metrics
    from observability.turn import observe_turn

    labels = {"intent": "unknown", "outcome": "error"}
    before = metrics.sample("flowstate_turns_total", labels)
    with pytest.raises(TimeoutError), observe_turn(THREAD_ID, USER_ID):
        raise TimeoutError
    assert metrics.sample("flowstate_turns_total", labels) == before + 1
