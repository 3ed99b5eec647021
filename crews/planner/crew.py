"""The query planner (CrewAI): fills a query of the semantic layer from its closed lists; one agent
and one task. The computed answer is its own reply (its template sentence)."""

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
class QueryPlanCrew:
    """Planner: question -> `tools.semantic_plan.SemanticPlan` JSON (closed lists)."""

    agents_config = "config/agents.yaml"
    tasks_config = "config/tasks.yaml"
    agents: list[Any]
    tasks: list[Task]

    def __init__(self, llm: BaseLLM) -> None:
        self.llm = llm

    @agent
    def planner(self) -> Agent:
        return make_agent(self.agents_config["planner"], self.llm)  # type: ignore[index]

    @task
    def plan(self) -> Task:
        return make_task(self.tasks_config["plan"])  # type: ignore[index]

    @crew
    def crew(self) -> Crew:
        return single_crew(self.agents, self.tasks)
