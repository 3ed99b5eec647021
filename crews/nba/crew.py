"""The next-best-action crew (CrewAI): one coach agent, one task (the words around a ranked list
of actions computed from the CRM)."""

from __future__ import annotations

from typing import Any

from crews.crewkit import (
    Agent,
    BaseLLM,
    Crew,
    CrewBase,
    Task,
    agent,
    cached_configs,
    crew,
    make_agent,
    make_task,
    single_crew,
    task,
)


@cached_configs
@CrewBase
class NbaCrew:
    """Coach: ranked actions + request -> `NbaWording` JSON."""

    agents_config = "config/agents.yaml"
    tasks_config = "config/tasks.yaml"
    agents: list[Any]
    tasks: list[Task]

    def __init__(self, llm: BaseLLM) -> None:
        self.llm = llm

    @agent
    def advisor(self) -> Agent:
        return make_agent(self.agents_config["advisor"], self.llm)  # type: ignore[index]

    @task
    def advise(self) -> Task:
        return make_task(self.tasks_config["advise"])  # type: ignore[index]

    @crew
    def crew(self) -> Crew:
        return single_crew(self.agents, self.tasks)
