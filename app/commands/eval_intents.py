"""`flowstate eval intents FILE [--json] [--no-llm] [--no-entities] [--llm-timeout S] [--fail-under X]`.

Runs each line of FILE (`{"message", "intent", "id"?}`) through the chat router
(`graphs.intent.IntentRouter`, built by `app.services.context.intent_router` as the chat's is:
local embedder + the configured LLM, started by `embedded.stack.running_stack` when no
OPENAI_BASE_URL is set), after resolving each message's entities in the CRM database with the
chat's resolver (`graphs.adapters.CrmResolver`; the router masks the names it finds), and asks
it as the chat's `classify_intent` node does: `aclassify(message, previous_intent, entities)`,
with no previous intent (each case is the first message of a thread). Prints accuracy, a confusion table
(rows: expected intent, columns: predicted), every mistake, how each message was decided and
the router's latency. `--json` prints one object: {"n", "accuracy", "confusion": {gold: {pred:
n}}, "mistakes": [...], "median_ms", "p95_ms", "llm_calls", "methods"}.
Exit codes: 0 done (and accuracy >= --fail-under when given); 1 below --fail-under; 2 the file is
missing or malformed (the message names the line).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

    from contracts import Entities
    from graphs.intent import IntentResult, IntentRouter


class IntentFileError(ValueError):
    """A line of the intents file is not usable (the message names the line)."""


def load_cases(path: Path) -> list[dict[str, str]]:
    """The cases of a JSONL file: each line an object with a non-empty "message" and an "intent"
    among `contracts.INTENTS`; blank lines are skipped. Raises IntentFileError."""
    from contracts import INTENTS

    cases: list[dict[str, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise IntentFileError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise IntentFileError(f"{path}:{n}: expected a JSON object")
        msg, intent = obj.get("message"), obj.get("intent")
        if not isinstance(msg, str) or not msg.strip():
            raise IntentFileError(f'{path}:{n}: "message" must be a non-empty string')
        if intent not in INTENTS:
            raise IntentFileError(f'{path}:{n}: "intent" must be one of {", ".join(INTENTS)}, got {intent!r}')
        cases.append({"id": str(obj.get("id", n)), "message": msg, "intent": intent})
    if not cases:
        raise IntentFileError(f"{path}: no cases")
    return cases


def evaluate(
    router: IntentRouter, cases: list[dict[str, str]], resolve: Callable[[str], Entities] | None = None
) -> dict[str, Any]:
    """Classify every case (sequentially, as a chat would) and summarise; see the module docstring.
    `resolve(message)` gives the message's entities (None: no entity masking)."""
    import asyncio

    from contracts import INTENTS

    async def run() -> list[IntentResult]:
        out = []
        for c in cases:
            entities = resolve(c["message"]) if resolve is not None else None
            out.append(await router.aclassify(c["message"], None, entities))
        return out

    results = asyncio.run(run())
    confusion: dict[str, dict[str, int]] = {g: dict.fromkeys(INTENTS, 0) for g in INTENTS}
    mistakes: list[dict[str, Any]] = []
    methods: dict[str, int] = {}
    for case, res in zip(cases, results, strict=True):
        confusion[case["intent"]][res.intent] += 1
        methods[res.method] = methods.get(res.method, 0) + 1
        if res.intent != case["intent"]:
            mistakes.append(
                {
                    "id": case["id"],
                    "message": case["message"],
                    "expected": case["intent"],
                    "got": res.intent,
                    "method": res.method,
                    "confidence": res.confidence,
                    "error": res.error,
                }
            )
    ms = sorted(r.ms for r in results)
    n = len(cases)
    return {
        "n": n,
        "accuracy": round((n - len(mistakes)) / n, 4),
        "confusion": confusion,
        "mistakes": mistakes,
        "median_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[int(0.95 * (n - 1))], 1),
        "llm_calls": sum(r.llm_calls for r in results),
        "methods": methods,
    }


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from contracts import INTENTS

    console = Console()
    table = Table(title="Confusion (rows: expected, columns: predicted)")
    table.add_column("expected")
    for name in INTENTS:
        table.add_column(name, justify="right")
    table.add_column("recall", justify="right")
    for gold in INTENTS:
        row = report["confusion"][gold]
        total = sum(row.values())
        cells = [f"[bold green]{row[p]}[/]" if p == gold and row[p] else str(row[p] or ".") for p in INTENTS]
        table.add_row(gold, *cells, f"{row[gold] / total:.0%}" if total else "-")
    console.print(table)
    for m in report["mistakes"]:
        console.print(
            f"[red]x[/] {m['id']}: expected [bold]{m['expected']}[/], got [bold]{m['got']}[/] "
            f"({m['method']}): {m['message']}",
            highlight=False,
        )
    right = report["n"] - len(report["mistakes"])
    console.print(
        f"accuracy [bold]{report['accuracy']:.1%}[/] ({right}/{report['n']}), "
        f"median {report['median_ms']:.0f} ms, p95 {report['p95_ms']:.0f} ms, "
        f"LLM calls {report['llm_calls']}, decided by {report['methods']}",
        highlight=False,
    )


def intents_command(
    file: Annotated[
        Path, typer.Argument(help='JSONL of {"message", "intent"} (e.g. eval/intents_dev.jsonl)')
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object")] = False,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Nearest examples only (no LLM call)")] = False,
    no_entities: Annotated[
        bool, typer.Option("--no-entities", help="Do not resolve entities in the CRM (no database)")
    ] = False,
    llm_timeout: Annotated[
        float, typer.Option("--llm-timeout", help="Router's deadline for its LLM call, seconds")
    ] = 10.0,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Exit 1 if accuracy (0-1) is below this")
    ] = None,
) -> None:
    """Accuracy and confusion table of the intent router on labelled messages."""
    import contextlib

    from app.services.context import intent_router
    from config.settings import get_settings
    from crm.embeddings import get_embedder
    from llm import LLMConfig

    if not file.is_file():
        typer.echo(f"error: {file}: no such file", err=True)
        raise typer.Exit(2)
    try:
        cases = load_cases(file)
    except IntentFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc

    settings = get_settings()
    need = set() if no_llm else {"llm"}
    if not no_entities:
        need.add("database")
    with contextlib.ExitStack() as stack:
        cfg = None
        resolve = None
        if need:
            from embedded.stack import running_stack

            endpoints = stack.enter_context(running_stack(settings, need=need, show_progress=not as_json))
        if not no_llm:
            cfg = LLMConfig.from_endpoints(endpoints, settings)
        if not no_entities:
            from contracts import Entities
            from crm.db import make_engine
            from graphs.adapters import CrmResolver

            engine = make_engine(endpoints.database_url)
            stack.callback(engine.dispose)
            resolver = CrmResolver(engine)

            def resolve(message: str) -> Entities:
                return resolver.resolve(message, Entities())

        router = intent_router(get_embedder(settings), cfg, llm_timeout_s=llm_timeout)
        router.warm()
        report = evaluate(router, cases, resolve)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_report(report)
    if fail_under is not None and report["accuracy"] < fail_under:
        raise typer.Exit(1)
