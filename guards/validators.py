"""Flowstate's Guardrails AI validators, registered with `@register_validator` (hub validators need
the network; these run offline and call no LLM).

| name                       | checks                                              | default on-fail |
|----------------------------|-----------------------------------------------------|-----------------|
| flowstate/grounding        | names exist in the CRM, figures in the tool results | reask           |
| flowstate/privacy          | emails, phones, cards, national ids not allowed     | fix (redact)    |
| flowstate/tone             | profanity, insults, commitments the rep did not make| fix_reask       |
| flowstate/discount_policy  | no discount above the policy maximum granted        | fix (cap)       |
| flowstate/can_spam         | sender identity, postal address, unsubscribe line   | fix (footer)    |
| flowstate/schema           | a crew's JSON output matches its pydantic model     | reask           |

A `FailResult` carries `fix_value` only when the fix is safe (a redaction, a masked swear word,
a capped discount with no derived price beside it, an appended footer); the runner
(`guards.runner.check_reply`) turns the on-fail action into fix / re-ask / safe reply. The
validators also work in a plain Guardrails `Guard` (`Guard().use(Privacy(on_fail="fix"))`).

Metadata keys (all optional unless said):
- grounding: `known_names` (NameIndex or strings), `facts` (tool results or FactSet), `message`,
  `ignore_phrases`, `allowed_numbers`;
- privacy: `allowed_pii` (strings of the CRM record being discussed);
- discount_policy: `max_percent` (overrides the validator's), `list_price` (for "$X off"),
  `facts` and `message` (figures beside a capped discount must come from them);
- can_spam: `is_email` (None: detect a draft by its subject line or greeting and sign-off);
- schema: `model` (the pydantic class; required).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, TypeAlias

from guardrails import OnFailAction
from guardrails.validators import (
    ErrorSpan,
    FailResult,
    PassResult,
    ValidationResult,
    Validator,
    register_validator,
)
from pydantic import BaseModel

from guards.discounts import cap_discounts, find_discounts, over_limit
from guards.email_rules import EmailPolicy, add_footer, looks_like_email, missing_elements
from guards.grounding import as_facts, check_grounding, describe
from guards.pii import LABELS, find_pii, redact
from guards.tone import find_tone_issues, mask_profanity

#: An on-fail action: a Guardrails OnFailAction or its name ("fix", "reask", ...).
OnFail: TypeAlias = str | OnFailAction | None


def _policies() -> Any:
    from config.files import load_policies

    return load_policies()


def _spans(items: list[Any], reason: str | None = None) -> list[ErrorSpan]:
    return [ErrorSpan(start=i.start, end=i.end, reason=reason or getattr(i, "reason", i.kind)) for i in items]


@register_validator(name="flowstate/grounding", data_type="string")
class Grounding(Validator):  # type: ignore[misc]
    """Every account, contact, deal, rep and product named in the text exists in the CRM
    (`known_names`), and every figure appears in the turn's tool results (`facts`). On-fail:
    reask (one re-ask of the crew with the failures explained, then the safe reply)."""

    def __init__(
        self,
        small_count_max: int = 20,
        check_names: bool = True,
        check_numbers: bool = True,
        on_fail: OnFail = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            on_fail=on_fail or OnFailAction.REASK,
            small_count_max=small_count_max,
            check_names=check_names,
            check_numbers=check_numbers,
            **kwargs,
        )
        self.small_count_max = small_count_max
        self.check_names = check_names
        self.check_numbers = check_numbers

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        issues = check_grounding(
            str(value),
            metadata.get("known_names"),
            metadata.get("facts"),
            message=str(metadata.get("message") or ""),
            ignore_phrases=metadata.get("ignore_phrases") or (),
            allowed_numbers=metadata.get("allowed_numbers") or (),
            small_count_max=self.small_count_max,
            check_names=self.check_names,
            check_numbers=self.check_numbers,
        )
        if not issues:
            return PassResult()
        return FailResult(
            error_message="Not grounded in the CRM data: " + describe(issues),
            error_spans=_spans(issues),
            metadata={"issues": [{"kind": i.kind, "text": i.text, "reason": i.reason} for i in issues]},
        )


@register_validator(name="flowstate/privacy", data_type="string")
class Privacy(Validator):  # type: ignore[misc]
    """Emails, phone numbers, payment card numbers (Luhn) and national ids (US SSN, UK NINO) that
    are not in `allowed_pii` (the CRM record being discussed) are redacted. On-fail: fix."""

    def __init__(self, on_fail: OnFail = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail or OnFailAction.FIX, **kwargs)

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        text = str(value)
        items = find_pii(text, metadata.get("allowed_pii") or ())
        if not items:
            return PassResult()
        kinds = sorted({LABELS[i.kind] for i in items})
        return FailResult(
            error_message=f"Personal data not in the CRM record: {len(items)} item(s) ({', '.join(kinds)})",
            fix_value=redact(text, items),
            error_spans=_spans(items, "personal data"),
        )


@register_validator(name="flowstate/tone", data_type="string")
class Tone(Validator):  # type: ignore[misc]
    """Profanity, insults, and commitments the rep did not make (guarantees, promises, price locks,
    legal promises). On-fail: fix_reask: profanity alone is masked; anything else is re-asked,
    then the safe reply."""

    def __init__(self, on_fail: OnFail = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail or OnFailAction.FIX_REASK, **kwargs)

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        text = str(value)
        issues = find_tone_issues(text)
        if not issues:
            return PassResult()
        fixable = all(i.kind == "profanity" for i in issues)
        detail = "; ".join(f'{i.kind} "{i.text}"' for i in issues[:5])
        return FailResult(
            error_message=f"Tone: {detail}",
            fix_value=mask_profanity(text) if fixable else None,
            error_spans=_spans(issues),
            metadata={"kinds": sorted({i.kind for i in issues})},
        )


@register_validator(name="flowstate/discount_policy", data_type="string")
class DiscountPolicy(Validator):  # type: ignore[misc]
    """No discount above the maximum (`config/policies.yaml` discount.max_percent) granted or
    offered; a customer's request quoted or refused is fine. On-fail: fix (cap the figure to the
    maximum when no derived price shares its sentence), else the safe reply."""

    def __init__(self, max_percent: float | None = None, on_fail: OnFail = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail or OnFailAction.FIX, max_percent=max_percent, **kwargs)
        self.max_percent = max_percent

    def limit(self, metadata: dict[str, Any]) -> float:
        """The maximum discount in percent: metadata, then this validator's, then the policy."""
        for v in (metadata.get("max_percent"), self.max_percent):
            if v is not None:
                return float(v)
        return float(_policies().discount.max_percent)

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        text = str(value)
        limit = self.limit(metadata)
        lp = metadata.get("list_price")
        mentions = find_discounts(text, list_price=float(lp) if lp else None)
        bad = over_limit(mentions, limit)
        if not bad:
            return PassResult()
        figures = ", ".join(f"{m.percent:g}%" for m in bad)
        facts = as_facts(metadata.get("facts"))
        said = as_facts([str(metadata.get("message") or "")])
        return FailResult(
            error_message=f"Discount above the {limit:g}% policy maximum offered: {figures}",
            fix_value=cap_discounts(text, mentions, limit, lambda n: facts.supports(n) or said.supports(n)),
            error_spans=[ErrorSpan(start=m.start, end=m.end, reason=m.reason) for m in bad],
            metadata={"max_percent": limit, "offered": [m.percent for m in bad]},
        )


@register_validator(name="flowstate/can_spam", data_type="string")
class CanSpam(Validator):  # type: ignore[misc]
    """An outbound email draft carries the sender identity, the postal address and an
    unsubscribe line (`config/policies.yaml` outbound_email). Text that is not an email passes.
    On-fail: fix (append the missing elements as a footer)."""

    def __init__(
        self,
        sender_company: str | None = None,
        postal_address: str | None = None,
        unsubscribe_line: str | None = None,
        on_fail: OnFail = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            on_fail=on_fail or OnFailAction.FIX,
            sender_company=sender_company,
            postal_address=postal_address,
            unsubscribe_line=unsubscribe_line,
            **kwargs,
        )
        self._given = (sender_company, postal_address, unsubscribe_line)
        self._policy: EmailPolicy | None = None

    @property
    def policy(self) -> EmailPolicy:
        if self._policy is None:
            sender, address, unsubscribe = self._given
            if None in self._given:
                p = _policies().outbound_email
                sender = sender or p.sender_company
                address = address or p.postal_address
                unsubscribe = unsubscribe or p.unsubscribe_line
            assert sender and address and unsubscribe
            self._policy = EmailPolicy(sender, address, unsubscribe)
        return self._policy

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        text = str(value)
        is_email = metadata.get("is_email")
        if is_email is False or (is_email is None and not looks_like_email(text)):
            return PassResult()
        missing = missing_elements(text, self.policy)
        if not missing:
            return PassResult()
        return FailResult(
            error_message="Outbound email lacks CAN-SPAM elements: " + ", ".join(missing),
            fix_value=add_footer(text, self.policy, missing),
            metadata={"missing": missing},
        )


@register_validator(name="flowstate/schema", data_type="string")
class Schema(Validator):  # type: ignore[misc]
    """A crew's JSON output (the text) matches its pydantic model (metadata `model`), checked by
    `Guard.for_pydantic` and then the model's own validators. On-fail: reask."""

    def __init__(self, on_fail: OnFail = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail or OnFailAction.REASK, **kwargs)

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        model = metadata.get("model")
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ValueError("flowstate/schema needs metadata['model'], a pydantic model class")
        ok, message = schema_check(model, value)
        return PassResult() if ok else FailResult(error_message=message)


@dataclass(frozen=True)
class _SchemaRunner:
    """What Guardrails' `Runner` uses to check a JSON output against a `Guard.for_pydantic`
    guard's schema, built once per model: the output type, the schema dict and its compiled
    JSON-schema validator, and what `prune_extra_keys` and `coerce_types` derive from the
    schema on every call (its JSON paths and its `$ref`-resolved form: two thirds of the check's
    CPU when derived per call). Immutable after it is built, so threads share it."""

    output_type: Any
    schema: dict[str, Any]
    validator: Any
    paths: frozenset[str]
    dereferenced: dict[str, Any]


_SCHEMA_RUNNERS: dict[type[BaseModel], _SchemaRunner] = {}
_BUILD_LOCK = threading.Lock()


def schema_runner(model: type[BaseModel]) -> _SchemaRunner:
    """The JSON-schema check of `Guard.for_pydantic(model)`, built once per model (building the
    guard costs ~100 ms)."""
    runner = _SCHEMA_RUNNERS.get(model)
    if runner is None:
        with _BUILD_LOCK:
            runner = _SCHEMA_RUNNERS.get(model)
            if runner is None:
                runner = _build_schema_runner(model)
                _SCHEMA_RUNNERS[model] = runner
    return runner


def _build_schema_runner(model: type[BaseModel]) -> _SchemaRunner:
    import jsonref
    from guardrails import Guard
    from guardrails.classes.output_type import OutputTypes
    from guardrails.schema.parser import get_all_paths
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing import jsonschema as jsonschema_ref

    guard = Guard.for_pydantic(model)
    schema = guard.output_schema.model_dump(exclude_none=True, by_alias=True)
    # as guardrails.schema.validator.validate_payload builds it on every call
    uri = f"urn:{schema.get('$id', 'temp-schema')}"
    registry = Registry().with_resources([(uri, jsonschema_ref.DRAFT202012.create_resource(schema))])
    validator = Draft202012Validator({"$ref": uri}, registry=registry)
    # the output type as the Guard derives it from its schema
    output_type = OutputTypes.__from_json_schema__(schema)
    return _SchemaRunner(
        output_type=output_type,
        schema=schema,
        validator=validator,
        paths=frozenset(get_all_paths(schema)),
        # resolved now into plain dicts: jsonref's default lazy proxies resolve on first use and
        # are not thread-safe (checks from two threads at once saw "'JsonRef' object has no
        # attribute 'get'")
        dereferenced=jsonref.replace_refs(schema, proxies=False, lazy_load=False),
    )


def schema_check(model: type[BaseModel], data: Any) -> tuple[bool, str]:
    """(passed, message) for `data` (a dict, a model instance or JSON text) against `model`:
    the steps of Guardrails' `Guard.for_pydantic(model).parse` (`parse_llm_output`,
    `prune_extra_keys`, `coerce_types`, then `validate_against_schema`), run with what they
    derive from the schema built once (`_SchemaRunner`) instead of a Guard call (which builds a
    call history, a runner and a generic result class per call: about 5 ms of CPU, 13% of a
    loaded server's), then `model.model_validate` (which also runs the model's own validators).
    Thread-safe."""
    from guardrails.schema.validator import SchemaValidationError, validate_against_schema
    from guardrails.utils.parsing_utils import coerce_property, parse_llm_output, prune_extra_keys

    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    runner = schema_runner(model)
    parsed, error = parse_llm_output(text, runner.output_type)
    if error or parsed is None or not isinstance(parsed, dict | list):
        return False, f"{model.__name__}: the output is not JSON ({error or 'no JSON value'})"
    # coerce_types(payload, schema) is coerce_property(payload, jsonref.replace_refs(schema))
    pruned = prune_extra_keys(parsed, runner.schema, all_json_paths=set(runner.paths))
    parsed = coerce_property(pruned, runner.dereferenced)
    try:
        validate_against_schema(parsed, runner.validator)
    except SchemaValidationError as exc:
        detail = "; ".join(f"{path}: {', '.join(msgs)}" for path, msgs in exc.fields.items())
        return False, f"{model.__name__}: JSON does not match schema: {detail}"
    try:
        model.model_validate(json.loads(text))
    except Exception as exc:  # pydantic.ValidationError, or a validator's own error
        return False, f"{model.__name__}: {exc}"
    return True, ""


#: Validator name (as used in config/guards.yaml) -> class.
VALIDATORS: dict[str, type[Validator]] = {
    "grounding": Grounding,
    "privacy": Privacy,
    "tone": Tone,
    "discount_policy": DiscountPolicy,
    "can_spam": CanSpam,
    "schema": Schema,
}
