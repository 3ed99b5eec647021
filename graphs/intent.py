"""Intent routing: which crew answers a message (discovery, closing, delivery, pipeline, nba,
general). Hybrid, so that it holds on the 1.5B local model and on messages it has never seen:

0. **Rules** (`rule_intent`) settle lookups first, without embedding the message or calling the
   LLM (`method="rules"`): a deal figure the query-plan rules read from the message ("how many
   ... won", "win rate", "revenue", "largest deal", "days to close": pipeline) or a fact the CRM
   holds about a named account, rep, manager or sector ("which sector", "who manages",
   "subsidiaries", "accounts in retail": discovery), with the vocabulary of the tools that answer
   them (`tools.query_plan`, `tools.account_facts`), names masked. A message that asks for work
   (write, negotiate, advise, prioritise, deliver, move a deal) or has no sales word is never
   decided here, except a move of a named deal to a named stage (pipeline). Then, once the
   neighbours are known, a request for work that speaks the vocabulary of exactly one crew
   (`work_intent`: delivery, closing or nba) is that crew's when the neighbours rank it first,
   or second without a confident margin for another (also `method="rules"`, no LLM call). On
   the example bank and the intents dev set the rules decide more than half of the messages and
   every one of those right (a test keeps that true).
1. **Nearest neighbours** over a bank of example messages (`config/intents.yaml`), embedded with
   the local embedder (multilingual-e5-small via `crm.embeddings`; both sides with the "query:"
   prefix, the E5 recipe for symmetric similarity), CRM names masked on both sides
   (`mask_names`: the bank marks them in [brackets], the message's come from the resolved
   entities) so that the neighbours match what is asked, not whom it is about. Each intent
   scores the mean cosine of its `k` (3) closest examples. E5 cosines sit in a narrow band
   (about 0.72-0.88), so we trust the ranking only through the *margin* between the best and
   the second-best intent.
2. If that margin is at least `confident_margin` (0.035) the neighbours decide and no LLM is
   called. The value is calibrated on the example bank alone, by leave-one-out (each example
   classified by the others): the largest margin of a wrong answer was 0.029, and all 11 of the
   106 examples at or above 0.035 were right. `leave_one_out()` recomputes it; a test keeps
   "every example above the margin is right" true when the bank changes.
3. Otherwise the LLM is asked, in one short call: fixed instructions and one-line intent
   definitions first (the server caches that prefix), then the 6 nearest examples with their
   intents, then the message; a JSON schema (`llm.json_model`) constrains the answer to
   `{"intent": <one of the six>}` (~7 generated tokens). Its answer is taken when it is one of
   the neighbours' two best intents; otherwise the neighbours' best stands (`method=
   "knn-veto"`). A "general" answer is taken when the message has no sales word and names no
   CRM record (`sales_signal`), and overruled when it has: out-of-scope questions are an open
   class the neighbours cannot model, and the model's strength, but unsure on a sales request
   the model drifts to "general". Why this rule: on the development data (the bank's
   leave-one-out examples below the margin, 95, plus the 101 dev questions) the 1.5B model alone
   was right 63 + 99 times, the neighbours alone 70 + 98, the model limited to their best 2 / 3 /
   4 by the schema 67 + 98 / 68 + 99 / 69 + 99, the top-2 veto 72 + 98, with the "general"
   rule 73 + 98: the model is a tie-breaker between close neighbours, not a judge over them.
4. If the LLM fails (timeout, connection error, invalid JSON) the neighbours' best intent is
   used (`method="knn-fallback"`): a turn is never lost to the router.

A short follow-up ("what about Cassey?", "and his manager?") that the neighbours are unsure of
keeps the previous turn's intent when one is given (`method="follow-up"`), without an LLM call.

Measured with `flowstate eval intents FILE --llm-timeout 60` (embedded Qwen2.5-Coder-1.5B, Maven
data, 2 cores shared with other work): the intents dev set (intents_dev.jsonl) 32/34 (94.1%),
the intents of the CRM questions dev set (crm_questions_dev.jsonl) 67/67, every one by the
rules; messages written for measuring only (tests/graphs/data/intents_holdout*.jsonl) 42/42,
38/42, 34/38 (looked at while developing: four of their messages showed rule mistakes, fixed in
general form) and 36/40 (holdout4: its messages were never looked at). The rules decided 180
of those 263 messages, all right; 62 needed the LLM (before the rules: 31/34, 67/67, 40/42,
38/42, 33/38, 36/40, about 70% of messages with an LLM call). A message the rules or the
neighbours decide takes 25-35 ms (median); one that needs the LLM one call of about 385 prompt
tokens (257 of them the fixed system prompt) and 7 generated.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, Field

from config.files import IntentsFile
from config.settings import CONFIG_DIR
from contracts import INTENTS, Entities, Intent
from llm import Dialect, LLMOutputError, json_model, parse_json
from tools.query_plan import PLAN_METRICS

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from crm.embeddings import Embedder

log = logging.getLogger(__name__)

INTENTS_FILE = CONFIG_DIR / "intents.yaml"

Method = Literal["rules", "knn", "llm", "knn-veto", "knn-fallback", "follow-up", "empty"]


def load_intents(path: Path = INTENTS_FILE) -> IntentsFile:
    """Read and validate the intents file for the router: every intent of `contracts.INTENTS`,
    each example a non-blank text. Raises ValueError naming the problem."""
    with path.open(encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    cfg = IntentsFile.model_validate(raw)
    for name, d in cfg.intents.items():
        bad = [e for e in d.examples if not isinstance(e, str) or not e.strip()]
        if bad:
            raise ValueError(f"{path}: intent {name!r} has non-text examples {bad!r} (quote lines with ':')")
    missing = set(INTENTS) - set(cfg.intents)
    if missing:
        raise ValueError(f"{path} lacks the intents {sorted(missing)}")
    return cfg


class IntentResult(BaseModel):
    """The router's decision.

    - `intent`: one of `contracts.INTENTS`.
    - `confidence`: 0-1, a heuristic for logs and thresholds, not a probability: rules 0.95;
      neighbours alone (margin >= confident_margin) 0.9-1.0; LLM agreeing with the neighbours'
      best 0.85, LLM choosing their second 0.7, vetoed 0.6; fallbacks 0.3-0.6 (scaled by the
      margin).
    - `method`: "rules" (a lookup, `rule_intent`; no `scores`) | "knn" | "llm" | "knn-veto" (the
      LLM's answer was outside the neighbours' best intents) | "knn-fallback" (the LLM failed) |
      "follow-up" | "empty".
    - `llm_calls`: LLM requests made (0 or 1).
    - `scores`: the neighbour score of each intent (mean cosine of its k nearest examples).
    - `error`: why the LLM answer was not used, if it was not.
    - `llm_intent`: what the LLM answered (also when vetoed), for logs and evaluation.
    - `ms`: time spent in the router.
    """

    intent: Intent
    confidence: float = Field(ge=0, le=1)
    method: Method
    llm_calls: int = 0
    scores: dict[str, float] = {}
    error: str | None = None
    llm_intent: str | None = None
    ms: float = 0.0


class _LLMAnswer(BaseModel):
    intent: Intent


@dataclass(frozen=True)
class Neighbours:
    """The nearest-neighbour view of one message: per-intent `scores`, intents `ranked` best
    first, `margin` between the first two, and the closest examples as (text, intent, cosine)."""

    scores: dict[str, float]
    ranked: list[Intent]
    margin: float
    nearest: list[tuple[str, Intent, float]]


_ID_LIKE = re.compile(r"(?<![\w-])(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9-]{6,}(?![\w-])")
_BRACKETED = re.compile(r"\[([^\]]+)\]")
#: Entity kinds whose names are masked (offices, sectors and stages are words that carry intent).
_MASKED_KINDS = frozenset({"account", "contact", "deal", "rep", "manager", "product"})
PLACEHOLDER = "X"


def mask_names(text: str, mentions: Iterable[str] = ()) -> str:
    """`text` with CRM names replaced by "X", so that neighbours are found by what is asked, not
    about whom: "What industry is Zoomit in?" (discovery) and "How much did Zoomit spend?"
    (pipeline) must not look alike because both name Zoomit.

    Masked: every `mentions` string (the words of the entities `graphs.entities` resolved, any
    case) and opportunity-id-like tokens mixing letters and digits ("1C1I7A6R", 6+ characters).
    Other capitalised words stay: "the United States" or "Spanish" are not CRM records, and
    masking them made general questions look like CRM ones.
    """
    out = text
    for mention in sorted({m.strip() for m in mentions if m and m.strip()}, key=len, reverse=True):
        out = re.sub(rf"(?<!\w){re.escape(mention)}(?!\w)", PLACEHOLDER, out, flags=re.IGNORECASE)
    return _ID_LIKE.sub(PLACEHOLDER, out)


def bank_texts(example: str) -> tuple[str, str]:
    """(text shown to the LLM, text embedded) of a bank example whose names are in [brackets]:
    "What industry is [Zoomit] in?" -> ("What industry is Zoomit in?", "What industry is X in?")."""
    return _BRACKETED.sub(r"\1", example).strip(), _BRACKETED.sub(PLACEHOLDER, example).strip()


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words of sales work (English): a message with one of them, or naming a CRM record, is not
#: "general" (greetings, help, out of scope), whatever the LLM says.
_SALES_WORDS = _word_set(
    """deal deals account accounts customer customers client clients lead leads prospect prospects
    pipeline quote quotes proposal proposals discount discounts price prices pricing contract
    contracts rep reps agent agents manager managers team teams office offices region regional
    sector sectors industry email emails e-mail follow follow-up followup call calls meeting
    meetings demo trial buyer buyers cfo cto ceo vp renewal order orders units product products bant
    budget signed signature objection objections stage stages action actions focus priority
    priorities crm contact contacts employees staff headcount parent cycle close closed closing
    terms payment task tasks owner owners deadline deadlines project rollout deployment onboarding
    kickoff go-live handover revenue sales sell selling sold upsell cross-sell forecast quota win"""
)
_SALES_STEMS = (
    "opportunit", "negotiat", "onboard", "implement", "deploy", "install", "deliver", "milestone",
    "purchas", "procure", "subsidiar", "prioriti", "engag", "prospect", "stall", "competit", "renew",
    "qualif",
)  # fmt: skip
_WORDS = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def sales_signal(message: str, mentions: Iterable[str] = ()) -> bool:
    """Whether `message` is about sales work: it names a CRM record (`mentions`) or uses a word
    of `_SALES_WORDS` / `_SALES_STEMS`. Used to overrule a "general" answer of the LLM."""
    if any(m and m.strip() for m in mentions):
        return True
    return any(t in _SALES_WORDS or t.startswith(_SALES_STEMS) for t in _WORDS.findall(message.lower()))


def entity_mentions(entities: Entities | None) -> list[str]:
    """The words of `entities` worth masking (names of accounts, reps, products, deals...)."""
    if entities is None:
        return []
    return [e.mention or e.key for e in entities.items if e.kind in _MASKED_KINDS]


# --- rules: the messages whose intent is settled by what they ask --------------------------
# A question for a figure the query plan computes ("how many", "win rate", "revenue", "largest
# deal", "days to close", ...) or for a fact the CRM holds about a named account, rep, manager or
# sector ("which sector", "who manages", "subsidiaries", "how many accounts in ...") is a lookup:
# pipeline or discovery, whatever its wording. The vocabulary is that of the tools which answer
# them (`tools.query_plan`, `tools.account_facts`), so a message the rules route is one the crew
# can answer without a model. A message asking for work instead (write, advise, deliver) is never
# decided here, even with a figure word in it: the neighbours and the LLM decide it.

#: Words of a request for work rather than a lookup: drafting or negotiating (closing), advice
#: and priorities (nba), work after the sale (delivery), actions on records.
_WORK_REQUEST = re.compile(
    r"\b(write|draft\w*|compose|prepare|create|send|reply|respond|rewrite|e-?mails?|messages?|letter|"
    r"proposals?|quotes?|negotiat\w*|discounts?|objections?|pitch|talking points|convince|persuade|"
    r"should|shall|recommend\w*|suggest\w*|advi[cs]e|next (step|move|action)s?|focus|prioriti[sz]\w*|"
    r"upsell\w*|cross-sell\w*|(sell|buy|spend|order) more|room (to|for)|potential|grow|improve|increase|"
    r"boost|revive|rescue|best way|help me|plan\w*|"
    r"how (do|can|could|should|would|to) (i|we)|what (do|would|could|can) (i|we|you) (do|tell|say)|"
    r"onboard\w*|implement\w*|roll-?outs?|deploy\w*|install\w*|deliver\w*|milestones?|kick-?off|"
    r"go-live|hand ?over|projects?|tasks?|training|schedul\w*|remind\w*|follow[- ]?ups?|call|meet\w*|"
    r"move|mark|change|update|set|log|add|delete|remove|assign)\b",
    re.I,
)
#: Plan metrics that are figures (a list of deals or an overview may be asked for other reasons:
#: "which of my deals need attention" is a request for advice).
_FIGURE_METRICS = frozenset(PLAN_METRICS) - {"deal_list", "summary"}
_DEAL_NOUN = re.compile(r"\b(deals?|opportunit(y|ies)|wins|sales)\b", re.I)
#: Deals asked for by their absence ("accounts without any deals") describe prospects, not a figure.
_NO_DEALS = re.compile(r"(\b(no|not|never|without|zero)|n't)\b.{0,25}\b(deals?|opportunit\w*)\b", re.I)
#: An account's own revenue (an attribute: "annual revenue", "how much does X make"); a bare
#: "revenue" with an account is what we won from it (pipeline).
_ACCOUNT_REVENUE = re.compile(
    r"\b(annual|yearly|per year|a year|turnover)\b|\bhow much (does|do) <account_ent> (make|earn)\b", re.I
)


def _fact_question(text: str, entities: Entities) -> bool:
    """Whether the masked `text` asks `tools.account_facts` for a fact about a named account, rep,
    manager or sector, or about the product catalog or the team directory
    (`tools.directory_facts`): its own triggers, in the order `answer_fact` tries them."""
    from tools import account_facts as af
    from tools.directory_facts import is_directory_question

    two_sectors = len(entities.of("sector")) >= 2 and af.ACCOUNT_WORD.search(text)
    if is_directory_question(text, entities) or (
        (af.SECTOR_RANK.search(text) or two_sectors) and not af.DEALS_WORDS.search(text)
    ):
        return True  # the catalog, the team directory, sectors ranked or compared by their accounts
    account, rep = entities.first("account"), entities.first("rep")
    no_deal_words = not af.DEALS_WORDS.search(text)
    if (
        rep is not None
        and no_deal_words
        and (af.MANAGER.search(text) or af.OFFICE.search(text) or af.TEAM.search(text))
    ):
        return True
    manager_words = af.TEAM.search(text) or af.MANAGER.search(text) or re.search(r"\bwho\b|\breps?\b", text)
    if entities.first("manager") is not None and rep is None and no_deal_words and manager_words:
        return True
    if account is not None and no_deal_words:
        facts = (
            af.SUBSIDIARIES,
            af.PARENT,
            af.SECTOR,
            af.CONTACTS,
            af.SIZE,
            _ACCOUNT_REVENUE,
            af.FOUNDED,
            af.LOCATION,
        )
        if any(rx.search(text) for rx in facts):
            return True
    if account is None and rep is None and (af.EMPLOYEES_OVER.search(text) or af.NOT_SOLD.search(text)):
        return True
    return bool(
        entities.first("sector") is not None
        and account is None
        and af.ACCOUNT_WORD.search(text)
        and no_deal_words
        and (af.COUNTING.search(text) or af.LISTING.search(text))
    )


_DRAFTING = re.compile(
    r"\b(write|draft\w*|compose|prepare|send|reply|respond|e-?mail|message|call|remind)\b", re.I
)


def _is_stage_move(message: str, entities: Entities) -> bool:
    """A request to move a named deal (or an account's deal) to a named stage, as the pipeline
    crew reads one (`crews.pipeline.detect_stage_move`), with no other work asked for ("write to
    Acme to move them to negotiation" is not a move)."""
    from crews.pipeline.flow import detect_stage_move

    if not entities.of("stage"):
        return False
    named = entities.first("deal") or entities.first("account")
    if not named and not (_MOVE_FIRST.match(message) and _A_DEAL.search(message)):
        return False  # "move the deal to negotiation" names none, but asks a move: the crew asks which
    # the stage's own name is no other work ("negotiation" is the closing crew's word otherwise)
    rest = message
    for stage in entities.of("stage"):
        rest = re.sub(re.escape(stage.mention or stage.key), " ", rest, flags=re.I)
    if _DRAFTING.search(message) or work_intent(rest, entities) is not None:
        return False
    return detect_stage_move(message, entities) is not None


#: A message that starts by asking to move something ("Move the deal to negotiation").
_MOVE_FIRST = re.compile(
    r"^\s*(?:(?:ok|okay|please|now|so)[\s,]+)*(?:can you |could you |please )?"
    r"(move|advance|push|progress|promote|bump|shift|mark|set|put|update|change)\b",
    re.I,
)
_A_DEAL = re.compile(r"\b(deal|opportunity|it|one)\b", re.I)


#: A question asking for data (not a request for work): how many / which / what / list ...
_RECORD_QUESTION = re.compile(
    r"(how (many|much)|which|what|who|list|show|name|give me|count|find|are there|is there|do we have)\b",
    re.I,
)


#: Topics outside sales work (sport, weather, trivia, entertainment, cooking): with no sales word
#: and no CRM record named, such a question is "general" (out of scope), decided by rule.
_OFF_TOPIC = re.compile(
    r"\b(football|soccer|basketball|baseball|cricket|tennis|world cup|olympics?|super bowl|champions league|"
    r"weather|temperature|rain|recipe|cook\w*|movies?|films?|songs?|music|celebrit\w*|capital of|"
    r"president of|prime minister|planets?|moons?|jupiter|mars|horoscope|lottery)\b",
    re.I,
)
#: A rep asking how to use their time: the next-best-action crew's question.
_PLAN_MY_TIME = re.compile(
    r"\b((most valuable|best|most useful) thing (i|we) (could|can|should) do|best use of (my|our) time|"
    r"what('s| is) (my|our) plan for (today|tomorrow|this|the|next)|"
    r"how should (i|we) spend (my|our|the|this)|what should (i|we) work on)\b",
    re.I,
)


def rule_intent(message: str, entities: Entities | None = None) -> Intent | None:
    """The intent of a lookup the rules recognise (see above), or None: "discovery" for a fact
    about a named account, rep, manager or sector, or a question over the accounts as records;
    "pipeline" for a question over the other records (their number or attributes:
    `tools.query_plan.asks_about_records`) or a deal figure the query plan rules read from the
    message (`tools.query_plan.plan_from_rules`). Names are masked before matching
    (`tools.query_plan.masked`), so a name cannot trigger a rule. Pure text, no I/O."""
    from tools.action_requests import request_kind
    from tools.query_plan import asks_about_records, masked, plan_from_rules
    from tools.semantic_words import read_question

    ents = entities or Entities()
    text = masked(message, ents)
    mentions = entity_mentions(ents)
    if _OFF_TOPIC.search(text) and not sales_signal(message, mentions):
        return "general"  # "who won the World Cup?": a topic no crew works on, and no sales word
    if _PLAN_MY_TIME.search(text) and not mentions:
        return "nba"  # "what's my plan for tomorrow?": what to do next is the next-best-action crew's
    if _is_stage_move(message, ents):
        return "pipeline"
    asked = request_kind(text)
    if asked is not None and not (asked == "move_stage" and _DELIVERY_WORK.search(text)):
        # an action the rep asks for: deal updates, reminders and tasks are the pipeline crew's;
        # an email to an address or a discount to grant, the closing crew's ("we just won X, set
        # up the onboarding" is delivery's work, left to the steps below)
        return "closing" if asked in ("queue_email", "accept_discount") else "pipeline"
    if _WORK_REQUEST.search(text):
        return None
    if _fact_question(text, ents):
        return "discovery"
    if _NO_DEALS.search(text):
        return None
    if _RECORD_QUESTION.match(text.strip()) and asks_about_records(message, ents):
        # a question over the records ("how many products ...", "which reps ..."); accounts'
        # own facts are discovery's (config/intents.yaml), and both crews answer such questions
        # through the query planner
        return "discovery" if read_question(message).subject == "account" else "pipeline"
    plan = plan_from_rules(message, ents)
    if plan is None or plan.metric not in _FIGURE_METRICS:
        return None
    if not sales_signal(message, entity_mentions(ents)):
        return None  # "who won the World Cup?": a figure word, but nothing of sales work
    if plan.metric == "deals" and not _DEAL_NOUN.search(text):
        return None  # "how many employees ...": a count, but not of deals
    return "pipeline"


# --- rules: requests for work of one kind only ------------------------------------------------
# Each family is the vocabulary of one crew's definition: research on an account or lead before
# the sale (discovery), work after the sale (delivery),
# writing to or negotiating with a buyer (closing), advice on what to do next (nba). A message
# that speaks the words of exactly one family is that family's, when the neighbours rank it
# first, or second without a confident margin for another (`work_intent`, `IntentRouter`).

_DELIVERY_WORK = re.compile(
    r"\b(onboard\w*|implement\w*|roll-?outs?|deploy\w*|install\w*|go-live|kick-?off|hand-?over|"
    r"milestones?|deliverables?|deliver\w*|status (report|update)|training|project (plan|timeline)|"
    r"(delivery|implementation|rollout|project) timeline|checklist|after the sale|"
    r"just (signed|won|closed))\b",
    re.I,
)
_CLOSING_WORK = re.compile(
    r"\b((write|draft|compose|prepare|create|put together|send|reply|respond|rewrite)\b.{0,40}"
    r"\b(e-?mails?|messages?|letter|note|proposals?|quotes?|quotation|reply|follow-?up|linkedin|"
    r"intro(duction)?|outreach|talking points|pitch|counter-?offer)|discounts?|\d+ ?% off|"
    r"objections?|negotiat\w*|push back|pushback|counter-?offer|(payment|contract) terms|"
    r"competitor\w*|cheaper|too expensive|(follow-?up |e-?mail |outreach )?(sequences?|cadences?)|drip)\b",
    re.I,
)
_NBA_WORK = re.compile(
    r"\b(next (best )?(steps?|actions?|moves?)|what (should|shall) (i|we) (do|focus|prioriti\w*)|"
    r"recommend\w*|prioriti[sz]\w*|focus|upsell\w*|cross-sell\w*|neglect\w*|(sell|buy) more|"
    r"who should i (call|contact|follow up|reach out)|reach out to|needs? attention|at risk|revive|"
    r"(most valuable|best|most useful) thing (i|we) (could|can|should) do|best use of (my|our) time|"
    r"what('s| is) (my|our) plan for|how should (i|we) spend|what should (i|we) work on)\b",
    re.I,
)
_DISCOVERY_WORK = re.compile(
    r"\b(research\w*|briefing|brief (me|us)|background( check| on)?|dossier|look into|"
    r"qualif(y|ying|ied|ication)|bant|lead scor\w*|(good |a |right )?fit for (us|our)|decision[- ]maker)\b",
    re.I,
)
_WORK_FAMILIES: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    ("discovery", _DISCOVERY_WORK),
    ("delivery", _DELIVERY_WORK),
    ("closing", _CLOSING_WORK),
    ("nba", _NBA_WORK),
)


def work_intent(message: str, entities: Entities | None = None) -> Intent | None:
    """The one crew whose work vocabulary `message` uses (discovery, delivery, closing or nba), or None when
    it uses none or several, or has no sales word (`sales_signal`). Names are masked, and so are
    stage names ("move 1C1I7A6R to negotiation" is no negotiation). Pure text, no I/O."""
    from tools.query_plan import masked

    ents = entities or Entities()
    if not sales_signal(message, entity_mentions(ents)):
        return None
    text = masked(message, ents)
    for stage in ents.of("stage"):
        if stage.mention:
            text = re.sub(re.escape(stage.mention), "<stage_ent>", text, flags=re.I)
    hits = [intent for intent, rx in _WORK_FAMILIES if rx.search(text)]
    return hits[0] if len(hits) == 1 else None


_SYSTEM = (
    "You route a sales rep's message to the team that handles it. Teams:\n{definitions}\n"
    "Pick the team by what the rep wants done, not by the words used. "
    'Answer only JSON: {{"intent": "<team>"}}.'
)
_USER = "Similar messages and their team:\n{examples}\n\nMessage: {message}"


class IntentRouter:
    """Classifies messages into intents (see the module docstring for the method).

    `embedder`: a `crm.embeddings.Embedder` (the local E5 one is what the margin is calibrated
    for). `llm`: a chat model from `llm.chat_model` (None: neighbours only). `dialect`:
    how to ask that model for JSON. `k`: examples averaged per intent; `confident_margin`: see
    the module docstring; `shots`: examples shown to the LLM; `candidates`: how many of the
    neighbours' best intents the schema lets the LLM choose from (None: all six); `accept_top`:
    the LLM's answer counts only if among the neighbours' best `accept_top` (None: always).
    `llm_timeout_s`: the router's own deadline for the LLM call; past it the neighbours decide.
    The example bank is embedded on first use (about 1.5 s for ~100 examples on 2 cores) or by
    `warm()`.
    """

    def __init__(
        self,
        embedder: Embedder,
        llm: BaseChatModel | None = None,
        *,
        config: IntentsFile | None = None,
        dialect: Dialect = "llama_cpp",
        k: int = 3,
        confident_margin: float = 0.035,
        shots: int = 6,
        candidates: int | None = None,
        accept_top: int | None = 2,
        llm_timeout_s: float = 10.0,
    ) -> None:
        self.embedder = embedder
        self.llm = llm
        self.config = config or load_intents()
        self.dialect = dialect
        self.k = k
        self.confident_margin = confident_margin
        self.shots = shots
        self.candidates = candidates
        self.accept_top = accept_top
        self.llm_timeout_s = llm_timeout_s
        self._texts: list[str] = []
        self._labels: list[Intent] = []
        self._masked: list[str] = []
        for name, d in self.config.intents.items():
            for ex in d.examples:
                shown, masked = bank_texts(ex)
                self._texts.append(shown)
                self._masked.append(masked)
                self._labels.append(name)
        self._label_arr = np.array(self._labels)
        self._vectors: np.ndarray[Any, np.dtype[np.float32]] | None = None
        definitions = "\n".join(f"- {name}: {d.definition}" for name, d in self.config.intents.items())
        self._system = _SYSTEM.format(definitions=definitions)

    # ----------------------------------------------------------------------- neighbours

    def warm(self) -> None:
        """Embed the example bank now (otherwise on the first classification)."""
        if self._vectors is None:
            vecs = [self.embedder.embed_query(t) for t in self._masked]
            self._vectors = _normalise(np.asarray(vecs, dtype=np.float32))

    def neighbours(
        self, message: str, mentions: Iterable[str] = (), *, exclude: int | None = None
    ) -> Neighbours:
        """Score every intent by the mean cosine of its `k` nearest examples to `message`, both
        with names masked (`mask_names`; `mentions`: names resolved in the message)."""
        self.warm()
        assert self._vectors is not None
        masked = mask_names(message, mentions)
        q = _normalise(np.asarray([self.embedder.embed_query(masked)], dtype=np.float32))[0]
        return self._neighbours_of(q, exclude)

    def _neighbours_of(self, q: np.ndarray[Any, Any], exclude: int | None) -> Neighbours:
        assert self._vectors is not None
        sims = self._vectors @ q
        if exclude is not None:
            sims[exclude] = -np.inf
        scores: dict[str, float] = {}
        for name in self.config.intents:
            own = np.sort(sims[self._label_arr == name])[::-1][: self.k]
            own = own[np.isfinite(own)]
            scores[name] = float(own.mean()) if own.size else -1.0
        ranked: list[Intent] = sorted(self.config.intents, key=lambda n: -scores[n])
        margin = scores[ranked[0]] - scores[ranked[1]] if len(ranked) > 1 else 1.0
        order = np.argsort(-sims)[: self.shots]
        nearest = [(self._texts[i], self._labels[i], float(sims[i])) for i in order if np.isfinite(sims[i])]
        return Neighbours(scores=scores, ranked=ranked, margin=margin, nearest=nearest)

    def leave_one_out(self) -> list[tuple[bool, float]]:
        """Classify every bank example by the others: (right?, margin) per example. The data
        behind `confident_margin`: pick a margin above which every example is right."""
        self.warm()
        assert self._vectors is not None
        out = []
        for i, label in enumerate(self._labels):
            nb = self._neighbours_of(self._vectors[i].copy(), exclude=i)
            out.append((nb.ranked[0] == label, nb.margin))
        return out

    # ----------------------------------------------------------------------- the LLM

    def prompt(self, message: str, nb: Neighbours) -> list[tuple[str, str]]:
        """The classification prompt: fixed system text, then the nearest examples (farthest
        first, so the closest sits next to the message), then the message."""
        examples = "\n".join(f"{text} -> {label}" for text, label, _ in reversed(nb.nearest))
        return [("system", self._system), ("human", _USER.format(examples=examples, message=message.strip()))]

    async def _ask_llm(self, message: str, nb: Neighbours) -> Intent:
        assert self.llm is not None
        allowed = nb.ranked[: self.candidates] if self.candidates else list(self.config.intents)
        schema = {
            "type": "object",
            "properties": {"intent": {"type": "string", "enum": allowed}},
            "required": ["intent"],
        }
        bound = json_model(self.llm, schema, self.dialect)
        reply = await asyncio.wait_for(bound.ainvoke(self.prompt(message, nb)), timeout=self.llm_timeout_s)
        intent = parse_json(reply.content, _LLMAnswer).intent
        if intent not in allowed:  # an endpoint that does not enforce the schema
            raise LLMOutputError(
                f"intent {intent!r} is not among the candidates {allowed}", str(reply.content)
            )
        return intent

    # ----------------------------------------------------------------------- entry points

    async def aclassify(
        self, message: str, previous_intent: Intent | None = None, entities: Entities | None = None
    ) -> IntentResult:
        """The intent of `message` (see the module docstring). `previous_intent`: the intent of
        the previous turn in the thread, used only for short, unclear follow-ups. `entities`: the
        resolved entities of the message (`graphs.entities`), whose names are masked for the
        neighbour search. Never raises because of the LLM; raises only if the embedder fails."""
        started = time.perf_counter()

        def done(**kw: Any) -> IntentResult:
            return IntentResult(ms=round((time.perf_counter() - started) * 1000, 1), **kw)

        if not message.strip():
            return done(intent="general", confidence=0.5, method="empty")
        rule = rule_intent(message, entities)
        if rule is not None:  # a lookup the tools answer: no embedding, no LLM call
            return done(intent=rule, confidence=0.95, method="rules")
        mentions = entity_mentions(entities)
        nb = await asyncio.to_thread(self.neighbours, message, mentions)
        scores = {k: round(v, 4) for k, v in nb.scores.items()}
        best = nb.ranked[0]
        work = work_intent(message, entities)
        if work is not None and (
            work == best or (work == nb.ranked[1] and nb.margin < self.confident_margin)
        ):
            return done(intent=work, confidence=0.9, method="rules", scores=scores)
        if nb.margin >= self.confident_margin:
            return done(intent=best, confidence=min(1.0, 0.9 + nb.margin), method="knn", scores=scores)
        if previous_intent is not None and _is_short_follow_up(message):
            return done(intent=previous_intent, confidence=0.6, method="follow-up", scores=scores)
        if self.llm is None:
            return done(
                intent=best, confidence=_fallback_confidence(nb), method="knn-fallback", scores=scores
            )
        try:
            intent = await self._ask_llm(message, nb)
        except (TimeoutError, LLMOutputError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else str(exc)
            log.warning("intent LLM answer unusable (%s); using nearest neighbours", reason)
            return done(
                intent=best,
                confidence=_fallback_confidence(nb),
                method="knn-fallback",
                llm_calls=1,
                scores=scores,
                error=reason[:300],
            )
        except Exception as exc:  # connection refused, HTTP 5xx, ...: the turn must go on
            log.warning("intent LLM call failed (%s: %s); using nearest neighbours", type(exc).__name__, exc)
            return done(
                intent=best,
                confidence=_fallback_confidence(nb),
                method="knn-fallback",
                llm_calls=1,
                scores=scores,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
        if intent == "general":
            # "general" means "not about sales": the LLM is trusted on that when the message has
            # no sales word and names no record, and overruled when it has (unsure, the 1.5B
            # model drifts to "general")
            if not sales_signal(message, mentions):
                return done(
                    intent="general",
                    confidence=0.8,
                    method="llm",
                    llm_calls=1,
                    scores=scores,
                    llm_intent=intent,
                )
            fallback = next(i for i in nb.ranked if i != "general")
            return done(
                intent=fallback,
                confidence=0.6,
                method="knn-veto",
                llm_calls=1,
                scores=scores,
                llm_intent=intent,
            )
        if self.accept_top and intent not in nb.ranked[: self.accept_top]:
            return done(
                intent=best, confidence=0.6, method="knn-veto", llm_calls=1, scores=scores, llm_intent=intent
            )
        confidence = 0.85 if intent == best else 0.7
        return done(
            intent=intent, confidence=confidence, method="llm", llm_calls=1, scores=scores, llm_intent=intent
        )

    def classify(
        self, message: str, previous_intent: Intent | None = None, entities: Entities | None = None
    ) -> IntentResult:
        """Synchronous `aclassify` (for the CLI and scripts; not inside a running event loop)."""
        return asyncio.run(self.aclassify(message, previous_intent, entities))


def _normalise(m: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(m / norms, dtype=np.float32)


def _fallback_confidence(nb: Neighbours) -> float:
    return round(min(0.6, 0.3 + 10 * max(nb.margin, 0.0)), 3)


def _is_short_follow_up(message: str) -> bool:
    from graphs.entities import is_follow_up

    return len(message.split()) <= 6 and is_follow_up(message)
