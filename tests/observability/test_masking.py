"""E-mail addresses and phone numbers never reach Langfuse unless FLOWSTATE_TRACE_RAW is on: in
what the Langfuse SDK records and in third-party (OpenInference) spans alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from observability.masking import mask_attributes, mask_text, mask_value
from observability.prices import use_price_table
from observability.tracing import Tracing, setup_tracing
from tests.observability.conftest import TEST_PRICES, langfuse_settings
from tests.support.otlp_receiver import OTLPReceiver

EMAIL, PHONE = "ada.lovelace@cancity.example.com", "+1-415-555-0123"
SAID = f"Write to {EMAIL} or call {PHONE} about the deal of 2024-06-01 worth 12500.50"


def test_mask_text_hides_emails_and_phones_only() -> None:
    masked = mask_text(SAID)
    assert masked == "Write to [email] or call [phone] about the deal of 2024-06-01 worth 12500.50"
    for phone in ("(020) 7946 0958", "555-123-4567", "+44 20 7946 0958", "415.555.0199"):
        assert mask_text(f"tel {phone}.") == "tel [phone].", phone
    for kept in ("12:30:45", "deal 42", "2024-06-01T09:00:00Z", "a3f9c2e1-77b0-4d2a-9c3e-1b2d3e4f5a6b"):
        assert mask_text(kept) == kept
    assert mask_value({"to": [EMAIL], "n": 3}) == {"to": ["[email]"], "n": 3}
    assert mask_attributes({"input.value": SAID, "llm.model_name": "m", "n": 1}) == {
        "input.value": mask_text(SAID)
    }


def _traced(tracing: Tracing, receiver: OTLPReceiver) -> str:
    """Trace a turn with personal data in the SDK's input and in an OpenInference LLM span; the
    text of every exported attribute, joined."""
    assert tracing._tracer_provider is not None
    tracer = tracing._tracer_provider.get_tracer("openinference.instrumentation.crewai")
    with tracing.turn_span("thread-mask", "ada", input={"message": SAID}) as turn:
        with tracer.start_as_current_span(
            "ChatCompletion", attributes={"openinference.span.kind": "LLM", "input.value": SAID}
        ):
            pass
        turn.set_output(f"Done: mailed {EMAIL}")
    tracing.flush()
    assert receiver.wait_for(lambda r: len(r.spans) >= 2)
    return " ".join(str(v) for span in receiver.spans for v in span.attributes.values())


@pytest.fixture
def raw_tracing(otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tracing]:
    monkeypatch.setenv("FLOWSTATE_TRACE_RAW", "true")
    active = setup_tracing(langfuse_settings(monkeypatch, otlp_receiver.base_url), prices=TEST_PRICES)
    try:
        yield active
    finally:
        active.shutdown()
        use_price_table(None)


def test_exported_traces_are_masked_by_default(tracing: Tracing, otlp_receiver: OTLPReceiver) -> None:
    exported = _traced(tracing, otlp_receiver)
    assert EMAIL not in exported and PHONE not in exported
    assert "[email]" in exported and "[phone]" in exported
    (llm,) = [s for s in otlp_receiver.spans if s.name == "ChatCompletion"]
    assert llm.attributes["input.value"] == mask_text(SAID)


def test_raw_export_keeps_them_when_switched_on(raw_tracing: Tracing, otlp_receiver: OTLPReceiver) -> None:
    exported = _traced(raw_tracing, otlp_receiver)
    assert EMAIL in exported and PHONE in exported
