"""Lead qualification (BANT) and the lead score of a described lead, computed in Python.

The model judges the text of a lead (`BantAssessment`), the rules below catch the explicit
signals it may miss (a "VP" has authority, "no budget until next year" is a no), and the score is
arithmetic on both plus the CRM fit, so the same lead always gets the same score and every point
has a stated reason.

Lead score (0-100) of a described lead = BANT (up to 80) + fit (up to 20):
- each of budget, authority, need, timeline: yes 20, unknown 8, no 0 (BANT, IBM's qualification
  framework: Budget, Authority, Need, Timeline);
- fit: the account already bought from us (won deals) +10; a large organisation (>= 1,000
  employees, from the CRM or the text) +5; an open deal with the account +5.

Open deals ranked as leads are scored from the CRM by `tools.deal_leads`.
"""

from __future__ import annotations

import re
from typing import Any

from crews.discovery.models import BantAssessment, LeadScore

__all__ = ["bant_rules", "lead_score", "merge_bant"]

CRITERIA = ("budget", "authority", "need", "timeline")
POINTS = {"yes": 20, "unknown": 8, "no": 0}


def _rx(p: str) -> re.Pattern[str]:
    return re.compile(p, re.I)


RULES: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    "budget": [
        (
            "no",
            _rx(
                r"\b(no budget|without (a )?budget|budget (is )?(frozen|cut|not (yet )?approved)|"
                r"can'?t afford|no money)\b"
            ),
        ),
        (
            "yes",
            _rx(
                r"\b(budget (is |was |has been )?(approved|allocated|set aside|confirmed|"
                r"available)|has (a |the )?budget|"
                r"funded|funding (approved|secured)|\$\s?\d[\d,]*k?\s*budget|budget of)\b"
            ),
        ),
    ],
    "authority": [
        (
            "no",
            _rx(r"\b(intern|no authority|not the decision maker|needs? (approval|sign-?off) from|junior)\b"),
        ),
        (
            "yes",
            _rx(
                r"\b(ceo|cto|cfo|coo|cio|cmo|chief|vp|vice president|president|owner|founder|"
                r"head of|director|"
                r"decision maker|partner|managing director|general manager)\b"
            ),
        ),
    ],
    "need": [
        (
            "no",
            _rx(r"\b(no (need|interest|pain)|not interested|happy with (their|the) current|just browsing)\b"),
        ),
        (
            "yes",
            _rx(
                r"\b(asked (about|for) (pricing|a quote|a demo|prices?)|requested (a )?(demo|quote|"
                r"pricing|proposal)|"
                r"needs?|looking for|pain|struggl\w*|problem|replac\w*|evaluating|interested in|wants?)\b"
            ),
        ),
    ],
    "timeline": [
        (
            "no",
            _rx(
                r"\b(no timeline|not (until|before) next year|next year at the earliest|someday|no rush|"
                r"until next year)\b"
            ),
        ),
        (
            "yes",
            _rx(
                r"\b(this (week|month|quarter)|next (week|month|quarter)|by (q[1-4]|the end of|"
                r"end of)|in q[1-4]|"
                r"within \d+ (days|weeks|months)|asap|urgent\w*|deadline|before (january|february|"
                r"march|april|may|"
                r"june|july|august|september|october|november|december)|\bq[1-4]\b)\b"
            ),
        ),
    ],
}


def bant_rules(text: str) -> dict[str, tuple[str, str]]:
    """Explicit BANT signals in `text`: criterion -> (status, the words that show it)."""
    found: dict[str, tuple[str, str]] = {}
    for criterion, rules in RULES.items():
        for status, rx in rules:
            m = rx.search(text)
            if m:
                found[criterion] = (status, m.group(0))
                break
    return found


def merge_bant(llm: BantAssessment | None, text: str) -> BantAssessment:
    """The model's judgement with the explicit signals of the text taking precedence (a rule
    match is evidence quoted from the text; the model's "yes" without one is kept)."""
    merged = (llm or BantAssessment()).model_copy()
    for criterion, (status, words) in bant_rules(text).items():
        setattr(merged, criterion, status)
        setattr(merged, f"{criterion}_evidence", words)
    return merged


_EMPLOYEES = _rx(r"\b(\d[\d,]*)\s*(k\b|thousand\b)?\s*(employees|staff|people|headcount)\b")


def lead_score(bant: BantAssessment, text: str, account: dict[str, Any] | None) -> LeadScore:
    """The score of a described lead (formula in the module docstring). `account`: its CRM
    facts ({"name", "employees", "won_deals", "open_deals"}) when the lead's account is known."""
    score = 0
    reasons = []
    for c in CRITERIA:
        status = getattr(bant, c)
        evidence = getattr(bant, f"{c}_evidence")
        score += POINTS[status]
        reasons.append(
            f"{c.capitalize()}: {status} (+{POINTS[status]})" + (f', "{evidence}"' if evidence else "")
        )
    employees = account.get("employees") if account else None
    if employees is None:
        m = _EMPLOYEES.search(text)
        if m:
            employees = int(m.group(1).replace(",", "")) * (1000 if m.group(2) else 1)
    if account and account.get("won_deals"):
        score += 10
        reasons.append(
            f"Fit: {account['name']} already bought from us ({account['won_deals']} won deals) (+10)"
        )
    if employees is not None and employees >= 1000:
        score += 5
        reasons.append(f"Fit: large organisation ({employees:,} employees) (+5)")
    if account and account.get("open_deals"):
        score += 5
        reasons.append(f"Fit: an open deal with {account['name']} already (+5)")
    return LeadScore(score=min(100, score), reasons=reasons)
