"""The canned replies of the `general` intent (`graphs.canned`): no crew, no LLM."""

from __future__ import annotations

from contracts import CrewRequest, Entities
from graphs import canned
from tests.support.stub_llm import StubLLM


def _ask(message: str, ents: Entities, intent: str) -> CrewRequest:
    return CrewRequest(message=message, intent=intent, entities=ents)


def test_general_replies_need_no_llm() -> None:
    with StubLLM() as stub:
        for message, kind in (
            ("Hi there!", "greeting"),
            ("What can you do?", "help"),
            ("Thanks, that's all for now", "thanks"),
            ("What's the capital of France?", "out_of_scope"),
        ):
            r = canned.answer(_ask(message, Entities(), "general"))
            assert r.data["kind"] == kind
        assert "Paris" not in r.reply
        r = canned.answer(_ask("Hello", Entities(), "general"))
        assert r.llm_calls == 0 and stub.count == 0
