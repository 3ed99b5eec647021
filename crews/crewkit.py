"""CrewAI-side settings shared by the five crews (imports crewai: keep it off light paths). The
crews import CrewAI's names from here, so the switches of `llm.apply_offline_env` are set first.

Every agent is capped the same way (CrewAI's defaults multiply one error into many requests): one
iteration (the records are in the task, there is nothing to look up), no retry of a failed LLM
call inside CrewAI (the runner retries once, knowing why), no delegation, no memory, no cache."""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from llm import apply_offline_env

apply_offline_env()

from crewai import Agent, Crew, Process, Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.project import CrewBase, crew  # noqa: E402
from crewai.project.wrappers import AgentMethod, TaskMethod  # noqa: E402
from crewai.utilities import file_store  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402

__all__ = [
    "AGENTS",
    "AGENT_LIMITS",
    "Agent",
    "AgentPool",
    "BaseLLM",
    "Crew",
    "CrewBase",
    "Process",
    "Task",
    "agent",
    "cached_configs",
    "crew",
    "make_agent",
    "make_task",
    "prose_task",
    "single_crew",
    "task",
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
R = TypeVar("R")
T = TypeVar("T")


def _run_disabled_store_call(coro: Coroutine[None, None, T]) -> T:
    """CrewAI's file-store calls without an event loop of their own while the store is disabled.

    Every kickoff makes four file-store calls (get the crew's and task's files, clear them), each
    through `asyncio.run`; without `aiocache` (not a Flowstate dependency) the store is None and
    each coroutine returns at once. A new event loop per call cost about a quarter of a crew's
    kickoff under load, the more so with more connections: `asyncio.run` ends by listing every
    task of the process. A coroutine that returns without suspending runs to its end on the
    first `send`; with a store configured, CrewAI's own runner is used.

    Raises RuntimeError if a call suspends while the store is disabled (CrewAI changed).
    """
    if file_store._file_store is not None:
        return _crewai_run_sync(coro)
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("a CrewAI file-store call suspended while the store is disabled")


_crewai_run_sync = file_store._run_sync
file_store._run_sync = _run_disabled_store_call


def agent(meth: Callable[[Any], R]) -> Any:
    """CrewAI's `@agent` for a method of a `@CrewBase` crew, memoized per crew instance.

    CrewAI's own decorator memoizes in one process-wide cache keyed by `id(self)`: once a crew
    instance is freed, a new one at the same address got the old one's agent, which another
    run may be using at that moment (CrewAI: "Executor is already running"; seen under load)
    and which carries the old run's LLM. Here the agent lives in the instance and goes with it.
    """
    return AgentMethod(_once_per_instance(meth))


def task(meth: Callable[[Any], R]) -> Any:
    """CrewAI's `@task`, memoized per crew instance (see :func:`agent`: a task shared between two
    runs would carry one run's output into the other)."""
    return TaskMethod(_once_per_instance(meth))


def _once_per_instance(meth: Callable[[Any], R]) -> Callable[[Any], R]:
    """`meth(self)` computed once per instance and kept in the instance (CrewBase calls an agent
    method when it maps the tasks' configs and again when the crew is assembled: both calls must
    give the same object). A crew instance serves one run, in one thread."""

    @functools.wraps(meth)
    def once(self: Any) -> R:
        made: dict[str, Any] = self.__dict__.setdefault("_parts_made", {})
        if meth.__name__ not in made:
            made[meth.__name__] = meth(self)
        result: R = made[meth.__name__]
        return result

    return once


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


def make_agent(config: Any, llm: BaseLLM) -> Agent:
    """An Agent from its YAML `config` with the shared limits and `llm` (from `llm.crew_llm`):
    an idle one of the same config from :data:`AGENTS` when there is one, else a new one."""
    return AGENTS.take(config, llm)


class AgentPool:
    """Idle crew agents of this process, by their YAML config, for the next run to reuse.

    CrewAI builds an agent's executor (a Flow with its own state class and bound methods) the
    first time the agent runs; on later runs it only updates the executor's task, prompt and
    LLM and resets its state. That first build is about half the CPU of a one-call crew run
    (bench/bench_crew_cpu.py). An agent is in one run at a time: `take` hands out an idle agent
    of the config (or a new one) and `give_back` takes the agents of a run back once its crew
    has stopped (`crews.runner`). An agent whose run may still be going (its worker thread
    outlived a cancelled turn) is given back with `reuse=False` and dropped. At most
    `per_config` idle agents are kept per config."""

    def __init__(self, per_config: int = 64) -> None:
        self.per_config = per_config
        self._idle: dict[str, list[Agent]] = {}
        self._out: dict[int, tuple[str, Agent]] = {}
        self._lock = threading.Lock()

    def take(self, config: dict[str, Any], llm: BaseLLM) -> Agent:
        """An agent of `config` running on `llm`, out of the pool until given back."""
        key = json.dumps(config, sort_keys=True, default=str)
        with self._lock:
            idle = self._idle.get(key)
            agent = idle.pop() if idle else None
        if agent is None:
            agent = Agent(config=config, llm=llm, **AGENT_LIMITS)
        else:
            agent.llm = llm
        with self._lock:
            self._out[id(agent)] = (key, agent)
        return agent

    def give_back(self, agents: Iterable[Any], *, reuse: bool = True) -> None:
        """Take back the agents of a run that has stopped (`reuse`) or may still be going (not
        `reuse`: they are dropped). Agents this pool did not hand out are ignored."""
        with self._lock:
            for agent in agents:
                entry = self._out.get(id(agent))
                if entry is None or entry[1] is not agent:
                    continue
                del self._out[id(agent)]
                idle = self._idle.setdefault(entry[0], [])
                if reuse and len(idle) < self.per_config:
                    idle.append(agent)


#: The process's agent pool (`make_agent` takes from it, the crew runner gives back).
AGENTS = AgentPool()


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
