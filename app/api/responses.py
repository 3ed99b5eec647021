"""The API's error bodies, and `errors(...)`: the `responses=` entries that declare them in the
OpenAPI document, so every status a route can answer is listed there with its real body.

Statuses (the handlers are in `app.main`):
- 400: the body is not JSON (or not UTF-8);
- 401: no credential, or one that is unknown, revoked or expired (`app.api.auth`);
- 403: the caller may not do this (their role or scope), or a cookie write came from a foreign origin;
- 404: the record named in the path does not exist;
- 409: the request is well formed but does not fit the data as it stands (a duplicate, a record or
  stage it names that does not exist, a rule of the pipeline); `field` names the value at fault
  when there is one;
- 413: the body is larger than the route accepts (`app.main`, FastAPI's `max_body_size`);
- 422: the request is wrong in itself (`ValidationErrorBody`);
- 429: a rate limit or the cap on concurrent chat turns, with `Retry-After` (`app.api.limits`);
- 503: a service behind the API does not answer (the database; Redis for chat).

`links(...)`: the OpenAPI links from a response that carries a record to the operations that take
its id, for clients and for schemathesis' stateful phase (create a deal, then move it).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """What went wrong, in one sentence (`detail`), and the field or parameter at fault when
    there is one (`field`)."""

    detail: str
    field: str | None = None


class ValidationIssue(BaseModel):
    """One problem of a request (pydantic's error, as FastAPI reports it): `loc` is where
    ("body", "name") or ("query", "limit"); `msg` what; `type` pydantic's error type. `input` and
    `ctx` may follow."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """A request wrong in itself: every problem in `detail`, the same in one line in `message`
    ("field: problem; ..."), and the first field at fault in `field`."""

    detail: list[ValidationIssue]
    message: str
    field: str | None = Field(None, description="the first field at fault, as named in `message`")


_DESCRIPTIONS: dict[int, str] = {
    400: "The body is not valid JSON (or not UTF-8).",
    401: "No valid credential: sign in, or send `Authorization: Bearer <API token>`.",
    403: "Signed in, but not allowed: the record is outside the caller's scope, or the role may not do this.",
    404: "No record with this id.",
    409: (
        "Well formed, but does not fit the data as it stands: a duplicate, a record or stage it names "
        "that does not exist, a rule of the pipeline. `field` names the value at fault when there is one."
    ),
    413: "The request body is larger than this route accepts (`FLOWSTATE_MAX_BODY_BYTES`).",
    422: "The request is wrong in itself: one entry per problem in `detail`, all of them in `message`.",
    429: "Too many requests or chat turns for now (a rate limit): retry after `Retry-After` seconds.",
    503: "A service behind the API does not answer (the database; Redis for chat). Try again later.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries of these error statuses (FastAPI route or router argument): each
    with its body model (`ValidationErrorBody` for 422, `ErrorBody` otherwise) and description.
    Raises KeyError for a status this module does not describe."""
    return {
        code: {"model": ValidationErrorBody if code == 422 else ErrorBody, "description": _DESCRIPTIONS[code]}
        for code in codes
    }


#: Where the CRM and chat routers are mounted (app.main).
API_PREFIX = "/api"


def links(param: str, *operations: str, field: str = "id") -> dict[str, dict[str, Any]]:
    """OpenAPI links from a response to `operations` ("METHOD /path" under `API_PREFIX`, e.g.
    "POST /deals/{deal_id}/stage"), each given the response body's `field` as its `param`: the
    `links` entry of a response in `responses=`. Names are the method and path in CamelCase."""
    out: dict[str, dict[str, Any]] = {}
    for operation in operations:
        method, path = operation.split(" ", 1)
        pointer = (API_PREFIX + path).replace("~", "~0").replace("/", "~1")
        name = method.capitalize() + "".join(p.capitalize() for p in re.split(r"[/{}_]+", path) if p)
        out[name] = {
            "operationRef": f"#/paths/{pointer}/{method.lower()}",
            "parameters": {param: f"$response.body#/{field}"},
        }
    return out
