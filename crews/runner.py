"""Run a CrewAI crew and get a validated pydantic result.

`kickoff_validated` builds the crew with a model from `llm.crew_llm` (JSON constrained to the
output model's schema), kicks it off with the inputs, and validates the final answer with
`llm.parse_output` (a ```json fence or text around the object is tolerated). An invalid answer
gets one more try with the validation error appended to the task description; a second invalid
answer, or an LLM failure, raises `CrewOutputError`. The run's calls and tokens are what
`observability.llm_meter` counted in a `usage_scope` around it.

`kickoff_text` runs a crew whose answer is plain text and streams it: every piece of the answer
goes to a callback as the model writes it (a crew writing its reply through
`crews.streaming.ReplyWriter`). Prose streams as text, not as JSON tokens: the reply can be shown
sentence by sentence while the model writes, and no grammar or quoting sits between the model and
the words.

The request path is async: the crew runs through CrewAI's native `Crew.akickoff` on the caller's
event loop. CrewAI runs each blocking step of an agent (the LLM call among them) in the loop's
default executor, with the context variables of the usage scope. `Crew.kickoff_async` (a thread
around the sync `kickoff`) is not used: each agent step there built an event loop and a thread
pool of its own, and cost about a fifth more CPU a run (bench/bench_crew_cpu.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from llm import LLMConfig, StopGeneration, crew_llm, parse_output
from observability.llm_meter import MeterUsage, usage_scope

if TYPE_CHECKING:
    from crewai import Crew
    from crewai.llms.base_llm import BaseLLM

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class CrewOutputError(RuntimeError):
    """A crew gave no valid answer: `crew` names it, `raw` is its last answer (may be empty),
    `reason` says what was wrong (validation error or the LLM failure), `usage` what it cost
    (the LLM requests metered during the run; empty when not given)."""

    def __init__(self, crew: str, reason: str, raw: str = "", usage: MeterUsage | None = None) -> None:
        self.crew = crew
        self.reason = reason
        self.raw = raw
        self.usage = usage or MeterUsage()
        super().__init__(f"the {crew} crew gave no valid answer: {reason}")


@dataclass
class CrewRun(Generic[M]):
    """A validated crew answer: `output`; `raw` text; `attempts` (1 or 2); `usage`: the LLM
    requests metered during the run."""

    output: M
    raw: str
    attempts: int
    usage: MeterUsage


@dataclass
class TextRun:
    """A streamed crew answer: `text` as the model wrote it (ended early when the callback
    stopped it); `usage`: the LLM requests metered during the run."""

    text: str
    usage: MeterUsage


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:4]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "the answer"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


def _retry_note(model: type[BaseModel], reason: str) -> str:
    keys = ", ".join(model.model_fields)
    return (
        f"\n\nYour previous answer was rejected ({reason}). "
        f"Answer again with only one JSON object with the keys: {keys}."
    )


async def kickoff_validated(
    name: str,
    build: Callable[[BaseLLM], Crew],
    inputs: Mapping[str, Any],
    model: type[M],
    cfg: LLMConfig,
    *,
    max_tokens: int | None = None,
    retries: int = 1,
) -> CrewRun[M]:
    """Run the crew `build(llm)` on `inputs` and return its answer validated as `model`.

    `build` gets a fresh LLM (JSON constrained to `model`'s schema, reply capped at `max_tokens`
    tokens) and returns a fresh crew; the crew's last task output is the answer. Retries
    `retries` times (default once) after an invalid answer, telling the model what was wrong.
    Raises CrewOutputError after the last invalid answer or when a request fails (timeout,
    connection, HTTP error: the OpenAI client already retried it up to `cfg.max_retries` <= 1).
    """
    raw = ""
    note = ""
    reason = ""
    with usage_scope() as usage:
        for attempt in range(1, retries + 2):
            llm = crew_llm(cfg, schema=model, max_tokens=max_tokens)
            crew = build(llm)
            if note:
                task = crew.tasks[-1]
                task.description = task.description + note
            try:
                result = await _kickoff(crew, inputs)
            except Exception as exc:
                log.warning("%s crew failed: %s", name, exc)
                raise CrewOutputError(name, f"{type(exc).__name__}: {exc}", raw, usage) from exc
            raw = str(getattr(result, "raw", result) or "")
            try:
                return CrewRun(parse_output(raw, model), raw, attempt, usage)
            except ValidationError as exc:
                reason = _explain(exc)
                log.info("%s crew answer invalid (attempt %d): %s", name, attempt, reason)
                note = _retry_note(model, reason)
    raise CrewOutputError(name, f"invalid JSON after {retries + 1} attempts: {reason}", raw, usage)


async def _kickoff(crew: Crew, inputs: Mapping[str, Any]) -> Any:
    """`crew.akickoff(inputs)`, its agents given back to the pool once the crew stopped.
    Cancelled (the turn's deadline), a step of the crew may still be running in its worker
    thread: its agents are dropped instead."""
    from crews.crewkit import AGENTS

    try:
        result = await crew.akickoff(inputs=dict(inputs))
    except asyncio.CancelledError:
        AGENTS.give_back(crew.agents, reuse=False)
        raise
    except BaseException:
        AGENTS.give_back(crew.agents)
        raise
    AGENTS.give_back(crew.agents)
    return result


def compact_json(data: Any) -> str:
    """Records for a task description: compact JSON (short prompts read faster), dates and
    decimals as strings."""
    return json.dumps(data, separators=(",", ":"), default=str, ensure_ascii=False)


async def kickoff_text(
    name: str,
    build: Callable[[BaseLLM], Crew],
    inputs: Mapping[str, Any],
    cfg: LLMConfig,
    on_text: Callable[[str], None],
    *,
    max_tokens: int | None = None,
) -> TextRun:
    """Run the crew `build(llm)` on `inputs` with a streamed plain-text answer.

    `on_text(piece)` gets each piece of the answer's text as it arrives, on the crew's worker
    thread. It may raise `llm.StopGeneration` to end the answer there (the rest is not generated;
    the run returns what came so far). Any other exception it raises also ends the answer, and is
    raised here once the crew has stopped (e.g. `crews.streaming.ReplyRejected`): CrewAI never
    sees it, so it cannot retry or wrap it. The answer is capped at `max_tokens` tokens.

    Raises CrewOutputError when the LLM request fails (timeout, connection, HTTP error). No
    retry: what was streamed cannot be taken back, so the caller decides what to write instead.
    """
    raised: list[BaseException] = []

    def hook(piece: str) -> None:
        if raised:
            raise StopGeneration
        try:
            on_text(piece)
        except StopGeneration:
            raise
        except Exception as exc:
            raised.append(exc)
            raise StopGeneration from exc

    with usage_scope() as usage:
        crew = build(crew_llm(cfg, max_tokens=max_tokens, on_text=hook))
        try:
            result = await _kickoff(crew, inputs)
        except Exception as exc:
            if raised:
                raise raised[0] from exc
            log.warning("%s crew failed: %s", name, exc)
            raise CrewOutputError(name, f"{type(exc).__name__}: {exc}", "", usage) from exc
        if raised:
            raise raised[0]
        return TextRun(str(getattr(result, "raw", result) or ""), usage)
