"""Prometheus metrics of Flowstate, on a dedicated registry (served by `GET /metrics`).

Series (names as exposed):

- `flowstate_turns_total{intent, outcome}`: chat turns finished. `intent` is the classified
  intent (`contracts.INTENTS`, "unknown" before classification); `outcome` what the turn
  ended with; the values Flowstate uses: "answered", "needs_approval" (paused for the rep),
  "safe_reply" (a guard replaced the answer), "error", "busy" (refused: no place among the running
  turns freed up in time; no latency observed).
- `flowstate_turn_seconds`: histogram of a turn's wall-clock latency in seconds. Buckets centre on
  the 10 s median target of the embedded 1.5B model on 2 cores.
- `flowstate_llm_calls_total{model}`: LLM HTTP requests sent, failed ones included.
- `flowstate_llm_tokens_total{model, kind}`: server-reported tokens, kind = prompt | completion.
- `flowstate_llm_cost_usd_total{model}`: USD from `config/prices.yaml` (0 for the local model).
- `flowstate_guard_failures_total{validator}`: guard verdicts that failed, by validator.

The LLM series are fed by `observability.llm_meter` only (one boundary: the HTTP exchange with
the LLM server, which every ChatOpenAI and CrewAI call crosses exactly once per attempt); callers
record turns with :func:`observe_turn` (or :class:`TurnTimer`) and guards with
:func:`observe_guard_verdicts`. Every function here is cheap and never raises on bad labels.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder

#: The registry behind `GET /metrics` (not prometheus_client's global one, so importing a library
#: that registers its own metrics adds nothing to ours, and tests can read exact values).
REGISTRY = CollectorRegistry(auto_describe=True)

TURN_BUCKETS_S = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0)

TURNS = Counter(
    "flowstate_turns", "Chat turns finished, by intent and outcome.", ["intent", "outcome"], registry=REGISTRY
)
TURN_SECONDS = Histogram(
    "flowstate_turn_seconds",
    "Wall-clock latency of a chat turn in seconds.",
    buckets=TURN_BUCKETS_S,
    registry=REGISTRY,
)
LLM_CALLS = Counter("flowstate_llm_calls", "LLM HTTP requests sent, by model.", ["model"], registry=REGISTRY)
LLM_TOKENS = Counter(
    "flowstate_llm_tokens",
    "Tokens reported by the LLM server, by model and kind (prompt|completion).",
    ["model", "kind"],
    registry=REGISTRY,
)
LLM_COST = Counter(
    "flowstate_llm_cost_usd",
    "LLM cost in USD from config/prices.yaml, by model.",
    ["model"],
    registry=REGISTRY,
)
GUARD_FAILURES = Counter(
    "flowstate_guard_failures", "Guard verdicts that failed, by validator.", ["validator"], registry=REGISTRY
)

_MAX_LABEL = 64


def _label(value: object, default: str = "unknown") -> str:
    text = str(value).strip() if value is not None else ""
    return (text or default)[:_MAX_LABEL]


def observe_turn(intent: str | None, outcome: str, seconds: float | None = None) -> None:
    """Count one finished turn and, when given, its latency in seconds."""
    TURNS.labels(intent=_label(intent), outcome=_label(outcome)).inc()
    if seconds is not None and seconds >= 0:
        TURN_SECONDS.observe(seconds)


def observe_busy_turn() -> None:
    """Count one turn refused as busy (`outcome="busy"`, intent "unknown": it was never
    classified)."""
    observe_turn(None, "busy")


class TurnTimer:
    """Times a turn; set `intent` and `outcome` as they become known.

        with TurnTimer() as t:
            ...; t.intent = state["intent"]; t.outcome = "answered"

    On exit records :func:`observe_turn`; an exception leaving the block makes the outcome
    "error" (and propagates)."""

    def __init__(self) -> None:
        self.intent: str | None = None
        self.outcome: str = "answered"
        self._start = 0.0

    def __enter__(self) -> TurnTimer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            self.outcome = "error"
        observe_turn(self.intent, self.outcome, time.perf_counter() - self._start)


def observe_llm_request(model: str | None) -> None:
    """Count one LLM request as it is sent (failed ones count too). Called by `llm_meter` only."""
    LLM_CALLS.labels(model=_label(model)).inc()


def observe_llm_usage(
    model: str | None, prompt_tokens: int = 0, completion_tokens: int = 0, cost_usd: float | None = None
) -> None:
    """Add the tokens (and USD) one LLM response reported. Called by `llm_meter` only."""
    name = _label(model)
    if prompt_tokens > 0:
        LLM_TOKENS.labels(model=name, kind="prompt").inc(prompt_tokens)
    if completion_tokens > 0:
        LLM_TOKENS.labels(model=name, kind="completion").inc(completion_tokens)
    if cost_usd is not None and cost_usd >= 0:
        LLM_COST.labels(model=name).inc(cost_usd)


def verdict_fields(verdict: Any) -> tuple[str, bool, str | None]:
    """(validator, passed, message) of a guard verdict (`guards.types.Verdict` or its dict
    form): an object or mapping with `validator` (or `name`), `passed` (or `outcome` == "pass"),
    `message` (or `detail`/`reason`/`error`; empty counts as none)."""

    def get(key: str) -> Any:
        if isinstance(verdict, Mapping):
            return verdict.get(key)
        return getattr(verdict, key, None)

    validator = get("validator") or get("name") or "unknown"
    passed = get("passed")
    if passed is None:
        outcome = get("outcome")
        passed = str(outcome).lower() in {"pass", "passed", "ok"} if outcome is not None else False
    message = get("message") or get("detail") or get("reason") or get("error")
    return str(validator), bool(passed), None if message is None else str(message)


def observe_guard_verdicts(verdicts: Iterable[Any]) -> int:
    """Count the failed verdicts of one turn by validator; returns how many failed."""
    failed = 0
    for verdict in verdicts:
        validator, passed, _ = verdict_fields(verdict)
        if not passed:
            GUARD_FAILURES.labels(validator=_label(validator)).inc()
            failed += 1
    return failed


def render_latest(accept: str = "") -> tuple[bytes, str]:
    """The registry in the exposition format the scraper asks for in its `Accept` header
    (Prometheus text 0.0.4 by default, OpenMetrics when asked), and that format's content type."""
    encoder, content_type = choose_encoder(accept)
    return encoder(REGISTRY), content_type


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """Current value of one series (e.g. `sample("flowstate_turns_total", {...})`), 0.0 when the
    series does not exist yet. For tests and the CLI."""
    value = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if value is None else float(value)
