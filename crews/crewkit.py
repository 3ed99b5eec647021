"""CrewAI-side settings shared by the five crews (imports crewai: keep it off light paths).

Every agent is capped the same way (CrewAI's defaults multiply one error into many requests): one
iteration (the records are in the task, there is nothing to look up), no retry of a failed LLM
call inside CrewAI (the runner retries once, knowing why), no delegation, no memory, no cache."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, TypeVar

import yaml

from llm import apply_offline_env

apply_offline_env()

from crewai import Agent, Crew, Process, Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402

__all__ = [
    "AGENT_LIMITS",
    "Agent",
    "BaseLLM",
    "Crew",
    "Process",
    "Task",
    "cached_configs",
    "make_agent",
    "make_task",
    "prose_task",
    "single_crew",
]

#: Limits of every crew agent (see module docstring).
AGENT_LIMITS: dict[str, Any] = {
    "max_iter": 1,
    "max_retry_limit": 0,
    "allow_delegation": False,
    "verbose": False,
    "cache": False,
}


C = TypeVar("C")


def cached_configs(crew_class: C) -> C:
    """Apply on top of `@CrewBase`: the crew's agents and tasks YAML files are parsed once per
    process, not on every instance (CrewBase reads and parses both files each time a crew class
    is instantiated, and a crew is instantiated on every run: a few milliseconds of pure-Python
    YAML parsing a turn). Each instance still gets its own copy, which CrewBase then edits."""
    setattr(crew_class, "load_yaml", staticmethod(_load_yaml_copy))  # noqa: B010 (a CrewBase class)
    return crew_class


def _load_yaml_copy(config_path: Path) -> dict[str, Any]:
    return copy.deepcopy(_parsed_yaml(Path(config_path)))


@functools.lru_cache(maxsize=32)
def _parsed_yaml(config_path: Path) -> dict[str, Any]:
    """A crew's YAML file as CrewBase's own `load_yaml` reads it (an empty file: {})."""
    with config_path.open(encoding="utf-8") as file:
        content = yaml.safe_load(file)
    return content if isinstance(content, dict) else {}


def make_agent(config: Any, llm: BaseLLM, **overrides: Any) -> Agent:
    """An Agent from its YAML `config` with the shared limits and `llm` (from `llm.crew_llm`)."""
    return Agent(config=config, llm=llm, **{**AGENT_LIMITS, **overrides})


def make_task(config: Any) -> Task:
    """A Task from its YAML `config` (description, expected_output, agent)."""
    task: Task = Task(config=config)  # type: ignore[call-arg]  # fields come from `config`
    return task


def prose_task(config: Any) -> Task:
    """A Task from its YAML `config` whose prompt is its description alone.

    For tasks answered in streamed plain text (`crews.runner.kickoff_text`): the description
    states the answer's form itself, fixed instructions first and the turn's data last. CrewAI
    would append its expected-output paragraph (about 35 tokens: "This is the expected criteria
    for your final answer: ... you MUST return the actual complete content ...") after the data,
    where the model server's prefix cache cannot serve it: on the 2-core machine that is about
    0.7 s more before the first token of every draft. `expected_output` stays in the YAML (CrewAI
    requires it) as the answer's description for readers.
    """
    return _ProseTask(config=config)  # type: ignore[call-arg]  # fields come from `config`


class _ProseTask(Task):
    """See :func:`prose_task`."""

    def prompt(self) -> str:
        return self.description.rstrip()


def single_crew(agents: list[Any], tasks: list[Task]) -> Crew:
    """A sequential crew without memory, planning, verbose output or stored task outputs."""
    return _Crew(agents=agents, tasks=tasks, process=Process.sequential, verbose=False, memory=False)


class _NoTaskOutputs:
    """Stands in for CrewAI's `TaskOutputStorageHandler`, which writes every task's output to a
    SQLite file under a file lock on each kickoff (for `crewai replay`). Flowstate never replays
    a crew (the thread's checkpoint is the record), and under load that shared file lock
    serialised every crew run of every worker process."""

    def reset(self) -> None:
        return None

    def add(self, *args: Any, **kwargs: Any) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

    def load(self) -> list[dict[str, Any]] | None:
        return []


class _Crew(Crew):
    """A Crew whose task outputs are not stored (see `_NoTaskOutputs`)."""

    _task_output_handler: Any = PrivateAttr(default_factory=_NoTaskOutputs)
