"""The prompt-cache warm-up sends each streamed task's prompt once, asking for one token."""

from __future__ import annotations

from crews.warmup import warm_prompt_cache
from llm import LLMConfig
from tests.support.stub_llm import StubLLM


async def test_each_streamed_task_is_sent_once_for_one_token(stub: StubLLM) -> None:
    stub.answers = ["Subject: hello\nA long answer nobody reads."]
    cfg = LLMConfig(base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=20, max_tokens=256)
    assert await warm_prompt_cache(cfg) == 3
    assert stub.count == 3
    assert all(r.get("stream") is True and r.get("max_tokens") == 1 for r in stub.requests)
    prompts = ["\n".join(str(m.get("content")) for m in r["messages"]) for r in stub.requests]
    # the fixed instructions of the email, the advice and the delivery note, in that order
    assert "Write an email from our sales rep" in prompts[0]
    assert "Advise our sales rep" in prompts[1]
    assert "onboarding plan" in prompts[2]


async def test_a_server_that_fails_is_logged_not_raised(stub: StubLLM) -> None:
    stub.fail_next(10, 500)
    cfg = LLMConfig(base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=5, max_tokens=256)
    assert await warm_prompt_cache(cfg) == 0
