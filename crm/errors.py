"""Domain exceptions of the CRM. The API maps them to HTTP statuses (see `app/main.py`):
`NotFound` -> 404, `Forbidden` -> 403, `Conflict` (and `Inconsistent`) -> 409, `Invalid` -> 422;
chat tools turn them into plain sentences. Each message names the entity or field, so a client
(or a rep) can fix the request.

422 means the request is wrong in itself, whatever the data: sending it again can never succeed.
409 means it is well formed but does not fit the data as it stands (a duplicate name, a record or
stage it names that does not exist, a rule of the deal's stage); it can succeed once the data
changes. The API's JSON schema states every rule of the first kind it can, so a request that
passes the schema is refused only for reasons of the second kind.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every CRM domain error; `str(exc)` is a message fit to show a user."""


class NotFound(DomainError):
    """No `entity` with this id (or name): e.g. `NotFound("deal", 42)` -> "deal 42 not found"."""

    def __init__(self, entity: str, id: object) -> None:
        self.entity = entity
        self.id = id
        shown = repr(id) if isinstance(id, str) else str(id)
        super().__init__(f"{entity} {shown} not found")


class Conflict(DomainError):
    """The request is well formed but clashes with the current state (duplicate name, stage entry
    rule not met, move to the stage the deal is already in, closed deal moved without reopen)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Forbidden(DomainError):
    """The caller may see the record but not do this to it (a deal of another rep, a role that may
    not change the catalogue). Records outside what the caller may read are `NotFound` instead, so
    their existence is not disclosed. `field` names the value at fault when there is one (e.g. the
    `rep_id` of a deal created for another team)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(reason)


class Invalid(DomainError):
    """A value of `field` is not acceptable: `str(exc)` is "field: reason"."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Inconsistent(Invalid, Conflict):
    """A well-formed value of `field` that does not fit the data as it stands: it names a record
    or pipeline stage that does not exist (or a name that fits several), would make an account its
    own ancestor, or breaks a rule of the deal's stage (a field the stage requires, a close date on
    an open deal, a close date before the engage date). Both an `Invalid` (it names the field) and
    a `Conflict` (the API answers 409)."""

    def __init__(self, field: str, reason: str) -> None:
        Invalid.__init__(self, field, reason)
        self.reason = reason
