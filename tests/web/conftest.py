"""Fixtures of the workspace's end-to-end tests: the real app (fake crews, real Redis and
PostgreSQL) served by uvicorn in a thread, the small CRM of tests/tools/conftest.py with a rep and
a manager who sign in, and a real headless Chromium (Debian's, driven by Playwright).

Chromium is required, not optional: without it these tests fail (`make test` installs it). Set
`FLOWSTATE_CHROMIUM` to use another binary, and `FLOWSTATE_SCREENSHOTS` to a folder to get a copy of
every screenshot there (each is saved in the test's own tmp_path too).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from sqlalchemy import Engine

from app.main import create_app
from app.services.notifications import NotificationHub
from crm import users
from crm.db import session_scope
from tests.app.test_chat_api import _endpoints, _serve, _with_fake_chat
from tests.graphs.fakes import fake_context
from tests.tools.conftest import CRM, crm_data  # noqa: F401 - the shared small CRM

#: Chromium's switches for a container: no sandbox (no user namespaces), no GPU, no updates.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

PASSWORD = {"bob": "bob-password-1234", "mia": "mia-password-1234"}

expect.set_options(timeout=15_000)


def chromium_path() -> str:
    """The Chromium binary to drive; fails the test when there is none."""
    path = (
        os.environ.get("FLOWSTATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not path:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium and chromium-driver")
    return path


# package scope: the sync API runs an event loop in this thread until it stops, which must happen
# before the asyncio tests of other packages run
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Workspace:
    """The running app (`base`: its URL) over the small CRM (`crm`: ids by name), with its Redis."""

    base: str
    crm: CRM
    redis_url: str


@pytest.fixture
def workspace(crm_data: CRM, clean_db: Engine, database_url: str, redis_url: str) -> Iterator[Workspace]:  # noqa: F811
    """The app with fake crews, and two users: `bob` (the rep Bob Beta) and `mia` (the manager
    Mia Manager, whose team is Ann Alpha and Bob Beta)."""
    with session_scope(clean_db) as s:
        users.add_user(s, "bob", role="rep", rep="Bob Beta", password=PASSWORD["bob"])
        users.add_user(s, "mia", role="manager", manager_name="Mia Manager", password=PASSWORD["mia"])
    app = _with_fake_chat(
        create_app(_endpoints(database_url, None)), redis_url, lambda: fake_context(engine=clean_db)
    )
    chat_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        # live notifications on the chat sockets, as `flowstate serve` has them with Redis
        async with chat_lifespan(a):
            a.state.notifications = NotificationHub(redis_url)
            a.state.notifications.start()
            await asyncio.wait_for(a.state.notifications.subscribed.wait(), 10)
            yield
            await a.state.notifications.stop()

    app.router.lifespan_context = lifespan
    with _serve(app) as hostport:
        yield Workspace(base=f"http://{hostport}", crm=crm_data, redis_url=redis_url)


@pytest.fixture
def page(browser: Browser, workspace: Workspace) -> Iterator[Page]:
    """A fresh browser context (no cookies, no localStorage) on the workspace. The test fails if a
    script threw or the Content-Security-Policy refused something."""
    context = browser.new_context(base_url=workspace.base, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield page
    context.close()
    assert not problems, problems


def sign_in(page: Page, username: str, path: str = "/") -> None:
    """Open `path` signed out (sent to the sign-in form), sign in through the form, land on `path`."""
    page.goto(path)
    expect(page).to_have_url(re.compile(re.escape("/login?next=" + quote(path, safe="")) + "$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD[username])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_contain_text("·")


def screenshot(page: Page, folder: Path, name: str) -> Path:
    """Save a full-page screenshot as `folder/name.png` (and in FLOWSTATE_SCREENSHOTS if set);
    prints where."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("FLOWSTATE_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    print(f"screenshot: {path}")
    return path
