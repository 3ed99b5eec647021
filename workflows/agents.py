"""The scheduled agents' activity work (`tools.scheduled`), rep by rep: select and file in one
transaction, draft the emails outside it (the closing crew through the guards, minutes of model
time for a full run on a small CPU), then file the drafts in a second short transaction."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import Engine

from config.files import load_schedules
from contracts import ProposedAction
from contracts.notifications import Notification
from crm.db import session_scope
from crm.models import SalesRep
from llm import LLMConfig
from tools.deals import DealOut
from tools.scheduled import Drafter, Filed, reps_in, run_for_rep
from workflows.deps import WorkerConfig
from workflows.drafting import draft_email

#: The agents whose proposals are emails to the buyer (drafted when a model is configured).
DRAFTING_AGENTS = frozenset({"follow_up", "closure", "nurture"})


def crew_drafter(engine: Engine, llm: LLMConfig) -> Drafter:
    """A drafter that asks the closing crew (`workflows.drafting.draft_email`); it runs the crew on
    a loop of its own, so call it from a thread that has none (a sync activity)."""

    def draft(deal: DealOut, brief: str) -> tuple[ProposedAction, str] | None:
        result = asyncio.run(draft_email(engine, llm, deal, brief))
        return (result.action, result.text) if result.action is not None else None

    return draft


def run(
    engine: Engine, config: WorkerConfig, agent: str, time_zone: str, now: dt.datetime | None = None
) -> tuple[dict[str, int], list[Notification]]:
    """Run `agent` for the reps of `time_zone`; (items filed per kind, their notifications).
    Raises ValueError for an agent that is not configured."""
    schedules = {str(k): v for k, v in load_schedules(config.schedules_config).agents.items()}
    if agent not in schedules:
        raise ValueError(f"unknown agent {agent!r}; configured: {sorted(schedules)}")
    now = now or dt.datetime.now(dt.UTC)
    drafter = (
        crew_drafter(engine, config.llm) if config.llm is not None and agent in DRAFTING_AGENTS else None
    )
    filed = Filed()
    with session_scope(engine) as session:
        rep_ids = [rep.id for rep in reps_in(session, time_zone)]
    for rep_id in rep_ids:
        with session_scope(engine) as session:
            rep = session.get(SalesRep, rep_id)
            if rep is None:
                continue
            agent_run = run_for_rep(session, agent, rep, schedules[agent], now, filed)
        drafts = {p.key: drafter(p.deal, p.brief) if drafter else None for p in agent_run.pending}
        with session_scope(engine) as session:
            agent_run.session = session
            for proposal in agent_run.pending:
                agent_run.file_proposal(proposal, drafts[proposal.key])
    return filed.counts, filed.notifications
