"""Faults, each injected for real, and what the product does about them.

In process (the chat engine on the session's real Redis, fake crews):
- a turn past the overall turn deadline is cancelled: an honest error, its crew thread's later
  LLM request is refused and its result dropped, nothing is checkpointed after, the thread's lock
  is released, and re-sending the message answers it;
- two engines (two processes' worth of locks) on one Redis run a thread's turns one at a time;
- a lock left by a process that died expires and the thread answers again.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.services.chat import ChatService
from contracts import CrewRequest, CrewResponse, Source
from graphs.checkpoint import lock_key
from graphs.graph import build_graph
from observability.llm_meter import ScopeCancelled, openai_http_clients
from tests.graphs.fakes import fake_context, redis_saver
from tests.support.stub_llm import StubLLM

PIPELINE_QUESTION = "How many deals has Cancity?"


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
    """A crew that works in a worker thread, as CrewAI's `kickoff_async` does: sleeps `work_s`,
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
    result = await service.turn(thread, PIPELINE_QUESTION)
    took = time.monotonic() - started
    assert result.error is not None and result.error.kind == "turn_deadline", result
    assert result.error.retryable and "0.5 s" in result.reply
    assert 0.5 <= took < 1.3, took  # at the deadline, not when the crew's thread ends (1.5 s)
    assert await saver.client.exists(lock_key(thread, saver.prefix)) == 0  # lock released

    view = await service.get_thread(thread)
    assert [(m.role, m.content) for m in view.messages] == [("user", PIPELINE_QUESTION)]
    assert view.error is not None and view.error.kind == "turn_deadline"
    written = await _checkpoints(saver, thread)

    # the crew's thread runs on; when it asks the model, the request is refused, and its
    # answer reaches nobody: no LLM request, no checkpoint, the thread unchanged
    assert await asyncio.to_thread(crew.finished.wait, 5)
    await asyncio.sleep(0.1)
    assert crew.outcome == "refused" and stub_llm.count == 0
    assert await _checkpoints(saver, thread) == written
    assert [m.content for m in (await service.get_thread(thread)).messages] == [PIPELINE_QUESTION]

    # sending the message again answers it, once
    crew.work_s = 0.0
    again = await service.turn(thread, PIPELINE_QUESTION)
    assert again.error is None and again.reply == "Cancity has 3 deals.", again
    assert crew.outcome == "answered" and stub_llm.count == 1
    view = await service.get_thread(thread)
    assert [m.role for m in view.messages] == ["user", "assistant"] and view.error is None


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
        return await service.turn(thread_id, message)

    results = await asyncio.gather(
        first.turn(thread, PIPELINE_QUESTION),
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
    view = await second.get_thread(thread)
    assert [m.role for m in view.messages] == ["user", "assistant", "user", "assistant"]


async def test_lock_of_a_dead_process_expires(saver: Any, stub_llm: StubLLM) -> None:
    crew = ThreadCrew(stub_llm.base_url)
    service = ChatService(build_graph(saver), fake_context(crews=crew), saver, turn_deadline_s=5)
    thread = f"orphan-{uuid.uuid4().hex[:8]}"
    # what a process killed mid-turn leaves: the thread's lock, taken and never released
    orphan = saver.client.lock(lock_key(thread, saver.prefix), timeout=1.0, thread_local=False)
    assert await orphan.acquire(blocking=False)

    started = time.monotonic()
    result = await service.turn(thread, PIPELINE_QUESTION)
    assert result.error is None, result
    assert 0.8 <= time.monotonic() - started < 3.0
