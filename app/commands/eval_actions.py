"""`flowstate eval actions FILE [--json] [--url URL] [--limit N] [--timeout S] [--fail-under ACC]`.

Scores action requests (`eval/actions_heldout.jsonl`: `{"id", "message", "history"?, "today"?,
"expect": {"kind", "params"?}, "state"}`) against a running Flowstate, over REST only. Each line
gets a new thread: every `history` message is sent in order (`POST /api/chat`, the first one
starts the thread), then `message`. Two things are scored on what the last reply proposes
(`ChatResult.pending_action`: `{"id", "kind", "summary", "params"}`):

- proposal: for `expect.kind == "clarify"`, nothing is pending and the reply asks (holds a "?");
  else the pending kind is `expect.kind` and every key of `expect.params` matches the pending
  params: `deal` is `params["deal"]` (the opportunity id; with only `deal_id`, the
  `external_id` of `GET /api/deals/{deal_id}`); `stage` the same stage key (a display name
  counts as its key, per config/pipeline.yaml); `value`, `percent`, `requested_percent` within
  0.01; `due_at` the same local wall time, `YYYY-MM-DDTHH:MM` as written (the offset is not
  compared; a date alone means 09:00); `to`, `subject` equal ignoring case and outer spaces;
  `note`, `title` loosely (`loosely_same`); `tasks` as many, in order, each `due` on its date
  and `title` loosely.
- state, when the pending kind matched (even if a parameter did not): the action is approved
  (`POST /api/chat/{thread_id}/resume` `{"decision": "approve", "action_id": pending id}`), it
  must come back done (`action_result.status`), and the CRM must then show `state`:
  `deal` + `stage` + `value`? on `GET /api/deals/{deal_id}` (`deal_id` from the action's result);
  `reminder_due` / `task_due` on `GET /api/reminders/{id}` for the reminder ids in the result
  (else the reminders of the action's `deal_id`, `GET /api/reminders?deal_id=`), the stored
  instant read as wall time in the zone of the approved `due_at` / task `due` (UTC when it
  carries no offset, as `tools.actions` stores it); `email_to` / `email_subject` on
  `GET /api/outbox/{outbox_id}`; `discount_percent` on the thread's "discount.accepted" event
  (`GET /api/events?kind=discount.accepted&thread_id=`, its `payload.percent`), where
  `tools.actions` records an accepted discount. A `deal` with any other state is the deal of the
  record the approval wrote. For a clarify line, state is right when nothing waits for approval.

A line is right when both are. A request that fails (connection, timeout, non-200) or a turn
that answers with `error` makes its line wrong (and counts as an error); a failed history
message ends the line there.

Relative dates: a line with `today` counts "tomorrow" or "next Tuesday" from that date, so it
must be scored against a server whose clock reads it: started with `FLOWSTATE_TODAY=<today>`
(ISO date). Approvals change the CRM and every line assumes the data as imported: score against
a freshly imported CRM, and import it again before scoring again. The command prints a warning
naming the dates the lines assume.

Prints one line per request (ok/BAD, id, latency, expected -> proposed kind, message, the
reasons or the reply), then lines right / lines (the headline, what `--fail-under` compares),
proposal and state accuracy, accuracy per expected kind, errors, median and p95 latency of the
scored turn (seconds, p95 as `eval questions`) and every failure with its reasons (e.g.
"proposal: kind queue_email != create_task", "state: reminder_due 2026-12-03T09:00 !=
2026-12-03T15:00"). `--json` prints the summary with the per-line rows as one JSON object.
Exit codes: 0 done (and accuracy >= --fail-under when given), 1 below --fail-under, 2 bad file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.commands.eval_questions import (
    DEFAULT_TIMEOUT_S,
    JsonOption,
    Post,
    TimeoutOption,
    UrlOption,
    http_post,
    load_or_exit,
    target,
)
from app.services.chat_types import PendingAction
from contracts import ActionResult
from contracts.chat import ActionKind

#: Expected kinds: an action kind, or "clarify" (the right answer is a question, nothing pending).
EXPECT_KINDS: tuple[str, ...] = (*get_args(ActionKind), "clarify")
#: What a line's `state` may name.
STATE_KEYS = frozenset(
    {"deal", "stage", "value", "reminder_due", "task_due", "email_to", "email_subject", "discount_percent"}
)
#: Numbers compared within this (USD, percentage points).
NUMBER_TOLERANCE = 0.01
#: Words too common to say whether two free texts mean the same thing.
STOP_WORDS = frozenset(
    {"the", "and", "for", "with", "that", "this", "from", "our", "their", "they", "them", "its", "was"}
    | {"are", "has", "have", "had", "not", "but", "you", "your", "all", "any", "can", "will", "into"}
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

#: `get(url) -> JSON object`; raises on a failed request or a non-200 answer.
Get = Callable[[str], dict[str, Any]]


class ActionFileError(ValueError):
    """A line of the actions file is not usable (the message names the line)."""


class Expect(BaseModel):
    """What the line's request should be answered with: an action `kind` and the `params` that
    must match, or `{"kind": "clarify"}`."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    params: dict[str, Any] = {}

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in EXPECT_KINDS:
            raise ValueError(f"unknown kind {value!r} (one of {', '.join(EXPECT_KINDS)})")
        return value


class ActionCase(BaseModel):
    """One line of the actions file (`today`: the date relative dates count from)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    message: str = Field(min_length=1)
    history: list[str] = []
    today: dt.date | None = None
    expect: Expect
    state: dict[str, Any] = {}


def load_actions(path: Path) -> list[ActionCase]:
    """The lines of a JSONL actions file (`id` defaults to `line<N>`). Raises ActionFileError
    naming the first bad line and, where pydantic says, the field."""
    items: list[ActionCase] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ActionFileError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(raw, dict):
            raise ActionFileError(f"{path}:{n}: expected an object")
        raw.setdefault("id", f"line{n}")
        try:
            case = ActionCase.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "line"
            raise ActionFileError(f"{path}:{n}: {where}: {err['msg']}") from exc
        unknown = sorted(set(case.state) - STATE_KEYS)
        if unknown:
            raise ActionFileError(f"{path}:{n}: state: unknown key {', '.join(unknown)}")
        items.append(case)
    return items


def http_get(timeout_s: float, token: str | None = None) -> Get:
    """A JSON GET with httpx, sending `Authorization: Bearer <token>` when a token is given;
    raises on a non-200 answer."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = httpx.Client(timeout=timeout_s, headers=headers)

    def get(url: str) -> dict[str, Any]:
        r = client.get(url)
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    return get


# --------------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------------


def wall_time(value: Any) -> str | None:
    """The local wall time of an ISO date or datetime as `YYYY-MM-DDTHH:MM` (its first 16
    characters; the offset is dropped, a date alone is 09:00), or None when it is neither."""
    text = str(value).strip()
    if _DATE.match(text):
        return f"{text}T09:00"
    if _DATETIME.match(text):
        return f"{text[:10]}T{text[11:16]}"
    return None


def stored_wall_time(stored: Any, proposed: Any) -> str | None:
    """The instant `stored` (ISO datetime read over REST, any offset) as `YYYY-MM-DDTHH:MM` wall
    time in the zone of `proposed` (the approved ISO value; UTC when it has no offset, as the
    actions store it), or None when `stored` is not a datetime."""
    try:
        instant = dt.datetime.fromisoformat(str(stored).strip())
    except ValueError:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    zone: dt.tzinfo = dt.UTC
    try:
        ref = dt.datetime.fromisoformat(str(proposed).strip())
        if ref.tzinfo is not None:
            zone = ref.tzinfo
    except ValueError:
        pass
    return instant.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def content_words(text: str) -> set[str]:
    """Lowercase words of three letters or more, stop words left out."""
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in STOP_WORDS}


def loosely_same(expected: str, actual: str) -> bool:
    """Whether two free texts say the same: at least half the content words of one occur in the
    other (either way round, so a longer paraphrase is fine). An expected text with no content
    word matches anything."""

    def covers(words: set[str], text: str) -> bool:
        return 2 * sum(w in text for w in words) >= len(words)

    exp_words, act_words = content_words(expected), content_words(actual)
    if not exp_words:
        return True
    if not act_words:
        return False
    return covers(exp_words, actual.lower()) or covers(act_words, expected.lower())


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _same_number(expected: Any, actual: Any) -> bool:
    a, e = _number(actual), _number(expected)
    return a is not None and e is not None and abs(a - e) <= NUMBER_TOLERANCE


def stage_key(text: Any) -> str:
    """The stage key of a key or display name ("Closed Won" -> "won"), else the text lowercased."""
    from config.files import load_pipeline

    stage = load_pipeline().resolve(str(text))
    return stage.key if stage is not None else str(text).strip().lower()


def _text_same(expected: Any, actual: Any) -> bool:
    return str(expected).strip().casefold() == str(actual).strip().casefold()


# --------------------------------------------------------------------------------------------
# the REST calls of one run
# --------------------------------------------------------------------------------------------


class _Api:
    """The server's REST API over the injected `post` / `get`; remembers each deal's external
    id (it never changes)."""

    def __init__(self, base_url: str, post: Post, get: Get) -> None:
        self.base = base_url.rstrip("/")
        self._post, self._get = post, get
        self._external: dict[int, str] = {}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._post(self.base + path, body)

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self._get(self.base + path + (f"?{urlencode(query)}" if query else ""))

    def external_id(self, deal_id: Any) -> str:
        """The opportunity id of deal `deal_id` (`GET /api/deals/{deal_id}`)."""
        key = int(deal_id)
        if key not in self._external:
            self._external[key] = str(self.get(f"/api/deals/{key}")["external_id"])
        return self._external[key]


def _fail(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


# --------------------------------------------------------------------------------------------
# proposal
# --------------------------------------------------------------------------------------------


def _tasks_of(params: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = params.get("tasks")
    if isinstance(tasks, list):
        return [t if isinstance(t, dict) else {} for t in tasks]
    if params.get("title") and params.get("due"):  # one task, as tools.actions accepts it
        return [{"title": params["title"], "due": params["due"]}]
    return []


def _tasks_reasons(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    if len(expected) != len(actual):
        return [f"tasks {len(actual)} != {len(expected)}"]
    reasons = []
    for i, (e, a) in enumerate(zip(expected, actual, strict=True), start=1):
        due = str(a.get("due", ""))[:10]
        if due != str(e.get("due", ""))[:10]:
            reasons.append(f"task {i} due {due or None} != {str(e.get('due'))[:10]}")
        if "title" in e and not loosely_same(str(e["title"]), str(a.get("title", ""))):
            reasons.append(f"task {i} title {a.get('title')!r} !~ {e['title']!r}")
    return reasons


def _param_reasons(key: str, expected: Any, params: dict[str, Any], api: _Api) -> list[str]:
    if key == "deal":
        if params.get("deal"):
            actual: Any = params["deal"]
        elif params.get("deal_id") is not None:
            try:
                actual = api.external_id(params["deal_id"])
            except Exception as exc:
                return [f"deal_id {params['deal_id']!r} unreadable ({_fail(exc)})"]
        else:
            return [f"deal missing (expected {expected})"]
        return [] if _text_same(expected, actual) else [f"deal {actual} != {expected}"]
    if key == "tasks":
        return _tasks_reasons(list(expected), _tasks_of(params))
    if key not in params:
        return [f"{key} missing (expected {expected})"]
    actual = params[key]
    if key == "stage":
        same = stage_key(actual) == stage_key(expected)
    elif key in ("value", "percent", "requested_percent"):
        same = _same_number(expected, actual)
    elif key == "due_at":
        actual = wall_time(actual)
        same = actual == wall_time(expected)
        expected = wall_time(expected)
    elif key in ("note", "title"):
        same = loosely_same(str(expected), str(actual))
        return [] if same else [f"{key} {str(actual)[:80]!r} !~ {str(expected)!r}"]
    else:  # to, subject and anything else: the same text
        same = _text_same(expected, actual)
    return [] if same else [f"{key} {actual} != {expected}"]


def proposal_reasons(expect: Expect, pending: PendingAction | None, reply: str, api: _Api) -> list[str]:
    """Why the proposal is wrong (empty: right); rules in the module docstring."""
    if expect.kind == "clarify":
        reasons = [] if pending is None else [f"proposed {pending.kind} instead of asking"]
        return reasons + ([] if "?" in reply else ["the reply asks nothing (no '?')"])
    if pending is None:
        return [f"nothing proposed (expected {expect.kind})"]
    if pending.kind != expect.kind:
        return [f"kind {pending.kind} != {expect.kind}"]
    return [
        r for key, value in expect.params.items() for r in _param_reasons(key, value, pending.params, api)
    ]


# --------------------------------------------------------------------------------------------
# state after approval
# --------------------------------------------------------------------------------------------


def _reminders(api: _Api, result: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The reminders the approval wrote: those of the result's ids, else the deal's."""
    ids = result.get("reminder_ids") or ([result["reminder_id"]] if result.get("reminder_id") else [])
    if ids:
        return [api.get(f"/api/reminders/{int(i)}") for i in ids]
    deal_id = params.get("deal_id") or result.get("deal_id")
    if deal_id is None:
        return []
    items: list[dict[str, Any]] = api.get("/api/reminders", deal_id=int(deal_id), limit=500)["items"]
    return items


def state_reasons(case: ActionCase, outcome: ActionResult, thread_id: str, api: _Api) -> list[str]:
    """Why the CRM does not show `case.state` after the approval that gave `outcome` (empty:
    it does). REST reads that fail raise; the caller turns them into a reason."""
    if outcome.status != "done":
        return [f"action {outcome.status}: {outcome.detail}"[:200]]
    state, result, params = case.state, outcome.result, outcome.action.params
    reasons: list[str] = []
    deal_ids: list[Any] = []  # the deals of the records the approval wrote
    if "stage" in state or "value" in state:
        deal_id = result.get("deal_id") or params.get("deal_id")
        if deal_id is None:
            return ["no deal_id in the action's result"]
        deal = api.get(f"/api/deals/{int(deal_id)}")
        deal_ids.append(deal["id"])
        if "stage" in state and stage_key(deal.get("stage")) != stage_key(state["stage"]):
            reasons.append(f"stage {deal.get('stage')} != {state['stage']}")
        if "value" in state and not _same_number(state["value"], deal.get("value")):
            reasons.append(f"value {deal.get('value')} != {state['value']}")
    if "reminder_due" in state:
        found = _reminders(api, result, params)
        walls = [stored_wall_time(r.get("due_at"), params.get("due_at")) for r in found]
        match = [r for r, w in zip(found, walls, strict=True) if w == state["reminder_due"]]
        if not match:
            reasons.append(f"reminder_due {', '.join(map(str, walls)) or 'none'} != {state['reminder_due']}")
        deal_ids += [r.get("deal_id") for r in (match or found)[:1]]
    if "task_due" in state:
        found = _reminders(api, result, params)
        tasks = _tasks_of(params)
        zones = [t.get("due") for t in tasks] + [None] * max(0, len(found) - len(tasks))
        dates = sorted(
            str(stored_wall_time(r.get("due_at"), z))[:10] for r, z in zip(found, zones, strict=False)
        )
        if dates != sorted(state["task_due"]):
            reasons.append(f"task_due {dates} != {sorted(state['task_due'])}")
        deal_ids += [r.get("deal_id") for r in found[:1]]
    if "email_to" in state or "email_subject" in state:
        if result.get("outbox_id") is None:
            return [*reasons, "no outbox_id in the action's result"]
        mail = api.get(f"/api/outbox/{int(result['outbox_id'])}")
        deal_ids.append(mail.get("deal_id"))
        if "email_to" in state and not _text_same(state["email_to"], mail.get("to_addr")):
            reasons.append(f"email_to {mail.get('to_addr')} != {state['email_to']}")
        if "email_subject" in state and not _text_same(state["email_subject"], mail.get("subject")):
            reasons.append(f"email_subject {mail.get('subject')} != {state['email_subject']}")
    if "discount_percent" in state:
        events = api.get("/api/events", kind="discount.accepted", thread_id=thread_id, limit=1)["items"]
        if not events:
            return [*reasons, "no discount.accepted event in the thread"]
        deal_ids.append(events[0].get("deal_id"))
        percent = (events[0].get("payload") or {}).get("percent")
        if not _same_number(state["discount_percent"], percent):
            reasons.append(f"discount_percent {percent} != {state['discount_percent']}")
    if "deal" in state:
        if not deal_ids:
            reasons.append(f"deal: nothing written (expected {state['deal']})")
        for deal_id in deal_ids[:1]:
            actual = None if deal_id is None else api.external_id(deal_id)
            if not _text_same(state["deal"], actual):
                reasons.append(f"deal {actual} != {state['deal']}")
    return reasons


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def score_line(case: ActionCase, api: _Api) -> dict[str, Any]:
    """Play one line in a new thread and score it; returns its row (`id`, `kind` expected,
    `got` proposed, `proposal_right`, `state_right`, `right`, `reasons` prefixed "proposal:" /
    "state:" / "request:", `error`, `latency_s` of the scored turn, `thread_id`, `message`,
    `reply`, `today`)."""
    row: dict[str, Any] = {
        "id": case.id,
        "kind": case.expect.kind,
        "got": None,
        "proposal_right": False,
        "state_right": False,
        "right": False,
        "reasons": [],
        "error": None,
        "latency_s": 0.0,
        "thread_id": None,
        "message": case.message,
        "reply": "",
        "today": case.today.isoformat() if case.today else None,
    }
    thread_id: str | None = None
    turns = [*case.history, case.message]
    r: dict[str, Any] = {}
    for n, text in enumerate(turns, start=1):
        body: dict[str, Any] = {"message": text}
        if thread_id is not None:
            body["thread_id"] = thread_id
        start = time.monotonic()
        where = "message" if n == len(turns) else f"history {n}"
        try:
            r = api.post("/api/chat", body)
        except Exception as exc:  # the line is wrong; the later turns need this one
            row.update(error=type(exc).__name__, latency_s=round(time.monotonic() - start, 3))
            row["reasons"].append(f"request: {where} failed ({_fail(exc)})")
            return row
        row["latency_s"] = round(time.monotonic() - start, 3)
        thread_id = thread_id or r.get("thread_id")
        row["thread_id"] = thread_id
        if r.get("error"):
            row["error"] = str(r["error"].get("kind"))
            row["reasons"].append(f"request: {where} answered with error {row['error']}")
            row["reply"] = str(r.get("reply", ""))
            return row
    row["reply"] = reply = str(r.get("reply", ""))
    try:
        pending = PendingAction.model_validate(r["pending_action"]) if r.get("pending_action") else None
    except ValidationError as exc:
        row["reasons"].append(f"proposal: unreadable pending_action ({_fail(exc)})")
        return row
    row["got"] = pending.kind if pending is not None else None
    proposal = proposal_reasons(case.expect, pending, reply, api)
    row["proposal_right"] = not proposal
    row["reasons"] += [f"proposal: {p}" for p in proposal]

    if case.expect.kind == "clarify":
        state = [] if pending is None else ["an action waits for approval"]
    elif pending is None or pending.kind != case.expect.kind:
        state = ["not approved (no proposal of the expected kind)"]
    elif pending.id is None or thread_id is None:
        state = ["cannot approve: the pending action or the thread has no id"]
    else:
        try:
            done = api.post(f"/api/chat/{thread_id}/resume", {"decision": "approve", "action_id": pending.id})
            if not done.get("action_result"):
                state = ["the approval returned no action_result"]
            else:
                outcome = ActionResult.model_validate(done["action_result"])
                state = state_reasons(case, outcome, thread_id, api)
        except Exception as exc:  # a failed approval or read: the state is not shown
            state = [f"request failed ({_fail(exc)})"]
    row["state_right"] = not state
    row["reasons"] += [f"state: {s}" for s in state]
    row["right"] = row["proposal_right"] and row["state_right"]
    return row


def run_actions(
    base_url: str,
    items: list[ActionCase],
    post: Post,
    get: Get,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Score every line (`score_line`); returns `summarize` of the rows."""
    api = _Api(base_url, post, get)
    rows: list[dict[str, Any]] = []
    for case in items:
        row = score_line(case, api)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return summarize(rows)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Lines right (`right`, `accuracy`), proposal and state right and accuracy, `errors`,
    latency of the scored turns (`median_s`, `p95_s`, as `eval questions`), `per_kind`
    (`{expected kind: {"n", "right", "accuracy"}}`), `today` (the dates lines assume) and `rows`."""
    n = len(rows)
    lat = sorted(r["latency_s"] for r in rows)

    def share(k: int, of: int) -> float:
        return round(k / of, 3) if of else 0.0

    per_kind: dict[str, dict[str, Any]] = {}
    for r in rows:
        kind = per_kind.setdefault(r["kind"], {"n": 0, "right": 0})
        kind["n"] += 1
        kind["right"] += r["right"]
    for kind in per_kind.values():
        kind["accuracy"] = share(kind["right"], kind["n"])
    right = sum(r["right"] for r in rows)
    proposals = sum(r["proposal_right"] for r in rows)
    states = sum(r["state_right"] for r in rows)
    return {
        "n": n,
        "right": right,
        "accuracy": share(right, n),
        "proposal_right": proposals,
        "proposal_accuracy": share(proposals, n),
        "state_right": states,
        "state_accuracy": share(states, n),
        "errors": sum(1 for r in rows if r["error"]),
        "median_s": round(statistics.median(lat), 2) if lat else None,
        "p95_s": round(lat[int(0.95 * (n - 1))], 2) if lat else None,
        "per_kind": dict(sorted(per_kind.items())),
        "today": sorted({r["today"] for r in rows if r["today"]}),
        "rows": rows,
    }


def today_warning(items: list[ActionCase]) -> str | None:
    """The warning for lines with relative dates (None when no line has `today`)."""
    dates = sorted({c.today.isoformat() for c in items if c.today is not None})
    if not dates:
        return None
    k = sum(1 for c in items if c.today is not None)
    env = " or ".join(f"FLOWSTATE_TODAY={d}" for d in dates)
    return (
        f"warning: {k} of {len(items)} lines assume today is {', '.join(dates)}: score them against a "
        f"server started with {env} and a freshly imported CRM"
    )


def actions_command(
    file: Annotated[
        Path, typer.Argument(help='JSONL of {"id", "message", "history"?, "today"?, "expect", "state"}')
    ],
    as_json: JsonOption = False,
    url: UrlOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N lines")] = None,
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Exit 1 if line accuracy is below this")
    ] = None,
) -> None:
    """Proposal and CRM-state accuracy of chat action requests (approves what is proposed: use a
    freshly imported CRM, and FLOWSTATE_TODAY for lines with relative dates)."""
    items = load_or_exit(file, load_actions, ActionFileError)[:limit]
    warning = today_warning(items)
    if warning:
        typer.echo(warning, err=True)
    base, token = target(url)

    def show(row: dict[str, Any]) -> None:
        if not as_json:
            mark = "ok " if row["right"] else "BAD"
            why = "; ".join(row["reasons"]) if row["reasons"] else repr(row["reply"][:100])
            typer.echo(
                f"{mark} {row['id']} {row['latency_s']:5.1f}s {row['kind']} -> {row['got']} "
                f"| {row['message'][:60]} | {why}"
            )

    summary = run_actions(base, items, http_post(timeout_s, token), http_get(timeout_s, token), show)
    if as_json:
        typer.echo(json.dumps({"file": file.name, "url": base, **summary}))
    else:
        typer.echo(
            f"{file.name}: {summary['right']}/{summary['n']} lines right, "
            f"accuracy {summary['accuracy']:.1%}; proposal {summary['proposal_accuracy']:.1%}, "
            f"state {summary['state_accuracy']:.1%}; errors {summary['errors']}, "
            f"median {summary['median_s']} s, p95 {summary['p95_s']} s"
        )
        typer.echo(
            "per kind: " + ", ".join(f"{k} {v['right']}/{v['n']}" for k, v in summary["per_kind"].items())
        )
        failures = [r for r in summary["rows"] if not r["right"]]
        if failures:
            typer.echo("failures:")
            for r in failures:
                typer.echo(f"  {r['id']}: {'; '.join(r['reasons'])}")
    if fail_under is not None and summary["accuracy"] < fail_under:
        raise typer.Exit(1)
