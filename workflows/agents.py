"""The scheduled agents' activity work: one transaction per run over the reps of a time zone
(`tools.scheduled`), at the schedule's configured thresholds."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from config.files import load_schedules
from contracts.notifications import Notification
from crm.db import session_scope
from tools.scheduled import run_agent
from workflows.deps import WorkerConfig


def run(
    engine: Engine, config: WorkerConfig, agent: str, time_zone: str, now: dt.datetime | None = None
) -> tuple[dict[str, int], list[Notification]]:
    """Run `agent` for the reps of `time_zone`; (items filed per kind, their notifications)."""
    schedules = load_schedules(config.schedules_config).agents
    with session_scope(engine) as session:
        filed = run_agent(
            session,
            agent,
            {str(k): v for k, v in schedules.items()},
            time_zone,
            now or dt.datetime.now(dt.UTC),
        )
    return filed.counts, filed.notifications
