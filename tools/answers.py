"""A computed answer: the template sentence that states it, its figures and its records.

Answers are computed by rules and SQL (`tools.pipeline_answers`, `tools.account_facts`); a crew
may have the model reword `draft`, keeping the reworded reply only when it still states
`key_figures` and `names` and adds no number (else the draft is the reply).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts import Source

__all__ = ["Answer"]


@dataclass
class Answer:
    """A computed answer: `draft` states it; `facts` are the figures (for the grounding guard);
    `sources` the records; `names` what a reworded reply must name (e.g. the top rep); `data`
    extra typed output for the client; `key_figures` the texts whose numbers a reworded reply
    must keep (default: the draft's first sentence)."""

    draft: str
    facts: list[dict[str, Any]] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    key_figures: list[str] | None = None

    def __post_init__(self) -> None:
        # the figures a reworded reply must keep: by default those of the draft's first sentence
        if self.key_figures is None:
            self.key_figures = [self.draft.split(". ")[0]]
