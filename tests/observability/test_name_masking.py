"""Contacts' names never reach Langfuse unless FLOWSTATE_TRACE_RAW is on, except the names of the
turn's own records, in that turn's trace only; a failing name loader never breaks masking."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator

import pytest
from langfuse.types import MaskOtelSpansParams, OtelSpanData, OtelSpanIdentifier
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Engine

from app.services.chat import _contact_names
from contracts import CrewResponse, Entities, EntityRef, Source
from crm.db import session_scope
from crm.repository import contact_full_names, create_account, create_contact, create_rep
from crm.schemas import AccountCreate, ContactCreate, SalesRepCreate
from graphs.nodes import allow_record_names
from observability.masking import (
    AllowList,
    NameRegistry,
    allow_list,
    allow_names,
    allowed_names,
    current_trace_id,
    mask_attributes,
    mask_data,
    mask_text,
    mask_value,
    name_key,
    set_name_loader,
)
from observability.tracing import Tracing, enrich_and_mask_spans
from tests.support.otlp_receiver import OTLPReceiver

ADA, DARCEL = "Ada Lovelace", "Darcel Schlecht"


@pytest.fixture(autouse=True)
def contacts() -> Iterator[None]:
    """The process's registry masks these contacts' names during each test, and none after."""
    set_name_loader(lambda: [ADA, DARCEL, "Jean-Luc O'Neil"])
    try:
        yield
    finally:
        set_name_loader(None)


@pytest.fixture
def traces() -> tuple[str, str]:
    """Two trace ids of this test alone (the allow-list is the process's)."""
    return uuid.uuid4().hex, uuid.uuid4().hex


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------------
# the masking of text
# ------------------------------------------------------------------------------------------
def test_full_names_are_masked_in_any_case_and_spacing() -> None:
    said = "Call ada  LOVELACE,\nthen Darcel\tSchlecht about Darcel Schlecht's deal"
    assert mask_text(said) == "Call [name],\nthen [name] about [name]'s deal"
    assert mask_text("jean-luc o\u2019neil signed") == "[name] signed"
    # a first or last name alone, other words around them, or other punctuation: not a full name
    for kept in ("Ada said yes", "Lovelace, Ada", "Ada, Lovelace", "Adam Lovelace", "Ada Lovelaces"):
        assert mask_text(kept) == kept


def test_names_are_masked_in_values_and_span_attributes() -> None:
    value = {"to": [f"{ADA} <ada@cancity.example.com>"], f"{DARCEL}'s note": ("hi",), "n": 3}
    assert mask_value(value) == {"to": ["[name] <[email]>"], "[name]'s note": ["hi"], "n": 3}
    attributes = {"input.value": f"Ask {ADA}", "llm.input_messages": ["x", DARCEL], "n": 1, "m": "ok"}
    assert mask_attributes(attributes) == {"input.value": "Ask [name]", "llm.input_messages": ["x", "[name]"]}


def test_allowed_names_are_kept_and_only_in_their_trace(traces: tuple[str, str]) -> None:
    trace_a, trace_b = traces
    allow_names([f"{ADA}, CTO"], trace_id=trace_a)  # a source's label: the name inside it counts
    said = f"{ADA} and {DARCEL}"
    assert mask_attributes({"v": said}, trace_id=trace_a) == {"v": f"{ADA} and [name]"}
    assert mask_attributes({"v": said}, trace_id=trace_b) == {"v": "[name] and [name]"}
    assert mask_attributes({"v": said}) == {"v": "[name] and [name]"}
    # only the contacts' names are kept, however the allowed text reads
    assert allowed_names(int(trace_a, 16)) == {name_key(ADA)}


def test_mask_data_keeps_the_names_the_current_trace_may_show() -> None:
    tracer = TracerProvider().get_tracer("test")
    said = {"reply": f"{ADA} and {DARCEL}"}
    with tracer.start_as_current_span("turn-a"):
        allow_names([ADA])
        assert mask_data(data=said) == {"reply": f"{ADA} and [name]"}
    with tracer.start_as_current_span("turn-b"):
        assert mask_data(data=said) == {"reply": "[name] and [name]"}
    assert mask_data(data=said) == {"reply": "[name] and [name]"}  # outside any trace


def test_a_turn_allows_its_entities_sources_and_facts() -> None:
    """What the graph allows (`graphs.nodes.allow_record_names`): contact entities, then the
    crew's sources and facts, in whichever shape they hold a contact."""
    tracer = TracerProvider().get_tracer("test")
    set_name_loader(lambda: [ADA, DARCEL, "Grace Hopper", "Alan Turing", "Edsger Dijkstra"])
    with tracer.start_as_current_span("turn"):
        trace_id = current_trace_id()
        entities = Entities(
            items=[EntityRef(kind="contact", key=ADA), EntityRef(kind="account", key="Cancity")]
        )
        allow_record_names(entities)
        assert allowed_names(trace_id) == {"ada lovelace"}
        response = CrewResponse(
            reply="...",
            sources=[Source(kind="contact", id="7", label=f"{DARCEL}, CTO")],
            facts=[
                {"name": "Cancity", "contacts": ["Grace Hopper, Buyer"]},
                {"contacts": [{"first_name": "Alan", "last_name": "Turing", "title": None}]},
            ],
        )
        allow_record_names(response=response)
    assert allowed_names(trace_id) == {"ada lovelace", "darcel schlecht", "grace hopper", "alan turing"}


def test_allow_names_outside_a_span_allows_nothing() -> None:
    before = len(allow_list())
    allow_names([ADA])
    assert len(allow_list()) == before


def test_allow_list_is_bounded_and_expires() -> None:
    clock = Clock()
    allowed = AllowList(max_traces=2, ttl_s=60, clock=clock)
    allowed.add(1, ["a b"])
    allowed.add(2, ["c d"])
    allowed.add(1, ["e f"])  # trace 1 is now the most recently added
    allowed.add(3, ["g h"])  # over the bound: trace 2 goes
    assert allowed.get(2) == frozenset()
    assert allowed.get(1) == {"a b", "e f"} and allowed.get(3) == {"g h"}
    clock.now += 61
    assert allowed.get(1) == frozenset() and allowed.get(3) == frozenset()
    allowed.add(1, ["x y"])  # an expired trace starts afresh
    assert allowed.get(1) == {"x y"} and len(allowed) == 1


# ------------------------------------------------------------------------------------------
# the registry of names
# ------------------------------------------------------------------------------------------
class Loader:
    """A loader returning `names`, raising while `fails` is set; counts its calls."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.fails = False
        self.calls = 0

    def __call__(self) -> list[str]:
        self.calls += 1
        if self.fails:
            raise RuntimeError("database down")
        return self.names


def _inline(fn: Callable[[], None]) -> None:
    fn()


def test_registry_reloads_at_most_every_refresh_interval() -> None:
    clock, loader = Clock(), Loader([ADA])
    registry = NameRegistry(loader, refresh_s=60, clock=clock, spawn=_inline)
    assert registry.names().keys == {"ada lovelace"} and loader.calls == 1
    loader.names = [DARCEL]
    clock.now += 59
    assert registry.names().keys == {"ada lovelace"} and loader.calls == 1
    clock.now += 1
    assert registry.names().keys == {"darcel schlecht"} and loader.calls == 2
    assert registry.names().keys == {"darcel schlecht"} and loader.calls == 2


def test_a_failing_loader_keeps_the_last_names_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    clock, loader = Clock(), Loader([ADA])
    registry = NameRegistry(loader, refresh_s=60, clock=clock, spawn=_inline)
    assert registry.names().keys == {"ada lovelace"}
    loader.fails = True
    with caplog.at_level(logging.WARNING, logger="observability.masking"):
        for _ in range(3):
            clock.now += 60
            assert registry.names().keys == {"ada lovelace"}
    assert loader.calls == 4
    assert len([r for r in caplog.records if "could not load the names" in r.getMessage()]) == 1
    loader.fails, loader.names = False, [DARCEL]
    clock.now += 60
    assert registry.names().keys == {"darcel schlecht"}


def test_reloads_run_in_the_background_with_the_old_names_meanwhile() -> None:
    clock, loader = Clock(), Loader([ADA])
    started: list[Callable[[], None]] = []
    registry = NameRegistry(loader, refresh_s=60, clock=clock, spawn=started.append)
    assert registry.names().keys == {"ada lovelace"} and not started  # the first load blocks
    loader.names = [DARCEL]
    clock.now += 60
    assert registry.names().keys == {"ada lovelace"}
    assert registry.names().keys == {"ada lovelace"} and len(started) == 1  # one reload at a time
    started[0]()
    assert registry.names().keys == {"darcel schlecht"}


def test_the_crm_contacts_are_masked_and_the_reps_are_not(clean_db: Engine) -> None:
    """The app's loader (`app.services.chat`) reads the contacts' names from the CRM."""
    with session_scope(clean_db) as s:
        account = create_account(s, AccountCreate(name="Cancity"))
        for first, last in (("Mary Ann", "Smith"), ("Lena", "Ortiz")):
            create_contact(s, ContactCreate(account_id=account.id, first_name=first, last_name=last))
        create_rep(s, SalesRepCreate(name="Jane Roe", manager="Ann Lee"))
    with session_scope(clean_db) as s:
        assert sorted(contact_full_names(s)) == ["Lena Ortiz", "Mary Ann Smith"]
    set_name_loader(functools.partial(_contact_names, clean_db))
    said = "Mary Ann Smith and lena ortiz at Cancity, with Jane Roe (manager Ann Lee)"
    assert mask_text(said) == "[name] and [name] at Cancity, with Jane Roe (manager Ann Lee)"


# ------------------------------------------------------------------------------------------
# the export hook
# ------------------------------------------------------------------------------------------
def _span(trace_id: str, span_id: str, text: str) -> tuple[OtelSpanIdentifier, OtelSpanData]:
    data = OtelSpanData(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=None,
        name="ChatCompletion",
        instrumentation_scope_name="openinference.instrumentation.crewai",
        instrumentation_scope_version=None,
        attributes={"input.value": text, "llm.model_name": "stub-model"},
        resource_attributes={},
    )
    return OtelSpanIdentifier(trace_id=trace_id, span_id=span_id), data


def test_export_hook_masks_names_per_span_trace(traces: tuple[str, str]) -> None:
    trace_a, trace_b = traces
    said = f"Follow up with {ADA} and {DARCEL}"
    allow_names([ADA], trace_id=trace_a)
    spans = dict([_span(trace_a, "00f067aa0ba902b7", said), _span(trace_b, "53995c3f42cd8ad8", said)])
    result = enrich_and_mask_spans(params=MaskOtelSpansParams(spans=spans))
    assert result is not None
    patched = {key.trace_id: patch.set_attributes for key, patch in result.span_patches.items() if patch}
    assert patched[trace_a]["input.value"] == f"Follow up with {ADA} and [name]"
    assert patched[trace_b]["input.value"] == "Follow up with [name] and [name]"


def test_exported_turns_show_only_their_own_contacts(tracing: Tracing, otlp_receiver: OTLPReceiver) -> None:
    """Two traced turns through the Langfuse SDK and its exporter: the first allows Ada (its
    record), the second nothing; both mention Ada and Darcel."""
    assert tracing._tracer_provider is not None
    tracer = tracing._tracer_provider.get_tracer("openinference.instrumentation.crewai")
    said = f"Draft a note to {ADA} and {DARCEL}"
    trace_ids = []
    for allowed in ([ADA], []):
        with tracing.turn_span("thread-names", "rep-1") as turn:
            allow_names(allowed)
            with tracer.start_as_current_span("ChatCompletion", attributes={"input.value": said}):
                pass
            turn.set_output(said)
            trace_ids.append(turn.trace_id)
    tracing.flush()
    assert otlp_receiver.wait_for(lambda r: len(r.spans) >= 4)
    own, other = (
        " ".join(str(v) for s in otlp_receiver.spans if s.trace_id == trace_id for v in s.attributes.values())
        for trace_id in trace_ids
    )
    assert ADA in own and DARCEL not in own and "[name]" in own
    assert ADA not in other and DARCEL not in other and "[name]" in other
