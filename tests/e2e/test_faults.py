"""Faults, each injected for real, and what the product does about them.

Against `flowstate serve` run as a subprocess (real crews, guards and router; a stub
OpenAI-compatible LLM; its own embedded PostgreSQL and Redis in a temporary directory, because
these tests stop and start them):
- the model server down (refusing connections, then hung): an honest error frame within the
  configured LLM timeout; once it is back the same app answers again;
- Redis killed (SIGKILL) and restarted: errors while it is down (503 for a thread), then the
  threads are all there (append-only file) and the app's client reconnects;
- PostgreSQL stopped and started: 503 with a clear message while it is down, answers after;
- the app killed with SIGKILL mid-turn: after a restart the user's message is in the thread and
  sending it again answers it;
- `flowstate serve --workers 2`: one thread's concurrent turns, spread over the workers, run one
  at a time.

In process (the chat engine on the session's real Redis, fake crews):
- a turn past the overall turn deadline is cancelled: an honest error, its crew thread's later
  LLM request is refused and its result dropped, nothing is checkpointed after, the thread's lock
  is released, and re-sending the message answers it;
- two engines (two processes' worth of locks) on one Redis run a thread's turns one at a time;
- a lock left by a process that died expires and the thread answers again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from app.services.chat import ChatService
from contracts import CrewRequest, CrewResponse, Source
from graphs.checkpoint import lock_key
from graphs.graph import build_graph
from observability.llm_meter import ScopeCancelled, openai_http_clients
from observability.metrics import REGISTRY
from tests.conftest import AUTH
from tests.graphs.fakes import AMY, fake_context, redis_saver
from tests.support.stub_llm import StubLLM

PIPELINE_QUESTION = "How many deals has Cancity?"
#: A demo-CRM request the closing crew cannot answer without the LLM (it writes the email).
DRAFT = "Draft a follow-up email for Bluefen Grocers about their open deal"
#: LLM timeout of the app under test, seconds (FLOWSTATE_LLM_TIMEOUT_S).
LLM_TIMEOUT_S = 2.0
#: Turn deadline of the app under test, seconds (FLOWSTATE_TURN_DEADLINE_S).
TURN_DEADLINE_S = 20.0
REPO = Path(__file__).resolve().parents[2]
FLOWSTATE = REPO / ".venv" / "bin" / "flowstate"


# =============================================================================================
# the app as a subprocess, its services, the stub model
# =============================================================================================


class GatedStub(StubLLM):
    """The stub LLM, restartable on the same port, whose answers wait while `gate` is clear (a
    model that accepted the request and has not answered yet); `asked` is set by each request."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.asked = threading.Event()
        self.fixed_port = 0

    def start(self) -> GatedStub:
        handler: Any = type("Handler", (self.handler,), {"owner": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.fixed_port), handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda *_: None  # type: ignore[method-assign]  # clients that gave up
        self.fixed_port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def _answer_for(self, body: dict[str, Any], index: int) -> str:
        self.asked.set()
        self.gate.wait(60)
        return super()._answer_for(body, index)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class App:
    """`flowstate serve` in a subprocess on `port`, with `env`; its output goes to `log`."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.env = env
        self.log = log
        self.args = args
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(FLOWSTATE), "serve", "--port", str(self.port), *self.args],
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its workers too can be killed as a group
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"flowstate serve exited:\n{self.tail()}"
            try:
                if httpx.get(f"{self.http}/api/accounts?limit=1", timeout=2, headers=AUTH).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"flowstate serve did not answer in {timeout_s} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL to the app and any worker processes it started."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class Stack:
    """What the app under test runs on: its data dir, PostgreSQL and Redis handles, the stub."""

    data_dir: Path
    postgres: Any
    redis: Any
    llm: GatedStub
    app: App


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from crm.migrate import upgrade
    from embedded.postgres import start_postgres
    from embedded.redis import start_redis

    data_dir = tmp_path_factory.mktemp("faults")
    pg = start_postgres(data_dir)
    upgrade(pg.url)
    rd = start_redis(data_dir)
    llm = GatedStub().start()
    env = {
        **os.environ,
        "DATABASE_URL": pg.url,
        "REDIS_URL": rd.url,
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_API_KEY": "stub-key",
        "FLOWSTATE_LLM_MODEL": llm.model,
        "FLOWSTATE_LLM_TIMEOUT_S": str(LLM_TIMEOUT_S),
        "FLOWSTATE_TURN_DEADLINE_S": str(TURN_DEADLINE_S),
        "FLOWSTATE_DATA_DIR": str(data_dir),
        "FLOWSTATE_DEMO_DATA": "true",
        "FLOWSTATE_ENV": "test",
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_DISABLE_VERSION_CHECK": "true",
    }
    for var in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"):  # the API token stays: clients send AUTH
        env.pop(var, None)
    app = App(env, data_dir / "serve.log")
    app.start()
    stack = Stack(data_dir, pg, rd, llm, app)
    try:
        yield stack
    finally:
        # the tests restart PostgreSQL and Redis: stop the servers running now, not the first ones
        stack.app.stop()
        stack.llm.stop()
        stack.redis.stop()
        stack.postgres.stop()


async def _turn(app: App, thread_id: str, message: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    """Send `message` over the WebSocket; the frames up to the final or error one."""
    frames: list[dict[str, Any]] = []
    async with websockets.connect(
        f"ws://127.0.0.1:{app.port}/ws/chat/{thread_id}", additional_headers=AUTH
    ) as ws:
        await ws.send(json.dumps({"type": "message", "content": message}))
        async with asyncio.timeout(timeout_s):
            while True:
                frame = json.loads(await ws.recv())
                frames.append(frame)
                if frame["type"] in ("final", "error"):
                    return frames


async def _thread(app: App, thread_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=app.http, timeout=10, headers=AUTH) as client:
        return await client.get(f"/api/threads/{thread_id}")


def _new_thread() -> str:
    return f"fault-{uuid.uuid4().hex[:10]}"


def _contents(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in view["messages"]]


# =============================================================================================
# faults of the services, injected under the running app
# =============================================================================================


def _model_failed(frame: dict[str, Any], kind: str) -> bool:
    """An honest outcome of a turn whose model calls failed: an error frame of `kind` that
    says the message can be sent again, or (a crew that answers without the model, e.g. from
    its template) a final frame whose usage counts the failed calls."""
    if frame["type"] == "error":
        return bool(frame["kind"] == kind and frame["retryable"] and "send it again" in frame["message"])
    return bool(frame["type"] == "final" and frame["usage"]["llm_failures"] >= 1)


async def test_model_server_down_then_back(stack: Stack) -> None:
    app, llm = stack.app, stack.llm
    warm = await _turn(app, _new_thread(), DRAFT)  # loads the crews: later turns are quick
    assert warm[-1]["type"] == "final", warm[-1]
    assert llm.count >= 1

    # down: nothing listens on the port
    llm.stop()
    started = time.monotonic()
    frames = await _turn(app, _new_thread(), DRAFT)
    down_s = time.monotonic() - started
    assert _model_failed(frames[-1], "llm_unavailable"), frames[-1]
    assert down_s < LLM_TIMEOUT_S, down_s

    # hung: the server takes the requests and never answers
    llm.gate.clear()
    llm.start()
    started = time.monotonic()
    frames = await _turn(app, _new_thread(), DRAFT)
    hung_s = time.monotonic() - started
    assert _model_failed(frames[-1], "llm_timeout"), frames[-1]
    # each request cut at the configured timeout (plus at most one retry by the client)
    print(f"hung model: turn ended after {hung_s:.1f} s, usage {frames[-1].get('usage')}")
    assert LLM_TIMEOUT_S <= hung_s < TURN_DEADLINE_S, hung_s

    # back: the same app (no restart) gets answers from the model again
    llm.gate.set()
    frames = await _turn(app, _new_thread(), DRAFT)
    assert frames[-1]["type"] == "final", frames[-1]
    usage = frames[-1]["usage"]
    assert usage["llm_calls"] >= 1 and usage["llm_failures"] == 0, usage


async def test_redis_killed_and_restarted(stack: Stack) -> None:
    from embedded.redis import start_redis

    app = stack.app
    thread = _new_thread()
    assert (await _turn(app, thread, PIPELINE_QUESTION))[-1]["type"] == "final"
    before = (await _thread(app, thread)).json()

    stack.redis._proc.kill()  # SIGKILL: no shutdown save, only the append-only file remains
    stack.redis._proc.wait(5)
    r = await _thread(app, thread)
    assert r.status_code == 503 and "Redis" in r.json()["detail"], r.text
    frames = await _turn(app, thread, "How many deals did we win?")
    assert frames[-1]["type"] == "error" and frames[-1]["kind"] == "state_store", frames[-1]

    stack.redis = start_redis(stack.data_dir)
    r = await _thread(app, thread)
    assert r.status_code == 200 and _contents(r.json()) == _contents(before)
    frames = await _turn(app, thread, "How many deals did we win?")
    assert frames[-1]["type"] == "final", frames[-1]
    assert len((await _thread(app, thread)).json()["messages"]) == 4


async def test_postgres_stopped_and_started(stack: Stack) -> None:
    from embedded.postgres import start_postgres

    app = stack.app
    thread = _new_thread()
    stack.postgres.stop()
    async with httpx.AsyncClient(base_url=app.http, timeout=10, headers=AUTH) as client:
        r = await client.get("/api/accounts")
        assert r.status_code == 503, r.text
        assert "database is not reachable" in r.json()["detail"] and r.headers["Retry-After"]
        frames = await _turn(app, thread, PIPELINE_QUESTION)
        assert frames[-1]["type"] == "error" and frames[-1]["kind"] == "database", frames[-1]

        stack.postgres = start_postgres(stack.data_dir)
        r = await client.get("/api/accounts")  # pre-ping replaces the dead connections
        assert r.status_code == 200 and r.json()["items"], r.text
    frames = await _turn(app, thread, PIPELINE_QUESTION)
    assert frames[-1]["type"] == "final", frames[-1]
    view = (await _thread(app, thread)).json()
    assert _contents(view)[0] == ("user", PIPELINE_QUESTION) and len(view["messages"]) == 2


async def test_app_killed_mid_turn(stack: Stack) -> None:
    app, llm = stack.app, stack.llm
    thread = _new_thread()
    llm.asked.clear()
    llm.gate.clear()  # the model takes the crew's request and has not answered yet
    async with websockets.connect(
        f"ws://127.0.0.1:{app.port}/ws/chat/{thread}", additional_headers=AUTH
    ) as ws:
        await ws.send(json.dumps({"type": "message", "content": DRAFT}))
        assert await asyncio.to_thread(llm.asked.wait, 30), "the turn never reached the model"
        app.kill()
    llm.gate.set()

    app.start()
    view = (await _thread(app, thread)).json()
    assert _contents(view) == [("user", DRAFT)]  # the message survived, unanswered
    frames = await _turn(app, thread, DRAFT)
    assert frames[-1]["type"] == "final", frames[-1]
    view = (await _thread(app, thread)).json()
    assert [r for r, _ in _contents(view)] == ["user", "assistant"]  # answered once, not repeated


@pytest.fixture
def stub_llm() -> Iterator[StubLLM]:
    with StubLLM() as stub:
        yield stub


@pytest.fixture
async def saver(redis_url: str) -> AsyncIterator[Any]:
    async with redis_saver(redis_url) as s:
        yield s


@dataclass
class ThreadCrew:
    """A crew that works in a worker thread, as a step of a CrewAI crew does: sleeps `work_s`,
    then asks the LLM at `llm_url` through the metered HTTP client (the one both LLM doors use).
    `outcome`: "answered" or "refused" (the turn's scope was cancelled); `spans`: (start, end)
    of every run; `finished` is set when a run's thread is done."""

    llm_url: str
    work_s: float = 0.0
    outcome: str | None = None
    spans: list[tuple[float, float]] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, request: CrewRequest, deps: Any) -> CrewResponse:
        return await asyncio.to_thread(self._work, request)

    def _work(self, request: CrewRequest) -> CrewResponse:
        start = time.monotonic()
        try:
            time.sleep(self.work_s)
            try:
                body = {"model": "stub-model", "messages": [{"role": "user", "content": request.message}]}
                openai_http_clients()["http_client"].post(f"{self.llm_url}/chat/completions", json=body)
                self.outcome = "answered"
            except ScopeCancelled:
                self.outcome = "refused"
            return CrewResponse(
                reply="Cancity has 3 deals.",
                sources=[Source(kind="metric", id="deals-1", label="deals")],
                facts=[{"deals": 3}],
            )
        finally:
            self.spans.append((start, time.monotonic()))
            self.finished.set()


async def _checkpoints(saver: Any, thread_id: str) -> int:
    return len([c async for c in saver.alist({"configurable": {"thread_id": thread_id}})])


async def test_turn_past_its_deadline_is_cancelled_cleanly(saver: Any, stub_llm: StubLLM) -> None:
    crew = ThreadCrew(stub_llm.base_url, work_s=1.5)
    service = ChatService(build_graph(saver), fake_context(crews=crew), saver, turn_deadline_s=0.5)
    thread = f"deadline-{uuid.uuid4().hex[:8]}"

    started = time.monotonic()
    result = await service.turn(thread, PIPELINE_QUESTION, caller=AMY)
    took = time.monotonic() - started
    assert result.error is not None and result.error.kind == "turn_deadline", result
    assert result.error.retryable and "0.5 s" in result.reply
    assert 0.5 <= took < 1.3, took  # at the deadline, not when the crew's thread ends (1.5 s)
    assert await saver.client.exists(lock_key(thread, saver.prefix)) == 0  # lock released

    view = await service.get_thread(thread, caller=AMY)
    assert [(m.role, m.content) for m in view.messages] == [("user", PIPELINE_QUESTION)]
    assert view.error is not None and view.error.kind == "turn_deadline"
    written = await _checkpoints(saver, thread)

    # the crew's thread runs on; when it asks the model, the request is refused, and its
    # answer reaches nobody: no LLM request, no checkpoint, the thread unchanged
    assert await asyncio.to_thread(crew.finished.wait, 5)
    await asyncio.sleep(0.1)
    assert crew.outcome == "refused" and stub_llm.count == 0
    assert await _checkpoints(saver, thread) == written
    assert [m.content for m in (await service.get_thread(thread, caller=AMY)).messages] == [PIPELINE_QUESTION]

    # sending the message again answers it, once
    crew.work_s = 0.0
    again = await service.turn(thread, PIPELINE_QUESTION, caller=AMY)
    assert again.error is None and again.reply == "Cancity has 3 deals.", again
    assert crew.outcome == "answered" and stub_llm.count == 1
    view = await service.get_thread(thread, caller=AMY)
    assert [m.role for m in view.messages] == ["user", "assistant"] and view.error is None


async def test_overload_is_refused_with_busy_and_loses_nothing(saver: Any, stub_llm: StubLLM) -> None:
    # one place, a wait of 0.3 s: the first turn (0.8 s of work) holds the place, the second
    # waits 0.3 s and is refused; its message is in its thread, and resending it answers it
    crew = ThreadCrew(stub_llm.base_url, work_s=0.8)
    service = ChatService(
        build_graph(saver),
        fake_context(crews=crew),
        saver,
        turn_deadline_s=10,
        max_active_turns=1,
        admission_wait_s=0.3,
    )
    first, second = (f"busy-{uuid.uuid4().hex[:8]}" for _ in range(2))
    busy_series = ("flowstate_turns_total", {"intent": "unknown", "outcome": "busy"})
    busy_before = REGISTRY.get_sample_value(*busy_series) or 0.0

    async def later() -> Any:
        await asyncio.sleep(0.1)
        started = time.monotonic()
        return await service.turn(second, PIPELINE_QUESTION, caller=AMY), time.monotonic() - started

    answered, (refused, took) = await asyncio.gather(
        service.turn(first, PIPELINE_QUESTION, caller=AMY), later()
    )
    assert answered.error is None, answered
    assert refused.error is not None and refused.error.kind == "busy" and refused.error.retryable, refused
    assert 0.3 <= took < 0.7, took  # refused after its wait, not after the other turn
    assert REGISTRY.get_sample_value(*busy_series) == busy_before + 1  # seen in /metrics
    assert await saver.client.exists(lock_key(second, saver.prefix)) == 0  # lock released
    view = await service.get_thread(second, caller=AMY)
    assert [(m.role, m.content) for m in view.messages] == [("user", PIPELINE_QUESTION)]
    assert view.error is not None and view.error.kind == "busy"

    crew.work_s = 0.0
    again = await service.turn(second, PIPELINE_QUESTION, caller=AMY)
    assert again.error is None and again.reply == "Cancity has 3 deals.", again
    view = await service.get_thread(second, caller=AMY)
    assert [m.role for m in view.messages] == ["user", "assistant"] and view.error is None


async def test_a_turn_waiting_for_a_place_holds_no_lock_of_its_thread(saver: Any, stub_llm: StubLLM) -> None:
    # one place taken by a 0.8 s turn: the next turn queues for it without holding its thread's
    # Redis lock (another process may serve that thread meanwhile), then runs and answers
    crew = ThreadCrew(stub_llm.base_url, work_s=0.8)
    service = ChatService(
        build_graph(saver), fake_context(crews=crew), saver, turn_deadline_s=10, max_active_turns=1
    )
    first, second = (f"queue-{uuid.uuid4().hex[:8]}" for _ in range(2))
    running = asyncio.create_task(service.turn(first, PIPELINE_QUESTION, caller=AMY))
    await asyncio.sleep(0.2)
    waiting = asyncio.create_task(service.turn(second, PIPELINE_QUESTION, caller=AMY))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    assert await saver.client.exists(lock_key(first, saver.prefix)) == 1  # the running turn's
    assert await saver.client.exists(lock_key(second, saver.prefix)) == 0  # queued: no lock
    crew.work_s = 0.0
    answered, queued = await asyncio.gather(running, waiting)
    assert answered.error is None and queued.error is None, (answered, queued)
    assert queued.reply == "Cancity has 3 deals."


async def test_no_admission_wait_refuses_at_once_and_admits_when_free(saver: Any, stub_llm: StubLLM) -> None:
    crew = ThreadCrew(stub_llm.base_url, work_s=0.8)
    service = ChatService(
        build_graph(saver), fake_context(crews=crew), saver, max_active_turns=1, admission_wait_s=0
    )
    alone = await service.turn(f"free-{uuid.uuid4().hex[:8]}", PIPELINE_QUESTION, caller=AMY)
    assert alone.error is None, alone  # a free place is taken without waiting

    async def later() -> Any:
        await asyncio.sleep(0.1)
        started = time.monotonic()
        result = await service.turn(f"now-{uuid.uuid4().hex[:8]}", PIPELINE_QUESTION, caller=AMY)
        return result, time.monotonic() - started

    answered, (refused, took) = await asyncio.gather(
        service.turn(f"busy-{uuid.uuid4().hex[:8]}", PIPELINE_QUESTION, caller=AMY), later()
    )
    assert answered.error is None and refused.error is not None and refused.error.kind == "busy"
    assert took < 0.5, took  # at once, not after the running turn (0.8 s)


async def test_turns_of_a_thread_serialise_across_engines(saver: Any, stub_llm: StubLLM) -> None:
    # two engines on one Redis stand for two processes: each has its own in-process locks
    crew = ThreadCrew(stub_llm.base_url, work_s=0.6)
    first, second = (
        ChatService(build_graph(saver), fake_context(crews=crew), saver, turn_deadline_s=10) for _ in range(2)
    )
    thread = f"shared-{uuid.uuid4().hex[:8]}"
    other = f"other-{uuid.uuid4().hex[:8]}"

    async def later(service: ChatService, thread_id: str, message: str) -> Any:
        await asyncio.sleep(0.15)
        return await service.turn(thread_id, message, caller=AMY)

    results = await asyncio.gather(
        first.turn(thread, PIPELINE_QUESTION, caller=AMY),
        later(second, thread, "How many deals has Codehow?"),
        later(second, other, PIPELINE_QUESTION),
    )
    assert all(r.error is None for r in results), results
    spans = sorted(crew.spans)
    assert len(spans) == 3
    # the other thread ran alongside the first turn; the same thread's second turn after it
    (_a_start, a_end), (b_start, _b_end), (c_start, _c_end) = spans
    assert b_start < a_end, "a different thread must not wait"
    assert c_start >= a_end, "the same thread's turns overlapped"
    view = await second.get_thread(thread, caller=AMY)
    assert [m.role for m in view.messages] == ["user", "assistant", "user", "assistant"]


async def test_lock_of_a_dead_process_expires(saver: Any, stub_llm: StubLLM) -> None:
    crew = ThreadCrew(stub_llm.base_url)
    service = ChatService(build_graph(saver), fake_context(crews=crew), saver, turn_deadline_s=5)
    thread = f"orphan-{uuid.uuid4().hex[:8]}"
    # what a process killed mid-turn leaves: the thread's lock, taken and never released
    orphan = saver.client.lock(lock_key(thread, saver.prefix), timeout=1.0, thread_local=False)
    assert await orphan.acquire(blocking=False)

    started = time.monotonic()
    result = await service.turn(thread, PIPELINE_QUESTION, caller=AMY)
    assert result.error is None, result
    assert 0.8 <= time.monotonic() - started < 3.0


# =============================================================================================
# several app processes on one Redis and one PostgreSQL
# =============================================================================================


async def test_workers_share_threads_one_turn_at_a_time(stack: Stack) -> None:
    """`flowstate serve --workers 2`: turns sent at once on one thread from four connections
    (spread over both workers by the kernel) are all answered, one after the other."""
    app = App(stack.app.env, stack.data_dir / "workers.log", "--workers", "2")
    app.start()
    try:
        thread = _new_thread()
        questions = [
            "How many deals did we win?",
            "How many deals did we lose?",
            "How many open deals do we have?",
            "What is our win rate?",
        ]
        results = await asyncio.gather(*(_turn(app, thread, q) for q in questions))
        assert all(frames[-1]["type"] == "final" for frames in results), [f[-1] for f in results]
        view = (await _thread(app, thread)).json()
        roles = [r for r, _ in _contents(view)]
        assert roles == ["user", "assistant"] * 4, roles  # never two turns interleaved
        assert sorted(c for r, c in _contents(view) if r == "user") == sorted(questions)
        log = app.log.read_text()
        assert log.count("Application startup complete") == 2, app.tail()
        assert log.count("start-up heap frozen") == 2, app.tail()  # each worker froze its own
    finally:
        app.kill()  # a graceful stop waits for both workers' warm-up: seconds this test need not spend
