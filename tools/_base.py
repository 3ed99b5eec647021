"""What every typed CrewAI tool of Flowstate shares.

The plain functions of `tools/*.py` take a sync `Session` (crews call them up front, with the
records going into the task description: offline.md measured that tools called by a 1.5B agent
cost 2+ LLM calls, ~4x the prompt tokens, and can loop). The `BaseTool` subclasses wrap the same
functions for agents that do need a tool and for LangGraph tooling: each holds the sync `Engine`,
opens one transaction per call, and returns compact JSON; a domain error comes back as a plain
sentence the agent can read ("account 'Nope' not found"), never as an exception that would end
the agent's run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from config.runtime_env import apply_offline_defaults

apply_offline_defaults()  # before crewai is imported (offline.md "Switches")

from crewai.tools import BaseTool  # noqa: E402

from crm.db import session_scope  # noqa: E402
from crm.errors import DomainError  # noqa: E402

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    """Pydantic models (and lists of them) as plain JSON-able data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    """Compact JSON of a tool result (short prompts read faster on the local model)."""
    return json.dumps(to_jsonable(value), separators=(",", ":"), default=str, ensure_ascii=False)


class CRMTool(BaseTool):
    """A CrewAI tool over the CRM: `engine` is the sync SQLAlchemy engine it opens sessions on."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Engine = Field(exclude=True)

    def call_in_session(self, fn: Callable[[Session], Any]) -> str:
        """Run `fn(session)` in one transaction; JSON of its result, or the domain error as text."""
        try:
            with session_scope(self.engine) as session:
                return dumps(fn(session))
        except DomainError as exc:
            return f"Error: {exc}"
