"""`GET /health`: whether every service behind the API answers (for load balancers and people).

200 with `{"status": "ok", ...}` when all components answer, 503 with `"degraded"` otherwise, so
an orchestrator can take the instance out of rotation. No authentication: it reveals versions and
modes, never URLs with secrets (see `Endpoints.describe`).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from embedded.health import ComponentStatus, check_components
from embedded.stack import Endpoints

router = APIRouter(tags=["health"])


class HealthReport(BaseModel):
    """`status` is "ok" when every component is ok, else "degraded"; one entry per component."""

    status: Literal["ok", "degraded"]
    components: list[ComponentStatus]


@router.get(
    "/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "at least one component does not answer"}},
)
async def health(request: Request) -> JSONResponse:
    """Check database, Redis, LLM endpoint and embeddings (each bounded by a 5 s timeout)."""
    endpoints: Endpoints = request.app.state.endpoints
    components = await check_components(endpoints)
    ok = all(c.ok for c in components)
    report = HealthReport(status="ok" if ok else "degraded", components=components)
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if ok else 503)
