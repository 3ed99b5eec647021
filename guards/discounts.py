"""Discounts granted or offered in a reply, told apart from discounts merely mentioned.

A figure is a discount when it is written as one: "25% off", "a 25% discount", "25 percent
discount", "discount of 25%", "reduce the price by 25%", "25% below list", or any percentage in a
sentence about a discount that is not a rate ("win rate of 63%"). With the deal's list price,
"$1,000 off" counts as its percentage.

Whether the reply grants it is read from the words around it, nearest first, inside its clause:

- an offer verb ("offer", "give", "we can do", "you'll get", "at") grants it, unless negated
  just before ("we can't offer 60%");
- a request word ("they asked for", "wants", "requested", "their 60% request") or a comparison
  ("instead of", "rather than", "more than") makes it a mention; so does a refusal after it
  ("60% is not possible", "60% would need VP approval", "60% exceeds our policy");
- a mention becomes a grant when the reply then accepts it ("Cancity asked for 60% off. We can
  do that.");
- a bare discount with no cue ("GTX Pro at 25% off for Cancity") is an offer.

`find_discounts` returns every figure with that reading; `cap_discounts` rewrites granted figures
above the maximum to the maximum when that is safe: every other figure of the sentence comes from
the facts (a list price), since capping the percentage would leave a price or a saving worked out
from it wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from guards.numbers import NumberMention, extract_numbers
from guards.text import clause_bounds, enclosing, sentence_spans

_PCT = r"(?P<pct>\d{1,3}(?:\.\d+)?)\s?(?:%|percent\b|per\s?cent\b)"
_AFTER = (
    r"\s*(?:-\s*)?(?:off\b|discount|reduction|markdown|rebate|price\s+(?:cut|reduction|break)|"
    r"below\s+(?:the\s+)?list|lower\s+than\s+list|cheaper|under\s+list)"
)
_BEFORE = (
    r"(?:discount|reduction|markdown|rebate|price\s+(?:cut|reduction|break)|reduce\s+(?:the\s+|our\s+|"
    r"your\s+)?(?:price|pricing|cost|quote|invoice)s?|cut\s+(?:the\s+)?price|lower\s+(?:the\s+)?price|"
    r"knock|take|slash|discount\s+(?:it|this|that|the\s+\w+))"
    r"\s+(?:of|at|to|by|around|about|up\s+to|at\s+most|worth|down\s+by|off\s+by)?\s*"
    r"(?:up\s+to\s+|about\s+|around\s+|roughly\s+|an?\s+)?"
)
DISCOUNT_AFTER = re.compile(_PCT + _AFTER, re.IGNORECASE)
DISCOUNT_BEFORE = re.compile(_BEFORE + _PCT, re.IGNORECASE)
ANY_PCT = re.compile(r"(?<![\w.])" + _PCT, re.IGNORECASE)
DOLLAR_OFF = re.compile(
    r"(?:\$\s?(?P<a1>\d[\d,]*(?:\.\d+)?)\s*(?:off\b|discount)|discount\s+of\s+\$\s?(?P<a2>\d[\d,]*(?:\.\d+)?))",
    re.IGNORECASE,
)
_DISCOUNT_WORD = re.compile(
    r"\b(?:discount\w*|off\b|markdown|rebate|price\s+(?:cut|reduction|break)|reduc\w+)", re.IGNORECASE
)
_RATE_WORDS = {
    "rate",
    "margin",
    "margins",
    "growth",
    "probability",
    "chance",
    "conversion",
    "share",
    "uptime",
    "increase",
    "decrease",
    "grew",
    "grown",
    "win",
    "close",
    "likelihood",
    "confidence",
    "quota",
    "attainment",
    "commission",
    "tax",
    "vat",
    "interest",
    "budget",
    "deposit",
    "upfront",
}

GRANT = {
    "offer",
    "offers",
    "offering",
    "offered",
    "give",
    "giving",
    "gives",
    "grant",
    "granting",
    "provide",
    "providing",
    "extend",
    "extending",
    "apply",
    "applying",
    "approve",
    "approving",
    "include",
    "including",
    "honor",
    "honour",
    "accept",
    "agree",
    "agreed",
    "propose",
    "proposing",
    "counter",
    "countered",
    "go",
    "do",
    "at",
    "get",
    "gets",
    "getting",
    "receive",
    "allow",
    "allowing",
    "authorize",
    "authorise",
    "match",
    "matching",
    "meet",
    "settle",
    "for",
    "with",
    "is",
    "be",
    "quote",
    "quoting",
    "price",
    "discount",
    "reduce",
    "knock",
    "take",
    "slash",
    "cut",
    "lower",
}
MENTION = {
    "asked",
    "asks",
    "asking",
    "ask",
    "request",
    "requested",
    "requests",
    "requesting",
    "want",
    "wants",
    "wanted",
    "wanting",
    "demand",
    "demanded",
    "demands",
    "demanding",
    "expects",
    "expected",
    "expecting",
    "hoping",
    "hope",
    "hopes",
    "seeking",
    "seeks",
    "pushing",
    "pushed",
    "insisting",
    "insisted",
    "insists",
    "floated",
    "their",
    "competitor",
    "competitor's",
    "they",
    "he",
    "she",
    "mentioned",
    "quoted",
    "received",
    "after",
}
COMPARE = {
    "instead",
    "rather",
    "than",
    "versus",
    "vs",
    "compared",
    "beyond",
    "above",
    "over",
    "exceeds",
    "exceed",
    "exceeding",
    "exceeded",
}
NEGATION = {
    "not",
    "no",
    "never",
    "cannot",
    "can't",
    "cant",
    "won't",
    "wont",
    "unable",
    "don't",
    "doesn't",
    "isn't",
    "aren't",
    "wouldn't",
    "shouldn't",
    "couldn't",
    "refuse",
    "decline",
    "declined",
    "reject",
    "rejected",
    "without",
    "nor",
    "avoid",
}
_STOP = {"but", "however", "although", "though", "while", "whereas", "yet"}

_REFUSED_AFTER = re.compile(
    r"^[^.;!?\n]{0,30}?\b(?:is|are|was|would\s+be|'s)?\s*(?:not\s+(?:possible|allowed|something|"
    r"approved|an\s+option|feasible|within)|n't\s+(?:possible|allowed|something|an\s+option|feasible)|"
    r"impossible|too\s+(?:high|steep|deep|much|big|large)|out\s+of\s+the\s+question|off\s+the\s+table|"
    r"exceeds?|exceeding|above|beyond|over\s+(?:our|the)|outside|against\s+(?:our\s+)?policy|"
    r"violates?|(?:would\s+)?(?:need|needs|require|requires)\s+(?:a\s+)?(?:\w+\s+)?(?:approval|sign-off|"
    r"exception))",
    re.IGNORECASE,
)
_REPORTED_AFTER = re.compile(
    r"^\s*(?:discount\s+|off\s+)?(?:that\s+|which\s+)?(?:they|he|she|the\s+(?:customer|buyer|client|"
    r"prospect)|[A-Z][\w&-]*)\s+(?:asked|requested|wanted|want|wants|demanded|is\s+asking|are\s+asking|"
    r"proposed|floated|mentioned)\b"
)
_ACCEPT = re.compile(
    r"\b(?:(?:we|i)\s*(?:can|could|will|'ll|would|are\s+happy\s+to|am\s+happy\s+to|are\s+able\s+to)?\s*"
    r"(?:do|honou?r|accept|approve|agree\s+to|grant|match|meet|give\s+(?:them|you)|offer)\s+"
    r"(?:that|it|this|them|their\s+request|the\s+request|the\s+full)\b|(?:is|has\s+been)\s+(?:approved|"
    r"granted|accepted)|let'?s\s+do\s+(?:it|that)|that\s+works|go\s+ahead\b)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z']+|[,;:()]")


@dataclass(frozen=True, slots=True)
class DiscountMention:
    """A discount figure in a text: percent, offsets of the figure, and whether it is granted."""

    percent: float
    start: int  # offsets of the number itself (what a cap rewrites)
    end: int
    granted: bool
    reason: str


#: Negations that turn the verb after them around ("can't offer", "never give").
_HARD_NEGATION = NEGATION - {"refuse", "decline", "declined", "reject", "rejected", "without", "nor", "avoid"}


def _negated(toks: list[str], i: int) -> bool:
    """True if the grant verb at `toks[i]` is negated: "can't offer", "unable to give", "refuse to
    offer", "avoid offering" (but not "declined and offered", a refusal of something else)."""
    for k in range(max(0, i - 3), i):
        x = toks[k]
        if x in _HARD_NEGATION or x.endswith("n't"):
            return True
        if x in NEGATION and (k == i - 1 or (k == i - 2 and toks[k + 1] == "to")):
            return True
    return False


def _scan_before(text: str, s_lo: int, pos: int) -> str | None:
    """'grant' | 'mention' | 'refused' | None from the nearest cue word before `pos`."""
    toks = _WORD.findall(text[s_lo:pos].lower().replace("\u2019", "'"))
    for seen, i in enumerate(range(len(toks) - 1, -1, -1)):
        w = toks[i]
        if w in {",", ";", ":", "(", ")"} or w in _STOP or seen >= 10:
            return None
        if w in COMPARE:
            return "mention"
        if w in MENTION:
            if w == "their":  # "agree to their 50% request" grants it; "their 50% request" alone does not
                for x in toks[max(0, i - 3) : i]:
                    if x in GRANT - {"for", "with", "is", "be", "at", "price", "discount"}:
                        return "grant"
            return "mention"
        if w in NEGATION:
            return "refused"
        if w in GRANT:
            if _negated(toks, i):
                return "refused"
            # "the 60% we were asked for": keep scanning only for the "for"/"with"/"is" fillers
            if w in {"for", "with", "is", "be", "at"}:
                rest = toks[max(0, i - 4) : i]
                if any(x in MENTION for x in rest):
                    return "mention"
            return "grant"
    return None


def find_discounts(text: str, list_price: float | None = None) -> list[DiscountMention]:
    """Every discount figure in `text` with whether the text grants it (module docstring)."""
    sentences = sentence_spans(text)
    figures: dict[tuple[int, int], float] = {}
    for pat in (DISCOUNT_AFTER, DISCOUNT_BEFORE):
        for m in pat.finditer(text):
            figures[m.span("pct")] = float(m.group("pct"))
    for m in ANY_PCT.finditer(text):
        span = m.span("pct")
        if span in figures:
            continue
        s, e = enclosing(sentences, m.start())
        prev = max((a for a, b in sentences if b <= s), default=s)
        # a discount talked about in this sentence or the one before ("They want 60% off. We
        # can't do that, but 40% is possible.")
        if not _DISCOUNT_WORD.search(text, prev, e):
            continue
        lo, _hi = clause_bounds(text, s, e, m.start())
        before = re.findall(r"[a-z]+", text[lo : m.start()].lower())[-6:]
        after = text[m.end() : m.end() + 12].lower()
        if any(w in _RATE_WORDS for w in before) or re.match(r"\s*(?:of|win|close|margin|growth)\b", after):
            continue
        figures[span] = float(m.group("pct"))
    if list_price and list_price > 0:
        for m in DOLLAR_OFF.finditer(text):
            key = "a1" if m.group("a1") else "a2"
            amount = float(m.group(key).replace(",", ""))
            figures[m.span(key)] = round(amount / list_price * 100, 2)

    out: list[DiscountMention] = []
    for (fs, fe), pct in sorted(figures.items()):
        s, e = enclosing(sentences, fs)
        cue = _scan_before(text, s, fs)
        tail = text[fe:e]
        tail_after_unit = re.sub(r"^\s*(?:%|percent|per\s?cent)", "", tail, flags=re.IGNORECASE)
        reason = "offered"
        granted = True
        if cue == "grant":
            reason = "offered"
        elif cue in {"mention", "refused"}:
            granted, reason = False, "quoted as a request" if cue == "mention" else "refused"
        if granted and cue != "grant" and _REPORTED_AFTER.match(tail_after_unit):
            granted, reason = False, "quoted as a request"
        if granted and _REFUSED_AFTER.match(tail_after_unit):
            granted, reason = False, "refused"
        if not granted and reason == "quoted as a request":
            # "Cancity asked for 60% off. We can do that." accepts the request.
            nxt = next(((a, b) for a, b in sentences if a >= e), None)
            follow = text[fe:e] + " " + (text[nxt[0] : nxt[1]] if nxt else "")
            for am in _ACCEPT.finditer(follow):
                pre = re.findall(r"[a-z']+", follow[: am.start()].lower())[-3:]
                if not any(x in _HARD_NEGATION or x.endswith("n't") for x in pre) and not re.search(
                    r"n't|\bnot\b|\bnever\b|cannot", am.group(0), re.IGNORECASE
                ):
                    granted, reason = True, "request accepted"
                    break
        out.append(DiscountMention(pct, fs, fe, granted, reason))
    return out


def over_limit(mentions: list[DiscountMention], max_percent: float) -> list[DiscountMention]:
    """The granted discounts above `max_percent`."""
    return [m for m in mentions if m.granted and m.percent > max_percent + 1e-9]


def cap_discounts(
    text: str,
    mentions: list[DiscountMention],
    max_percent: float,
    grounded: Callable[[NumberMention], bool] | None = None,
) -> str | None:
    """`text` with each granted discount above `max_percent` rewritten to `max_percent`, or None
    when that is not safe: another figure shares the sentence and is not `grounded` (a price or a
    saving worked out from the discount would be left wrong; a list price from the facts is fine),
    or the reply accepts a customer's request in words that a number swap cannot fix."""
    bad = over_limit(mentions, max_percent)
    if not bad:
        return text
    sentences = sentence_spans(text)
    discount_spans = [(m.start, m.end) for m in mentions]
    for m in bad:
        if m.reason == "request accepted":
            return None
        s, e = enclosing(sentences, m.start)
        sentence = text[s:e]
        others = extract_numbers(sentence, ignore=[(a - s, b - s) for a, b in discount_spans if s <= a < e])
        if any(grounded is None or not grounded(n) for n in others):
            return None
    cap = f"{max_percent:g}"
    out = text
    for m in sorted(bad, key=lambda x: x.start, reverse=True):
        out = out[: m.start] + cap + out[m.end :]
    return out
