"""The app's link to Temporal: the worker configuration from the settings and the running stack,
and the per-process `workflows.client.Workflows` the routes and the chat use after a write."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine

from config.settings import Settings
from contracts import ActionMeta, ProposedAction
from embedded.stack import Endpoints
from graphs.context import ActionLog
from llm import LLMConfig
from workflows.client import Workflows, connect
from workflows.deps import WorkerConfig
from workflows.starts import requested_by

log = logging.getLogger(__name__)


def worker_config(settings: Settings, endpoints: Endpoints) -> WorkerConfig:
    """The WorkerConfig of `endpoints` (which must include Temporal) and `settings`. Raises
    ValueError when the endpoints have no Temporal address."""
    if not endpoints.temporal_address:
        raise ValueError("no Temporal server: set TEMPORAL_ADDRESS or let `flowstate serve` start one")
    return WorkerConfig(
        database_url=endpoints.database_url,
        redis_url=endpoints.redis_url,
        temporal_address=endpoints.temporal_address,
        temporal_namespace=endpoints.temporal_namespace,
        task_queue=settings.task_queue,
        smtp_url=endpoints.smtp_url,
        mail_from=settings.mail_from,
        reminders_config=settings.reminders_config,
        schedules_config=settings.schedules_config,
        sequences_config=settings.sequences_config,
        llm=LLMConfig.from_endpoints(endpoints, settings) if endpoints.openai_base_url else None,
        dispatch_every_s=settings.dispatch_every_s,
        onboarding_check_s=settings.onboarding_check_s,
    )


async def open_workflows(settings: Settings, endpoints: Endpoints, engine: Engine) -> Workflows | None:
    """A connected `Workflows` for this process, or None when the endpoints have no Temporal (the
    app then only records what it asks for, and a worker's dispatch starts it) or the cluster does
    not answer now (logged)."""
    if not endpoints.temporal_address:
        return None
    try:
        client = await connect(endpoints.temporal_address, endpoints.temporal_namespace)
    except Exception as exc:
        log.warning(
            "Temporal at %s does not answer (%r); workflows start from the dispatch",
            endpoints.temporal_address,
            exc,
        )
        return None
    return Workflows(client, engine, worker_config(settings, endpoints))


class StartingActions:
    """The chat's action log (`graphs.context.ActionLog`) that, once an approved action has
    committed, starts the workflows it asked for (its reminders', its email's, a won deal's
    onboarding) on the app's event loop, without waiting for them."""

    def __init__(self, inner: ActionLog, workflows: Workflows, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.workflows = workflows
        self.loop = loop

    def execute(self, action: ProposedAction, meta: ActionMeta) -> dict[str, Any]:
        """`inner.execute`, then the start of what it asked for (called from a worker thread)."""
        result = self.inner.execute(action, meta)
        ids = requested_by(result)
        if ids:
            asyncio.run_coroutine_threadsafe(self.workflows.start(ids), self.loop)
        return result

    def record(self, kind: str, payload: dict[str, Any], meta: ActionMeta) -> None:
        self.inner.record(kind, payload, meta)
