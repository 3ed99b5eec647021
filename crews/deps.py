"""What every crew needs to run: `CrewDeps`, built once by the application."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from llm import LLMConfig
    from tools.memory import Embedder

__all__ = ["CrewDeps"]


@dataclass
class CrewDeps:
    """What a crew needs: the sync SQLAlchemy `engine` (domain code is sync; it runs in a worker
    thread), the LLM endpoint (`llm`: `llm.LLMConfig`), and the `embedder` for memory
    search (None: no memory search). `word_answers` False returns computed answers (pipeline
    figures, account facts) as their template sentence without asking the model to reword them:
    one LLM call less per such turn (~3 s on the 2-core machine), same figures. `today`: the
    date relative dates in requests count from (None: the clock's, in the rep's time zone)."""

    engine: Engine
    llm: LLMConfig
    embedder: Embedder | None = None
    word_answers: bool = True
    today: dt.date | None = None
