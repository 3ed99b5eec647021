"""The delivery crew (CrewAI): one onboarding-manager agent, one task (the words of an
onboarding plan or a client status report)."""

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
    prose_task,
    single_crew,
    task,
)


@cached_configs
@CrewBase
class DeliveryCrew:
    """Onboarding manager: plan + request -> a summary and "- " points (plain text, streamed)."""

    agents_config = "config/agents.yaml"
    tasks_config = "config/tasks.yaml"
    agents: list[Any]
    tasks: list[Task]

    def __init__(self, llm: BaseLLM) -> None:
        self.llm = llm

    @agent
    def delivery_manager(self) -> Agent:
        return make_agent(self.agents_config["delivery_manager"], self.llm)  # type: ignore[index]

    @task
    def note(self) -> Task:
        return prose_task(self.tasks_config["note"])  # type: ignore[index]

    @crew
    def crew(self) -> Crew:
        return single_crew(self.agents, self.tasks)
