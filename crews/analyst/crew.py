"""The analyst crew (CrewAI): one agent and one task that word an answer computed by the tools."""

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
class AnalystCrew:
    """Analyst: question + computed answer -> `PipelineReply` JSON."""

    agents_config = "config/agents.yaml"
    tasks_config = "config/tasks.yaml"
    agents: list[Any]
    tasks: list[Task]

    def __init__(self, llm: BaseLLM) -> None:
        self.llm = llm

    @agent
    def analyst(self) -> Agent:
        return make_agent(self.agents_config["analyst"], self.llm)  # type: ignore[index]

    @task
    def answer(self) -> Task:
        return make_task(self.tasks_config["answer"])  # type: ignore[index]

    @crew
    def crew(self) -> Crew:
        return single_crew(self.agents, self.tasks)
