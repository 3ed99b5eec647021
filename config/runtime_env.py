"""Process-wide switches that keep the stack offline and quiet, applied once at start-up.

Called by `app.cli.main()` before any command imports CrewAI, LiteLLM, tiktoken or Guardrails:
those libraries read these variables at import time, so setting them later
does not help. Each value is a default (`os.environ.setdefault`): a deployment can override it.
Each switch keeps a library from contacting its hosts at import or run time (measured offline).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: Variable -> value. Deliberately absent: OTEL_SDK_DISABLED, which would also switch Langfuse off.
OFFLINE_DEFAULTS: dict[str, str] = {
    # CrewAI contacts its telemetry and tracing hosts on kickoff and stalls ~10 s at exit offline.
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    # Where CrewAI keeps its user data (e.g. that its tracing is declined, see
    # llm.crewai.decline_crewai_tracing): one folder for Flowstate, not one named after whichever
    # directory the server was started in.
    "CREWAI_STORAGE_DIR": "flowstate",
    # LiteLLM otherwise fetches its model price list from the network on import.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    # chromadb (pulled in by CrewAI's memory) reports anonymous usage unless told not to.
    "ANONYMIZED_TELEMETRY": "False",
    # No model hub is reachable: fail fast instead of retrying downloads.
    "HF_HUB_OFFLINE": "1",
}


def tiktoken_cache_dir() -> Path | None:
    """LiteLLM's bundled tiktoken encodings (`litellm/litellm_core_utils/tokenizers`), found
    without importing LiteLLM (a slow import); None if LiteLLM is not installed."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return path if path.is_dir() else None


def apply_offline_defaults() -> None:
    """Set the offline switches (environment defaults and TIKTOKEN_CACHE_DIR).

    Guardrails' own switch (`~/.guardrailsrc`) is written by `guards/_offline.py`, the one module
    that runs before anything imports `guardrails`.

    Idempotent and cheap (no heavy import); call it before CrewAI, LiteLLM, LangChain's token
    counting or Guardrails are imported.
    """
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # tiktoken downloads its encodings on first use (fails offline); LiteLLM ships them.
    tokenizers = tiktoken_cache_dir()
    if tokenizers is not None:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tokenizers))
