"""CAN-SPAM elements of an outbound commercial email (15 U.S.C. 7704(a)(5); FTC "CAN-SPAM Act:
A Compliance Guide for Business"): identify the sender, give a valid physical postal address, and
tell the recipient how to opt out of future email.

The values come from `config/policies.yaml` (`outbound_email`): the sender company, the postal
address, and the unsubscribe line. A draft carries the sender when it names the company; the
address when it holds the address (whitespace, case and line breaks ignored, or every
comma-separated part of it); the opt-out when it holds the configured line or any sentence about
unsubscribing / opting out. The fix appends the missing elements as a footer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guards.text import normalise_space

_GREETING = re.compile(
    r"^\s*(?:subject\s*:.*\n+\s*)?(?:hi|hello|hey|dear|good\s+(?:morning|afternoon))\b[^\n]{0,60}[,!:]?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_SIGN_OFF = re.compile(
    r"^\s*(?:best(?:\s+regards)?|kind\s+regards|warm\s+regards|regards|sincerely|thanks|thank\s+you|cheers|"
    r"all\s+the\s+best|looking\s+forward[^\n]*)[,!.]?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_SUBJECT = re.compile(r"^\s*subject\s*:", re.IGNORECASE | re.MULTILINE)
_OPT_OUT = re.compile(
    r"\b(?:unsubscribe|opt[\s-]?out|stop\s+receiving|remove\s+you\s+from\s+(?:our|this)\s+list)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class EmailPolicy:
    """The sender identity, postal address and opt-out line every outbound email must carry."""

    sender_company: str
    postal_address: str
    unsubscribe_line: str


def looks_like_email(text: str) -> bool:
    """A draft email: a "Subject:" line, or a greeting line together with a sign-off line."""
    return bool(_SUBJECT.search(text)) or (bool(_GREETING.search(text)) and bool(_SIGN_OFF.search(text)))


def missing_elements(text: str, policy: EmailPolicy) -> list[str]:
    """The CAN-SPAM elements `text` lacks: "sender identity", "postal address", "unsubscribe line"."""
    flat = normalise_space(text)
    missing: list[str] = []
    if normalise_space(policy.sender_company) not in flat:
        missing.append("sender identity")
    address = normalise_space(policy.postal_address)
    parts = [normalise_space(p) for p in policy.postal_address.split(",") if p.strip()]
    if address not in flat and not all(p in flat for p in parts):
        missing.append("postal address")
    if normalise_space(policy.unsubscribe_line) not in flat and not _OPT_OUT.search(text):
        missing.append("unsubscribe line")
    return missing


def add_footer(text: str, policy: EmailPolicy, missing: list[str]) -> str:
    """`text` with a footer holding the missing elements (in the order sender, address, opt-out)."""
    lines: list[str] = []
    if "sender identity" in missing:
        lines.append(policy.sender_company)
    if "postal address" in missing:
        lines.append(policy.postal_address)
    if "unsubscribe line" in missing:
        lines.append(policy.unsubscribe_line)
    if not lines:
        return text
    return text.rstrip() + "\n\n--\n" + "\n".join(lines) + "\n"
