"""The errors a tool raises: every CRM domain error is a `DomainError` (an unknown name or id is
`NotFound`, a value the CRM refuses is `Invalid`, a state that forbids the change `Conflict`)."""

from crm.errors import Conflict, DomainError, Invalid, NotFound

__all__ = ["Conflict", "DomainError", "Invalid", "NotFound"]
