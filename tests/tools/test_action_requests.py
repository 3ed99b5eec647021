"""Reading action requests from a rep's words (`tools.action_requests`): the kind, the dates
counted from a fixed local time, the won value and lost reason, emails and discounts; and
questions that use the same words are not requests."""

from __future__ import annotations

import datetime as dt

import pytest

from tools.action_requests import find_due, read_request, request_kind

#: A Thursday morning, local time.
NOW = dt.datetime(2027, 3, 4, 8, 15)


@pytest.mark.parametrize(
    ("message", "due"),
    [
        ("Remind me tomorrow at 4pm to chase the signed order", "2027-03-05T16:00"),
        ("Please set a reminder in 2 weeks to check on the pilot", "2027-03-18T09:00"),
        ("remind me next Monday at 9:30 about the renewal", "2027-03-08T09:30"),
        ("Ping me on 3 April 2027 about the budget review", "2027-04-03T09:00"),
        ("Reminder for 2027-05-10 at 16:45: call the CFO", "2027-05-10T16:45"),
        ("Remind me Thursday to send the deck", "2027-03-11T09:00"),  # said on a Thursday: next week's
        ("Remind me at 7am to prepare the call", "2027-03-05T07:00"),  # 07:00 has passed today
        ("Remind me at noon to book the room", "2027-03-04T12:00"),
        ("Remind me tomorrow at 3 to call the buyer", "2027-03-05T15:00"),  # working hours: 15:00
    ],
)
def test_reminder_due_times_count_from_the_reps_local_now(message: str, due: str) -> None:
    req = read_request(message, now=NOW)
    assert req is not None and req.kind == "create_reminder"
    assert req.due_at is not None and req.due_at.isoformat(timespec="minutes") == due


def test_a_reminder_keeps_what_to_do_without_its_date_words() -> None:
    req = read_request("Set a reminder for Friday at 11 to send Betaco the signed contract", now=NOW)
    assert req is not None and req.what == "Send Betaco the signed contract"
    assert req.due_at == dt.datetime(2027, 3, 5, 11, 0)
    req = read_request("Remind me to call them", now=NOW)
    assert req is not None and req.due_at is None and req.refers_back


def test_tasks_each_get_their_own_date_and_title() -> None:
    req = read_request(
        "Add two tasks to deal AB12CD34: draft the SOW by 2027-03-10 and book the kickoff by 2027-03-15",
        now=NOW,
    )
    assert req is not None and req.kind == "create_task"
    assert [(t.title, t.due) for t in req.tasks] == [
        ("Draft the SOW", dt.date(2027, 3, 10)),
        ("Book the kickoff", dt.date(2027, 3, 15)),
    ]
    req = read_request("Create a task to collect the tax forms from Betaco by next Wednesday", now=NOW)
    assert req is not None and [(t.title, t.due) for t in req.tasks] == [
        ("Collect the tax forms from Betaco", dt.date(2027, 3, 10))
    ]


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("We closed AB12CD34, mark it won for $12,400", 12400.0),
        ("Mark the Betaco deal as won at 3k dollars", 3000.0),
        ("they signed! set AB12CD34 to won, value 980", 980.0),
        ("Mark AB12CD34 as won on 2027-01-02", None),  # a date and an id are not values
    ],
)
def test_a_win_carries_its_value(message: str, value: float | None) -> None:
    req = read_request(message, now=NOW)
    assert req is not None and req.kind == "move_stage" and req.stage == "won"
    assert req.value == value


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Mark AB12CD34 as lost because they froze all spending", "They froze all spending"),
        ("Lost AB12CD34 - reason: went with the incumbent", "Went with the incumbent"),
        ("Betaco chose another vendor, so mark their deal as lost", "Betaco chose another vendor"),
        ("close AB12CD34 as lost", None),
    ],
)
def test_a_loss_carries_its_reason(message: str, reason: str | None) -> None:
    req = read_request(message, now=NOW)
    assert req is not None and req.kind == "move_stage" and req.stage == "lost"
    assert req.note == reason


def test_emails_and_discounts_keep_what_the_rep_set() -> None:
    req = read_request(
        'Send jo.king@example.com an email, subject "Pilot results", telling her the pilot passed', now=NOW
    )
    assert req is not None and req.kind == "queue_email"
    assert (req.to, req.subject, req.what) == ("jo.king@example.com", "Pilot results", "The pilot passed")
    req = read_request("Betaco wants 18% off; offer them 10% instead", now=NOW)
    assert req is not None and req.kind == "accept_discount"
    assert (req.percent, req.requested_percent) == (10.0, 18.0)


@pytest.mark.parametrize(
    "message",
    [
        "How many deals have we won this year?",
        "I'd like to know how many deals we lost in Q3",
        "Which reps won the most revenue?",
        "Write a reminder email to Betaco about the pending quote",
        "Which onboarding tasks are overdue?",
        "What is our win rate?",
        "Won revenue by product",
        "Lost deals by rep last quarter",
    ],
)
def test_questions_with_the_same_words_are_not_requests(message: str) -> None:
    assert request_kind(message) is None
    assert read_request(message, now=NOW) is None


def test_find_due_names_the_spans_it_read() -> None:
    text = "book the demo by 2027-03-20 at 14:00"
    date, time, spans = find_due(text, NOW.date())
    assert (date, time) == (dt.date(2027, 3, 20), dt.time(14, 0))
    assert all(text[a:b].strip() for a, b in spans) and "demo" not in "".join(text[a:b] for a, b in spans)
