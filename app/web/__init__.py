"""The web workspace: server-rendered page shells (Jinja2) and the static ES modules that fill them
from the JSON API under /api, with the session cookie of `POST /login`.

`install(app)` adds the page routes (`app.web.pages`) and mounts the assets at /static. The pages
do no database work: authorization stays in one place, the API's.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.web.pages import STATIC_DIR, router

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Serve the workspace pages (`/`, `/login`, `/pipeline`, `/inbox`, `/dashboard`,
    `/accounts/{id}`) and their assets at `/static` on `app`."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
