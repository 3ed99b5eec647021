"""`flowstate doctor`: which services Flowstate would use, and whether each one answers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from config.settings import Settings
    from embedded.health import ComponentStatus
    from embedded.stack import Endpoints

console = Console()

#: Which Endpoints fields a started component fills in.
_FIELDS = {
    "database": ("database_url",),
    "redis": ("redis_url",),
    "llm": ("openai_base_url", "openai_api_key"),
    "temporal": ("temporal_address", "temporal_ui_url"),
}


def _diagnose(settings: Settings, start: bool) -> list[ComponentStatus]:
    """Check every component. External ones are only probed. Embedded ones are started for the
    duration of the check when `start` (one at a time, so one failing to start is reported
    without hiding the others) or, with `start=False`, probed only if already running."""
    import contextlib

    from embedded.health import check_components
    from embedded.stack import attach_running, running_stack

    endpoints: Endpoints = attach_running(settings)
    failed: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if start:
            for component in ("database", "redis", "llm", "temporal"):
                if component not in endpoints.embedded:
                    continue
                try:
                    sub = stack.enter_context(running_stack(settings, need={component}, show_progress=False))
                except Exception as exc:  # reported as this component's finding
                    failed[component] = f"embedded, did not start: {' '.join(str(exc).split())[:300]}"
                    continue
                values = {name: getattr(sub, name) for name in _FIELDS[component]}
                endpoints = dataclasses.replace(endpoints, **values, info={**endpoints.info, **sub.info})
        statuses = asyncio.run(check_components(endpoints))
    for status in statuses:
        if status.name in failed:
            status.ok, status.version, status.detail = False, None, failed[status.name]
        elif status.mode == "embedded" and not start and status.detail == "not running":
            status.detail = "embedded, not running (start it with `flowstate serve`)"
    return statuses


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    start: Annotated[
        bool,
        typer.Option(
            "--start/--no-start",
            help="Start embedded services briefly to check them (default), or only probe running ones.",
        ),
    ] = True,
) -> None:
    """Report each component (database, Redis, LLM, embeddings, Temporal): embedded or external, version,
    whether it answers, and for the embedded model server how it last crashed (exit code or
    signal, last log lines) and how often it was restarted. Exits 1 if any does not answer."""
    from config.settings import get_settings

    statuses = _diagnose(get_settings(), start)
    ok = all(s.ok for s in statuses)
    if as_json:
        report = {
            "status": "ok" if ok else "degraded",
            "components": [s.model_dump(mode="json") for s in statuses],
        }
        typer.echo(json.dumps(report, indent=2))
    else:
        table = Table(title="Flowstate components")
        for column in ("component", "mode", "version", "answers", "ms", "detail"):
            table.add_column(column, overflow="fold")
        for s in statuses:
            answers = "[green]yes[/]" if s.ok else "[red]no[/]"
            table.add_row(s.name, s.mode, s.version or "-", answers, f"{s.latency_ms:.0f}", s.detail)
        console.print(table)
        for s in statuses:
            if s.last_exit is not None and s.last_exit.log_tail:
                console.print(f"[bold]{s.name}[/]: the server {s.last_exit.ended}; its last log lines:")
                for line in s.last_exit.log_tail[-10:]:
                    console.print(f"  {line}", markup=False, highlight=False)
    if not ok:
        raise typer.Exit(1)


def register(cli: typer.Typer) -> None:
    cli.command("doctor")(doctor)
