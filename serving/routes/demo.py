"""/demo: a page to look at the recommender (static files shipped in the package, no CDN).

It calls the public API from the browser; the only route of its own lists some stored users for
its picker. `INTENTREC_DEMO=false` removes both.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from serving.clients.history_store import StoreUnavailable
from serving.deps import SettingsDep, StoreDep
from serving.errors import ServiceError

PAGE_DIR = Path(__file__).resolve().parent.parent / "demo"
USERS_SHOWN = 50


def include_demo(app: FastAPI) -> None:
    app.mount("/demo/assets", StaticFiles(directory=PAGE_DIR), name="demo-assets")

    @app.get("/demo", include_in_schema=False)
    async def demo_page() -> FileResponse:
        return FileResponse(PAGE_DIR / "index.html", media_type="text/html")

    @app.get("/demo/users", include_in_schema=False)
    async def demo_users(store: StoreDep, settings: SettingsDep) -> dict[str, list[str]]:
        try:
            users = await store.some_users(USERS_SHOWN, settings.redis_write_timeout_ms / 1000.0)
        except StoreUnavailable as exc:
            raise ServiceError(503, "history_store_unavailable", str(exc)) from exc
        return {"users": sorted(users)}
