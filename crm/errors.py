"""Domain exceptions of the CRM. The API maps them to HTTP statuses (see `app/main.py`):
`NotFound` -> 404, `Conflict` -> 409, `Invalid` -> 422; chat tools turn them into plain sentences.
Each message names the entity or field, so a client (or a rep) can fix the request."""

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


class Invalid(DomainError):
    """A value of `field` is not acceptable (unknown referenced id, close date before engage date)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")
