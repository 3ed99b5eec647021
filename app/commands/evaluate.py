"""Evaluation commands under `flowstate eval`.

`flowstate eval guards FILE [--json] [--fail-under X]`: run labelled guard cases (JSONL of
{"text", "context"?, "expect": "pass"|"fail", "validator"}) through the validators and print
precision and recall per validator and overall (positive class: fail), with the mistakes.
Exit codes: 0 done (and every validator at or above --fail-under when given); 1 a validator below
--fail-under; 2 the file is missing or malformed (the message names the line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def guards_command(
    file: Annotated[Path, typer.Argument(help="JSONL of guard cases (e.g. eval/guards_cases.jsonl)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    fail_under: Annotated[
        float | None,
        typer.Option("--fail-under", help="Exit 1 if a validator's precision or recall is below this"),
    ] = None,
) -> None:
    """Precision and recall of each guard validator on labelled cases."""
    from guards.evaluation import CaseFileError, below, evaluate, format_table, load_cases

    if not file.is_file():
        typer.echo(f"error: {file}: no such file", err=True)
        raise typer.Exit(2)
    try:
        cases = load_cases(file)
    except CaseFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = evaluate(cases)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(format_table(report))
    if fail_under is not None and below(report, fail_under):
        raise typer.Exit(1)


def register(eval_cli: typer.Typer) -> None:
    """Attach the evaluation commands to `flowstate eval`."""
    eval_cli.command("guards")(guards_command)
    from app.commands.eval_questions import questions_command

    eval_cli.command("questions")(questions_command)
    from app.commands.eval_intents import intents_command

    eval_cli.command("intents")(intents_command)
    from app.commands.eval_multiturn import multiturn_command

    eval_cli.command("multiturn")(multiturn_command)
    from app.commands.eval_actions import actions_command

    eval_cli.command("actions")(actions_command)
