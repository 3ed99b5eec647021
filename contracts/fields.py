"""Field types of the values clients send (API bodies, query strings, chat frames), with the bounds
of the storage behind them written into the JSON schema, so the OpenAPI document states the rule
the server enforces and a schema-valid request is never refused by the database.

- `Input`: the base of request bodies: unknown fields refused, whitespace around strings
  stripped, and no `true`/`false` for a number (pydantic alone reads them as 1 and 0, which the
  schema does not allow).
- `RecordId`: a database id, 1 .. `MAX_ID`.
- `Text`: a string without NUL characters. PostgreSQL `text`/`varchar` and `jsonb` cannot store
  U+0000, so such a string is a 422 naming the field rather than a failed insert. (Checking the
  pattern also refuses a lone surrogate, which has no UTF-8 encoding.)
- `NonBlank`: a `Text` with at least one character that is not whitespace (models strip the
  whitespace around strings, so "  " is empty once received).
- `Email`: an e-mail address (no whitespace, one "@", a dot in the domain, no NUL).
- `JsonObject`: free-form JSON (event payloads, metadata, action edits) whose keys and strings
  are `Text` and whose numbers are finite: what a `jsonb` column stores.
- `IsoDate`, `Instant`: a date ("2024-06-01") and a date-time with its offset
  ("2024-06-01T09:00:00Z"), written as the schema's `format: date` / `date-time` say. Pydantic on
  its own also reads numbers (and strings of digits) as Unix timestamps, which the schema does
  not allow; these types refuse them.
- `Omittable[T]`: a field of a partial update that may be left out (None in Python: "keep the
  value") but not set to null, because its column is NOT NULL. The JSON schema shows `T` alone;
  the model lets an explicit null through to the repository, which refuses it as
  `Invalid(field)` (a 422 naming the field) for every caller, not only the API.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any, TypeVar, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema
from typing_extensions import TypeAliasType

T = TypeVar("T")

#: Largest id accepted anywhere: JavaScript's Number.MAX_SAFE_INTEGER (2^53 - 1), the largest
#: integer every JSON client carries exactly. Ids are PostgreSQL bigint identities (up to 2^63 - 1),
#: so an id in range never overflows a column. (2^63 - 1 itself cannot be the published bound:
#: FastAPI's OpenAPI models keep `maximum` as a float, which rounds it up to 2^63.)
MAX_ID = 2**53 - 1

#: "No NUL character", as a JSON-schema pattern (ECMA-262 and Python regex alike).
NO_NUL_PATTERN = r"^[^\x00]*$"

#: The whitespace that models strip (Unicode White_Space, as Rust's `str::trim` in pydantic-core),
#: spelled out because `\s` means a different set in Python, ECMA-262 and Rust regex.
_SPACE = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"

#: No NUL character and at least one character that is not whitespace.
NOT_BLANK_PATTERN = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"

#: An e-mail address: no whitespace, exactly one "@", a dot in the domain, no NUL.
EMAIL_PATTERN = rf"^[^@\x00{_SPACE}]+@[^@\x00{_SPACE}]+\.[^@\x00{_SPACE}]+$"


class _NullUnlisted:
    """`T | None` validated as such (the field's constraints apply to `T`), with a JSON schema of
    `T` alone: clients are not told that null is a value to send."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        (inner,) = [arg for arg in get_args(source) if arg is not type(None)]
        return core_schema.nullable_schema(handler(inner))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        choices = [c for c in out.pop("anyOf", []) if c != {"type": "null"}]
        if len(choices) == 1:
            out.update(choices[0])
        elif choices:
            out["anyOf"] = choices
        return out


class _KeysByName:
    """JSON schema of a dict with constrained keys as `propertyNames` + `additionalProperties`.
    Pydantic writes `patternProperties`, which leaves keys that miss the pattern unconstrained:
    a schema that would then call a key with a NUL valid."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        patterns = out.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            out["propertyNames"] = {"pattern": pattern}
            out["additionalProperties"] = values
        return out


#: What each pattern above means, in words: error messages say this rather than the regex.
PATTERN_RULES: dict[str, str] = {
    NO_NUL_PATTERN: "must not contain NUL characters (\\x00)",
    NOT_BLANK_PATTERN: "must not be blank or contain NUL characters (\\x00)",
    EMAIL_PATTERN: "must be an e-mail address (name@domain.tld, no spaces)",
}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}")


def _iso_date(value: Any) -> Any:
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, dt.datetime) or (isinstance(value, str) and _ISO_DATETIME.match(value)):
        return value
    raise ValueError("must be a date-time written YYYY-MM-DDTHH:MM:SS with an offset (Z or +HH:MM)")


RecordId = Annotated[int, Field(ge=1, le=MAX_ID)]
Text = Annotated[str, StringConstraints(pattern=NO_NUL_PATTERN)]
NonBlank = Annotated[str, StringConstraints(pattern=NOT_BLANK_PATTERN)]
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]


def _zone_names() -> list[str]:
    import zoneinfo

    return sorted(zoneinfo.available_timezones())


#: The IANA time zone names this machine's tz database knows (the `enum` of TimeZoneName).
TIME_ZONES: list[str] = _zone_names()


def _time_zone(value: str) -> str:
    if value not in TIME_ZONES:
        raise ValueError("must be an IANA time zone name such as Europe/Berlin or UTC")
    return value


#: An IANA time zone name (`Europe/Berlin`, `America/New_York`, `UTC`): a closed list in the
#: schema, so a client sees every accepted value.
TimeZoneName = Annotated[
    str, AfterValidator(_time_zone), WithJsonSchema({"type": "string", "enum": TIME_ZONES})
]

#: The JSON schema of a `JsonObject` (validation walks the value instead: one error naming the
#: path, where pydantic's union would report every branch it tried).
JsonValue = TypeAliasType(
    "JsonValue",
    "_JsonMap | list[JsonValue] | Text | bool | int | FiniteFloat | None",
)
_JsonMap = Annotated[dict[Text, JsonValue], _KeysByName()]


def _text_problem(text: str) -> str | None:
    """Why PostgreSQL cannot store `text`, or None when it can."""
    if "\x00" in text:
        return "must not contain NUL characters (\\x00)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (a lone surrogate has no UTF-8 encoding)"
    return None


def _check_json(value: Any, where: str) -> None:
    """ValueError naming the first part of `value` that a `jsonb` column cannot store."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        problem = _text_problem(value)
        if problem:
            raise ValueError(f"{where or 'value'}: {problem}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where or 'value'}: must be a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = _text_problem(key) if isinstance(key, str) else "must be a string"
            if problem:
                raise ValueError(f"{where or 'object'}: key {key!r} {problem}")
            _check_json(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
    else:
        raise ValueError(f"{where or 'value'}: a {type(value).__name__} is not a JSON value")


def check_json_object(value: Any) -> dict[str, Any]:
    """`value` unchanged if it is a JSON object that `jsonb` can store; ValueError otherwise."""
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    _check_json(value, "")
    return value


JsonObject = Annotated[
    dict[str, Any],
    PlainValidator(check_json_object, json_schema_input_type=_JsonMap),
]

Omittable = Annotated[T | None, _NullUnlisted()]


def _takes_bool(annotation: Any) -> bool:
    return annotation is bool or any(_takes_bool(arg) for arg in get_args(annotation))


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused (a typo is a 422 naming the field, not a
    silent no-op), whitespace around strings is stripped, and a boolean is refused where the field
    wants a number. (A check per field, not a type: a validator wrapped around `int` would hide
    the field's bounds from the JSON schema.)"""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and not _takes_bool(field.annotation):
            raise ValueError("must not be true or false")
        return value
