"""Which crew answers an intent, and running it.

`config/intents.yaml` names, for each intent, its crew folder under `crews/` (`crew:`); an
intent without one (general) is answered by the graph itself. The package `crews.<folder>`
exposes its `CREW` (`crews.spec.CrewSpec`): adding an intent is a crew folder and one entry in
that file. A crew package is imported on first use; importing it does not import CrewAI (that
happens when the crew is built, on its first LLM call).

The calls and tokens of a whole turn are counted by an `observability.llm_meter.usage_scope()`
around the turn (contextvars: every LLM request inside it is added); `run_crew` reports the
crew's own requests, from a scope of its own, as `CrewResponse.llm_calls`.
"""

from __future__ import annotations

import importlib

from pydantic import BaseModel

from config.files import load_intents_file
from contracts import INTENTS, CrewRequest, CrewResponse
from crews.deps import CrewDeps
from crews.spec import CrewSpec
from observability.llm_meter import usage_scope

__all__ = ["CrewDeps", "CrewSpec", "crew_intents", "crew_spec", "output_model", "run_crew"]


def _crew_folder(intent: str) -> str | None:
    """The crew folder of `intent` in `config/intents.yaml` (None: no crew). ValueError for an
    intent the file does not list."""
    if intent not in INTENTS:
        raise ValueError(f"unknown intent {intent!r}; expected one of {', '.join(INTENTS)}")
    return load_intents_file().intents[intent].crew


def crew_intents() -> tuple[str, ...]:
    """The intents answered by a crew, in the order of `config/intents.yaml`."""
    return tuple(name for name, entry in load_intents_file().intents.items() if entry.crew)


def crew_spec(intent: str) -> CrewSpec:
    """The `CREW` of the crew package that answers `intent` (imported on first use).
    ValueError for an unknown intent, an intent without a crew, or a package whose `CREW` is
    missing or answers another intent."""
    folder = _crew_folder(intent)
    if folder is None:
        raise ValueError(f"intent {intent!r} is answered by no crew")
    spec = getattr(importlib.import_module(f"crews.{folder}"), "CREW", None)
    if not isinstance(spec, CrewSpec):
        raise ValueError(f"crews.{folder} exposes no CREW (a crews.spec.CrewSpec)")
    if spec.intent != intent:
        raise ValueError(f"crews.{folder}.CREW answers {spec.intent!r}, not {intent!r}")
    return spec


def output_model(intent: str) -> type[BaseModel] | None:
    """The pydantic model of `CrewResponse.data` of the crew of `intent`; None for an intent
    without a crew. ValueError for an unknown intent."""
    if _crew_folder(intent) is None:
        return None
    return crew_spec(intent).output_model


async def run_crew(request: CrewRequest, deps: CrewDeps) -> CrewResponse:
    """Run the crew of `request.intent`; `llm_calls` of the response counts its LLM requests.
    Raises ValueError for an intent without a crew, `crews.runner.CrewOutputError` when a crew
    that needs the model got no valid answer, and lets database errors through (the graph turns
    both into an honest reply)."""
    spec = crew_spec(request.intent)
    with usage_scope() as usage:
        response = await spec.run(request, deps)
    return response.model_copy(update={"llm_calls": usage.calls})
