"""The web workspace end to end in a real headless Chromium: sign in through the form, chat with a
streamed reply, approve an action in the chat and in the inbox, move a deal on the board through
approval, open an account card and the dashboard. The app is real (routes, auth, database, Redis,
the chat graph); only the crews are fakes (tests/graphs/fakes.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import redis
from playwright.sync_api import Page, WebSocket, expect
from sqlalchemy import Engine, select, text

from contracts.notifications import NOTIFICATIONS_CHANNEL, Notification
from crm import inbox
from crm.db import session_scope
from crm.documents import DocumentIn, add_documents
from crm.models import Deal
from tests.app.test_authz_rest import _SameVector
from tests.web.conftest import Workspace, screenshot, sign_in


def _stage(engine: Engine, deal_id: int) -> str:
    with session_scope(engine) as s:
        stage = s.scalar(select(Deal.stage).where(Deal.id == deal_id))
    assert stage is not None
    return stage


def _record_frames(page: Page) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat WebSocket frames the page receives and sends, in order."""
    received: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    def on_socket(ws: WebSocket) -> None:
        ws.on("framereceived", lambda payload: received.append(json.loads(payload)))
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return received, sent


def test_signed_out_visitor_goes_to_login_and_a_wrong_password_is_shown(page: Page) -> None:
    page.goto("/pipeline")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fpipeline$"))
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/login\?error=1$"))
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")


def test_sign_in_and_a_reply_streams_in(page: Page, tmp_path: Path) -> None:
    frames, sent = _record_frames(page)
    sign_in(page, "bob", "/")
    expect(page.locator("#who")).to_have_text("Bob Beta · rep")
    box = page.get_by_label("Message", exact=True)
    box.fill("What's my win rate?")
    box.press("Enter")

    reply = page.locator(".msg.assistant").last
    expect(reply).to_contain_text("[pipeline] answer about")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    kinds = [f["type"] for f in frames]
    assert "token" in kinds and kinds[-1] == "final", kinds
    assert kinds.index("status") < kinds.index("token") < kinds.index("final")
    final = frames[-1]
    # who speaks is the session's user: the page never names one
    assert sent == [{"type": "message", "content": "What's my win rate?"}]
    expect(reply.locator(".text")).to_have_text(final["reply"])
    # the conversation is listed, and comes back (from the server) after a reload
    expect(page.locator("#thread-list button")).to_have_text(["What's my win rate?"])
    screenshot(page, tmp_path, "chat-reply")
    page.reload()
    expect(page.locator(".msg.user")).to_have_text(["What's my win rate?"])
    expect(page.locator(".msg.assistant .text")).to_have_text([final["reply"]])

    # sign out: the session ends, the pages send the visitor back to the form
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/inbox")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Finbox$"))


def test_an_action_is_edited_and_approved_on_its_card_in_the_chat(
    page: Page, workspace: Workspace, clean_db: Engine, tmp_path: Path
) -> None:
    deal = workspace.crm.deal["D0000005"]
    received, sent = _record_frames(page)
    sign_in(page, "bob", "/")
    page.get_by_label("Message", exact=True).fill("move deal D0000005 to qualified")
    page.get_by_role("button", name="Send").click()

    card = page.locator("#approval .approval")
    expect(card).to_contain_text("Move deal D0000005 to Qualified")
    expect(card.locator(".kind")).to_have_text("move stage")
    # Edit shows the params as labelled inputs, checked before anything is sent
    card.get_by_role("button", name="Edit").click()
    stage = card.get_by_label("stage")
    expect(stage).to_have_value("qualified")
    stage.fill("")
    card.get_by_role("button", name="Approve with edits").click()
    expect(card.locator(".field-error")).to_contain_text(["must not be empty"])
    assert _stage(clean_db, deal) == "engaging"
    screenshot(page, tmp_path, "chat-approval-card")
    # approved with an edit: the deal goes where the edit says
    stage.fill("proposal")
    card.get_by_role("button", name="Approve with edits").click()
    expect(page.locator("#approval")).to_contain_text("You approved with edits")
    expect(page.locator(".msg.assistant").last).to_contain_text("Done")
    assert _stage(clean_db, deal) == "proposal"
    [resume] = [f for f in sent if f["type"] == "resume"]
    assert resume["decision"] == "edit" and resume["edits"] == {"stage": "proposal"}
    [interrupt] = [f for f in received if f["type"] == "interrupt"]
    assert resume["action_id"] == interrupt["id"]  # the decision names the action it is for


def test_a_waiting_action_moves_to_the_inbox_and_is_approved_there(
    page: Page, workspace: Workspace, clean_db: Engine, tmp_path: Path
) -> None:
    deal = workspace.crm.deal["D0000005"]
    sign_in(page, "bob", "/")
    box = page.get_by_label("Message", exact=True)
    box.fill("move deal D0000005 to qualified")
    box.press("Enter")
    expect(page.locator("#approval .approval")).to_contain_text("Move deal D0000005 to Qualified")

    # a new message before the decision: the action goes to the inbox
    box.fill("How many deals has Betaco?")
    box.press("Enter")
    expect(page.locator(".msg.assistant").last).to_contain_text("moved to your inbox")
    expect(page.locator("#inbox-badge")).to_have_text("1")

    page.get_by_role("link", name=re.compile("^Inbox")).click()
    item = page.locator(".inbox-item").filter(has_text="D0000005")
    expect(item).to_have_count(1)
    expect(item.locator(".kind").first).to_have_text("action")
    screenshot(page, tmp_path, "inbox-action")
    item.get_by_role("button", name="Approve").click()
    expect(item).to_contain_text("Approved.")
    assert _stage(clean_db, deal) == "qualified"
    expect(page.locator("#inbox-badge")).to_be_hidden()


def test_inbox_alert_is_dismissed(page: Page, workspace: Workspace, clean_db: Engine, tmp_path: Path) -> None:
    with session_scope(clean_db) as s:
        inbox.file_item(
            s,
            recipient="Bob Beta",
            kind="alert",
            title="Betaco has gone quiet",
            body="No reply for 30 days.",
            rep_id=workspace.crm.rep["Bob Beta"],
            account_id=workspace.crm.account["Betaco"],
        )
    sign_in(page, "bob", "/inbox")
    item = page.locator(".inbox-item").filter(has_text="Betaco has gone quiet")
    expect(item.get_by_role("link", name="account")).to_have_attribute(
        "href", f"/accounts/{workspace.crm.account['Betaco']}"
    )
    expect(item.get_by_role("button")).to_have_text(["Done", "Dismiss"])
    screenshot(page, tmp_path, "inbox-alert")
    item.get_by_role("button", name="Dismiss").click()
    expect(item).to_contain_text("Dismissed.")
    page.get_by_label("Show").select_option("dismissed")
    expect(page.locator(".inbox-item")).to_contain_text(["dismissed by bob"])


def test_drag_a_deal_to_the_next_stage_then_approve(
    page: Page, workspace: Workspace, clean_db: Engine, tmp_path: Path
) -> None:
    deal = workspace.crm.deal["D0000005"]
    sign_in(page, "bob", "/pipeline")
    card = page.locator(f"#deal-{deal}")
    expect(page.locator('.column[data-stage="engaging"]').locator(f"#deal-{deal}")).to_be_visible()

    # the entry rules refuse a win without a close date and value: the refusal shows on the card
    card.get_by_label("Move deal D0000005 to").select_option("won")
    expect(card.locator(".refusal")).to_contain_text("Cannot move to Closed Won")

    card.drag_to(page.locator('.column[data-stage="qualified"]'))
    expect(card).to_contain_text("awaiting approval: to Qualified")
    screenshot(page, tmp_path, "pipeline-awaiting-approval")
    assert _stage(clean_db, deal) == "engaging"
    # the proposal waits in the inbox too, and survives a reload of the board
    page.reload()
    expect(page.locator(f"#deal-{deal}")).to_contain_text("awaiting approval")

    page.locator(f"#deal-{deal}").get_by_role("button", name="Approve").click()
    moved = page.locator('.column[data-stage="qualified"]').locator(f"#deal-{deal}")
    expect(moved).to_be_visible()
    expect(moved).not_to_contain_text("awaiting approval")
    assert _stage(clean_db, deal) == "qualified"
    screenshot(page, tmp_path, "pipeline-moved")


def test_a_move_proposed_from_the_keyboard_can_be_rejected(
    page: Page, workspace: Workspace, clean_db: Engine
) -> None:
    deal = workspace.crm.deal["D0000005"]
    sign_in(page, "bob", "/pipeline")
    card = page.locator(f"#deal-{deal}")
    move = card.get_by_label("Move deal D0000005 to")
    move.focus()
    move.select_option("qualified")
    # the decision takes the focus: Approve first, Reject one Tab further
    expect(card.get_by_role("button", name="Approve moving deal D0000005 to Qualified")).to_be_focused()
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="Reject moving deal D0000005")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#board-message")).to_have_text("The move of deal D0000005 was rejected.")
    expect(page.locator('.column[data-stage="engaging"]').locator(f"#deal-{deal}")).not_to_contain_text(
        "awaiting approval"
    )
    assert _stage(clean_db, deal) == "engaging"


def test_account_card_shows_contacts_deals_and_documents(
    page: Page, workspace: Workspace, clean_db: Engine, tmp_path: Path
) -> None:
    acme = workspace.crm.account["Acme"]
    won = workspace.crm.deal["D0000001"]
    with session_scope(clean_db) as s:
        add_documents(
            s,
            _SameVector(),
            [  # stored together: the later one (a larger id) is the newer
                DocumentIn(
                    content="Re: GTX Pro pricing\nThe quote is attached.",
                    metadata={"kind": "email"},
                    deal_id=won,
                ),
                DocumentIn(
                    content="Dana wants a pilot in March.",
                    metadata={"kind": "call_note", "title": "Kick-off call", "url": "https://docs.example/k"},
                    account_id=acme,
                ),
            ],
        )
    sign_in(page, "mia", f"/accounts/{acme}")
    expect(page.locator("#account-name")).to_have_text("Acme")
    expect(page.locator("#profile")).to_contain_text("technology")
    expect(page.locator("#contacts")).to_contain_text("Dana Diaz")
    expect(page.locator("#contacts")).to_contain_text("Head of Purchasing")
    rows = page.locator("#deals tbody tr")
    expect(rows).to_have_count(3)
    for ext in ("D0000001", "D0000002", "D0000003"):
        expect(page.locator("#deals")).to_contain_text(ext)
    expect(page.locator("#profile")).to_contain_text("Betaco")  # its subsidiary
    # the stage history names the stages as config/pipeline.yaml shows them, not by their keys
    history = page.locator(f"#deal-{won} .history")
    expect(history).to_contain_text("Closed Won")
    expect(history).not_to_contain_text(re.compile(r"\bwon\b"))  # the key
    expect(page.locator(f"#deal-{workspace.crm.deal['D0000003']} .history")).to_contain_text("Closed Lost")
    # the account's documents, its deals' included, newest first, beside the search
    docs = page.locator("#account-documents li")
    expect(docs).to_have_count(2)
    expect(docs.nth(0)).to_contain_text("Kick-off call")
    expect(docs.nth(0)).to_contain_text("call note")
    link = docs.nth(0).get_by_role("link", name="Kick-off call")
    expect(link).to_have_attribute("href", "https://docs.example/k")
    expect(docs.nth(1)).to_contain_text("Re: GTX Pro pricing")
    expect(docs.nth(1)).to_contain_text("email")
    expect(docs.nth(1).get_by_role("link", name="D0000001")).to_be_visible()
    expect(page.locator("#documents-more")).to_be_hidden()
    screenshot(page, tmp_path, "account-card")

    page.get_by_role("link", name="Ask about this account").click()
    expect(page.get_by_label("Message", exact=True)).to_have_value("Tell me about Acme")


def test_the_account_documents_come_a_page_at_a_time(
    page: Page, workspace: Workspace, clean_db: Engine
) -> None:
    deltaco = workspace.crm.account["Deltaco"]  # no deal on it: anyone reads it
    with session_scope(clean_db) as s:
        notes = [DocumentIn(content=f"Note {n}", account_id=deltaco) for n in range(1, 13)]
        add_documents(s, _SameVector(), notes)
    sign_in(page, "bob", f"/accounts/{deltaco}")
    docs = page.locator("#account-documents li")
    expect(docs).to_have_count(10)
    expect(docs.first.locator("strong")).to_have_text("Note 12")  # the newest
    expect(page.locator("#documents-count")).to_have_text("10 of 12")
    page.get_by_role("button", name="Show more").click()
    expect(docs).to_have_count(12)
    expect(docs.last.locator("strong")).to_have_text("Note 1")
    expect(page.locator("#documents-more")).to_be_hidden()
    expect(page.locator("#documents-count")).to_have_text("12 of 12")


def test_dashboard_draws_the_figures_of_the_api(page: Page, tmp_path: Path) -> None:
    sign_in(page, "mia", "/dashboard")
    totals = page.request.get("/api/pipeline/metrics").json()[0]
    expect(page.locator("#kpis")).to_contain_text(f"{totals['win_rate']:.1f}%")
    by_rep = page.request.get("/api/pipeline/metrics?group_by=rep").json()
    chart = page.get_by_role("img", name="Win rate per rep")
    expect(chart).to_be_visible()
    for row in by_rep:
        if row["win_rate"] is not None:
            expect(chart).to_contain_text(row["group"])
    expect(page.get_by_role("img", name="Open pipeline value by stage")).to_contain_text("Engaging")
    screenshot(page, tmp_path, "dashboard")


def test_a_notification_shows_a_toast_and_updates_the_inbox_badge(
    page: Page, workspace: Workspace, clean_db: Engine, tmp_path: Path
) -> None:
    sign_in(page, "bob", "/")
    expect(page.locator("#inbox-badge")).to_be_hidden()
    with session_scope(clean_db) as s:
        item, _ = inbox.file_item(s, recipient="Bob Beta", kind="alert", title="Betaco went quiet")
    notification = Notification(recipient="Bob Beta", kind="alert", title=item.title, item_id=item.id)
    toast = page.locator(".toast").filter(has_text="Betaco went quiet")
    with redis.Redis.from_url(workspace.redis_url) as r:
        # the page's socket follows its user once connected: publish until it is
        for _ in range(40):
            r.publish(NOTIFICATIONS_CHANNEL, notification.model_dump_json())
            if toast.count():
                break
            page.wait_for_timeout(250)
    expect(toast.first).to_be_visible()
    expect(page.locator("#inbox-badge")).to_have_text("1")
    screenshot(page, tmp_path, "chat-notification")


def test_a_rep_sees_only_their_own_figures(page: Page) -> None:
    sign_in(page, "bob", "/dashboard")
    expect(page.locator("#dash-message")).to_have_text("Your own figures.")
    chart = page.get_by_role("img", name="Win rate per rep")
    expect(chart).to_contain_text("Bob Beta")
    expect(chart).not_to_contain_text("Ann Alpha")


def test_a_page_whose_session_ended_sends_the_user_to_sign_in(page: Page, clean_db: Engine) -> None:
    sign_in(page, "bob", "/inbox")
    # the page's own first calls must be done before the session ends: only the next page is tested
    page.wait_for_load_state("networkidle")
    with clean_db.begin() as conn:  # every session of the user ends (as `flowstate users disable` does)
        conn.execute(text("DELETE FROM credentials"))
    page.get_by_role("link", name="Pipeline").click()
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fpipeline$"))
