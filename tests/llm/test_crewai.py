"""The CrewAI LLM of the LLM layer: the text (ReAct) path for agents with tools, the OpenAI
dialect's structured output, and the reply cap."""

from __future__ import annotations

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
