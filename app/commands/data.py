"""Data commands: `flowstate import PATH`, `flowstate seed-demo`, `flowstate reembed`.

Each runs against DATABASE_URL (or the embedded PostgreSQL, started for the command) after
applying the migrations. Exit codes of `import`: 0 imported; 1 rows were rejected (nothing written
unless `--allow-rejections`); 2 the export is malformed or cannot be understood, or the
`--mapping` file is bad (nothing written). `--dry-run` exits the same way and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from crm.importer import ImportReport

console = Console()
err_console = Console(stderr=True)

#: Rejections listed on the terminal (all of them are in the --json output).
SHOWN_REJECTIONS = 20


def _report_table(report: ImportReport) -> Table:
    dry = ", dry run" if report.dry_run else ""
    table = Table(title=f"Import of {report.folder} ({report.duration_s:.2f} s{dry})")
    for col in ("entity", "created", "updated", "unchanged", "in CRM"):
        table.add_column(col, justify="left" if col == "entity" else "right")
    totals = {
        "accounts": report.accounts,
        "products": report.products,
        "sales_reps": report.sales_reps,
        "deals": report.deals,
    }
    if report.contacts is not None:
        totals["contacts"] = report.contacts
    for entity, total in totals.items():
        table.add_row(
            entity,
            str(report.created[entity]),
            str(report.updated[entity]),
            str(report.unchanged[entity]),
            str(total),
        )
    return table


def _print_files(report: ImportReport) -> None:
    """Each file's role and column mapping (canonical field <- the file's header)."""
    for plan in report.files:
        if plan.role == "ignore":
            console.print(f"[yellow]left out[/] {plan.file}: {plan.note}", soft_wrap=True)
            continue
        columns = ", ".join(f"{f} <- {h!r}" for f, h in plan.columns.items())
        how = f" ({plan.note})" if plan.note else ""
        console.print(f"[cyan]{plan.file}[/] as {plan.role}{how}: {columns}", soft_wrap=True)
    for note in report.notes:
        console.print(f"[yellow]note[/] {note}", soft_wrap=True)


def _print_details(report: ImportReport) -> None:
    for r in report.repaired:
        rows = ", ".join(map(str, r.examples)) + (", ..." if r.rows > len(r.examples) else "")
        console.print(
            f"[yellow]repaired[/] {r.file} {r.field}: {r.from_!r} -> {r.to!r} in {r.rows} row(s) ({rows})",
            soft_wrap=True,
        )
    for rej in report.rejected[:SHOWN_REJECTIONS]:
        console.print(f"[red]rejected[/] {rej.file}, row {rej.row}: {rej.reason}", soft_wrap=True)
    if len(report.rejected) > SHOWN_REJECTIONS:
        console.print(
            f"[red]... and {len(report.rejected) - SHOWN_REJECTIONS} more rejection(s)[/] (see --json)"
        )


def import_cmd(
    path: Annotated[
        Path,
        typer.Argument(help="Folder of the export's CSV files (accounts, products, users, deals, contacts)"),
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    allow_rejections: Annotated[
        bool,
        typer.Option(
            "--allow-rejections",
            help="Import the valid rows and skip rejected ones (default: import nothing).",
        ),
    ] = False,
    mapping_file: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            help="YAML merged over config/import_mapping.yaml: columns:, stages:, repairs:, "
            "roles: {file name: accounts|products|sales_reps|deals|contacts|ignore}.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show each file's role and columns and the report; write nothing."),
    ] = False,
) -> None:
    """Import a CRM export (Maven, Salesforce, HubSpot or any CSV export) in one transaction.

    Each file's role and columns are recognised from its headers (config/import_mapping.yaml).
    Idempotent: re-importing the same export changes nothing. Known misspellings are repaired and
    reported; rows naming unknown accounts, products, reps or stages are rejected with their row.
    """
    import yaml
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from config.files import load_import_mapping, read_import_mapping
    from config.settings import get_settings
    from crm.db import make_engine
    from crm.importer import ImportFileError, ImportRejected, import_export
    from crm.migrate import upgrade
    from embedded.stack import running_stack

    mapping = load_import_mapping()
    if mapping_file is not None:
        try:
            mapping = mapping.merged(read_import_mapping(mapping_file))
        except (OSError, yaml.YAMLError, ValidationError, ValueError) as exc:
            err_console.print(f"[red]bad --mapping file {mapping_file}:[/] {exc}")
            raise typer.Exit(2) from None

    with running_stack(get_settings(), need={"database"}) as endpoints:
        upgrade(endpoints.database_url)
        engine = make_engine(endpoints.database_url)
        progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            disable=json_out,
        )
        tasks: dict[str, TaskID] = {}

        def on_progress(entity: str, done: int, total: int) -> None:
            if entity not in tasks:
                tasks[entity] = progress.add_task(entity, total=total)
            progress.update(tasks[entity], completed=done, total=total)

        rejected = False
        try:
            with progress:
                report = import_export(
                    engine,
                    path,
                    on_progress,
                    allow_rejections=allow_rejections,
                    mapping=mapping,
                    dry_run=dry_run,
                )
        except ImportFileError as exc:
            err_console.print(f"[red]import failed, nothing was written:[/] {exc}")
            raise typer.Exit(2) from None
        except ImportRejected as exc:
            report, rejected = exc.report, True
        finally:
            engine.dispose()

    if json_out:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_files(report)
        console.print(_report_table(report))
        _print_details(report)
    if rejected:
        err_console.print(
            f"[red]{len(report.rejected)} row(s) rejected; nothing was written.[/] "
            "Fix them, or pass --allow-rejections to import the other rows."
        )
        raise typer.Exit(1)
    if json_out:
        return
    if dry_run:
        console.print("[yellow]dry run: nothing was written[/]")
    else:
        console.print(
            "[green]imported[/]" if report.changed else "[green]already up to date[/] (nothing changed)"
        )


def seed_demo_cmd(
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
) -> None:
    """Fill an empty CRM with generated demo data (accounts, contacts, deals, notes...)."""
    from config.settings import get_settings
    from crm.db import make_engine
    from crm.demo import seed_demo
    from crm.migrate import upgrade
    from embedded.stack import running_stack

    with running_stack(get_settings(), need={"database"}) as endpoints:
        upgrade(endpoints.database_url)
        engine = make_engine(endpoints.database_url)
        try:
            with console.status("seeding demo data ..."):
                counts = seed_demo(engine, seed=seed)
        finally:
            engine.dispose()
    if not counts:
        console.print("[yellow]the CRM already has data; demo data not seeded[/]")
        return
    console.print(
        "[green]demo data seeded:[/] " + ", ".join(f"{n} {k}" for k, n in counts.items()), soft_wrap=True
    )


def reembed_cmd() -> None:
    """Recompute every document embedding with the configured model (after switching models)."""
    from config.settings import get_settings
    from crm.db import make_engine, session_scope
    from crm.documents import reembed_all
    from crm.embeddings import get_embedder
    from crm.migrate import upgrade
    from embedded.stack import running_stack

    settings = get_settings()
    embedder = get_embedder(settings)
    with running_stack(settings, need={"database"}) as endpoints:
        upgrade(endpoints.database_url)
        engine = make_engine(endpoints.database_url)
        try:
            with (
                console.status(f"re-embedding documents with {embedder.model_name} ..."),
                session_scope(engine) as session,
            ):
                count = reembed_all(session, embedder)
        finally:
            engine.dispose()
    console.print(f"[green]re-embedded {count} document(s)[/] with {embedder.model_name}")


def register(cli: typer.Typer) -> None:
    cli.command("import")(import_cmd)
    cli.command("seed-demo")(seed_demo_cmd)
    cli.command("reembed")(reembed_cmd)
