"""`flowstate chat`: a terminal chat on the same engine as the API.

    flowstate chat [--thread ID] [--user NAME] [--url http://HOST:PORT]

Without `--url` the engine runs in this process on the configured services (embedded ones are
started like `flowstate serve` does); with `--url` it talks to a running Flowstate over its
WebSocket (`/ws/chat/{thread}`). The reply streams as it comes; which step is working shows on a
status line; an action that needs approval is shown with its parameters and a prompt:
approve / edit (key=value pairs, or a JSON object) / reject. Commands: `/new` starts a new
thread, `/thread` shows its id, `/quit` (or Ctrl-D) leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel

if TYPE_CHECKING:
    from app.services.chat_types import ChatEngine
    from contracts.identity import Caller

console = Console()

#: What a status frame's node is shown as.
_STEP = {
    "resolve_entities": "looking up names",
    "classify_intent": "routing",
    "guard": "checking the answer",
    "approve": "carrying out your decision",
}

Send = Callable[[dict[str, Any]], AsyncIterator[dict[str, Any]]]


def parse_edits(text: str) -> dict[str, Any] | None:
    """Edits typed by the rep: a JSON object, or `key=value` pairs separated by spaces or commas
    (values that parse as JSON numbers/booleans become those). None when nothing usable."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) and value else None
    edits: dict[str, Any] = {}
    for part in text.replace(",", " ").split():
        key, sep, raw = part.partition("=")
        if not sep or not key:
            return None
        try:
            edits[key] = json.loads(raw)
        except json.JSONDecodeError:
            edits[key] = raw
    return edits or None


async def _show(frames: AsyncIterator[dict[str, Any]]) -> dict[str, Any] | None:
    """Print a run's frames; returns the pending action of its final frame (or None)."""
    streaming = False
    status = console.status("working ...", spinner="dots")
    status.start()
    pending: dict[str, Any] | None = None
    try:
        async for frame in frames:
            kind = frame.get("type")
            if kind == "status":
                crew = frame.get("crew")
                status.update(
                    f"{crew} crew working ..."
                    if crew
                    else f"{_STEP.get(frame.get('node', ''), 'working')} ..."
                )
            elif kind == "token":
                if not streaming:
                    status.stop()
                    console.print("[bold cyan]flowstate>[/] ", end="")
                    streaming = True
                console.print(frame.get("content", ""), end="", markup=False, highlight=False)
            elif kind == "discard":
                # what was streamed is withdrawn; the re-asked or safe reply streams next
                if streaming:
                    console.print()
                    console.print(f"[dim](withdrawn: {frame.get('reason')}; answering again)[/]")
                    streaming = False
            elif kind == "final":
                status.stop()
                if not streaming and frame.get("reply"):
                    console.print(f"[bold cyan]flowstate>[/] {frame['reply']}", markup=True, highlight=False)
                elif streaming:
                    console.print()
                sources = frame.get("sources") or []
                if sources:
                    labels = ", ".join(str(s.get("label")) for s in sources[:6])
                    console.print(f"[dim]sources: {labels}  (intent: {frame.get('intent')})[/]")
                pending = frame.get("pending_action")
            elif kind == "error":
                status.stop()
                if streaming:
                    console.print()
                console.print(f"[red]{frame.get('message')}[/]")
    finally:
        status.stop()
    return pending


def _ask_decision(action: dict[str, Any]) -> dict[str, Any]:
    """Prompt for approve / edit / reject; returns the resume frame."""
    params = "\n".join(f"  {k}: {v}" for k, v in (action.get("params") or {}).items())
    console.print(Panel(f"{action.get('summary')}\n{params}", title=f"approve? ({action.get('kind')})"))
    while True:
        answer = console.input("[bold]\\[a]pprove / \\[e]dit / \\[r]eject? [/]").strip().lower()
        if answer in ("a", "approve", "y", "yes"):
            return {"type": "resume", "decision": "approve"}
        if answer in ("r", "reject", "n", "no"):
            return {"type": "resume", "decision": "reject"}
        if answer in ("e", "edit"):
            edits = parse_edits(console.input("edits (key=value ... or JSON): "))
            if edits:
                return {"type": "resume", "decision": "edit", "edits": edits}
            console.print("[yellow]no edits understood; try key=value, e.g. stage=negotiation[/]")


async def _loop(send: Send, thread: str, new_thread: Callable[[], str]) -> None:
    console.print(f"[dim]thread {thread}. /new, /thread, /quit[/]")
    while True:
        try:
            text = (await asyncio.to_thread(console.input, "[bold green]you>[/] ")).strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not text:
            continue
        if text in ("/quit", "/exit"):
            return
        if text == "/thread":
            console.print(f"[dim]thread {thread}[/]")
            continue
        if text == "/new":
            thread = new_thread()
            console.print(f"[dim]new thread {thread}[/]")
            continue
        pending = await _show(send({"type": "message", "content": text, "thread": thread}))
        while pending:
            decision = await asyncio.to_thread(_ask_decision, pending)
            pending = await _show(send({**decision, "action_id": pending.get("id"), "thread": thread}))


def _local_caller(database_url: str, user: str | None) -> Caller:
    """Who a local chat runs as: the Flowstate user named `user` (their role and scope), else
    the server's own identity (`contracts.identity.SYSTEM`: whoever runs the CLI on the server
    can read the database anyway). Exits when no such user exists."""
    from contracts.identity import SYSTEM
    from crm import users
    from crm.db import make_engine, session_scope

    if not user:
        return SYSTEM
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            found = [u for u in users.list_users(session) if u.username == user.strip().lower()]
            if not found:
                console.print(f"[red]no Flowstate user {user!r} (flowstate users list)[/]")
                raise typer.Exit(2)
            return users.caller_of(session, found[0])
    finally:
        engine.dispose()


async def _local(thread: str, user: str | None) -> None:
    """The engine in this process, on the configured (or embedded) services."""
    from app.services.chat import chat_service
    from app.services.chat_types import ChatError, new_thread_id
    from config.settings import get_settings
    from contracts import ResumeValue
    from embedded.stack import running_stack

    settings = get_settings()
    with running_stack(settings) as endpoints:
        caller = _local_caller(endpoints.database_url, user)
        async with chat_service(endpoints, settings) as engine:
            if engine is None:
                console.print("[red]chat needs Redis[/]")
                raise typer.Exit(2)
            chat: ChatEngine = engine

            async def send(frame: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
                try:
                    if frame["type"] == "message":
                        stream = chat.stream(frame["thread"], frame["content"], caller=caller)
                    else:
                        value = ResumeValue(
                            decision=frame["decision"], action_id=frame["action_id"], edits=frame.get("edits")
                        )
                        stream = chat.stream(frame["thread"], caller=caller, resume=value)
                    async for out in stream:
                        yield out
                except ChatError as exc:
                    yield {"type": "error", "message": str(exc)}

            await _loop(send, thread, new_thread_id)


async def _remote(url: str, thread: str, user: str | None) -> None:
    """A running Flowstate, over its WebSocket."""
    import websockets

    from app.services.chat_types import new_thread_id
    from config.settings import get_settings

    base = url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
    sockets: dict[str, Any] = {}

    async def socket_for(thread_id: str) -> Any:
        if thread_id not in sockets:
            # who speaks is the connection's credential: FLOWSTATE_API_TOKEN, sent as a bearer token
            token = get_settings().api_token
            headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else None
            sockets[thread_id] = await websockets.connect(
                f"{base}/ws/chat/{thread_id}", max_size=None, additional_headers=headers
            )
        return sockets[thread_id]

    async def send(frame: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        ws = await socket_for(frame["thread"])
        await ws.send(json.dumps({k: v for k, v in frame.items() if k != "thread"}))
        while True:
            out = json.loads(await ws.recv())
            yield out
            if out.get("type") in ("final", "error"):
                return

    try:
        await _loop(send, thread, new_thread_id)
    finally:
        for ws in sockets.values():
            await ws.close()


def chat(
    thread: Annotated[
        str | None, typer.Option("--thread", help="Continue this conversation (default: a new one)")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Chat as this Flowstate user (their scope; in process only)"),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Talk to a running Flowstate (http://HOST:PORT) instead of in process"),
    ] = None,
) -> None:
    """Chat with Flowstate in the terminal (streams replies; asks before any change to the CRM)."""
    from app.services.chat_types import check_thread_id, new_thread_id

    thread = check_thread_id(thread) if thread else new_thread_id()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_remote(url, thread, user) if url else _local(thread, user))


def register(cli: typer.Typer) -> None:
    """Attach `flowstate chat`."""
    cli.command("chat")(chat)
