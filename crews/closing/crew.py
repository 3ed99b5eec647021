"""The closing crew (CrewAI): one account-executive agent; one task per run (an email draft or
negotiation advice), chosen by the caller; both answer in plain text (`crews.crewkit.prose_task`)."""

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
    prose_task,
    single_crew,
    task,
)


@cached_configs
@CrewBase
class ClosingCrew:
    """Closer with two tasks; `email_crew()` / `advise_crew()` run one of them."""

    agents_config = "config/agents.yaml"
    tasks_config = "config/tasks.yaml"
    agents: list[Any]
    tasks: list[Task]

    def __init__(self, llm: BaseLLM) -> None:
        self.llm = llm

    @agent
    def closer(self) -> Agent:
        return make_agent(self.agents_config["closer"], self.llm)  # type: ignore[index]

    @task
    def email(self) -> Task:
        return prose_task(self.tasks_config["email"])  # type: ignore[index]

    @task
    def advise(self) -> Task:
        return prose_task(self.tasks_config["advise"])  # type: ignore[index]

    def email_crew(self) -> Crew:
        """Email draft: a "Subject:" line, then the body (plain text, streamed)."""
        me: Any = self  # CrewBase methods are wrapped; call them through Any
        return single_crew([me.closer()], [me.email()])

    def advise_crew(self) -> Crew:
        """Negotiation advice: a summary, then "- " talking points (plain text, streamed)."""
        me: Any = self
        return single_crew([me.closer()], [me.advise()])
