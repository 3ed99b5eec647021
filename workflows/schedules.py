"""The Temporal Schedules Flowstate keeps on the cluster: each scheduled agent of
`config/schedules.yaml` once per rep time zone (at its local time), and the dispatch of missed
workflow starts every few seconds. `ensure_schedules` creates what is missing and updates what
changed, so every worker start leaves the cluster matching the configuration."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re

from sqlalchemy import Engine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from config.files import AgentSchedule, SchedulesConfig, load_schedules
from crm.db import session_scope
from tools.scheduled import rep_time_zones
from workflows.deps import WorkerConfig
from workflows.types import AgentRunInput

log = logging.getLogger(__name__)

_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def agent_schedule_id(task_queue: str, agent: str, time_zone: str) -> str:
    """`<task queue>-agent-<agent>-<zone>`, the zone's `/` and other characters as `-` (e.g.
    `flowstate-agent-follow_up-Europe-Berlin`). The task queue is part of the id so that two
    deployments sharing a namespace (or two test runs) keep their own schedules."""
    return f"{task_queue}-agent-{agent}-{re.sub(r'[^A-Za-z0-9_]+', '-', time_zone)}"


def dispatch_schedule_id(task_queue: str) -> str:
    """`<task queue>-dispatch`: the dispatch of missed workflow starts."""
    return f"{task_queue}-dispatch"


def calendar_of(schedule: AgentSchedule) -> ScheduleCalendarSpec:
    """The calendar spec of an agent: its hour and minute, on its weekdays (Temporal counts
    Sunday as 0), else every `every_days` days of the month counted from the 1st."""
    days_of_week = (
        [ScheduleRange(_WEEKDAYS.index(d)) for d in schedule.weekdays]
        if schedule.weekdays
        else [ScheduleRange(0, 6)]
    )
    days_of_month = (
        [ScheduleRange(1, 31, schedule.every_days)]
        if schedule.every_days > 1 and not schedule.weekdays
        else [ScheduleRange(1, 31)]
    )
    return ScheduleCalendarSpec(
        hour=[ScheduleRange(schedule.at.hour)],
        minute=[ScheduleRange(schedule.at.minute)],
        day_of_week=days_of_week,
        day_of_month=days_of_month,
    )


def agent_schedules(config: SchedulesConfig, time_zones: list[str], task_queue: str) -> dict[str, Schedule]:
    """Schedule id -> Schedule for every agent and zone: each starts `agent-run` (skipping a run
    while the previous one of the same schedule is still going)."""
    out: dict[str, Schedule] = {}
    for agent, schedule in config.agents.items():
        for tz in time_zones:
            sid = agent_schedule_id(task_queue, agent, tz)
            out[sid] = Schedule(
                action=ScheduleActionStartWorkflow(
                    "agent-run",
                    AgentRunInput(agent=agent, time_zone=tz),
                    id=f"{sid}-run",
                    task_queue=task_queue,
                ),
                spec=ScheduleSpec(calendars=[calendar_of(schedule)], time_zone_name=tz),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            )
    return out


def dispatch_schedule(every_s: float, task_queue: str) -> Schedule:
    """The dispatch of missed starts, every `every_s` seconds."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "dispatch", id=f"{dispatch_schedule_id(task_queue)}-run", task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=dt.timedelta(seconds=every_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedules(client: Client, wanted: dict[str, Schedule]) -> list[str]:
    """Create each schedule of `wanted` that the cluster lacks and update the others to match;
    returns the ids. Schedules this code did not make are left alone."""
    for sid, schedule in wanted.items():
        try:
            await client.create_schedule(sid, schedule)
        except ScheduleAlreadyRunningError:

            def _replace(_inp: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(sid).update(_replace)
    log.info("%d schedules in place", len(wanted))
    return sorted(wanted)


def rep_zones(engine: Engine) -> list[str]:
    """The reps' time zones (["UTC"] without reps), read from the CRM."""
    with session_scope(engine) as session:
        return rep_time_zones(session)


async def put_schedules(
    client: Client, engine: Engine, config: WorkerConfig, zones: list[str] | None = None
) -> list[str]:
    """The agent schedules for the reps' time zones (`zones`, else read now) and the dispatch
    schedule, on the cluster; their ids."""
    zones = zones if zones is not None else await asyncio.to_thread(rep_zones, engine)
    wanted = agent_schedules(load_schedules(config.schedules_config), zones, config.task_queue)
    wanted[dispatch_schedule_id(config.task_queue)] = dispatch_schedule(
        config.dispatch_every_s, config.task_queue
    )
    return await ensure_schedules(client, wanted)
