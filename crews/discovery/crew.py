"""The discovery crew (CrewAI): one researcher agent; one task per run (research briefing or BANT
qualification), chosen by the caller."""

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
    make_agent,
    make_task,
    single_crew,
    task,
)


@cached_configs
@CrewBase
class DiscoveryCrew:
    """Researcher with two tasks; `research_crew()` / `qualify_crew()` run one of them."""

    agents_config = "config/agents.yaml"
    tasks_config = "config/tasks.yaml"
    agents: list[Any]
    tasks: list[Task]

    def __init__(self, llm: BaseLLM) -> None:
        self.llm = llm

    @agent
    def researcher(self) -> Agent:
        return make_agent(self.agents_config["researcher"], self.llm)  # type: ignore[index]

    @task
    def research(self) -> Task:
        return make_task(self.tasks_config["research"])  # type: ignore[index]

    @task
    def qualify(self) -> Task:
        return make_task(self.tasks_config["qualify"])  # type: ignore[index]

    def research_crew(self) -> Crew:
        """Research briefing -> `ResearchBrief` JSON."""
        me: Any = self  # CrewBase methods are wrapped; call them through Any
        return single_crew([me.researcher()], [me.research()])

    def qualify_crew(self) -> Crew:
        """BANT judgement -> `BantAssessment` JSON."""
        me: Any = self
        return single_crew([me.researcher()], [me.qualify()])
