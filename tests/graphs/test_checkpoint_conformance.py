"""The Redis checkpointer against the official `langgraph-checkpoint-conformance` suite and a real
Redis (the `redis_url` fixture), plus the TTL and restart behaviour Flowstate relies on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any, TypedDict

import pytest
import redis.asyncio as aioredis
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from contracts import Entities, EntityRef
from graphs.checkpoint import CheckpointStoreError, open_checkpointer


async def _drop_prefix(redis_url: str, prefix: str) -> int:
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()


async def test_conformance_suite_passes_all_base_tests(redis_url: str) -> None:
    prefix = f"test-conformance-{uuid.uuid4().hex[:8]}"

    async def lifespan() -> AsyncGenerator[None, None]:
        await _drop_prefix(redis_url, prefix)
        yield
        await _drop_prefix(redis_url, prefix)

    @checkpointer_test(name="flowstate-plainredis", lifespan=lifespan)
    async def factory() -> AsyncIterator[Any]:
        # a fresh key space for each capability suite, as the suite expects a fresh saver
        async with open_checkpointer(redis_url, 60, prefix=f"{prefix}:{uuid.uuid4().hex[:6]}") as saver:
            yield saver

    report = await validate(factory)
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all_base(), failures
    base = ("put", "put_writes", "get_tuple", "list", "delete_thread")
    assert sum(report.results[c].tests_passed for c in base) >= 50


class _State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    entities: Entities | None


def _echo(state: _State) -> dict[str, Any]:
    last = state["messages"][-1].content
    ent = Entities(items=[EntityRef(kind="account", key="Acme Corporation", id=1)])
    return {"messages": [AIMessage(content=f"echo: {last}")], "entities": ent}


def _graph() -> Any:
    return StateGraph(_State).add_node("echo", _echo).add_edge(START, "echo")


async def test_keys_get_the_configured_ttl(redis_url: str) -> None:
    prefix = f"test-ttl-{uuid.uuid4().hex[:8]}"
    try:
        async with open_checkpointer(redis_url, 90, prefix=prefix) as saver:
            graph = _graph().compile(checkpointer=saver)
            await graph.ainvoke({"messages": [HumanMessage("hello")]}, {"configurable": {"thread_id": "t1"}})
        client = aioredis.from_url(redis_url)
        try:
            keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}:*")]
            kinds = {"cp", "blob", "idx", "wr"}
            expiring = [k for k in keys if k[len(prefix) + 1 :].split(":")[0] in kinds]
            assert expiring, keys
            for key in expiring:
                ttl = await client.ttl(key)
                assert 90 * 60 - 30 <= ttl <= 90 * 60, (key, ttl)
            # the saver's thread registry and ordering counter never expire, by design
            assert await client.ttl(f"{prefix}:threads") == -1
        finally:
            await client.aclose()
    finally:
        await _drop_prefix(redis_url, prefix)


async def test_each_checkpoint_and_each_task_s_writes_is_saved_in_one_command(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph run saves through the write scripts alone (one EVALSHA a checkpoint or a task's
    writes; SCRIPT LOAD once when Redis does not know a script yet), with no pipeline of SETs,
    even after Redis forgot the scripts (SCRIPT FLUSH, as after a restart)."""
    prefix = f"test-one-command-{uuid.uuid4().hex[:8]}"
    try:
        async with open_checkpointer(redis_url, 60, prefix=prefix) as saver:
            graph = _graph().compile(checkpointer=saver)
            config = {"configurable": {"thread_id": "t1"}}
            await graph.ainvoke({"messages": [HumanMessage("one")]}, config)
            await saver.client.script_flush()
            sent: list[str] = []
            real = saver.client.execute_command

            async def execute_command(*args: Any, **options: Any) -> Any:
                sent.append(str(args[0]).upper())
                return await real(*args, **options)  # type: ignore[no-untyped-call]

            monkeypatch.setattr(saver.client, "execute_command", execute_command)
            monkeypatch.setattr(saver.client, "pipeline", None)  # any pipeline use would fail
            out = await graph.ainvoke({"messages": [HumanMessage("two")]}, config, durability="sync")
        assert [m.content for m in out["messages"]] == ["one", "echo: one", "two", "echo: two"]
        assert set(sent) <= {"EVALSHA", "SCRIPT LOAD", "MGET"}, sent
        # a checkpoint before and after the step, and the step's writes (durability "sync")
        assert sent.count("EVALSHA") >= 3, sent
    finally:
        await _drop_prefix(redis_url, prefix)


async def test_conversation_survives_a_new_saver_and_keeps_typed_state(redis_url: str) -> None:
    """A second turn through a brand-new saver (as after an app restart) sees the first."""
    prefix = f"test-restart-{uuid.uuid4().hex[:8]}"
    config = {"configurable": {"thread_id": "user-1:conv-1"}}
    try:
        async with open_checkpointer(redis_url, 60, prefix=prefix) as saver:
            await _graph().compile(checkpointer=saver).ainvoke({"messages": [HumanMessage("first")]}, config)
        async with open_checkpointer(redis_url, 60, prefix=prefix) as saver:
            graph = _graph().compile(checkpointer=saver)
            out = await graph.ainvoke({"messages": [HumanMessage("second")]}, config)
        assert [m.content for m in out["messages"]] == ["first", "echo: first", "second", "echo: second"]
        assert isinstance(out["entities"], Entities)
        assert out["entities"].items[0].key == "Acme Corporation"
    finally:
        await _drop_prefix(redis_url, prefix)


async def test_unreachable_redis_is_a_clear_error(tmp_path: Any) -> None:
    url = f"unix://{tmp_path}/nothing-here.sock"
    with pytest.raises(CheckpointStoreError, match="did not answer"):
        async with open_checkpointer(url, 60):
            pass
