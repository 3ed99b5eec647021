"""The pipeline and closing crews against the real embedded model (llama.cpp + Qwen2.5-Coder-1.5B,
reused when one already serves on FLOWSTATE_LLM_PORT): a computed figure is stated without asking
the model, and no discount above the policy's maximum reaches the draft."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine

from config.files import load_policies
from contracts import CrewRequest
from crews import CrewDeps
from crews.closing import run as closing_run
from crews.pipeline import run as pipeline_run
from llm import LLMConfig
from observability.llm_meter import usage_scope
from tests.crews.conftest import CRM

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def llm_cfg(embedded_llm: LLMConfig) -> LLMConfig:
    """The embedded model with a longer request timeout: a crew run is one long generation."""
    return embedded_llm.with_limits(timeout_s=180)


async def test_pipeline_answer_with_the_real_model(
    crm_data: CRM, clean_db: Engine, llm_cfg: LLMConfig
) -> None:
    deps = CrewDeps(engine=clean_db, llm=llm_cfg)
    request = CrewRequest(
        message="What is Ann Alpha's win rate on closed deals?",
        intent="pipeline",
        entities=crm_data.entities(("rep", "Ann Alpha")),
    )
    with usage_scope() as usage:
        r = await pipeline_run(request, deps)
    assert "66.7%" in r.reply
    # SQL computed it and a template states it: the model is not asked to reword a figure
    assert usage.calls == r.llm_calls == 0


async def test_closing_never_grants_more_than_the_maximum(
    crm_data: CRM, clean_db: Engine, llm_cfg: LLMConfig
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
