"""Guards on every crew output: Guardrails AI validators for schema, grounding, privacy,
tone and sales policy, and the runner that turns their verdicts into fix / re-ask / safe reply.

`guards._offline` runs first: it writes `~/.guardrailsrc` with metrics and remote inference off
before anything imports `guardrails` (see its docstring). The public API is imported lazily
so `import guards.numbers` (pure Python) stays cheap; `guards.check_reply` loads Guardrails (~3 s).

API: `check_reply(response, GuardContext(...)) -> GuardOutcome`, `safe_reply(failures)`,
`validate_output(model_cls, data) -> Verdict`, `NameIndex.from_names(names)`, `load_guards_config()`,
`warm_up(models)` (build the Guards at start-up instead of on the first turn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guards import _offline  # noqa: F401  (must run before any `import guardrails`)

if TYPE_CHECKING:
    from guards.config import GuardsConfig, load_guards_config
    from guards.names import NameIndex
    from guards.runner import check_reply, reask_instructions, safe_reply, validate_output, warm_up
    from guards.types import GuardContext, GuardOutcome, Verdict

__all__ = [
    "GuardContext",
    "GuardOutcome",
    "GuardsConfig",
    "NameIndex",
    "Verdict",
    "check_reply",
    "load_guards_config",
    "reask_instructions",
    "safe_reply",
    "validate_output",
    "warm_up",
]

_WHERE = {
    "GuardContext": "guards.types",
    "GuardOutcome": "guards.types",
    "Verdict": "guards.types",
    "GuardsConfig": "guards.config",
    "load_guards_config": "guards.config",
    "NameIndex": "guards.names",
    "check_reply": "guards.runner",
    "reask_instructions": "guards.runner",
    "safe_reply": "guards.runner",
    "validate_output": "guards.runner",
    "warm_up": "guards.runner",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'guards' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
