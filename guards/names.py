"""Names in a reply checked against the CRM's name index (grounding of entities).

The caller passes the CRM's `crm.names.NameIndex` (the graph reads it through
`tools.names.name_index`, cached per database): accounts, contacts, reps and managers, products,
deal ids, and the vocabulary around them (stage names, sectors, regional offices, countries),
sorted into whole phrases, parts a reply may use alone ("Darcel" for Darcel Schlecht, "Acme" for
Acme Corporation), deal ids and product series. Tests and the eval build one from plain names
with `NameIndex.from_names`.

`unknown_names(text, index)` then looks at capitalised runs of words in the reply. A run that is a
known phrase (or a prefix of one) is fine; so are common English words, acronyms, and words the
rep wrote in the message. What is left is reported when it looks like an entity:

- an unknown capitalised word that is not the first word of a sentence ("deal with Northwind");
- two or more unknown capitalised words together, anywhere ("Northwind Traders has ...");
- a known part glued to a company suffix that makes a new name ("Globex Industries");
- a first name of one person with the last name of another ("Darcel Bicknell");
- an id shaped like a deal id (8 upper-case letters and digits) that the CRM does not have;
- a product series followed by a model the catalogue does not have ("GTX Ultra", "GTK 900").

A single unknown capitalised word opening a sentence is let through: without a dictionary it is as
likely to be an ordinary word ("Historically, ...") as a name. That trade keeps false alarms low;
invented names are nearly always repeated mid-sentence or written in full (two words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from crm.names import DEAL_ID, ORG_WORDS, PHRASE_TOKEN, NameIndex, phrase_tokens
from guards.text import sentence_starts

__all__ = [
    "COMMON_WORDS",
    "DEAL_ID",
    "ENGLISH_WORDS",
    "NameIndex",
    "UnknownName",
    "as_index",
    "unknown_names",
]

_CONNECTORS = {"&", "of", "and", "de", "del", "la", "van", "von", "da", "du", "y"}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Capitalised words common in business replies that are not entity names. Deliberately broad:
#: the cost of a missing word is a false alarm on a sentence-internal capitalised word.
COMMON_WORDS = _words(
    """a about above according account accounts action actions active add added additional
    additionally address after afternoon again against agenda agent agents agree agreement ai all
    also although always am amount an analysis and annual another answer any anyone apply approval
    approve april are area as ask assistant at attach attached august average avg back based basic
    be because before being below benefit benefits best better between both break brief budget
    business but buyer by call calls can cannot case cc central check checklist choose clarify
    client clients close closed closing co-op colleague comment comments competitor competitors
    confirm congratulations consider contact contacts contract contracts cost could count crm
    current currently customer customers daily data date dates day days dead deadline deal deals
    dear december decision delivery demo details did discount discuss discussion do document does
    done draft due during each east email emails end engage engaged engagement engaging ensure
    escalate estimate even every example executive expected explore february feedback figures
    final finally find first focus follow follow-up following for forecast forward friday from
    further general get give go goal goals good great hand handoff happy has have he head hello
    help her here hey hi high highlight highlights his history hope how however i if important in
    include including increase info information insight insights install installation into
    introduction invoice is issue issues it item items its january july june just key kick-off
    kickoff kind kpi last later latest lead leads least let let's like list looking lost low
    main make manager managers march may me medium meet meeting meetings mention metric metrics
    mid monday month monthly months more most move my name need needs negotiate negotiation new
    next no none north not note notes november now number objection objections october of offer
    office on onboarding one only open opportunities opportunity option options or order other
    our out overall overview owner page pending per phase plan planning please point points
    policy possible potential prepare previous price prices pricing primary priorities priority
    pro product products progress project proposal propose prospect prospecting prospects provide
    purchase purchasing q1 q2 q3 q4 qualified qualify quality quarter question questions quick
    quote rate re reach reason reasons recap recent recently recommend recommendation
    recommendations recommended record records reference regards region regional reminder
    reminders renewal report reports request requested required requirements research response
    result results revenue review risk risks role rollout sales saturday schedule second sector
    see segment send senior series service set share she should sincerely since size so some
    south special stage stages start status step steps still subject success suggested summary
    sunday support sure table take target task tasks team thank thanks that the their them then
    there these they third this those thursday through timeline timing tip tips title to today
    tomorrow top total training trend tuesday unfortunately unit units until update updates
    upsell us use value vendor very via vp wants warm was we wednesday week weekly weeks well
    were west what when where which while who why will win with won would yes yesterday you your
    ceo cfo cto coo cio director directors vice president procurement operations finance
    marketing legal engineering it hr admin administrator lead buyer champion sponsor stakeholder
    stakeholders decision-maker gatekeeper user users
    january february march april june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun
    prospecting engaging qualified proposal negotiation won lost closed open
    technology medical retail software entertainment finance marketing telecommunications
    services employment
    usa us uk eu emea apac americas europe asia africa
    linkedin zoom teams slack excel outlook gmail pdf csv faq api sla roi kpi tco nda sow msa rfp
    rfq poc po sku faq eta eod eow asap fyi n/a tbd
    flowstate hardware demo
    here's there's that's it's we're we'll we've i'm i'll i've you're you'll you've they're
    let's don't can't won't isn't aren't didn't doesn't haven't hasn't shouldn't wouldn't
    couldn't
    mr mrs ms dr prof sir madam team all everyone folks
    yours truly cheers best kind warm warmest regards sincerely respectfully thanks
    great excellent good fine ok okay sure absolutely certainly definitely unfortunately
    note notes tip reminder important warning caution alert update fyi ps p.s
    one two three four five six seven eight nine ten
    manual leverage maker makers
    handover hand-off handoff go-live golive wrap-up setup sign-off signoff acceptance configuration
    deployment testing launch pilot integration migration maintenance billing payment payments
    shipping shipment logistics warranty upgrade upgrades hardware success customer-success
    site survey assessment evaluation trial demo demos workshop workshops webinar presentation
    welcome introduction intro agenda minutes appendix background context approach timeline
    milestones deliverables scope budget resources contacts references testimonials case study
    studies benefits features pricing terms conditions faq questions answers conclusion
    """
)


def _load_words() -> frozenset[str]:
    path = Path(__file__).with_name("data") / "english_words.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return frozenset()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


#: About 1,000 frequent English words (guards/data/english_words.txt, from Faker's word list).
ENGLISH_WORDS = _load_words()

#: Common-word endings: an unknown capitalised word ending so is more likely English than a name.
_COMMON_SUFFIX = re.compile(
    r"(?:ing|tion|tions|sion|ment|ments|ness|ly|ed|ful|ous|ive|ance|ence|ship|ities|izes?|ises?|"
    r"ably|ibly|less|ward|wards)$"
)


def _strip_possessive(tok: str) -> tuple[str, bool]:
    for suf in ("'s", "\u2019s", "s'", "s\u2019"):
        if tok.lower().endswith(suf) and len(tok) > 2:
            return (tok[:-2] if suf[0] in "'\u2019" else tok[:-1]), True
    return tok, False


@lru_cache(maxsize=16)
def _cached_index(names: frozenset[str]) -> NameIndex:
    return NameIndex.from_names(names)


def as_index(names: NameIndex | Iterable[str] | None) -> NameIndex:
    """`names` as a NameIndex (plain iterables are indexed once and cached)."""
    if isinstance(names, NameIndex):
        return names
    return _cached_index(frozenset(names or ()))


@dataclass(frozen=True, slots=True)
class UnknownName:
    """A name in the reply the CRM does not know: its text, offsets and why it was flagged."""

    text: str
    start: int
    end: int
    reason: str


def unknown_names(
    text: str,
    index: NameIndex,
    *,
    also_known: Iterable[str] = (),
) -> list[UnknownName]:
    """Entity-like names in `text` that are not in `index` nor in `also_known` (the rep's message,
    the string values of the facts, policy texts). See the module docstring for the rules."""
    extra_tokens: set[str] = set()
    short: list[str] = []
    for item in also_known:
        item_tokens = phrase_tokens(item)
        extra_tokens.update(item_tokens)
        if 0 < len(item_tokens) <= 8:  # long texts (documents, the message) lend words, not names
            short.append(item)
    extra = NameIndex.from_names(short)
    found: list[UnknownName] = []

    # Deal ids.
    known_ids = index.deal_ids | extra.deal_ids
    for m in DEAL_ID.finditer(text):
        if m.group(0) not in known_ids:
            found.append(UnknownName(m.group(0), m.start(), m.end(), "deal id not in the CRM"))

    lower_words = set(re.findall(r"(?<![A-Za-z])[a-z][a-z'\-]+", text))
    starts = sentence_starts(text)
    words = [(m.group(0), m.start(), m.end()) for m in PHRASE_TOKEN.finditer(text)]

    # Capitalised runs (connectors allowed inside, digits allowed after a capitalised word).
    runs: list[list[tuple[str, int, int]]] = []
    cur: list[tuple[str, int, int]] = []
    for i, (tok, s, e) in enumerate(words):
        gap = text[cur[-1][2] : s] if cur else ""
        contiguous = not cur or (len(gap) <= 2 and "\n" not in gap and not re.search(r"[.,;:!?()\"]", gap))
        is_cap = tok[:1].isupper() or (tok[:1].isdigit() and bool(cur) and contiguous)
        is_conn = tok.lower() in _CONNECTORS and bool(cur) and contiguous
        if is_conn:
            nxt = words[i + 1][0] if i + 1 < len(words) else ""
            is_conn = nxt[:1].isupper()
        if (is_cap or is_conn) and contiguous and not DEAL_ID.fullmatch(tok):
            cur.append((tok, s, e))
        else:
            if cur:
                runs.append(cur)
            cur = [(tok, s, e)] if tok[:1].isupper() and not DEAL_ID.fullmatch(tok) else []
    if cur:
        runs.append(cur)

    for run in runs:
        found.extend(_check_run(run, index, extra, extra_tokens, lower_words, starts, text))
    return sorted(found, key=lambda u: u.start)


def _classify(tok: str, index: NameIndex, extra_tokens: set[str], lower_words: set[str]) -> str:
    low = tok.lower()
    if tok.isdigit() or re.fullmatch(r"[\d.,]+", tok):
        return "N"
    if low in ORG_WORDS:
        return "O"
    if low in index.person_parts:
        return "P"
    if low in COMMON_WORDS or low in ENGLISH_WORDS or low in extra_tokens or low in _CONNECTORS:
        return "C"
    if re.fullmatch(r"[A-Z]{2,5}s?", tok) or len(tok) == 1:
        return "C"  # acronyms (CRM, VP, ROI) and initials
    if low in lower_words:
        return "C"  # the reply uses it as an ordinary word elsewhere
    if len(low) >= 6 and _COMMON_SUFFIX.search(low):
        return "S"  # common-word ending: ordinary word unless it sits next to a name-like word
    return "U"


def _check_run(
    run: list[tuple[str, int, int]],
    index: NameIndex,
    extra: NameIndex,
    extra_tokens: set[str],
    lower_words: set[str],
    starts: set[int],
    text: str,
) -> list[UnknownName]:
    words: list[str] = []
    bare: list[str] = []
    poss: list[bool] = []
    for tok, _s, _e in run:
        w, p = _strip_possessive(tok)
        bare.append(w)
        words.append(w.lower())
        poss.append(p)
    n = len(words)
    # Greedy longest match against known phrases (full names or prefixes of them).
    labels: list[str] = [""] * n
    i = 0
    max_len = max(index.max_len, extra.max_len)
    while i < n:
        matched = 0
        for length in range(min(max_len, n - i), 0, -1):
            tup = tuple(words[i : i + length])
            if tup in index.phrases or tup in extra.phrases:
                full = tup in index.full or tup in extra.full
                if length == 1 and not full and words[i] in index.person_parts:
                    break  # a lone first/last name: classified below
                matched = length
                break
        if matched:
            for j in range(i, i + matched):
                labels[j] = "K"
            i += matched
        else:
            labels[i] = _classify(bare[i], index, extra_tokens, lower_words)
            i += 1
    # "Anna Snelling", "Sarah Connolly": a surname with an English ending next to an unknown name.
    for j in range(n):
        if labels[j] == "S":
            near = {labels[k] for k in (j - 1, j + 1) if 0 <= k < n}
            labels[j] = "U" if near & {"U", "P"} else "C"

    out: list[UnknownName] = []

    def flag(a: int, b: int, reason: str) -> None:
        s, e = run[a][1], run[b][2]
        out.append(UnknownName(text[s:e], s, e, reason))

    # Product series followed by a model the catalogue does not have.
    for a in range(n - 1):
        if words[a] in index.series and labels[a] in {"K", "C", "U"}:
            b = a + 1
            if labels[b] in {"N", "U"} or (labels[b] == "C" and words[b] not in COMMON_WORDS):
                longest = max(
                    (ln for ln in range(2, n - a + 1) if tuple(words[a : a + ln]) in index.full),
                    default=0,
                )
                if not longest:
                    flag(a, b, "product not in the catalogue")
                    labels[a] = labels[b] = "X"

    # Maximal segments of non-known, non-common tokens.
    a = 0
    while a < n:
        if labels[a] in {"U", "O", "P"}:
            b = a
            while b + 1 < n and labels[b + 1] in {"U", "O", "P", "N"}:
                b += 1
            seg = labels[a : b + 1]
            prev_k = a > 0 and labels[a - 1] == "K"
            if "U" in seg:
                single_initial = (
                    seg.count("U") == 1
                    and len([x for x in seg if x != "N"]) == 1
                    and run[a][1] in starts
                    and not poss[a]
                    and not prev_k
                )
                if not single_initial:
                    flag(a, b, "name not in the CRM")
            elif "O" in seg and ("P" in seg or (prev_k and not _known_then_suffix(words, labels, a))):
                flag(a - 1 if prev_k else a, b, "company name not in the CRM")
            elif seg.count("P") >= 2:
                flag(a, b, "person not in the CRM")
            a = b + 1
        else:
            a += 1
    return out


def _known_then_suffix(words: list[str], labels: list[str], a: int) -> bool:
    """True for "Cancity Inc": a full known name followed by a legal suffix (not a new name)."""
    return words[a] in {"inc", "incorporated", "corp", "co", "llc", "ltd", "limited", "plc", "gmbh"}
