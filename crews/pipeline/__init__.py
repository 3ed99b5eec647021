"""The pipeline crew: sales analytics and deal operations (see `crews.pipeline.flow`)."""

from crews.pipeline.flow import run
from crews.pipeline.models import PipelineResult
from crews.spec import CrewSpec

CREW = CrewSpec(intent="pipeline", run=run, output_model=PipelineResult)

__all__ = ["CREW", "PipelineResult", "run"]
