"""CrewAI-side settings shared by the five crews (imports crewai: keep it off light paths).

Every agent is capped the same way (CrewAI's defaults multiply one error into many requests): one
iteration (the records are in the task, there is nothing to look up), no retry of a failed LLM
call inside CrewAI (the runner retries once, knowing why), no delegation, no memory, no cache."""

from __future__ import annotations

from typing import Any

from llm import apply_offline_env

apply_offline_env()

from crewai import Agent, Crew, Process, Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402

__all__ = [
    "AGENT_LIMITS",
    "Agent",
    "BaseLLM",
    "Crew",
    "Process",
    "Task",
    "make_agent",
    "make_task",
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


def make_agent(config: Any, llm: BaseLLM, **overrides: Any) -> Agent:
    """An Agent from its YAML `config` with the shared limits and `llm` (from `llm.crew_llm`)."""
    return Agent(config=config, llm=llm, **{**AGENT_LIMITS, **overrides})


def make_task(config: Any) -> Task:
    """A Task from its YAML `config` (description, expected_output, agent)."""
    task: Task = Task(config=config)  # type: ignore[call-arg]  # fields come from `config`
    return task


def single_crew(agents: list[Any], tasks: list[Task]) -> Crew:
    """A sequential crew without memory, planning or verbose output."""
    return Crew(agents=agents, tasks=tasks, process=Process.sequential, verbose=False, memory=False)
