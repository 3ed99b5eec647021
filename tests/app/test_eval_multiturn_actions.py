"""`flowstate eval multiturn` and `flowstate eval actions`: scoring against fake REST calls
(canned ChatResult dicts, no server), file errors and the commands' output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from app.commands import eval_actions, evaluate
from app.commands.eval_actions import (
    ActionCase,
    ActionFileError,
    load_actions,
    loosely_same,
    run_actions,
    stored_wall_time,
    wall_time,
)
from app.commands.eval_multiturn import ConversationFileError, load_conversations, run_conversations

BASE = "http://flowstate.test"


class FakeServer:
    """Answers `POST /api/chat` from canned replies keyed by message (an Exception is raised),
    `POST .../resume` with `resume`, and `GET` from `reads` keyed by path and query; records
    every call."""

    def __init__(
        self,
        replies: dict[str, dict[str, Any] | Exception],
        resume: dict[str, Any] | None = None,
        reads: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.replies, self.resume, self.reads = replies, resume, reads or {}
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.got: list[str] = []
        self.threads = 0

    def post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        self.posts.append((url.removeprefix(BASE), body))
        if url.endswith("/resume"):
            assert self.resume is not None, "unexpected approval"
            return self.resume
        canned = self.replies[body["message"]]
        if isinstance(canned, Exception):
            raise canned
        if "thread_id" not in body:
            self.threads += 1
        return {"thread_id": body.get("thread_id", f"t{self.threads}"), **canned}

    def get(self, url: str) -> dict[str, Any]:
        path = url.removeprefix(BASE)
        self.got.append(path)
        return self.reads[path]


def _reply(text: str, pending: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"reply": text, "intent": "pipeline", "pending_action": pending, "usage": {"llm_calls": 2}}


def _pending(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"id": "int-1", "kind": kind, "summary": f"{kind} proposal", "params": params}


def _approved(kind: str, params: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    action = {"kind": kind, "summary": f"{kind} proposal", "params": params}
    outcome = {"decision": "approve", "status": "done", "action": action, "result": result}
    return {"thread_id": "t1", "reply": "Done.", "action_result": outcome}


def _case(**fields: Any) -> ActionCase:
    return ActionCase.model_validate({"id": "c1", **fields})


# --------------------------------------------------------------------------------------------
# multiturn
# --------------------------------------------------------------------------------------------


def test_multiturn_reuses_the_first_thread_and_scores_each_turn() -> None:
    convs: list[dict[str, Any]] = [
        {
            "id": "hm-a",
            "turns": [
                {
                    "message": "How many GTX Basic deals did we win?",
                    "answer": 915,
                    "kind": "number",
                    "tolerance": 0,
                },
                {"message": "and for MG Special?", "answer": 793, "kind": "number", "tolerance": 0},
            ],
        },
        {
            "id": "hm-b",
            "turns": [{"message": "Who manages her?", "answer": ["Celia Rouche"], "kind": "text"}],
        },
    ]
    fake = FakeServer(
        {
            "How many GTX Basic deals did we win?": _reply("We won 915 of them."),
            "and for MG Special?": _reply("MG Special: 790."),
            "Who manages her?": _reply("Celia Rouche manages her."),
        }
    )
    summary = run_conversations(BASE, convs, fake.post)
    bodies = [body for _, body in fake.posts]
    assert bodies[0] == {"message": "How many GTX Basic deals did we win?"}
    assert bodies[1] == {"message": "and for MG Special?", "thread_id": "t1"}
    assert bodies[2] == {"message": "Who manages her?"}  # a new conversation, a new thread
    assert [(r["id"], r["right"], r["thread_id"]) for r in summary["rows"]] == [
        ("hm-a#1", True, "t1"),
        ("hm-a#2", False, "t1"),
        ("hm-b#1", True, "t2"),
    ]
    assert (summary["n"], summary["right"], summary["accuracy"]) == (3, 2, 0.667)
    assert (summary["conversations"], summary["conversations_right"]) == (2, 1)
    assert summary["llm_calls_per_turn"] == 2


def test_multiturn_failed_turn_is_wrong_and_the_thread_goes_on() -> None:
    turns = [
        {"message": "one", "answer": 1, "kind": "number"},
        {"message": "two", "answer": 2, "kind": "number"},
        {"message": "three", "answer": 3, "kind": "number"},
    ]
    fake = FakeServer({"one": _reply("1"), "two": TimeoutError("slow"), "three": _reply("3")})
    summary = run_conversations(BASE, [{"id": "c", "turns": turns}], fake.post)
    assert [r["right"] for r in summary["rows"]] == [True, False, True]
    assert summary["errors"] == 1 and summary["rows"][1]["error"] == "TimeoutError"
    assert fake.posts[2][1] == {"message": "three", "thread_id": "t1"}


def test_conversation_file_errors_name_the_line_and_turn(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    f.write_text(
        '{"id": "a", "turns": [{"message": "x", "answer": 1, "kind": "number"}]}\n'
        '{"id": "b", "turns": [{"message": "x", "answer": 1, "kind": "number"}, {"message": "y"}]}\n'
    )
    with pytest.raises(ConversationFileError, match=r"m.jsonl:2: turn 2: missing answer, kind"):
        load_conversations(f)
    f.write_text('{"id": "a", "turns": []}\n')
    with pytest.raises(ConversationFileError, match=r"m.jsonl:1: turns must be a non-empty list"):
        load_conversations(f)


# --------------------------------------------------------------------------------------------
# actions: comparisons
# --------------------------------------------------------------------------------------------


def test_wall_times() -> None:
    assert wall_time("2026-12-03T15:00:00-05:00") == "2026-12-03T15:00"
    assert wall_time("2026-12-03") == "2026-12-03T09:00"
    assert wall_time("tomorrow") is None
    # stored as UTC, read back in the zone the approved value was written in
    assert stored_wall_time("2026-12-03T20:00:00+00:00", "2026-12-03T15:00:00-05:00") == "2026-12-03T15:00"
    assert stored_wall_time("2026-12-03T15:00:00Z", "2026-12-03T15:00") == "2026-12-03T15:00"


def test_loose_text_match() -> None:
    assert loosely_same("the customer picked a competitor", "Customer chose a competitor")
    assert loosely_same("budget cancelled", "Donware cancelled their budget for this year")
    assert not loosely_same("no budget until 2028", "they went with a competitor")
    assert not loosely_same("Book the site visit", "")


# --------------------------------------------------------------------------------------------
# actions: scoring a line
# --------------------------------------------------------------------------------------------


def test_right_proposal_and_state_with_deal_read_by_id() -> None:
    case = _case(
        message="ok mark that one won, they signed for 25,430",
        history=["Show me the open GTK 500 deal with Warephase"],
        expect={"kind": "move_stage", "params": {"deal": "125VIRMX", "stage": "won", "value": 25430}},
        state={"deal": "125VIRMX", "stage": "won", "value": 25430},
    )
    params = {"deal_id": 7, "stage": "Closed Won", "value": "25430"}
    fake = FakeServer(
        {
            "Show me the open GTK 500 deal with Warephase": _reply("125VIRMX is in Engaging."),
            case.message: _reply("Shall I mark it won?", _pending("move_stage", params)),
        },
        resume=_approved("move_stage", params, {"deal_id": 7, "deal": "125VIRMX", "stage": "won"}),
        reads={"/api/deals/7": {"id": 7, "external_id": "125VIRMX", "stage": "won", "value": 25430.0}},
    )
    summary = run_actions(BASE, [case], fake.post, fake.get)
    row = summary["rows"][0]
    assert row["reasons"] == [] and row["right"] and summary["accuracy"] == 1.0
    assert fake.posts[1][1] == {"message": case.message, "thread_id": "t1"}  # history first, same thread
    assert fake.posts[2] == ("/api/chat/t1/resume", {"decision": "approve", "action_id": "int-1"})


def test_state_wrong_when_the_crm_does_not_show_it() -> None:
    case = _case(
        message="Move deal 01XZ9CRY to Qualified.",
        expect={"kind": "move_stage", "params": {"deal": "01XZ9CRY", "stage": "qualified"}},
        state={"deal": "01XZ9CRY", "stage": "qualified"},
    )
    params = {"deal": "01XZ9CRY", "stage": "qualified"}
    fake = FakeServer(
        {case.message: _reply("Move it?", _pending("move_stage", params))},
        resume=_approved("move_stage", params, {"deal_id": 3}),
        reads={"/api/deals/3": {"id": 3, "external_id": "01XZ9CRY", "stage": "engaging", "value": None}},
    )
    row = run_actions(BASE, [case], fake.post, fake.get)["rows"][0]
    assert row["proposal_right"] and not row["state_right"] and not row["right"]
    assert row["reasons"] == ["state: stage engaging != qualified"]


def test_wrong_kind_is_not_approved() -> None:
    case = _case(
        message="Create a task to prepare the Konmatfix demo, due 2027-02-03",
        expect={
            "kind": "create_task",
            "params": {"tasks": [{"due": "2027-02-03", "title": "Prepare the demo"}]},
        },
        state={"task_due": ["2027-02-03"]},
    )
    pending = _pending("queue_email", {"to": "a@example.com", "subject": "Demo"})
    fake = FakeServer({case.message: _reply("Send this?", pending)})
    summary = run_actions(BASE, [case], fake.post, fake.get)
    row = summary["rows"][0]
    assert row["reasons"][0] == "proposal: kind queue_email != create_task"
    assert not row["state_right"] and row["got"] == "queue_email"
    assert [url for url, _ in fake.posts] == ["/api/chat"]  # nothing approved
    assert summary["per_kind"] == {"create_task": {"n": 1, "right": 0, "accuracy": 0.0}}


def _reminder_case() -> ActionCase:
    return _case(
        message="Set a reminder for tomorrow at 3pm to call Zoomit's buyer",
        today="2026-12-02",
        expect={"kind": "create_reminder", "params": {"due_at": "2026-12-03T15:00"}},
        state={"reminder_due": "2026-12-03T15:00"},
    )


def test_due_at_is_compared_as_local_wall_time() -> None:
    case = _reminder_case()
    params = {"due_at": "2026-12-03T15:00:00-05:00", "message": "Call Zoomit's buyer"}
    fake = FakeServer(
        {case.message: _reply("Set it?", _pending("create_reminder", params))},
        resume=_approved("create_reminder", params, {"reminder_id": 11}),
        reads={"/api/reminders/11": {"id": 11, "deal_id": None, "due_at": "2026-12-03T20:00:00Z"}},
    )
    summary = run_actions(BASE, [case], fake.post, fake.get)
    assert summary["rows"][0]["reasons"] == [] and summary["right"] == 1
    assert summary["today"] == ["2026-12-02"]


def test_due_at_at_the_wrong_hour_is_wrong() -> None:
    case = _reminder_case()
    params = {"due_at": "2026-12-03", "message": "Call Zoomit's buyer"}
    fake = FakeServer(
        {case.message: _reply("Set it?", _pending("create_reminder", params))},
        resume=_approved("create_reminder", params, {"reminder_id": 12}),
        reads={"/api/reminders/12": {"id": 12, "deal_id": None, "due_at": "2026-12-03T09:00:00+00:00"}},
    )
    row = run_actions(BASE, [case], fake.post, fake.get)["rows"][0]
    assert row["reasons"] == [
        "proposal: due_at 2026-12-03T09:00 != 2026-12-03T15:00",
        "state: reminder_due 2026-12-03T09:00 != 2026-12-03T15:00",
    ]


def test_tasks_match_in_order_with_loose_titles() -> None:
    expected = [
        {"due": "2027-01-08", "title": "Book the site visit"},
        {"due": "2027-01-12", "title": "Send the pricing sheet"},
    ]
    case = _case(
        message="Make two tasks for deal 0STR2QEA",
        expect={"kind": "create_task", "params": {"deal": "0STR2QEA", "tasks": expected}},
        state={"deal": "0STR2QEA", "task_due": ["2027-01-08", "2027-01-12"]},
    )
    tasks = [
        {"title": "Book a site visit with the client", "due": "2027-01-08T09:00:00+01:00"},
        {"title": "Email them the pricing sheet", "due": "2027-01-12"},
    ]
    params = {"deal": "0STR2QEA", "tasks": tasks}
    fake = FakeServer(
        {case.message: _reply("Create these?", _pending("create_task", params))},
        resume=_approved("create_task", params, {"reminder_ids": [21, 22], "tasks": 2}),
        reads={
            "/api/reminders/21": {"id": 21, "deal_id": 9, "due_at": "2027-01-08T08:00:00+00:00"},
            "/api/reminders/22": {"id": 22, "deal_id": 9, "due_at": "2027-01-12T09:00:00+00:00"},
            "/api/deals/9": {"id": 9, "external_id": "0STR2QEA"},
        },
    )
    assert run_actions(BASE, [case], fake.post, fake.get)["rows"][0]["reasons"] == []

    swapped = {"deal": "0STR2QEA", "tasks": [tasks[1], tasks[0]]}
    fake = FakeServer({case.message: _reply("Create these?", _pending("create_task", swapped))})
    fake.resume = _approved("create_task", swapped, {"reminder_ids": []})
    reasons = run_actions(BASE, [case], fake.post, fake.get)["rows"][0]["reasons"]
    assert "proposal: task 1 due 2027-01-12 != 2027-01-08" in reasons

    one = {"deal": "0STR2QEA", "tasks": tasks[:1]}
    fake = FakeServer({case.message: _reply("Create it?", _pending("create_task", one))})
    fake.resume = _approved("create_task", one, {"reminder_ids": []})
    reasons = run_actions(BASE, [case], fake.post, fake.get)["rows"][0]["reasons"]
    assert reasons[0] == "proposal: tasks 1 != 2"


def test_lost_reason_is_matched_loosely() -> None:
    case = _case(
        message="Mark 059K86LU as lost, the customer picked a competitor",
        expect={
            "kind": "move_stage",
            "params": {"deal": "059K86LU", "note": "the customer picked a competitor", "stage": "lost"},
        },
        state={"deal": "059K86LU", "stage": "lost"},
    )

    def proposal(note: str) -> list[str]:
        params = {"deal": "059K86LU", "stage": "lost", "note": note}
        fake = FakeServer(
            {case.message: _reply("Mark it lost?", _pending("move_stage", params))},
            resume=_approved("move_stage", params, {"deal_id": 5}),
            reads={"/api/deals/5": {"id": 5, "external_id": "059K86LU", "stage": "lost", "value": 0}},
        )
        reasons: list[str] = run_actions(BASE, [case], fake.post, fake.get)["rows"][0]["reasons"]
        return reasons

    assert proposal("Customer chose a competitor") == []
    assert proposal("Pricing") == ["proposal: note 'Pricing' !~ 'the customer picked a competitor'"]


def test_discount_state_is_read_from_the_threads_event() -> None:
    case = _case(
        message="Approve a 10% discount on 11V16SZZ",
        expect={"kind": "accept_discount", "params": {"deal": "11V16SZZ", "percent": 10}},
        state={"deal": "11V16SZZ", "discount_percent": 10},
    )
    params = {"deal": "11V16SZZ", "percent": 10.0}
    event = {"id": 1, "kind": "discount.accepted", "deal_id": 4, "payload": {"percent": 10.0}}
    fake = FakeServer(
        {case.message: _reply("Accept it?", _pending("accept_discount", params))},
        resume=_approved("accept_discount", params, {"percent": 10.0, "note_id": 3}),
        reads={
            "/api/events?kind=discount.accepted&thread_id=t1&limit=1": {"items": [event], "total": 1},
            "/api/deals/4": {"id": 4, "external_id": "11V16SZZ"},
        },
    )
    assert run_actions(BASE, [case], fake.post, fake.get)["rows"][0]["reasons"] == []


@pytest.mark.parametrize(
    ("reply", "pending", "right", "reasons"),
    [
        ("Which deal do you mean?", None, True, []),
        ("I'll move it.", None, False, ["proposal: the reply asks nothing (no '?')"]),
        (
            "Move 0DRC1U9Q?",
            _pending("move_stage", {"deal": "0DRC1U9Q", "stage": "negotiation"}),
            False,
            ["proposal: proposed move_stage instead of asking", "state: an action waits for approval"],
        ),
    ],
)
def test_clarify_line(reply: str, pending: dict[str, Any] | None, right: bool, reasons: list[str]) -> None:
    case = _case(message="Move the deal to negotiation", expect={"kind": "clarify"}, state={})
    fake = FakeServer({case.message: _reply(reply, pending)})
    row = run_actions(BASE, [case], fake.post, fake.get)["rows"][0]
    assert (row["right"], row["reasons"]) == (right, reasons)
    assert len(fake.posts) == 1  # a clarify line approves nothing


def test_failed_request_counts_the_line_wrong() -> None:
    case = _case(
        message="Move it to negotiation",
        history=["What's the status of deal 0DRC1U9Q?"],
        expect={"kind": "move_stage", "params": {"deal": "0DRC1U9Q", "stage": "negotiation"}},
        state={"deal": "0DRC1U9Q", "stage": "negotiation"},
    )
    fake = FakeServer({"What's the status of deal 0DRC1U9Q?": ConnectionError("refused")})
    summary = run_actions(BASE, [case], fake.post, fake.get)
    row = summary["rows"][0]
    assert not row["right"] and row["error"] == "ConnectionError"
    assert row["reasons"] == ["request: history 1 failed (ConnectionError: refused)"]
    assert summary["errors"] == 1 and len(fake.posts) == 1  # the message needs the history


def test_actions_file_errors_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    good = '{"id": "a", "message": "m", "expect": {"kind": "clarify"}, "state": {}}\n'
    f.write_text(good + '{"id": "b", "message": "m", "expect": {"kind": "delete_deal"}, "state": {}}\n')
    with pytest.raises(ActionFileError, match=r"a.jsonl:2: expect.kind: .*unknown kind 'delete_deal'"):
        load_actions(f)
    f.write_text(
        good + good + '{"id": "c", "message": "m", "expect": {"kind": "clarify"}, "state": {"mood": 1}}\n'
    )
    with pytest.raises(ActionFileError, match=r"a.jsonl:3: state: unknown key mood"):
        load_actions(f)
    f.write_text("{not json\n")
    with pytest.raises(ActionFileError, match=r"a.jsonl:1: not JSON"):
        load_actions(f)


def test_heldout_files_load() -> None:
    root = Path(__file__).resolve().parents[2] / "eval"
    assert len(load_conversations(root / "multiturn_heldout.jsonl")) == 20
    cases = load_actions(root / "actions_heldout.jsonl")
    assert len(cases) == 30 and sum(c.expect.kind == "clarify" for c in cases) == 3


# --------------------------------------------------------------------------------------------
# the commands
# --------------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    evaluate.register(app)
    return app


def test_commands_exit_2_on_a_malformed_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "turns": [{"message": "x", "answer": 1, "kind": "number"}]}\n{"id": \n')
    for command in ("multiturn", "actions"):
        result = CliRunner().invoke(_app(), [command, str(bad)])
        assert result.exit_code == 2, (command, result.output)
        assert "bad.jsonl:" in result.output


def test_actions_command_warns_about_today_and_fails_under(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _reminder_case().model_dump(mode="json")
    f = tmp_path / "a.jsonl"
    f.write_text(json.dumps(case) + "\n")
    fake = FakeServer({case["message"]: _reply("Done, I set nothing.")})
    monkeypatch.setattr(eval_actions, "http_post", lambda timeout_s, token=None: fake.post)
    monkeypatch.setattr(eval_actions, "http_get", lambda timeout_s, token=None: fake.get)
    result = CliRunner().invoke(_app(), ["actions", str(f), "--url", BASE, "--json", "--fail-under", "0.5"])
    assert result.exit_code == 1, result.output
    assert "FLOWSTATE_TODAY=2026-12-02" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["n"], summary["right"], summary["proposal_accuracy"]) == (1, 0, 0.0)
    assert summary["rows"][0]["reasons"][0] == "proposal: nothing proposed (expected create_reminder)"
