"""Run the configured validators on a crew's response and decide: pass, fix, re-ask, or refuse.

    outcome = check_reply(response, GuardContext(intent="closing", message=msg, known_names=index))
    if outcome.decision == "reask":          # once: the crew again, told what failed
        response = run_crew(request_with(outcome.reask_instructions))
        outcome = check_reply(response, ctx.next_attempt())
    reply = outcome.response.reply           # fixed, or the safe reply when refused
    state["verdicts"] = outcome.verdict_dicts()

Targets: the reply; the text parameters of a proposed action (the body and subject of an email to
queue, its one-line summary); a discount to accept (`accept_discount` params); the crew's typed
data (schema). Text validators run in the configured order and each sees the previous fixes.

Per failure, the validator's on-fail action decides (config/guards.yaml): fix -> the validator's
safe fix, or refuse when it has none; reask -> re-ask while `context.attempt < max_reasks`, else
refuse; fix_reask -> fix if it can, else as reask; refrain -> refuse; noop -> record only. The
turn's decision is the strongest of its verdicts: refuse > reask > fixed > pass. Pure and fast: no
LLM, no database; the caller passes names and facts in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from guardrails.validators import PassResult, Validator
from pydantic import BaseModel

from contracts import CrewResponse, ProposedAction
from contracts.guards import GuardDecision as Decision
from contracts.guards import GuardOutcome, Verdict
from guards.config import (
    TEXT_VALIDATORS,
    GuardsConfig,
    ValidatorName,
    load_guards_config,
    policy_phrases,
    resolve_action,
)
from guards.names import as_index
from guards.numbers import FactSet
from guards.types import GuardContext
from guards.validators import VALIDATORS, DiscountPolicy, schema_check

#: Proposed-action parameters holding text that leaves the building (or is shown to the rep).
ACTION_TEXT_KEYS = ("subject", "body", "text", "content", "message", "email_body", "draft", "note")
#: Parameters of an `accept_discount` action that hold the percentage.
DISCOUNT_KEYS = ("percent", "discount_percent", "discount_pct", "discount")

_GUIDANCE = {
    "grounding": (
        "Name only accounts, contacts, reps, products and deals that appear in the data given, and use "
        "only figures that appear there (do not compute or estimate new ones)."
    ),
    "tone": (
        "Keep a professional tone, and do not promise, guarantee or commit to anything (prices, "
        "outcomes, legal terms) on the rep's behalf."
    ),
    "schema": "Return JSON that matches the required schema exactly.",
    "discount_policy": "Do not offer a discount above {max_percent:g}%.",
}
_SAFE_REASONS = {
    "grounding": "some names or figures in my draft could not be matched to the CRM data",
    "tone": "my draft made a commitment you have not made, or used wording I won't send",
    "discount_policy": (
        "my draft offered a discount above the {max_percent:g}% maximum of our sales policy, which "
        "needs a manager's approval"
    ),
    "schema": "the answer did not come back in the expected structure",
    "privacy": "it contained personal data I may not share",
    "can_spam": "the email draft lacked the required sender details",
}

_INSTANCES: dict[int, tuple[GuardsConfig, dict[str, Validator]]] = {}


def validators_for(config: GuardsConfig) -> dict[str, Validator]:
    """One instance of every configured validator (built once per configuration)."""
    cached = _INSTANCES.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    built: dict[str, Validator] = {
        name: VALIDATORS[name](on_fail=cfg.on_fail, **cfg.options) for name, cfg in config.validators.items()
    }
    _INSTANCES[id(config)] = (config, built)
    return built


def warm_up(models: Iterable[type[BaseModel]] = (), config: GuardsConfig | None = None) -> None:
    """Build the validators and the `Guard.for_pydantic` of each crew output model now (about
    0.2 s each) rather than on the first turn; call it at start-up."""
    from guards.validators import schema_runner

    validators_for(config or load_guards_config())
    for model in models:
        schema_runner(model)


def _max_percent(config: GuardsConfig) -> float:
    v = validators_for(config).get("discount_policy")
    return v.limit({}) if isinstance(v, DiscountPolicy) else 100.0


def _run_text(
    text: str,
    target: str,
    names: Iterable[ValidatorName],
    metadata: dict[str, Any],
    config: GuardsConfig,
    attempt: int,
    verdicts: list[Verdict],
) -> str:
    instances = validators_for(config)
    for name in names:
        validator = instances[name]
        t0 = time.perf_counter()
        result = validator.validate(text, metadata)
        ms = (time.perf_counter() - t0) * 1000
        if isinstance(result, PassResult):
            verdicts.append(Verdict(validator=name, target=target, passed=True, action="pass", latency_ms=ms))
            continue
        fix = getattr(result, "fix_value", None)
        action = resolve_action(config.validators[name].on_fail, fix is not None, attempt, config.max_reasks)
        verdicts.append(
            Verdict(
                validator=name,
                target=target,
                passed=False,
                action=action,
                message=str(getattr(result, "error_message", "") or ""),
                latency_ms=ms,
            )
        )
        if action == "fixed":
            text = str(fix)
    return text


def _check_action(
    action: ProposedAction,
    names: Sequence[ValidatorName],
    metadata: dict[str, Any],
    config: GuardsConfig,
    attempt: int,
    verdicts: list[Verdict],
) -> ProposedAction:
    params = dict(action.params)
    is_email = action.kind == "queue_email"
    for key in ACTION_TEXT_KEYS:
        value = params.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        wanted = [n for n in names if n != "can_spam" or (is_email and key != "subject")]
        meta = {**metadata, "is_email": is_email and key != "subject"}
        params[key] = _run_text(value, f"action.{key}", wanted, meta, config, attempt, verdicts)
    summary = _run_text(
        action.summary,
        "action.summary",
        [n for n in names if n == "discount_policy"],
        metadata,
        config,
        attempt,
        verdicts,
    )
    if action.kind == "accept_discount" and "discount_policy" in names:
        limit = _max_percent(config)
        for key in DISCOUNT_KEYS:
            value = params.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
                act = resolve_action(
                    config.validators["discount_policy"].on_fail, True, attempt, config.max_reasks
                )
                verdicts.append(
                    Verdict(
                        validator="discount_policy",
                        target=f"action.{key}",
                        passed=False,
                        action=act,
                        message=f"Discount {value:g}% above the {limit:g}% policy maximum",
                    )
                )
                if act == "fixed":
                    params[key] = limit
    return action.model_copy(update={"params": params, "summary": summary})


def check_reply(
    response: CrewResponse, context: GuardContext, *, config: GuardsConfig | None = None
) -> GuardOutcome:
    """Run the validators configured for `context.intent` on `response` (module docstring).

    Returns a GuardOutcome whose `response` is safe to show: the reply with safe fixes applied, or
    the safe reply (and no proposed action) when refused; on reask, the original response with
    `reask_instructions` for the crew. Raises nothing for a bad reply; a missing configuration or
    a validator bug raises (the graph then blocks the reply).
    """
    t_start = time.perf_counter()
    cfg = config or load_guards_config()
    names = cfg.for_intent(context.intent)
    text_names = [n for n in names if n in TEXT_VALIDATORS]
    facts: list[Any] = [*response.facts, *context.extra_facts, *(s.model_dump() for s in response.sources)]
    metadata: dict[str, Any] = {
        "known_names": as_index(context.known_names),
        "facts": FactSet.from_facts(facts),
        "message": context.message,
        "ignore_phrases": policy_phrases(cfg),
        "allowed_numbers": list(context.allowed_numbers),
        "allowed_pii": list(context.allowed_pii),
        "is_email": context.is_email,
        "list_price": context.list_price,
    }
    verdicts: list[Verdict] = []

    if "schema" in names and context.output_model is not None:
        v = validate_output(context.output_model, response.data)
        if not v.passed:
            v.action = resolve_action(
                cfg.validators["schema"].on_fail, False, context.attempt, cfg.max_reasks
            )
        verdicts.append(v)

    reply = _run_text(response.reply, "reply", text_names, metadata, cfg, context.attempt, verdicts)
    action = response.proposed_action
    if action is not None:
        action = _check_action(action, text_names, metadata, cfg, context.attempt, verdicts)

    decision = _decide(verdicts)
    failures = [v for v in verdicts if not v.passed]
    instructions = None
    if decision == "reask":
        instructions = reask_instructions(failures, max_percent=_max_percent(cfg))
        guarded = response
    elif decision == "refuse":
        guarded = response.model_copy(
            update={"reply": safe_reply(failures, max_percent=_max_percent(cfg)), "proposed_action": None}
        )
    elif decision == "fixed":
        guarded = response.model_copy(update={"reply": reply, "proposed_action": action})
    else:
        guarded = response
    return GuardOutcome(
        decision=decision,
        response=guarded,
        original_reply=response.reply,
        verdicts=verdicts,
        reask_instructions=instructions,
        latency_ms=(time.perf_counter() - t_start) * 1000,
    )


def _decide(verdicts: Sequence[Verdict]) -> Decision:
    actions = {v.action for v in verdicts}
    if "refused" in actions:
        return "refuse"
    if "reask" in actions:
        return "reask"
    if "fixed" in actions:
        return "fixed"
    return "pass"


def validate_output(model_cls: type[BaseModel], data: Any) -> Verdict:
    """A crew's typed output (`CrewResponse.data`, a model instance or JSON text) against its
    pydantic model, via Guardrails' `Guard.for_pydantic` plus the model's own validators.
    Returns a Verdict for validator "schema", target "data" (action "reask" when it fails)."""
    t0 = time.perf_counter()
    ok, message = schema_check(model_cls, data)
    return Verdict(
        validator="schema",
        target="data",
        passed=ok,
        action="pass" if ok else "reask",
        message=message,
        latency_ms=(time.perf_counter() - t0) * 1000,
    )


def _unique_validators(failures: Iterable[Verdict]) -> list[str]:
    seen: list[str] = []
    for v in failures:
        if v.action != "noted" and v.validator not in seen:
            seen.append(v.validator)
    return seen


def reask_instructions(failures: Sequence[Verdict], *, max_percent: float = 100.0) -> str:
    """The note for the crew's one re-ask: what failed and how to answer instead."""
    lines = ["Your previous answer was not shown to the rep because it failed these checks:"]
    lines += [f"- {v.validator}: {v.message}" for v in failures if v.action in {"reask", "refused"}]
    lines += [
        _GUIDANCE[n].format(max_percent=max_percent) for n in _unique_validators(failures) if n in _GUIDANCE
    ]
    lines.append("Write the answer again.")
    return "\n".join(lines)


def safe_reply(failures: Sequence[Verdict], *, max_percent: float | None = None) -> str:
    """The reply shown instead of a draft that failed its checks: says honestly what could not
    be answered and why, and that nothing was changed."""
    if max_percent is None:
        from config.files import load_policies

        max_percent = load_policies().discount.max_percent
    reasons = [
        _SAFE_REASONS[n].format(max_percent=max_percent)
        for n in _unique_validators(failures)
        if n in _SAFE_REASONS
    ] or ["my draft did not pass its checks"]
    return (
        "I can't give you a checked answer to that: "
        + "; ".join(reasons)
        + ". Nothing was changed in the CRM. Try asking about a specific account, deal or rep, "
        "or rephrase the request."
    )
