"""The crew runner (`crews.runner.kickoff_validated`) against a stub OpenAI-compatible server: the
request shape the local llama.cpp server needs, usage counting, and validation with one retry."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from crews.runner import CrewOutputError, kickoff_validated
from llm import LLMConfig
from observability.llm_meter import usage_scope
from tests.support.stub_llm import StubLLM


class Answer(BaseModel):
    reply: str = Field(min_length=1, max_length=1500)
    score: int = Field(0, ge=0, le=100)


def _cfg(stub: StubLLM, **kw: Any) -> LLMConfig:
    return LLMConfig(
        base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=10, max_tokens=100, **kw
    )


def _build(llm):  # type: ignore[no-untyped-def]
    from crews.crewkit import Agent, Task, single_crew

    agent = Agent(role="Tester", goal="Answer", backstory="You test.", llm=llm, max_iter=1, max_retry_limit=0)
    task = Task(description="Say hi to {name}.", expected_output='JSON {"reply": "..."}', agent=agent)
    return single_crew([agent], [task])


async def test_crew_llm_request_shape_and_usage(stub: StubLLM) -> None:
    stub.answers = ['{"reply": "hi", "score": 3}']
    with usage_scope() as usage:
        run = await kickoff_validated("test", _build, {"name": "Ann"}, Answer, _cfg(stub), max_tokens=50)
    assert run.output == Answer(reply="hi", score=3)
    assert run.attempts == 1
    assert stub.count == 1 and usage.calls == 1
    body = stub.requests[0]
    assert body["response_format"]["type"] == "json_object"
    assert body["response_format"]["schema"]["properties"]["reply"]["type"] == "string"
    assert body["temperature"] == 0
    assert body["max_tokens"] == 50  # the call's cap, below the config's 100
    assert "Say hi to Ann." in body["messages"][-1]["content"]
    served = stub.responses[0]["usage"]
    assert usage.prompt_tokens == served["prompt_tokens"] > 0
    assert usage.completion_tokens == served["completion_tokens"] > 0
    assert run.usage.calls == 1


async def test_invalid_answer_is_retried_once_with_the_error_explained(stub: StubLLM) -> None:
    stub.answers = ['{"score": 500}', '{"reply": "fixed", "score": 5}']
    run = await kickoff_validated("test", _build, {"name": "Bo"}, Answer, _cfg(stub))
    assert run.output.reply == "fixed" and run.attempts == 2
    assert stub.count == 2
    retry_prompt = stub.requests[1]["messages"][-1]["content"]
    assert "previous answer was rejected" in retry_prompt
    assert "reply" in retry_prompt and "score" in retry_prompt


async def test_two_invalid_answers_raise_crew_output_error(stub: StubLLM) -> None:
    stub.answers = ["not json at all"]
    with pytest.raises(CrewOutputError) as info:
        await kickoff_validated("test", _build, {"name": "Cy"}, Answer, _cfg(stub))
    assert stub.count == 2  # one try, one retry, no more
    assert info.value.crew == "test"
    assert info.value.raw == "not json at all"
    assert info.value.usage.calls == 2


async def test_llm_failure_raises_crew_output_error_without_retry_storm(stub: StubLLM) -> None:
    stub.fail_next(10, status=500)
    with pytest.raises(CrewOutputError):
        await kickoff_validated("test", _build, {"name": "Di"}, Answer, _cfg(stub, max_retries=0))
    assert stub.count == 1  # no client retry, no crew retry after a transport failure
