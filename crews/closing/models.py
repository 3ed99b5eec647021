"""Typed outputs of the closing crew."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

DraftKind = Literal["outreach", "follow_up", "proposal", "discount", "negotiation"]


class EmailDraft(BaseModel):
    """An email the closer wrote (LLM output; the crew adds figures, signature and footer)."""

    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=3000)


class ClosingAdvice(BaseModel):
    """The closer's advice for a negotiation, objection or contract question (LLM output)."""

    summary: str = Field(min_length=1, max_length=1500)
    talking_points: list[str] = Field(default_factory=list, max_length=5)


class DiscountDecision(BaseModel):
    """A discount request checked against `config/policies.yaml` (`discount.max_percent`):
    `allowed_percent` = min(requested, max); `within_policy` False means a counter-offer."""

    requested_percent: float
    max_percent: float
    allowed_percent: float
    within_policy: bool


class PriceLine(BaseModel):
    """A quoted line: list price x quantity, less the allowed discount (USD)."""

    product: str
    quantity: int
    list_price: float
    discount_percent: float = 0.0
    total: float


class ClosingResult(BaseModel):
    """The closing crew's typed output (`CrewResponse.data`)."""

    kind: DraftKind
    account: str | None = None
    deal: str | None = None
    product: str | None = None
    recipient: str | None = None
    email: EmailDraft | None = None
    advice: ClosingAdvice | None = None
    discount: DiscountDecision | None = None
    price: PriceLine | None = None
