"""`flowstate serve`: start (or connect to) the services, migrate, seed demo data, run the API.

`--workers N` runs N uvicorn worker processes on one port. The services are started once, by
this (parent) process; each worker builds the app from the same endpoints, handed over in the
environment (`FLOWSTATE_SERVE_ENDPOINTS`, JSON of `embedded.stack.Endpoints`) and the factory
named in `FLOWSTATE_SERVE_APP` (see :func:`worker_app`). Several workers (or instances) share one
Redis and one PostgreSQL: a conversation's turns still run one at a time, through a lock per
thread in Redis (`app.services.chat`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from config.settings import Settings
    from embedded.stack import Endpoints
    from embedded.supervisor import Supervisor

console = Console()
log = logging.getLogger("flowstate.serve")

#: The FastAPI factory `serve` runs: `module:function(endpoints) -> FastAPI`.
DEFAULT_APP_FACTORY = "app.main:create_app"
#: Environment variables that carry the endpoints and the app factory to the worker processes.
ENDPOINTS_ENV = "FLOWSTATE_SERVE_ENDPOINTS"
APP_ENV = "FLOWSTATE_SERVE_APP"


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


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NoUsers(RuntimeError):
    """Refusing to serve a non-loopback address while no user exists."""


def _first_admin(database_url: str, host: str, url: str) -> str:
    """With no users yet: on a loopback address, create the first admin (`admin`, no password)
    and return a one-time sign-in link for the summary table (valid 24 h; `flowstate users link
    admin` gives a new one); on any other address, refuse to start (raises NoUsers)."""
    from app.commands.users import sign_in_url
    from crm import users
    from crm.db import make_engine, session_scope

    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            if users.count_users(session) > 0:
                return "existing users (flowstate users list)"
            if not _is_loopback(host):
                raise NoUsers(
                    f"refusing to listen on {host} with no users: anyone who reaches the port would "
                    "be admin. Add users first (`flowstate users add NAME --role admin`), or listen "
                    "on 127.0.0.1."
                )
            users.add_user(session, "admin", role="admin", display_name="Administrator")
            issued = users.issue(session, "admin", "login_link", label="first start")
            return f"[bold]{sign_in_url(url, issued.secret)}[/]  (first admin; one-time, 24 h)"
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


def endpoints_to_json(endpoints: Endpoints) -> str:
    """`endpoints` as JSON (for :data:`ENDPOINTS_ENV`); :func:`endpoints_from_json` reads it."""
    data = dataclasses.asdict(endpoints)
    data["embedded"] = sorted(endpoints.embedded)
    data["info"] = dict(endpoints.info)
    return json.dumps(data)


def endpoints_from_json(text: str) -> Endpoints:
    """The Endpoints written by :func:`endpoints_to_json`. Raises ValueError for other text."""
    from embedded.stack import Endpoints

    try:
        data = json.loads(text)
        data["embedded"] = frozenset(data["embedded"])
        return Endpoints(**data)
    except (TypeError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{ENDPOINTS_ENV} does not hold Flowstate endpoints: {exc}") from exc


def worker_app() -> Any:
    """The app of one worker process of `flowstate serve --workers N` (a uvicorn factory): the
    factory in :data:`APP_ENV` applied to the endpoints in :data:`ENDPOINTS_ENV`, both set by the
    parent. Raises RuntimeError when started any other way."""
    text = os.environ.get(ENDPOINTS_ENV)
    if not text:
        raise RuntimeError(f"{ENDPOINTS_ENV} is not set: worker_app runs under `flowstate serve --workers N`")
    from app.heap import freeze_after_startup

    _configure_logging()  # a spawned worker starts without the parent's logging set-up
    factory = _load_factory(os.environ.get(APP_ENV, DEFAULT_APP_FACTORY))
    return freeze_after_startup(factory(endpoints_from_json(text)))


def _configure_logging() -> None:
    """Flowstate's own loggers at INFO, through rich, on the console; libraries (pgserver, httpx,
    alembic) log every step at INFO: only their warnings."""
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)]
    )
    for name in ("embedded", "app", "crm", "flowstate"):
        logging.getLogger(name).setLevel(logging.INFO)


def _summary(settings: Settings, endpoints: Endpoints, demo: str, url: str, sign_in: str) -> Table:
    table = Table(title="Flowstate", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("uses", overflow="fold")
    table.add_row("database", endpoints.describe("database"))
    table.add_row("Redis", endpoints.describe("redis"))
    table.add_row("model", endpoints.describe("llm"))
    table.add_row("embeddings", endpoints.describe("embeddings"))
    table.add_row("Temporal", endpoints.describe("temporal"))
    if endpoints.temporal_ui_url:
        table.add_row("workflows UI", f"[bold]{endpoints.temporal_ui_url}[/]")
    table.add_row("outbox", endpoints.describe("smtp"))
    worker = "a worker process beside the API" if settings.serve_worker else "none (run `flowstate worker`)"
    table.add_row("workers", worker)
    langfuse = (
        f"on ({settings.langfuse_url or 'https://cloud.langfuse.com'})"
        if settings.langfuse_enabled
        else "off (set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY)"
    )
    table.add_row("Langfuse", langfuse)
    table.add_row("demo data", demo)
    table.add_row("data dir", str(settings.data_dir))
    table.add_row("URL", f"[bold green]{url}[/]  (API docs {url}/docs, health {url}/health)")
    table.add_row("sign in", sign_in)
    return table


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: FLOWSTATE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: FLOWSTATE_PORT]")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API worker processes on the one port (they share the services; about one per core).",
        ),
    ] = 1,
    app_factory: Annotated[
        str, typer.Option("--app", help="FastAPI factory module:function taking the endpoints.", hidden=True)
    ] = DEFAULT_APP_FACTORY,
) -> None:
    """Start the services (embedded unless DATABASE_URL / REDIS_URL / OPENAI_* are set), apply
    migrations, seed demo data into an empty CRM, and serve the API until Ctrl-C or SIGTERM.
    `--workers N`: N uvicorn worker processes share the port, the services and the conversations."""
    import uvicorn

    from app.heap import freeze_after_startup
    from config.settings import get_settings
    from crm.migrate import upgrade
    from embedded.llm import LLMStartError, ModelAssemblyError
    from embedded.stack import ALL_COMPONENTS, ServiceUnavailable, running_stack

    _configure_logging()

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
        with running_stack(settings, need=ALL_COMPONENTS) as endpoints, contextlib.ExitStack() as children:
            upgrade(endpoints.database_url)
            demo = _seed_demo_if_empty(endpoints.database_url) if settings.demo_data else "off"
            sign_in = _first_admin(endpoints.database_url, host, url)
            console.print(_summary(settings, endpoints, demo, url, sign_in))
            if settings.serve_worker:
                children.callback(_start_worker(endpoints, settings).stop)
            if workers > 1:
                _run_workers(endpoints, app_factory, host, port, workers)
            else:
                config = uvicorn.Config(
                    freeze_after_startup(factory(endpoints)),
                    host=host,
                    port=port,
                    log_level="info",
                    timeout_graceful_shutdown=10,
                    ws_per_message_deflate=WS_DEFLATE,
                    ws_max_size=WS_MAX_SIZE,
                )
                # uvicorn handles SIGINT/SIGTERM itself while running and re-raises the signal
                # after its graceful shutdown, which lands in KeyboardInterrupt here and stops the
                # stack.
                uvicorn.Server(config).run()
    except (ServiceUnavailable, LLMStartError, ModelAssemblyError, NoUsers) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print("Flowstate stopped.")


#: WebSocket per-message compression: off. Chat frames are a few hundred bytes, which deflate
#: barely shrinks, and compressing each one cost about 3% of a loaded server's CPU.
WS_DEFLATE = False
#: The largest WebSocket message the server reads at all (uvicorn closes the connection, 1009,
#: beyond it; its default is 16 MiB). Text frames over FLOWSTATE_MAX_BODY_BYTES below this get an
#: error frame and the connection stays open (app.api.ws_limits).
WS_MAX_SIZE = 1024 * 1024


def _start_worker(endpoints: Endpoints, settings: Settings) -> Supervisor:
    """`flowstate worker` as a child process on these endpoints, supervised: restarted with
    backoff when it dies, its state in `<data_dir>/worker.state.json`, its log in
    `<data_dir>/worker.log`."""
    import subprocess
    import sys

    from embedded._proc import child_options
    from embedded.supervisor import Supervisor

    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "worker.log"
    env = {**os.environ, ENDPOINTS_ENV: endpoints_to_json(endpoints)}
    command = [sys.executable, "-c", "from app.cli import main; main()", "worker"]

    def spawn(die_with_thread: bool) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as fh:
            return subprocess.Popen(
                command,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                **child_options(die_with_thread=die_with_thread),
            )

    supervisor = Supervisor(
        "the workflow worker",
        spawn(False),
        lambda: spawn(True),
        state_path=data_dir / "worker.state.json",
        log_path=log_path,
    ).start()
    console.print(f"workflow worker started (log {log_path})")
    return supervisor


def _run_workers(endpoints: Endpoints, app_factory: str, host: str, port: int, workers: int) -> None:
    """Serve with `workers` uvicorn processes (uvicorn's supervisor restarts a worker that dies)
    until SIGINT/SIGTERM; returns after they have stopped, so the caller stops the services."""
    import uvicorn

    os.environ[ENDPOINTS_ENV] = endpoints_to_json(endpoints)
    os.environ[APP_ENV] = app_factory
    console.print(f"serving with {workers} worker processes")
    uvicorn.run(
        "app.commands.serve:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        timeout_graceful_shutdown=10,
        ws_per_message_deflate=WS_DEFLATE,
        ws_max_size=WS_MAX_SIZE,
    )


def register(cli: typer.Typer) -> None:
    cli.command("serve")(serve)
