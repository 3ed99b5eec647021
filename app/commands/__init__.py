"""CLI commands, one module per concern; `register_all` wires them onto the typer apps."""

from __future__ import annotations

import typer


def register_all(cli: typer.Typer, eval_cli: typer.Typer) -> None:
    """Attach every command to `cli` (top level) and `eval_cli` (`flowstate eval ...`)."""
    from app.commands import chat, data, db, doctor, evaluate, serve, users, worker

    db.register(cli)
    serve.register(cli)
    doctor.register(cli)
    data.register(cli)
    evaluate.register(eval_cli)
    chat.register(cli)
    worker.register(cli)
    users.register(cli)
