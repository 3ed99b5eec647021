"""Fixtures of the crew tests: the small CRM of `tests/tools/conftest.py` (figures known by hand,
see its docstring) and `CrewDeps` pointing at a stub OpenAI-compatible LLM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from crews import CrewDeps
from llm import LLMConfig
from tests.support.stub_llm import StubLLM
from tests.tools.conftest import CRM as CRM
from tests.tools.conftest import crm_data as crm_data


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    """A stub LLM answering each request with a minimal instance of the requested JSON schema
    (tests set `stub.answers` to script it)."""
    with StubLLM() as llm:
        yield llm


def deps_for(engine: Engine, stub: StubLLM, **llm: Any) -> CrewDeps:
    """`CrewDeps` on `engine` with the stub as the LLM (no embedder: memory search is off)."""
    cfg = LLMConfig(
        base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=20, max_tokens=256, **llm
    )
    return CrewDeps(engine=engine, llm=cfg)


@pytest.fixture
def deps(clean_db: Engine, stub: StubLLM) -> CrewDeps:
    return deps_for(clean_db, stub)


def echo_draft(body: dict[str, Any]) -> str:
    """A stub answer for the pipeline analyst: the computed answer, reworded only in its start."""
    import json
    import re

    text = body["messages"][-1]["content"]
    m = re.search(r"Computed answer: (.*?)\n", text + "\n", re.S)
    draft = m.group(1).strip() if m else "ok"
    return json.dumps({"reply": "Here you go: " + draft})
