"""`flowstate worker`: a Temporal worker alone (reminders, the outbox, onboarding, the scheduled
agents). `flowstate serve` runs one beside the API; run more against one cluster to scale out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from workflows.deps import WorkerConfig

console = Console()
log = logging.getLogger("flowstate.worker")

#: The services a worker needs; the LLM because the closing crew drafts the sequences' emails (an
#: embedded model server already running for the data directory is reused, not started twice).
WORKER_NEEDS = frozenset({"database", "redis", "llm", "temporal", "smtp"})


def worker() -> None:
    """Run a Temporal worker until Ctrl-C or SIGTERM. Uses TEMPORAL_ADDRESS, DATABASE_URL, REDIS_URL
    and SMTP_URL when set; else the embedded servers of the data directory (started if needed)."""
    from rich.logging import RichHandler

    from app.commands.serve import ENDPOINTS_ENV, endpoints_from_json
    from app.services.workflows import worker_config
    from config.settings import get_settings
    from embedded.stack import ServiceUnavailable, running_stack

    logging.basicConfig(
        level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)]
    )
    for name in ("workflows", "flowstate", "embedded"):
        logging.getLogger(name).setLevel(logging.INFO)
    settings = get_settings()

    def _run(config_text: str | None) -> None:
        with contextlib.ExitStack() as stack:
            if config_text:  # started by `flowstate serve`: its services, already running
                endpoints = endpoints_from_json(config_text)
            else:
                from crm.migrate import upgrade

                endpoints = stack.enter_context(
                    running_stack(settings, need=WORKER_NEEDS, show_progress=False)
                )
                upgrade(endpoints.database_url)
            config = worker_config(settings, endpoints)
            console.print(f"worker on task queue {config.task_queue} at {config.temporal_address}")
            asyncio.run(_until_signalled(config))

    try:
        _run(os.environ.get(ENDPOINTS_ENV))
    except ServiceUnavailable as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        pass


async def _until_signalled(config: WorkerConfig) -> None:
    """Run the worker until SIGINT or SIGTERM, then shut it down in order (the Temporal worker
    stops polling and lets running activities finish)."""
    from workflows.worker import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_worker(config, stop=stop)


def register(cli: typer.Typer) -> None:
    cli.command("worker")(worker)
