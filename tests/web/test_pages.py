"""The workspace's page routes without a browser: who gets a page and who is sent to sign in, the
headers a page carries, the sign-in page's messages, the assets under /static."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from app.api.auth import SESSION_COOKIE
from app.main import create_app
from tests.app.test_chat_api import _endpoints

#: Each page and the ES module it loads.
PAGES = {
    "/": "chat",
    "/pipeline": "pipeline",
    "/inbox": "inbox",
    "/dashboard": "dashboard",
    "/accounts/7": "account",
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # no lifespan: the page shells and assets touch neither the database nor Redis
    app = create_app(_endpoints("postgresql+psycopg://nobody@127.0.0.1:9/none", None))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_without_a_session_sends_the_visitor_to_sign_in(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path + "?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=" + quote(f"{path}?x=1", safe="")


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_shell_loads_its_module_under_a_strict_policy(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path, cookies={SESSION_COOKIE: "any"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "ws://test" in policy and "frame-ancestors 'none'" in policy
    assert f'<script type="module" src="/static/js/{PAGES[path]}.js?v=' in r.text
    assert '<form method="post" action="/logout">' in r.text


async def test_account_page_needs_a_numeric_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/accounts/acme", cookies={SESSION_COOKIE: "any"})
    assert r.status_code == 422


async def test_the_sign_in_page_says_what_went_wrong_and_keeps_next(client: httpx.AsyncClient) -> None:
    r = await client.get("/login", params={"error": "link", "next": "/inbox"})
    assert r.status_code == 200
    assert "That sign-in link was used already" in r.text
    assert '<input type="hidden" name="next" value="/inbox">' in r.text
    r = await client.get("/login", params={"error": "1"})
    assert "Wrong username or password." in r.text
    r = await client.get("/login", params={"next": '"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in r.text  # escaped


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/app.css", "text/css"),
        ("/static/js/common.js", "text/javascript"),
        ("/static/js/chat.js", "text/javascript"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
async def test_assets_are_served(client: httpx.AsyncClient, path: str, content_type: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith(content_type)
