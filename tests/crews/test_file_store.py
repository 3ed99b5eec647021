"""CrewAI's disabled file store is called without a new event loop per call (crews.crewkit)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from crewai.utilities import file_store

import crews.crewkit  # noqa: F401  (installs the runner of CrewAI's file-store calls)


def test_disabled_file_store_calls_start_no_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    assert file_store._file_store is None  # aiocache is not installed: the store is off

    def no_loop(*args: object, **kwargs: object) -> None:
        raise AssertionError("asyncio.run was called")

    monkeypatch.setattr(asyncio, "run", no_loop)
    crew_id, task_id = uuid.uuid4(), uuid.uuid4()
    assert file_store.get_all_files(crew_id, task_id) is None
    assert file_store.get_files(crew_id) is None
    file_store.clear_task_files(task_id)
    file_store.clear_files(crew_id)


def test_a_call_that_suspends_is_refused_not_lost() -> None:
    async def suspends() -> int:
        await asyncio.sleep(0)
        return 1

    with pytest.raises(RuntimeError, match="suspended"):
        file_store._run_sync(suspends())
