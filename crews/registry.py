"""Dispatch a chat turn to the crew of its intent.

`run_crew(request, deps)` imports `crews.<intent>` on first use (CrewAI takes ~5 s to import; the
graph imports this module only on the first crew turn) and awaits its `run(request, deps)`. The
returned `CrewResponse.llm_calls` is the number of LLM requests the crew made; the calls and
tokens of the whole turn are counted by a `crews.llm.track_usage()` scope around the turn
(contextvars: every crew LLM call inside it is added).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from crews.common import CrewDeps
from crews.contracts import INTENTS, CrewRequest, CrewResponse
from crews.llm import track_usage

__all__ = ["CrewDeps", "make_deps", "run_crew"]


class _CrewModule(Protocol):
    async def run(self, request: CrewRequest, deps: CrewDeps) -> CrewResponse: ...


def crew_module(intent: str) -> _CrewModule:
    """The module `crews.<intent>` (ValueError for an unknown intent)."""
    if intent not in INTENTS:
        raise ValueError(f"unknown intent {intent!r}; expected one of {', '.join(INTENTS)}")
    module: Any = importlib.import_module(f"crews.{intent}")
    return module  # type: ignore[no-any-return]


async def run_crew(request: CrewRequest, deps: CrewDeps) -> CrewResponse:
    """Run the crew of `request.intent`; `llm_calls` of the response counts its LLM requests.
    Raises `crews.runner.CrewOutputError` when a crew that needs the model got no valid answer,
    and lets database errors through (the graph turns both into an honest reply)."""
    with track_usage() as usage:
        response = await crew_module(request.intent).run(request, deps)
    return response.model_copy(update={"llm_calls": usage.calls})


def make_deps(ctx: Any) -> CrewDeps:
    """`CrewDeps` from the graph's `ChatContext` (sync engine, LLM config, embedder)."""
    embedder = None
    try:
        embedder = ctx.get_embedder()
    except Exception:  # memory search is optional: a crew without it still answers
        embedder = None
    return CrewDeps(engine=ctx.sync_engine(), llm=ctx.llm_config(), embedder=embedder)
