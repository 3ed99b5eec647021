"""The analyst crew: words an answer computed by the tools, keeping its figures (shared by the
pipeline and discovery crews; it answers no intent of its own)."""

from crews.analyst.flow import phrase, worth_phrasing
from crews.analyst.models import PipelineReply

__all__ = ["PipelineReply", "phrase", "worth_phrasing"]
