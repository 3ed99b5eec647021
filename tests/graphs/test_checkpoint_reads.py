"""The saver's reads against a real Redis: the latest checkpoint in one script call and one MGET,
read once per turn within `turn_reads` and read again after every write."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from graphs.checkpoint import RedisSaver, open_checkpointer, turn_reads


class _State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _echo(state: _State) -> dict[str, Any]:
    return {"messages": [AIMessage(f"echo: {state['messages'][-1].content}")]}


def _graph(saver: RedisSaver) -> Any:
    builder = StateGraph(_State)
    builder.add_node("echo", _echo)
    builder.add_edge(START, "echo")
    return builder.compile(checkpointer=saver)


def _count_calls(saver: RedisSaver, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the saver's reads: "read", the script that finds a checkpoint (run by its SHA; its
    one key is the thread's timeline, `<prefix>:idx:...`, where the write scripts' first key is
    a checkpoint or writes key), and "mget", the blob reads."""
    calls = {"read": 0, "mget": 0}
    real_evalsha, real_mget = saver.client.evalsha, saver.client.mget

    async def evalsha(sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if numkeys == 1 and ":idx:" in str(keys_and_args[0]):
            calls["read"] += 1
        return await real_evalsha(sha, numkeys, *keys_and_args)  # type: ignore[misc]

    async def mget(*args: Any, **kwargs: Any) -> Any:
        calls["mget"] += 1
        return await real_mget(*args, **kwargs)

    monkeypatch.setattr(saver.client, "evalsha", evalsha)
    monkeypatch.setattr(saver.client, "mget", mget)
    return calls


async def test_latest_checkpoint_is_read_once_per_turn_until_a_write(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_checkpointer(redis_url, 60, prefix=f"test-reads-{uuid.uuid4().hex[:8]}") as saver:
        graph = _graph(saver)
        config = {"configurable": {"thread_id": "t1"}}
        await graph.ainvoke({"messages": [HumanMessage("one")]}, config)
        calls = _count_calls(saver, monkeypatch)
        with turn_reads():
            first = await graph.aget_state(config)
            again = await graph.aget_state(config)
            assert calls == {"read": 1, "mget": 1}
            assert again.values == first.values
            assert [m.content for m in again.values["messages"]] == ["one", "echo: one"]
            await graph.aupdate_state(config, {"messages": [HumanMessage("two")]}, as_node=START)
            after = await graph.aget_state(config)  # the write dropped the kept read
            assert (
                after.config["configurable"]["checkpoint_id"] != first.config["configurable"]["checkpoint_id"]
            )
            assert [m.content for m in after.values["messages"]][-1] == "two"
            assert after.next == ("echo",)
        await graph.aget_state(config)
        await graph.aget_state(config)
        # in the turn: the first read (the second and the update's own read are kept), the read
        # after the update; then two outside a turn
        assert calls["read"] == 4


async def test_a_thread_found_empty_is_kept_as_empty_and_pending_writes_come_back(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_checkpointer(redis_url, 60, prefix=f"test-reads-{uuid.uuid4().hex[:8]}") as saver:
        graph = _graph(saver)
        config: RunnableConfig = {"configurable": {"thread_id": "new"}}
        calls = _count_calls(saver, monkeypatch)
        with turn_reads():
            assert await saver.aget_tuple(config) is None
            assert await saver.aget_tuple(config) is None
            assert calls["read"] == 1
            await graph.ainvoke({"messages": [HumanMessage("hi")]}, config)
            latest = await saver.aget_tuple(config)
            assert latest is not None
            assert [m.content for m in latest.checkpoint["channel_values"]["messages"]] == ["hi", "echo: hi"]
            await saver.aput_writes(latest.config, [("messages", [HumanMessage("later")])], task_id="t")
            with_writes = await saver.aget_tuple(config)
            assert with_writes is not None and with_writes.pending_writes is not None
            assert [w[1] for w in with_writes.pending_writes] == ["messages"]


async def test_conformance_suite_passes_within_turn_reads(redis_url: str) -> None:
    prefix = f"test-reads-conformance-{uuid.uuid4().hex[:8]}"

    @checkpointer_test(name="flowstate-plainredis-turn-reads")
    async def factory() -> Any:
        async with open_checkpointer(redis_url, 60, prefix=f"{prefix}:{uuid.uuid4().hex[:6]}") as saver:
            with turn_reads():
                yield saver

    report = await validate(factory)
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all_base(), failures
