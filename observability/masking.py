"""Personal data out of exported traces: e-mail addresses and phone numbers are masked.

Langfuse keeps every prompt and reply of a turn, and those carry the CRM's contacts (their
e-mail addresses and phone numbers) to wherever Langfuse runs. Unless `FLOWSTATE_TRACE_RAW` is
true, `observability.tracing.setup_tracing` masks them twice over:

- :func:`mask_data` is the Langfuse client's `mask`: the input, output and metadata that the SDK
  records (the LangChain callback handler's generations, the turn's root span, tool
  observations) are masked as they are set;
- :func:`mask_attributes` runs in the export hook (`mask_otel_spans`) over every string
  attribute of every span, which also covers spans the SDK never sees (OpenInference's CrewAI
  spans carry their prompts in `input.value` and `llm.input_messages.*`).

What is masked: text shaped like an e-mail address (`[email]`) or a phone number of 7 or more
digits written in groups (`[phone]`, e.g. "+1-415-555-0123", "(020) 7946 0958"). Names of people
are not masked: telling a contact's name from an account's or a product's needs the turn's
records, which the export of a batch of spans does not have; turn raw export off in Langfuse
projects that must not hold names, or keep Langfuse self-hosted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# a country code, an area code in parentheses or as a group, then at least two groups of digits
# split by space, dot or dash: dates ("2024-06-01"), times and plain amounts do not fit
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{2,4}[\s.-])?\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?!\w)"
)


def mask_text(text: str) -> str:
    """`text` with e-mail addresses replaced by "[email]" and phone numbers by "[phone]"."""
    if "@" in text:
        text = _EMAIL.sub(EMAIL_MASK, text)
    return _PHONE.sub(PHONE_MASK, text)


def mask_value(value: Any) -> Any:
    """`value` with :func:`mask_text` applied to every string in it (dict keys included; lists,
    tuples and dicts rebuilt; other values as they are)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {mask_value(k) if isinstance(k, str) else k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def mask_data(*, data: Any, **_kwargs: Any) -> Any:
    """The Langfuse client's `mask` function (`Langfuse(mask=...)`): :func:`mask_value` of
    `data`. Objects that are not JSON-like (pydantic models, messages) are masked through their
    text form only when they are strings; Langfuse serializes the rest afterwards."""
    return mask_value(data)


def mask_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The span attributes that masking changes, with their masked values (strings, and
    sequences of strings); empty when nothing needs masking."""
    changed: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(value, str):
            masked = mask_text(value)
            if masked != value:
                changed[key] = masked
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            masked_items = [mask_text(v) for v in value]
            if masked_items != list(value):
                changed[key] = masked_items
    return changed
