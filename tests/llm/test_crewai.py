"""The CrewAI LLM of the LLM layer: the text (ReAct) path for agents with tools, the OpenAI
dialect's structured output, and the reply cap."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from llm import LLMConfig, crew_llm
from tests.support.stub_llm import StubLLM


class Answer(BaseModel):
    reply: str


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    with StubLLM() as llm:
        yield llm


def _cfg(stub: StubLLM, **kw: Any) -> LLMConfig:
    return LLMConfig(
        base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=10, max_tokens=100, **kw
    )


def test_text_tool_path_and_openai_dialect(stub: StubLLM) -> None:
    llm: Any = crew_llm(_cfg(stub), tools=True)
    assert llm.supports_function_calling() is False
    params = llm._prepare_completion_params([{"role": "user", "content": "x"}])  # type: ignore[attr-defined]
    assert params["stop"] == ["\nObservation:"]
    plain: Any = crew_llm(_cfg(stub))
    assert plain.supports_function_calling() is True
    openai_llm = crew_llm(_cfg(stub, dialect="openai"), schema=Answer)
    params = openai_llm._prepare_completion_params([{"role": "user", "content": "x"}])  # type: ignore[attr-defined]
    assert params["response_format"]["type"] == "json_schema"
    assert crew_llm(_cfg(stub), max_tokens=10_000).max_tokens == 100  # never above the config


def test_crew_llms_share_one_client_built_on_first_use(stub: StubLLM) -> None:
    from observability.llm_meter import usage_scope

    first: Any = crew_llm(_cfg(stub), schema=Answer)
    second: Any = crew_llm(_cfg(stub), schema=Answer)
    assert first._client is None and first._async_client is None  # nothing built per crew run
    with usage_scope() as usage:
        assert "reply" in first.call([{"role": "user", "content": "one"}])
        assert "reply" in second.call([{"role": "user", "content": "two"}])
    assert first._client is second._client is not None
    assert usage.calls == 2 and stub.count == 2  # both metered through the shared transport
    other: Any = crew_llm(dataclasses.replace(_cfg(stub), timeout_s=3.0), schema=Answer)
    other.call([{"role": "user", "content": "three"}])
    assert other._client is not first._client  # other endpoint settings, other client
