"""Endpoints for an app under test: the test session's database (and Redis), no model, nothing
embedded for the app to manage."""

from __future__ import annotations

from embedded.stack import Endpoints


def plain_endpoints(database_url: str, redis_url: str | None = None) -> Endpoints:
    """The app's `Endpoints` on `database_url` (and `redis_url`; None: no chat engine), with no
    LLM configured."""
    return Endpoints(
        database_url=database_url,
        redis_url=redis_url,
        openai_base_url=None,
        openai_api_key="",
        llm_model="",
        embedded=frozenset(),
    )
