"""The crew agent pool: an agent is in one run at a time, reused after its run stopped."""

from __future__ import annotations

from typing import Any

from crewai import LLM

from crews.crewkit import AgentPool

CONFIG: dict[str, Any] = {"role": "Researcher", "goal": "Brief the rep", "backstory": "Knows accounts."}
OTHER: dict[str, Any] = {"role": "Closer", "goal": "Draft the email", "backstory": "Writes well."}


def _llm() -> LLM:
    return LLM(model="openai/stub", api_key="stub-key", base_url="http://127.0.0.1:9/v1")


def test_an_agent_given_back_is_taken_again_with_the_new_llm() -> None:
    pool = AgentPool()
    first = pool.take(CONFIG, _llm())
    pool.give_back([first])
    llm = _llm()
    again = pool.take(CONFIG, llm)
    assert again is first and again.llm is llm


def test_an_agent_out_in_a_run_is_not_handed_out_twice() -> None:
    pool = AgentPool()
    busy = pool.take(CONFIG, _llm())
    other = pool.take(CONFIG, _llm())
    assert other is not busy


def test_configs_do_not_share_agents() -> None:
    pool = AgentPool()
    researcher = pool.take(CONFIG, _llm())
    pool.give_back([researcher])
    assert pool.take(OTHER, _llm()) is not researcher


def test_an_agent_of_a_run_that_may_still_be_going_is_dropped() -> None:
    pool = AgentPool()
    agent = pool.take(CONFIG, _llm())
    pool.give_back([agent], reuse=False)
    pool.give_back([agent])  # not out any more: ignored
    assert pool.take(CONFIG, _llm()) is not agent


def test_agents_it_did_not_hand_out_and_idle_beyond_the_bound_are_not_kept() -> None:
    pool = AgentPool(per_config=1)
    stranger = AgentPool().take(CONFIG, _llm())
    pool.give_back([stranger])
    assert pool.take(CONFIG, _llm()) is not stranger
    a, b = pool.take(CONFIG, _llm()), pool.take(CONFIG, _llm())
    pool.give_back([a, b])
    assert pool.take(CONFIG, _llm()) is a
    assert pool.take(CONFIG, _llm()) is not b


def test_a_new_crew_instance_never_gets_an_earlier_instances_agent_or_task() -> None:
    """Crew instances come and go, one per run, and a new one often lands at a freed one's
    address: each must build its own agent and task (CrewAI's own @agent / @task memoized them
    process-wide by id(self), so a new crew got a freed crew's agent, with that run's LLM)."""
    from crews.discovery.crew import DiscoveryCrew

    agents: list[Any] = []
    tasks: list[Any] = []
    for _ in range(300):
        llm = _llm()
        crew = DiscoveryCrew(llm).research_crew()
        agent, task = crew.agents[0], crew.tasks[0]
        assert agent.llm is llm
        assert task.agent is agent  # the task's agent (mapped from its config) is the crew's
        assert all(agent is not a for a in agents) and all(task is not t for t in tasks)
        agents.append(agent)
        tasks.append(task)
        del crew
