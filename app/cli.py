"""The `flowstate` command (typer). Each command lives in `app/commands/` and imports what it
needs inside the function, so `flowstate --help` starts without loading CrewAI or Guardrails."""

from __future__ import annotations

import typer

cli = typer.Typer(
    name="flowstate",
    help="Flowstate: a self-hostable AI sales assistant over your CRM.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
eval_cli = typer.Typer(
    help="Evaluate the router, the chat answers or the guards on a JSONL file.", no_args_is_help=True
)
cli.add_typer(eval_cli, name="eval")


def main() -> None:
    """Entry point of the `flowstate` console script."""
    from config.runtime_env import apply_offline_defaults

    # Before any command imports CrewAI/LiteLLM/Guardrails: they read these switches at import.
    apply_offline_defaults()
    from app.commands import register_all

    register_all(cli, eval_cli)
    cli()
