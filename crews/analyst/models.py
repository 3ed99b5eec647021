"""Typed output of the analyst crew."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["PipelineReply"]


# The class name (the schema's title) and the docstring (its description) are part of the
# constrained output sent to the model: changing either changes the request.
class PipelineReply(BaseModel):
    """What the analyst agent returns: the reply to the rep."""

    reply: str = Field(min_length=1, max_length=1500)
