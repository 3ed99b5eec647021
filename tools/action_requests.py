"""What a rep asks Flowstate to do, read from the words of one message: a stage move (won with a
value, lost with a reason), a reminder or a task with its date and time, an email to an address
with a subject, a discount to accept. Pure text, no I/O: which deal the request is about is
settled by the crew against the CRM (`tools.deals.deal_for_request`), and nothing here is
executed: the crew proposes the action and the rep approves it.

Dates and times are local wall times of the rep: "tomorrow at 3pm", "in 3 days", "next Tuesday
at 10", "by Friday", "on 2027-01-15", "20 January 2027 at 14:30". The date words are parsed by
`dateparser` (relative to `today`, preferring the future, so "Friday" is the coming one); the
span that holds them and the time of day are found here, because `dateparser` alone reads "next
Tuesday at 10" as nothing and "in 3 days" inside a sentence not at all. A reminder without a
time falls due at `DEFAULT_HOUR`; a bare hour from 1 to 6 ("at 3") is read in the afternoon.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "DEFAULT_HOUR",
    "PERCENT",
    "ActionRequest",
    "RequestKind",
    "TaskRequest",
    "find_due",
    "read_request",
    "request_kind",
    "won_value",
]

RequestKind = Literal["move_stage", "create_reminder", "create_task", "queue_email", "accept_discount"]

#: Local hour a reminder given only a date falls due (the start of a working day).
DEFAULT_HOUR = 9


class TaskRequest(BaseModel):
    """One task asked for: what to do (`title`, starting with a capital) and by when (`due`, a
    local date; None when the words give none)."""

    title: str
    due: dt.date | None = None


class ActionRequest(BaseModel):
    """A request read from a message. Only the fields of its `kind` are set:

    - move_stage: `stage` (a stage's words as written: "won", "negotiation"; the crew maps them to
      the pipeline's key), `value` (USD, for a won deal), `note` (a lost deal's reason);
    - create_reminder: `due_at` (local wall time, naive), `what` (what to be reminded of);
    - create_task: `tasks`;
    - queue_email: `to` (an address), `subject`, `what` (what the email should say);
    - accept_discount: `percent` (the discount to grant), `requested_percent` (what the customer
      asked for, when the message gives both).

    `refers_back`: the message points at a record of earlier turns ("it", "that one", "the deal")
    instead of naming one.
    """

    kind: RequestKind
    stage: str | None = None
    value: float | None = Field(None, ge=0)
    note: str | None = None
    due_at: dt.datetime | None = None
    what: str | None = None
    tasks: list[TaskRequest] = []
    to: str | None = None
    subject: str | None = None
    percent: float | None = None
    requested_percent: float | None = None
    refers_back: bool = False


# --------------------------------------------------------------------------------------------
# dates and times
# --------------------------------------------------------------------------------------------

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
#: Whole weekday names only: "sat" or "wed" inside a sentence are other words.
_WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_DATE = re.compile(
    r"\b(?:on|by|for|due|before|until|next|this|coming)?\s*(?:(?:on|by|for|due|before|until)\s+)?("
    r"\d{4}-\d{2}-\d{2}"
    r"|\d{1,2}(?:st|nd|rd|th)?\s+" + _MONTH + r"(?:,?\s+\d{4})?"
    r"|" + _MONTH + r"\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{4})?"
    r"|today|tonight|tomorrow|day after tomorrow"
    r"|in\s+(?:\d+|a|an|one|two|three|four|five|six|seven|ten)\s+(?:days?|weeks?|months?)"
    r"|(?:(?:next|this|coming)\s+)?" + _WEEKDAY + r"|next\s+week|next\s+month"
    r")\b",
    re.I,
)
_TIME = re.compile(
    r"\b(?:at\s+(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?|(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)"
    r"|(\d{1,2}):(\d{2}))\b"
    r"|\b(noon|midday)\b",
    re.I,
)
_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "ten": 10,
}


def _parse_date(words: str, today: dt.date) -> dt.date | None:
    """The date of `words` (one date phrase) counted from `today`, or None."""
    import dateparser  # a second to import its language data: only when a request has a date

    text = words.lower().strip()
    text = re.sub(r"^(?:coming|this)\s+", "", text)  # "this Friday" is the coming Friday
    m = re.fullmatch(r"in\s+(\w+)\s+(day|week|month)s?", text)
    if m and m.group(1) in _NUMBER_WORDS:
        text = f"in {_NUMBER_WORDS[m.group(1)]} {m.group(2)}s"
    if text.startswith("next ") and text != "next week" and text != "next month":
        # "next Tuesday": the coming Tuesday (dateparser reads the phrase with a time as nothing)
        text = text.removeprefix("next ")
    base = dt.datetime.combine(today, dt.time(0, 0))
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "future", "RETURN_AS_TIMEZONE_AWARE": False}
    parsed = dateparser.parse(text, languages=["en"], settings=settings)  # type: ignore[arg-type]
    if not isinstance(parsed, dt.datetime):
        return None
    day = parsed.date()
    if day == today and re.fullmatch(_WEEKDAY, text, re.I):
        day += dt.timedelta(days=7)  # "Tuesday" said on a Tuesday is next week's
    return day


def _parse_time(m: re.Match[str]) -> dt.time | None:
    if m.group(9):
        return dt.time(12, 0)
    hour_s, minute_s, ampm = (m.group(1), m.group(2), m.group(3))
    if hour_s is None:
        hour_s, minute_s, ampm = (m.group(4), m.group(5), m.group(6))
    if hour_s is None:
        hour_s, minute_s, ampm = (m.group(7), m.group(8), None)
    hour, minute = int(hour_s), int(minute_s or 0)
    if ampm:
        pm = ampm.lower().startswith("p")
        if hour == 12:
            hour = 0 if not pm else 12
        elif pm:
            hour += 12
    elif 1 <= hour <= 6 and minute_s is None:
        hour += 12  # "at 3" in a work reminder is 15:00, not the middle of the night
    if hour > 23 or minute > 59:
        return None
    return dt.time(hour, minute)


def find_due(text: str, today: dt.date) -> tuple[dt.date | None, dt.time | None, list[tuple[int, int]]]:
    """The first date and time of day named in `text`, counted from `today`, and the character
    spans they took (to cut them out of a title). (None, None, []) when none is named."""
    date: dt.date | None = None
    time: dt.time | None = None
    spans: list[tuple[int, int]] = []
    for m in _DATE.finditer(text):
        day = _parse_date(m.group(1), today)
        if day is not None:
            date = day
            spans.append(m.span())
            break
    for m in _TIME.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        if m.group(7) and date is None:
            continue  # a bare "14:30" counts only beside a date (alone it may be a score or a ratio)
        t = _parse_time(m)
        if t is not None:
            time = t
            spans.append(m.span())
            break
    return date, time, spans


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    for a, b in sorted(spans, reverse=True):
        text = text[:a] + " " + text[b:]
    return re.sub(r"\s{2,}", " ", text).strip()


# --------------------------------------------------------------------------------------------
# what is asked
# --------------------------------------------------------------------------------------------

_EMAIL_ADDRESS = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_SUBJECT = re.compile(
    r"\bsubject(?: line)?\s*(?:of|:|is|=)?\s*['\"\u2018\u201c]([^'\"\u2019\u201d]{1,200})['\"\u2019\u201d]",
    re.I,
)
_REMIND = re.compile(r"\b(remind(?:er)?s?|ping me|nudge me|alert me|reminder)\b", re.I)
_WRITE_EMAIL = re.compile(
    r"\b(write|draft|compose|send|queue)\b.{0,40}\b(e-?mail|message|letter|note)\b", re.I
)
_TASK = re.compile(
    r"\b(create|add|make|set up|log|new|open|put)\b.{0,30}\b(tasks?|to-?dos?|action items?)\b|^\s*tasks?\s*:",
    re.I,
)
_DISCOUNT = re.compile(r"\b(discount\w*|off)\b", re.I)
_GRANT = re.compile(r"\b(approve|accept|grant|give|offer|agree to|go ahead|ok|okay)\b", re.I)
#: A percent as people write it: "15%", "12 percent", "7.5 pct" (the closing crew reads them too).
PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*(?:%|percent\b|per cent\b|pct\b)", re.I)
_ASKED = re.compile(
    r"\b(ask\w*|want\w*|request\w*|demand\w*)\b[^%]{0,30}?(\d{1,3}(?:\.\d+)?)\s*(?:%|percent)", re.I
)
_WON = re.compile(
    r"\b(?:we|they|i)\s+(?:just\s+)?(?:won|closed|signed)\b|\b(?:mark|close|set|move|put|book)\b.{0,60}\b(?:as\s+|to\s+)?"
    r"(?:closed[ -])?won\b|^\s*won\s*(?:[:!,-]|(?=[a-z]*\d)[a-z0-9]{8}\b)|\bis\s+(?:closed[ -])?won\b",
    re.I,
)
_LOST = re.compile(
    r"\b(?:we|they|i)\s+(?:just\s+)?lost\b|\b(?:mark|close|set|move|put)\b.{0,60}\b(?:as\s+|to\s+)?"
    r"(?:closed[ -])?lost\b|^\s*lost\s*(?:[:!,-]|(?=[a-z]*\d)[a-z0-9]{8}\b)|\bis\s+(?:closed[ -])?lost\b",
    re.I,
)
_MONEY = re.compile(
    r"(?:\$|usd\s?|us\$)\s?(\d[\d,]*(?:\.\d+)?)\s*(k|thousand)?"
    r"|(\d[\d,]*(?:\.\d+)?)\s*(k|thousand)?\s*(?:usd|dollars|bucks)\b"
    r"|\b(?:for|at|value(?:\s+of)?|valued at|worth|amount(?:\s+of)?|total(?:\s+of)?|of)\s+"
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(k|thousand)?\b",
    re.I,
)
#: Where a lost deal's reason is written, most explicit first.
_REASONS = (
    re.compile(r"\breason\s*[:=-]?\s*(.+)$", re.I),
    re.compile(r"\b(?:because|since|due to)\s+(.+)$", re.I),
    re.compile(r"\blost\b[^,;:.]*[,;:]\s*(.+)$", re.I),
)
_QUESTION = re.compile(
    r"^\s*(how|what|which|who|whom|whose|when|where|why|did|do|does|have|has|is|are|was|were|show|list|"
    r"tell me|give me)\b",
    re.I,
)
#: Words of a question about figures anywhere in the message ("I want to know how many deals we
#: won"): not a request to mark a deal won.
_ASKS_FIGURES = re.compile(
    r"\b(how (?:many|much)|what|which|who|when|where|why|number of|total|count|list|show|win rate)\b", re.I
)
_OPP_ID = re.compile(r"\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{8}\b")
_BACK_REFERENCE = re.compile(
    r"\b(it|them|that one|this one|that deal|this deal|the deal|that opportunity|this opportunity|"
    r"the opportunity|their)\b",
    re.I,
)


def _clean(text: str) -> str:
    text = re.sub(r"^[\s,:;.-]+|[\s,:;.!-]+$", "", text)
    return text[:1].upper() + text[1:] if text else text


def _amount(m: re.Match[str]) -> float | None:
    raw = m.group(1) or m.group(3) or m.group(5)
    scale = m.group(2) or m.group(4) or m.group(6)
    if raw is None:
        return None
    value = float(raw.replace(",", ""))
    return value * 1000 if scale else value


def won_value(message: str) -> float | None:
    """The deal value named with the win ("$55", "at 4,750 dollars", "signed for 25,430"), or None.
    Dates, opportunity ids and percents are not values."""
    text = _OPP_ID.sub(" ", message)
    text = re.sub(r"\b\d{4}-\d{2}-\d{2}\b", " ", text)
    for m in _MONEY.finditer(text):
        if text[m.end() : m.end() + 1] == "%":
            continue
        value = _amount(m)
        if value is not None:
            return value
    return None


def _lost_reason(message: str, lost: re.Match[str]) -> str | None:
    """Why the deal was lost, in the rep's words: after "reason:", "because", "lost, ...", or the
    clause before ", so ..." ("Donware cancelled their budget, so close it as lost")."""
    for pattern in _REASONS:
        m = pattern.search(message)
        if m:
            return _clean(_OPP_ID.sub("", m.group(1))) or None
    before = re.match(r"^(.{6,}?),?\s+(?:so|therefore|which means)\b", message, re.I)
    if before and before.end() <= lost.start() + 1:
        return _clean(before.group(1))
    return None


def _stage_words(message: str) -> str | None:
    won, lost = _WON.search(message), _LOST.search(message)
    if won and not lost:
        return "won"
    if lost and not won:
        return "lost"
    return None


def _reminder(message: str, now: dt.datetime) -> ActionRequest:
    date, time, spans = find_due(message, now.date())
    due = None
    if date is not None:
        due = dt.datetime.combine(date, time or dt.time(DEFAULT_HOUR))
    elif time is not None:  # "at 4pm": today's, unless that time has passed
        day = now.date() if time > now.time() else now.date() + dt.timedelta(days=1)
        due = dt.datetime.combine(day, time)
    rest = _cut(message, spans)
    m = re.search(r"(?:\b(?:to|about|that|for)|:)\s+(.+)$", re.sub(_REMIND, " ", rest, count=1), re.I)
    what = _clean(m.group(1)) if m else None
    return ActionRequest(kind="create_reminder", due_at=due, what=what or None)


def _tasks(message: str, today: dt.date) -> list[TaskRequest]:
    """The tasks of a message: the words after the request's colon or "to", split on " and " when
    each part has its own date ("book the site visit by 2027-01-08 and send the pricing sheet by
    2027-01-12"), each with the date named in it (else the message's)."""
    body = message
    colon = message.find(":")
    if colon >= 0:
        body = message[colon + 1 :]
    else:
        # "a task to prepare the demo", "a task on that deal to confirm the address"
        m = re.search(r"\b(?:tasks?|to-?dos?)\b.*?\bto\s+(.+)$", message, re.I)
        body = m.group(1) if m else message
    parts = [p for p in re.split(r"\s*(?:;|\band\b(?=[^,;]*\b(?:by|on|due|before)\b))\s*", body) if p.strip()]
    dated = [find_due(p, today) for p in parts]
    if len(parts) > 1 and not all(d for d, _, _ in dated):
        parts, dated = [body], [find_due(body, today)]
    default = find_due(message, today)[0]
    tasks = []
    for part, (date, _time, spans) in zip(parts, dated, strict=True):
        title = _cut(part, spans)
        title = re.sub(r"(?:,\s*)?\b(?:due|by|on|before)\s*$", "", title, flags=re.I)
        title = re.sub(r"^(?:to\s+)", "", title.strip(), flags=re.I)
        title = _clean(title)
        if title:
            tasks.append(TaskRequest(title=title, due=date or default))
    return tasks


def _email(message: str) -> ActionRequest:
    to = _EMAIL_ADDRESS.search(message)
    subject = _SUBJECT.search(message)
    rest = _SUBJECT.sub(" ", message)
    say = re.search(
        r"\b(?:say(?:ing)?|tell(?:ing)?(?: \w+)?|let(?:ting)? \w+ know)\s+(?:that\s+)?(.+)$", rest, re.I
    )
    return ActionRequest(
        kind="queue_email",
        to=to.group(0) if to else None,
        subject=subject.group(1).strip() if subject else None,
        what=_clean(say.group(1)) if say else None,
    )


def _discount(message: str) -> ActionRequest | None:
    percents = [float(m.group(1)) for m in PERCENT.finditer(message)]
    if not percents:
        return None
    asked = _ASKED.search(message)
    requested = float(asked.group(2)) if asked else None
    granted = [p for p in percents if p != requested] if requested is not None else percents
    percent = granted[-1] if granted else percents[-1]
    return ActionRequest(
        kind="accept_discount",
        percent=percent,
        requested_percent=requested if requested is not None and requested != percent else None,
    )


def request_kind(message: str) -> RequestKind | None:
    """Which action `message` asks for, from its words alone (no dates parsed), or None: the
    first step of `read_request`, and what the chat router needs to send a request to its crew."""
    text = message.strip()
    if _TASK.search(text):
        return "create_task"
    if _REMIND.search(text) and not _WRITE_EMAIL.search(text):
        return "create_reminder"
    if _EMAIL_ADDRESS.search(text) and re.search(r"\b(e-?mail|send|queue|write|draft|message)\b", text, re.I):
        return "queue_email"
    if _DISCOUNT.search(text) and _GRANT.search(text) and PERCENT.search(text):
        return "accept_discount"
    if _stage_words(text) is not None and not _QUESTION.match(text) and not _ASKS_FIGURES.search(text):
        return "move_stage"  # "what have we won from Initech?" asks for figures
    return None


def read_request(message: str, *, now: dt.datetime) -> ActionRequest | None:
    """The action `message` asks for, or None when it asks for none of these (a question, a
    draft to write, work the crews plan). `now`: the rep's local wall time (naive), which
    relative dates count from.

    Reminders and tasks are recognised by their words ("remind me", "set a reminder", "add a
    task"); an email only when it names an address to send to (drafting to an account's buyer is
    the closing crew's own reading); a discount when a percent is to be approved or given; a stage
    move only when won or lost is asked (moves to a named stage are read by the pipeline crew
    with the pipeline's stage names).
    """
    text = message.strip()
    kind = request_kind(text)
    back = _BACK_REFERENCE.search(_EMAIL_ADDRESS.sub(" ", text)) is not None
    found: ActionRequest | None = None
    if kind == "create_task":
        found = ActionRequest(kind="create_task", tasks=_tasks(text, now.date()))
    elif kind == "create_reminder":
        found = _reminder(text, now)
    elif kind == "queue_email":
        found = _email(text)
    elif kind == "accept_discount":
        found = _discount(text)
    elif kind == "move_stage":
        if _stage_words(text) == "won":
            found = ActionRequest(kind="move_stage", stage="won", value=won_value(text))
        else:
            lost = _LOST.search(text)
            assert lost is not None
            found = ActionRequest(kind="move_stage", stage="lost", note=_lost_reason(text, lost))
    return found.model_copy(update={"refers_back": back}) if found is not None else None
