"""One chat turn through the whole app, traced into a local stand-in for Langfuse, then counted in
`GET /metrics`.

The app is the real one (`create_app` with its lifespan: `chat_service` sets tracing up from the
`LANGFUSE_*` environment), on the real PostgreSQL with a small seeded CRM and the real Redis, with
the real entity resolver, intent router, crews and guards. Only the LLM is a stub
(tests/support/stub_llm.py) that counts requests; its script makes the discovery crew's first
brief name a company the CRM does not have, so the grounding guard re-asks the crew, and the
second brief (written with the guards' feedback in its prompt) passes. The turn therefore holds
every kind of LLM call a turn can make (the router's, if it is unsure, and two crew runs) and
a failed and a passed guard verdict.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select, text

from app.api.auth import TOKEN_ADMIN
from app.main import create_app
from config.settings import get_settings
from contracts import INTENTS
from crm.db import session_scope
from crm.models import Event
from crm.repository import create_account, create_contact, create_deal, create_product, create_rep
from crm.schemas import AccountCreate, ContactCreate, DealCreate, ProductCreate, SalesRepCreate
from embedded.stack import Endpoints
from guards.config import load_guards_config
from observability import metrics
from observability.tracing import GUARD_SCORE_PREFIX
from tests.conftest import AUTH, DATA_TABLES
from tests.observability.conftest import langfuse_settings
from tests.support.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.support.stub_llm import DEFAULT_ANSWER, StubLLM, example_from_schema, requested_schema

#: Who the turn runs as: the caller of its credential (AUTH: the built-in admin of the API token).
USER = TOKEN_ADMIN.actor
MESSAGE = "What do we know about Cancity?"
INVENTED = "Northwind Traders"
FEEDBACK_MARK = "was not shown to the rep"  # from guards.runner.reask_instructions

FIRST_BRIEF = {
    "summary": f"Cancity is negotiating a merger with {INVENTED}.",
    "talking_points": [f"Ask about the merger with {INVENTED}."],
}
SECOND_BRIEF = {
    "summary": "Cancity is a retail account that bought GTX Pro.",
    "talking_points": ["Ask how GTX Pro is working for them."],
}


def _text_of(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def script(body: dict[str, Any]) -> str:
    """The stub's answers: the router's intent (if it asks), the researcher's brief (invented
    name first; grounded once the guards' feedback is in the prompt), else a schema example."""
    schema = requested_schema(body)
    props = set((schema or {}).get("properties", {}))
    if props == {"intent"}:
        return json.dumps({"intent": "discovery"})
    if {"summary", "talking_points"} <= props:
        return json.dumps(SECOND_BRIEF if FEEDBACK_MARK in _text_of(body) else FIRST_BRIEF)
    if schema is not None:
        return json.dumps(example_from_schema(schema))
    return DEFAULT_ANSWER


def seed(engine: Engine) -> None:
    """Cancity (retail, United States) with contact Lena Ortiz, rep Jane Roe, product GTX Pro,
    one won and one open deal."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
    with session_scope(engine) as s:
        acc = create_account(
            s, AccountCreate(name="Cancity", sector="retail", office_location="United States")
        )
        create_contact(
            s,
            ContactCreate(
                account_id=acc.id,
                first_name="Lena",
                last_name="Ortiz",
                title="Buyer",
                email="lena.ortiz@cancity.example",
            ),
        )
        rep = create_rep(s, SalesRepCreate(name="Jane Roe", manager="Ann Lee", regional_office="West"))
        prod = create_product(s, ProductCreate(name="GTX Pro", series="GTX", list_price=4821))
        common = {"account_id": acc.id, "product_id": prod.id, "rep_id": rep.id}
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
            s, DealCreate(external_id="AAAA0001", stage="engaging", engage_date="2017-03-01", **common)
        )


def _series(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@dataclass
class TracedTurn:
    result: dict[str, Any]
    spans: list[ReceivedSpan]
    scores: list[dict[str, Any]]
    receiver_errors: list[str]
    stub_bodies: list[dict[str, Any]]
    stub_responses: list[dict[str, Any]]
    metrics_before: dict[str, float]
    metrics_after: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    events: list[dict[str, Any]]

    def after(self, name: str, **labels: str) -> float:
        return self.metrics_after.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
async def turn(engine: Engine, database_url: str, redis_url: str) -> AsyncIterator[TracedTurn]:
    seed(engine)
    with pytest.MonkeyPatch.context() as mp, OTLPReceiver() as receiver, StubLLM(script) as stub:
        # every LLM request and span of this app must be the turn's: no start-up prompt warm-up
        mp.setenv("FLOWSTATE_LLM_WARM_PROMPTS", "false")
        langfuse_settings(mp, receiver.base_url)  # LANGFUSE_* env on, pointing at the receiver
        endpoints = Endpoints(
            database_url=database_url,
            redis_url=redis_url,
            openai_base_url=stub.base_url,
            openai_api_key="x",
            llm_model=stub.model,
            embedded=frozenset({"llm"}),  # the embedded server's dialect (json_object + schema)
        )
        app = create_app(endpoints)
        guarded = load_guards_config().for_intent("discovery")
        before = {
            "turns": metrics.sample("flowstate_turns_total", {"intent": "discovery", "outcome": "answered"}),
            "latency_count": metrics.sample("flowstate_turn_seconds_count"),
            "llm_calls": metrics.sample("flowstate_llm_calls_total", {"model": stub.model}),
            "prompt": metrics.sample("flowstate_llm_tokens_total", {"model": stub.model, "kind": "prompt"}),
            "completion": metrics.sample(
                "flowstate_llm_tokens_total", {"model": stub.model, "kind": "completion"}
            ),
            **{
                f"guard:{v}": metrics.sample("flowstate_guard_failures_total", {"validator": v})
                for v in guarded
            },
        }
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://test", timeout=120, headers=AUTH
                ) as c:
                    response = await c.post("/api/chat", json={"message": MESSAGE})
                    assert response.status_code == 200, response.text
                    scraped = await c.get("/metrics")
                    assert scraped.status_code == 200
            # the lifespan's end shut tracing down, which flushed every span and score
            receiver.wait_for(lambda r: bool(r.scores) and any(s.parent_span_id is None for s in r.spans))
            result = response.json()
            with session_scope(engine) as s:
                rows = s.scalars(select(Event).where(Event.thread_id == result["thread_id"])).all()
                events = [{"kind": e.kind, "payload": e.payload, "actor": e.actor} for e in rows]
            yield TracedTurn(
                result=result,
                spans=receiver.snapshot(),
                scores=list(receiver.scores),
                receiver_errors=list(receiver.errors),
                stub_bodies=list(stub.requests),
                stub_responses=list(stub.responses),
                metrics_before=before,
                metrics_after=_series(scraped.text),
                events=events,
            )
        finally:
            get_settings.cache_clear()


# ---------------------------------------------------------------------------------------------
# the turn itself
# ---------------------------------------------------------------------------------------------


def test_the_turn_was_reasked_and_the_grounded_brief_shown(turn: TracedTurn) -> None:
    result = turn.result
    assert result["error"] is None, result["reply"]
    assert result["intent"] == "discovery"
    assert INVENTED not in result["reply"]
    assert SECOND_BRIEF["summary"] in result["reply"]
    # the guards' feedback reached the re-asked crew's prompt
    briefs = [b for b in turn.stub_bodies if "talking_points" in json.dumps(b.get("response_format"))]
    assert len(briefs) == 2 and FEEDBACK_MARK in _text_of(briefs[1]) and INVENTED in _text_of(briefs[1])
    failed = [v for v in result["verdicts"] if not v["passed"]]
    assert [(v["validator"], v["action"], v["attempt"]) for v in failed] == [("grounding", "reask", 0)]
    assert all(v["passed"] for v in result["verdicts"] if v["attempt"] == 1)
    assert result["usage"]["llm_calls"] == len(turn.stub_bodies)
    assert result["usage"]["prompt_tokens"] == sum(r["usage"]["prompt_tokens"] for r in turn.stub_responses)
    assert result["usage"]["completion_tokens"] == sum(
        r["usage"]["completion_tokens"] for r in turn.stub_responses
    )
    (event,) = [e for e in turn.events if e["kind"] == "guard.verdicts"]
    assert event["actor"] == USER and event["payload"]["decision"] == "pass"
    assert event["payload"]["verdicts"] == result["verdicts"]


# ---------------------------------------------------------------------------------------------
# the trace
# ---------------------------------------------------------------------------------------------


def test_every_llm_request_the_stub_served_is_exactly_one_generation(turn: TracedTurn) -> None:
    assert turn.receiver_errors == []
    generations = [s for s in turn.spans if s.observation_type == "generation"]
    assert len(turn.stub_bodies) >= 2  # two crew runs, plus the router's if it asked
    assert len(generations) == len(turn.stub_bodies)
    served = sorted(
        (r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"]) for r in turn.stub_responses
    )
    reported = []
    for gen in generations:
        assert gen.attributes["langfuse.observation.model.name"] == "stub-model"
        usage = gen.json_attr("langfuse.observation.usage_details")
        reported.append((usage["input"], usage["output"]))
    assert sorted(reported) == served
    crew_generations = [g for g in generations if g.scope.startswith("openinference.instrumentation.crewai")]
    assert len(crew_generations) == 2  # the first brief and the re-asked one


def test_all_spans_of_the_turn_share_one_trace(turn: TracedTurn) -> None:
    trace_ids = {s.trace_id for s in turn.spans}
    assert len(trace_ids) == 1
    roots = [s for s in turn.spans if s.parent_span_id is None]
    assert len(roots) == 1
    ids = {s.span_id for s in turn.spans}
    assert all(s.parent_span_id in ids for s in turn.spans if s.parent_span_id is not None)
    names = {s.name for s in turn.spans}
    # the graph's nodes, the crew runs (first and re-asked) and the guard are in it
    assert {"resolve_entities", "classify_intent", "discovery", "guard", "respond"} <= names
    assert len([s for s in turn.spans if s.name == "crew.kickoff" or s.name.endswith(".kickoff")]) >= 2
    # the tools/ queries the crew ran before its kickoff (observability.tracing.traced)
    tools = [s for s in turn.spans if s.observation_type == "tool"]
    assert any(t.name == "accounts.account_profile" for t in tools), sorted(t.name for t in tools)


def test_session_and_user_are_set_on_every_span(turn: TracedTurn) -> None:
    thread_id = turn.result["thread_id"]
    for span in turn.spans:
        assert span.attributes.get("session.id") == thread_id, span.name
        assert span.attributes.get("user.id") == USER, span.name


def test_trace_is_named_after_the_intent(turn: TracedTurn) -> None:
    assert turn.result["intent"] in INTENTS
    (root,) = [s for s in turn.spans if s.parent_span_id is None]
    assert root.name == turn.result["intent"] == "discovery"
    assert root.attributes["langfuse.trace.name"] == "discovery"
    assert root.json_attr("langfuse.observation.input") == MESSAGE
    assert root.json_attr("langfuse.observation.output") == turn.result["reply"]


def test_guard_scores_are_on_the_trace(turn: TracedTurn) -> None:
    (trace_id,) = {s.trace_id for s in turn.spans}
    scores = {s["name"]: s for s in turn.scores}
    expected = {f"{GUARD_SCORE_PREFIX}{v}" for v in load_guards_config().for_intent("discovery")}
    assert set(scores) == expected
    assert all(s["traceId"] == trace_id for s in scores.values())
    assert scores[f"{GUARD_SCORE_PREFIX}grounding"]["value"] == 0.0  # failed once, then re-asked
    assert INVENTED in scores[f"{GUARD_SCORE_PREFIX}grounding"]["comment"]
    assert all(s["value"] == 1.0 for name, s in scores.items() if name != f"{GUARD_SCORE_PREFIX}grounding")
    guardrails = [s for s in turn.spans if s.observation_type == "guardrail"]
    assert len(guardrails) == len(turn.result["verdicts"])


# ---------------------------------------------------------------------------------------------
# GET /metrics after the turn
# ---------------------------------------------------------------------------------------------


def test_metrics_count_the_turn_its_latency_llm_usage_and_guard_failures(turn: TracedTurn) -> None:
    before = turn.metrics_before
    assert turn.after("flowstate_turns_total", intent="discovery", outcome="answered") == before["turns"] + 1
    assert turn.after("flowstate_turn_seconds_count") == before["latency_count"] + 1
    assert turn.after("flowstate_turn_seconds_bucket", le="+Inf") >= before["latency_count"] + 1
    calls = len(turn.stub_bodies)
    prompt = sum(r["usage"]["prompt_tokens"] for r in turn.stub_responses)
    completion = sum(r["usage"]["completion_tokens"] for r in turn.stub_responses)
    assert turn.after("flowstate_llm_calls_total", model="stub-model") == before["llm_calls"] + calls
    assert (
        turn.after("flowstate_llm_tokens_total", model="stub-model", kind="prompt")
        == before["prompt"] + prompt
    )
    assert (
        turn.after("flowstate_llm_tokens_total", model="stub-model", kind="completion")
        == before["completion"] + completion
    )
    assert (
        turn.after("flowstate_guard_failures_total", validator="grounding") == before["guard:grounding"] + 1
    )
    for validator in load_guards_config().for_intent("discovery"):
        if validator != "grounding":
            assert (
                turn.after("flowstate_guard_failures_total", validator=validator)
                == before[f"guard:{validator}"]
            )
