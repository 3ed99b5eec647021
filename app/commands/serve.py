"""`flowstate serve`: start (or connect to) the services, migrate, seed demo data, run the API."""

from __future__ import annotations

import importlib
import logging
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from config.settings import Settings
    from embedded.stack import Endpoints

console = Console()
log = logging.getLogger("flowstate.serve")

#: The FastAPI factory `serve` runs: `module:function(endpoints) -> FastAPI`.
DEFAULT_APP_FACTORY = "app.main:create_app"


def _raise_interrupt(signum: int, _frame: object) -> None:
    # SIGTERM (docker stop, systemd, make's children) unwinds like Ctrl-C, so the `with` blocks stop
    # the embedded servers instead of the process dying with them still running.
    raise KeyboardInterrupt(f"signal {signum}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _crm_is_empty(engine: Engine) -> bool:
    from sqlalchemy import select

    from crm.db import session_scope
    from crm.models import Account, Deal

    with session_scope(engine) as session:
        return session.scalar(select(Account.id).limit(1)) is None and (
            session.scalar(select(Deal.id).limit(1)) is None
        )


def _seed_demo_if_empty(database_url: str) -> str:
    """Seed the demo CRM when it is empty; returns a line for the summary table."""
    from crm.db import make_engine

    engine = make_engine(database_url)
    try:
        if not _crm_is_empty(engine):
            return "existing data kept"
        try:
            from crm.demo import seed_demo
        except ImportError as exc:
            log.warning("demo data skipped: crm.demo is not available (%s)", exc)
            return "skipped (crm.demo not available)"
        with console.status("seeding demo data ..."):
            counts = seed_demo(engine)
        return "seeded: " + ", ".join(f"{n} {name}" for name, n in counts.items())
    finally:
        engine.dispose()


def _load_factory(spec: str) -> Callable[[Endpoints], Any]:
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr or "create_app")
    except (ImportError, AttributeError) as exc:
        raise typer.BadParameter(f"cannot load the app factory {spec!r}: {exc}", param_hint="--app") from exc
    if not callable(factory):
        raise typer.BadParameter(f"{spec!r} is not callable", param_hint="--app")
    return factory  # type: ignore[no-any-return]


def _summary(settings: Settings, endpoints: Endpoints, demo: str, url: str) -> Table:
    table = Table(title="Flowstate", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("uses", overflow="fold")
    table.add_row("database", endpoints.describe("database"))
    table.add_row("Redis", endpoints.describe("redis"))
    table.add_row("model", endpoints.describe("llm"))
    table.add_row("embeddings", endpoints.describe("embeddings"))
    langfuse = (
        f"on ({settings.langfuse_url or 'https://cloud.langfuse.com'})"
        if settings.langfuse_enabled
        else "off (set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY)"
    )
    table.add_row("Langfuse", langfuse)
    table.add_row("demo data", demo)
    table.add_row("data dir", str(settings.data_dir))
    table.add_row("URL", f"[bold green]{url}[/]  (API docs {url}/docs, health {url}/health)")
    return table


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: FLOWSTATE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: FLOWSTATE_PORT]")] = None,
    app_factory: Annotated[
        str, typer.Option("--app", help="FastAPI factory module:function taking the endpoints.", hidden=True)
    ] = DEFAULT_APP_FACTORY,
) -> None:
    """Start the services (embedded unless DATABASE_URL / REDIS_URL / OPENAI_* are set), apply
    migrations, seed demo data into an empty CRM, and serve the API until Ctrl-C or SIGTERM."""
    import uvicorn
    from rich.logging import RichHandler

    from config.settings import get_settings
    from crm.migrate import upgrade
    from embedded.llm import LLMStartError, ModelAssemblyError
    from embedded.stack import ServiceUnavailable, running_stack

    # Libraries (pgserver, httpx, alembic) log every step at INFO: only warnings from them.
    logging.basicConfig(
        level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)]
    )
    for name in ("embedded", "app", "crm", "flowstate"):
        logging.getLogger(name).setLevel(logging.INFO)

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    url = f"http://{host}:{port}"
    if not _port_free(host, port):
        console.print(f"[red]{host}:{port} is already in use[/]: stop the other server or pass --port.")
        raise typer.Exit(1)
    factory = _load_factory(app_factory)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        console.print("starting services ...")
        with running_stack(settings) as endpoints:
            upgrade(endpoints.database_url)
            demo = _seed_demo_if_empty(endpoints.database_url) if settings.demo_data else "off"
            console.print(_summary(settings, endpoints, demo, url))
            config = uvicorn.Config(
                factory(endpoints), host=host, port=port, log_level="info", timeout_graceful_shutdown=10
            )
            # uvicorn handles SIGINT/SIGTERM itself while running and re-raises the signal after
            # its graceful shutdown, which lands in KeyboardInterrupt here and stops the stack.
            uvicorn.Server(config).run()
    except (ServiceUnavailable, LLMStartError, ModelAssemblyError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print("Flowstate stopped.")


def register(cli: typer.Typer) -> None:
    cli.command("serve")(serve)
