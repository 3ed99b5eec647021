"""`flowstate eval intents`: file checks, report shape (neighbours only: no LLM, no database),
and parity with the chat: the router it measures routes every message as POST /api/chat does
(the real resolver and router, a stub LLM)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.commands.eval_intents import IntentFileError, load_cases
from app.main import create_app
from contracts import Entities, Intent
from crm.db import session_scope
from crm.repository import create_account, create_contact, create_deal, create_product, create_rep
from crm.schemas import AccountCreate, ContactCreate, DealCreate, ProductCreate, SalesRepCreate
from graphs.intent import IntentResult, IntentRouter
from llm import LLMConfig
from tests.conftest import AUTH
from tests.support.stub_llm import StubLLM


def _app() -> typer.Typer:
    from app.commands import evaluate

    app = typer.Typer()
    evaluate.register(app)
    return app


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "intents.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("{not json", "not JSON"),
        ('["a list"]', "JSON object"),
        ('{"message": "", "intent": "general"}', '"message"'),
        ('{"message": "hi", "intent": "sales"}', "must be one of"),
    ],
)
def test_bad_lines_name_the_line(tmp_path: Path, line: str, error: str) -> None:
    path = _write(tmp_path, ['{"message": "hello", "intent": "general"}', line])
    with pytest.raises(IntentFileError, match=rf":2: .*{error}"):
        load_cases(path)


def test_cli_exit_code_2_for_a_missing_or_bad_file(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(_app(), ["intents", str(tmp_path / "nope.jsonl"), "--no-llm", "--no-entities"])
    assert missing.exit_code == 2
    bad = _write(tmp_path, ['{"message": "hi", "intent": "sales"}'])
    result = runner.invoke(_app(), ["intents", str(bad), "--no-llm", "--no-entities"])
    assert result.exit_code == 2
    assert "must be one of" in result.output


def test_cli_json_report(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            '{"id": "a", "message": "Hello!", "intent": "general"}',
            '{"id": "b", "message": "Which deals are stuck in prospecting?", "intent": "pipeline"}',
            '{"id": "c", "message": "Write a short poem about the sea", "intent": "closing"}',
        ],
    )
    result = CliRunner().invoke(_app(), ["intents", str(path), "--json", "--no-llm", "--no-entities"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) >= {"n", "accuracy", "confusion", "mistakes", "median_ms"}
    assert report["n"] == 3 and report["llm_calls"] == 0
    assert report["confusion"]["general"]["general"] == 1
    assert report["confusion"]["pipeline"]["pipeline"] == 1
    assert [m["id"] for m in report["mistakes"]] == ["c"]  # a poem is not a closing request
    assert report["accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    failing = CliRunner().invoke(
        _app(), ["intents", str(path), "--no-llm", "--no-entities", "--fail-under", "0.9"]
    )
    assert failing.exit_code == 1
    assert "accuracy" in failing.output


# ---------------------------------------------------------------------------------------------
# the router `flowstate eval intents` measures is the one POST /api/chat uses
# ---------------------------------------------------------------------------------------------

#: Messages naming CRM records (their names are masked for the neighbours) and a few without.
PARITY_MESSAGES = [
    "What industry is Cancity in?",
    "How much has Cancity spent with us?",
    "Draft a follow-up email to Lena Ortiz about the GTX Pro quote",
    "We won the Cancity deal, set up onboarding",
    "What should I do next with Cancity?",
    "How many deals has Jane Roe won this year?",
    "Who manages Jane Roe?",
    "Offer Cancity 10% off GTX Pro",
    "hello there",
    "What's the capital of France?",
]


def _closest_example_intent(body: dict[str, Any]) -> str:
    """The stub LLM's answer to the router: the intent of the closest example in its prompt
    (the last "text -> intent" line before the message), so the answer depends on the
    neighbours the router found, hence on the entities it was given."""
    prompt = str(body["messages"][-1]["content"])
    examples = prompt.split("\n\nMessage:")[0].splitlines()
    return json.dumps({"intent": examples[-1].rsplit(" -> ", 1)[-1].strip()})


@dataclass
class RecordingRouter:
    """The chat's router, recording what each classification was given."""

    inner: IntentRouter
    calls: list[tuple[str, Intent | None, Entities | None]] = field(default_factory=list)

    async def aclassify(
        self, message: str, previous_intent: Intent | None = None, entities: Entities | None = None
    ) -> IntentResult:
        self.calls.append((message, previous_intent, entities))
        return await self.inner.aclassify(message, previous_intent, entities)


@pytest.fixture
def small_crm(clean_db: Engine) -> Engine:
    """Cancity (contact Lena Ortiz), rep Jane Roe (manager Ann Lee), product GTX Pro, one deal."""
    with session_scope(clean_db) as s:
        acc = create_account(
            s, AccountCreate(name="Cancity", sector="retail", office_location="United States")
        )
        create_contact(
            s, ContactCreate(account_id=acc.id, first_name="Lena", last_name="Ortiz", title="Buyer")
        )
        rep = create_rep(s, SalesRepCreate(name="Jane Roe", manager="Ann Lee", regional_office="West"))
        prod = create_product(s, ProductCreate(name="GTX Pro", series="GTX", list_price=4821))
        create_deal(
            s,
            DealCreate(
                external_id="AAAA0001",
                account_id=acc.id,
                product_id=prod.id,
                rep_id=rep.id,
                stage="engaging",
                engage_date="2017-03-01",
            ),
        )
    return clean_db


async def test_eval_intents_routes_every_message_as_the_chat_api_does(
    small_crm: Engine, database_url: str, redis_url: str
) -> None:
    from app.commands.eval_intents import evaluate
    from app.services.context import intent_router, real_context
    from crm.embeddings import LocalE5Embedder
    from graphs.adapters import CrmResolver
    from tests.app.test_chat_api import _endpoints, _with_fake_chat
    from tests.graphs.fakes import FakeCrews

    embedder = LocalE5Embedder()
    with StubLLM(_closest_example_intent) as stub:
        llm = LLMConfig(base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=20, max_tokens=64)
        # the app's context (real resolver and router on the stub LLM); instant crews, no guard
        real = real_context(small_crm, llm, embedder)
        assert isinstance(real.router, IntentRouter)
        router = RecordingRouter(real.router)
        ctx = replace(real, router=router, crews=FakeCrews(), guard=None)
        app = _with_fake_chat(create_app(_endpoints(database_url, None)), redis_url, lambda: ctx)
        chat_intents: dict[str, str] = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://test", timeout=60, headers=AUTH
            ) as c:
                for message in PARITY_MESSAGES:
                    response = await c.post("/api/chat", json={"message": message})
                    assert response.status_code == 200, response.text
                    body = response.json()
                    assert body["error"] is None, body
                    chat_intents[message] = body["intent"]

        # `flowstate eval intents`: its router and resolver, built as its command builds them
        resolver = CrmResolver(small_crm)
        cases = [
            {"id": str(n), "message": m, "intent": chat_intents[m]} for n, m in enumerate(PARITY_MESSAGES)
        ]
        report = await asyncio.to_thread(
            evaluate,
            intent_router(embedder, llm, llm_timeout_s=10.0),
            cases,
            lambda message: resolver.resolve(message, Entities()),
        )

    # every message: the same intent, from the same inputs (the resolved entities, no previous)
    assert report["mistakes"] == [], report["mistakes"]
    assert report["n"] == len(PARITY_MESSAGES)
    assert [(m, prev, ents) for m, prev, ents in router.calls] == [
        (m, None, resolver.resolve(m, Entities())) for m in PARITY_MESSAGES
    ]
    assert any(ents is not None and ents.items for _, _, ents in router.calls), "names were resolved"
    assert len(set(chat_intents.values())) >= 4, chat_intents  # the messages ask different things
