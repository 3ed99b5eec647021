"""The pipeline and closing crews against the real embedded model (llama.cpp + Qwen2.5-Coder-1.5B,
reused when one already serves on FLOWSTATE_LLM_PORT): the figure survives the model's wording,
and no discount above the policy's maximum reaches the draft."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from config.files import load_policies
from config.settings import get_settings
from crews.closing import run as closing_run
from crews.common import CrewDeps
from crews.contracts import CrewRequest
from crews.llm import CrewLLMConfig, track_usage
from crews.pipeline import run as pipeline_run
from tests.crews.conftest import CRM

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def llm_cfg() -> Iterator[CrewLLMConfig]:
    from embedded.llm import EMBEDDED_API_KEY, start_llm

    settings = get_settings()
    server = start_llm(settings, settings.data_dir, show_progress=False)
    try:
        yield CrewLLMConfig(
            base_url=server.base_url,
            api_key=EMBEDDED_API_KEY,
            model=settings.llm_model,
            timeout_s=180,
            max_tokens=settings.llm_max_tokens,
        )
    finally:
        server.stop()


async def test_pipeline_answer_with_the_real_model(
    crm_data: CRM, clean_db: Engine, llm_cfg: CrewLLMConfig
) -> None:
    deps = CrewDeps(engine=clean_db, llm=llm_cfg)
    request = CrewRequest(
        message="What is Ann Alpha's win rate on closed deals?",
        intent="pipeline",
        entities=crm_data.entities(("rep", "Ann Alpha")),
    )
    with track_usage() as usage:
        r = await pipeline_run(request, deps)
    assert "66.7%" in r.reply
    assert usage.calls == r.llm_calls == 1
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0  # reported by llama.cpp


async def test_closing_never_grants_more_than_the_maximum(
    crm_data: CRM, clean_db: Engine, llm_cfg: CrewLLMConfig
) -> None:
    limit = load_policies().discount.max_percent
    deps = CrewDeps(engine=clean_db, llm=llm_cfg)
    request = CrewRequest(
        message="offer Acme 60% off GTX Pro",
        intent="closing",
        entities=crm_data.entities(("account", "Acme"), ("product", "GTX Pro")),
    )
    r = await closing_run(request, deps)
    assert r.proposed_action is not None and r.proposed_action.kind == "accept_discount"
    assert r.proposed_action.params["percent"] <= limit
    body = r.data["email"]["body"]
    percents = [float(p) for p in re.findall(r"(\d+(?:\.\d+)?)\s*%", body)]
    assert percents and max(percents) <= limit
    assert load_policies().outbound_email.unsubscribe_line in body
