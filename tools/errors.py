"""The errors a tool raises: every CRM domain error is a `DomainError` (an unknown name or id is
`NotFound`, a value the CRM refuses is `Invalid`, a state that forbids the change `Conflict`, a
record outside the caller's scope `Forbidden`)."""

from crm.errors import Conflict, DomainError, Forbidden, Invalid, NotFound

__all__ = ["Conflict", "DomainError", "Forbidden", "Invalid", "NotFound"]
