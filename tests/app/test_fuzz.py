"""Fuzzing the HTTP API with schemathesis, from the app's own `/openapi.json`.

One run of schemathesis' engine, the one behind `schemathesis run`, in process over ASGI: its
examples, coverage (boundary values, missing and wrong parameters), fuzzing and stateful phases
(the stateful phase follows the links between operations: create, then read, change and list
what was created), with every check: no 5xx, every status documented with a body matching its
schema, schema-valid requests accepted (2xx, or 404/409 when the data says no), schema-violating
ones refused, `Allow` on 405, 401 without the token.

The app is the real one on the test session's PostgreSQL, with `FLOWSTATE_API_TOKEN` set. Chat
runs the real conversation graph and checkpointer on the real Redis with the fake crews of
`tests/graphs/fakes.py`: its REST contract is fuzzed here, not the model. Documents get a
hash-based embedder (`app.state.embedder`): the local E5 model takes seconds per long document
on 2 cores, and tests/crm/test_documents*.py run it for real. `/health` is left out: by design
it answers 503 while a service is down (the LLM, here); tests/embedded covers it.

Bounded for `make test`: `FUZZ_EXAMPLES` cases per operation and phase, `FUZZ_SCENARIOS` stateful
scenarios, a fixed seed so a run is repeatable. For a deeper run, raise them, e.g.
`FLOWSTATE_FUZZ_EXAMPLES=100 FLOWSTATE_FUZZ_SCENARIOS=300 FLOWSTATE_FUZZ_SEED=$RANDOM
.venv/bin/pytest tests/app/test_fuzz.py`; or run the CLI on a served app with the same hook:
`SCHEMATHESIS_HOOKS=tests.app.test_fuzz .venv/bin/schemathesis run http://127.0.0.1:8000/openapi.json
-H "Authorization: Bearer $FLOWSTATE_API_TOKEN" --exclude-path /health`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.engine import events
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy import Engine, text

from app.main import create_app
from config.settings import get_settings
from crm.models import EMBEDDING_DIM
from embedded.stack import Endpoints
from tests.conftest import DATA_TABLES
from tests.graphs.fakes import chat_service, fake_context

TOKEN = "fuzz-token-for-tests"
FUZZ_EXAMPLES = int(os.environ.get("FLOWSTATE_FUZZ_EXAMPLES", "12"))
FUZZ_SCENARIOS = int(os.environ.get("FLOWSTATE_FUZZ_SCENARIOS", "60"))
FUZZ_SEED = int(os.environ.get("FLOWSTATE_FUZZ_SEED", "20240601"))

#: Pairs of fields where the second may not come before the first: rules of the API that a JSON
#: schema cannot state (it compares no two values), answered 422. Generated requests that break
#: one are left out, as schemathesis would otherwise count the 422 as a valid request refused.
ORDERED = (("engaged_from", "engaged_to"), ("closed_from", "closed_to"), ("engage_date", "close_date"))


def _breaks_an_order(values: Any) -> bool:
    if not isinstance(values, dict):
        return False
    for first, then in ORDERED:
        a, b = values.get(first), values.get(then)
        try:
            if a is not None and b is not None and dt.date.fromisoformat(b) < dt.date.fromisoformat(a):
                return True
        except (TypeError, ValueError):
            continue  # not two dates: the schema decides about these values
    return False


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> bool:
    """schemathesis hook, registered on import (`SCHEMATHESIS_HOOKS=tests.app.test_fuzz` gives
    the CLI the same rules): leave out requests that break a rule of `ORDERED`, and those whose
    path carries a null: the stateful phase can pick one from a list (a deal's `account_id` from
    `GET /api/deals` for `/api/accounts/{account_id}`) and sends it as the text "None"."""
    if any(value is None for value in (case.path_parameters or {}).values()):
        return False
    return not (_breaks_an_order(case.query) or _breaks_an_order(case.body))


class HashEmbedder:
    """A unit vector per text from its SHA-256 (same text, same vector): the Embedder protocol
    at no cost, for a run that checks the HTTP contract of /api/documents, not search quality."""

    model_name = "test/sha256"

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        raw = [digest[i % len(digest)] - 127.5 for i in range(EMBEDDING_DIM)]
        norm = sum(x * x for x in raw) ** 0.5
        return [x / norm for x in raw]


@pytest.fixture(scope="module")
def fuzzed_app(engine: Engine, database_url: str, redis_url: str) -> Iterator[FastAPI]:
    """The app with an API token, on an emptied CRM, chat on fake crews and the real Redis. Its
    lifespan runs in schemathesis' event loop (started when the schema is loaded), and is stopped
    when the module ends."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWSTATE_API_TOKEN", TOKEN)
        get_settings.cache_clear()
        app = create_app(
            Endpoints(
                database_url=database_url,
                redis_url=None,  # no real chat engine: the fake one below
                openai_base_url=None,
                openai_api_key="",
                llm_model="",
                embedded=frozenset(),
            )
        )
    get_settings.cache_clear()
    app.state.embedder = HashEmbedder()
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with original(a), chat_service(redis_url, fake_context(engine=engine)) as chat:
            a.state.chat = chat
            yield

    app.router.lifespan_context = lifespan
    try:
        yield app
    finally:
        shutdown_lifespans()


@dataclass
class Report:
    """What a schemathesis run found: `failures` by (operation, code, title), each with the
    message and a curl command of the first case that showed it; `cases` requests sent."""

    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    cases: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    phases: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    links: str = ""

    def summary(self) -> str:
        by_code = Counter(f"{code} {title}" for _, code, title in self.failures)
        phases = ", ".join(
            f"{name} {status} ({self.cases[name]} cases, {self.seconds.get(name, 0):.1f} s)"
            for name, status in self.phases.items()
            if name in self.cases or status != "success"
        )
        total = sum(self.cases.values())
        lines = [f"{total} cases on {len(self.operations)} operations: {phases}; {self.links}"]
        lines += [f"  {kind}: {n}" for kind, n in sorted(by_code.items())]
        lines += [f"\n{op}: {code} {title}\n{text}" for (op, code, title), text in self.failures.items()]
        lines += [f"\nerror: {e}" for e in self.errors]
        return "\n".join(lines)


def run_schemathesis(schema: schemathesis.BaseSchema) -> Report:
    """Every phase of schemathesis' engine on `schema`; the failures and errors it reports."""
    report = Report()
    started: dict[str, float] = {}
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.FatalError):
            raise event.exception
        if isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.PhaseStarted):
            started[event.phase.name.value] = event.timestamp
            if event.payload is not None:
                p = event.payload
                report.links = f"links: {p.transitions_selected} selected, {p.inferred_transitions} inferred"
        elif isinstance(event, events.PhaseFinished):
            name = event.phase.name.value
            report.phases[name] = event.status.value
            spent = event.timestamp - started.get(name, event.timestamp)
            report.seconds[name] = report.seconds.get(name, 0.0) + spent
        elif isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            phase = event.phase.value if isinstance(event, events.ScenarioFinished) else "fuzz"
            report.cases[phase] += len(recorder.cases)
            for node in recorder.cases.values():
                report.operations[node.value.operation.label] += 1
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    info = check.failure_info
                    if info is None:
                        continue
                    f = info.failure
                    key = (f.operation or recorder.label, f.code, f.title)
                    report.failures.setdefault(key, f"{f.message}\n{info.code_sample} ({case_id})")
    return report


def test_schemathesis_finds_nothing(fuzzed_app: FastAPI) -> None:
    config = schemathesis.Config.from_dict(
        {
            "seed": FUZZ_SEED,
            "cache": {"enabled": False},  # no .schemathesis/ directory in the working tree
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "generation": {"max-examples": FUZZ_EXAMPLES, "database": "none"},
            "phases": {"stateful": {"generation": {"max-examples": FUZZ_SCENARIOS}}},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app, config=config)
    report = run_schemathesis(schema.exclude(path="/health"))
    print(report.summary())
    assert set(report.cases) >= {"coverage", "fuzzing", "stateful"}, report.summary()
    assert len(report.operations) >= 40 and report.operations["POST /api/chat"] > 0, report.summary()
    assert not report.failures and not report.errors, report.summary()
