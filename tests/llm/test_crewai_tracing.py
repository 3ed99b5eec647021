"""CrewAI's trace collection is declined in its own user data before CrewAI is imported
(`llm.crewai.decline_crewai_tracing`): no trace handlers, no first-time trace offer."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm.crewai import decline_crewai_tracing

REPO = Path(__file__).resolve().parents[2]

#: A fresh process imports a crew (the way the app does: a crew module first), builds a crew and
#: prints how many handlers CrewAI's event bus holds, by listener.
_PROBE = """
import collections, json
import crews.discovery.crew
from crewai.events.event_bus import crewai_event_bus as bus
from crews.crewkit import Agent, Task, single_crew
agent = Agent(role="r", goal="g", backstory="b", llm="gpt-4o-mini")
single_crew([agent], [Task(description="d", expected_output="e", agent=agent)])
by = collections.Counter()
for handlers in bus._sync_handlers.values():
    for handler in handlers:
        by[handler.__qualname__.split(".")[0]] += 1
print(json.dumps(by))
"""


def test_a_fresh_machine_records_tracing_declined_and_crewai_registers_no_trace_handlers(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CREWAI_STORAGE_DIR"}
    env["XDG_DATA_HOME"] = str(tmp_path)  # CrewAI's data folder: a machine that never ran it
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    handlers = json.loads(done.stdout.strip().splitlines()[-1])
    assert handlers.get("TraceCollectionListener", 0) == 0, handlers
    assert handlers.get("EventListener", 0) > 0  # CrewAI's own listener is still there
    record = json.loads((tmp_path / "flowstate" / ".crewai_user.json").read_text())
    assert record["trace_consent"] is False and record["first_execution_done"] is True


def test_a_data_folder_that_cannot_be_written_leaves_crewai_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocked))  # its folders cannot be made under a file
    with caplog.at_level(logging.WARNING, logger="llm.crewai"):
        assert decline_crewai_tracing.__wrapped__() is False
    assert "tracing is declined" in caplog.text
