"""One chat turn end to end on the real stack: the Maven CRM in PostgreSQL, the Redis
checkpointer, the real entity resolver, intent router and crews, and the embedded model
(llama.cpp + Qwen2.5-Coder-1.5B; reused when one already serves on FLOWSTATE_LLM_PORT)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from app.services.chat import ChatService
from app.services.context import real_context
from config.settings import get_settings
from crm.embeddings import get_embedder
from graphs.graph import build_graph
from llm import LLMConfig
from tests.graphs.fakes import AMY, redis_saver

pytestmark = pytest.mark.llm


async def test_a_pipeline_question_answered_by_the_real_model(
    redis_url: str, maven_db: Engine, embedded_llm: LLMConfig
) -> None:
    # q000 of the CRM questions dev set: the answer is computed from the data (209).
    ctx = real_context(maven_db, embedded_llm, get_embedder(get_settings()))
    async with redis_saver(redis_url) as saver:
        chat = ChatService(build_graph(saver), ctx, saver)
        frames = [f async for f in chat.stream(None, "How many deals has Kary Hendrixson won?", caller=AMY)]
        final = frames[-1]
        assert final["type"] == "final", final
        assert final["intent"] == "pipeline"
        assert "209" in final["reply"], final["reply"]
        assert any(f["type"] == "status" and f.get("crew") == "pipeline" for f in frames)
        assert any(f["type"] == "token" for f in frames)
        view = await chat.get_thread(final["thread_id"], caller=AMY)
    assert [m.role for m in view.messages] == ["user", "assistant"]
    # rules routed it, SQL computed it, a template worded it: no model call
    assert final["usage"]["llm_calls"] == 0


async def test_a_draft_streams_from_the_real_model(
    redis_url: str, maven_db: Engine, embedded_llm: LLMConfig
) -> None:
    ctx = real_context(maven_db, embedded_llm, get_embedder(get_settings()))
    async with redis_saver(redis_url) as saver:
        chat = ChatService(build_graph(saver), ctx, saver)
        message = "Write a short follow-up email to Cancity about their GTX Plus Basic deal"
        frames = [f async for f in chat.stream(None, message, caller=AMY)]
    final = frames[-1]
    assert final["type"] == "final", final
    assert final["intent"] == "closing"
    assert final["reply"].strip()
    kinds = [f["type"] for f in frames]
    assert "token" in kinds and kinds.index("token") < len(kinds) - 1
    # what the client saw after the last discard is the reply
    last_discard = max((i for i, k in enumerate(kinds) if k == "discard"), default=-1)
    streamed = "".join(f["content"] for f in frames[last_discard + 1 :] if f["type"] == "token")
    assert streamed == final["reply"]
    # the model wrote it: its call is counted with the tokens it streamed
    assert final["usage"]["llm_calls"] >= 1
    assert final["usage"]["completion_tokens"] > 0
