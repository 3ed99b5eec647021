"""Tone and safety of a reply: profanity, insults, and commitments the rep did not make.

- profanity: a word list (with common inflections); fixable by masking ("f***").
- insults: slurs on intelligence or worth. Strong ones ("idiot", "moron") anywhere; milder ones
  ("clueless", "incompetent", "useless") only aimed at someone ("the buyer is clueless", "you are
  useless"), so "a useless feature" is not an insult. Not fixable: the sentence must be rewritten.
- commitments: promises a crew may not make on the rep's behalf: guarantees ("guaranteed",
  "we guarantee"), explicit promises ("we promise", "you have my word"), outcome certainty
  ("100% uptime", "risk-free", "you will definitely save"), price promises ("lock in this price",
  "the price will never increase", "price freeze") and legal promises ("legally binding",
  "we accept full liability", "we will indemnify", "full refund", "money-back"). Negated or
  reported uses are not commitments: "we can't guarantee delivery dates", "no price lock is
  possible", "they asked whether we could guarantee uptime", questions. Not fixable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guards.text import clause_bounds, enclosing, sentence_spans, words_before

PROFANITY = re.compile(
    r"\b(?:f+u+c+k+\w*|motherf\w+|sh[i1]t+(?:ty|head|s|ting)?|bullsh[i1]t\w*|horsesh[i1]t|"
    r"damn(?:ed|it)?|goddamn\w*|crap(?:py)?|bastards?|bitch(?:es|y|ing)?|ass(?:hole|holes|hat)|"
    r"dick(?:head)?s?|piss(?:ed|ing)?(?:\s+off)?|wank\w*|bollocks|twat|cunt|wtf|stfu|fml)\b",
    re.IGNORECASE,
)
INSULT_STRONG = re.compile(
    r"\b(?:idiots?|idiotic|morons?|moronic|imbeciles?|retard(?:ed|s)?|dumbass|numbskull|nitwits?|"
    r"halfwits?|cretins?|scumbags?|losers?)\b",
    re.IGNORECASE,
)
INSULT_AIMED = re.compile(
    r"\b(?:you|you're|they|they're|he|he's|she|she's|the\s+(?:buyer|customer|client|prospect|"
    r"contact|rep|team|manager|cfo|ceo))\s+(?:are|is|were|was|seems?|look|looks|sound|sounds)?\s*"
    r"(?:so\s+|really\s+|totally\s+|completely\s+|just\s+|being\s+|an?\s+)*"
    r"(?:stupid|dumb|clueless|incompetent|useless|pathetic|lazy|ignorant|worthless|dense|"
    r"hopeless|a\s+joke|out\s+of\s+(?:their|his|her)\s+depth)\b",
    re.IGNORECASE,
)
COMMITMENT = re.compile(
    r"\b(?:guarantee[ds]?|guaranteeing|(?:we|i)\s+(?:solemnly\s+)?promise|promise\s+(?:you|that)|"
    r"you\s+have\s+my\s+word|(?:we|i)\s+(?:will\s+)?commit\s+to|100\s?%\s+(?:uptime|satisfaction|"
    r"success|guaranteed|certain|sure|compatible|reliable|safe)|risk[-\s]free|money[-\s]back|"
    r"full\s+refund|(?:will|would)\s+(?:definitely|certainly|surely)\s+(?:save|see|get|double|"
    r"increase|win|close|pay\s+off)|never\s+(?:fail|break|go\s+down)|"
    r"lock(?:ed|ing)?\s+(?:in\s+)?(?:the|this|that|your|today's|current)?\s*(?:price|pricing|rate)s?|"
    r"price[-\s]?(?:lock|freeze|guarantee|protection)|"
    r"(?:price|pricing|rate)s?\s+(?:will|won't|is\s+guaranteed\s+to)\s+(?:never|not)?\s*"
    r"(?:increase|go\s+up|change|rise)|"
    r"no\s+price\s+increases?\s+(?:ever|for\s+life|for\s+\d+\s+years)|"
    r"fixed\s+price\s+(?:for\s+life|forever|for\s+\d+\s+years)|"
    r"legally\s+binding|(?:we|i)\s+(?:will\s+)?(?:accept|assume|take)\s+(?:full\s+|all\s+)?liability|"
    r"(?:we|i)\s+(?:will\s+)?indemnify|hold\s+you\s+harmless|(?:we|i)\s+(?:will\s+)?waive|"
    r"lifetime\s+warranty|free\s+(?:forever|for\s+life))",
    re.IGNORECASE,
)

#: Words before a commitment (same clause) that make it a refusal, a question or reported speech.
_NOT_A_PROMISE = {
    "not",
    "no",
    "never",
    "nobody",
    "none",
    "nothing",
    "cannot",
    "can't",
    "cant",
    "won't",
    "don't",
    "doesn't",
    "didn't",
    "shouldn't",
    "wouldn't",
    "couldn't",
    "unable",
    "avoid",
    "without",
    "nor",
    "neither",
    "asked",
    "asks",
    "asking",
    "wants",
    "wanted",
    "requested",
    "requests",
    "request",
    "whether",
    "if",
    "demanded",
    "demands",
    "expects",
    "expecting",
    "hoping",
    "hopes",
    "mentioned",
    "refuse",
    "decline",
    "declined",
    "beyond",
}


@dataclass(frozen=True, slots=True)
class ToneIssue:
    kind: str  # "profanity" | "insult" | "commitment"
    text: str
    start: int
    end: int


def _is_negated_or_reported(text: str, start: int, end: int, sentences: list[tuple[int, int]]) -> bool:
    s, e = enclosing(sentences, start)
    sentence = text[s:e]
    if sentence.rstrip().endswith("?"):
        return True
    lo, _hi = clause_bounds(text, s, e, start)
    before = words_before(text, start, lo, n=7)
    if any(w in _NOT_A_PROMISE for w in before):
        return True
    # "a price lock is not possible", "guarantees are not something we offer"
    after = text[end:e].lower()[:40]
    return bool(re.match(r"\s*(?:is|are|was|would\s+be)?\s*(?:not|n't|never|impossible|unavailable)", after))


def find_tone_issues(text: str) -> list[ToneIssue]:
    """Profanity, insults and commitments in `text`, in order of position."""
    issues: list[ToneIssue] = []
    for m in PROFANITY.finditer(text):
        issues.append(ToneIssue("profanity", m.group(0), *m.span()))
    for m in INSULT_STRONG.finditer(text):
        issues.append(ToneIssue("insult", m.group(0), *m.span()))
    for m in INSULT_AIMED.finditer(text):
        if not any(i.start <= m.start() < i.end for i in issues):
            issues.append(ToneIssue("insult", m.group(0), *m.span()))
    sentences = sentence_spans(text)
    for m in COMMITMENT.finditer(text):
        if not _is_negated_or_reported(text, m.start(), m.end(), sentences):
            issues.append(ToneIssue("commitment", m.group(0), *m.span()))
    return sorted(issues, key=lambda i: i.start)


def mask_profanity(text: str) -> str:
    """`text` with each profane word masked to its first letter and asterisks ("d***")."""
    return PROFANITY.sub(lambda m: m.group(0)[0] + "*" * (len(m.group(0)) - 1), text)
