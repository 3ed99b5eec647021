"""One chat turn end to end on the real stack: the Maven CRM in PostgreSQL, the Redis
checkpointer, the real entity resolver, intent router and crews, and the embedded model
(llama.cpp + Qwen2.5-Coder-1.5B; reused when one already serves on FLOWSTATE_LLM_PORT)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from app.services.chat import ChatService
from app.services.context import real_context
from config.settings import get_settings
from crm.embeddings import get_embedder
from crm.importer import import_export
from embedded.llm import EMBEDDED_API_KEY, start_llm
from graphs.graph import build_graph
from llm import LLMConfig
from tests.conftest import DATA_TABLES, MAVEN_DIR
from tests.graphs.fakes import redis_saver

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def llm() -> Iterator[LLMConfig]:
    settings = get_settings()
    server = start_llm(settings, settings.data_dir, show_progress=False)
    try:
        yield LLMConfig(
            base_url=server.base_url,
            api_key=EMBEDDED_API_KEY,
            model=settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            max_tokens=settings.llm_max_tokens,
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def maven_db(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
    import_export(engine, MAVEN_DIR)
    return engine


async def test_a_pipeline_question_answered_by_the_real_model(
    redis_url: str, maven_db: Engine, llm: LLMConfig
) -> None:
    # q000 of the CRM questions dev set: the answer is computed from the data (209).
    ctx = real_context(maven_db, llm, get_embedder(get_settings()))
    async with redis_saver(redis_url) as saver:
        chat = ChatService(build_graph(saver), ctx, saver)
        frames = [f async for f in chat.stream(None, "How many deals has Kary Hendrixson won?", "e2e")]
        final = frames[-1]
        assert final["type"] == "final", final
        assert final["intent"] == "pipeline"
        assert "209" in final["reply"], final["reply"]
        assert any(f["type"] == "status" and f.get("crew") == "pipeline" for f in frames)
        assert any(f["type"] == "token" for f in frames)
        view = await chat.get_thread(final["thread_id"])
    assert [m.role for m in view.messages] == ["user", "assistant"]
    assert final["usage"]["llm_calls"] >= 0
