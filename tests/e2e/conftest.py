"""End-to-end tests: the real app (or the whole chat engine) on the real PostgreSQL and Redis of
the test session, with either a scripted stub LLM over HTTP or the real embedded model (tests
marked `llm`, through the session's one `embedded_llm` fixture in tests/conftest.py)."""

from tests.observability.conftest import _fresh_settings

__all__ = ["_fresh_settings"]
