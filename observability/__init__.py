"""Observability of Flowstate: Langfuse traces, Prometheus metrics, LLM price table.

A top-level package rather than `app/observability`: the layers below `app` need it too (the LLM
factories of `llm/` attach the LLM meter and trigger CrewAI's instrumentation), and nothing below
`app` may import `app` (the layer rules in pyproject.toml). This package imports nothing of
Flowstate's except `config`.

- `observability.tracing`: `setup_tracing(settings)` once at start-up, then per chat turn
  `turn_span(...)`, `callbacks()`, `record_guard_verdicts(...)`.
- `observability.metrics`: the Prometheus registry and `observe_*` functions; `GET /metrics`
  lives in `app/api/routes/metrics.py`.
- `observability.llm_meter`: counts every LLM HTTP exchange (calls, tokens, cost by model).
- `observability.prices`: `config/prices.yaml`, USD per 1M prompt/completion tokens.

Importing this package (or `metrics`, `prices`, `llm_meter`) is cheap; `tracing` imports Langfuse
and OpenInference only when tracing is switched on.
"""
