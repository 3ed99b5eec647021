"""`crews.registry`: the crews come from `config/intents.yaml` (each intent names its crew
folder), a crew package exposes its `CREW`, and importing one does not import CrewAI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contracts import INTENTS, CrewRequest, Entities
from crews import CrewDeps
from crews.closing.models import ClosingResult
from crews.pipeline.models import PipelineResult
from crews.registry import crew_intents, crew_spec, output_model, run_crew


def test_every_intent_but_general_names_its_crew() -> None:
    assert crew_intents() == ("discovery", "closing", "delivery", "pipeline", "nba")
    assert set(crew_intents()) | {"general"} == set(INTENTS)
    for intent in crew_intents():
        assert crew_spec(intent).intent == intent


def test_output_models() -> None:
    assert output_model("closing") is ClosingResult
    assert output_model("pipeline") is PipelineResult
    assert output_model("general") is None
    with pytest.raises(ValueError, match="unknown intent"):
        output_model("weather")


async def test_an_intent_without_a_crew_is_refused(deps: CrewDeps) -> None:
    with pytest.raises(ValueError, match="no crew"):
        await run_crew(CrewRequest(message="Hello", intent="general", entities=Entities()), deps)


def test_importing_a_crew_does_not_import_crewai() -> None:
    code = (
        "import sys, crews.registry, crews.closing, crews.discovery, crews.pipeline, "
        "crews.delivery, crews.nba, crews.analyst; "
        "print(any(m == 'crewai' or m.startswith('crewai.') for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"
