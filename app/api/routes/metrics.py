"""`GET /metrics`: Flowstate's Prometheus metrics in the text exposition format.

Serves `observability.metrics.REGISTRY` (turns by intent and outcome, turn latency, LLM calls,
tokens and cost by model, guard failures by validator; the series are documented there). No
authentication, like `/health`: the series carry counts and model names, never content; put the
endpoint behind the network policy of your scraper if that is too much.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from observability.metrics import render_latest

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}},
)
def metrics(request: Request) -> Response:
    """The current value of every Flowstate series, in Prometheus text format 0.0.4 (or
    OpenMetrics when the scraper's `Accept` header asks for it)."""
    body, content_type = render_latest(request.headers.get("accept", ""))
    return Response(content=body, media_type=content_type)
