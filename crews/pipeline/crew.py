"""The pipeline crews (CrewAI): the analyst words a computed answer; the planner, asked only when
no rule matched, picks the metric from a closed list. One agent and one task each."""

from __future__ import annotations

from typing import Any

from crewai.project import CrewBase, agent, crew, task

from crews.crewkit import Agent, BaseLLM, Crew, Task, make_agent, make_task, single_crew


@CrewBase
class PipelineCrew:
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


@CrewBase
class PipelinePlanCrew:
    """Planner: question -> `LLMPlan` JSON (metric, group_by, rank from closed lists)."""

    agents_config = "config/plan_agents.yaml"
    tasks_config = "config/plan_tasks.yaml"
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
