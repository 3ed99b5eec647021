"""Running tool calls from the async request path: one transaction in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm.db import session_scope

__all__ = ["run_in_session"]

T = TypeVar("T")


def _in_session(engine: Engine, fn: Callable[[Session], T]) -> T:
    with session_scope(engine) as session:
        return fn(session)


async def run_in_session(engine: Engine, fn: Callable[[Session], T]) -> T:
    """`fn(session)` in one transaction on `engine` (committed when it returns, rolled back when
    it raises), run in a worker thread: the domain code is sync. Its exceptions propagate."""
    return await asyncio.to_thread(_in_session, engine, fn)
