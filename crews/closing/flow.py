"""The closing crew: first outreach, follow-up, proposal and negotiation drafts for a named deal or
account using its history, and discount requests checked against the sales policy.

`run(request, deps)`:
1. gathers the account, the deal (named, else the account's latest open one), the product and
   its list price, a contact (named in the message, else the first one on file) and the last
   deals with the account;
2. decides what is asked (discount, proposal, negotiation advice, follow-up, outreach);
3. a discount request is decided in Python against `config/policies.yaml`: at most
   `discount.max_percent`, so a request above it gets a counter-offer at the maximum; the crew
   proposes `accept_discount` only with an allowed percent;
4. the closer (one LLM call) writes the words: an email without any figure, or advice; the crew
   then adds the figures (discount line, price line computed from the list price), the rep's
   signature and the CAN-SPAM footer (sender identity, postal address, unsubscribe line) and
   proposes `queue_email`. Sentences of the model that carry a digit are dropped (a price or
   percent it wrote would bypass the policy check).

The reply streams (`crews.streaming.ReplyWriter`): the crew's own lines (discount decision, the
draft's header) are written as soon as the records are read, before the model starts; the model
answers in plain text (a "Subject:" line then the body, or a summary then "- " talking points) and
each of its sentences is written as soon as it is complete, after the crew's filters (greeting
and signature dropped, sentences with figures dropped); the figures and footer follow. The model
is stopped once it starts a signature or has written enough (`MAX_BODY_SENTENCES`,
`MAX_TALKING_POINTS`). What is written is never taken back: when the model fails midway, the draft
keeps the sentences already written (a template opening when there are none).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from config.files import load_policies, load_sequences
from contracts import CrewRequest, CrewResponse, ProposedAction, Source
from crews.closing.models import (
    ClosingAdvice,
    ClosingResult,
    DiscountDecision,
    DraftKind,
    EmailDraft,
    PriceLine,
)
from crews.common import drop_numeric_sentences, in_session, list_item, question_of, reading
from crews.deps import CrewDeps
from crews.runner import CrewOutputError, kickoff_text
from crews.streaming import ReplyWriter
from guards.text import SentenceSplitter
from llm import StopGeneration, parse_output
from observability.llm_meter import usage_scope
from tools import accounts, deals
from tools.accounts import AccountBrief, ContactOut
from tools.action_requests import PERCENT, ActionRequest, read_request
from tools.deals import DealOut, account_deals, find_products
from tools.errors import DomainError
from tools.formatting import money
from tools.sources import account_source, deal_source

log = logging.getLogger(__name__)

__all__ = ["decide_discount", "detect_kind", "requested_discount", "run"]

DISCOUNT = re.compile(r"\b(discount\w*|off\b|price (cut|reduction)|rebate|markdown|cheaper)", re.I)
PROPOSAL = re.compile(r"\b(proposal|quote|quotation|offer for|pricing for|price (list|sheet)|bid)\b", re.I)
NEGOTIATION = re.compile(
    r"\b(negotiat\w*|objection\w*|contract|terms|competitor\w*|cheaper|too expensive|price is (too )?high\w*|"
    r"push(es|ing)? back|counter|handle|respond to|payment terms|legal|procurement)\b",
    re.I,
)
FOLLOW_UP = re.compile(
    r"\b(follow[- ]?up|check[- ]in|chase|nudge|haven'?t (replied|heard|responded)|no (reply|response)|"
    r"reminder|remind|circle back|touch base|sent last)\b",
    re.I,
)
OUTREACH = re.compile(r"\b(first|intro\w*|outreach|cold|reach out|introduce|prospect\w*|opening)\b", re.I)
ADVICE = re.compile(
    r"\b(how (should|do|can|would) (i|we)|what (should|do|can) (i|we) (say|tell|reply|answer)|advice|advise|"
    r"tips|summar\w*|prepare the contract)\b",
    re.I,
)
#: A request for a follow-up sequence (several touches over days), not one email.
SEQUENCE = re.compile(r"\b(sequence|cadence|drip)\b", re.I)
STOP = re.compile(r"\b(stop|cancel|end|pause|halt|kill)\b", re.I)
EMAIL = re.compile(r"\b(e-?mail|write|draft|send|message|letter|note)\b", re.I)
QUANTITY = re.compile(
    r"\b(\d{1,5})\s*(?:x\s+|units?\b|licen[cs]es?\b|seats?\b|servers?\b|pcs\b|pieces\b|boxes\b|of\b)", re.I
)

#: Reply caps (tokens): an email of five sentences, advice of two sentences and three points.
EMAIL_MAX_TOKENS = 220
ADVICE_MAX_TOKENS = 200
#: Sentences of an email body kept before the model is stopped (the task asks for five).
MAX_BODY_SENTENCES = 6
#: Talking points kept before the model is stopped (the task asks for three).
MAX_TALKING_POINTS = 3

_GREETING = re.compile(r"^\s*(hi|hello|dear|hey|greetings)\b[^\n,:]*[,:!]?\s*", re.I)
#: A signature's first line: "Best regards," "Thanks," "Sincerely" (short, no sentence after it).
_SIGNOFF_LINE = re.compile(
    r"^(?:best|kind|warm|warmest|many)?\s*(?:regards|wishes|sincerely|thanks|thank you|cheers)\b"
    r"[^.!?\n]{0,24}[,!.]?$",
    re.I,
)
_SUBJECT_LINE = re.compile(r"^[\s*#_]*subject[\s*_]*:[\s*_]*(.*?)[\s*_]*$", re.I)


#: The rep approving a discount themselves (not offering it to the buyer).
_APPROVE = re.compile(r"\b(approve|accept|agree to|go ahead)\b", re.I)


def wants_email_words(message: str) -> bool:
    """Whether `message` asks for something written ("write", "draft", "email", "send" ...)."""
    return EMAIL.search(message) is not None


def requested_discount(message: str) -> float | None:
    """The discount percent asked for in `message` ("15% off", "a 12 percent discount"), or None."""
    if not DISCOUNT.search(message):
        return None
    m = PERCENT.search(message)
    return float(m.group(1)) if m else None


def decide_discount(requested: float, max_percent: float | None = None) -> DiscountDecision:
    """Check a requested discount against the policy: allowed = min(requested, max)."""
    limit = load_policies().discount.max_percent if max_percent is None else max_percent
    allowed = min(requested, limit)
    return DiscountDecision(
        requested_percent=requested,
        max_percent=limit,
        allowed_percent=allowed,
        within_policy=requested <= limit,
    )


def detect_kind(message: str, has_history: bool) -> DraftKind:
    """What the rep asks for: discount, proposal, negotiation, follow_up or outreach."""
    if requested_discount(message) is not None:
        return "discount"
    if PROPOSAL.search(message):
        return "proposal"
    if FOLLOW_UP.search(message):
        return "follow_up"
    if NEGOTIATION.search(message):
        return "negotiation"
    if OUTREACH.search(message):
        return "outreach"
    return "follow_up" if has_history else "outreach"


@dataclass
class _Context:
    account: AccountBrief | None = None
    deal: DealOut | None = None
    product: str | None = None
    list_price: float | None = None
    contact: ContactOut | None = None
    rep: str | None = None
    history: list[DealOut] = field(default_factory=list)
    #: the account named, when it is outside the caller's reading (nothing else is gathered)
    hidden: str | None = None

    def records(self) -> str:
        """What the closer reads, in one short line (figures left out on purpose; every token
        here is read before the first word of the draft: about 20 ms each on 2 cores):
        "account Acme (retail); product GTX Pro; deal stage Engaging; earlier deals: GTX Pro
        won, MG Special lost"."""
        parts = []
        if self.account:
            sector = f" ({self.account.sector})" if self.account.sector else ""
            parts.append(f"account {self.account.name}{sector}")
        if self.product:
            parts.append(f"product {self.product}")
        if self.deal and self.deal.stage_name:
            parts.append(f"deal stage {self.deal.stage_name}")
        if self.history:
            earlier = ", ".join(f"{d.product_name or 'deal'} {d.stage_name.lower()}" for d in self.history)
            parts.append(f"earlier deals: {earlier}")
        return "; ".join(parts) or "none"

    def sources(self) -> list[Source]:
        out: list[Source] = []
        if self.account:
            out.append(account_source(self.account))
        if self.deal:
            out.append(deal_source(self.deal))
        if self.contact:
            out.append(
                Source(
                    kind="contact",
                    id=str(self.contact.id),
                    label=_contact_label(self.contact) or "",
                    data={"email": self.contact.email, "title": self.contact.title},
                )
            )
        return out


def _contact_label(c: ContactOut | None) -> str | None:
    if c is None:
        return None
    return f"{c.first_name} {c.last_name}" + (f", {c.title}" if c.title else "")


_NAME_AT = re.compile(r"\b(?:to|for|with|email|mail)\s+([A-Z][a-z]+)\s+(?:at|from)\b")


def _gather(session: Session, request: CrewRequest) -> _Context:
    ents = request.entities
    ctx = _Context()
    deal_ref = ents.first("deal")
    if deal_ref is not None:
        try:
            ctx.deal = deals.find_deal(session, deal_ref.key)
        except DomainError:
            ctx.deal = None
    acc = ents.first("account")
    account_id = acc.id if acc is not None else (ctx.deal.account_id if ctx.deal else None)
    if acc is not None and account_id is None:
        try:
            account_id = accounts.account_profile(session, acc.key).account.id
        except DomainError:
            account_id = None
    prod = ents.first("product")
    if prod is not None:
        found = find_products(session, prod.key, limit=1)
        if found:
            ctx.product, ctx.list_price = found[0].name, found[0].list_price
    caller = request.caller
    rep_ids = reading(request)
    # an account named outright must be readable; a deal's own account is checked with the deal
    if (
        acc is not None
        and account_id is not None
        and not accounts.account_readable(session, account_id, rep_ids)
    ):
        ctx.hidden = acc.key
        return ctx
    if account_id is not None:
        profile = accounts.account_profile(session, account_id)
        ctx.account = AccountBrief(
            id=profile.account.id, name=profile.account.name, sector=profile.account.sector
        )
        history = account_deals(session, account_id, limit=20)
        if caller is not None:  # the deals of the account the caller reads
            history = [d for d in history if caller.may_read_rep(d.rep_id)]
        ctx.history = history[:3]
        if ctx.deal is None:
            open_deals = account_deals(session, account_id, status="open", limit=20)
            if caller is not None:  # the caller's own deals with the account come first
                open_deals = [d for d in open_deals if caller.may_act_for_rep(d.rep_id)] or open_deals
            same = [d for d in open_deals if ctx.product and d.product_name == ctx.product]
            picked = same or open_deals
            ctx.deal = picked[0] if picked else None
        people = accounts.contacts(session, account_id, limit=20)
        named = _NAME_AT.search(request.message)
        if ents.first("contact") is not None:
            key = ents.first("contact").key.lower()  # type: ignore[union-attr]
            people = [c for c in people if key in f"{c.first_name} {c.last_name}".lower()] or people
        elif named:
            people = [c for c in people if c.first_name.lower() == named.group(1).lower()] or people
        ctx.contact = people[0] if people else None
    if ctx.product is None and ctx.deal is not None and ctx.deal.product_name:
        ctx.product = ctx.deal.product_name
        found = find_products(session, ctx.deal.product_name, limit=1)
        ctx.list_price = found[0].list_price if found else None
    # the signature: the deal's rep, else whoever handled the account's latest deal
    ctx.rep = ctx.deal.rep_name if ctx.deal else None
    if ctx.rep is None:
        ctx.rep = next((d.rep_name for d in ctx.history if d.rep_name), None)
    return ctx


_ROLE = re.compile(
    r"\bto (?:the |our |their )?((?:head|director|vp|vice president|chief|manager|lead)\b[\w ]{0,30}?|"
    r"cfo|cto|ceo|coo|cio|cmo|buyer|purchasing manager|procurement( team)?)\s+(?:at|of|from)\b",
    re.I,
)


def _recipient(ctx: _Context, message: str) -> str:
    if ctx.contact is not None:
        return _contact_label(ctx.contact) or "the buyer"
    role = _ROLE.search(message)
    if role:
        return f"the {role.group(1).strip()}" + (f" at {ctx.account.name}" if ctx.account else "")
    named = _NAME_AT.search(message)
    if named:
        return named.group(1) + (f" at {ctx.account.name}" if ctx.account else "")
    return f"the buyer at {ctx.account.name}" if ctx.account else "the buyer"


def _footer(rep: str | None) -> str:
    policy = load_policies().outbound_email
    return (
        f"Best regards,\n{rep or 'Your account team'}\n{policy.sender_company}\n"
        f"{policy.postal_address}\n\n{policy.unsubscribe_line}"
    )


def _price_line(ctx: _Context, message: str, discount: DiscountDecision | None) -> PriceLine | None:
    if ctx.product is None or ctx.list_price is None:
        return None
    m = QUANTITY.search(message)
    qty = int(m.group(1)) if m else 1
    pct = discount.allowed_percent if discount else 0.0
    total = round(ctx.list_price * qty * (1 - pct / 100), 2)
    return PriceLine(
        product=ctx.product, quantity=qty, list_price=ctx.list_price, discount_percent=pct, total=total
    )


def _figure_lines(
    kind: DraftKind, ctx: _Context, discount: DiscountDecision | None, price: PriceLine | None
) -> str:
    lines = []
    product = ctx.product or "your order"
    if discount is not None:
        if discount.within_policy:
            lines.append(f"We can offer a discount of {discount.allowed_percent:g}% on {product}.")
        else:
            lines.append(
                f"The best we can offer is a discount of {discount.allowed_percent:g}% on {product}."
            )
    if kind == "proposal" and price is not None:
        line = f"Our proposal: {price.quantity} x {price.product} at {money(price.list_price)} list"
        if price.discount_percent:
            line += f", less {price.discount_percent:g}%"
        lines.append(line + f", for a total of {money(price.total)}.")
    return "\n".join(lines)


def _opening(kind: DraftKind, ctx: _Context) -> str:
    """The template opening of a draft whose model wrote nothing usable: the rep still gets a
    draft to edit."""
    who = ctx.account.name if ctx.account else "your team"
    what = ctx.product or "our products"
    opening = {
        "outreach": f"I'm reaching out to introduce {what} and how it could help {who}.",
        "follow_up": f"I wanted to follow up on our conversation about {what}.",
        "proposal": f"As discussed, here is our proposal for {what}.",
        "discount": f"Thank you for your interest in {what}.",
        "negotiation": f"Thank you for your feedback on {what}.",
    }[kind]
    return opening + " Would you have time for a short call this week?"


def _gap(whitespace: str) -> str:
    """The separator a sentence's trailing whitespace stands for: a paragraph break, a line
    break or a space."""
    newlines = whitespace.count("\n")
    return "\n\n" if newlines >= 2 else "\n" if newlines == 1 else " "


class _EmailStream:
    """The model's plain-text email (a "Subject:" line, then the body) turned into the draft and
    written to the reply as it arrives (see the module docstring). `feed` is the model's text
    callback; `finish` writes the rest and returns the draft. An answer that starts with "{" is
    a JSON `EmailDraft` after all: read whole at the end."""

    def __init__(
        self, writer: ReplyWriter, ctx: _Context, kind: DraftKind, subject: str | None = None
    ) -> None:
        self.writer = writer
        self.fixed_subject = subject  # the rep's own subject line wins over the model's
        self.ctx = ctx
        self.kind = kind
        self.keep = [n for n in (ctx.product, ctx.account.name if ctx.account else None) if n]
        self.first = ctx.contact.first_name if ctx.contact else "there"
        self.subject: str | None = None
        self.head = ""  # the model's text before its first line ends
        self.splitter = SentenceSplitter()
        self.body: list[str] = []  # kept sentences, each with the separator written before it
        self.gap = ""  # separator owed before the next kept sentence
        self.done = False

    def feed(self, piece: str) -> None:
        if self.done:
            raise StopGeneration
        if self.subject is None:
            self.head += piece
            if self.head.lstrip().startswith("{"):
                return  # a JSON answer after all: read whole in `finish`
            if "\n" not in self.head.lstrip():
                return
            lead = len(self.head) - len(self.head.lstrip())
            line, rest = self.head[lead:].split("\n", 1)
            self._subject(line, rest)
        else:
            for unit in self.splitter.feed(piece):
                self._unit(unit)
        if self.done:
            raise StopGeneration

    def _subject(self, line: str, rest: str) -> None:
        """Write the subject line (the model's, else a default) and the greeting; the rest of the
        model's text is body."""
        m = _SUBJECT_LINE.match(line)
        subject = drop_numeric_sentences(m.group(1).strip().strip("\"'"), self.keep) if m else ""
        if not m:
            rest = line + "\n" + rest  # no subject line: it all is body
        ctx = self.ctx
        default = f"{ctx.product} for {ctx.account.name}" if ctx.account and ctx.product else "Following up"
        self.subject = (self.fixed_subject or subject or default)[:200]
        self.writer.write(f"Subject: {self.subject}\n\nHi {self.first},\n\n")
        for unit in self.splitter.feed(rest):
            self._unit(unit)

    def _unit(self, unit: str) -> None:
        """One complete sentence of the body (with its trailing whitespace): dropped, kept and
        written, or the end of the body."""
        if self.done:
            return
        sentence = unit.strip()
        gap = _gap(unit[len(unit.rstrip()) :]) if unit != unit.rstrip() else ""
        if not self.body and sentence:
            sentence = _GREETING.sub("", sentence, count=1).strip() if _GREETING.match(sentence) else sentence
        if not sentence:
            return
        if _SIGNOFF_LINE.match(sentence) and self.body:
            # a sign-off ends the body; as the first sentence ("Thank you for meeting us
            # today.") it is the body's opening
            self.done = True
            return
        kept = drop_numeric_sentences(sentence, self.keep)
        if not kept:  # a figure the model made up: the crew writes the figures
            if "\n" in gap and self.body:
                self.gap = "\n\n" if "\n\n" in (gap, self.gap) else "\n"
            return
        piece = (self.gap if self.body else "") + kept
        self.writer.write(piece)
        self.body.append(piece)
        self.gap = gap or " "
        if len(self.body) >= MAX_BODY_SENTENCES:
            self.done = True

    def finish(self, figures: str) -> EmailDraft:
        """Write the rest of the draft after the model stopped (or failed): the subject if it
        never came, the last sentence, a template opening if no sentence was kept, the figures
        and the footer. Returns the draft as it will be queued."""
        if self.subject is None:
            answer = self.head.lstrip()
            try:  # a model that answered {"subject", "body"} despite the plain-text task
                draft = parse_output(answer, EmailDraft) if answer.startswith("{") else None
            except ValidationError:
                draft = None
            if draft is not None:
                self._subject(f"Subject: {draft.subject}", draft.body)
            else:
                line, _, rest = answer.partition("\n")
                self._subject(line, rest)
        for unit in self.splitter.flush():
            self._unit(unit)
        self.done = True
        if not self.body:
            opening = _opening(self.kind, self.ctx)
            self.writer.write(opening)
            self.body.append(opening)
        tail = (f"\n\n{figures}" if figures else "") + f"\n\n{_footer(self.ctx.rep)}"
        self.writer.write(tail)
        body = f"Hi {self.first},\n\n" + "".join(self.body) + tail
        return EmailDraft(subject=self.subject or "Following up", body=body)


class _AdviceStream:
    """The model's plain-text advice (a summary, then "- " talking points) written to the reply
    as it arrives; `feed` is the model's text callback, `finish` returns the advice (None when
    the model wrote nothing usable)."""

    def __init__(self, writer: ReplyWriter, ctx: _Context, lead: str) -> None:
        self.writer = writer
        self.keep = [n for n in (ctx.product, ctx.account.name if ctx.account else None) if n]
        self.lead = lead  # separator owed before the first piece (after a discount line)
        self.splitter = SentenceSplitter()
        self.summary: list[str] = []
        self.points: list[str] = []
        self.done = False

    def feed(self, piece: str) -> None:
        if self.done:
            raise StopGeneration
        for unit in self.splitter.feed(piece):
            self._unit(unit)
        if self.done:
            raise StopGeneration

    def _write(self, text: str) -> None:
        self.writer.write(self.lead + text)
        self.lead = ""

    def _unit(self, unit: str) -> None:
        if self.done:
            return
        point, text = list_item(unit, self.keep)
        if not text:
            return
        if point:
            if not self.summary:
                self._summary("Here is how I would approach it.")
            self._write(f"\n\n- {text}")
            self.points.append(text)
            self.done = len(self.points) >= MAX_TALKING_POINTS
        elif not self.points:
            self._summary(text)
        # prose after the talking points is not part of the advice

    def _summary(self, sentence: str) -> None:
        self._write((" " if self.summary else "") + sentence)
        self.summary.append(sentence)

    def finish(self) -> ClosingAdvice | None:
        for unit in self.splitter.flush():
            self._unit(unit)
        self.done = True
        if not self.summary:
            return None
        return ClosingAdvice(summary=" ".join(self.summary), talking_points=self.points)


async def _email(
    deps: CrewDeps,
    request: CrewRequest,
    kind: DraftKind,
    ctx: _Context,
    writer: ReplyWriter,
    figures: str,
    asked: ActionRequest | None = None,
) -> EmailDraft:
    """The email, streamed into `writer` from the draft's subject line on. `asked`: what the rep
    set themselves (a subject, what to say), which the draft keeps; an email whose content the
    rep dictated is written from their words, without the model."""
    from crews.closing.crew import ClosingCrew

    subject = asked.subject if asked is not None else None
    if asked is not None and asked.what:
        stream = _EmailStream(writer, ctx, kind, subject)
        stream.feed(f"Subject: {subject or 'Following up'}\n{asked.what.rstrip('.!')}.")
        return stream.finish(figures)

    label = {
        "outreach": "first outreach",
        "follow_up": "follow-up",
        "proposal": "proposal",
        "discount": "discount reply",
        "negotiation": "negotiation",
    }[kind]
    stream = _EmailStream(writer, ctx, kind, subject)
    try:
        await kickoff_text(
            "closing",
            lambda llm: ClosingCrew(llm).email_crew(),
            {
                "kind": label,
                "recipient": _recipient(ctx, request.message),
                "question": question_of(request),
                "records": ctx.records(),
            },
            deps.llm,
            stream.feed,
            max_tokens=EMAIL_MAX_TOKENS,
        )
    except CrewOutputError as exc:
        log.info("closing email draft failed (%s); finishing it from the template", exc.reason)
    return stream.finish(figures)


async def _advise(
    deps: CrewDeps, request: CrewRequest, ctx: _Context, writer: ReplyWriter, lead: str
) -> ClosingAdvice | None:
    """The advice, streamed into `writer` (after `lead`); None when the model gave none."""
    from crews.closing.crew import ClosingCrew

    stream = _AdviceStream(writer, ctx, lead)
    try:
        await kickoff_text(
            "closing",
            lambda llm: ClosingCrew(llm).advise_crew(),
            {"question": question_of(request), "records": ctx.records()},
            deps.llm,
            stream.feed,
            max_tokens=ADVICE_MAX_TOKENS,
        )
    except CrewOutputError as exc:
        log.info("closing advice failed (%s)", exc.reason)
    return stream.finish()


def _discount_sentence(d: DiscountDecision, product: str | None) -> str:
    what = f" on {product}" if product else ""
    if d.within_policy:
        return (
            f"A {d.requested_percent:g}% discount{what} is within the sales policy "
            f"(maximum {d.max_percent:g}%): "
            f"you can accept it once you approve."
        )
    return (
        f"{d.requested_percent:g}% is above the sales policy's maximum discount of {d.max_percent:g}%, so it "
        f"cannot be granted. Counter-offer at most {d.allowed_percent:g}%{what}; "
        "going beyond needs your manager."
    )


async def _sequence(
    message: str, ctx: _Context, result: ClosingResult, writer: ReplyWriter, calls: int
) -> CrewResponse:
    """Propose `start_sequence` for the deal, or `cancel_sequence` when the rep asks to stop it (no
    LLM call): the steps, from `config/sequences.yaml`, are written from the configuration, and
    they are the facts the numbers come from."""
    data = result.model_dump(mode="json")
    if ctx.deal is None:
        who = ctx.account.name if ctx.account else "that account"
        writer.write(f"{who} has no open deal to follow up. Name the opportunity id of the deal.")
        return CrewResponse(reply=writer.text, data=data, llm_calls=calls)
    who = ctx.account.name if ctx.account else ctx.deal.external_id
    if STOP.search(message):
        writer.write(
            f"I can stop the follow-up sequence of {who} (deal {ctx.deal.external_id}): nothing more "
            "will be drafted for it. Drafts already in your inbox stay there to approve or reject. "
            "Approve to stop it."
        )
        action = ProposedAction(
            kind="cancel_sequence",
            summary=f"Stop the follow-up sequence of {who} (deal {ctx.deal.external_id})",
            params={"deal_id": ctx.deal.id, "account_id": ctx.deal.account_id},
        )
        return CrewResponse(
            reply=writer.text, data=data, sources=ctx.sources(), proposed_action=action, llm_calls=calls
        )
    steps = load_sequences().steps
    plan = [{"step": i + 1, "day": s.after.days, "kind": s.kind} for i, s in enumerate(steps)]
    facts: list[dict[str, Any]] = [{"sequence": plan, "deal": ctx.deal.external_id}]
    await writer.ground(facts, ctx.sources())
    touches = "; ".join(
        f"day {p['day']}: {'an email drafted for your approval' if p['kind'] == 'email' else 'a call task'}"
        for p in plan
    )
    writer.write(
        f"I can start a follow-up sequence for {who} (deal {ctx.deal.external_id}): {touches}. "
        "Each email waits in your inbox for approval, and the sequence stops by itself if the deal "
        "changes stage or closes. Approve to start it."
    )
    action = ProposedAction(
        kind="start_sequence",
        summary=f"Start a follow-up sequence for {who} (deal {ctx.deal.external_id})",
        params={"deal_id": ctx.deal.id, "account_id": ctx.deal.account_id},
    )
    return CrewResponse(
        reply=writer.text,
        data=data,
        sources=ctx.sources(),
        facts=facts,
        proposed_action=action,
        llm_calls=calls,
    )


async def run(request: CrewRequest, deps: CrewDeps) -> CrewResponse:
    """Draft, decide or advise (see the module docstring). Raises
    `crews.streaming.ReplyRejected` when the reply's stream refuses a sentence."""
    message = request.message
    writer = ReplyWriter()
    with usage_scope() as usage:
        ctx = await in_session(deps, lambda s: _gather(s, request))
        caller = request.caller
        if ctx.hidden is not None:
            return CrewResponse(
                reply=f"{ctx.hidden} is not among the accounts you can see; you can't draft or offer "
                "anything to it.",
                data={"account": ctx.hidden, "allowed": False},
                facts=[{"account": ctx.hidden, "allowed": False, "reason": "outside your accounts"}],
                llm_calls=usage.calls,
            )
        if caller is not None and ctx.deal is not None and not caller.may_act_for_rep(ctx.deal.rep_id):
            # nothing drafted or offered on another team's deal, and no action proposed
            ext = ctx.deal.external_id
            return CrewResponse(
                reply=f"Deal {ext} belongs to another team; you can't draft or offer anything on it.",
                data={"deal": ext, "allowed": False},
                facts=[{"deal": ext, "allowed": False, "reason": "another team's deal"}],
                llm_calls=usage.calls,
            )
        kind = detect_kind(message, bool(ctx.history))
        # what the rep set themselves: an address and subject to use, a percent to grant
        asked = read_request(message, now=dt.datetime.now(dt.UTC).replace(tzinfo=None))
        granting = asked if asked is not None and asked.kind == "accept_discount" else None
        emailing = asked if asked is not None and asked.kind == "queue_email" else None
        if emailing is not None and kind in ("negotiation", "discount"):
            kind = "follow_up"  # "say the contract goes out Monday" asks for an email, not advice
        requested = granting.percent if granting is not None else requested_discount(message)
        discount = decide_discount(requested) if requested is not None else None
        price = _price_line(ctx, message, discount) if kind == "proposal" else None
        result = ClosingResult(
            kind=kind,
            account=ctx.account.name if ctx.account else None,
            deal=ctx.deal.external_id if ctx.deal else None,
            product=ctx.product,
            recipient=emailing.to if emailing is not None and emailing.to else _recipient(ctx, message),
            discount=discount,
            price=price,
        )
        facts: list[dict[str, Any]] = [result.model_dump(mode="json", exclude={"email", "advice"})]
        sources = ctx.sources()
        await writer.ground(facts, sources)
        action: ProposedAction | None = None
        wants_email = EMAIL.search(message) is not None or kind in ("outreach", "follow_up", "proposal")
        advice_only = emailing is None and (
            kind == "negotiation" or (ADVICE.search(message) is not None and not wants_email and not discount)
        )

        if ctx.account is None and not advice_only and discount is None and emailing is None:
            writer.write(
                "Which account or deal is this for? "
                "Name the account (or the opportunity id) and I'll draft it."
            )
            return CrewResponse(reply=writer.text, data=result.model_dump(mode="json"), llm_calls=usage.calls)

        if SEQUENCE.search(message):
            return await _sequence(message, ctx, result, writer, usage.calls)

        if discount is not None:
            writer.write(_discount_sentence(discount, ctx.product))
            params: dict[str, Any] = {
                "percent": discount.allowed_percent,
                "requested_percent": (
                    granting.requested_percent
                    if granting is not None and granting.requested_percent is not None
                    else discount.requested_percent
                ),
            }
            if ctx.deal:
                params.update(deal=ctx.deal.external_id, deal_id=ctx.deal.id)
            if ctx.account:
                params["account_id"] = ctx.account.id
            who = f" for {ctx.account.name}" if ctx.account else ""
            action = ProposedAction(
                kind="accept_discount",
                summary=f"Accept a {discount.allowed_percent:g}% discount{who}"
                + (f" on {ctx.product}" if ctx.product else ""),
                params=params,
            )
        lead = "\n\n" if writer.text else ""
        # "approve a 10% discount on X": the decision is the answer; an offer to the buyer
        # ("offer Acme 10% off") or an email asked for is drafted
        approving = (
            granting is not None
            and action is not None
            and _APPROVE.search(message) is not None
            and not wants_email_words(message)
        )
        if advice_only and not approving:
            advice = await _advise(deps, request, ctx, writer, lead)
            result.advice = advice
            if advice is None:
                writer.write(lead + "I couldn't prepare advice right now; try again in a moment.")
        elif not approving:
            writer.write(f"{lead}Draft ({kind.replace('_', '-')}) to {result.recipient}:\n\n")
            email = await _email(
                deps, request, kind, ctx, writer, _figure_lines(kind, ctx, discount, price), emailing
            )
            result.email = email
            if action is None:
                params = {
                    "subject": email.subject,
                    "body": email.body,
                    "to": emailing.to
                    if emailing is not None and emailing.to
                    else (ctx.contact.email if ctx.contact else None),
                    "contact_id": ctx.contact.id if ctx.contact and not (emailing and emailing.to) else None,
                    "account_id": ctx.account.id if ctx.account else None,
                    "deal_id": ctx.deal.id if ctx.deal else None,
                    "deal": ctx.deal.external_id if ctx.deal else None,
                }
                action = ProposedAction(
                    kind="queue_email",
                    summary=f'Queue the email "{email.subject}" to {result.recipient}',
                    params=params,
                )
        return CrewResponse(
            reply=writer.text,
            data=result.model_dump(mode="json"),
            sources=sources,
            facts=facts,
            proposed_action=action,
            llm_calls=usage.calls,
        )
