"""Fill a llama.cpp server's prompt cache with the fixed part of the streamed crews' prompts.

A streamed draft (closing's email and advice, delivery's note) starts streaming once the server
has read its whole prompt. The prompts put their fixed part first (the agent's system prompt, then
the task's instructions; the turn's data last, see `crews.crewkit.prose_task`), so a server that
has read that part once reads only the data afterwards: on the 2-core machine, the first token of
the objection reply came after 3.7 s the first time the server saw its prompt and 1.1 s the next.
:func:`warm_prompt_cache` runs each streamed task once with placeholder data and stops at the
first token, so that the first rep's draft after a start is no slower than the next ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm import LLMConfig, StopGeneration

if TYPE_CHECKING:
    from crews.crewkit import BaseLLM, Crew

log = logging.getLogger(__name__)

__all__ = ["StreamedTask", "streamed_tasks", "warm_prompt_cache"]


@dataclass(frozen=True)
class StreamedTask:
    """One streamed crew task: its crew's name, how to build it, and placeholder inputs."""

    crew: str
    build: Callable[[BaseLLM], Crew]
    inputs: Mapping[str, Any]


def streamed_tasks() -> list[StreamedTask]:
    """The tasks whose answers stream to the rep (imports CrewAI)."""
    from crews.closing.crew import ClosingCrew
    from crews.delivery.crew import DeliveryCrew

    return [
        StreamedTask(
            "closing",
            lambda llm: ClosingCrew(llm).email_crew(),
            {"kind": "follow-up", "recipient": "the buyer", "question": "", "records": "{}"},
        ),
        StreamedTask(
            "closing",
            lambda llm: ClosingCrew(llm).advise_crew(),
            {"question": "", "records": "{}"},
        ),
        StreamedTask(
            "delivery",
            lambda llm: DeliveryCrew(llm).crew(),
            {"kind": "plan", "question": "", "records": "{}"},
        ),
    ]


def _stop(_piece: str) -> None:
    raise StopGeneration


async def warm_prompt_cache(cfg: LLMConfig) -> int:
    """Run each of :func:`streamed_tasks` once on the endpoint of `cfg` and stop at its first
    token (one request each, one token generated). Returns how many answered; a failure is
    logged, not raised (the first draft then simply reads its whole prompt). Meant for a
    llama.cpp server (`cfg.dialect == "llama_cpp"`), whose prompt cache is free: on a paid API
    each call costs its prompt."""
    from crews.runner import CrewOutputError, kickoff_text

    warmed = 0
    for task in streamed_tasks():
        try:
            await kickoff_text(task.crew, task.build, task.inputs, cfg, _stop, max_tokens=1)
            warmed += 1
        except CrewOutputError as exc:
            log.info("prompt cache warm-up of a %s task failed: %s", task.crew, exc.reason)
        except Exception as exc:
            log.warning("prompt cache warm-up of a %s task failed: %r", task.crew, exc)
    return warmed
