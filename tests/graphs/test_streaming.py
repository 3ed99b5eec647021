"""Real streaming through the chat service (real Redis, PostgreSQL, resolver, guards and frames):
the reply's sentences reach the client as the crew writes them, each checked first; a sentence
that fails is never sent, and a `discard` frame precedes the re-ask or the safe reply; what
streams after the last discard is the final reply.

The closing crew runs for real on a stub LLM that streams its answer slowly; other crews are
scripted writers (`crews.streaming.ReplyWriter`) to reach the whole-reply guard's paths.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from sqlalchemy import Engine

from contracts import CrewRequest, CrewResponse
from crews.registry import CrewDeps, run_crew
from crews.streaming import ReplyRejected, ReplyWriter
from graphs.adapters import CrmActions, CrmGuard, CrmResolver
from graphs.context import ChatContext
from graphs.streaming import GuardedReplyStream, publish_reply
from llm import LLMConfig
from tests.graphs.fakes import AMY, FakeRouter, chat_service, fake_context
from tests.graphs.test_guard_paths import FACTS
from tests.graphs.test_guard_paths import crm as crm  # the CRM fixture
from tests.support.stub_llm import StubLLM

ASK = "Draft a follow-up email to Cancity about GTX Pro"
GOOD = (
    "Subject: Next steps on GTX Pro\nThank you for your time with our team. GTX Pro fits the way "
    "Cancity works. Could we set up a short call?"
)
#: its second sentence names a company the CRM does not have
BAD = (
    "Subject: Next steps\nThank you for your time with our team. Northwind Traders already runs GTX "
    "Pro with great results. Could we talk?"
)


def _closing_context(engine: Engine, stub: StubLLM) -> ChatContext:
    cfg = LLMConfig(base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=20, max_tokens=256)
    return fake_context(
        engine,
        llm=cfg,
        crew_deps=CrewDeps(engine=engine, llm=cfg),
        crews=run_crew,
        router=FakeRouter("closing"),
        resolver=CrmResolver(engine),
        actions=CrmActions(engine),
        guard=CrmGuard(engine),
    )


async def _frames(chat: Any, message: str) -> list[tuple[float, dict[str, Any]]]:
    """The turn's frames with their arrival time (`time.monotonic()`)."""
    return [(time.monotonic(), f) async for f in chat.stream(None, message, caller=AMY)]


def _tokens(frames: list[tuple[float, dict[str, Any]]]) -> list[str]:
    return [f["content"] for _, f in frames if f["type"] == "token"]


def _streamed_by(frames: list[tuple[float, dict[str, Any]]], text: str) -> float:
    """When the token frames had brought `text` to the client."""
    got = ""
    for t, f in frames:
        if f["type"] == "token":
            got += f["content"]
            if text in got:
                return t
    raise AssertionError(f"{text!r} never streamed")


def _after_last_discard(frames: list[tuple[float, dict[str, Any]]]) -> str:
    kinds = [f["type"] for _, f in frames]
    start = len(kinds) - kinds[::-1].index("discard") if "discard" in kinds else 0
    return "".join(f["content"] for _, f in frames[start:] if f["type"] == "token")


@pytest.mark.usefixtures("crm")
async def test_sentences_stream_before_the_model_finishes_and_equal_the_final_reply(
    redis_url: str, clean_db: Engine
) -> None:
    with StubLLM(answers=[GOOD], stream_chunk_chars=6, chunk_delay_s=0.04) as stub:
        async with chat_service(redis_url, _closing_context(clean_db, stub)) as chat:
            frames = await _frames(chat, ASK)
        model_done = stub.stream_ends[0]
    final = frames[-1][1]
    assert final["type"] == "final" and final["error"] is None and final["intent"] == "closing"
    kinds = [f["type"] for _, f in frames]
    assert "discard" not in kinds
    # what streamed is the final reply, character for character
    assert "".join(_tokens(frames)) == final["reply"]
    assert final["reply"].startswith(
        "Draft (follow-up) to Lena Ortiz, Buyer:\n\nSubject: Next steps on GTX Pro"
    )
    # the crew's header, then the model's first sentence, reached the client while it still wrote
    first_token = next(t for t, f in frames if f["type"] == "token")
    first_sentence = _streamed_by(frames, "Thank you for your time with our team.")
    assert first_token < first_sentence < model_done - 0.3
    assert kinds.index("token") < kinds.index("final")
    # the draft waits for the rep's approval, as before
    assert final["pending_action"]["kind"] == "queue_email"
    assert [v["passed"] for v in final["verdicts"] if v["target"] == "reply.sentence"] == []


@pytest.mark.usefixtures("crm")
async def test_a_failing_sentence_is_never_sent_and_the_reask_streams_after_a_discard(
    redis_url: str, clean_db: Engine
) -> None:
    with StubLLM(answers=[BAD, GOOD], stream_chunk_chars=6, chunk_delay_s=0.02) as stub:
        async with chat_service(redis_url, _closing_context(clean_db, stub)) as chat:
            frames = await _frames(chat, ASK)
        retold = stub.requests[1]["messages"][-1]["content"]
    final = frames[-1][1]
    assert final["type"] == "final" and final["error"] is None
    tokens = _tokens(frames)
    assert not any("Northwind" in t for t in tokens)  # never sent
    # the first draft's opening did stream, then the client was told to forget it
    discards = [f for _, f in frames if f["type"] == "discard"]
    assert [d["reason"] for d in discards] == ["reask"]
    before = frames[: [f["type"] for _, f in frames].index("discard")]
    assert "Thank you for your time with our team." in "".join(_tokens(before))
    assert _after_last_discard(frames) == final["reply"]
    assert "GTX Pro fits the way Cancity works." in final["reply"]
    # the model was stopped at the failing sentence and asked again, told why
    assert stub.count == 2 and "Northwind Traders" in retold and "grounding" in retold
    failed = [
        (v["validator"], v["action"], v["target"], v["attempt"]) for v in final["verdicts"] if not v["passed"]
    ]
    assert failed == [("grounding", "reask", "reply.sentence", 0)]


@pytest.mark.usefixtures("crm")
async def test_two_failing_drafts_end_in_the_safe_reply_after_discards(
    redis_url: str, clean_db: Engine
) -> None:
    with StubLLM(answers=[BAD, BAD]) as stub:
        async with chat_service(redis_url, _closing_context(clean_db, stub)) as chat:
            frames = await _frames(chat, ASK)
    final = frames[-1][1]
    assert final["type"] == "final"
    assert not any("Northwind" in t for t in _tokens(frames))
    assert [f["reason"] for _, f in frames if f["type"] == "discard"] == ["reask", "refuse"]
    assert final["reply"].startswith("I can't give you a checked answer")
    assert _after_last_discard(frames) == final["reply"]
    assert final["pending_action"] is None  # a refused draft proposes nothing
    assert [v["action"] for v in final["verdicts"] if not v["passed"]] == ["reask", "refused"]


@dataclass
class WritingCrew:
    """A crew that streams scripted sentences through a ReplyWriter (one list per run) and returns
    a pipeline answer over FACTS; `rewrite` makes its reply differ from what it wrote."""

    script: list[list[str]]
    rewrite: str | None = None
    calls: list[CrewRequest] = field(default_factory=list)

    async def __call__(self, request: CrewRequest, deps: Any) -> CrewResponse:
        self.calls.append(request)
        writer = ReplyWriter()
        await writer.ground(FACTS, [])
        for sentence in self.script[min(len(self.calls), len(self.script)) - 1]:
            writer.write(sentence)
        reply = self.rewrite or writer.text
        return CrewResponse(reply=reply, data={"figures": FACTS[0]}, facts=FACTS)


def _writer_context(engine: Engine, crew: WritingCrew) -> ChatContext:
    return fake_context(
        engine,
        crews=crew,
        router=FakeRouter("pipeline"),
        resolver=CrmResolver(engine),
        actions=CrmActions(engine),
        guard=CrmGuard(engine),
    )


@pytest.mark.usefixtures("crm")
async def test_a_whole_reply_failure_after_the_stream_discards_it(redis_url: str, clean_db: Engine) -> None:
    # "7 open deals" passes one sentence at a time (a small count), not the whole-reply guard
    crew = WritingCrew(
        [
            ["Cancity has won 1 deal, worth $5,000. ", "It has 7 open deals."],
            ["Cancity has won 1 deal, worth $5,000."],
        ]
    )
    async with chat_service(redis_url, _writer_context(clean_db, crew)) as chat:
        frames = await _frames(chat, "How many deals has Cancity won?")
    final = frames[-1][1]
    assert "It has 7 open deals." in "".join(_tokens(frames))  # it streamed, then ...
    assert [f["reason"] for _, f in frames if f["type"] == "discard"] == ["reask"]
    assert final["reply"] == "Cancity has won 1 deal, worth $5,000." == _after_last_discard(frames)
    assert len(crew.calls) == 2


@pytest.mark.usefixtures("crm")
async def test_a_redacted_sentence_streams_redacted_and_is_the_final_reply(
    redis_url: str, clean_db: Engine
) -> None:
    crew = WritingCrew([["Cancity has won 1 deal. ", "Write to lena.private@gmail.com for more."]])
    async with chat_service(redis_url, _writer_context(clean_db, crew)) as chat:
        frames = await _frames(chat, "How many deals has Cancity won?")
    final = frames[-1][1]
    streamed = "".join(_tokens(frames))
    assert "gmail" not in streamed and "[redacted email]" in streamed
    assert streamed == final["reply"] == "Cancity has won 1 deal. Write to [redacted email] for more."
    assert [(v["validator"], v["action"]) for v in final["verdicts"] if not v["passed"]] == [
        ("privacy", "fixed")
    ]


@pytest.mark.usefixtures("crm")
async def test_a_crew_that_rewrites_what_it_streamed_is_discarded_and_sent_again(
    redis_url: str, clean_db: Engine
) -> None:
    crew = WritingCrew([["Cancity has won 1 deal. "]], rewrite="Cancity has won 1 deal, worth $5,000.")
    async with chat_service(redis_url, _writer_context(clean_db, crew)) as chat:
        frames = await _frames(chat, "How many deals has Cancity won?")
    final = frames[-1][1]
    assert [f["reason"] for _, f in frames if f["type"] == "discard"] == ["fixed"]
    assert final["reply"] == "Cancity has won 1 deal, worth $5,000." == _after_last_discard(frames)


def test_the_stream_refuses_everything_once_closed_or_failed() -> None:
    sent: list[dict[str, Any]] = []
    stream = GuardedReplyStream(sent.append, None, chunk_chars=4)
    stream.emit("One two three. ")
    assert "".join(f["content"] for f in sent) == "One two three. " and len(sent) > 1  # pieces
    stream.close()
    with pytest.raises(ReplyRejected):
        stream.emit("More.")
    stream.discard("error")
    assert sent[-1] == {"type": "discard", "reason": "error"} and stream.sent == ""


@pytest.mark.parametrize(
    ("sent", "reply", "frames"),
    [
        ("", "All of it.", ["All of it."]),
        ("Hello. ", "Hello. World.", ["World."]),
        ("Hello. ", "Hello. ", []),
        ("Hello. ", "Goodbye.", [{"type": "discard", "reason": "fixed"}, "Goodbye."]),
    ],
)
def test_publish_reply_sends_what_the_client_lacks(sent: str, reply: str, frames: list[Any]) -> None:
    out: list[dict[str, Any]] = []
    publish_reply(out.append, reply, sent, chunk_chars=100)
    expected = [f if isinstance(f, dict) else {"type": "token", "content": f} for f in frames]
    assert out == expected


@pytest.mark.usefixtures("crm")
async def test_a_delivery_plan_streams_its_note_around_the_computed_milestones(
    redis_url: str, clean_db: Engine
) -> None:
    note = (
        "The team starts with a kickoff call. Training follows the installation.\n"
        "- Site access for the installers\n- Staff availability for training\n"
    )
    with StubLLM(answers=[note], stream_chunk_chars=6, chunk_delay_s=0.02) as stub:
        ctx = replace(_closing_context(clean_db, stub), router=FakeRouter("delivery"))
        async with chat_service(redis_url, ctx) as chat:
            frames = await _frames(chat, "We won Cancity, set up the onboarding")
        model_done = stub.stream_ends[0]
    final = frames[-1][1]
    assert final["type"] == "final" and final["intent"] == "delivery" and final["error"] is None
    reply = final["reply"]
    assert "".join(_tokens(frames)) == reply and "discard" not in [f["type"] for _, f in frames]
    assert reply.startswith("Onboarding plan for Cancity (GTX Pro, deal AAAA0002), won on 2017-02-03:")
    summary = reply.index("The team starts with a kickoff call. Training follows the installation.")
    milestones = reply.index("- Kickoff by 2017-02-06")
    watch = reply.index(
        "Points to watch:\n- Site access for the installers\n- Staff availability for training"
    )
    assert summary < milestones < watch
    assert _streamed_by(frames, "Training follows the installation.") < model_done


# ---------------------------------------------------------------------------------------------
# a drafting turn on the embedded model
# ---------------------------------------------------------------------------------------------


@pytest.mark.llm
async def test_a_drafting_turn_starts_streaming_within_2_s_on_the_embedded_model(
    redis_url: str, maven_db: Engine, embedded_llm: LLMConfig
) -> None:
    """The draft's first words reach the client within 2 s of the turn's start (the crew writes
    its header as soon as the records are read, before the model answers); the model's sentences
    follow as it writes them, and what streamed is the final reply."""
    from app.services.context import real_context, warm_up
    from config.settings import get_settings
    from crm.embeddings import get_embedder
    from llm import warm_up_crews

    # the route is the router's business (its own eval and latency bench); this is the crew's
    ctx = replace(
        real_context(maven_db, embedded_llm, get_embedder(get_settings())), router=FakeRouter("closing")
    )
    warm_up(ctx)  # what the app loads at start-up
    warm_up_crews()
    async with chat_service(redis_url, ctx) as chat:
        start = time.monotonic()
        frames = await _frames(chat, "Write a first outreach email to Isdom about MG Special")
    final = frames[-1][1]
    assert final["type"] == "final" and final["error"] is None, final
    first_token = next(t for t, f in frames if f["type"] == "token")
    assert first_token - start < 2.0
    assert _after_last_discard(frames) == final["reply"]
    assert final["reply"].startswith("Draft (outreach) to the buyer at Isdom:\n\nSubject: ")
    assert final["pending_action"]["kind"] == "queue_email"
