"""Prometheus metrics: the series `GET /metrics` exposes, and the LLM meter counting every request
of ChatOpenAI and CrewAI (streaming or not, failed or not) once, with the tokens the server
reported. Counters are process-wide, so each test compares values before and after."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from langchain_openai import ChatOpenAI

from app.api.routes.metrics import router
from observability import llm_meter, metrics
from observability.prices import ModelPrice, PriceTable, use_price_table
from tests.conftest import AUTH
from tests.support.stub_llm import StubLLM


def _tokens(model: str, kind: str) -> float:
    return metrics.sample("flowstate_llm_tokens_total", {"model": model, "kind": kind})


def _calls(model: str) -> float:
    return metrics.sample("flowstate_llm_calls_total", {"model": model})


@pytest.fixture
def exchanges() -> Iterator[list[llm_meter.LLMExchange]]:
    seen: list[llm_meter.LLMExchange] = []
    remove = llm_meter.add_listener(seen.append)
    yield seen
    remove()


@pytest.fixture
def priced() -> Iterator[PriceTable]:
    table = PriceTable(models={"stub-model": ModelPrice(prompt=3.0, completion=6.0)})
    use_price_table(table)
    yield table
    use_price_table(None)


def _chat(stub: StubLLM, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=stub.base_url,
        api_key="x",
        model=stub.model,
        max_retries=0,
        **llm_meter.openai_http_clients(),
        **kwargs,
    )  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# turns and guards
# ---------------------------------------------------------------------------------------------
def test_observe_turn_counts_by_intent_and_outcome_and_times_it() -> None:
    labels = {"intent": "closing", "outcome": "needs_approval"}
    before = metrics.sample("flowstate_turns_total", labels)
    count_before = metrics.sample("flowstate_turn_seconds_count")
    le_5 = metrics.sample("flowstate_turn_seconds_bucket", {"le": "5.0"})
    metrics.observe_turn("closing", "needs_approval", 4.2)
    assert metrics.sample("flowstate_turns_total", labels) == before + 1
    assert metrics.sample("flowstate_turn_seconds_count") == count_before + 1
    assert metrics.sample("flowstate_turn_seconds_bucket", {"le": "5.0"}) == le_5 + 1


def test_turn_timer_records_an_error_outcome() -> None:
    labels = {"intent": "pipeline", "outcome": "error"}
    before = metrics.sample("flowstate_turns_total", labels)
    with pytest.raises(RuntimeError), metrics.TurnTimer() as timer:
        timer.intent = "pipeline"
        raise RuntimeError("boom")
    assert metrics.sample("flowstate_turns_total", labels) == before + 1


def test_guard_failures_count_only_failed_verdicts() -> None:
    before = metrics.sample("flowstate_guard_failures_total", {"validator": "policy"})
    tone_before = metrics.sample("flowstate_guard_failures_total", {"validator": "tone"})

    class Verdict:
        def __init__(self, validator: str, passed: bool) -> None:
            self.validator, self.passed, self.message = validator, passed, None

    failed = metrics.observe_guard_verdicts(
        [Verdict("policy", False), Verdict("tone", True), {"validator": "policy", "outcome": "fail"}]
    )
    assert failed == 2
    assert metrics.sample("flowstate_guard_failures_total", {"validator": "policy"}) == before + 2
    assert metrics.sample("flowstate_guard_failures_total", {"validator": "tone"}) == tone_before


def test_metrics_endpoint_serves_the_series() -> None:
    metrics.observe_turn("discovery", "answered", 1.5)
    metrics.observe_guard_verdicts([{"validator": "grounding", "passed": False}])
    metrics.observe_llm_request("qwen2.5-coder-1.5b-instruct")
    metrics.observe_llm_usage("qwen2.5-coder-1.5b-instruct", 120, 30, 0.0)
    app = FastAPI()
    app.include_router(router)
    client = TestClient(app, headers=AUTH)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
    body = response.text
    for series in (
        r'flowstate_turns_total\{intent="discovery",outcome="answered"\} \d',
        r"flowstate_turn_seconds_bucket\{le=\"2.0\"\} \d",
        r'flowstate_llm_calls_total\{model="qwen2.5-coder-1.5b-instruct"\} \d',
        r'flowstate_llm_tokens_total\{kind="prompt",model="qwen2.5-coder-1.5b-instruct"\} \d',
        r'flowstate_llm_tokens_total\{kind="completion",model="qwen2.5-coder-1.5b-instruct"\} \d',
        r'flowstate_guard_failures_total\{validator="grounding"\} \d',
        r'flowstate_llm_cost_usd_total\{model="qwen2.5-coder-1.5b-instruct"\} 0.0',
    ):
        assert re.search(series, body), series


# ---------------------------------------------------------------------------------------------
# the LLM meter
# ---------------------------------------------------------------------------------------------
async def test_meter_counts_chatopenai_calls_and_tokens(
    stub_llm: StubLLM, exchanges: list[llm_meter.LLMExchange], priced: PriceTable
) -> None:
    calls, prompt, completion = (
        _calls("stub-model"),
        _tokens("stub-model", "prompt"),
        _tokens("stub-model", "completion"),
    )
    cost = metrics.sample("flowstate_llm_cost_usd_total", {"model": "stub-model"})
    _chat(stub_llm).invoke("sync call")
    await _chat(stub_llm).ainvoke("async call")
    chunks = [c async for c in _chat(stub_llm, streaming=True, stream_usage=True).astream("streamed call")]
    assert "".join(str(c.content) for c in chunks) == "This is a stub answer."

    assert stub_llm.count == 3 and len(exchanges) == 3
    served_prompt = sum(r["usage"]["prompt_tokens"] for r in stub_llm.responses)
    served_completion = sum(r["usage"]["completion_tokens"] for r in stub_llm.responses)
    assert _calls("stub-model") == calls + 3
    assert _tokens("stub-model", "prompt") == prompt + served_prompt
    assert _tokens("stub-model", "completion") == completion + served_completion
    expected_cost = (served_prompt * 3.0 + served_completion * 6.0) / 1e6
    assert metrics.sample("flowstate_llm_cost_usd_total", {"model": "stub-model"}) == pytest.approx(
        cost + expected_cost
    )
    assert [e.stream for e in exchanges] == [False, False, True]
    assert all(e.status == 200 for e in exchanges)


async def test_meter_counts_the_chunks_of_a_stream_that_reports_no_usage(
    stub_llm: StubLLM, exchanges: list[llm_meter.LLMExchange]
) -> None:
    # llama.cpp sends no usage when streaming: one content chunk is one generated token there
    chunks = [c async for c in _chat(stub_llm, streaming=True).astream("streamed without usage")]
    content = [c for c in chunks if c.content]
    assert len(exchanges) == 1 and exchanges[0].stream
    assert exchanges[0].completion_tokens == len(content) > 0
    assert exchanges[0].prompt_tokens == 0


def test_meter_counts_a_failed_request_without_tokens(
    stub_llm: StubLLM, exchanges: list[llm_meter.LLMExchange]
) -> None:
    calls, prompt = _calls("stub-model"), _tokens("stub-model", "prompt")
    stub_llm.fail_next(1, status=500)
    with pytest.raises(openai.InternalServerError):
        _chat(stub_llm).invoke("will fail")
    assert _calls("stub-model") == calls + 1
    assert _tokens("stub-model", "prompt") == prompt
    assert [(e.status, e.prompt_tokens) for e in exchanges] == [(500, 0)]


def test_meter_counts_a_request_that_never_got_an_answer(exchanges: list[llm_meter.LLMExchange]) -> None:
    calls = _calls("nobody-home")
    model = ChatOpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="x",
        model="nobody-home",
        max_retries=0,
        timeout=2,
        **llm_meter.openai_http_clients(),
    )
    with pytest.raises(openai.APIConnectionError):
        model.invoke("hello?")
    assert _calls("nobody-home") == calls + 1
    assert [(e.model, e.status) for e in exchanges] == [("nobody-home", None)]


def test_meter_counts_crewai_llm_calls(stub_llm: StubLLM, exchanges: list[llm_meter.LLMExchange]) -> None:
    from crewai import LLM

    calls, completion = _calls("stub-model"), _tokens("stub-model", "completion")
    llm = LLM(
        model="openai/stub-model",
        base_url=stub_llm.base_url,
        api_key="x",
        max_retries=0,
        interceptor=llm_meter.crewai_interceptor(),
    )
    assert llm.call("Say hello") == "This is a stub answer."
    assert stub_llm.count == 1
    assert _calls("stub-model") == calls + 1
    assert (
        _tokens("stub-model", "completion")
        == completion + stub_llm.responses[0]["usage"]["completion_tokens"]
    )
    assert len(exchanges) == 1


def test_metered_async_client_survives_successive_event_loops(stub_llm: StubLLM) -> None:
    """Scripts run `asyncio.run` per question; the shared async client must not reuse a
    connection of a closed loop."""
    model = _chat(stub_llm)
    for _ in range(3):
        reply = asyncio.run(model.ainvoke("again"))
        assert reply.content == "This is a stub answer."
    assert stub_llm.count == 3


def test_meter_leaves_other_requests_alone(stub_llm: StubLLM, exchanges: list[llm_meter.LLMExchange]) -> None:
    client = llm_meter.openai_http_clients()["http_client"]
    response = client.get(f"{stub_llm.base_url}/models")
    assert response.status_code == 200 and response.json()["data"][0]["id"] == "stub-model"
    assert response.request.headers.get("accept-encoding") != "identity"  # not touched
    assert exchanges == []
