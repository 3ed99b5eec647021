"""The crew runner against a stub OpenAI-compatible server: `kickoff_validated` (the request shape
the local llama.cpp server needs, usage counting, validation with one retry) and `kickoff_text`
(a plain-text answer streamed piece by piece, ended early on request)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from crews.runner import CrewOutputError, kickoff_text, kickoff_validated
from llm import LLMConfig
from observability.llm_meter import usage_scope
from tests.support.stub_llm import StubLLM


class Answer(BaseModel):
    reply: str = Field(min_length=1, max_length=1500)
    score: int = Field(0, ge=0, le=100)


def _cfg(stub: StubLLM, **kw: Any) -> LLMConfig:
    return LLMConfig(
        base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=10, max_tokens=100, **kw
    )


def _build(llm):  # type: ignore[no-untyped-def]
    from crews.crewkit import Agent, Task, single_crew

    agent = Agent(role="Tester", goal="Answer", backstory="You test.", llm=llm, max_iter=1, max_retry_limit=0)
    task = Task(description="Say hi to {name}.", expected_output='JSON {"reply": "..."}', agent=agent)
    return single_crew([agent], [task])


async def test_crew_llm_request_shape_and_usage(stub: StubLLM) -> None:
    stub.answers = ['{"reply": "hi", "score": 3}']
    with usage_scope() as usage:
        run = await kickoff_validated("test", _build, {"name": "Ann"}, Answer, _cfg(stub), max_tokens=50)
    assert run.output == Answer(reply="hi", score=3)
    assert run.attempts == 1
    assert stub.count == 1 and usage.calls == 1
    body = stub.requests[0]
    assert body["response_format"]["type"] == "json_object"
    assert body["response_format"]["schema"]["properties"]["reply"]["type"] == "string"
    assert body["temperature"] == 0
    assert body["max_tokens"] == 50  # the call's cap, below the config's 100
    assert "Say hi to Ann." in body["messages"][-1]["content"]
    served = stub.responses[0]["usage"]
    assert usage.prompt_tokens == served["prompt_tokens"] > 0
    assert usage.completion_tokens == served["completion_tokens"] > 0
    assert run.usage.calls == 1


async def test_a_crew_run_stores_no_task_outputs(stub: StubLLM) -> None:
    # CrewAI's replay storage (a SQLite file behind a file lock) is not written by our crews
    from crewai.utilities.paths import db_storage_path

    stored = Path(db_storage_path()) / "latest_kickoff_task_outputs.db"
    stored.unlink(missing_ok=True)
    stub.answers = ['{"reply": "hi", "score": 3}']
    run = await kickoff_validated("test", _build, {"name": "Cy"}, Answer, _cfg(stub))
    assert run.output.reply == "hi"
    assert not stored.exists()


async def test_invalid_answer_is_retried_once_with_the_error_explained(stub: StubLLM) -> None:
    stub.answers = ['{"score": 500}', '{"reply": "fixed", "score": 5}']
    run = await kickoff_validated("test", _build, {"name": "Bo"}, Answer, _cfg(stub))
    assert run.output.reply == "fixed" and run.attempts == 2
    assert stub.count == 2
    retry_prompt = stub.requests[1]["messages"][-1]["content"]
    assert "previous answer was rejected" in retry_prompt
    assert "reply" in retry_prompt and "score" in retry_prompt


async def test_two_invalid_answers_raise_crew_output_error(stub: StubLLM) -> None:
    stub.answers = ["not json at all"]
    with pytest.raises(CrewOutputError) as info:
        await kickoff_validated("test", _build, {"name": "Cy"}, Answer, _cfg(stub))
    assert stub.count == 2  # one try, one retry, no more
    assert info.value.crew == "test"
    assert info.value.raw == "not json at all"
    assert info.value.usage.calls == 2


async def test_llm_failure_raises_crew_output_error_without_retry_storm(stub: StubLLM) -> None:
    stub.fail_next(10, status=500)
    with pytest.raises(CrewOutputError):
        await kickoff_validated("test", _build, {"name": "Di"}, Answer, _cfg(stub, max_retries=0))
    assert stub.count == 1  # no client retry, no crew retry after a transport failure


# ---------------------------------------------------------------------------------------------
# streamed plain-text answers (kickoff_text)
# ---------------------------------------------------------------------------------------------

STORY = "One sentence here. Another one follows. And a third one ends it."


def _build_text(llm):  # type: ignore[no-untyped-def]
    from crews.crewkit import Agent, prose_task, single_crew

    agent = Agent(role="Tester", goal="Answer", backstory="You test.", llm=llm, max_iter=1, max_retry_limit=0)
    task = prose_task(
        {"description": "Tell {name} a story.", "expected_output": "Plain text.", "agent": agent}
    )
    return single_crew([agent], [task])


async def test_text_answer_streams_piece_by_piece_before_the_model_finishes() -> None:
    import time

    seen: list[tuple[float, str]] = []
    with StubLLM(answers=[STORY], stream_chunk_chars=6, chunk_delay_s=0.03) as stub:
        with usage_scope() as usage:
            run = await kickoff_text(
                "test", _build_text, {"name": "Ann"}, _cfg(stub), lambda t: seen.append((time.monotonic(), t))
            )
        ends = list(stub.stream_ends)
    assert run.text == STORY == "".join(t for _, t in seen)
    assert len(seen) >= 10  # the stub's pieces, not one block at the end
    assert seen[0][0] < ends[0] - 0.2  # the first piece long before the model's last
    body = stub.requests[0]
    assert body["stream"] is True and "response_format" not in body
    # the task is its description alone: no CrewAI expected-output paragraph after the data
    assert body["messages"][-1]["content"].strip().endswith("Provide your complete response:")
    assert "expected criteria" not in body["messages"][-1]["content"]
    # counted by the LLM meter, tokens from the stream's usage chunk
    assert usage.calls == run.usage.calls == 1
    assert usage.completion_tokens == stub.responses[0]["usage"]["completion_tokens"] > 0


async def test_stop_generation_ends_the_answer_and_closes_the_stream() -> None:
    from llm import StopGeneration

    got: list[str] = []

    def until_second_sentence(piece: str) -> None:
        got.append(piece)
        if "Another" in "".join(got):
            raise StopGeneration

    with StubLLM(answers=[STORY], stream_chunk_chars=4, chunk_delay_s=0.05) as stub:
        run = await kickoff_text("test", _build_text, {"name": "Bo"}, _cfg(stub), until_second_sentence)
        for _ in range(40):  # the server notices the closed connection at its next write
            if stub.disconnects:
                break
            await asyncio.sleep(0.05)
        assert stub.disconnects == 1 and not stub.stream_ends  # never written to the end
    assert run.text == "".join(got) and "Another" in run.text and "third" not in run.text
    assert stub.count == 1  # the crew finished with the partial answer: no retry


async def test_an_error_in_the_callback_stops_the_model_and_is_raised_after_the_crew() -> None:
    class Refused(Exception):
        pass

    def refuse_second(piece: str) -> None:
        if "Another" in piece:
            raise Refused("no")

    with StubLLM(answers=[STORY], stream_chunk_chars=200) as stub, pytest.raises(Refused):
        await kickoff_text("test", _build_text, {"name": "Cy"}, _cfg(stub), refuse_second)
    assert stub.count == 1


async def test_a_failed_text_request_is_a_crew_output_error() -> None:
    with StubLLM(answers=[STORY]) as stub:
        stub.fail_next(2, status=500)
        with pytest.raises(CrewOutputError) as err:
            await kickoff_text("test", _build_text, {"name": "Di"}, _cfg(stub), lambda t: None)
    assert err.value.crew == "test" and err.value.usage.calls >= 1


def _pooled_build(seen: list[Any]) -> Any:
    """A crew whose agent comes from the agent pool (as the product's crews build theirs); each
    built crew's agent is appended to `seen`."""
    from crews.crewkit import Task, make_agent, single_crew

    def build(llm: Any) -> Any:
        agent = make_agent({"role": "Pooled tester", "goal": "Answer", "backstory": "You test."}, llm)
        seen.append(agent)
        task = Task(description="Say hi to {name}.", expected_output='JSON {"reply": "..."}', agent=agent)
        return single_crew([agent], [task])

    return build


async def test_a_finished_run_leaves_its_agent_for_the_next_and_a_cancelled_one_does_not() -> None:
    seen: list[Any] = []
    with StubLLM(answers=['{"reply": "hi", "score": 3}'], delay_s=0.6) as stub:
        for _ in range(2):
            run = await kickoff_validated("test", _pooled_build(seen), {"name": "Ann"}, Answer, _cfg(stub))
            assert run.output.reply == "hi"
        assert seen[1] is seen[0]  # the second run reused the first run's agent

        task = asyncio.create_task(
            kickoff_validated("test", _pooled_build(seen), {"name": "Ann"}, Answer, _cfg(stub))
        )
        await asyncio.sleep(0.2)  # the crew's thread now waits for the model
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.8)  # its thread has finished by now

        await kickoff_validated("test", _pooled_build(seen), {"name": "Ann"}, Answer, _cfg(stub))
        assert seen[2] is seen[0]
        assert seen[3] is not seen[2]  # the cancelled run's agent was dropped, not reused


async def test_crews_run_natively_async_without_an_event_loop_of_their_own(
    stub: StubLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the sync kickoff (a thread around it, an event loop and a thread pool per agent step) is
    # not the path: both runners go through `Crew.akickoff` on the caller's loop
    from crews.crewkit import Crew

    def no_sync_kickoff(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sync Crew.kickoff ran")

    monkeypatch.setattr(Crew, "kickoff", no_sync_kickoff)
    loops = 0
    real_run = asyncio.run

    def counting_run(*args: Any, **kwargs: Any) -> Any:
        nonlocal loops
        loops += 1
        return real_run(*args, **kwargs)

    monkeypatch.setattr(asyncio, "run", counting_run)
    stub.answers = ['{"reply": "hi", "score": 3}', "Hello there."]
    run = await kickoff_validated("test", _build, {"name": "Ann"}, Answer, _cfg(stub), max_tokens=50)
    assert run.output.reply == "hi"
    pieces: list[str] = []
    text = await kickoff_text("test", _build, {"name": "Ann"}, _cfg(stub), pieces.append, max_tokens=50)
    assert text.text == "Hello there." and "".join(pieces) == "Hello there."
    assert loops == 0
